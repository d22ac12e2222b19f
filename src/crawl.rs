//! One crawl of the watched keywords: for each enabled platform, each keyword, page by page,
//! fetch → extract → match → store (listings, evidence and verdicts in one transaction).
//! Item pages are fetched for listings seen first, and their verdicts refreshed with what the
//! item page adds (the shop, the category). Item pages an earlier run left unfetched (it was
//! cut short, the page failed) are fetched after the searches, a bounded number per run.
//!
//! A failed page is an outcome, not a crash: it is counted in the run and the crawl goes on.
//!
//! Every caller builds and starts a crawl the same way, through [`Crawl`] (see [`plan`]).

mod accounts;
pub(crate) mod plan;

pub use plan::{Crawl, Pace, Search, pipeline_matcher};
pub(crate) use plan::{MatcherStamp, PlatformLocks, build_matcher, fetch_policy};

use std::collections::BTreeSet;
use std::sync::Arc;

use serde::Serialize;
use tokio::sync::oneshot;
use tokio::task::JoinSet;

use crate::extract::{self, CapturedReply};
use crate::fetch::browser::Loaded;
use crate::fetch::{FetchError, FetchPolicy, Page};
use crate::matcher::{Item, Matcher};
use crate::model::{Brand, Listing};
use crate::platform::{BlockKind, FetchWith, PlatformDef};
use crate::seal::{Part, PartKind};
use crate::store::{AccountState, RunCounts, RunStatus, Store, StoreError};
use accounts::{Session, Sessions, Via};

mod writer;

pub(crate) use writer::Judge;
pub(crate) use writer::{Committed, PageWriter, PreparedPage};
pub use writer::{record_page, record_page_with_parts};

