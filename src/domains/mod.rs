//! The .CN domain watch: for each brand, the names a squatter would register ([`candidates`]),
//! looked up at a bounded rate ([`DomainResolver`]); each registered one recorded with its
//! records and when it was first seen; a live site's home page fetched politely, sealed as
//! evidence and judged ([`judge`]); a flagged domain stored as a listing of the `domains`
//! definition, so it is drafted (a CNDRP complaint), alerted and reviewed like any listing.

mod candidates;
mod judge;
mod resolve;

use std::collections::HashMap;
use std::sync::Arc;

use futures_util::StreamExt;
use serde::Serialize;

pub use candidates::{Candidate, CandidateOptions, Rule, candidates};
pub use resolve::{DomainResolver, Lookup, Records};

use crate::config::Config;
use crate::crawl::{Pace, RunSummary};
use crate::fetch::{Fetcher, Identity, Page};
use crate::matcher::Matcher;
use crate::model::{Brand, Listing, Outcome, Verdict};
use crate::platform::{DefKind, PlatformDef};
use crate::store::{DomainSighting, RunCounts, RunStatus, Store, StoreError};

/// The platform key of domain findings: their listings, notices and the watch's crawl runs.
pub const PLATFORM: &str = crate::model::DOMAINS_PLATFORM;

/// Lookups in flight at once; the rate limiter sets the pace.
const LOOKUPS_IN_FLIGHT: usize = 32;

/// How many lookup failures a report names (the count is always whole).
const FAILURES_NAMED: usize = 20;

#[derive(Debug, thiserror::Error)]
pub enum DomainError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("DNS resolver: {0}")]
    Resolver(String),
    #[error("no brand `{0}` in the registry")]
    UnknownBrand(String),
    #[error(
        "no definition of kind `domains` among the crawler definitions (crawlers/domains.toml)"
    )]
    NoDefinition,
    #[error(transparent)]
    Fetch(#[from] crate::fetch::FetchError),
}

/// What one run of the watch did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct DomainReport {
    pub brands: usize,
    pub candidates: usize,
    /// Registered names found (web, mail only or parked).
    pub registered: usize,
    /// Registered names not seen before (or seen gone since): the news.
    pub new: Vec<String>,
    /// Names stored as registered that no longer exist.
    pub gone: u64,
    /// Names judged infringing or suspect in this run.
    pub flagged: Vec<String>,
    /// Lookups that failed (timeouts, SERVFAIL): nothing about those names changed.
    pub failed: usize,
    /// The first failures, `name: why`.
    pub failures: Vec<String>,
}

/// Runs the watch for `brands` (every brand when empty): looks every candidate up, records what
/// is registered, fetches and judges live sites, and stores the verdicts. Returns the run's
/// summary (a crawl run of [`PLATFORM`]) and the details.
pub async fn run(
    store: &Store,
    config: &Config,
    defs: &[PlatformDef],
    matcher: Arc<Matcher>,
    brands: &[String],
    pace: Pace,
) -> Result<(RunSummary, DomainReport), DomainError> {
    let def = defs
        .iter()
        .find(|d| d.kind == DefKind::Domains)
        .ok_or(DomainError::NoDefinition)?;
    let all = store.brands().await?;
    let chosen: Vec<Brand> = if brands.is_empty() {
        all
    } else {
        let mut out = Vec::new();
        for name in brands {
            match all.iter().find(|b| &b.name == name) {
                Some(b) => out.push(b.clone()),
                None => return Err(DomainError::UnknownBrand(name.clone())),
            }
        }
        out
    };
    let resolver = Arc::new(DomainResolver::new(&config.domains)?);
    let fetcher = home_fetcher(config, def, pace, &resolver)?;
    let run_id = store.start_crawl_run(PLATFORM, None).await?;
    let watch = Watcher {
        store,
        config,
        def,
        matcher: &matcher,
        resolver: &resolver,
        fetcher: &fetcher,
        run_id,
        options: CandidateOptions {
            extra_tlds: config.domains.extra_tlds.clone(),
        },
    };
    let mut p = Progress {
        report: DomainReport {
            brands: chosen.len(),
            ..DomainReport::default()
        },
        ..Progress::default()
    };
    let mut outcome = Ok(());
    for brand in &chosen {
        outcome = watch.brand(brand, &mut p).await;
        if p.dead || outcome.is_err() {
            break;
        }
    }
    // The run is closed whatever happened, with what it stored so far.
    if let Err(e) = &outcome {
        p.first_error = Some(e.to_string());
    }
    let status = if outcome.is_err() || p.dead {
        RunStatus::Failed
    } else if p.report.failed == 0 && p.counts.pages_failed == 0 {
        RunStatus::Ok
    } else {
        RunStatus::Partial
    };
    store
        .finish_crawl_run(run_id, &p.counts, status, p.first_error.as_deref())
        .await?;
    outcome?;
    let report = p.report;
    if report.failed > 0 {
        tracing::warn!(failed = report.failed, "domain watch: some lookups failed");
    }
    tracing::info!(
        candidates = report.candidates,
        registered = report.registered,
        new = report.new.len(),
        flagged = report.flagged.len(),
        "domain watch done"
    );
    Ok((
        RunSummary {
            platform: PLATFORM.to_owned(),
            run_id,
            status,
            counts: p.counts,
            error: p.first_error,
        },
        report,
    ))
}

