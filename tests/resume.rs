//! Item pages after an interruption: the real binary under `markwatch serve`, killed with
//! kill -9 while it fetches item pages from the fixture server on loopback, then restarted.
//! The run it resumes fetches the item pages the cut run left, and the verdicts end as a crawl
//! that was never cut leaves them.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{Running, Scratch};
use markwatch::{Fault, FixtureOptions, FixtureServer};
use sqlx::{Connection, SqliteConnection};

/// "coach" finds an Amazon.cn bag whose verdict only its item page's category settles.
const KEYWORDS: [&str; 2] = ["coach", "lego"];

/// A configuration for `serve` in `scratch`: one watch `w` on `cron` over the four fixture
/// platforms, served by `fixtures` with the rate limit lifted.
fn write_config(scratch: &Scratch, fixtures: &Running, cron: &str) -> PathBuf {
    let mut toml = format!(
        r#"
[crawl]
definitions = "{defs}"
# Scheduling is tested here, not screenshots: item pages over HTTP, no Chromium.
[crawl.browser]
screenshots = false
[schedule]
jitter_secs = 0
[[schedule.watch]]
name = "w"
cron = "{cron}"
keywords = {keywords:?}
[daemon]
shutdown_timeout_secs = 8
[web]
addr = "127.0.0.1:0"
[email]
dir = "{outbox}"
"#,
        defs = common::repo().join("crawlers").display(),
        keywords = KEYWORDS,
        outbox = scratch.path("outbox").display(),
    );
    for p in common::PLATFORMS {
        toml.push_str(&format!(
            "[platforms.{p}]\nbase_url = \"{}\"\nschedule = \"off\"\nrequests_per_second = 0\nlogin_required = false\nfetch = \"http\"\n",
            fixtures.url(&format!("/{p}"))
        ));
    }
    scratch.write("markwatch.toml", &toml)
}

fn command(scratch: &Scratch, config: &Path) -> Command {
    let mut cmd = scratch.command();
    cmd.arg("--config").arg(config);
    cmd
}