/// What stops a crawl as a whole (a page failing does not).
#[derive(Debug, thiserror::Error)]
pub enum CrawlError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Fetch(#[from] FetchError),
    /// The threads that read pages could not be started.
    #[error("cannot start the crawl's worker threads: {0}")]
    Threads(#[from] rayon::ThreadPoolBuildError),
    /// A platform's `base_url` override is not a URL.
    #[error("platform {platform}: base_url {url} is not a URL")]
    BaseUrl { platform: String, url: String },
    /// A platform asked for by name has no definition.
    #[error("no platform `{platform}`; known: {known}")]
    UnknownPlatform { platform: String, known: String },
    /// The rate limit may only be lifted for the fixture server on loopback.
    #[error("platform {platform}: the rate limit is only lifted for a loopback base_url")]
    NotLoopback { platform: String },
    /// A brand asked for by name is not in the registry.
    #[error("no brand `{0}` in the registry")]
    UnknownBrand(String),
    /// No keywords: neither given, nor marks or aliases in the registry, nor extra keywords.
    #[error("nothing to search for")]
    NothingToSearch,
    #[error("cannot build the matcher: {0}")]
    Matcher(String),
    #[error(transparent)]
    Notice(#[from] crate::notice::NoticeError),
    /// A browser profile directory could not be made.
    #[error("cannot make a browser profile directory: {0}")]
    Profile(#[source] std::io::Error),
    /// `evidence.tsa` is set but its CA certificate cannot be read.
    #[error(transparent)]
    Timestamp(#[from] crate::timestamp::TimestampError),
    /// A platform's accounts could not be opened (another secret key, a corrupt row).
    #[error("cannot open the {platform} accounts: {source}")]
    Accounts {
        platform: String,
        #[source]
        source: crate::accounts::AccountError,
    },
}

/// A platform ready to crawl: its definition, where to fetch from, and its sessions (one per
/// healthy account, or one anonymous). Built by [`Crawl::run`] from the settings [`plan`]
/// resolved.
struct Target {
    def: PlatformDef,
    base_url: Option<url::Url>,
    policy: FetchPolicy,
    sessions: Sessions,
    /// The path of the platform's login page as fetched: a fetch ending there met a login wall.
    login_path: Option<String>,
    /// Not crawled, and why: (`skipped` or `paused`, what to do).
    held: Option<(RunStatus, String)>,
    /// Screenshot flagged listings' item pages.
    screenshots: bool,
    /// Fingerprints listing photos.
    hasher: crate::images::ImageHasher,
}

impl Target {
    fn fetch_url(&self, real: &str) -> String {
        PlatformDef::fetch_url(real, self.base_url.as_ref())
    }

    /// How search pages are fetched: over HTTP, or in the browser keeping the API replies the
    /// definition's `capture` names.
    fn search_via(&self) -> Via<'_> {
        match &self.def.search {
            Some(rules) if rules.fetch == FetchWith::Browser => Via::Browser {
                capture: rules.capture.as_ref(),
                screenshot: false,
            },
            _ => Via::Http,
        }
    }

    /// How an item page is fetched: a flagged listing's in the browser with a screenshot (over
    /// HTTP when no browser can start, unless the definition needs one).
    fn detail_via(&self, flagged: bool) -> Via<'_> {
        let browser = self
            .def
            .detail
            .as_ref()
            .is_some_and(|d| d.fetch == FetchWith::Browser);
        match (browser, flagged && self.screenshots) {
            (true, screenshot) => Via::Browser {
                capture: None,
                screenshot,
            },
            (false, true) => Via::Screenshot,
            (false, false) => Via::Http,
        }
    }

    /// Whether `final_url` is the platform's login page (where a login redirect ends).
    fn is_login_page(&self, final_url: &str) -> bool {
        self.login_path
            .as_deref()
            .is_some_and(|login| url::Url::parse(final_url).is_ok_and(|u| u.path() == login))
    }
}

/// How one platform's run went.
#[derive(Debug, Clone, Serialize)]
pub struct RunSummary {
    pub platform: String,
    pub run_id: i64,
    pub status: RunStatus,
    pub counts: RunCounts,
    /// The first failure, if any, for the operator.
    pub error: Option<String>,
}

/// Search keywords for a registry: every mark, Chinese name and alias, lower-cased, deduplicated.
pub fn watch_keywords(brands: &[Brand], extra: &[String]) -> Vec<String> {
    let words = brands
        .iter()
        .flat_map(|b| {
            b.marks
                .iter()
                .map(|m| m.text.as_str())
                .chain(b.aliases.iter().map(String::as_str))
        })
        .chain(extra.iter().map(String::as_str))
        .map(|w| w.trim().to_lowercase())
        .filter(|w| !w.is_empty());
    words.collect::<BTreeSet<_>>().into_iter().collect()
}

/// Which item pages a crawl fetches.
#[derive(Debug, Clone, Copy)]
struct Details {
    /// Those of the listings it stores first.
    new: bool,
    /// Up to this many per platform of those earlier runs left unfetched.
    missing: u32,
    /// Up to this many listing photos per platform.
    images: u32,
}

/// Crawls every target for every keyword, one crawl run per platform, platforms in parallel.
/// Every listing seen is judged by `matcher` and its verdict stored with it.
async fn crawl(
    store: &Store,
    matcher: &Arc<Matcher>,
    targets: Vec<Target>,
    keywords: &[String],
    details: Details,
) -> Result<Vec<RunSummary>, CrawlError> {
    let judge: Arc<Judge> = {
        let matcher = matcher.clone();
        Arc::new(move |l: &Listing| matcher.check(&Item::from(l)))
    };
    let writer = PageWriter::start(store, judge);
    let cpu = Arc::new(CpuPool::new()?);
    let mut platforms = JoinSet::new();
    for target in targets {
        let run = Run {
            store: store.clone(),
            writer: writer.clone(),
            matcher: matcher.clone(),
            cpu: cpu.clone(),
            target: Arc::new(target),
            details,
        };
        let keywords = keywords.to_vec();
        platforms.spawn(async move { crawl_platform(run, keywords).await });
    }
    let mut summaries = Vec::new();
    while let Some(joined) = platforms.join_next().await {
        summaries.push(joined.expect("crawl task panicked")?);
    }
    summaries.sort_by(|a, b| a.platform.cmp(&b.platform));
    Ok(summaries)
}

/// What every page of one platform's run needs.
#[derive(Clone)]
struct Run {
    store: Store,
    writer: PageWriter,
    matcher: Arc<Matcher>,
    cpu: Arc<CpuPool>,
    target: Arc<Target>,
    details: Details,
}

impl Run {
    /// Runs CPU-bound work (decoding, parsing, judging, compressing) on the crawl's CPU pool.
    async fn on_cpu<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Target, &Matcher) -> T + Send + 'static,
    ) -> T {
        let (target, matcher) = (self.target.clone(), self.matcher.clone());
        self.cpu.run(move || work(&target, &matcher)).await
    }
}

