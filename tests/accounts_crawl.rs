//! The crawl through platform accounts, against the modern fixture server on loopback: accounts
//! imported from real logins to the fixture forms, a real SQLite file, real SMTP to a loopback
//! sink for the operators' emails.

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use common::smtp::{Behaviour, SmtpSink};
use markwatch::{
    AccountPace, Config, Cookie, Crawl, FixtureMode, FixtureOptions, FixtureServer, Matcher,
    ModernOptions, Pace, PlatformConfig, RunStatus, RunSummary, Search, SecretKey, Sender, Store,
    import_account, load_definitions, load_registry,
};
use reqwest::cookie::{CookieStore, Jar};

const OPS: &str = "ops@markwatch.example";

async fn start(modern: ModernOptions) -> (FixtureServer, String) {
    let server = FixtureServer::new(FixtureOptions {
        mode: FixtureMode::Modern,
        modern,
        // Enough listings for keywords of several pages.
        scale: 8,
        ..FixtureOptions::from_source_tree()
    })
    .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(markwatch::serve_fixtures(listener, server.clone()));
    (server, format!("http://{addr}"))
}

/// Logs in to the fixture JD form as a person would, over HTTP; returns the client (holding
/// the session) and the cookies as a browser export would give them (for `.jd.com`).
async fn jd_login(base: &str, user: &str, password: &str) -> (reqwest::Client, Vec<Cookie>) {
    let jar = Arc::new(Jar::default());
    let client = reqwest::Client::builder()
        .cookie_provider(jar.clone())
        .redirect(reqwest::redirect::Policy::none())
        .user_agent("markwatch-test")
        .build()
        .unwrap();
    let status = client
        .post(format!("{base}/jd/new/login.aspx"))
        .form(&[("loginname", user), ("nloginpwd", password)])
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status.as_u16(), 302, "fixture login of {user}");
    let header = jar.cookies(&reqwest::Url::parse(base).unwrap()).unwrap();
    let cookies = header
        .to_str()
        .unwrap()
        .split("; ")
        .filter_map(|kv| kv.split_once('='))
        .map(|(name, value)| Cookie {
            domain: ".jd.com".to_owned(),
            include_subdomains: true,
            path: "/".to_owned(),
            secure: true,
            http_only: true,
            expires: None,
            name: name.to_owned(),
            value: value.to_owned(),
        })
        .collect();
    (client, cookies)
}

struct Env {
    dir: tempfile::TempDir,
    store: Store,
    key: SecretKey,
    config: Config,
}

impl Env {
    async fn new(base: &str, smtp_port: Option<u16>) -> Env {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("markwatch.db");
        let store = Store::open(&db).await.unwrap();
        let key = SecretKey::load(None, &markwatch::default_key_file(&db)).unwrap();
        let mut config = Config {
            database: db.into(),
            ..Config::default()
        };
        config.crawl.user_agent = "markwatch-test".to_owned();
        config.crawl.timeout_secs = 10;
        // Accounts are tested here, not photos (tests/images.rs).
        config.crawl.images_per_run = 0;
        for p in ["amazon_cn", "jd", "taobao", "tmall"] {
            config.platforms.insert(
                p.to_owned(),
                PlatformConfig {
                    base_url: Some(format!("{base}/{p}")),
                    ..PlatformConfig::default()
                },
            );
        }
        if let Some(port) = smtp_port {
            config.email = toml::from_str(&format!(
                "transport = \"smtp\"\nfrom = \"markwatch <alerts@markwatch.example>\"\n\
                 operations = \"{OPS}\"\nbatch_window_secs = 0\ntimeout_secs = 5\n\
                 [smtp]\nhost = \"127.0.0.1\"\nport = {port}\ntls = \"none\"\n"
            ))
            .unwrap();
        }
        Env {
            dir,
            store,
            key,
            config,
        }
    }

    async fn import(&self, name: &str, cookies: &[Cookie]) {
        import_account(
            &self.store,
            &self.key,
            "jd",
            name,
            cookies,
            None,
            AccountPace::default(),
        )
        .await
        .unwrap();
    }

    fn crawl(&self, platform: &str) -> Crawl {
        self.crawl_with(platform, false)
    }

