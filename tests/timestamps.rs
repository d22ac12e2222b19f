//! Trusted timestamps against a real RFC 3161 TSA on loopback (openssl `ts -reply` behind a
//! small HTTP handler, with a test CA): a crawl run ends with a token over the chain's head;
//! `evidence verify` checks it and names a tampered record or token; openssl itself agrees;
//! a TSA that is down delays stamping and loses nothing.

mod common;

use common::tsa::{TestTsa, openssl};
use common::{Running, Scratch};
use markwatch::FixtureOptions;

/// The TSA, or `None` (a loud skip) when openssl is missing outside CI.
fn tsa(test: &str) -> Option<TestTsa> {
    common::require(test, "openssl", openssl(), "apt-get install openssl")?;
    Some(TestTsa::start())
}

fn crawl(s: &Scratch, cfg: &str, keyword: &str) -> String {
    s.run(&[
        "--config",
        cfg,
        "crawl",
        "--once",
        "--platform",
        "jd",
        "--keyword",
        keyword,
        "--no-details",
    ])
    .ok()
}

async fn sql_rows<T>(db: &std::path::Path, q: &str) -> Vec<T>
where
    T: for<'r> sqlx::FromRow<'r, sqlx::sqlite::SqliteRow> + Send + Unpin,
{
    use sqlx::Connection;
    let mut conn = sqlx::SqliteConnection::connect(&format!("sqlite://{}", db.display()))
        .await
        .unwrap();
    sqlx::query_as(sqlx::AssertSqlSafe(q.to_owned()))
        .fetch_all(&mut conn)
        .await
        .unwrap()
}

async fn sql(db: &std::path::Path, q: &str, binds: &[&[u8]]) {
    use sqlx::Connection;
    let mut conn = sqlx::SqliteConnection::connect(&format!("sqlite://{}", db.display()))
        .await
        .unwrap();
    let mut query = sqlx::query(sqlx::AssertSqlSafe(q.to_owned()));
    for b in binds {
        query = query.bind(b.to_vec());
    }
    query.execute(&mut conn).await.unwrap();
}

/// The chain hash as markwatch links a record without parts: what someone rewriting the
/// database would recompute to hide an edit.
fn relink(prev: &str, url: &str, at: &str, status: i64, sha: &str, headers: &str) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    for part in [prev, url, at, &status.to_string(), sha, headers] {
        h.update(part.as_bytes());
        h.update(b"\n");
    }
    hex::encode(h.finalize())
}