/// Threads for the CPU-bound part of crawling, one per core, below normal priority.
///
/// Every page goes through the one page writer, whose round trips to SQLite's thread must not
/// queue for a core behind parsing, nor should the network's. The review UI, served from the
/// same process, stays responsive during a crawl for the same reason.
struct CpuPool {
    pool: rayon::ThreadPool,
}

impl CpuPool {
    fn new() -> Result<CpuPool, CrawlError> {
        let pool = rayon::ThreadPoolBuilder::new()
            .thread_name(|i| format!("markwatch-cpu-{i}"))
            .start_handler(|_| lower_priority())
            .build()?;
        Ok(CpuPool { pool })
    }

    async fn run<T: Send + 'static>(&self, work: impl FnOnce() -> T + Send + 'static) -> T {
        let (done, result) = oneshot::channel();
        self.pool.spawn(move || {
            let _ = done.send(std::panic::catch_unwind(std::panic::AssertUnwindSafe(work)));
        });
        match result.await.expect("the pool runs every job it is given") {
            Ok(value) => value,
            Err(panic) => std::panic::resume_unwind(panic),
        }
    }
}

/// Lowers the calling thread's priority by 10 nice steps: Linux gives each thread its own.
fn lower_priority() {
    #[cfg(target_os = "linux")]
    {
        use rustix::process::{getpriority_process, setpriority_process};
        let lowered = getpriority_process(None)
            .and_then(|nice| setpriority_process(None, (nice + 10).min(19)));
        if let Err(e) = lowered {
            tracing::debug!(error = %e, "cannot lower the crawl threads' priority");
        }
    }
}

async fn crawl_platform(mut run: Run, keywords: Vec<String>) -> Result<RunSummary, CrawlError> {
    let store = run.store.clone();
    let platform = run.target.def.platform.clone();
    // Listings stored before this run: those still without their item page were left so by
    // an earlier run. This run's own are fetched as it stores them.
    let earlier = store.last_listing_id().await?;
    let started = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let run_id = store.start_crawl_run(&platform, None).await?;
    if let Some((status, error)) = &run.target.held {
        // Quietly: a skipped or paused platform is no failure streak, and its incidents were
        // reported when its accounts stopped.
        tracing::warn!(%platform, run_id, ?status, %error, "platform not crawled");
        let counts = RunCounts::default();
        store
            .finish_crawl_run(run_id, &counts, *status, Some(error))
            .await?;
        return Ok(RunSummary {
            platform,
            run_id,
            status: *status,
            counts,
            error: Some(error.clone()),
        });
    }
    tracing::info!(%platform, run_id, keywords = keywords.len(), "crawl started");
    // Keywords run concurrently; the fetcher's own limits keep the pace polite.
    let mut tasks = JoinSet::new();
    for keyword in keywords {
        let run = run.clone();
        tasks.spawn(async move { crawl_keyword(&run, run_id, &keyword).await });
    }
    let mut counts = RunCounts::default();
    let mut error = None;
    while let Some(joined) = tasks.join_next().await {
        let (c, e) = joined.expect("keyword task panicked")?;
        counts += c;
        error = error.or(e);
    }
    if run.details.missing > 0 && run.target.def.detail.is_some() {
        let (c, e) = fetch_missing_details(&run, run_id, earlier).await?;
        counts += c;
        error = error.or(e);
    }
    if run.details.images > 0 && !run.target.sessions.all_stopped() {
        let (c, e) = fetch_images(&run, run_id).await?;
        counts += c;
        error = error.or(e);
    }
    // A photo can flag a listing after its item page was stored without a screenshot: the
    // page is taken again, with one, so every flagged listing's evidence shows it.
    if run.target.screenshots
        && run.details.missing > 0
        && run.target.def.detail.is_some()
        && !run.target.sessions.all_stopped()
    {
        let unshot = run
            .store
            .take_unshot_flagged(&run.target.def.platform, &started, run.details.missing)
            .await?;
        let (c, e) = fetch_item_pages(
            &run,
            run_id,
            unshot,
            "screenshots of photo-flagged listings",
        )
        .await?;
        counts += c;
        error = error.or(e);
    }
    let sessions = &run.target.sessions;
    sessions.record(&store).await?;
    let stops = sessions.stops_message();
    let status = if sessions.all_stopped() {
        // Every way in needs a person: what was read is kept, and the run says who must act.
        error = Some(format!(
            "paused: needs a person: {}",
            stops.as_deref().unwrap_or("every session stopped")
        ));
        RunStatus::Paused
    } else {
        if let Some(stops) = stops {
            error = Some(format!("needs a person: {stops}"));
        }
        match (counts.pages_ok, counts.pages_failed + counts.pages_blocked) {
            (0, bad) if bad > 0 => RunStatus::Failed,
            (_, 0) => RunStatus::Ok,
            _ => RunStatus::Partial,
        }
    };
    if sessions.anonymous() && status != RunStatus::Paused && counts.pages_ok > 0 {
        // An anonymous platform got through again: its challenge is over.
        store.platform_cleared(&platform).await?;
    }
    store
        .finish_crawl_run(run_id, &counts, status, error.as_deref())
        .await?;
    // Every page is in: the browsers end here (dropping them would kill them).
    if let Some(target) = Arc::get_mut(&mut run.target) {
        target.sessions.close().await;
    }
    tracing::info!(%platform, run_id, ?status, ?counts, "crawl finished");
    Ok(RunSummary {
        platform,
        run_id,
        status,
        counts,
        error,
    })
}