    /// As [`Env::crawl`], fetching item pages when `details`.
    fn crawl_with(&self, platform: &str, details: bool) -> Crawl {
        let defs: Vec<_> = load_definitions(&common::repo().join("crawlers"))
            .unwrap()
            .into_iter()
            .map(|mut def| {
                def.retry.base_backoff_ms = 20;
                def.retry.max_backoff_ms = 200;
                def
            })
            .collect();
        Crawl::builder(&self.config, defs)
            .platforms(&[platform.to_owned()])
            .pace(Pace::UnlimitedOnLoopback)
            .fetch_details(details)
            .draft_notices(false)
            .matcher(matcher().clone())
            .secret_key(self.key.clone())
            .build()
            .unwrap()
    }

    async fn run(&self, platform: &str, keyword: &str) -> RunSummary {
        let search = Search::Keywords(vec![keyword.to_owned()]);
        let mut runs = self
            .crawl(platform)
            .run(&self.store, &search)
            .await
            .unwrap()
            .runs;
        assert_eq!(runs.len(), 1);
        runs.remove(0)
    }

    /// Sends what the outbox holds now, as the daemon's sender does.
    async fn send(&self) {
        let sender = Sender::from_config(self.store.clone(), &self.config).unwrap();
        sender.tick(chrono::Utc::now(), true).await.unwrap();
    }

    /// A connection of its own to the database, as another reader would open it.
    async fn conn(&self) -> sqlx::SqliteConnection {
        use sqlx::Connection;
        let url = format!("sqlite:{}", self.config.database);
        sqlx::SqliteConnection::connect(&url).await.unwrap()
    }

    async fn item_ids(&self, platform: &str) -> Vec<String> {
        sqlx::query_scalar("SELECT item_id FROM listings WHERE platform = ? ORDER BY item_id")
            .bind(platform)
            .fetch_all(&mut self.conn().await)
            .await
            .unwrap()
    }

    /// (name, state, state_url, pages today, last success) of each account, by name.
    async fn accounts(&self) -> Vec<(String, String, Option<String>, i64, Option<String>)> {
        let today = chrono::Utc::now().format("%Y-%m-%d").to_string();
        let list = self.store.accounts(&today).await.unwrap();
        let mut out = Vec::new();
        for a in list {
            let url: Option<String> = sqlx::query_scalar(
                "SELECT state_url FROM accounts WHERE platform = ? AND name = ?",
            )
            .bind(&a.platform)
            .bind(&a.name)
            .fetch_one(&mut self.conn().await)
            .await
            .unwrap();
            out.push((
                a.name,
                a.state.to_string(),
                url,
                a.pages_today,
                a.last_success_at,
            ));
        }
        out
    }

    async fn run_row(&self, id: i64) -> (String, Option<String>) {
        sqlx::query_as("SELECT status, error FROM crawl_runs WHERE id = ?")
            .bind(id)
            .fetch_one(&mut self.conn().await)
            .await
            .unwrap()
    }
}

fn matcher() -> &'static Arc<Matcher> {
    static M: OnceLock<Arc<Matcher>> = OnceLock::new();
    M.get_or_init(|| {
        let brands = load_registry(&common::demo_brands()).unwrap();
        Arc::new(Matcher::new(&brands).unwrap())
    })
}

/// The listings a JD keyword's visible pages hold, both halves (the page's script loads the
/// second from `s_new.php` in the browser), and how many visible pages (of 60) that is.
fn jd_listings(server: &FixtureServer, keyword: &str) -> (BTreeSet<String>, usize) {
    let all = server.search_results("jd", keyword).unwrap();
    let pages = all.len().div_ceil(60);
    (all.into_iter().map(|l| l.item_id.clone()).collect(), pages)
}

/// Chromium, which JD's search pages need: required under CI.
fn chromium(test: &str) -> Option<std::path::PathBuf> {
    let p = std::path::PathBuf::from("/usr/bin/chromium");
    common::require(
        test,
        "Chromium",
        p.is_file().then_some(p),
        "apt install chromium",
    )
}

