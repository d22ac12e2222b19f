//! The whole crawl against the modern fixture platforms, as a user runs it: accounts logged in
//! (over the fixture login forms, as a person would in a browser) and imported, then
//! `markwatch crawl --once` through the real binary, Taobao, Tmall and JD in Debian's Chromium.

mod common;

use std::collections::BTreeSet;
use std::path::PathBuf;

use markwatch::{FixtureMode, FixtureOptions, FixtureServer, ModernOptions};
use sqlx::sqlite::SqlitePoolOptions;

fn chromium(test: &str) -> Option<PathBuf> {
    let p = PathBuf::from("/usr/bin/chromium");
    common::require(
        test,
        "Chromium",
        p.is_file().then_some(p),
        "apt install chromium",
    )
}

async fn start() -> (FixtureServer, String) {
    start_with(ModernOptions::default()).await
}

async fn start_with(modern: ModernOptions) -> (FixtureServer, String) {
    let server = FixtureServer::new(FixtureOptions {
        mode: FixtureMode::Modern,
        modern,
        ..FixtureOptions::from_source_tree()
    })
    .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(markwatch::serve_fixtures(listener, server.clone()));
    (server, format!("http://{addr}"))
}

/// Posts the fixture login form; returns the session as a Netscape cookies.txt, as a browser
/// extension would export it.
async fn log_in(base: &str, path: &str, form: &[(&str, &str)]) -> String {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let resp = client
        .post(format!("{base}{path}"))
        .form(form)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 302, "fixture login at {path}");
    let mut out = String::from("# Netscape HTTP Cookie File\n");
    for v in resp.headers().get_all(reqwest::header::SET_COOKIE) {
        let pair = v.to_str().unwrap().split(';').next().unwrap();
        let (name, value) = pair.split_once('=').unwrap();
        out.push_str(&format!("127.0.0.1\tFALSE\t/\tFALSE\t0\t{name}\t{value}\n"));
    }
    out
}

/// Every listing the fixture catalogue holds for `platform` under `keywords`.
fn catalogue(server: &FixtureServer, platform: &str, keywords: &[&str]) -> BTreeSet<String> {
    keywords
        .iter()
        .flat_map(|k| server.search_results(platform, k).unwrap())
        .map(|l| l.item_id.clone())
        .collect()
}