/// A search page as read, with what to store for it.
enum SearchRead {
    Listings {
        listings: Vec<Listing>,
        has_next: bool,
        truncated: bool,
    },
    /// Cut short, and to be fetched again: the listings after the cut are missing.
    Truncated,
    Unreadable(extract::ExtractError),
}

fn read_search(
    target: &Target,
    matcher: &Matcher,
    run_id: i64,
    page: &Page,
    text: &str,
    replies: &[CapturedReply<'_>],
    retry_truncated: bool,
) -> (SearchRead, PreparedPage) {
    let def = &target.def;
    let read = if replies.is_empty() {
        extract::extract_search(def, text, &page.final_url)
    } else {
        extract::extract_search_captured(def, text, replies, &page.final_url)
    };
    match read {
        Ok(result) if result.truncated && retry_truncated => {
            (SearchRead::Truncated, PreparedPage::evidence(run_id, page))
        }
        Ok(result) => {
            let listings: Vec<_> = result.listings.iter().map(|l| l.to_listing(def)).collect();
            let judge = |l: &Listing| matcher.check(&Item::from(l));
            let prepared = PreparedPage::search(run_id, page, listings.clone(), &judge);
            let read = SearchRead::Listings {
                listings,
                has_next: result.has_next,
                truncated: result.truncated,
            };
            (read, prepared)
        }
        // Evidence is kept even when the page can't be read.
        Err(e) => (
            SearchRead::Unreadable(e),
            PreparedPage::evidence(run_id, page),
        ),
    }
}

/// One keyword's result pages, in order, until the last page. Returns its counts and first error.
async fn crawl_keyword(
    run: &Run,
    run_id: i64,
    keyword: &str,
) -> Result<(RunCounts, Option<String>), CrawlError> {
    let target = &*run.target;
    let def = &target.def;
    let max_pages = def.pagination.as_ref().map_or(1, |p| p.max_pages.max(1));
    let mut counts = RunCounts::default();
    let mut error = None;
    let attempts = target.policy.max_attempts;
    // Pages handed to the writer: the next page is fetched while they wait for their commit.
    let mut uncommitted = Vec::new();
    let details = run.details.new && def.detail.is_some();
    'pages: for page_no in 1..=max_pages {
        let url = target.fetch_url(&def.search_url(keyword, page_no));
        let mut tries = 0;
        let (listings, has_next, committed, found_by) = loop {
            tries += 1;
            let retry_truncated = tries < attempts;
            let request = Request {
                url: &url,
                via: target.search_via(),
                prefer: None,
            };
            let read = fetch_read(
                run,
                run_id,
                request,
                &mut counts,
                &mut error,
                move |t, m, p, text, replies| {
                    read_search(t, m, run_id, p, text, replies, retry_truncated)
                },
            );
            let Some((read, prepared, session)) = read.await? else {
                break 'pages;
            };
            let committed = run.writer.submit(prepared).await?;
            match read {
                SearchRead::Listings {
                    listings,
                    has_next,
                    truncated,
                } => {
                    if truncated {
                        tracing::warn!(%url, kept = listings.len(), "page still truncated; keeping its complete listings");
                    }
                    break (listings, has_next, committed, session);
                }
                SearchRead::Truncated => {
                    uncommitted.push(committed);
                    counts.pages_retried += 1;
                    tracing::debug!(%url, tries, "truncated page; fetching again");
                }
                SearchRead::Unreadable(e) => {
                    uncommitted.push(committed);
                    counts.pages_failed += 1;
                    error.get_or_insert_with(|| e.to_string());
                    break 'pages;
                }
            }
        };
        counts.pages_ok += 1;
        if details {
            // Item pages are fetched for the listings this page stored first.
            let record = committed.wait().await?;
            record.count_into(&mut counts);
            // Each with the account whose search found it.
            for &(index, listing_id) in &record.new {
                let listing = &listings[index];
                let detail = fetch_detail(
                    run,
                    run_id,
                    listing_id,
                    listing,
                    Some(&found_by),
                    &mut counts,
                    &mut error,
                );
                uncommitted.extend(detail.await?);
            }
        } else {
            uncommitted.push(committed);
        }
        if !has_next {
            break;
        }
    }
    for committed in uncommitted {
        committed.wait().await?.count_into(&mut counts);
    }
    Ok((counts, error))
}

