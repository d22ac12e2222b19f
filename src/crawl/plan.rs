//! The one way a crawl is built and started, whoever starts it: `crawl --once`, the daemon's
//! watches, the demo and the benchmark.
//!
//! [`Crawl::builder`] resolves every platform's settings from the configuration and the
//! definitions in one place (which platforms, `base_url`, pace, retries, timeout, user agent);
//! [`Crawl::run`] then runs the whole pipeline once: keywords → matcher → fetch → extract →
//! store → match (the matches' alert events wait in the outbox for the sender) → draft notices.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use tokio::sync::{Mutex, OwnedMutexGuard};
use url::Url;

use super::accounts::{BrowserPlan, Sessions, healthy, no_account_message};
use super::{CrawlError, RunSummary, Target, watch_keywords};
use crate::accounts::open_accounts;
use crate::config::Config;
use crate::fetch::FetchPolicy;
use crate::matcher::{MatchSettings, Matcher};
use crate::notice::{self, DraftSummary};
use crate::platform::{FetchWith, PlatformDef};
use crate::secrets::SecretKey;
use crate::store::{AllowRulesStamp, RegistryStamp, RunStatus, Store};
use crate::timestamp::{StampOutcome, Tsa};

/// Requests in flight per platform when the rate limit is lifted, unless
/// `platforms.<name>.concurrency` says otherwise.
const UNPACED_CONCURRENCY: u32 = 16;

/// How fast a crawl may fetch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Pace {
    /// Each platform's rate limit: its definition's `rate_limit`, or
    /// `platforms.<name>.requests_per_second` and `concurrency` where the configuration sets
    /// them (a rate of 0 means no limit).
    #[default]
    Polite,
    /// No rate limit at all, for the fixture server on loopback (benchmarks, the demo): the
    /// build is refused for a platform fetched from anywhere else.
    /// `platforms.<name>.concurrency` still caps the requests in flight (16 otherwise).
    UnlimitedOnLoopback,
}

/// What to search for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Search {
    /// These words, as given (`crawl --keyword`, a watch's own keywords).
    Keywords(Vec<String>),
    /// The marks and aliases of these brands (of the whole registry when empty), plus
    /// `crawl.extra_keywords`. Read from the registry at each run.
    Brands(Vec<String>),
}

/// One platform's effective settings, as its fetcher is built from them.
#[derive(Debug, Clone, Serialize)]
pub struct PlatformSettings {
    pub platform: String,
    /// `platforms.<name>.enabled`: whether the platform is crawled unless chosen by name.
    pub enabled: bool,
    /// Where pages are fetched from instead of the real hosts.
    pub base_url: Option<String>,
    /// Sustained requests per second; `None` for no limit.
    pub requests_per_second: Option<f64>,
    /// Requests in flight at once.
    pub concurrency: usize,
    pub max_attempts: u32,
    pub base_backoff_ms: u64,
    pub max_backoff_ms: u64,
    pub timeout_secs: f64,
    pub user_agent: String,
    /// Crawled only through logged-in accounts (`[login] required`, or
    /// `platforms.<name>.login_required`).
    pub login_required: bool,
}

/// One crawl per platform at a time among the crawls sharing these locks, whichever asks: the
/// platform's pace holds across them. Cheap to clone.
#[derive(Debug, Clone, Default)]
pub(crate) struct PlatformLocks {
    locks: Arc<std::sync::Mutex<BTreeMap<String, Arc<Mutex<()>>>>>,
}

impl PlatformLocks {
    /// Waits for every platform's lock, taken in name order so two crawls never deadlock.
    async fn lock(&self, platforms: &[String]) -> Vec<OwnedMutexGuard<()>> {
        let mut names = platforms.to_vec();
        names.sort();
        names.dedup();
        let locks: Vec<_> = {
            let mut map = self.locks.lock().unwrap_or_else(|e| e.into_inner());
            names
                .iter()
                .map(|n| map.entry(n.clone()).or_default().clone())
                .collect()
        };
        let mut guards = Vec::with_capacity(locks.len());
        for lock in locks {
            guards.push(lock.lock_owned().await);
        }
        guards
    }
}