// The binary runs while this test waits on it: the fixture server needs a thread of its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logged_in_accounts_read_every_platform_in_the_browser_with_evidence() {
    if chromium("logged_in_accounts_read_every_platform_in_the_browser_with_evidence").is_none() {
        return;
    }
    let (server, base) = start().await;
    let scratch = common::Scratch::new();
    let mut config = format!(
        "[crawl]\ndefinitions = \"{}\"\n",
        common::repo().join("crawlers").display()
    );
    for p in ["taobao", "tmall", "jd", "amazon_cn"] {
        config.push_str(&format!(
            "[platforms.{p}]\nbase_url = \"{base}/{p}\"\nrequests_per_second = 0\nconcurrency = 4\n"
        ));
    }
    scratch.write("markwatch.toml", &config);
    scratch
        .run(&["brands", "import", common::demo_brands().to_str().unwrap()])
        .ok();

    let taobao = log_in(
        &base,
        "/taobao/member/login.jhtml",
        &[
            ("fm-login-id", "tb_watcher_1"),
            ("fm-login-password", "fixture-tb-1"),
        ],
    )
    .await;
    let tmall = log_in(
        &base,
        "/tmall/member/login.jhtml",
        &[
            ("fm-login-id", "tb_watcher_2"),
            ("fm-login-password", "fixture-tb-2"),
        ],
    )
    .await;
    let jd = log_in(
        &base,
        "/jd/new/login.aspx",
        &[("loginname", "jd_watcher_1"), ("nloginpwd", "fixture-jd-1")],
    )
    .await;
    let session_value = taobao
        .lines()
        .find(|l| l.contains("\tcookie2\t"))
        .and_then(|l| l.rsplit('\t').next())
        .unwrap()
        .to_owned();
    for (platform, name, cookies) in [
        ("taobao", "tb_watcher_1", &taobao),
        ("tmall", "tb_watcher_2", &tmall),
        ("jd", "jd_watcher_1", &jd),
    ] {
        let file = scratch.write(&format!("{platform}.txt"), cookies);
        scratch
            .run(&[
                "accounts",
                "import",
                platform,
                name,
                "--cookies",
                file.to_str().unwrap(),
            ])
            .ok();
    }

    // A keyword of two pages on Taobao, one on Tmall (60 a page), one of both halves on JD.
    const KEYWORDS: [&str; 3] = ["nike", "迪奥", "索尼"];
    let mut args = vec!["crawl", "--once"];
    for k in KEYWORDS {
        args.extend(["--keyword", k]);
    }
    let run = scratch.run(&args);
    assert_eq!(run.code(), 0, "{}\n{}", run.stdout(), run.stderr());
    let report = format!("{}\n{}", run.stdout(), run.stderr());
    println!("{report}");

    let db = scratch.db_file();
    let pool = SqlitePoolOptions::new()
        .connect(&format!("sqlite://{}?mode=ro", db.display()))
        .await
        .unwrap();
    for platform in ["taobao", "tmall", "jd", "amazon_cn"] {
        let stored: Vec<String> =
            sqlx::query_scalar("SELECT item_id FROM listings WHERE platform = ?")
                .bind(platform)
                .fetch_all(&pool)
                .await
                .unwrap();
        let got: BTreeSet<String> = stored.iter().cloned().collect();
        assert_eq!(
            stored.len(),
            got.len(),
            "{platform}: a listing stored twice"
        );
        assert_eq!(
            got,
            catalogue(&server, platform, &KEYWORDS),
            "{platform}: every listing, once\n{report}"
        );
    }
    // Taobao's listings came from the API replies its page's script received: kept as parts.
    let captures: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM evidence_parts p JOIN evidence e ON e.id = p.evidence_id
         WHERE p.kind = 'capture' AND e.url LIKE '%/taobao/search%'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert!(captures > 0, "no captured mtop reply in the evidence");
    // Every flagged listing whose item page was fetched has a screenshot of it in its
    // evidence, those a photo flagged after their item page too (the page is taken again).
    let unshot: Vec<(String, String)> = sqlx::query_as(
        "SELECT l.platform, l.item_id FROM listings l JOIN matches m ON m.listing_id = l.id
         WHERE m.verdict IN ('infringing', 'suspect') AND l.detail_evidence_id IS NOT NULL
           AND NOT EXISTS (SELECT 1 FROM evidence_parts p
                           WHERE p.evidence_id = l.detail_evidence_id AND p.kind = 'screenshot')",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert!(
        unshot.is_empty(),
        "flagged without a screenshot: {unshot:?}"
    );
    let photo_flagged: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM matches m JOIN listings l ON l.id = m.listing_id
         WHERE m.verdict IN ('infringing', 'suspect') AND m.mark_id IS NULL
           AND m.reasons LIKE '%image_match%' AND l.detail_evidence_id IS NOT NULL",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert!(photo_flagged > 0, "no listing flagged by its photo alone");
    pool.close().await;
    scratch.run(&["evidence", "verify"]).ok();

    // The session cookie is sealed: its value is nowhere in the database's files.
    for suffix in ["", "-wal", "-shm"] {
        let path = PathBuf::from(format!("{}{suffix}", db.display()));
        if let Ok(bytes) = std::fs::read(&path) {
            assert!(
                !bytes
                    .windows(session_value.len())
                    .any(|w| w == session_value.as_bytes()),
                "{} holds a cookie value",
                path.display()
            );
        }
    }
}