/// A JD keyword with `pages` visible pages (of 60 listings).
fn jd_keyword(server: &FixtureServer, pages: std::ops::RangeInclusive<usize>) -> String {
    server
        .keywords("jd")
        .unwrap()
        .iter()
        .find(|k| pages.contains(&jd_listings(server, k).1))
        .unwrap_or_else(|| panic!("no JD keyword with {pages:?} pages"))
        .clone()
}

fn ops_emails(sink: &SmtpSink) -> Vec<String> {
    sink.messages()
        .into_iter()
        .filter(|m| m.rcpt_to == [OPS])
        .map(|m| String::from_utf8_lossy(&m.data).into_owned())
        .collect()
}

/// Search requests the fixture server answered for `platform`, as (path and query) strings.
fn searches(server: &FixtureServer, prefix: &str) -> Vec<String> {
    server
        .log()
        .entries()
        .into_iter()
        .map(|e| e.path)
        .filter(|p| p.starts_with(prefix))
        .collect()
}

#[tokio::test]
async fn jd_with_two_accounts_stores_every_listing_pages_alternating() {
    if chromium("jd_with_two_accounts_stores_every_listing_pages_alternating").is_none() {
        return;
    }
    let (server, base) = start(ModernOptions::default()).await;
    let keyword = jd_keyword(&server, 2..=6);
    let (want, _) = jd_listings(&server, &keyword);
    let env = Env::new(&base, None).await;
    let (_, one) = jd_login(&base, "jd_watcher_1", "fixture-jd-1").await;
    let (_, two) = jd_login(&base, "jd_watcher_2", "fixture-jd-2").await;
    env.import("jd_watcher_1", &one).await;
    env.import("jd_watcher_2", &two).await;

    let run = env.run("jd", &keyword).await;
    assert_eq!(run.status, RunStatus::Ok, "{run:?}");
    let got: BTreeSet<String> = env.item_ids("jd").await.into_iter().collect();
    assert_eq!(got, want, "every listing, both halves of every page");
    let accounts = env.accounts().await;
    assert_eq!(accounts.len(), 2);
    for (name, state, _, pages, last_success) in &accounts {
        assert_eq!(state, "ok", "{name}");
        assert!(*pages > 0, "{name} fetched no page: {accounts:?}");
        assert!(last_success.is_some(), "{name}");
    }
    // Round-robin: the two accounts' pages differ by at most one.
    assert!((accounts[0].3 - accounts[1].3).abs() <= 1, "{accounts:?}");
}

/// A new listing's item page is fetched with the account whose search found it, and each
/// record names the account that fetched it.
#[tokio::test]
async fn item_pages_are_fetched_by_the_account_whose_search_found_them() {
    if chromium("item_pages_are_fetched_by_the_account_whose_search_found_them").is_none() {
        return;
    }
    let (server, base) = start(ModernOptions::default()).await;
    let keyword = jd_keyword(&server, 2..=6);
    let mut env = Env::new(&base, None).await;
    // Item pages over HTTP only: which account fetches them is the point, not screenshots.
    env.config.crawl.browser.screenshots = false;
    let (_, one) = jd_login(&base, "jd_watcher_1", "fixture-jd-1").await;
    let (_, two) = jd_login(&base, "jd_watcher_2", "fixture-jd-2").await;
    env.import("jd_watcher_1", &one).await;
    env.import("jd_watcher_2", &two).await;
    let search = Search::Keywords(vec![keyword.clone()]);
    let runs = env
        .crawl_with("jd", true)
        .run(&env.store, &search)
        .await
        .unwrap()
        .runs;
    assert_eq!(runs[0].status, RunStatus::Ok, "{runs:?}");
    let pairs: Vec<(Option<String>, Option<String>)> = sqlx::query_as(
        "SELECT s.account, d.account FROM listings l
         JOIN evidence s ON s.id = l.evidence_id JOIN evidence d ON d.id = l.detail_evidence_id",
    )
    .fetch_all(&mut env.conn().await)
    .await
    .unwrap();
    assert!(pairs.len() > 10, "item pages fetched: {}", pairs.len());
    for (search_by, item_by) in &pairs {
        assert!(search_by.is_some(), "a record without its account");
        assert_eq!(
            search_by, item_by,
            "an item page fetched by another account"
        );
    }
    let used: BTreeSet<&str> = pairs.iter().filter_map(|p| p.0.as_deref()).collect();
    assert_eq!(used, BTreeSet::from(["jd_watcher_1", "jd_watcher_2"]));
}

