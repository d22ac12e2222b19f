//! One watch's run, start to finish, through the crawl's one entry point ([`Crawl`]): crawl its
//! platforms (fetch → extract → store → match), queue draft notices; the alert events the
//! matches wrote wait in the outbox for the sender. The scheduler and the demo both run
//! watches through here.

use serde::Serialize;

use super::DaemonError;
use super::matchers::Matchers;
use crate::config::Config;
use crate::config::WatchKind;
use crate::crawl::{Crawl, CrawlError, Pace, PlatformLocks, RunSummary, Search};
use crate::domains::DomainReport;
use crate::notice::DraftSummary;
use crate::platform::PlatformDef;
use crate::schedule::Watch;
use crate::secrets::SecretKey;
use crate::store::RunStatus;
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
    /// One matcher for every run, rebuilt only when the registry changes.
    matchers: Matchers,
}

/// What one run did.
#[derive(Debug, Clone, Serialize)]
pub struct RunReport {
    pub watch: String,
    pub keywords: usize,
    pub crawl: Vec<RunSummary>,
    /// What drafting the notices did.
    pub drafts: DraftSummary,
    /// A domain watch's findings.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub domains: Option<DomainReport>,
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
            matchers: Matchers::default(),
        }
    }

    /// Crawl through the platforms' accounts, opened with `key`.
    pub fn with_secret_key(mut self, key: SecretKey) -> Pipeline {
        self.secret_key = Some(key);
        self
    }

    /// The loaded definitions' platform names.
    pub fn platforms(&self) -> Vec<String> {
        crate::platform::crawlable(&self.defs)
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// How many matchers the runs so far have built from the registry.
    pub fn matcher_builds(&self) -> u64 {
        self.matchers.builds()
    }

    /// Runs a watch once: its platforms crawled in parallel, each one only while no other
    /// watch crawls it. Its own keywords, or its brands' (or the registry's) marks and
    /// aliases plus `crawl.extra_keywords`, read at each run so registry changes apply at once;
    /// the matcher too is the registry's as of the run's start.
    pub async fn run(&self, watch: &Watch) -> Result<RunReport, DaemonError> {
        let matcher = self
            .matchers
            .current(&self.store, &self.config.matching.rates)
            .await?;
        if watch.kind == WatchKind::Domains {
            return self.run_domains(watch, matcher).await;
        }
        let mut crawl = Crawl::builder(&self.config, self.defs.clone())
            .platforms(&watch.platforms)
            .pace(self.pace)
            .matcher(matcher)
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
            domains: None,
        })
    }

    /// The domain watch, then drafting: a flagged domain is drafted as its CNDRP complaint.
    async fn run_domains(
        &self,
        watch: &Watch,
        matcher: std::sync::Arc<crate::matcher::Matcher>,
    ) -> Result<RunReport, DaemonError> {
        tracing::info!(watch = %watch.name, "domain watch started");
        let (summary, found) = crate::domains::run(
            &self.store,
            &self.config,
            &self.defs,
            matcher,
            &watch.brands,
            self.pace,
        )
        .await?;
        let drafts = crate::notice::queue_drafts(&self.store, &self.defs)
            .await
            .map_err(|e| DaemonError::Crawl(CrawlError::Notice(e)))?;
        Ok(RunReport {
            watch: watch.name.clone(),
            keywords: 0,
            status: match summary.status {
                RunStatus::Ok => "ok",
                RunStatus::Failed => "failed",
                _ => "partial",
            },
            error: summary.error.clone(),
            drafts,
            crawl: vec![summary],
            domains: Some(found),
        })
    }
}