/// Builds a [`Crawl`]; see [`Crawl::builder`].
pub struct CrawlBuilder<'a> {
    config: &'a Config,
    defs: Vec<PlatformDef>,
    platforms: Option<Vec<String>>,
    pace: Pace,
    fetch_details: bool,
    draft_notices: bool,
    matcher: Option<Arc<Matcher>>,
    locks: Option<PlatformLocks>,
    secret_key: Option<SecretKey>,
}

impl CrawlBuilder<'_> {
    /// Open the platforms' accounts with this key [default: none, so no account is used and a
    /// platform that needs one is skipped].
    pub fn secret_key(mut self, key: SecretKey) -> Self {
        self.secret_key = Some(key);
        self
    }

    /// Crawl these platforms, enabled or not [default: every enabled platform].
    pub fn platforms(mut self, names: &[String]) -> Self {
        self.platforms = Some(names.to_vec());
        self
    }

    /// How fast to fetch [default: [`Pace::Polite`]].
    pub fn pace(mut self, pace: Pace) -> Self {
        self.pace = pace;
        self
    }

    /// Fetch item pages for listings seen first, and those earlier runs left unfetched (up to
    /// `crawl.missing_item_pages_per_run`) [default: yes].
    pub fn fetch_details(mut self, yes: bool) -> Self {
        self.fetch_details = yes;
        self
    }

    /// Turn new matches into draft notices after the crawl [default: yes]. Off only where
    /// the crawl alone is measured or tested (the benchmark times fetch..store).
    pub fn draft_notices(mut self, yes: bool) -> Self {
        self.draft_notices = yes;
        self
    }

    /// Judge listings with this matcher instead of one built from the registry at each run.
    pub fn matcher(mut self, matcher: Arc<Matcher>) -> Self {
        self.matcher = Some(matcher);
        self
    }

    /// Crawl a platform only while no other crawl sharing `locks` does.
    pub(crate) fn exclusive(mut self, locks: PlatformLocks) -> Self {
        self.locks = Some(locks);
        self
    }

    /// Resolves each chosen platform's settings. Fails on an unknown platform, a `base_url`
    /// that is not a URL, or [`Pace::UnlimitedOnLoopback`] for a platform not on loopback.
    pub fn build(self) -> Result<Crawl, CrawlError> {
        let config = self.config;
        if let Some(wanted) = &self.platforms {
            let crawlable = crate::platform::crawlable(&self.defs);
            for name in wanted {
                if !crawlable.contains(name) {
                    return Err(CrawlError::UnknownPlatform {
                        platform: name.clone(),
                        known: crawlable.join(", "),
                    });
                }
            }
        }
        let mut platforms = Vec::new();
        for def in self
            .defs
            .iter()
            .filter(|d| d.kind == crate::platform::DefKind::Platform)
        {
            let overrides = config.platforms.get(&def.platform);
            let enabled = overrides.is_none_or(|p| p.enabled);
            let chosen = match &self.platforms {
                Some(wanted) => wanted.contains(&def.platform),
                None => enabled,
            };
            if !chosen {
                continue;
            }
            let base_url = overrides
                .and_then(|p| p.base_url.as_deref())
                .map(|u| {
                    Url::parse(u).map_err(|_| CrawlError::BaseUrl {
                        platform: def.platform.clone(),
                        url: u.to_owned(),
                    })
                })
                .transpose()?;
            let concurrency = overrides.and_then(|p| p.concurrency);
            let (requests_per_second, concurrency) = match self.pace {
                Pace::Polite => {
                    let rps = overrides
                        .and_then(|p| p.requests_per_second)
                        .unwrap_or(def.rate_limit.requests_per_second);
                    let n = concurrency.unwrap_or(def.rate_limit.concurrency);
                    // A rate of 0 is no limit (`platforms.<name>.requests_per_second = 0`).
                    ((rps > 0.0).then_some(rps), n)
                }
                Pace::UnlimitedOnLoopback => {
                    if !base_url.as_ref().is_some_and(is_loopback) {
                        return Err(CrawlError::NotLoopback {
                            platform: def.platform.clone(),
                        });
                    }
                    (None, concurrency.unwrap_or(UNPACED_CONCURRENCY))
                }
            };
            let policy = fetch_policy(def, config, requests_per_second, concurrency);
            let login_required = overrides
                .and_then(|p| p.login_required)
                .unwrap_or_else(|| def.login.as_ref().is_some_and(|l| l.required));
            // `platforms.<name>.fetch` overrides how both kinds of page are fetched.
            let mut def = def.clone();
            if let Some(with) = overrides.and_then(|p| p.fetch) {
                if let Some(rules) = def.search.as_mut() {
                    rules.fetch = with;
                }
                if let Some(rules) = def.detail.as_mut() {
                    rules.fetch = with;
                }
            }
            platforms.push(Planned {
                def,
                enabled,
                base_url,
                policy,
                login_required,
            });
        }
        let tsa = match &config.evidence.tsa {
            Some(tsa) => Some(Arc::new(Tsa::from_config(tsa, &config.crawl.user_agent)?)),
            None => None,
        };
        Ok(Crawl {
            platforms,
            defs: self.defs,
            tsa,
            extra_keywords: config.crawl.extra_keywords.clone(),
            rates: config.matching.rates.clone(),
            fetch_details: self.fetch_details,
            missing_details: config.crawl.missing_item_pages_per_run,
            images: config.crawl.images_per_run,
            draft_notices: self.draft_notices,
            matcher: self.matcher,
            locks: self.locks,
            secret_key: self.secret_key,
            browser: BrowserPlan {
                executable: config.crawl.browser.executable.clone(),
                tabs: config.crawl.browser.tabs,
                page_timeout: Duration::from_secs(config.crawl.browser.page_timeout_secs),
            },
            screenshots: config.crawl.browser.screenshots,
        })
    }
}

fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
        Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        None => false,
    }
}

/// One chosen platform, resolved.
struct Planned {
    def: PlatformDef,
    enabled: bool,
    base_url: Option<Url>,
    policy: FetchPolicy,
    login_required: bool,
}

impl Planned {
    fn settings(&self, policy: &FetchPolicy) -> PlatformSettings {
        PlatformSettings {
            platform: self.def.platform.clone(),
            enabled: self.enabled,
            base_url: self.base_url.as_ref().map(Url::to_string),
            requests_per_second: policy.requests_per_second,
            concurrency: policy.concurrency,
            max_attempts: policy.max_attempts,
            base_backoff_ms: policy.base_backoff.as_millis() as u64,
            max_backoff_ms: policy.max_backoff.as_millis() as u64,
            timeout_secs: policy.timeout.as_secs_f64(),
            user_agent: policy.user_agent.clone(),
            login_required: self.login_required,
        }
    }

    /// The platform's target for one run: a session per healthy account, or one anonymous
    /// session where no login is required; held (not crawled) when login is required and no
    /// account is healthy.
    /// A browser is planned for each session when the definition fetches pages with one, or
    /// when `screenshots` (of flagged listings' item pages) are wanted; it starts at its
    /// first page.
    async fn target(
        &self,
        store: &Store,
        key: Option<&SecretKey>,
        browser: &BrowserPlan,
        screenshots: bool,
    ) -> Result<Target, CrawlError> {
        let platform = &self.def.platform;
        let accounts = match key {
            Some(key) => open_accounts(store, key, platform, None)
                .await
                .map_err(|source| CrawlError::Accounts {
                    platform: platform.clone(),
                    source,
                })?,
            None => Vec::new(),
        };
        let usable: Vec<_> = accounts.iter().filter(|a| healthy(a)).cloned().collect();
        let held = (self.login_required && usable.is_empty()).then(|| {
            let status = if accounts.is_empty() {
                RunStatus::Skipped
            } else {
                RunStatus::Paused
            };
            (status, no_account_message(platform, &accounts))
        });
        let login_path = self.def.login.as_ref().and_then(|l| {
            let fetched = PlatformDef::fetch_url(&l.url, self.base_url.as_ref());
            Url::parse(&fetched).ok().map(|u| u.path().to_owned())
        });
        let uses_browser = self
            .def
            .search
            .as_ref()
            .is_some_and(|r| r.fetch == FetchWith::Browser)
            || self
                .def
                .detail
                .as_ref()
                .is_some_and(|r| r.fetch == FetchWith::Browser)
            || screenshots;
        let browser = uses_browser.then_some(browser);
        Ok(Target {
            sessions: Sessions::new(
                platform,
                &self.policy,
                self.base_url.as_ref(),
                &usable,
                browser,
            )?,
            screenshots,
            hasher: crate::images::ImageHasher::new(),
            def: self.def.clone(),
            base_url: self.base_url.clone(),
            policy: self.policy.clone(),
            login_path,
            held,
        })
    }
}