#[test]
fn a_crawl_run_ends_with_a_token_that_verifies_and_tampering_is_named() {
    let Some(tsa) = tsa("a_crawl_run_ends_with_a_token_that_verifies_and_tampering_is_named")
    else {
        return;
    };
    let rt = tokio::runtime::Runtime::new().unwrap();
    let fixtures = rt.block_on(Running::start(FixtureOptions::from_source_tree()));
    let s = Scratch::new();
    let cfg = tsa.jd_config(&s, &fixtures);
    s.run(&["brands", "import", common::demo_brands().to_str().unwrap()])
        .ok();

    let out = crawl(&s, &cfg, "索尼");
    assert!(
        out.contains("evidence chain timestamped: token 1 covers records 1..="),
        "{out}"
    );
    let (records, head): (i64, String) = rt
        .block_on(sql_rows::<(i64, String)>(
            &s.db_file(),
            "SELECT id, chain_hash FROM evidence ORDER BY id DESC LIMIT 1",
        ))
        .remove(0);
    assert!(records > 1, "the run captured pages");
    let tokens: Vec<(i64, i64, String, String, Vec<u8>)> = rt.block_on(sql_rows(
        &s.db_file(),
        "SELECT id, evidence_id, chain_hash, gen_time, reply FROM evidence_timestamps",
    ));
    assert_eq!(tokens.len(), 1);
    assert_eq!(
        (tokens[0].1, tokens[0].2.as_str()),
        (records, head.as_str())
    );

    let verified = s.run(&["--config", &cfg, "evidence", "verify"]).ok();
    assert!(
        verified.contains(&format!(
            "timestamp token 1: records 1..={records} stamped at {} by markwatch test TSA",
            tokens[0].3
        )) && verified.contains("verified"),
        "{verified}"
    );

    // A third party needs only openssl, the token and the chain hash.
    let reply = s.write("token1.tsr", "");
    std::fs::write(&reply, &tokens[0].4).unwrap();
    let (ok, text) = tsa.openssl_verify(&reply, &head, &tsa.ca);
    assert!(ok, "{text}");
    let (ok, _) = tsa.openssl_verify(&reply, &"0".repeat(64), &tsa.ca);
    assert!(!ok, "openssl accepts the token for another hash");

    // A notice's pack carries the token, the CA and the chain from its pages to the token.
    let notice: (i64,) = rt
        .block_on(sql_rows::<(i64,)>(
            &s.db_file(),
            "SELECT id FROM notices ORDER BY id LIMIT 1",
        ))
        .remove(0);
    let pack = s.path("pack.zip");
    s.run(&[
        "--config",
        &cfg,
        "evidence",
        "export",
        &notice.0.to_string(),
        "--out",
        pack.to_str().unwrap(),
    ])
    .ok();
    let checked = s
        .run(&[
            "--config",
            &cfg,
            "evidence",
            "verify",
            "--pack",
            pack.to_str().unwrap(),
        ])
        .ok();
    assert!(
        checked.contains(&format!(
            "timestamps/000001.tsr: token 1 stamped record {records} (and every record before it) at {} by markwatch test TSA",
            tokens[0].3
        )) && checked.contains("checked against the CA `markwatch test CA`"),
        "{checked}"
    );

    // Against a CA that did not issue the TSA's certificate, the token is refused.
    let other = tsa.other_ca();
    let run = s.run(&[
        "--config",
        &cfg,
        "evidence",
        "verify",
        "--pack",
        pack.to_str().unwrap(),
        "--tsa-ca",
        other.to_str().unwrap(),
    ]);
    assert_eq!(run.code(), 1, "{}", run.stdout());
    assert!(
        run.stdout().contains(&format!(
            "TAMPERED: timestamps/000001.tsr: token 1 (over record {records}): signed by `markwatch test TSA`, which `another CA` did not issue"
        )),
        "{}",
        run.stdout()
    );
    let run = s.run(&[
        "--config",
        &cfg,
        "evidence",
        "verify",
        "--tsa-ca",
        other.to_str().unwrap(),
    ]);
    assert_eq!(run.code(), 1, "{}", run.stdout());
    assert!(
        run.stdout().contains("timestamp token 1: records 1..=")
            && run.stdout().contains("which `another CA` did not issue"),
        "{}",
        run.stdout()
    );

    // A byte of the token itself changes: its signature no longer holds.
    let mut forged = tokens[0].4.clone();
    let at = forged
        .windows(head.len() / 2)
        .position(|w| w == hex::decode(&head).unwrap().as_slice())
        .expect("the imprint is in the token");
    forged[at] ^= 0x01;
    rt.block_on(sql(
        &s.db_file(),
        "UPDATE evidence_timestamps SET reply = ?",
        &[&forged],
    ));
    let out = s.run(&["--config", &cfg, "evidence", "verify"]).stdout();
    assert!(
        out.contains(&format!("FAILED: token 1 (over record {records}): ")),
        "{out}"
    );
    assert!(
        out.contains("does not verify") || out.contains("does not match"),
        "{out}"
    );
    rt.block_on(sql(
        &s.db_file(),
        "UPDATE evidence_timestamps SET reply = ?",
        &[&tokens[0].4],
    ));
    s.run(&["--config", &cfg, "evidence", "verify"]).ok();

    // Record 2 is rewritten and every later link recomputed: the chain alone looks intact,
    // but the token was issued for the old head.
    let rows: Vec<(i64, String, String, i64, String, String)> = rt.block_on(sql_rows(
        &s.db_file(),
        "SELECT id, url, fetched_at, status, body_sha256, headers FROM evidence ORDER BY id",
    ));
    let mut prev = "0".repeat(64);
    let mut new_head = String::new();
    for (id, url, at, status, sha, headers) in &rows {
        let url = if *id == 2 {
            format!("{url}&edited")
        } else {
            url.clone()
        };
        let link = relink(&prev, &url, at, *status, sha, headers);
        rt.block_on(sql(
            &s.db_file(),
            &format!(
                "UPDATE evidence SET url = '{}', prev_hash = '{prev}', chain_hash = '{link}' WHERE id = {id}",
                url.replace('\'', "''")
            ),
            &[],
        ));
        prev = link.clone();
        new_head = link;
    }
    let run = s.run(&["--config", &cfg, "evidence", "verify"]);
    assert_eq!(run.code(), 1, "{}", run.stdout());
    let out = run.stdout();
    assert!(out.contains("evidence chain intact"), "{out}");
    assert!(
        out.contains(&format!(
            "timestamp token 1: records 1..={records}: FAILED: token 1 (over record {records}): the record's chain hash is {new_head} now, but the token was issued for {head}"
        )),
        "{out}"
    );
    // The forger rewrites the token's row too: the signed imprint still names the old head.
    rt.block_on(sql(
        &s.db_file(),
        &format!("UPDATE evidence_timestamps SET chain_hash = '{new_head}'"),
        &[],
    ));
    let out = s.run(&["--config", &cfg, "evidence", "verify"]).stdout();
    assert!(
        out.contains(&format!(
            "FAILED: token 1 (over record {records}): the token stamps {head}, not {new_head}"
        )),
        "{out}"
    );
}