#[cfg(all(test, feature = "fixtures"))]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::config::PlatformConfig;
    use crate::fixture_server::{FixtureOptions, FixtureServer};
    use crate::platform::FetchWith;

    /// The fixture platforms on loopback (their zone too), and a scratch store holding the
    /// demo registry.
    async fn fixtures_and_store() -> (
        crate::fixture_server::FixtureZone,
        std::net::SocketAddr,
        Store,
        Vec<crate::model::Brand>,
        tempfile::TempDir,
    ) {
        let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
        let server = FixtureServer::new(FixtureOptions {
            fixtures_dir: repo.join("fixtures"),
            ..FixtureOptions::default()
        })
        .unwrap();
        let zone = server.zone();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(crate::fixture_server::serve(listener, server));
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(crate::test_support::scratch_db(dir.path()).await)
            .await
            .unwrap();
        let brands = crate::registry::load_file(&repo.join("fixtures/brands.toml")).unwrap();
        store
            .import_registry(&brands, "test", "brands.toml")
            .await
            .unwrap();
        (zone, addr, store, brands, dir)
    }

    /// Runs through the real crawl against the fixture JD on loopback: the matcher is built
    /// at the first run, kept while the registry stands, rebuilt once an import changes it.
    #[tokio::test]
    async fn the_matcher_is_rebuilt_only_when_the_registry_changes() {
        let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
        let (_, addr, store, mut brands, _dir) = fixtures_and_store().await;
        let base = format!("http://{addr}");

        let mut config = Config::default();
        config.crawl.browser.screenshots = false;
        config.platforms.insert(
            "jd".to_owned(),
            PlatformConfig {
                base_url: Some(format!("{base}/jd")),
                login_required: Some(false),
                fetch: Some(FetchWith::Http),
                ..PlatformConfig::default()
            },
        );
        let defs = crate::platform::load_dir(&repo.join("crawlers")).unwrap();
        let pipeline = Pipeline::new(store.clone(), config, defs, Pace::UnlimitedOnLoopback);
        let watch = Watch {
            name: "t".to_owned(),
            cron: crate::cron::CronExpr::parse("@daily").unwrap(),
            jitter: std::time::Duration::ZERO,
            platforms: vec!["jd".to_owned()],
            keywords: vec!["nike".to_owned()],
            brands: Vec::new(),
            kind: WatchKind::Listings,
        };
        let run = async || {
            let report = pipeline.run(&watch).await.unwrap();
            assert_eq!(report.status, "ok", "{report:?}");
            pipeline.matcher_builds()
        };
        assert_eq!(run().await, 1);
        assert_eq!(run().await, 1);
        // Importing the same file again changes nothing: the matcher is kept.
        store
            .import_registry(&brands, "test", "brands.toml")
            .await
            .unwrap();
        assert_eq!(run().await, 1);
        brands[0].aliases.push("新别名".to_owned());
        store
            .import_registry(&brands, "test", "brands.toml")
            .await
            .unwrap();
        assert_eq!(run().await, 2);
        assert_eq!(run().await, 2);
    }

    /// A watch of kind `domains`, as the scheduler's worker runs it: the domain watch for its
    /// brands against the fixture zone on a real DNS server, then drafting.
    #[tokio::test]
    async fn a_domains_watch_runs_the_domain_watch_and_drafts() {
        let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
        let (zone, addr, store, _, _dir) = fixtures_and_store().await;
        let dns = crate::fixture_server::serve_zone(zone).await.unwrap();
        let mut config = Config::default();
        config.domains.resolver = dns.addr().to_string();
        config.domains.http_port = Some(addr.port());
        config.domains.queries_per_second = 5000;
        let defs = crate::platform::load_dir(&repo.join("crawlers")).unwrap();
        let pipeline = Pipeline::new(store.clone(), config, defs, Pace::UnlimitedOnLoopback);
        let watch = Watch {
            name: "cn-domains".to_owned(),
            cron: crate::cron::CronExpr::parse("@daily").unwrap(),
            jitter: std::time::Duration::ZERO,
            platforms: vec![crate::domains::PLATFORM.to_owned()],
            keywords: Vec::new(),
            brands: vec!["Sony".to_owned()],
            kind: WatchKind::Domains,
        };
        let report = pipeline.run(&watch).await.unwrap();
        assert_eq!(report.status, "ok", "{report:?}");
        assert_eq!(report.crawl[0].platform, "domains");
        let found = report.domains.unwrap();
        assert_eq!(found.flagged, ["suoni.cn"]);
        assert_eq!(report.drafts.created.len(), 1);
    }
}