/// A crawl ready to run: platforms chosen, every setting resolved. Reusable: each
/// [`run`](Crawl::run) gets fresh HTTP clients.
pub struct Crawl {
    platforms: Vec<Planned>,
    /// Every loaded definition: drafting groups every platform's open matches.
    defs: Vec<PlatformDef>,
    extra_keywords: Vec<String>,
    fetch_details: bool,
    /// Item pages left unfetched by earlier runs to fetch per platform and run.
    missing_details: u32,
    /// `crawl.images_per_run`.
    images: u32,
    draft_notices: bool,
    matcher: Option<Arc<Matcher>>,
    /// `matching.rates`, for a matcher built at each run.
    rates: BTreeMap<String, f64>,
    locks: Option<PlatformLocks>,
    secret_key: Option<SecretKey>,
    browser: BrowserPlan,
    /// `crawl.browser.screenshots`.
    screenshots: bool,
    /// `evidence.tsa`: stamps the chain's head after each run.
    tsa: Option<Arc<Tsa>>,
}

/// What one [`Crawl::run`] did.
#[derive(Debug, Clone, Serialize)]
pub struct CrawlReport {
    /// How many words were searched.
    pub keywords: usize,
    /// Each platform's crawl run, by platform name.
    pub runs: Vec<RunSummary>,
    /// What drafting the notices did (`None` when drafting was turned off).
    pub drafts: Option<DraftSummary>,
    /// What stamping the evidence chain did (`None` without `evidence.tsa`).
    pub timestamp: Option<StampOutcome>,
    /// Why the TSA gave no token; the records wait for the next run's.
    pub timestamp_error: Option<String>,
}

impl CrawlReport {
    /// `ok` when every platform's run was, `failed` when every one failed, `paused` when the
    /// rest went through but some wait for a person (skipped or paused), else `partial`.
    pub fn status(&self) -> &'static str {
        let all = |s: RunStatus| self.runs.iter().all(|r| r.status == s);
        let held = |r: &RunSummary| matches!(r.status, RunStatus::Skipped | RunStatus::Paused);
        if all(RunStatus::Ok) {
            "ok"
        } else if all(RunStatus::Failed) {
            "failed"
        } else if self
            .runs
            .iter()
            .all(|r| r.status == RunStatus::Ok || held(r))
        {
            "paused"
        } else {
            "partial"
        }
    }

    /// The first platform's first problem, for the operator.
    pub(crate) fn first_error(&self) -> Option<String> {
        self.runs
            .iter()
            .find_map(|s| s.error.as_ref().map(|e| format!("{}: {e}", s.platform)))
    }
}