/// Fetches the item pages that listings up to id `upto` still lack, the least recently tried
/// first, at most `details.missing` of them, spread over the platform's concurrency. Each is
/// stored and judged as a new listing's item page is.
async fn fetch_missing_details(
    run: &Run,
    run_id: i64,
    upto: i64,
) -> Result<(RunCounts, Option<String>), CrawlError> {
    let platform = &run.target.def.platform;
    let missing = run
        .store
        .take_missing_details(platform, upto, run.details.missing)
        .await?;
    fetch_item_pages(run, run_id, missing, "item pages earlier runs left").await
}

/// Fetches the item pages of `listings` over the platform's lanes; `what` names them in the
/// log.
async fn fetch_item_pages(
    run: &Run,
    run_id: i64,
    listings: Vec<(i64, Listing)>,
    what: &'static str,
) -> Result<(RunCounts, Option<String>), CrawlError> {
    if listings.is_empty() {
        return Ok((RunCounts::default(), None));
    }
    let platform = &run.target.def.platform;
    tracing::info!(%platform, run_id, listings = listings.len(), "fetching {what}");
    in_lanes(
        run,
        listings,
        move |run, (listing_id, listing)| async move {
            let (mut counts, mut error) = (RunCounts::default(), None);
            let committed = fetch_detail(
                &run,
                run_id,
                listing_id,
                &listing,
                None,
                &mut counts,
                &mut error,
            )
            .await?;
            Ok((committed, counts, error))
        },
    )
    .await
}

/// Spreads `items` over the platform's lanes (as many as it may have requests in flight),
/// each lane fetching its share in turn with `fetch`; once a lane's pages are committed, sums
/// what they counted and keeps the first problem.
async fn in_lanes<T, F, Fut>(
    run: &Run,
    items: Vec<T>,
    fetch: F,
) -> Result<(RunCounts, Option<String>), CrawlError>
where
    T: Send + 'static,
    F: Fn(Run, T) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<
            Output = Result<(Option<Committed>, RunCounts, Option<String>), CrawlError>,
        > + Send,
{
    let lanes = run
        .target
        .sessions
        .concurrency()
        .clamp(1, items.len().max(1));
    let mut queues: Vec<Vec<T>> = (0..lanes).map(|_| Vec::new()).collect();
    for (at, item) in items.into_iter().enumerate() {
        queues[at % lanes].push(item);
    }
    let mut tasks = JoinSet::new();
    for queue in queues {
        let (run, fetch) = (run.clone(), fetch.clone());
        tasks.spawn(async move {
            let (mut counts, mut error) = (RunCounts::default(), None);
            let mut uncommitted = Vec::new();
            for item in queue {
                let (committed, c, e) = fetch(run.clone(), item).await?;
                counts += c;
                error = error.or(e);
                uncommitted.extend(committed);
            }
            for committed in uncommitted {
                committed.wait().await?.count_into(&mut counts);
            }
            Ok::<_, CrawlError>((counts, error))
        });
    }
    let (mut counts, mut error) = (RunCounts::default(), None);
    while let Some(joined) = tasks.join_next().await {
        let (c, e) = joined.expect("a crawl lane panicked")?;
        counts += c;
        error = error.or(e);
    }
    Ok((counts, error))
}