/// Taobao's item ids stored, and whether one was stored twice.
async fn stored_taobao(db: &std::path::Path) -> Vec<String> {
    let pool = SqlitePoolOptions::new()
        .connect(&format!("sqlite://{}?mode=ro", db.display()))
        .await
        .unwrap();
    let ids = sqlx::query_scalar("SELECT item_id FROM listings WHERE platform = 'taobao'")
        .fetch_all(&pool)
        .await
        .unwrap();
    pool.close().await;
    ids
}

// The crawl meets the slider, stops and keeps what it read; a person passes the slider in the
// account's browser (`accounts login --resume`); the next crawl reads the rest.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_challenged_account_resumes_after_a_person_passes_the_slider_and_nothing_is_lost_or_doubled()
 {
    if chromium("a_challenged_account_resumes").is_none() {
        return;
    }
    // Three signed API calls a session, then the slider: the crawl below makes four.
    let (server, base) = start_with(ModernOptions {
        mtop_max_calls: 3,
        ..ModernOptions::default()
    })
    .await;
    let scratch = common::Scratch::new();
    scratch.write(
        "markwatch.toml",
        &format!(
            "[crawl]\ndefinitions = \"{}\"\n[crawl.browser]\nscreenshots = false\n\
             [platforms.taobao]\nbase_url = \"{base}/taobao\"\nrequests_per_second = 0\n",
            common::repo().join("crawlers").display()
        ),
    );
    let cookies = log_in(
        &base,
        "/taobao/member/login.jhtml",
        &[
            ("fm-login-id", "tb_watcher_1"),
            ("fm-login-password", "fixture-tb-1"),
        ],
    )
    .await;
    let file = scratch.write("taobao.txt", &cookies);
    let import = ["accounts", "import", "taobao", "tb_watcher_1", "--cookies"];
    scratch
        .run(&[&import[..], &[file.to_str().unwrap()]].concat())
        .ok();
    const KEYWORDS: [&str; 3] = ["nike", "迪奥", "索尼"];
    let mut crawl = vec!["crawl", "--once", "--platform", "taobao", "--no-details"];
    for k in KEYWORDS {
        crawl.extend(["--keyword", k]);
    }

    let first = scratch.run(&crawl);
    let report = format!("{}\n{}", first.stdout(), first.stderr());
    assert_eq!(first.code(), 3, "a person is needed:\n{report}");
    assert!(
        first.stderr().contains("taobao was not crawled through"),
        "{report}"
    );
    let list: serde_json::Value =
        serde_json::from_str(&scratch.run(&["accounts", "list", "--json"]).ok()).unwrap();
    assert_eq!(list[0]["state"], "challenged", "{list}");
    let before = stored_taobao(&scratch.db_file()).await;
    let all = catalogue(&server, "taobao", &KEYWORDS);
    assert!(
        !before.is_empty() && before.len() < all.len(),
        "what was read before the slider is kept ({} of {}):\n{report}",
        before.len(),
        all.len()
    );

    // The person: the account's browser opens on the challenge; they drag the slider.
    let port = common::person::free_port();
    let login = scratch
        .command()
        .args([
            "accounts",
            "login",
            "taobao",
            "tb_watcher_1",
            "--resume",
            "--remote-debugging",
            &port.to_string(),
            "--timeout-secs",
            "120",
        ])
        .env_remove("RUST_LOG")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let (_browser, page) = common::person::connect(port, "/_____tmd_____/punish").await;
    common::person::drag_slider(&page).await;
    let out = tokio::task::spawn_blocking(move || login.wait_with_output().unwrap())
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let list: serde_json::Value =
        serde_json::from_str(&scratch.run(&["accounts", "list", "--json"]).ok()).unwrap();
    assert_eq!(list[0]["state"], "ok", "{list}");

    let second = scratch.run(&crawl);
    let report = format!("{}\n{}", second.stdout(), second.stderr());
    assert_eq!(second.code(), 0, "{report}");
    let after = stored_taobao(&scratch.db_file()).await;
    let unique: BTreeSet<String> = after.iter().cloned().collect();
    assert_eq!(after.len(), unique.len(), "a listing stored twice");
    assert_eq!(unique, all, "every listing, once:\n{report}");
}
