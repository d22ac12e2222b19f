//! One watch's run, start to finish: crawl its platforms (fetch → extract → store → match),
//! queue draft notices; the alert events the matches wrote wait in the outbox for the sender. The scheduler and the demo both
//! run watches through here.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use tokio::sync::Mutex;

use super::DaemonError;
use crate::config::Config;
use crate::crawl::{self, RunSummary, Target};
use crate::matcher::Matcher;
use crate::model::Brand;
use crate::notice::{self, DraftSummary};
use crate::platform::PlatformDef;
use crate::schedule::Watch;
use crate::store::{RunStatus, Store};

/// Runs watches. Cheap to share behind an `Arc`.
pub struct Pipeline {
    store: Store,
    config: Config,
    defs: Vec<PlatformDef>,
    /// One crawl per platform at a time, whichever watch asks: the platform's pace holds.
    locks: BTreeMap<String, Arc<Mutex<()>>>,
    polite: bool,
}

/// What one run did.
#[derive(Debug, Clone, Serialize)]
pub struct RunReport {
    pub watch: String,
    pub keywords: usize,
    pub crawl: Vec<RunSummary>,
    /// What drafting the notices did.
    pub drafts: DraftSummary,
    /// `ok`, `partial` or `failed`, from the platforms' crawl runs.
    pub status: &'static str,
    /// The first problem, for the operator.
    pub error: Option<String>,
}

impl RunReport {
    pub fn crawl_run_ids(&self) -> Vec<i64> {
        self.crawl.iter().map(|s| s.run_id).collect()
    }
}

impl Pipeline {
    /// `polite = false` lifts every rate limit: only for the fixture server on loopback (demo).
    pub fn new(store: Store, config: Config, defs: Vec<PlatformDef>, polite: bool) -> Pipeline {
        let locks = defs
            .iter()
            .map(|d| (d.platform.clone(), Arc::new(Mutex::new(()))))
            .collect();
        Pipeline {
            store,
            config,
            defs,
            locks,
            polite,
        }
    }

    /// The loaded definitions' platform names.
    pub fn platforms(&self) -> Vec<String> {
        self.defs.iter().map(|d| d.platform.clone()).collect()
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// A platform's definition with the configuration's overrides, ready to crawl.
    fn target(&self, platform: &str) -> Result<Target, DaemonError> {
        let mut def = self
            .defs
            .iter()
            .find(|d| d.platform == platform)
            .cloned()
            .ok_or_else(|| DaemonError::UnknownPlatform(platform.to_owned()))?;
        let overrides = self.config.platforms.get(platform);
        if let Some(rps) = overrides.and_then(|p| p.requests_per_second) {
            def.rate_limit.requests_per_second = rps;
        }
        if let Some(n) = overrides.and_then(|p| p.concurrency) {
            def.rate_limit.concurrency = n;
        }
        let base = overrides.and_then(|p| p.base_url.as_deref());
        Ok(Target::new(
            def,
            base,
            &self.config.crawl.user_agent,
            Duration::from_secs(self.config.crawl.timeout_secs),
            self.polite,
        )?)
    }

    /// The watch's search words: its own, or its brands' (or the registry's) marks and aliases,
    /// plus `crawl.extra_keywords`. Read at each run, so registry changes apply at once.
    fn keywords(&self, watch: &Watch, brands: &[Brand]) -> Result<Vec<String>, DaemonError> {
        if !watch.keywords.is_empty() {
            return Ok(watch.keywords.clone());
        }
        let mut brands = brands.to_vec();
        if !watch.brands.is_empty() {
            for wanted in &watch.brands {
                if !brands.iter().any(|b| &b.name == wanted) {
                    return Err(DaemonError::UnknownBrand {
                        watch: watch.name.clone(),
                        brand: wanted.clone(),
                    });
                }
            }
            brands.retain(|b| watch.brands.contains(&b.name));
        }
        let keywords = crawl::watch_keywords(&brands, &self.config.crawl.extra_keywords);
        if keywords.is_empty() {
            return Err(DaemonError::NothingToSearch(watch.name.clone()));
        }
        Ok(keywords)
    }

    /// Runs a watch once: its platforms crawled in parallel, each one only while no other
    /// watch crawls it.
    pub async fn run(&self, watch: &Watch) -> Result<RunReport, DaemonError> {
        // Listings are judged against the whole registry, whichever brands the watch searches.
        let brands = self.store.brands().await?;
        let keywords = self.keywords(watch, &brands)?;
        // Building the matcher loads dictionaries: keep it off the async workers.
        let matcher = tokio::task::spawn_blocking(move || Matcher::new(&brands))
            .await
            .map_err(|e| DaemonError::Matcher(e.to_string()))?
            .map_err(|e| DaemonError::Matcher(e.to_string()))?;
        let matcher = Arc::new(matcher);
        let mut targets = Vec::new();
        for platform in &watch.platforms {
            targets.push(self.target(platform)?);
        }
        // Locks are taken in name order (watch.platforms is sorted), so watches never deadlock.
        let mut guards = Vec::new();
        for platform in &watch.platforms {
            if let Some(lock) = self.locks.get(platform) {
                guards.push(lock.clone().lock_owned().await);
            }
        }
        tracing::info!(watch = %watch.name, platforms = ?watch.platforms, keywords = keywords.len(), "run started");
        let summaries = crawl::crawl(&self.store, &matcher, targets, &keywords, true).await?;
        drop(guards);
        let status = overall_status(&summaries);
        let error = summaries
            .iter()
            .find_map(|s| s.error.as_ref().map(|e| format!("{}: {e}", s.platform)));
        // Drafting covers every platform's open matches; it is idempotent.
        let drafts = notice::queue_drafts(&self.store, &self.defs).await?;
        tracing::info!(watch = %watch.name, created = drafts.created.len(), extended = drafts.extended.len(), listings = drafts.listings, "drafts queued");
        Ok(RunReport {
            watch: watch.name.clone(),
            keywords: keywords.len(),
            crawl: summaries,
            drafts,
            status,
            error,
        })
    }
}

/// A run is ok when every platform's was, failed when every platform's failed.
fn overall_status(summaries: &[RunSummary]) -> &'static str {
    let all = |s: RunStatus| summaries.iter().all(|r| r.status == s);
    if all(RunStatus::Ok) {
        "ok"
    } else if all(RunStatus::Failed) {
        "failed"
    } else {
        "partial"
    }
}
