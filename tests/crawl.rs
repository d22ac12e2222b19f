//! The crawl end to end: the fixture server on loopback, the real fetch engine and
//! definitions, a real SQLite file. Politeness limits are lifted and backoffs shortened so the
//! suite runs in seconds; the mechanisms are the production ones.

mod common;

use markwatch::{PlatformDef, load_definition, load_definitions, load_registry};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, OnceLock};

use markwatch::Listing;
use markwatch::{Config, FetchWith, PlatformConfig};
use markwatch::{Crawl, Pace, RunSummary, Search};
use markwatch::{Fault, FixtureOptions, FixtureServer};
use markwatch::{MatchItem, Matcher};

use markwatch::{Database, Store};

const PLATFORMS: [&str; 4] = ["amazon_cn", "jd", "taobao", "tmall"];

async fn start(options: FixtureOptions) -> (FixtureServer, String) {
    let server = FixtureServer::new(options).expect("fixture server");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(markwatch::serve_fixtures(listener, server.clone()));
    (server, base)
}

/// A crawl of `only` through the one entry point, against the fixture server at `base`, with
/// the rate limit lifted (loopback) and backoffs shortened.
fn crawl_of(base: &str, only: &[&str], fetch_details: bool) -> Crawl {
    crawl_with(base, only, fetch_details, |_| {})
}

/// Like [`crawl_of`], with the configuration changed by `tune` first.
fn crawl_with(
    base: &str,
    only: &[&str],
    fetch_details: bool,
    tune: impl FnOnce(&mut Config),
) -> Crawl {
    let defs: Vec<_> = load_definitions(&common::repo().join("crawlers"))
        .unwrap()
        .into_iter()
        .map(|mut def| {
            def.retry.base_backoff_ms = 20;
            def.retry.max_backoff_ms = 3000;
            def.retry.max_attempts = 6;
            def
        })
        .collect();
    let mut config = Config::default();
    config.crawl.user_agent = "markwatch-test".to_owned();
    config.crawl.timeout_secs = 10;
    // Classic pages over HTTP; screenshots are tested in tests/browser_crawl.rs.
    config.crawl.browser.screenshots = false;
    for def in &defs {
        config.platforms.insert(
            def.platform.clone(),
            PlatformConfig {
                base_url: Some(format!("{base}/{}", def.platform)),
                login_required: Some(false),
                fetch: Some(FetchWith::Http),
                ..PlatformConfig::default()
            },
        );
    }
    tune(&mut config);
    let only: Vec<String> = only.iter().map(|p| p.to_string()).collect();
    Crawl::builder(&config, defs)
        .platforms(&only)
        .pace(Pace::UnlimitedOnLoopback)
        .fetch_details(fetch_details)
        .draft_notices(false)
        .matcher(matcher().clone())
        .build()
        .unwrap()
}

/// Runs `crawl` for `keywords`; one summary per platform.
async fn run(crawl: Crawl, store: &Store, keywords: &[String]) -> Vec<RunSummary> {
    let search = Search::Keywords(keywords.to_vec());
    crawl.run(store, &search).await.unwrap().runs
}

/// The matcher for the demo registry, built once: it takes a moment to load.
fn matcher() -> &'static Arc<Matcher> {
    static M: OnceLock<Arc<Matcher>> = OnceLock::new();
    M.get_or_init(|| {
        let brands = load_registry(&common::demo_brands()).unwrap();
        Arc::new(Matcher::new(&brands).unwrap())
    })
}

/// The path and query the crawler will request for a keyword's first results page.
fn first_page_path(platform: &str, keyword: &str) -> String {
    let def = load_definition(&common::repo().join(format!("crawlers/{platform}.toml"))).unwrap();
    let base = url::Url::parse(&format!("http://fixture/{platform}")).unwrap();
    let url = PlatformDef::fetch_url(&def.search_url(keyword, 1), Some(&base));
    url.trim_start_matches("http://fixture").to_owned()
}

/// Every keyword the fixtures serve on any platform.
fn all_keywords(server: &FixtureServer) -> Vec<String> {
    let mut kws: Vec<String> = PLATFORMS
        .iter()
        .flat_map(|p| server.keywords(p).unwrap().to_vec())
        .collect();
    kws.sort();
    kws.dedup();
    kws
}

