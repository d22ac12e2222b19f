//! One watch's run, start to finish, through the crawl's one entry point ([`Crawl`]): crawl its
//! platforms (fetch → extract → store → match), queue draft notices; the alert events the
//! matches wrote wait in the outbox for the sender. The scheduler and the demo both run
//! watches through here.

use serde::Serialize;

use super::DaemonError;
use crate::config::Config;
use crate::crawl::{Crawl, CrawlError, Pace, PlatformLocks, RunSummary, Search};
use crate::notice::DraftSummary;
use crate::platform::PlatformDef;
use crate::schedule::Watch;
use crate::secrets::SecretKey;
use crate::store::Store;

/// Runs watches. Cheap to share behind an `Arc`.
pub struct Pipeline {
    store: Store,
    config: Config,
    defs: Vec<PlatformDef>,
    /// One crawl per platform at a time, whichever watch asks: the platform's pace holds.
    locks: PlatformLocks,
    pace: Pace,
    secret_key: Option<SecretKey>,
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
    pub(crate) fn crawl_run_ids(&self) -> Vec<i64> {
        self.crawl.iter().map(|s| s.run_id).collect()
    }
}

impl Pipeline {
    /// `pace` is [`Pace::Polite`] but for the fixture server on loopback (the demo).
    pub fn new(store: Store, config: Config, defs: Vec<PlatformDef>, pace: Pace) -> Pipeline {
        Pipeline {
            store,
            config,
            defs,
            locks: PlatformLocks::default(),
            pace,
            secret_key: None,
        }
    }

    /// Crawl through the platforms' accounts, opened with `key`.
    pub fn with_secret_key(mut self, key: SecretKey) -> Pipeline {
        self.secret_key = Some(key);
        self
    }

    /// The loaded definitions' platform names.
    pub fn platforms(&self) -> Vec<String> {
        self.defs.iter().map(|d| d.platform.clone()).collect()
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Runs a watch once: its platforms crawled in parallel, each one only while no other
    /// watch crawls it. Its own keywords, or its brands' (or the registry's) marks and
    /// aliases plus `crawl.extra_keywords`, read at each run so registry changes apply at once.
    pub async fn run(&self, watch: &Watch) -> Result<RunReport, DaemonError> {
        let mut crawl = Crawl::builder(&self.config, self.defs.clone())
            .platforms(&watch.platforms)
            .pace(self.pace)
            .exclusive(self.locks.clone());
        if let Some(key) = &self.secret_key {
            crawl = crawl.secret_key(key.clone());
        }
        let crawl = crawl.build()?;
        let search = if watch.keywords.is_empty() {
            Search::Brands(watch.brands.clone())
        } else {
            Search::Keywords(watch.keywords.clone())
        };
        tracing::info!(watch = %watch.name, platforms = ?watch.platforms, "run started");
        let report = crawl.run(&self.store, &search).await.map_err(|e| match e {
            CrawlError::NothingToSearch => DaemonError::NothingToSearch(watch.name.clone()),
            CrawlError::UnknownBrand(brand) => DaemonError::UnknownBrand {
                watch: watch.name.clone(),
                brand,
            },
            e => DaemonError::Crawl(e),
        })?;
        Ok(RunReport {
            watch: watch.name.clone(),
            keywords: report.keywords,
            status: report.status(),
            error: report.first_error(),
            drafts: report.drafts.unwrap_or_default(),
            crawl: report.runs,
        })
    }
}