async fn fetch_detail(
    run: &Run,
    run_id: i64,
    listing_id: i64,
    listing: &Listing,
    found_by: Option<&Arc<Session>>,
    counts: &mut RunCounts,
    error: &mut Option<String>,
) -> Result<Option<Committed>, CrawlError> {
    let target = &*run.target;
    let url = target.fetch_url(&target.def.item_url(&listing.item_id));
    // Evidence of a flagged listing includes a screenshot of its item page.
    let flagged = run.matcher.check(&Item::from(listing)).verdict.is_flagged();
    let via = target.detail_via(flagged);
    let listing = listing.clone();
    let request = Request {
        url: &url,
        via,
        prefer: found_by,
    };
    let read = fetch_read(
        run,
        run_id,
        request,
        counts,
        error,
        move |t, m, page, text, _| match extract::extract_detail(&t.def, text, &page.final_url) {
            Ok(fields) => {
                let category = (!fields.category.is_empty()).then(|| fields.category.join(" > "));
                let known = Listing {
                    seller: fields.seller.clone().or_else(|| listing.seller.clone()),
                    category: category.clone().or_else(|| listing.category.clone()),
                    ..listing.clone()
                };
                let verdict = m.check(&Item::from(&known));
                let prepared = PreparedPage::detail(
                    run_id,
                    page,
                    listing_id,
                    known.seller,
                    known.category,
                    fields.images,
                    verdict,
                );
                (Ok(()), prepared)
            }
            Err(e) => (Err(e), PreparedPage::evidence(run_id, page)),
        },
    );
    let Some((read, prepared, _)) = read.await? else {
        return Ok(None);
    };
    match read {
        Ok(()) => counts.pages_ok += 1,
        Err(e) => {
            counts.pages_failed += 1;
            error.get_or_insert_with(|| e.to_string());
        }
    }
    Ok(Some(run.writer.submit(prepared).await?))
}

/// Fetches listing photos, judged again as each arrives: the main photos first, then, in a
/// second round, the galleries of the listings flagged by then. Photos are evidence like
/// pages, fetched through the platform's sessions at its pace; a photo that cannot be fetched
/// is tried again next run, and a wall stops the session as a page's would.
async fn fetch_images(run: &Run, run_id: i64) -> Result<(RunCounts, Option<String>), CrawlError> {
    let platform = &run.target.def.platform;
    let mut counts = RunCounts::default();
    let mut error = None;
    let mut budget = run.details.images;
    for _round in 0..2 {
        if budget == 0 || run.target.sessions.all_stopped() {
            break;
        }
        let wanted = run.store.take_images(platform, budget).await?;
        if wanted.is_empty() {
            break;
        }
        budget = budget.saturating_sub(wanted.len() as u32);
        tracing::info!(%platform, run_id, photos = wanted.len(), "fetching listing photos");
        let (c, e) = in_lanes(run, wanted, move |run, wanted| async move {
            let (mut counts, mut error) = (RunCounts::default(), None);
            let committed = fetch_image(&run, run_id, wanted, &mut counts, &mut error).await?;
            Ok((committed, counts, error))
        })
        .await?;
        counts += c;
        error = error.or(e);
    }
    Ok((counts, error))
}

/// Whether a photo URL may be fetched: http(s) to a named host. Pages are hostile, and a
/// photo URL pointing into the crawler's own network must not be followed.
fn photo_url_allowed(url: &str) -> bool {
    let Ok(u) = url::Url::parse(url) else {
        return false;
    };
    matches!(u.scheme(), "http" | "https")
        && matches!(u.host(), Some(url::Host::Domain(d)) if !d.eq_ignore_ascii_case("localhost"))
}