impl Crawl {
    /// Starts building a crawl of `defs` (the loaded platform definitions) under `config`.
    pub fn builder(config: &Config, defs: Vec<PlatformDef>) -> CrawlBuilder<'_> {
        CrawlBuilder {
            config,
            defs,
            platforms: None,
            pace: Pace::default(),
            fetch_details: true,
            draft_notices: true,
            matcher: None,
            locks: None,
            secret_key: None,
        }
    }

    /// The chosen platforms' names, in definition order.
    pub(crate) fn platform_names(&self) -> Vec<String> {
        self.platforms
            .iter()
            .map(|p| p.def.platform.clone())
            .collect()
    }

    /// The chosen platforms' effective settings.
    pub fn settings(&self) -> Vec<PlatformSettings> {
        self.platforms
            .iter()
            .map(|p| p.settings(&p.policy))
            .collect()
    }

    /// The words `search` stands for now.
    async fn keywords(&self, store: &Store, search: &Search) -> Result<Vec<String>, CrawlError> {
        let keywords = match search {
            Search::Keywords(words) => words.clone(),
            Search::Brands(wanted) => {
                let mut brands = store.brands().await?;
                if !wanted.is_empty() {
                    if let Some(missing) = wanted
                        .iter()
                        .find(|w| !brands.iter().any(|b| &&b.name == w))
                    {
                        return Err(CrawlError::UnknownBrand(missing.clone()));
                    }
                    brands.retain(|b| wanted.contains(&b.name));
                }
                watch_keywords(&brands, &self.extra_keywords)
            }
        };
        if keywords.is_empty() {
            return Err(CrawlError::NothingToSearch);
        }
        Ok(keywords)
    }

    /// Runs the pipeline once: every chosen platform crawled for every word of `search` (one
    /// crawl run per platform, platforms in parallel), every listing judged against the whole
    /// registry and stored with its verdict, then new matches drafted into notices.
    pub async fn run(&self, store: &Store, search: &Search) -> Result<CrawlReport, CrawlError> {
        let keywords = self.keywords(store, search).await?;
        let matcher = match &self.matcher {
            Some(m) => m.clone(),
            // Listings are judged against the whole registry, whichever brands are searched.
            None => build_matcher(store, &self.rates).await?.1,
        };
        let guards = match &self.locks {
            Some(locks) => locks.lock(&self.platform_names()).await,
            None => Vec::new(),
        };
        let mut targets = Vec::with_capacity(self.platforms.len());
        for p in &self.platforms {
            // Screenshots are of item pages: none when item pages are not fetched.
            let screenshots = self.screenshots && self.fetch_details;
            let target = p
                .target(store, self.secret_key.as_ref(), &self.browser, screenshots)
                .await?;
            let s = p.settings(&target.policy);
            tracing::info!(
                platform = %s.platform,
                base_url = s.base_url.as_deref().unwrap_or("-"),
                requests_per_second = s.requests_per_second.unwrap_or(0.0),
                concurrency = s.concurrency,
                max_attempts = s.max_attempts,
                timeout_secs = s.timeout_secs,
                user_agent = %s.user_agent,
                "crawl pace"
            );
            targets.push(target);
        }
        let details = super::Details {
            new: self.fetch_details,
            missing: if self.fetch_details {
                self.missing_details
            } else {
                0
            },
            images: self.images,
        };
        let runs = super::crawl(store, &matcher, targets, &keywords, details).await?;
        drop(guards);
        let drafts = if self.draft_notices {
            // Drafting covers every platform's open matches; it is idempotent.
            Some(notice::queue_drafts(store, &self.defs).await?)
        } else {
            None
        };
        let (timestamp, timestamp_error) = match &self.tsa {
            None => (None, None),
            Some(tsa) => match tsa.stamp_if_due(store).await {
                Ok(outcome) => (Some(outcome), None),
                Err(e) => {
                    tracing::warn!(error = %e, "evidence chain not stamped; the next run tries again");
                    (None, Some(e.to_string()))
                }
            },
        };
        Ok(CrawlReport {
            keywords: keywords.len(),
            runs,
            drafts,
            timestamp,
            timestamp_error,
        })
    }
}

