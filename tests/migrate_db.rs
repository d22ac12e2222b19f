//! `markwatch migrate-db`: an SQLite installation copied into PostgreSQL and back. Every
//! table's rows match, the copy's evidence chain verifies, and the round trip gives back the
//! same rows.

mod common;

use std::process::Command;

use common::Running;
use markwatch::FixtureOptions;

/// A PostgreSQL server to copy into, whichever backend the other suites run on: `.ci/run`
/// sets `MW_TEST_PG_SERVER` for both passes.
fn pg_server() -> Option<String> {
    std::env::var("MW_TEST_PG_SERVER")
        .ok()
        .filter(|s| !s.is_empty())
        .or_else(common::postgres_server)
}

fn markwatch(dir: &std::path::Path, args: &[&str]) -> (i32, String, String) {
    let mut cmd = Command::new(common::bin());
    cmd.current_dir(dir).args(args);
    for (key, _) in std::env::vars() {
        if key.starts_with("MARKWATCH_") {
            cmd.env_remove(key);
        }
    }
    let out = cmd.output().expect("run markwatch");
    (
        out.status.code().unwrap(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn an_installation_moves_to_postgresql_and_back_whole() {
    let Some(server) = common::require(
        "an_installation_moves_to_postgresql_and_back_whole",
        "a PostgreSQL server (MW_TEST_PG_SERVER=postgres://user@host:port)",
        pg_server(),
        "start one, or run .ci/run, which does",
    ) else {
        return;
    };
    let fixtures = Running::start(FixtureOptions::from_source_tree()).await;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("source.db");
    let source = db.to_str().unwrap().to_owned();
    let config = dir.path().join("markwatch.toml");
    let mut toml = format!(
        "[crawl]\ndefinitions = \"{}\"\nimages_per_run = 0\n[crawl.browser]\nscreenshots = false\n",
        common::repo().join("crawlers").display()
    );
    for p in ["jd", "tmall"] {
        toml.push_str(&format!(
            "[platforms.{p}]\nbase_url = \"{}\"\nlogin_required = false\nfetch = \"http\"\nrequests_per_second = 0\n",
            fixtures.url(&format!("/{p}"))
        ));
    }
    std::fs::write(&config, toml).unwrap();
    let cfg = config.to_str().unwrap();
    let brands = common::demo_brands();
    let ok = |args: &[&str]| {
        let (code, out, err) = markwatch(dir.path(), args);
        assert_eq!(code, 0, "{args:?}\n{out}\n{err}");
        out
    };
    // An installation with a registry, crawled listings, evidence, matches, draft notices and
    // a review account.
    ok(&[
        "--db",
        &source,
        "brands",
        "import",
        brands.to_str().unwrap(),
    ]);
    ok(&[
        "--config",
        cfg,
        "--db",
        &source,
        "crawl",
        "--once",
        "--platform",
        "jd",
        "--platform",
        "tmall",
        "--keyword",
        "nike",
        "--keyword",
        "lego",
    ]);
    let (code, _, err) = {
        let mut cmd = Command::new(common::bin());
        cmd.current_dir(dir.path())
            .args([
                "--db", &source, "users", "add", "rita", "--role", "reviewer",
            ])
            .arg("--password-stdin")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        let mut child = cmd.spawn().unwrap();
        use std::io::Write as _;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(b"plum vivid orbit kettle\n")
            .unwrap();
        let out = child.wait_with_output().unwrap();
        (
            out.status.code().unwrap(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    assert_eq!(code, 0, "{err}");
    let queue = ok(&["--db", &source, "queue", "list"]);
    assert!(queue.lines().count() > 1, "notices drafted: {queue}");

    // Into a fresh PostgreSQL database.
    let pg = common::fresh_database_on(&server);
    let pg_url = match &pg {
        markwatch::Database::Postgres(url) => url.clone(),
        other => panic!("{other:?}"),
    };
    let out = ok(&["migrate-db", "--from", &source, "--to", &pg_url]);
    assert!(out.contains("every table's count matches"), "{out}");
    for table in [
        "listings",
        "evidence",
        "matches",
        "notices",
        "users",
        "audit_log",
    ] {
        let line = out.lines().find(|l| l.starts_with(table)).unwrap();
        let n: Vec<i64> = line
            .split_whitespace()
            .skip(1)
            .map(|v| v.parse().unwrap())
            .collect();
        assert!(n[0] > 0 && n[0] == n[1], "{line}");
    }
    // The copy works: its chain verifies, its queue reads the same, it takes new rows.
    let verify = ok(&["--db", &pg_url, "evidence", "verify"]);
    assert!(verify.contains("intact"), "{verify}");
    assert_eq!(ok(&["--db", &pg_url, "queue", "list"]), queue);
    // Into a database that already holds data: refused, nothing written.
    let (code, _, err) = markwatch(
        dir.path(),
        &["migrate-db", "--from", &source, "--to", &pg_url],
    );
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("already holds data"), "{err}");

    // And back into a new SQLite file: the same rows as the original.
    let back = dir.path().join("back.db");
    let back_arg = back.to_str().unwrap().to_owned();
    ok(&["migrate-db", "--from", &pg_url, "--to", &back_arg]);
    let keep = |rows: Vec<String>| -> Vec<String> {
        rows.into_iter()
            .filter(|r| {
                !["notice_tallies:", "daemon_state:", "workers:"]
                    .iter()
                    .any(|t| r.starts_with(t))
            })
            .collect()
    };
    let original = keep(common::dump(&db).await);
    let returned = keep(common::dump(&back).await);
    assert!(original.len() > 100, "{}", original.len());
    assert_eq!(original, returned, "rows changed on the round trip");
    // The tallies the copy rebuilt count what the original counted.
    let tally = |rows: &[String]| -> Vec<String> {
        rows.iter()
            .filter(|r| r.starts_with("notice_tallies:") && !r.ends_with("| 0"))
            .cloned()
            .collect()
    };
    assert_eq!(
        tally(&common::dump(&db).await),
        tally(&common::dump(&back).await)
    );
    // The new identities go on after the copied ones.
    ok(&[
        "--db",
        &pg_url,
        "brands",
        "import",
        brands.to_str().unwrap(),
    ]);
    ok(&[
        "--config",
        cfg,
        "--db",
        &pg_url,
        "crawl",
        "--once",
        "--platform",
        "jd",
        "--keyword",
        "lego",
    ]);
    let verify = ok(&["--db", &pg_url, "evidence", "verify"]);
    assert!(verify.contains("intact"), "{verify}");
}