async fn fetch_image(
    run: &Run,
    run_id: i64,
    wanted: crate::store::WantedImage,
    counts: &mut RunCounts,
    error: &mut Option<String>,
) -> Result<Option<Committed>, CrawlError> {
    if !photo_url_allowed(&wanted.url) {
        run.store
            .image_failed(wanted.image_id, "not an http(s) URL on a named host")
            .await?;
        return Ok(None);
    }
    let url = run.target.fetch_url(&wanted.url);
    let image_id = wanted.image_id;
    let listing_id = wanted.listing_id;
    let listing = wanted.listing;
    // Photo fetches are not pages: only walls count in the run's page figures.
    let mut scratch = RunCounts::default();
    let request = Request {
        url: &url,
        via: Via::Http,
        prefer: None,
    };
    let read = fetch_read(
        run,
        run_id,
        request,
        &mut scratch,
        error,
        move |t, m, page, _, _| {
            let update = |state, error: Option<String>| crate::store::ImageUpdate {
                image_id,
                evidence_id: 0,
                state,
                sha256: None,
                phash: None,
                width: None,
                height: None,
                error,
            };
            match t.hasher.fingerprint(&page.body, page.content_type()) {
                Ok(print) => {
                    let mut known = listing.clone();
                    known.image_hashes.push(print.phash);
                    let verdict = m.check(&Item::from(&known));
                    let done = crate::store::ImageUpdate {
                        sha256: Some(print.sha256),
                        phash: Some(print.phash as i64),
                        width: Some(print.width),
                        height: Some(print.height),
                        ..update("hashed", None)
                    };
                    let prepared =
                        PreparedPage::image(run_id, page, done, listing_id, Some(verdict));
                    (Ok(()), prepared)
                }
                Err(e) => {
                    let refused = update("refused", Some(e.to_string()));
                    let prepared = PreparedPage::image(run_id, page, refused, listing_id, None);
                    (Err(e), prepared)
                }
            }
        },
    );
    let outcome = read.await?;
    counts.pages_blocked += scratch.pages_blocked;
    let Some((read, prepared, _)) = outcome else {
        run.store
            .image_failed(image_id, "the photo could not be fetched")
            .await?;
        return Ok(None);
    };
    if let Err(e) = read {
        tracing::warn!(url = %wanted.url, error = %e, "photo refused");
    }
    Ok(Some(run.writer.submit(prepared).await?))
}

enum Fetched<T> {
    Read(T),
    /// A captcha or login wall, kept as evidence.
    Wall(BlockKind, Box<PreparedPage>),
}

/// A page to fetch: where, how (HTTP, browser, screenshot), and the session to use while it
/// can (the account whose search found a listing); any other session otherwise.
#[derive(Clone, Copy)]
struct Request<'a> {
    url: &'a str,
    via: Via<'a>,
    prefer: Option<&'a Arc<Session>>,
}