#[test]
fn a_tsa_that_is_down_delays_stamping_and_loses_nothing() {
    let Some(tsa) = tsa("a_tsa_that_is_down_delays_stamping_and_loses_nothing") else {
        return;
    };
    let rt = tokio::runtime::Runtime::new().unwrap();
    let fixtures = rt.block_on(Running::start(FixtureOptions::from_source_tree()));
    let s = Scratch::new();
    let cfg = tsa.jd_config(&s, &fixtures);

    tsa.set_down(true);
    let out = crawl(&s, &cfg, "索尼");
    assert!(
        out.contains("evidence chain NOT timestamped: timestamp authority")
            && out.contains("503")
            && out.contains("the next run asks again"),
        "{out}"
    );
    let first: Vec<(i64,)> = rt.block_on(sql_rows(&s.db_file(), "SELECT id FROM evidence"));
    assert!(!first.is_empty());
    let verified = s.run(&["--config", &cfg, "evidence", "verify"]).ok();
    assert!(
        verified.contains(&format!("records 1..={}: not yet timestamped", first.len())),
        "{verified}"
    );

    tsa.set_down(false);
    let out = crawl(&s, &cfg, "乐高");
    assert!(out.contains("evidence chain timestamped: token 1"), "{out}");
    let all: Vec<(i64,)> = rt.block_on(sql_rows(&s.db_file(), "SELECT id FROM evidence"));
    assert!(all.len() > first.len());
    let verified = s.run(&["--config", &cfg, "evidence", "verify"]).ok();
    assert!(
        verified.contains(&format!("timestamp token 1: records 1..={}", all.len()))
            && !verified.contains("not yet timestamped"),
        "{verified}"
    );
    assert_eq!(tsa.granted.load(std::sync::atomic::Ordering::SeqCst), 1);

    // Nothing new since: stamping again asks the TSA nothing.
    let out = s.run(&["--config", &cfg, "evidence", "stamp"]).ok();
    assert!(out.contains("already timestamped"), "{out}");
    assert_eq!(tsa.granted.load(std::sync::atomic::Ordering::SeqCst), 1);
}
