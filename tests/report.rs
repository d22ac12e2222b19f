//! One report per notice, end to end: a crawl of the fixture JD with item pages (flagged ones
//! screenshotted in Chromium) and a real RFC 3161 TSA on loopback, then `evidence export`.
//! The pack holds report.pdf, whose text (read by poppler's `pdftotext`) carries each page's
//! URL, SHA-256, capture times, chain hash and timestamp; its screenshots decode as PNG and
//! their hashes are in the chain; `evidence verify --pack` checks all of it.

mod common;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::tsa::{TestTsa, openssl};
use common::web::WebServer;
use common::{Run, Running, Scratch};
use markwatch::FixtureOptions;
use markwatch::Role;
use sha2::{Digest, Sha256};

/// A font with Chinese glyphs, without which the report's Chinese prints as empty boxes.
fn cjk_font() -> Option<String> {
    let out = Command::new("fc-list").arg(":lang=zh").output().ok()?;
    let list = String::from_utf8_lossy(&out.stdout).into_owned();
    (!list.trim().is_empty()).then_some(list)
}

fn pdftotext() -> Option<PathBuf> {
    Command::new("pdftotext")
        .arg("-v")
        .output()
        .ok()
        .map(|_| PathBuf::from("pdftotext"))
}

/// The PDF's text with all white space removed: long hashes and URLs wrap in table cells.
fn pdf_text(pdf: &Path) -> String {
    let out = Command::new("pdftotext")
        .arg(pdf)
        .arg("-")
        .output()
        .expect("run pdftotext");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .collect()
}

fn squeeze(s: &str) -> String {
    s.split_whitespace().collect()
}

fn entry(zip: &mut zip::ZipArchive<std::fs::File>, name: &str) -> Vec<u8> {
    let mut bytes = Vec::new();
    zip.by_name(name)
        .unwrap_or_else(|_| panic!("{name} in the pack"))
        .read_to_end(&mut bytes)
        .unwrap();
    bytes
}