/// Fetches a page through the platform's next session, then decodes it and hands it to `read`
/// on the CPU pool. `None` means give up on this page: it is counted, and the evidence of each
/// wall is kept.
///
/// A login wall expires the account and the page is tried on the next one. A challenge stops
/// the account (or, without accounts, the platform's run) and the page is given up: a
/// challenge is never retried through another account or proxy. An anonymous login wall is
/// backed off from, as walls lift with time.
async fn fetch_read<T, F>(
    run: &Run,
    run_id: i64,
    request: Request<'_>,
    counts: &mut RunCounts,
    error: &mut Option<String>,
    read: F,
) -> Result<Option<(T, PreparedPage, Arc<Session>)>, CrawlError>
where
    T: Send + 'static,
    F: Fn(&Target, &Matcher, &Page, &str, &[CapturedReply<'_>]) -> (T, PreparedPage)
        + Clone
        + Send
        + 'static,
{
    let Request { url, via, prefer } = request;
    let policy = &run.target.policy;
    let mut walls = 0;
    while walls < policy.max_attempts {
        // `prefer` while it can still fetch, else the next. Every session stopped: the run is
        // paused, and says so at its end.
        let preferred = prefer.filter(|s| Sessions::usable(s)).cloned();
        let Some(session) = preferred.or_else(|| run.target.sessions.next()) else {
            return Ok(None);
        };
        let loaded = match session.fetch(url, via, &run.target.def.headers).await {
            Ok(loaded) => loaded,
            Err(e) => {
                session.count(false);
                tracing::warn!(%url, error = %e, "page failed");
                counts.pages_failed += 1;
                error.get_or_insert(e);
                return Ok(None);
            }
        };
        if loaded.page.attempts > 1 {
            counts.pages_retried += 1;
        }
        let wall_url = loaded.page.final_url.clone();
        let account = session.account.as_ref().map(|a| a.name.clone());
        let read = read.clone();
        let outcome = run
            .on_cpu(move |target, matcher| {
                let def = &target.def;
                let page = &loaded.page;
                let decoded = extract::decode_page(&page.body, page.content_type(), &def.encoding);
                let texts: Vec<(&str, String)> = loaded
                    .captures
                    .iter()
                    .map(|c| {
                        let ctype = header(&c.headers, "content-type");
                        (c.url.as_str(), extract::decode_capture(&c.body, ctype))
                    })
                    .collect();
                let replies: Vec<CapturedReply<'_>> = texts
                    .iter()
                    .map(|(url, body)| CapturedReply { url, body })
                    .collect();
                let kind =
                    extract::detect_block_captured(def, &decoded.text, &replies).or_else(|| {
                        target
                            .is_login_page(&page.final_url)
                            .then_some(BlockKind::Login)
                    });
                let parts = evidence_parts(&loaded);
                match kind {
                    None => {
                        let (read, prepared) = read(target, matcher, page, &decoded.text, &replies);
                        Fetched::Read((read, prepared.with_parts(parts).fetched_by(account)))
                    }
                    Some(kind) => Fetched::Wall(
                        kind,
                        Box::new(
                            PreparedPage::evidence(run_id, page)
                                .with_parts(parts)
                                .fetched_by(account),
                        ),
                    ),
                }
            })
            .await;
        let (kind, evidence) = match outcome {
            Fetched::Read((read, prepared)) => {
                session.count(true);
                return Ok(Some((read, prepared, session)));
            }
            Fetched::Wall(kind, evidence) => (kind, evidence),
        };
        session.count(false);
        counts.pages_blocked += 1;
        run.writer.store(*evidence).await?;
        if stop_for_person(run, &session, kind, &wall_url).await? {
            if kind == BlockKind::Login {
                tracing::warn!(%url, "login wall: the account expired; trying the page on another");
                continue;
            }
            tracing::warn!(%url, "challenged: stopping, keeping what was read");
            return Ok(None);
        }
        // Walls lift with time, not with hammering: wait longer each time.
        walls += 1;
        let wait = policy
            .base_backoff
            .saturating_mul(4u32.saturating_pow(walls))
            .min(policy.max_backoff);
        tracing::warn!(%url, ?kind, ?wait, "blocked; backing off");
        error.get_or_insert_with(|| format!("{url}: blocked by a {kind:?} wall"));
        tokio::time::sleep(wait).await;
    }
    Ok(None)
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// A browser page's evidence beyond its DOM: each API reply its script received, and the
/// screenshot when one was taken.
fn evidence_parts(loaded: &Loaded) -> Vec<Part> {
    let mut parts: Vec<Part> = loaded
        .captures
        .iter()
        .map(|c| Part {
            kind: PartKind::Capture,
            url: c.url.clone(),
            content_type: header(&c.headers, "content-type")
                .unwrap_or("application/octet-stream")
                .to_owned(),
            body: c.body.clone(),
            fetched_at: c.fetched_at,
        })
        .collect();
    if let Some(png) = &loaded.screenshot {
        parts.push(Part {
            kind: PartKind::Screenshot,
            url: loaded.page.final_url.clone(),
            content_type: "image/png".to_owned(),
            body: png.clone(),
            fetched_at: loaded.page.fetched_at,
        });
    }
    parts
}

/// Stops `session` where only a person can help, recording why: an account's login wall
/// (expired) or challenge (challenged), or a challenge to an anonymous platform. Returns false
/// for an anonymous login wall, which is backed off from instead.
async fn stop_for_person(
    run: &Run,
    session: &Session,
    kind: BlockKind,
    wall_url: &str,
) -> Result<bool, CrawlError> {
    let sessions = &run.target.sessions;
    let platform = &run.target.def.platform;
    let state = match kind {
        BlockKind::Login => AccountState::Expired,
        BlockKind::Captcha => AccountState::Challenged,
    };
    match &session.account {
        Some(account) => {
            if sessions.stop(session, state, wall_url) {
                run.store
                    .account_needs_person(account.id, state, wall_url)
                    .await?;
                tracing::warn!(%platform, account = %account.name, ?state, "account needs a person");
            }
            Ok(true)
        }
        None if kind == BlockKind::Captcha => {
            if sessions.stop(session, state, wall_url) {
                run.store.platform_challenged(platform, wall_url).await?;
                tracing::warn!(%platform, "challenged without an account: the run stops");
            }
            Ok(true)
        }
        None => Ok(false),
    }
}