#[tokio::test]
async fn without_an_account_jd_is_skipped_and_says_what_to_do() {
    let (server, base) = start(ModernOptions::default()).await;
    let keyword = jd_keyword(&server, 1..=6);
    let env = Env::new(&base, None).await;
    let run = env.run("jd", &keyword).await;
    assert_eq!(run.status, RunStatus::Skipped);
    let want = "no logged-in account for jd: markwatch accounts login jd NAME";
    assert_eq!(run.error.as_deref(), Some(want));
    assert_eq!(
        env.run_row(run.run_id).await,
        ("skipped".to_owned(), Some(want.to_owned()))
    );
    assert!(env.item_ids("jd").await.is_empty());
    assert!(searches(&server, "/jd/").is_empty(), "nothing fetched");

    // `crawl --once` says it plainly, and exits 3.
    let s = common::Scratch::new();
    let cfg = s.write(
        "markwatch.toml",
        &format!(
            "[crawl]\ndefinitions = \"{}\"\n[platforms.jd]\nbase_url = \"{base}/jd\"\n",
            common::repo().join("crawlers").display()
        ),
    );
    let out = s.run(&[
        "--config",
        cfg.to_str().unwrap(),
        "crawl",
        "--once",
        "--platform",
        "jd",
        "--keyword",
        &keyword,
        "--no-details",
    ]);
    assert_eq!(out.code(), 3, "{}\n{}", out.stdout(), out.stderr());
    assert!(out.stdout().contains("skipped"), "{}", out.stdout());
    assert!(out.stderr().contains(want), "{}", out.stderr());
}

#[tokio::test]
async fn an_account_expiring_mid_crawl_is_marked_and_its_page_retried_on_the_other() {
    if chromium("an_account_expiring_mid_crawl_is_marked_and_its_page_retried_on_the_other")
        .is_none()
    {
        return;
    }
    const MAX: u32 = 10;
    let (server, base) = start(ModernOptions {
        session_max_requests: MAX,
        ..ModernOptions::default()
    })
    .await;
    let keyword = jd_keyword(&server, 3..=(MAX as usize - 1));
    let (want, pages) = jd_listings(&server, &keyword);
    let sink = SmtpSink::start(Behaviour::default());
    let env = Env::new(&base, Some(sink.addr.port())).await;
    let (first, one) = jd_login(&base, "jd_watcher_1", "fixture-jd-1").await;
    let (_, two) = jd_login(&base, "jd_watcher_2", "fixture-jd-2").await;
    // The first account has two requests left, one visible page (its HTML half, then its
    // s_new.php half): it expires on its second page.
    let search = FixtureServer::search_path("jd", &keyword, 1).unwrap();
    for _ in 0..MAX - 2 {
        let status = first.get(format!("{base}{search}")).send().await.unwrap();
        assert_eq!(status.status().as_u16(), 200);
    }
    env.import("jd_watcher_1", &one).await;
    env.import("jd_watcher_2", &two).await;

    let run = env.run("jd", &keyword).await;
    assert_eq!(run.status, RunStatus::Partial, "{run:?}");
    assert_eq!(run.counts.pages_blocked, 1);
    assert!(run.counts.pages_ok as usize >= pages, "{run:?}");
    let error = run.error.clone().unwrap();
    assert!(
        error.contains("markwatch accounts login jd jd_watcher_1"),
        "{error}"
    );
    let ids = env.item_ids("jd").await;
    let got: BTreeSet<String> = ids.iter().cloned().collect();
    assert_eq!(ids.len(), got.len(), "a listing stored twice");
    assert_eq!(got, want, "every listing, once");
    let accounts = env.accounts().await;
    assert_eq!(accounts[0].1, "expired", "{accounts:?}");
    let wall = accounts[0].2.clone().unwrap();
    assert!(wall.contains("/jd/new/login.aspx"), "{wall}");
    assert_eq!(accounts[1].1, "ok", "{accounts:?}");

    env.send().await;
    env.send().await;
    let emails = ops_emails(&sink);
    assert_eq!(emails.len(), 1, "exactly one email per expiry");
    assert!(
        emails[0].contains("markwatch accounts login jd jd_watcher_1"),
        "{}",
        emails[0]
    );
    assert!(!emails[0].contains("jd_watcher_2"), "{}", emails[0]);
}