#[test]
fn a_notices_pack_holds_a_report_with_its_pages_hashes_times_and_timestamp() {
    let test = "a_notices_pack_holds_a_report_with_its_pages_hashes_times_and_timestamp";
    let install = "apt-get install chromium openssl poppler-utils fonts-wqy-microhei";
    let Some(_) = common::require(test, "openssl", openssl(), install) else {
        return;
    };
    let Some(_) = common::require(test, "pdftotext", pdftotext(), install) else {
        return;
    };
    let Some(_) = common::require(test, "a Chinese font", cjk_font(), install) else {
        return;
    };
    let Some(_) = common::require(
        test,
        "chromium",
        markwatch::find_chromium(None).ok(),
        install,
    ) else {
        return;
    };
    let tsa = TestTsa::start();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let fixtures = rt.block_on(Running::start(FixtureOptions::from_source_tree()));
    // The review UI over the database the CLI crawls into (the demo registry is imported).
    let web = rt.block_on(WebServer::start());
    let s = Scratch::new();
    let mw = |args: &[&str]| {
        let mut cmd = Command::new(common::bin());
        cmd.current_dir(s.dir.path())
            .arg("--db")
            .arg(web.db_arg())
            .args(args);
        cmd.env_remove("RUST_LOG");
        Run(cmd.output().expect("run markwatch"))
    };
    let cfg = tsa.jd_config(&s, &fixtures);
    let out = mw(&[
        "--config",
        &cfg,
        "crawl",
        "--once",
        "--platform",
        "jd",
        "--keyword",
        "索尼",
    ])
    .ok();
    assert!(out.contains("evidence chain timestamped"), "{out}");

    // The notice with the most screenshots.
    let rows: Vec<(i64, i64)> = rt.block_on(async {
        use sqlx::Connection;
        let mut conn =
            sqlx::SqliteConnection::connect(&format!("sqlite://{}", web.db_file().display()))
                .await
                .unwrap();
        sqlx::query_as(
            "SELECT ni.notice_id, count(p.evidence_id) FROM notice_items ni
             JOIN matches m ON m.id = ni.match_id JOIN listings l ON l.id = m.listing_id
             LEFT JOIN evidence_parts p ON p.evidence_id = l.detail_evidence_id
                 AND p.kind = 'screenshot'
             GROUP BY ni.notice_id ORDER BY 2 DESC, 1 LIMIT 1",
        )
        .fetch_all(&mut conn)
        .await
        .unwrap()
    });
    let (notice, shots) = rows[0];
    assert!(shots > 0, "a flagged listing's item page was screenshotted");

    let pack = s.path("pack.zip");
    let run = mw(&[
        "--config",
        &cfg,
        "evidence",
        "export",
        &notice.to_string(),
        "--out",
        pack.to_str().unwrap(),
    ]);
    run.ok();
    assert!(!run.stderr().contains("no report.pdf"), "{}", run.stderr());
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
        checked.contains("intact") && checked.contains("token 1"),
        "{checked}"
    );

    let mut zip = zip::ZipArchive::new(std::fs::File::open(&pack).unwrap()).unwrap();
    let manifest: serde_json::Value =
        serde_json::from_slice(&entry(&mut zip, "manifest.json")).unwrap();
    let pdf = entry(&mut zip, "report.pdf");
    assert!(pdf.starts_with(b"%PDF-"));
    let pdf_path = s.path("report.pdf");
    std::fs::write(&pdf_path, &pdf).unwrap();
    let text = pdf_text(&pdf_path);

    let token = &manifest["timestamps"][0];
    let token_time = token["gen_time"].as_str().unwrap();
    assert!(text.contains("markwatchtestTSA"), "{text}");
    assert!(text.contains(&squeeze(&token_time[..10])), "{text}");
    assert!(text.contains("markwatchevidenceverify--pack"), "{text}");
    let mut screenshots = Vec::new();
    for listing in manifest["listings"].as_array().unwrap() {
        assert!(
            text.contains(listing["url"].as_str().unwrap()),
            "{} not in the report",
            listing["url"]
        );
        for page in listing["pages"].as_array().unwrap() {
            for key in ["url", "sha256", "chain_hash"] {
                let want = page[key].as_str().unwrap();
                assert!(
                    text.contains(want),
                    "{key} {want} not in the report: {text}"
                );
            }
            // 2026-12-04T10:00:00.123Z: the same second in UTC and in Beijing time.
            let at =
                chrono::DateTime::parse_from_rfc3339(page["fetched_at"].as_str().unwrap()).unwrap();
            let utc = at.format("%Y-%m-%d%H:%M:%SUTC").to_string();
            let beijing = (at + chrono::Duration::hours(8))
                .format("%Y-%m-%d%H:%M:%S北京时间")
                .to_string();
            assert!(text.contains(&utc), "{utc} not in the report");
            assert!(text.contains(&beijing), "{beijing} not in the report");
            for part in page["parts"].as_array().into_iter().flatten() {
                if part["kind"] != "screenshot" {
                    continue;
                }
                let png = entry(&mut zip, part["file"].as_str().unwrap());
                image::load_from_memory_with_format(&png, image::ImageFormat::Png)
                    .expect("a screenshot decodes as PNG");
                assert_eq!(
                    hex::encode(Sha256::digest(&png)),
                    part["sha256"].as_str().unwrap(),
                    "the chain commits to the screenshot's hash"
                );
                assert!(text.contains(part["sha256"].as_str().unwrap()));
                screenshots.push((page["evidence_id"].as_i64().unwrap(), png));
            }
        }
    }
    assert!(!screenshots.is_empty(), "the pack holds screenshots");

    // The notice page shows a thumbnail of each screenshot; a click opens the PNG as captured.
    rt.block_on(async {
        web.add_user("rev", Role::Reviewer).await;
        let client = web.client();
        web.login(&client, "rev").await;
        let page = web.text(&client, &format!("/notices/{notice}")).await;
        for (record, png) in &screenshots {
            let link = format!("/evidence/{record}/part/");
            let at = page
                .find(&format!("class=\"shot-thumb\" src=\"{link}"))
                .unwrap_or_else(|| panic!("no thumbnail of record {record}: {page}"));
            let src: String = page[at..]
                .split("src=\"")
                .nth(1)
                .and_then(|rest| rest.split('"').next())
                .unwrap()
                .to_owned();
            let resp = client.get(web.url(&src)).send().await.unwrap();
            assert_eq!(resp.status(), 200);
            assert_eq!(resp.headers()["content-type"], "image/png");
            assert_eq!(&resp.bytes().await.unwrap()[..], &png[..]);
        }
    });

    // The report alone, from the CLI.
    let alone = s.path("alone.pdf");
    mw(&[
        "--config",
        &cfg,
        "evidence",
        "report",
        &notice.to_string(),
        "--out",
        alone.to_str().unwrap(),
    ])
    .ok();
    assert!(std::fs::read(&alone).unwrap().starts_with(b"%PDF-"));
}