/// Where what the matcher is built from stands: the registry and reviewers' allow rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct MatcherStamp {
    registry: RegistryStamp,
    allow: AllowRulesStamp,
}

impl MatcherStamp {
    /// One small read of each.
    pub(crate) async fn now(store: &Store) -> Result<MatcherStamp, CrawlError> {
        Ok(MatcherStamp {
            registry: store.registry_stamp().await?,
            allow: store.allow_rules_stamp().await?,
        })
    }
}

/// How a definition's pages are fetched: its retries, the crawl's timeout and user agent, at
/// the pace given.
pub(crate) fn fetch_policy(
    def: &PlatformDef,
    config: &Config,
    requests_per_second: Option<f64>,
    concurrency: u32,
) -> FetchPolicy {
    FetchPolicy {
        requests_per_second,
        concurrency: concurrency.max(1) as usize,
        max_attempts: def.retry.max_attempts.max(1),
        base_backoff: Duration::from_millis(def.retry.base_backoff_ms),
        max_backoff: Duration::from_millis(def.retry.max_backoff_ms),
        timeout: Duration::from_secs(config.crawl.timeout_secs),
        user_agent: config.crawl.user_agent.clone(),
    }
}

/// The matcher as the pipeline builds it, for commands that judge stored listings again.
pub async fn pipeline_matcher(store: &Store, config: &Config) -> Result<Arc<Matcher>, CrawlError> {
    Ok(build_matcher(store, &config.matching.rates).await?.1)
}

/// The matcher the pipeline judges with: the whole registry, reviewers' allow rules and the
/// configured exchange rates, with the stamp they were read at. Building loads dictionaries,
/// so it runs off the async workers.
pub(crate) async fn build_matcher(
    store: &Store,
    rates: &BTreeMap<String, f64>,
) -> Result<(MatcherStamp, Arc<Matcher>), CrawlError> {
    // The rules' stamp before the rules: a rule added in between makes the next check rebuild.
    let allow_stamp = store.allow_rules_stamp().await?;
    let allow = store.allow_rules().await?;
    let (registry, brands) = store.brands_with_stamp().await?;
    let settings = MatchSettings {
        rates: rates.iter().map(|(k, v)| (k.clone(), *v)).collect(),
        allow,
    };
    let built = tokio::task::spawn_blocking(move || Matcher::with_settings(&brands, &settings))
        .await
        .map_err(|e| CrawlError::Matcher(e.to_string()))?
        .map_err(|e| CrawlError::Matcher(e.to_string()))?;
    let stamp = MatcherStamp {
        registry,
        allow: allow_stamp,
    };
    Ok((stamp, Arc::new(built)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::RunCounts;

    fn report(statuses: &[RunStatus]) -> CrawlReport {
        CrawlReport {
            keywords: 1,
            runs: statuses
                .iter()
                .enumerate()
                .map(|(i, &status)| RunSummary {
                    platform: format!("p{i}"),
                    run_id: i as i64,
                    status,
                    counts: RunCounts::default(),
                    error: None,
                })
                .collect(),
            drafts: None,
            timestamp: None,
            timestamp_error: None,
        }
    }

    #[test]
    fn a_run_waiting_only_for_a_person_is_paused_not_partial() {
        use RunStatus::*;
        assert_eq!(report(&[Ok, Ok]).status(), "ok");
        assert_eq!(report(&[Ok, Skipped]).status(), "paused");
        assert_eq!(report(&[Paused, Skipped]).status(), "paused");
        assert_eq!(report(&[Ok, Paused, Failed]).status(), "partial");
        assert_eq!(report(&[Failed, Failed]).status(), "failed");
    }
}