/// One run's tools.
struct Watcher<'a> {
    store: &'a Store,
    config: &'a Config,
    def: &'a PlatformDef,
    matcher: &'a Matcher,
    resolver: &'a Arc<DomainResolver>,
    fetcher: &'a Fetcher,
    run_id: i64,
    options: CandidateOptions,
}

/// What a run has done so far.
#[derive(Default)]
struct Progress {
    report: DomainReport,
    counts: RunCounts,
    first_error: Option<String>,
    /// Lookups the name server answered (either way); none after a full round of failures
    /// means it is down, and the run stops rather than time out on every name.
    answered: usize,
    dead: bool,
}

impl Watcher<'_> {
    /// Looks `brand`'s candidates up, then fetches, judges and stores the registered ones.
    async fn brand(&self, brand: &Brand, p: &mut Progress) -> Result<(), DomainError> {
        let (store, config, def) = (self.store, self.config, self.def);
        let stored: HashMap<String, String> = store
            .domains(Some(&brand.name))
            .await?
            .into_iter()
            .map(|d| (d.domain, d.state))
            .collect();
        let list = candidates(brand, &self.options);
        p.report.candidates += list.len();
        let mut lookups = futures_util::stream::iter(list)
            .map(|c| {
                let resolver = self.resolver.clone();
                async move {
                    let found = resolver.lookup(&c.domain).await;
                    (c, found)
                }
            })
            .buffer_unordered(LOOKUPS_IN_FLIGHT);
        let mut gone = Vec::new();
        let mut registered = Vec::new();
        while let Some((c, found)) = lookups.next().await {
            match found {
                Lookup::Unregistered => {
                    p.answered += 1;
                    if stored.get(&c.domain).is_some_and(|s| s != "gone") {
                        gone.push(c.domain);
                    }
                }
                Lookup::Failed(why) => {
                    p.report.failed += 1;
                    p.counts.pages_failed += 1;
                    if p.report.failures.len() < FAILURES_NAMED {
                        p.report.failures.push(format!("{}: {why}", c.domain));
                    }
                    p.first_error
                        .get_or_insert_with(|| format!("{}: {why}", c.domain));
                    if p.answered == 0 && p.report.failed >= LOOKUPS_IN_FLIGHT {
                        p.dead = true;
                        p.first_error = Some(format!(
                            "the name server ({}) answered none of the first {} lookups: {why}",
                            config.domains.resolver, p.report.failed
                        ));
                        break;
                    }
                }
                Lookup::Registered(records) => {
                    p.answered += 1;
                    registered.push((c, records));
                }
            }
        }
        drop(lookups);
        p.report.gone += store.domains_gone(&gone).await?;
        p.report.registered += registered.len();
        // Registered names in a stable order, so two runs store alike.
        registered.sort_by(|a, b| a.0.domain.cmp(&b.0.domain));
        for (c, records) in registered {
            let url = home_url(def, config, &c.domain);
            let home = if records.state() == "web" {
                match self.fetcher.fetch(&url).await {
                    Ok(page) => Some(page),
                    Err(e) => {
                        p.counts.pages_failed += 1;
                        p.first_error.get_or_insert_with(|| e.to_string());
                        None
                    }
                }
            } else {
                None
            };
            let read = home.as_ref().map(judge::HomePage::read);
            let verdict = judge::judge(self.matcher, brand, &c, &records, read.as_ref());
            let mut listing_key = None;
            if let Some(verdict) = &verdict {
                let page = match &home {
                    Some(page) => page.clone(),
                    None => dns_page(&c, &records),
                };
                let listing = Listing {
                    platform: PLATFORM.to_owned(),
                    item_id: c.domain.clone(),
                    url,
                    // The domain first: a reviewer tells cases apart by it.
                    title: read
                        .as_ref()
                        .map(|h| h.title.clone())
                        .filter(|t| !t.is_empty() && *t != c.display && *t != c.domain)
                        .map_or_else(|| c.display.clone(), |t| format!("{} — {t}", c.display)),
                    price: read.as_ref().and_then(judge::HomePage::lowest_price),
                    currency: "CNY".to_owned(),
                    ..Listing::default()
                };
                let judged = verdict.clone();
                let record = crate::crawl::record_page(
                    store,
                    self.run_id,
                    &page,
                    std::slice::from_ref(&listing),
                    &move |_: &Listing| -> Verdict { judged.clone() },
                )
                .await?;
                record.count_into(&mut p.counts);
                p.counts.pages_ok += 1;
                if verdict.verdict != Outcome::Clear {
                    p.report.flagged.push(c.display.clone());
                }
                listing_key = Some(c.domain.clone());
            }
            let new = store
                .record_domain(&DomainSighting {
                    domain: &c.domain,
                    display: &c.display,
                    brand: &brand.name,
                    rule: c.rule.as_str(),
                    source: &c.source,
                    state: records.state(),
                    records: serde_json::to_string(&records).unwrap_or_default(),
                    listing: listing_key.as_deref().map(|k| (PLATFORM, k)),
                })
                .await?;
            if new {
                p.report.new.push(c.display.clone());
            }
        }
        Ok(())
    }
}

