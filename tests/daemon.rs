//! The real binary under `markwatch serve`, against the fixture platforms on loopback: a fast
//! schedule, health and metrics over HTTP, SIGTERM, restarts, `crawl --now`, and kill -9 at
//! several points of a run. Rate limits are lifted or raised so runs take seconds.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{Running, Scratch};
use markwatch::FixtureOptions;
use sqlx::{AnyConnection, Connection};

/// Every platform, few keywords: about 200 listings over the four fixture platforms.
const KEYWORDS: &str = r#"["nike", "香奈儿", "lego"]"#;

/// The bearer token `/metrics` wants (`daemon.metrics_token_file`).
const METRICS_TOKEN: &str = "metrics-token-for-the-tests";

/// A configuration for `serve` in `scratch`: platform watches off, one watch `fast` on `cron`
/// over all four platforms, each fetching at `rps` (0 = unlimited) from the fixture server.
fn write_config(scratch: &Scratch, fixtures: &Running, cron: &str, rps: f64) -> PathBuf {
    let mut toml = format!(
        r#"
[crawl]
definitions = "{defs}"
# Scheduling is tested here, not photos (tests/images.rs) or screenshots: item pages over
# HTTP, no Chromium, and runs short enough for a four-second cron.
images_per_run = 0
[crawl.browser]
screenshots = false
[schedule]
jitter_secs = 0
[[schedule.watch]]
name = "fast"
cron = "{cron}"
keywords = {KEYWORDS}
[daemon]
shutdown_timeout_secs = 8
metrics_token_file = "{metrics_token}"
[web]
addr = "127.0.0.1:0"
[email]
dir = "{outbox}"
batch_window_secs = 1
batch_max_wait_secs = 2
poll_secs = 1
"#,
        defs = common::repo().join("crawlers").display(),
        outbox = scratch.path("outbox").display(),
        metrics_token = scratch.write("metrics-token", METRICS_TOKEN).display(),
    );
    for p in common::PLATFORMS {
        toml.push_str(&format!(
            "[platforms.{p}]\nbase_url = \"{}\"\nschedule = \"off\"\nrequests_per_second = {rps}\nlogin_required = false\nfetch = \"http\"\n",
            fixtures.url(&format!("/{p}"))
        ));
    }
    scratch.write("markwatch.toml", &toml)
}