type Row = (String, String, String, Option<String>, Option<f64>, String);

async fn stored(db: &Database) -> Vec<Row> {
    let mut conn = common::connect(db).await;
    sqlx::query_as("SELECT platform, item_id, title, seller, price, url FROM listings ORDER BY platform, item_id")
        .fetch_all(&mut conn)
        .await
        .unwrap()
}

fn expected(server: &FixtureServer) -> Vec<(String, String, String, String, f64)> {
    let mut all: Vec<_> = PLATFORMS
        .iter()
        .flat_map(|p| server.listings(p).unwrap().iter())
        .map(|l| {
            (
                l.platform.clone(),
                l.item_id.clone(),
                l.title.clone(),
                l.seller.clone(),
                l.price,
            )
        })
        .collect();
    all.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
    all
}

fn assert_exactly_the_catalogue(server: &FixtureServer, rows: &[Row]) {
    let want = expected(server);
    assert_eq!(rows.len(), want.len(), "stored listings vs catalogue");
    for (row, want) in rows.iter().zip(&want) {
        assert_eq!((&row.0, &row.1), (&want.0, &want.1));
        assert_eq!(row.2, want.2, "title of {}:{}", row.0, row.1);
        assert_eq!(
            row.3.as_deref(),
            Some(want.3.as_str()),
            "seller of {}:{}",
            row.0,
            row.1
        );
        assert_eq!(row.4, Some(want.4), "price of {}:{}", row.0, row.1);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_platform_yields_exactly_its_fixture_listings() {
    let (server, base) = start(FixtureOptions::from_source_tree()).await;
    let dir = tempfile::tempdir().unwrap();
    let db = common::fresh_database(dir.path(), "m.db");
    let store = Store::open(&db).await.unwrap();
    let summaries = run(
        crawl_of(&base, &PLATFORMS, true),
        &store,
        &all_keywords(&server),
    )
    .await;
    for s in &summaries {
        assert_eq!(s.counts.pages_failed + s.counts.pages_blocked, 0, "{s:?}");
    }
    let rows = stored(&db).await;
    assert_exactly_the_catalogue(&server, &rows);
    // The shop's id and ship-from place, where the search page shows them (seller networks
    // link shops by them): Taobao has both, JD the shop id in its shop link.
    let mut conn = common::connect(&db).await;
    let shops: Vec<(String, String, Option<String>, Option<String>)> = sqlx::query_as(
        "SELECT platform, item_id, seller_id, ship_from FROM listings WHERE platform IN ('taobao', 'jd')",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    assert!(!shops.is_empty());
    for (platform, item_id, seller_id, ship_from) in &shops {
        let want = server
            .listings(platform)
            .unwrap()
            .iter()
            .find(|l| &l.item_id == item_id)
            .unwrap();
        assert_eq!(
            seller_id.as_deref(),
            Some(want.seller_id.as_str()),
            "{platform}:{item_id}"
        );
        if platform == "taobao" {
            assert_eq!(
                ship_from.as_deref(),
                Some(want.location.as_str()),
                "{platform}:{item_id}"
            );
        }
    }
    // Canonical URLs take the platforms' real forms.
    for (platform, id, _, _, _, url) in &rows {
        let want = match platform.as_str() {
            "taobao" => format!("https://item.taobao.com/item.htm?id={id}"),
            "tmall" => format!("https://detail.tmall.com/item.htm?id={id}"),
            "jd" => format!("https://item.jd.com/{id}.html"),
            _ => format!("https://www.amazon.cn/dp/{id}"),
        };
        assert_eq!(url, &want);
    }
    let verdicts = assert_every_listing_judged(&db).await;
    let flagged: u64 = summaries.iter().map(|s| s.counts.listings_flagged).sum();
    assert_eq!(
        flagged,
        verdicts.iter().filter(|v| v.1 != "clear").count() as u64
    );
    assert_labelled_counterfeits_flagged(&verdicts);
    // A second crawl of unchanged pages adds and changes nothing.
    let again = run(
        crawl_of(&base, &PLATFORMS, true),
        &store,
        &all_keywords(&server),
    )
    .await;
    for s in &again {
        assert_eq!(
            (s.counts.listings_new, s.counts.listings_changed),
            (0, 0),
            "{s:?}"
        );
    }
    assert_eq!(stored(&db).await, rows);
    assert_eq!(
        assert_every_listing_judged(&db).await,
        verdicts,
        "a recrawl rewrote verdicts"
    );
}

/// (listing key, verdict, match id, updated_at) for every stored listing.
type Judged = (String, String, i64, String);

/// Each listing has exactly one verdict, and it is the matcher's verdict on the listing as
/// stored (search page and item page together).
async fn assert_every_listing_judged(db: &Database) -> Vec<Judged> {
    let mut conn = common::connect(db).await;
    type R = (
        String,
        String,
        String,
        Option<String>,
        Option<f64>,
        String,
        Option<String>,
    );
    let listings: Vec<(i64, R)> = sqlx::query_as::<
        _,
        (
            i64,
            String,
            String,
            String,
            Option<String>,
            Option<f64>,
            String,
            Option<String>,
        ),
    >(
        "SELECT id, platform, item_id, title, seller, price, currency, category FROM listings ORDER BY id",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap()
    .into_iter()
    .map(|(id, p, i, t, s, pr, cur, c)| (id, (p, i, t, s, pr, cur, c)))
    .collect();
    let matches: Vec<(i64, i64, String, String, String)> = sqlx::query_as(
        "SELECT listing_id, id, verdict, updated_at, matcher_version FROM matches ORDER BY listing_id",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    assert_eq!(matches.len(), listings.len(), "one verdict per listing");
    // Photos the crawl hashed are part of the verdict too.
    let mut photos: std::collections::HashMap<i64, Vec<u64>> = Default::default();
    let hashed: Vec<(i64, i64)> = sqlx::query_as(
        "SELECT listing_id, phash FROM listing_images WHERE state = 'hashed' ORDER BY id",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    for (listing, phash) in hashed {
        photos.entry(listing).or_default().push(phash as u64);
    }
    let mut out = Vec::new();
    for ((id, (platform, item_id, title, seller, price, currency, category)), m) in
        listings.into_iter().zip(matches)
    {
        assert_eq!(m.0, id);
        assert_eq!(m.4, markwatch::MATCHER_VERSION);
        let listing = Listing {
            platform: platform.clone(),
            item_id: item_id.clone(),
            title,
            seller,
            price,
            currency,
            category,
            image_hashes: photos.remove(&id).unwrap_or_default(),
            ..Listing::default()
        };
        let want = matcher().check(&MatchItem::from(&listing));
        assert_eq!(m.2, want.verdict.as_str(), "{platform}:{item_id}");
        out.push((format!("{platform}:{item_id}"), m.2, m.1, m.3));
    }
    out
}

/// The pipeline flags what a reviewer labelled infringing, as the offline evaluation does.
fn assert_labelled_counterfeits_flagged(verdicts: &[Judged]) {
    let labels = std::fs::read_to_string(common::repo().join("fixtures/labels.jsonl")).unwrap();
    let infringing: std::collections::HashSet<String> = labels
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["verdict"] == "infringing")
        .filter_map(|v| Some(v["id"].as_str()?.to_owned()))
        .collect();
    let crawled: Vec<_> = verdicts
        .iter()
        .filter(|v| infringing.contains(&v.0))
        .collect();
    assert!(
        crawled.len() > 100,
        "only {} labelled counterfeits crawled",
        crawled.len()
    );
    let flagged = crawled.iter().filter(|v| v.1 != "clear").count();
    assert!(
        flagged * 100 >= crawled.len() * 95,
        "{flagged} of {} labelled counterfeits flagged",
        crawled.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thirty_percent_faults_still_store_every_listing_once() {
    let options = FixtureOptions {
        fault_rate: 0.3,
        seed: 7,
        fault_pool: vec![
            Fault::TooManyRequests {
                retry_after_secs: 1,
            },
            Fault::ServerError,
            Fault::Unavailable,
            Fault::Slow { ms: 300 },
            Fault::Truncated,
            Fault::Redirect { hops: 2 },
            Fault::WrongCharset,
            Fault::NoCharset,
            Fault::Bom,
        ],
        ..FixtureOptions::from_source_tree()
    };
    let (server, base) = start(options).await;
    let dir = tempfile::tempdir().unwrap();
    let db = common::fresh_database(dir.path(), "m.db");
    let store = Store::open(&db).await.unwrap();
    let summaries = run(
        crawl_of(&base, &PLATFORMS, false),
        &store,
        &all_keywords(&server),
    )
    .await;
    let retried: u64 = summaries.iter().map(|s| s.counts.pages_retried).sum();
    assert!(
        retried > 0,
        "faults should have forced retries: {summaries:?}"
    );
    for s in &summaries {
        assert_eq!(s.counts.pages_failed, 0, "{s:?}");
    }
    let faults = server
        .log()
        .entries()
        .iter()
        .filter(|e| e.fault.is_some())
        .count();
    assert!(faults > 15, "only {faults} faults injected");
    assert_exactly_the_catalogue(&server, &stored(&db).await);
}

#[tokio::test]
async fn retry_after_is_honoured() {
    let (server, base) = start(FixtureOptions::from_source_tree()).await;
    let keyword = server.keywords("jd").unwrap()[0].clone();
    let path = first_page_path("jd", &keyword);
    server.script(
        &path,
        [Fault::TooManyRequests {
            retry_after_secs: 2,
        }],
    );
    let dir = tempfile::tempdir().unwrap();
    let db = common::fresh_database(dir.path(), "m.db");
    let store = Store::open(&db).await.unwrap();
    let summaries = run(crawl_of(&base, &["jd"], false), &store, &[keyword]).await;
    assert_eq!(summaries[0].counts.pages_retried, 1, "{summaries:?}");
    let hits: Vec<_> = server
        .log()
        .entries()
        .into_iter()
        .filter(|e| e.path == path)
        .collect();
    assert_eq!(hits.len(), 2, "{hits:?}");
    assert_eq!(hits[0].status, 429);
    let waited = hits[1].at_ms - hits[0].at_ms;
    assert!(
        waited >= 2000,
        "retried after {waited} ms, before Retry-After's 2 s"
    );
}

#[tokio::test]
async fn blocked_pages_are_detected_and_never_parsed() {
    let (server, base) = start(FixtureOptions::from_source_tree()).await;
    let keyword = server.keywords("taobao").unwrap()[0].clone();
    let path = first_page_path("taobao", &keyword);
    // Anonymous login walls are backed off from until they lift; a captcha stops the run
    // instead (tests/accounts_crawl.rs).
    server.script(&path, [Fault::Login, Fault::Login]);
    let dir = tempfile::tempdir().unwrap();
    let db = common::fresh_database(dir.path(), "m.db");
    let store = Store::open(&db).await.unwrap();
    let s = &run(
        crawl_of(&base, &["taobao"], false),
        &store,
        std::slice::from_ref(&keyword),
    )
    .await[0];
    assert_eq!(s.counts.pages_blocked, 2, "{s:?}");
    assert!(
        s.error.as_deref().unwrap_or("").contains("blocked"),
        "{s:?}"
    );
    // After the walls lift, the keyword's pages are all read.
    let want = server.search_results("taobao", &keyword).unwrap().len() as u64;
    assert_eq!(s.counts.listings_new, want);
    // The walls were kept as evidence; none of their text became a listing.
    let rows = stored(&db).await;
    assert!(
        rows.iter().all(|r| !r.2.contains("验证")),
        "a wall was parsed as a listing"
    );
    let mut conn = common::connect(&db).await;
    // Pages only: listing photos are evidence too, and are not pages.
    let evidence: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM evidence WHERE id NOT IN
             (SELECT evidence_id FROM listing_images WHERE evidence_id IS NOT NULL)",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    assert_eq!(evidence as u64, s.counts.pages_ok + 2);
}

#[test]
fn crawl_once_from_the_cli() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (_server, base) = rt.block_on(start(FixtureOptions::from_source_tree()));
    let s = common::Scratch::new();
    s.run(&["brands", "import", common::demo_brands().to_str().unwrap()])
        .ok();
    let config = format!(
        "[crawl]\ndefinitions = \"{}\"\n[platforms.jd]\nbase_url = \"{base}/jd\"\nlogin_required = false\nfetch = \"http\"\n",
        common::repo().join("crawlers").display()
    );
    let cfg = s.write("markwatch.toml", &config);
    let out = s
        .run(&[
            "--config",
            cfg.to_str().unwrap(),
            "crawl",
            "--once",
            "--platform",
            "jd",
            "--keyword",
            "索尼",
            "--no-details",
        ])
        .ok();
    assert!(out.contains("jd") && out.contains("ok"), "{out}");
    let rows = rt.block_on(stored(&s.db()));
    let counts: BTreeMap<&str, usize> = rows.iter().fold(BTreeMap::new(), |mut m, r| {
        *m.entry(r.0.as_str()).or_default() += 1;
        m
    });
    assert_eq!(counts.get("jd").copied(), Some(42), "{counts:?}");
    let run = s.run(&[
        "--config",
        cfg.to_str().unwrap(),
        "crawl",
        "--once",
        "--platform",
        "ebay",
    ]);
    assert_eq!(run.code(), 1);
    assert!(
        run.stderr().contains("no platform `ebay`"),
        "{}",
        run.stderr()
    );
}

/// `crawl --once` paces a platform as `platforms.<name>.requests_per_second` and
/// `concurrency` say, not as its definition does (amazon_cn: 1 request/s, 2 at once). Every
/// page is answered slowly so that requests a crawler has in flight overlap at the server,
/// which counts them: no timing is asserted.
#[test]
fn crawl_once_honours_a_platforms_pace_override() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let options = FixtureOptions {
        fault_rate: 1.0,
        fault_pool: vec![Fault::Slow { ms: 400 }],
        ..FixtureOptions::from_source_tree()
    };
    let (server, base) = rt.block_on(start(options));
    let s = common::Scratch::new();
    s.run(&["brands", "import", common::demo_brands().to_str().unwrap()])
        .ok();
    let config = |pace: &str| {
        let config = format!(
            "[crawl]\ndefinitions = \"{}\"\n[platforms.amazon_cn]\nbase_url = \"{base}/amazon_cn\"\n{pace}",
            common::repo().join("crawlers").display()
        );
        s.write("markwatch.toml", &config)
    };
    let crawl = |cfg: &Path, keywords: &[&str]| {
        let mut args = vec![
            "--log-format",
            "json",
            "--config",
            cfg.to_str().unwrap(),
            "crawl",
            "--once",
            "--platform",
            "amazon_cn",
            "--no-details",
        ];
        for k in keywords {
            args.extend(["--keyword", k]);
        }
        let run = s.run(&args);
        run.ok();
        run
    };
    // The pace the fetcher was built with, as the crawl logs it.
    let logged_pace = |run: &common::Run| -> (f64, u64) {
        let line = run
            .stderr()
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .find(|v| v["fields"]["message"] == "crawl pace")
            .unwrap_or_else(|| panic!("no `crawl pace` line in:\n{}", run.stderr()));
        let fields = &line["fields"];
        assert_eq!(fields["platform"], "amazon_cn", "{line}");
        (
            fields["requests_per_second"].as_f64().unwrap(),
            fields["concurrency"].as_u64().unwrap(),
        )
    };
    let search = "/amazon_cn/s?";

    // The override: no rate limit, 4 requests at once. Every keyword of the registry is
    // searched at once, so the crawler keeps 4 requests in flight, and never more.
    let cfg = config("requests_per_second = 0\nconcurrency = 4\n");
    let run = crawl(&cfg, &[]);
    let pages = server.log().count(search);
    assert!(pages > 8, "only {pages} search pages");
    let seen: Vec<u32> = server.log().entries().iter().map(|e| e.in_flight).collect();
    assert_eq!(
        server.log().max_in_flight(search),
        4,
        "requests in flight as each arrived: {seen:?}"
    );
    assert_eq!(logged_pace(&run), (0.0, 4));
    let out = run.stdout();
    assert!(out.contains("amazon_cn") && out.contains("ok"), "{out}");

    // Without it, the definition's pace: at most 2 at once (1 request/s keeps them apart).
    let cfg = config("");
    let before = server.log().len();
    let run = crawl(&cfg, &["索尼", "乐高", "耐克"]);
    let later: Vec<_> = server.log().entries().split_off(before);
    assert!(later.len() >= 3, "{later:?}");
    assert!(later.iter().all(|e| e.in_flight <= 2), "{later:?}");
    assert_eq!(logged_pace(&run), (1.0, 2));
}

/// Crawled before the registry was imported, every listing is clear; `rematch` then judges
/// them against the registry, and a second rematch has nothing left to change.
#[test]
fn rematch_rescores_after_the_registry_changes() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (_server, base) = rt.block_on(start(FixtureOptions::from_source_tree()));
    let s = common::Scratch::new();
    let config = format!(
        "[crawl]\ndefinitions = \"{}\"\n[platforms.jd]\nbase_url = \"{base}/jd\"\nlogin_required = false\nfetch = \"http\"\n",
        common::repo().join("crawlers").display()
    );
    let cfg = s.write("markwatch.toml", &config);
    let cfg = cfg.to_str().unwrap();
    s.run(&[
        "--config",
        cfg,
        "crawl",
        "--once",
        "--platform",
        "jd",
        "--keyword",
        "乐高",
        "--no-details",
    ])
    .ok();
    let verdicts = |db: &Database| -> BTreeMap<String, usize> {
        rt.block_on(async {
            let mut conn = common::connect(db).await;
            let rows: Vec<(String, i64)> =
                sqlx::query_as("SELECT verdict, count(*) FROM matches GROUP BY verdict")
                    .fetch_all(&mut conn)
                    .await
                    .unwrap();
            rows.into_iter().map(|(v, n)| (v, n as usize)).collect()
        })
    };
    let before = verdicts(&s.db());
    assert_eq!(before.keys().collect::<Vec<_>>(), ["clear"], "{before:?}");

    s.run(&["brands", "import", common::demo_brands().to_str().unwrap()])
        .ok();
    let out = s.run(&["rematch"]).ok();
    let after = verdicts(&s.db());
    assert!(
        after.get("infringing").copied().unwrap_or(0) > 0,
        "{after:?}"
    );
    assert_eq!(
        after.values().sum::<usize>(),
        before["clear"],
        "one verdict per listing"
    );
    assert!(out.contains("clear -> infringing"), "{out}");

    let again = s.run(&["rematch"]).ok();
    assert!(again.contains("0 changed"), "{again}");
    assert_eq!(verdicts(&s.db()), after);
}

/// The benchmark command runs end to end and reports every figure it promises.
#[test]
fn bench_crawl_reports_throughput_and_memory() {
    let s = common::Scratch::new();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_markwatch"))
        .current_dir(common::repo())
        .args([
            "bench",
            "crawl",
            "--scale",
            "1",
            "--runs",
            "1",
            "--platform",
            "jd",
        ])
        .env("MARKWATCH_DATABASE", s.db_arg())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for want in [
        "end to end",
        "parse only",
        "pages/s",
        "listings/s",
        "peak RSS",
    ] {
        assert!(stdout.contains(want), "no `{want}` in:\n{stdout}");
    }
    let e2e = stdout
        .lines()
        .find(|l| l.starts_with("end to end ("))
        .unwrap();
    let pages_per_sec: f64 = e2e.split_whitespace().nth(4).unwrap().parse().unwrap();
    assert!(pages_per_sec > 0.0, "{e2e}");
    // Peak RSS in MiB and in MB, the unit targets are set in: the two must agree.
    let rss = stdout.lines().find(|l| l.starts_with("peak RSS")).unwrap();
    let words: Vec<&str> = rss.split_whitespace().collect();
    let mib: f64 = words[2].parse().unwrap();
    let mb: f64 = words[4].trim_start_matches('(').parse().unwrap();
    assert!(mib > 0.0 && (mb - mib * 1.048_576).abs() < 2.0, "{rss}");
}

/// Listings of each platform that have no item page.
async fn missing_item_pages(db: &Database) -> BTreeMap<String, i64> {
    let mut conn = common::connect(db).await;
    let rows: Vec<(String, i64)> = sqlx::query_as(
        "SELECT platform, count(*) FROM listings WHERE detail_evidence_id IS NULL GROUP BY platform",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    rows.into_iter().collect()
}

/// Item page requests the server has answered, per platform.
fn item_page_hits(server: &FixtureServer) -> BTreeMap<String, usize> {
    let mut paths = std::collections::HashMap::new();
    for p in PLATFORMS {
        for l in server.listings(p).unwrap() {
            paths.insert(FixtureServer::item_path(p, &l.item_id).unwrap(), p);
        }
    }
    let mut hits = BTreeMap::new();
    for e in server.log().entries() {
        if let Some(p) = paths.get(e.path.as_str()) {
            *hits.entry(p.to_string()).or_default() += 1;
        }
    }
    hits
}

/// Item pages an earlier run left unfetched (here: a run without item pages, as a run cut
/// short before it reached them leaves its listings) are fetched by the next crawls, at most
/// `crawl.missing_item_pages_per_run` per platform and run, and the listings judged again with
/// what the item pages add: the verdicts end as a crawl that fetched every item page at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crawl_fetches_the_item_pages_an_earlier_run_left() {
    let (server, base) = start(FixtureOptions::from_source_tree()).await;
    let keywords = all_keywords(&server);
    let dir = tempfile::tempdir().unwrap();

    // What one crawl that fetched every item page leaves.
    let whole = common::fresh_database(dir.path(), "whole.db");
    run(
        crawl_of(&base, &PLATFORMS, true),
        &Store::open(&whole).await.unwrap(),
        &keywords,
    )
    .await;
    assert_eq!(missing_item_pages(&whole).await, BTreeMap::new());
    let want = assert_every_listing_judged(&whole).await;

    let db = common::fresh_database(dir.path(), "m.db");
    let store = Store::open(&db).await.unwrap();
    run(crawl_of(&base, &PLATFORMS, false), &store, &keywords).await;
    let missing = missing_item_pages(&db).await;
    assert_eq!(missing.len(), PLATFORMS.len(), "{missing:?}");
    let earlier = assert_every_listing_judged(&db).await;
    // Listing ids differ between the two databases: compare by platform and item id.
    let want: BTreeMap<&str, &str> = want.iter().map(|j| (j.0.as_str(), j.1.as_str())).collect();
    let differ = |got: &[Judged]| {
        assert_eq!(got.len(), want.len());
        got.iter()
            .filter(|j| want.get(j.0.as_str()) != Some(&j.1.as_str()))
            .count()
    };
    assert!(
        differ(&earlier) > 0,
        "no verdict depends on an item page: the test proves nothing"
    );

    // The next crawl fetches 10 of each platform's missing item pages, and no other.
    let before = item_page_hits(&server);
    let summaries = run(
        crawl_with(&base, &PLATFORMS, true, |c| {
            c.crawl.missing_item_pages_per_run = 10
        }),
        &store,
        &keywords,
    )
    .await;
    for s in &summaries {
        assert_eq!(s.counts.pages_failed + s.counts.pages_blocked, 0, "{s:?}");
    }
    let after = item_page_hits(&server);
    for p in PLATFORMS {
        let fetched = after.get(p).copied().unwrap_or(0) - before.get(p).copied().unwrap_or(0);
        assert_eq!(fetched, 10, "{p}: item pages fetched");
    }
    let left = missing_item_pages(&db).await;
    for (p, n) in &missing {
        assert_eq!(left.get(p).copied().unwrap_or(0), n - 10, "{p}: {left:?}");
    }

    // Later crawls, as many as it takes, fetch the rest; then nothing lacks its item page, and
    // each verdict is the one the item page gives.
    run(crawl_of(&base, &PLATFORMS, true), &store, &keywords).await;
    assert_eq!(missing_item_pages(&db).await, BTreeMap::new());
    let got = assert_every_listing_judged(&db).await;
    assert_eq!(
        differ(&got),
        0,
        "verdicts differ from a crawl that fetched every item page"
    );
    let settled = item_page_hits(&server);
    run(crawl_of(&base, &PLATFORMS, true), &store, &keywords).await;
    assert_eq!(
        item_page_hits(&server),
        settled,
        "an item page fetched twice"
    );
}