/// The home page's URL: the definition's `urls.item` with the domain, on `domains.http_port`
/// when set.
fn home_url(def: &PlatformDef, config: &Config, domain: &str) -> String {
    let url = def.urls.item.replace("{item_id}", domain);
    match (config.domains.http_port, url::Url::parse(&url)) {
        (Some(port), Ok(mut parsed)) => {
            let _ = parsed.set_port(Some(port));
            parsed.to_string()
        }
        _ => url,
    }
}

/// The sites are strangers' servers: the definition's pace and retries, through the watch's
/// own name server.
fn home_fetcher(
    config: &Config,
    def: &PlatformDef,
    pace: Pace,
    resolver: &Arc<DomainResolver>,
) -> Result<Fetcher, DomainError> {
    // `platforms.domains.requests_per_second` and `concurrency` override the definition, as
    // for any platform.
    let overrides = config.platforms.get(PLATFORM);
    let requests_per_second = match pace {
        Pace::Polite => Some(
            overrides
                .and_then(|p| p.requests_per_second)
                .unwrap_or(def.rate_limit.requests_per_second),
        )
        .filter(|r| *r > 0.0),
        Pace::UnlimitedOnLoopback => None,
    };
    let concurrency = overrides
        .and_then(|p| p.concurrency)
        .unwrap_or(def.rate_limit.concurrency);
    let policy = crate::crawl::fetch_policy(def, config, requests_per_second, concurrency);
    Ok(Fetcher::with_identity(
        policy,
        Identity {
            dns: Some(resolver.for_http(pace == Pace::UnlimitedOnLoopback)),
            ..Identity::default()
        },
    )?)
}

/// A domain without a website is evidenced by its DNS answer, kept as received.
fn dns_page(c: &Candidate, records: &Records) -> Page {
    let url = format!("dns:{}", c.domain);
    Page {
        url: url.clone(),
        final_url: url,
        status: 200,
        headers: vec![("content-type".to_owned(), "application/json".to_owned())],
        body: serde_json::to_vec_pretty(&serde_json::json!({
            "domain": c.domain,
            "display": c.display,
            "records": records,
        }))
        .unwrap_or_default(),
        fetched_at: chrono::Utc::now(),
        attempts: 1,
    }
}