#[tokio::test]
async fn a_robot_check_stops_amazon_once_without_dodging_it() {
    let (server, base) = start(ModernOptions {
        burst_limit: 2,
        burst_window: Duration::from_secs(600),
        robot_check: Duration::from_secs(600),
        ..ModernOptions::default()
    })
    .await;
    // A keyword with more pages than the burst allows.
    let keyword = server
        .keywords("amazon_cn")
        .unwrap()
        .iter()
        .max_by_key(|k| server.search_results("amazon_cn", k).unwrap().len())
        .unwrap()
        .clone();
    let sink = SmtpSink::start(Behaviour::default());
    let env = Env::new(&base, Some(sink.addr.port())).await;

    let run = env.run("amazon_cn", &keyword).await;
    assert_eq!(run.status, RunStatus::Paused, "{run:?}");
    assert_eq!(run.counts.pages_ok, 2, "what came before the check is kept");
    assert_eq!(run.counts.pages_blocked, 1);
    let error = run.error.clone().unwrap();
    assert!(
        error.starts_with("paused: needs a person") && error.contains("challenge"),
        "{error}"
    );
    let ids = env.item_ids("amazon_cn").await;
    let unique: BTreeSet<_> = ids.iter().collect();
    assert!(!ids.is_empty() && unique.len() == ids.len());
    // The check was met once and not asked again.
    let asked = searches(&server, "/amazon_cn/");
    assert_eq!(asked.len(), 3, "{asked:#?}");

    env.send().await;
    // The next run meets it again: the same incident, no second email.
    let again = env.run("amazon_cn", &keyword).await;
    assert_eq!(again.status, RunStatus::Paused);
    env.send().await;
    let emails = ops_emails(&sink);
    assert_eq!(emails.len(), 1, "one email per incident");
    assert!(emails[0].contains("amazon_cn"), "{}", emails[0]);
    assert_eq!(
        env.run_row(again.run_id).await.0,
        "paused",
        "recorded as paused, not failed"
    );
}

#[tokio::test]
async fn a_platform_whose_accounts_all_expired_pauses_quietly() {
    if chromium("a_platform_whose_accounts_all_expired_pauses_quietly").is_none() {
        return;
    }
    let (server, base) = start(ModernOptions {
        session_max_requests: 1,
        ..ModernOptions::default()
    })
    .await;
    let keyword = jd_keyword(&server, 3..=6);
    let sink = SmtpSink::start(Behaviour::default());
    let env = Env::new(&base, Some(sink.addr.port())).await;
    let (_, one) = jd_login(&base, "jd_watcher_1", "fixture-jd-1").await;
    let (_, two) = jd_login(&base, "jd_watcher_2", "fixture-jd-2").await;
    env.import("jd_watcher_1", &one).await;
    env.import("jd_watcher_2", &two).await;

    let run = env.run("jd", &keyword).await;
    assert_eq!(run.status, RunStatus::Paused, "{run:?}");
    let accounts = env.accounts().await;
    assert!(accounts.iter().all(|a| a.1 == "expired"), "{accounts:?}");
    env.send().await;
    assert_eq!(ops_emails(&sink).len(), 1, "one email for the two expiries");

    let second = env.run("jd", &keyword).await;
    assert_eq!(second.status, RunStatus::Paused);
    let (status, error) = env.run_row(second.run_id).await;
    assert_eq!(status, "paused");
    let error = error.unwrap();
    assert!(error.starts_with("paused: needs a person"), "{error}");
    assert!(
        error.contains("markwatch accounts login jd jd_watcher_1")
            && error.contains("markwatch accounts login jd jd_watcher_2"),
        "{error}"
    );
    env.send().await;
    assert_eq!(ops_emails(&sink).len(), 1, "no new email for a paused run");
    assert!(!Path::new(&env.dir.path().join("outbox")).exists());
}
