//! `markwatch demo`, the README's first command, on fresh directories.

mod common;

use std::path::Path;
use std::process::Command;

use common::Scratch;
use sqlx::{Connection, SqliteConnection};

fn demo(cwd: &Path, dir: &Path) -> (i32, String, String) {
    let mut cmd = Command::new(common::bin());
    cmd.current_dir(cwd).arg("demo").arg("--dir").arg(dir);
    for (key, _) in std::env::vars() {
        if key.starts_with("MARKWATCH_") {
            cmd.env_remove(key);
        }
    }
    cmd.env_remove("RUST_LOG");
    let out = cmd.output().expect("run markwatch demo");
    (
        out.status.code().expect("exited"),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn demo_on_a_fresh_directory_fills_every_platforms_queue_and_writes_emails() {
    let scratch = Scratch::new();
    let dir = scratch.path("demo");
    // Run from the source tree, as the README says.
    let (code, out, err) = demo(&common::repo(), &dir);
    assert_eq!(code, 0, "stdout:\n{out}\nstderr:\n{err}");
    // A bad option in .cargo/config.toml's allocator settings warns on every command.
    assert!(!err.contains("<jemalloc>"), "{err}");
    for line in [
        "[8/8] writing the alert emails",
        "watching .CN domains",
        "Listings and verdicts per platform",
        "Draft notices",
        "markwatch serve --demo",
    ] {
        assert!(out.contains(line), "missing {line:?}:\n{out}");
    }

    let mut conn =
        SqliteConnection::connect(&format!("sqlite:{}", dir.join("markwatch.db").display()))
            .await
            .unwrap();
    for platform in common::PLATFORMS {
        let (listings, flagged, drafts): (i64, i64, i64) = sqlx::query_as(
            "SELECT (SELECT count(*) FROM listings WHERE platform = ?1),
                    (SELECT count(*) FROM matches m JOIN listings l ON l.id = m.listing_id
                     WHERE l.platform = ?1 AND m.verdict <> 'clear'),
                    (SELECT count(*) FROM notices WHERE platform = ?1 AND state = 'draft')",
        )
        .bind(platform)
        .fetch_one(&mut conn)
        .await
        .unwrap();
        assert!(
            listings > 0 && flagged > 0,
            "{platform}: {listings} listings, {flagged} flagged"
        );
        assert!(drafts > 0, "{platform}: an empty queue");
        // The summary reports the database's numbers.
        assert!(
            out.contains(&format!("{platform} ({drafts} drafts)")),
            "{platform} {drafts}:\n{out}"
        );
    }
    // The domain watch found the fixture zone's squats and drafted their CNDRP complaints.
    let domain_drafts: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM notices WHERE platform = 'domains' AND state = 'draft'",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    assert!(domain_drafts > 0, "{out}");
    assert!(
        out.contains(&format!("{domain_drafts} CNDRP drafts")),
        "{domain_drafts}:\n{out}"
    );
    let sent: i64 = sqlx::query_scalar("SELECT count(*) FROM alerts WHERE state = 'sent'")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    conn.close().await.unwrap();
    let emails: Vec<_> = std::fs::read_dir(dir.join("outbox"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "eml"))
        .collect();
    assert!(sent > 0);
    assert_eq!(emails.len() as i64, sent, "one .eml per alert sent");
    assert!(
        out.contains(&format!("Alert emails: {sent} .eml files")),
        "{out}"
    );
    let first = std::fs::read_to_string(&emails[0]).unwrap();
    assert!(
        first.contains("Message-ID:") || first.contains("Message-Id:"),
        "{first}"
    );

    // Again on the same directory: a fresh run replaces the earlier demo.
    let (code, out, err) = demo(&common::repo(), &dir);
    assert_eq!(code, 0, "stdout:\n{out}\nstderr:\n{err}");

    // A directory holding anything else is left alone.
    let foreign = scratch.path("foreign");
    std::fs::create_dir(&foreign).unwrap();
    std::fs::write(foreign.join("thesis.txt"), "mine").unwrap();
    let (code, _, err) = demo(&common::repo(), &foreign);
    assert_eq!(code, 1);
    assert!(err.contains("not empty"), "{err}");
    assert!(foreign.join("thesis.txt").exists());
}