fn run_ok(scratch: &Scratch, config: &Path, args: &[&str]) {
    let out = command(scratch, config).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "markwatch {args:?}\nstdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `markwatch serve` in the background, its log in a file.
struct Daemon {
    child: Child,
    log: PathBuf,
}

impl Daemon {
    fn start(scratch: &Scratch, config: &Path, name: &str) -> Daemon {
        let log = scratch.path(&format!("serve-{name}.log"));
        let child = command(scratch, config)
            .arg("serve")
            .env("RUST_LOG", "markwatch=info")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("start markwatch serve");
        Daemon { child, log }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// kill -9: no chance to clean up.
    fn kill9(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// SIGTERM; the daemon must exit 0.
    async fn terminate(mut self) {
        let ok = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill -TERM");
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                assert!(status.success(), "{status:?}; log:\n{}", self.log());
                return;
            }
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "no exit after SIGTERM; log:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn scalar(db: &Path, sql: &str) -> Option<i64> {
    if !db.exists() {
        return None;
    }
    let mut conn = SqliteConnection::connect(&format!("sqlite:{}", db.display()))
        .await
        .unwrap();
    let n = sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_owned()))
        .fetch_one(&mut conn)
        .await
        .ok();
    conn.close().await.unwrap();
    n
}

/// Polls `sql` (a count) until it is true, or panics with the daemon's log.
async fn wait_for(db: &Path, daemon: &Daemon, sql: &str) {
    let start = Instant::now();
    while scalar(db, sql).await != Some(1) {
        assert!(
            start.elapsed() < Duration::from_secs(180),
            "waited for `{sql}`; log:\n{}",
            daemon.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Each listing's verdict, by platform and item id.
async fn verdicts(db: &Path) -> BTreeMap<(String, String), String> {
    let mut conn = SqliteConnection::connect(&format!("sqlite:{}", db.display()))
        .await
        .unwrap();
    let rows: Vec<(String, String, String)> = sqlx::query_as(
        "SELECT l.platform, l.item_id, m.verdict FROM listings l JOIN matches m ON m.listing_id = l.id",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    rows.into_iter().map(|(p, i, v)| ((p, i), v)).collect()
}

const MISSING: &str = "SELECT count(*) FROM listings WHERE detail_evidence_id IS NULL";

/// Scratch databases with the demo registry; `crawl --once` of [`KEYWORDS`] into each.
fn crawl_once(fixtures: &Running, extra: &[&str]) -> Scratch {
    let scratch = Scratch::new();
    let config = write_config(&scratch, fixtures, "0 0 1 1 *");
    run_ok(
        &scratch,
        &config,
        &["brands", "import", common::demo_brands().to_str().unwrap()],
    );
    let mut args = vec!["crawl", "--once"];
    for k in KEYWORDS {
        args.extend(["--keyword", k]);
    }
    args.extend(extra);
    run_ok(&scratch, &config, &args);
    scratch
}

#[tokio::test(flavor = "multi_thread")]
async fn item_pages_a_kill_9_left_are_fetched_by_the_resumed_run() {
    let fast = Running::start(FixtureOptions::from_source_tree()).await;

    // An undisturbed crawl fetches every item page; one without item pages shows which
    // verdicts depend on them.
    let whole = crawl_once(&fast, &[]);
    assert_eq!(scalar(&whole.db_file(), MISSING).await, Some(0));
    let want = verdicts(&whole.db_file()).await;
    let bare = verdicts(&crawl_once(&fast, &["--no-details"]).db_file()).await;
    let depends: BTreeSet<_> = want
        .iter()
        .filter(|(key, v)| bare.get(*key) != Some(*v))
        .map(|(key, _)| key.clone())
        .collect();
    assert!(
        !depends.is_empty(),
        "no verdict depends on an item page: the test proves nothing"
    );

    // The daemon's first run, against a server that answers each page slowly and fails the item
    // pages those verdicts depend on, is killed while it fetches item pages.
    let slow = Running::start(FixtureOptions {
        fault_rate: 1.0,
        fault_pool: vec![Fault::Slow { ms: 300 }],
        ..FixtureOptions::from_source_tree()
    })
    .await;
    for (platform, item_id) in &depends {
        let path = FixtureServer::item_path(platform, item_id).unwrap();
        slow.server.script(&path, [Fault::ServerError; 40]);
    }
    let scratch = Scratch::new();
    let config = write_config(&scratch, &slow, "*/2 * * * * *");
    run_ok(
        &scratch,
        &config,
        &["brands", "import", common::demo_brands().to_str().unwrap()],
    );
    let daemon = Daemon::start(&scratch, &config, "first");
    let keys: Vec<String> = depends
        .iter()
        .map(|(p, i)| format!("(platform = '{p}' AND item_id = '{i}')"))
        .collect();
    let depends_stored = format!(
        "SELECT count(*) > 0 FROM listings WHERE {}",
        keys.join(" OR ")
    );
    wait_for(&scratch.db_file(), &daemon, &depends_stored).await;
    wait_for(
        &scratch.db_file(),
        &daemon,
        "SELECT count(*) >= 10 FROM listings WHERE detail_evidence_id IS NULL",
    )
    .await;
    daemon.kill9();
    let cut = scalar(&scratch.db_file(), MISSING).await.unwrap();
    assert!(cut >= 10, "{cut} item pages missing after the kill");
    let cut_verdicts = verdicts(&scratch.db_file()).await;
    assert!(
        depends
            .iter()
            .any(|key| cut_verdicts.contains_key(key) && cut_verdicts[key] != want[key]),
        "the kill left no verdict that needs its item page"
    );

    // Restarted (against a server that answers at once), the daemon resumes the cut run.
    let config = write_config(&scratch, &fast, "*/2 * * * * *");
    let daemon = Daemon::start(&scratch, &config, "second");
    wait_for(
        &scratch.db_file(),
        &daemon,
        "SELECT count(*) > 0 FROM schedule_runs WHERE trigger = 'resume' AND status = 'ok'",
    )
    .await;
    daemon.terminate().await;

    assert_eq!(
        scalar(&scratch.db_file(), MISSING).await,
        Some(0),
        "listings still without their item page after the resumed run"
    );
    assert_eq!(
        verdicts(&scratch.db_file()).await,
        want,
        "verdicts differ from an undisturbed crawl's"
    );
}