/// `markwatch --db <scratch db> --config <config> ARGS`, run to the end: (status, stdout, stderr).
fn run(scratch: &Scratch, config: &Path, args: &[&str]) -> (i32, String, String) {
    let out = scratch
        .command()
        .arg("--config")
        .arg(config)
        .args(args)
        .output()
        .expect("run markwatch");
    (
        out.status.code().expect("exited"),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Like [`run`], asserting success; returns stdout.
fn run_ok(scratch: &Scratch, config: &Path, args: &[&str]) -> String {
    let (code, out, err) = run(scratch, config, args);
    assert_eq!(
        code, 0,
        "markwatch {args:?}\nstdout:\n{out}\nstderr:\n{err}"
    );
    out
}

/// `markwatch serve` running in the background, its log in a file.
struct Daemon {
    child: Child,
    log: PathBuf,
}

impl Daemon {
    fn start(scratch: &Scratch, config: &Path) -> Daemon {
        Daemon::start_on(scratch, config, &scratch.db_arg())
    }

    /// A daemon on the database `db` (a symlink to the file, say).
    fn start_on(scratch: &Scratch, config: &Path, db: &str) -> Daemon {
        Daemon::process(scratch, config, db, &["serve"])
    }

    /// `markwatch worker ARGS` on the scratch database.
    fn worker(scratch: &Scratch, config: &Path, args: &[&str]) -> Daemon {
        let args: Vec<&str> = ["worker"].into_iter().chain(args.iter().copied()).collect();
        Daemon::process(scratch, config, &scratch.db_arg(), &args)
    }

    /// A long-running `markwatch` command, its log in a file.
    fn process(scratch: &Scratch, config: &Path, db: &str, args: &[&str]) -> Daemon {
        let log = scratch.path(&format!("{}-{}.log", args[0], rand_suffix()));
        let mut cmd = Command::new(common::bin());
        cmd.current_dir(scratch.dir.path())
            .arg("--config")
            .arg(config)
            .arg("--db")
            .arg(db)
            .args(args)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap());
        for (key, _) in std::env::vars() {
            if key.starts_with("MARKWATCH_") {
                cmd.env_remove(key);
            }
        }
        cmd.env("RUST_LOG", "markwatch=info");
        Daemon {
            child: cmd.spawn().expect("start markwatch"),
            log,
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn signal(&self, name: &str) {
        let ok = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.child.id().to_string())
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill -{name}");
    }

    /// SIGTERM, then the exit status, which must come within `within`.
    async fn terminate(mut self, within: Duration) -> (i32, Duration, String) {
        self.signal("TERM");
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                let log = self.log();
                let Some(code) = status.code() else {
                    panic!("killed by a signal after SIGTERM: {status:?}; log:\n{log}");
                };
                return (code, start.elapsed(), log);
            }
            if start.elapsed() > within {
                let _ = self.child.kill();
                panic!("no exit within {within:?} of SIGTERM; log:\n{}", self.log());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// kill -9: no chance to clean up.
    fn kill9(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn rand_suffix() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

async fn db(scratch: &Scratch) -> AnyConnection {
    common::connect(&scratch.db()).await
}

/// Whether the daemon has made its database yet (a PostgreSQL one exists from the start; its
/// tables appear when the daemon opens it).
fn opened(scratch: &Scratch) -> bool {
    scratch.is_postgres() || scratch.db_file().exists()
}

async fn scalar(scratch: &Scratch, sql: &'static str) -> i64 {
    let mut conn = db(scratch).await;
    let v = sqlx::query_scalar(sql).fetch_one(&mut conn).await.unwrap();
    conn.close().await.unwrap();
    v
}

/// Polls `sql` (a count) until it reaches `at_least`, or panics with the daemon's log.
async fn wait_for(
    scratch: &Scratch,
    daemon: &Daemon,
    sql: &'static str,
    at_least: i64,
    within: Duration,
) {
    let start = Instant::now();
    loop {
        // The database appears only once the daemon has opened it.
        if opened(scratch) {
            let mut conn = db(scratch).await;
            let n: Option<i64> = sqlx::query_scalar(sql).fetch_one(&mut conn).await.ok();
            conn.close().await.unwrap();
            if n.is_some_and(|n| n >= at_least) {
                return;
            }
        }
        assert!(
            start.elapsed() < within,
            "waited {within:?} for `{sql}` >= {at_least}; log:\n{}",
            daemon.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The daemon's HTTP address, once it listens (not an address a killed one left behind).
async fn api_addr(scratch: &Scratch, daemon: &Daemon) -> String {
    let start = Instant::now();
    loop {
        if opened(scratch) {
            let mut conn = db(scratch).await;
            let row: Option<(String, String)> = sqlx::query_as(
                "SELECT a.value, p.value FROM daemon_state a, daemon_state p
                 WHERE a.key = 'api_addr' AND p.key = 'pid'",
            )
            .fetch_optional(&mut conn)
            .await
            .ok()
            .flatten();
            conn.close().await.unwrap();
            if let Some((addr, pid)) = row
                && pid == daemon.child.id().to_string()
            {
                return addr;
            }
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the daemon never listened; log:\n{}",
            daemon.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `/metrics`, with the configured bearer token.
async fn scrape(addr: &str) -> reqwest::Response {
    reqwest::Client::new()
        .get(format!("http://{addr}/metrics"))
        .bearer_auth(METRICS_TOKEN)
        .send()
        .await
        .unwrap()
}

async fn get(url: &str) -> (u16, String) {
    let resp = reqwest::get(url).await.unwrap();
    (resp.status().as_u16(), resp.text().await.unwrap())
}

/// A sample's value in Prometheus text, by its exact name and labels.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

/// (watch, slot, trigger, status) of every run, in order.
async fn runs(scratch: &Scratch) -> Vec<(String, String, String, String)> {
    let mut conn = db(scratch).await;
    sqlx::query_as("SELECT watch, slot, trigger, status FROM schedule_runs ORDER BY id")
        .fetch_all(&mut conn)
        .await
        .unwrap()
}

fn import_brands(scratch: &Scratch, config: &Path) {
    run_ok(
        scratch,
        config,
        &["brands", "import", common::demo_brands().to_str().unwrap()],
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn scheduled_runs_are_counted_stop_cleanly_and_resume_without_doubling() {
    let fixtures = Running::start(FixtureOptions::from_source_tree()).await;
    let scratch = Scratch::new();
    let config = write_config(&scratch, &fixtures, "*/4 * * * * *", 0.0);
    import_brands(&scratch, &config);

    let daemon = Daemon::start(&scratch, &config);
    let addr = api_addr(&scratch, &daemon).await;
    let (status, body) = get(&format!("http://{addr}/healthz")).await;
    assert_eq!((status, body.trim()), (200, "ok"));
    let (status, body) = get(&format!("http://{addr}/readyz")).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"ready\":true"), "{body}");

    // Two scheduled runs finish.
    wait_for(
        &scratch,
        &daemon,
        "SELECT count(*) FROM schedule_runs WHERE trigger = 'schedule' AND status = 'ok'",
        2,
        Duration::from_secs(90),
    )
    .await;
    let listings = scalar(&scratch, "SELECT count(*) FROM listings").await;
    assert!(listings > 100, "{listings} listings");
    assert_eq!(
        scalar(&scratch, "SELECT count(*) FROM matches").await,
        listings,
        "every listing is judged once"
    );
    for p in common::PLATFORMS {
        let n: i64 = {
            let mut conn = db(&scratch).await;
            sqlx::query_scalar("SELECT count(*) FROM listings WHERE platform = $1")
                .bind(p)
                .fetch_one(&mut conn)
                .await
                .unwrap()
        };
        assert!(n > 0, "no listings from {p}");
    }

    // Matches became draft notices on every platform, and alert emails were written.
    for p in common::PLATFORMS {
        let mut conn = db(&scratch).await;
        let n: i64 = sqlx::query_scalar("SELECT count(*) FROM notices WHERE platform = $1")
            .bind(p)
            .fetch_one(&mut conn)
            .await
            .unwrap();
        assert!(n > 0, "no draft notices for {p}");
    }
    wait_for(
        &scratch,
        &daemon,
        "SELECT count(*) FROM alerts WHERE state = 'sent'",
        1,
        Duration::from_secs(30),
    )
    .await;
    let emails = std::fs::read_dir(scratch.path("outbox"))
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .path()
                .extension()
                .is_some_and(|x| x == "eml")
        })
        .count();
    assert!(emails > 0, "no .eml alerts written");

    // /metrics counts what the database holds.
    let resp = scrape(&addr).await;
    assert_eq!(resp.status().as_u16(), 200);
    assert_eq!(
        resp.headers()["content-type"],
        "text/plain; version=0.0.4; charset=utf-8"
    );
    let text = resp.text().await.unwrap();
    // A scraper that asks for OpenMetrics (Prometheus does) gets it, with the same samples.
    let resp = reqwest::Client::new()
        .get(format!("http://{addr}/metrics"))
        .bearer_auth(METRICS_TOKEN)
        .header(
            "accept",
            "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5,*/*;q=0.1",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.headers()["content-type"],
        "application/openmetrics-text; version=1.0.0; charset=utf-8"
    );
    let open_metrics = resp.text().await.unwrap();
    assert!(open_metrics.ends_with("# EOF\n"), "{open_metrics}");
    assert!(
        open_metrics.contains("# TYPE markwatch_pages_fetched counter\n"),
        "{open_metrics}"
    );
    assert!(
        sample(
            &open_metrics,
            r#"markwatch_pages_fetched_total{platform="taobao",outcome="ok"}"#
        )
        .is_some(),
        "{open_metrics}"
    );
    let mut conn = db(&scratch).await;
    let (ok, new): (i64, i64) = sqlx::query_as(
        "SELECT CAST(sum(pages_ok) AS BIGINT), CAST(sum(listings_new) AS BIGINT)
         FROM crawl_runs WHERE platform = 'taobao'",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    let infringing: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM matches m JOIN listings l ON l.id = m.listing_id
         WHERE l.platform = 'tmall' AND m.verdict = 'infringing'",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    conn.close().await.unwrap();
    // A run may finish between the two reads: the scrape is never behind the earlier read.
    let scraped_ok = sample(
        &text,
        r#"markwatch_pages_fetched_total{platform="taobao",outcome="ok"}"#,
    )
    .unwrap();
    assert!(
        scraped_ok >= ok as f64 && ok > 0,
        "{scraped_ok} vs {ok}\n{text}"
    );
    assert_eq!(
        sample(&text, r#"markwatch_listings_new_total{platform="taobao"}"#),
        Some(new as f64),
        "{text}"
    );
    assert!(infringing > 0);
    assert_eq!(
        sample(
            &text,
            r#"markwatch_matches{platform="tmall",verdict="infringing"}"#
        ),
        Some(infringing as f64)
    );
    assert!(text.contains("markwatch_crawl_duration_seconds_bucket{platform=\"jd\",le=\"+Inf\"}"));
    assert!(text.contains("# TYPE markwatch_alert_oldest_queued_age_seconds gauge"));
    let mut conn = db(&scratch).await;
    let drafts: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM notices WHERE platform = 'jd' AND state = 'draft'",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    conn.close().await.unwrap();
    let scraped = sample(&text, r#"markwatch_notices{platform="jd",state="draft"}"#).unwrap();
    assert!(
        scraped >= drafts as f64 && drafts > 0,
        "{scraped} vs {drafts}"
    );
    assert!(
        text.lines()
            .any(|l| l.starts_with("markwatch_alerts{") && l.contains("state=\"sent\"")),
        "{text}"
    );
    assert!(
        sample(
            &text,
            r#"markwatch_schedule_runs_total{watch="fast",trigger="schedule",status="ok"}"#
        )
        .is_some_and(|n| n >= 2.0),
        "{text}"
    );

    // SIGTERM: exit 0 within the bound (8 s), nothing left running, the address withdrawn.
    let (code, took, log) = daemon.terminate(Duration::from_secs(12)).await;
    assert_eq!(code, 0, "{log}");
    assert!(took < Duration::from_secs(9), "{took:?}");
    assert!(log.contains("stopped"), "{log}");
    assert_eq!(
        scalar(
            &scratch,
            "SELECT count(*) FROM schedule_runs WHERE status = 'running'"
        )
        .await,
        0
    );
    assert_eq!(
        scalar(
            &scratch,
            "SELECT count(*) FROM crawl_runs WHERE status = 'running'"
        )
        .await,
        0
    );
    assert_eq!(
        scalar(
            &scratch,
            "SELECT count(*) FROM daemon_state WHERE key = 'api_addr'"
        )
        .await,
        0
    );

    // Down across a slot, then up: that slot runs once, as a catch-up; no slot runs twice.
    let before = runs(&scratch).await;
    let next_slot: String = {
        let mut conn = db(&scratch).await;
        sqlx::query_scalar("SELECT next_slot FROM schedules WHERE watch = 'fast'")
            .fetch_one(&mut conn)
            .await
            .unwrap()
    };
    tokio::time::sleep(Duration::from_secs(5)).await;
    let daemon = Daemon::start(&scratch, &config);
    wait_for(
        &scratch,
        &daemon,
        "SELECT count(*) FROM schedule_runs WHERE trigger = 'schedule' AND status = 'ok'
         AND id > (SELECT max(id) FROM schedule_runs WHERE trigger = 'catch_up')",
        1,
        Duration::from_secs(60),
    )
    .await;
    let (code, _, log) = daemon.terminate(Duration::from_secs(12)).await;
    assert_eq!(code, 0, "{log}");
    let after = runs(&scratch).await;
    let new_runs = &after[before.len()..];
    let catch_ups: Vec<_> = new_runs.iter().filter(|r| r.2 == "catch_up").collect();
    assert_eq!(catch_ups.len(), 1, "{new_runs:?}");
    assert_eq!(
        catch_ups[0].1, next_slot,
        "the missed slot is the one caught up"
    );
    assert_eq!(new_runs[0].2, "catch_up", "it runs first: {new_runs:?}");
    let mut seen = BTreeSet::new();
    for (watch, slot, _, status) in &after {
        if status != "skipped" && status != "abandoned" {
            assert!(
                seen.insert((watch, slot)),
                "slot {slot} ran twice: {after:?}"
            );
        }
    }
    let last_before = before.iter().map(|r| r.1.as_str()).max().unwrap();
    assert!(
        new_runs.iter().all(|r| r.1.as_str() > last_before),
        "a slot from before the restart ran again: {new_runs:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn crawl_now_asks_the_running_daemon() {
    let fixtures = Running::start(FixtureOptions::from_source_tree()).await;
    let scratch = Scratch::new();
    // Never due during the test: only a manual request starts a run.
    let config = write_config(&scratch, &fixtures, "0 0 1 1 *", 0.0);
    import_brands(&scratch, &config);

    let (code, _, err) = run(&scratch, &config, &["crawl", "--now"]);
    assert_eq!(code, 1);
    assert!(err.contains("no daemon is serving"), "{err}");

    let daemon = Daemon::start(&scratch, &config);
    let addr = api_addr(&scratch, &daemon).await;
    // The control API wants the token the daemon keeps in the database.
    let resp = reqwest::Client::new()
        .post(format!("http://{addr}/api/daemon/crawl"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 401);

    let out = run_ok(&scratch, &config, &["crawl", "--now", "--wait"]);
    assert!(out.contains("started run 1 of watch fast"), "{out}");
    assert!(out.contains("run 1 of watch fast: ok"), "{out}");
    let (code, _, err) = run(&scratch, &config, &["crawl", "--now", "--watch", "nope"]);
    assert_eq!(code, 1);
    assert!(err.contains("no watch `nope`"), "{err}");

    let all = runs(&scratch).await;
    assert_eq!(all.len(), 1, "{all:?}");
    assert_eq!(
        (all[0].0.as_str(), all[0].2.as_str(), all[0].3.as_str()),
        ("fast", "manual", "ok")
    );
    assert!(scalar(&scratch, "SELECT count(*) FROM listings").await > 100);
    let (code, _, log) = daemon.terminate(Duration::from_secs(12)).await;
    assert_eq!(code, 0, "{log}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_second_daemon_on_the_same_database_is_refused() {
    let fixtures = Running::start(FixtureOptions::from_source_tree()).await;
    let scratch = Scratch::new();
    let config = write_config(&scratch, &fixtures, "0 0 1 1 *", 0.0);
    let first = Daemon::start(&scratch, &config);
    api_addr(&scratch, &first).await;
    let (code, _, err) = run(&scratch, &config, &["serve"]);
    assert_eq!(code, 1);
    assert!(err.contains("another markwatch daemon is running"), "{err}");
    let (code, _, log) = first.terminate(Duration::from_secs(12)).await;
    assert_eq!(code, 0, "{log}");
}

/// What one `crawl --once` of the watches' keywords leaves, in a database of its own.
async fn undisturbed(
    fixtures: &Running,
) -> (
    BTreeSet<(String, String)>,
    BTreeSet<(String, String, String)>,
) {
    let reference = Scratch::new();
    let config = write_config(&reference, fixtures, "0 0 1 1 *", 0.0);
    import_brands(&reference, &config);
    let mut args = vec!["crawl", "--once"];
    for k in ["nike", "香奈儿", "lego"] {
        args.extend(["--keyword", k]);
    }
    run_ok(&reference, &config, &args);
    outcome(&reference).await
}

/// Listings, verdicts: what a crawl leaves, as comparable sets.
async fn outcome(
    scratch: &Scratch,
) -> (
    BTreeSet<(String, String)>,
    BTreeSet<(String, String, String)>,
) {
    let mut conn = db(scratch).await;
    let listings: Vec<(String, String)> = sqlx::query_as("SELECT platform, item_id FROM listings")
        .fetch_all(&mut conn)
        .await
        .unwrap();
    let verdicts: Vec<(String, String, String)> = sqlx::query_as(
        "SELECT l.platform, l.item_id, m.verdict FROM matches m JOIN listings l ON l.id = m.listing_id",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    let n = listings.len();
    let listings: BTreeSet<_> = listings.into_iter().collect();
    assert_eq!(listings.len(), n, "a listing stored twice");
    let m = verdicts.len();
    let verdicts: BTreeSet<_> = verdicts.into_iter().collect();
    assert_eq!(verdicts.len(), m, "a listing judged twice");
    (listings, verdicts)
}

#[tokio::test(flavor = "multi_thread")]
async fn kill_9_during_runs_loses_nothing_and_doubles_nothing() {
    let fixtures = Running::start(FixtureOptions::from_source_tree()).await;

    // What one undisturbed crawl of the same keywords leaves.
    let (want_listings, want_verdicts) = undisturbed(&fixtures).await;
    assert!(want_listings.len() > 100);

    // The same watch under the daemon, paced so a run lasts seconds, killed three times.
    let scratch = Scratch::new();
    let config = write_config(&scratch, &fixtures, "*/2 * * * * *", 25.0);
    import_brands(&scratch, &config);
    for delta in [5, 60, 140] {
        let start = if opened(&scratch) {
            scalar(&scratch, "SELECT count(*) FROM evidence").await
        } else {
            0
        };
        let daemon = Daemon::start(&scratch, &config);
        // Evidence rows are pages stored: kill once this run has stored `delta` more.
        wait_for(
            &scratch,
            &daemon,
            "SELECT count(*) FROM evidence",
            start + delta,
            Duration::from_secs(90),
        )
        .await;
        daemon.kill9();
        // Between kills the store is consistent: every stored listing is judged.
        assert_eq!(
            scalar(&scratch, "SELECT count(*) FROM listings l LEFT JOIN matches m ON m.listing_id = l.id WHERE m.id IS NULL").await,
            0,
            "a listing without its verdict after kill -9"
        );
    }
    // Restart: the cut run is resumed under its own slot and finishes. (An earlier resume may
    // have finished before a later kill: wait for one more than before.)
    let resumed_before = scalar(
        &scratch,
        "SELECT count(*) FROM schedule_runs WHERE trigger = 'resume' AND status = 'ok'",
    )
    .await;
    let daemon = Daemon::start(&scratch, &config);
    let addr = api_addr(&scratch, &daemon).await;
    wait_for(
        &scratch,
        &daemon,
        "SELECT count(*) FROM schedule_runs WHERE trigger = 'resume' AND status = 'ok'",
        resumed_before + 1,
        Duration::from_secs(120),
    )
    .await;
    // /metrics counts what the killed runs stored, not only what finished runs recorded.
    // (Runs may go on in between: the scrape comes after the counts it is compared with.)
    let listings = scalar(&scratch, "SELECT count(*) FROM listings").await;
    // Pages only: listing photos are evidence too, and are not pages.
    let pages = scalar(
        &scratch,
        "SELECT count(*) FROM evidence WHERE id NOT IN
             (SELECT evidence_id FROM listing_images WHERE evidence_id IS NOT NULL)",
    )
    .await;
    let text = scrape(&addr).await.text().await.unwrap();
    let total = |family: &str| -> f64 {
        text.lines()
            .filter(|l| l.starts_with(&format!("{family}{{")))
            .filter_map(|l| l.rsplit_once(' ')?.1.parse::<f64>().ok())
            .sum()
    };
    let new = total("markwatch_listings_new_total");
    assert!(
        new >= listings as f64,
        "listings_new_total {new} < {listings} listings stored\n{text}"
    );
    let fetched = total("markwatch_pages_fetched_total");
    assert!(
        fetched >= pages as f64,
        "pages_fetched_total {fetched} < {pages} pages stored\n{text}"
    );
    let (code, _, log) = daemon.terminate(Duration::from_secs(12)).await;
    assert_eq!(code, 0, "{log}");

    let (listings, verdicts) = outcome(&scratch).await;
    assert_eq!(listings, want_listings, "listings lost or invented");
    assert_eq!(
        verdicts, want_verdicts,
        "verdicts differ from an undisturbed crawl"
    );

    // The runs the kills cut are abandoned, each resumed once; nothing is left running.
    let all = runs(&scratch).await;
    assert!(
        all.iter().filter(|r| r.3 == "abandoned").count() >= 3,
        "{all:?}"
    );
    let mut seen = BTreeSet::new();
    for (watch, slot, _, status) in &all {
        assert_ne!(status, "running", "{all:?}");
        if status != "skipped" && status != "abandoned" {
            assert!(seen.insert((watch, slot)), "slot {slot} ran twice: {all:?}");
        }
    }
    assert_eq!(
        scalar(
            &scratch,
            "SELECT count(*) FROM crawl_runs WHERE status = 'running'"
        )
        .await,
        0
    );
    // The evidence chain has no gap: each link names the one before it.
    let mut conn = db(&scratch).await;
    let broken: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM evidence e JOIN evidence p ON p.id = (SELECT max(id) FROM evidence WHERE id < e.id)
         WHERE e.prev_hash <> p.chain_hash",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    assert_eq!(broken, 0);
}

/// The `daemon_state` value under `key`.
async fn state(scratch: &Scratch, key: &str) -> Option<String> {
    let mut conn = db(scratch).await;
    let v = sqlx::query_scalar("SELECT value FROM daemon_state WHERE key = $1")
        .bind(key)
        .fetch_optional(&mut conn)
        .await
        .unwrap();
    conn.close().await.unwrap();
    v
}

fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

/// Waits for the process to exit on its own; `None` if it still runs after `within`.
async fn exits_within(child: &mut Child, within: Duration) -> Option<std::process::ExitStatus> {
    let start = Instant::now();
    while start.elapsed() < within {
        if let Some(status) = child.try_wait().unwrap() {
            return Some(status);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    None
}

#[tokio::test(flavor = "multi_thread")]
async fn a_symlinked_database_meets_the_same_lock() {
    let fixtures = Running::start(FixtureOptions::from_source_tree()).await;
    let scratch = Scratch::new();
    if scratch.is_postgres() {
        return; // A file's symlink: SQLite's alone.
    }
    let config = write_config(&scratch, &fixtures, "0 0 1 1 *", 0.0);
    let first = Daemon::start(&scratch, &config);
    let addr = api_addr(&scratch, &first).await;
    let link = scratch.path("link.db");
    std::os::unix::fs::symlink(scratch.db_file(), &link).unwrap();

    let mut second = Daemon::start_on(&scratch, &config, link.to_str().unwrap());
    let status = exits_within(&mut second.child, Duration::from_secs(30)).await;
    let log = second.log();
    if status.is_none() {
        // It started: stop it the way an operator would, which (before the fix) also erased the
        // first daemon's address.
        let _ = second.terminate(Duration::from_secs(12)).await;
    }
    assert_eq!(
        state(&scratch, "api_addr").await.as_deref(),
        Some(addr.as_str()),
        "the first daemon's address is gone"
    );
    let status = status.expect("a second daemon started on a symlink to the database");
    assert_eq!(status.code(), Some(1), "{log}");
    assert!(log.contains("another markwatch daemon is running"), "{log}");

    // The first daemon is still reachable through its control API.
    let (code, out, err) = run(&scratch, &config, &["crawl", "--now", "--watch", "nope"]);
    assert_eq!(code, 1, "{out}");
    assert!(err.contains("no watch `nope`"), "{err}");
    let (code, _, log) = first.terminate(Duration::from_secs(12)).await;
    assert_eq!(code, 0, "{log}");
}

#[tokio::test(flavor = "multi_thread")]
async fn secrets_at_rest_are_hashed_and_private() {
    use sha2::Digest as _;
    let fixtures = Running::start(FixtureOptions::from_source_tree()).await;
    let scratch = Scratch::new();
    let config = write_config(&scratch, &fixtures, "0 0 1 1 *", 0.0);
    let daemon = Daemon::start(&scratch, &config);
    let addr = api_addr(&scratch, &daemon).await;

    // The database and its WAL files are the owner's alone (the test runs with umask 022).
    let db = scratch.db_file();
    if !scratch.is_postgres() {
        for suffix in ["", "-wal", "-shm"] {
            let path = PathBuf::from(format!("{}{suffix}", db.display()));
            assert_eq!(mode(&path), 0o600, "{}", path.display());
        }
    }
    // The database keeps the control token's hash; the token is in a 0600 file beside it (for
    // PostgreSQL, in the daemon's working directory).
    let token_file = scratch.path(if scratch.is_postgres() {
        "markwatch.token"
    } else {
        "markwatch.db.token"
    });
    assert_eq!(mode(&token_file), 0o600);
    let token = std::fs::read_to_string(&token_file).unwrap();
    assert_eq!(token.len(), 64, "{token}");
    assert_eq!(state(&scratch, "control_token").await, None);
    let stored = state(&scratch, "control_token_sha256").await.unwrap();
    assert_ne!(stored, token);
    assert_eq!(stored, hex::encode(sha2::Sha256::digest(token.as_bytes())));
    let dump = std::fs::read(&db)
        .into_iter()
        .chain(std::fs::read(format!("{}-wal", db.display())))
        .flatten()
        .collect::<Vec<u8>>();
    assert!(
        !dump.windows(token.len()).any(|w| w == token.as_bytes()),
        "the plain token is in the database"
    );
    // The token opens the control API; the stored hash does not.
    let client = reqwest::Client::new();
    let url = format!("http://{addr}/api/daemon/schedules");
    let status = |bearer: String| {
        let req = client.get(&url).bearer_auth(bearer);
        async move { req.send().await.unwrap().status().as_u16() }
    };
    assert_eq!(status(token.clone()).await, 200);
    assert_eq!(status(stored.clone()).await, 401);
    let out = run_ok(&scratch, &config, &["crawl", "--now", "--watch", "fast"]);
    assert!(out.contains("started run 1 of watch fast"), "{out}");

    // Backups too.
    if !scratch.is_postgres() {
        let backup = scratch.path("copy.db");
        run_ok(&scratch, &config, &["backup", backup.to_str().unwrap()]);
        assert_eq!(mode(&backup), 0o600);
    }

    // At exit the daemon removes its token file.
    let (code, _, log) = daemon.terminate(Duration::from_secs(12)).await;
    assert_eq!(code, 0, "{log}");
    assert!(!token_file.exists());
    assert_eq!(state(&scratch, "control_token_sha256").await, None);
}

#[tokio::test(flavor = "multi_thread")]
async fn readyz_answers_503_while_runs_drain_after_sigterm() {
    let fixtures = Running::start(FixtureOptions::from_source_tree()).await;
    let scratch = Scratch::new();
    // Paced, so a run lasts longer than the 6 s it gets to drain.
    let config = write_config(&scratch, &fixtures, "*/2 * * * * *", 25.0);
    import_brands(&scratch, &config);
    let daemon = Daemon::start(&scratch, &config);
    let addr = api_addr(&scratch, &daemon).await;
    wait_for(
        &scratch,
        &daemon,
        "SELECT count(*) FROM evidence",
        5,
        Duration::from_secs(60),
    )
    .await;
    daemon.signal("TERM");
    // Poll /readyz until the listener goes: note the pages stored at each 503.
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let mut unready_at = Vec::new();
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(20) {
        let Ok(resp) = client.get(format!("http://{addr}/readyz")).send().await else {
            break;
        };
        let status = resp.status().as_u16();
        let body = resp.text().await.unwrap_or_default();
        if status == 503 {
            assert!(body.contains("\"shutting_down\":true"), "{body}");
            unready_at.push(scalar(&scratch, "SELECT count(*) FROM evidence").await);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (code, _, log) = daemon.terminate(Duration::from_secs(12)).await;
    assert_eq!(code, 0, "{log}");
    assert!(
        !unready_at.is_empty(),
        "/readyz never answered 503; log:\n{log}"
    );
    // It said 503 while the run was still storing pages, not only at the very end.
    assert!(
        unready_at.last() > unready_at.first(),
        "no page stored between the first and last 503: {unready_at:?}"
    );
}

/// (name, value) of the headers every non-page response carries.
const SECURITY_HEADERS: [(&str, &str); 4] = [
    ("x-content-type-options", "nosniff"),
    ("x-frame-options", "DENY"),
    ("referrer-policy", "no-referrer"),
    ("cache-control", "no-store"),
];

fn assert_security_headers(resp: &reqwest::Response) {
    for (name, want) in SECURITY_HEADERS {
        assert_eq!(
            resp.headers().get(name).and_then(|v| v.to_str().ok()),
            Some(want),
            "{name} on {}",
            resp.url()
        );
    }
    let csp = resp.headers()["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("default-src 'none'"), "{csp}");
}

#[tokio::test(flavor = "multi_thread")]
async fn operational_endpoints_have_security_headers_and_metrics_are_guarded() {
    let fixtures = Running::start(FixtureOptions::from_source_tree()).await;
    let client = reqwest::Client::new();

    // Metrics on web.addr, with the token.
    let scratch = Scratch::new();
    let config = write_config(&scratch, &fixtures, "0 0 1 1 *", 0.0);
    let daemon = Daemon::start(&scratch, &config);
    let addr = api_addr(&scratch, &daemon).await;
    for path in ["/healthz", "/readyz", "/api/daemon/schedules"] {
        let resp = client
            .get(format!("http://{addr}{path}"))
            .send()
            .await
            .unwrap();
        assert_security_headers(&resp);
    }
    let resp = client
        .get(format!("http://{addr}/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 401);
    assert_security_headers(&resp);
    let resp = client
        .get(format!("http://{addr}/metrics"))
        .bearer_auth("metrics-token-for-the-test")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 401, "a prefix of the token");
    let resp = scrape(&addr).await;
    assert_eq!(resp.status().as_u16(), 200);
    assert_security_headers(&resp);
    let (code, _, log) = daemon.terminate(Duration::from_secs(12)).await;
    assert_eq!(code, 0, "{log}");

    // Neither token nor metrics_addr: web.addr serves no metrics.
    let scratch = Scratch::new();
    let config = write_config(&scratch, &fixtures, "0 0 1 1 *", 0.0);
    let toml = std::fs::read_to_string(&config).unwrap();
    let plain: String = toml
        .lines()
        .filter(|l| !l.starts_with("metrics_token_file"))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(&config, &plain).unwrap();
    let daemon = Daemon::start(&scratch, &config);
    let addr = api_addr(&scratch, &daemon).await;
    let resp = scrape(&addr).await;
    assert_eq!(resp.status().as_u16(), 403);
    assert_security_headers(&resp);
    let (code, _, log) = daemon.terminate(Duration::from_secs(12)).await;
    assert_eq!(code, 0, "{log}");

    // A separate metrics listener: metrics there, open; not on web.addr.
    let scratch = Scratch::new();
    let config = write_config(&scratch, &fixtures, "0 0 1 1 *", 0.0);
    let toml: String = std::fs::read_to_string(&config)
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with("metrics_token_file"))
        .map(|l| format!("{l}\n"))
        .collect();
    let toml = toml.replace("[daemon]\n", "[daemon]\nmetrics_addr = \"127.0.0.1:0\"\n");
    std::fs::write(&config, toml).unwrap();
    let daemon = Daemon::start(&scratch, &config);
    let addr = api_addr(&scratch, &daemon).await;
    let ops = state(&scratch, "metrics_addr").await.expect("metrics_addr");
    let resp = client
        .get(format!("http://{ops}/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    assert_security_headers(&resp);
    assert!(resp.text().await.unwrap().contains("markwatch_"));
    for path in ["/healthz", "/readyz"] {
        let resp = client
            .get(format!("http://{ops}{path}"))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 200, "{path}");
        assert_security_headers(&resp);
    }
    // The metrics listener has no control API.
    let resp = client
        .get(format!("http://{ops}/api/daemon/schedules"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 404);
    assert_eq!(scrape(&addr).await.status().as_u16(), 403);
    let (code, _, log) = daemon.terminate(Duration::from_secs(12)).await;
    assert_eq!(code, 0, "{log}");
}

/// Requests per second each platform allows in the shared-workers test.
const SHARED_RPS: f64 = 10.0;

#[tokio::test(flavor = "multi_thread")]
async fn serve_and_three_workers_share_a_run_at_each_platforms_pace_and_survive_a_kill_9() {
    let fixtures = Running::start(FixtureOptions::from_source_tree()).await;

    // What one undisturbed crawl of the same keywords leaves.
    let (want_listings, want_verdicts) = undisturbed(&fixtures).await;

    // serve schedules only; three workers with one job slot each crawl; leases are short so
    // a killed worker's job moves on quickly.
    let scratch = Scratch::new();
    let config = write_config(&scratch, &fixtures, "0 0 1 1 *", SHARED_RPS);
    // A second watch over the same platforms: two jobs per platform, which must take turns.
    let toml = std::fs::read_to_string(&config).unwrap().replace(
        "shutdown_timeout_secs = 8",
        "shutdown_timeout_secs = 8\nworkers = 0\njob_lease_secs = 3",
    ) + &format!(
        "[[schedule.watch]]\nname = \"again\"\ncron = \"0 0 1 1 *\"\nkeywords = {KEYWORDS}\n"
    );
    std::fs::write(&config, toml).unwrap();
    import_brands(&scratch, &config);
    let serve = Daemon::start(&scratch, &config);
    api_addr(&scratch, &serve).await;
    let mut workers: Vec<Daemon> = (0..3)
        .map(|_| Daemon::worker(&scratch, &config, &["--slots", "1"]))
        .collect();
    let first_request = fixtures.server.log().entries().len();
    run_ok(&scratch, &config, &["crawl", "--now"]);

    // Once every worker holds a job and has been at it a moment, kill -9 one of them.
    wait_for(
        &scratch,
        &serve,
        "SELECT count(*) FROM crawl_jobs WHERE state = 'running'",
        3,
        Duration::from_secs(60),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let holders: Vec<(i64, String)> = {
        let mut conn = db(&scratch).await;
        sqlx::query_as("SELECT id, worker FROM crawl_jobs WHERE state = 'running' ORDER BY id")
            .fetch_all(&mut conn)
            .await
            .unwrap()
    };
    let (killed_job, killed_name) = holders[0].clone();
    let pid: u32 = killed_name.split(':').nth(1).unwrap().parse().unwrap();
    let at = workers
        .iter()
        .position(|w| w.child.id() == pid)
        .expect("the job's worker is one of ours");
    workers.remove(at).kill9();

    // Both runs end, the killed worker's job finished by another.
    wait_for(
        &scratch,
        &serve,
        "SELECT count(*) FROM schedule_runs WHERE status <> 'running'",
        2,
        Duration::from_secs(180),
    )
    .await;
    let mut conn = db(&scratch).await;
    let statuses: Vec<String> = sqlx::query_scalar("SELECT status FROM schedule_runs")
        .fetch_all(&mut conn)
        .await
        .unwrap();
    assert_eq!(statuses, ["ok", "ok"], "{}", serve.log());
    let jobs: Vec<(i64, String, String, i64)> =
        sqlx::query_as("SELECT id, state, worker, attempts FROM crawl_jobs ORDER BY id")
            .fetch_all(&mut conn)
            .await
            .unwrap();
    assert_eq!(jobs.len(), 2 * common::PLATFORMS.len(), "{jobs:?}");
    assert!(jobs.iter().all(|j| j.1 == "done"), "{jobs:?}");
    let taken_over = jobs.iter().find(|j| j.0 == killed_job).unwrap();
    assert_ne!(taken_over.2, killed_name, "{jobs:?}");
    assert!(taken_over.3 >= 2, "claimed again after the kill: {jobs:?}");
    let by: BTreeSet<&str> = jobs.iter().map(|j| j.2.as_str()).collect();
    assert!(by.len() >= 2, "the jobs were shared: {jobs:?}");
    drop(conn);

    // Every listing stored once, each with one verdict, as an undisturbed crawl leaves them.
    let (listings, verdicts) = outcome(&scratch).await;
    assert_eq!(listings, want_listings, "listings lost or invented");
    assert_eq!(
        verdicts, want_verdicts,
        "verdicts differ from an undisturbed crawl"
    );

    // Each platform's pace held over all the workers together. The pacer lets one request go
    // per 1/rate, with no burst, but each job starts its own pacer right after the last job's
    // request: in any window of T seconds no more than rate × (T + 1), one more for where the
    // window's edge falls. Two workers on one platform at once would break it in a few seconds.
    let log = fixtures.server.log().entries();
    for p in common::PLATFORMS {
        let times: Vec<u64> = log[first_request..]
            .iter()
            .filter(|e| e.path.starts_with(&format!("/{p}/")))
            .map(|e| e.at_ms)
            .collect();
        assert!(times.len() > 10, "{p}: {} requests", times.len());
        for secs in [1, 2, 5] {
            let most = times
                .iter()
                .map(|&t| {
                    times
                        .iter()
                        .filter(|&&u| u >= t && u < t + secs * 1000)
                        .count()
                })
                .max()
                .unwrap();
            let allowed = SHARED_RPS * (secs as f64 + 1.0) + 1.0;
            assert!(
                most as f64 <= allowed,
                "{p}: {most} requests in {secs} s at {SHARED_RPS}/s"
            );
        }
    }

    // `markwatch workers` shows them; stopping them leaves no job held.
    let listed = run_ok(&scratch, &config, &["workers"]);
    assert!(listed.contains(&killed_name), "{listed}");
    for w in workers {
        let (code, _, log) = w.terminate(Duration::from_secs(12)).await;
        assert_eq!(code, 0, "{log}");
    }
    let listed = run_ok(&scratch, &config, &["workers"]);
    assert_eq!(listed.matches(" stopped ").count(), 2, "{listed}");
    let killed_line = listed
        .lines()
        .find(|l| l.starts_with(&killed_name))
        .unwrap();
    assert!(killed_line.contains(" silent "), "{listed}");
    let (code, _, log) = serve.terminate(Duration::from_secs(12)).await;
    assert_eq!(code, 0, "{log}");
}
