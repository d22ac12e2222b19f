//! Evidence made of several parts: a browser page's DOM, the API replies its script received
//! and a screenshot, each with its SHA-256 in the evidence chain (real SQLite, real binary).

mod common;

use common::Scratch;
use markwatch::{Listing, Outcome, Page, Part, PartKind, Reason, ReasonCode, Store, Verdict};

fn part(kind: PartKind, url: &str, ctype: &str, body: &[u8]) -> Part {
    Part {
        kind,
        url: url.into(),
        content_type: ctype.into(),
        body: body.to_vec(),
        fetched_at: chrono::Utc::now(),
    }
}

/// A 1x1 PNG.
const PNG: &[u8] = &[
    0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48, 0x44, 0x52,
    0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06, 0x00, 0x00, 0x00, 0x1f, 0x15, 0xc4,
    0x89, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x44, 0x41, 0x54, 0x78, 0x9c, 0x63, 0xf8, 0xcf, 0xc0, 0xf0,
    0x1f, 0x00, 0x05, 0x00, 0x01, 0xff, 0x89, 0x99, 0x3d, 0x1d, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45,
    0x4e, 0x44, 0xae, 0x42, 0x60, 0x82,
];

async fn seed(db: &std::path::Path) {
    let store = Store::open(db).await.unwrap();
    seed_store(&store).await;
    store.close().await;
}

async fn seed_store(store: &Store) {
    for (i, parts) in [
        Vec::new(),
        vec![
            part(
                PartKind::Capture,
                "https://h5api.m.taobao.com/h5/mtop.x/2.0/?t=1",
                "application/javascript; charset=utf-8",
                br#"mtopjsonp1({"ret":["FAIL_SYS_TOKEN_EMPTY::x"],"data":{}})"#,
            ),
            part(
                PartKind::Capture,
                "https://h5api.m.taobao.com/h5/mtop.x/2.0/?t=2",
                "application/javascript; charset=utf-8",
                r#"mtopjsonp2({"ret":["SUCCESS::调用成功"],"data":{"itemsArray":[{"item_id":"1","title":"<script>alert(1)</script>耐克"}]}})"#.as_bytes(),
            ),
            part(PartKind::Screenshot, "https://item.taobao.com/item.htm?id=1", "image/png", PNG),
        ],
    ]
    .into_iter()
    .enumerate()
    {
        let page = Page {
            url: format!("https://s.taobao.com/search?q=nike&s={i}"),
            final_url: format!("https://s.taobao.com/search?q=nike&s={i}"),
            status: 200,
            headers: vec![("content-type".into(), "text/html; charset=utf-8".into())],
            body: format!("<html><body><div id=\"J_ItemList\">{i}</div></body></html>").into_bytes(),
            fetched_at: chrono::Utc::now(),
            attempts: 1,
        };
        let listing = Listing {
            platform: "taobao".into(),
            item_id: i.to_string(),
            url: format!("https://item.taobao.com/item.htm?id={i}"),
            title: "耐克 跑鞋".into(),
            currency: "CNY".into(),
            ..Listing::default()
        };
        let run = store.start_crawl_run("taobao", None).await.unwrap();
        // The listing on the page with parts is flagged (a notice cites it); the other is not.
        let verdict = if i == 1 {
            Verdict {
                verdict: Outcome::Infringing,
                score: 0.9,
                brand: Some("Nike".into()),
                mark: Some("NIKE".into()),
                reasons: vec![Reason {
                    code: ReasonCode::MarkExact,
                    detail: "NIKE in \"耐克 跑鞋\"".into(),
                }],
            }
        } else {
            Verdict {
                verdict: Outcome::Clear,
                score: 0.0,
                brand: None,
                mark: None,
                reasons: Vec::new(),
            }
        };
        markwatch::record_page_with_parts(store, run, &page, parts, &[listing], &|_| {
            verdict.clone()
        })
        .await
        .unwrap();
    }
}

async fn sql(db: &std::path::Path, q: &'static str, body: Option<Vec<u8>>) {
    use sqlx::Connection;
    let mut conn = sqlx::SqliteConnection::connect(&format!("sqlite:{}", db.display()))
        .await
        .unwrap();
    let mut query = sqlx::query(q);
    if let Some(b) = body {
        query = query.bind(b);
    }
    query.execute(&mut conn).await.unwrap();
}

#[test]
fn parts_are_chained_and_a_changed_byte_in_one_breaks_verify() {
    let s = Scratch::new();
    let rt = tokio::runtime::Runtime::new().unwrap();
    s.write(
        "markwatch.toml",
        &format!(
            "[crawl]\ndefinitions = \"{}\"\n",
            common::repo().join("crawlers").display()
        ),
    );
    rt.block_on(seed(&s.db_file()));
    let ok = s.run(&["evidence", "verify"]).ok();
    assert!(ok.contains("intact: 2 record(s)"), "{ok}");

    // One byte of the stored screenshot changes.
    let mut png = PNG.to_vec();
    png[40] ^= 0x01;
    rt.block_on(sql(
        &s.db_file(),
        "UPDATE evidence_parts SET body = ? WHERE evidence_id = 2 AND seq = 2",
        Some(zstd::encode_all(&png[..], 3).unwrap()),
    ));
    let broken = s.run(&["evidence", "verify"]);
    assert_eq!(broken.code(), 1, "{}", broken.stdout());
    assert!(
        broken.stdout().contains("BROKEN at record 2") && broken.stdout().contains("part 2"),
        "{}",
        broken.stdout()
    );

    // Put back, then drop a part: the chain link no longer matches.
    rt.block_on(sql(
        &s.db_file(),
        "UPDATE evidence_parts SET body = ? WHERE evidence_id = 2 AND seq = 2",
        Some(zstd::encode_all(PNG, 3).unwrap()),
    ));
    assert!(s.run(&["evidence", "verify"]).ok().contains("intact"));
    rt.block_on(sql(
        &s.db_file(),
        "DELETE FROM evidence_parts WHERE evidence_id = 2 AND seq = 0",
        None,
    ));
    let broken = s.run(&["evidence", "verify"]);
    assert_eq!(broken.code(), 1);
    assert!(
        broken.stdout().contains("BROKEN at record 2"),
        "{}",
        broken.stdout()
    );
}

#[tokio::test]
async fn the_evidence_page_lists_the_parts_and_serves_them_safely() {
    use common::web::WebServer;
    let web = WebServer::start().await;
    seed_store(&web.store).await;
    web.add_user("ana", markwatch::Role::Reviewer).await;
    let c = web.client();
    web.login(&c, "ana").await;
    let page = web.text(&c, "/evidence/2").await;
    assert!(page.contains("id=\"evidence-parts\""), "{page}");
    let sha_png = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(PNG));
    assert!(page.contains(&sha_png), "the screenshot's SHA-256 is shown");
    assert!(page.contains("<img class=\"screenshot\" src=\"/evidence/2/part/2\""));
    assert!(page.contains("h5api.m.taobao.com"), "{page}");
    // An evidence row without parts shows no parts table.
    assert!(!web.text(&c, "/evidence/1").await.contains("evidence-parts"));

    let png = c.get(web.url("/evidence/2/part/2")).send().await.unwrap();
    assert_eq!(png.headers()["content-type"], "image/png");
    assert_eq!(png.bytes().await.unwrap().as_ref(), PNG);
    // A captured reply holding markup is never served as HTML.
    let reply = c.get(web.url("/evidence/2/part/1")).send().await.unwrap();
    assert_eq!(reply.headers()["content-type"], "text/plain; charset=utf-8");
    assert_eq!(reply.headers()["x-content-type-options"], "nosniff");
    assert!(
        reply
            .text()
            .await
            .unwrap()
            .contains("<script>alert(1)</script>")
    );
    assert_eq!(
        c.get(web.url("/evidence/2/part/9"))
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
    // Anonymous visitors get nothing.
    let anon = web
        .client()
        .get(web.url("/evidence/2/part/2"))
        .send()
        .await
        .unwrap();
    assert_ne!(anon.status(), 200);
}

#[test]
fn an_evidence_pack_holds_and_verifies_the_parts() {
    let s = Scratch::new();
    s.write(
        "markwatch.toml",
        &format!(
            "[crawl]\ndefinitions = \"{}\"\n",
            common::repo().join("crawlers").display()
        ),
    );
    s.run(&["brands", "import", common::demo_brands().to_str().unwrap()])
        .ok();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(seed(&s.db_file()));
    s.run(&["queue", "draft"]).ok();
    let list: serde_json::Value =
        serde_json::from_str(&s.run(&["queue", "list", "--json"]).ok()).unwrap();
    let id = list["notices"][0]["id"].as_i64().unwrap().to_string();
    let pack = s.path("pack.zip");
    s.run(&["evidence", "export", &id, "--out", pack.to_str().unwrap()])
        .ok();
    let ok = s
        .run(&["evidence", "verify", "--pack", pack.to_str().unwrap()])
        .ok();
    assert!(ok.contains("intact"), "{ok}");

    let mut zip = zip::ZipArchive::new(std::fs::File::open(&pack).unwrap()).unwrap();
    let names: Vec<String> = (0..zip.len())
        .map(|i| zip.by_index(i).unwrap().name().unwrap().to_string())
        .collect();
    let png_name = names
        .iter()
        .find(|n| n.ends_with("-screenshot.png"))
        .unwrap_or_else(|| panic!("{names:?}"))
        .clone();
    assert_eq!(names.iter().filter(|n| n.contains("-capture.")).count(), 2);
    let mut png = Vec::new();
    std::io::Read::read_to_end(&mut zip.by_name(&png_name).unwrap(), &mut png).unwrap();
    assert_eq!(png, PNG);
    let mut manifest = String::new();
    std::io::Read::read_to_string(&mut zip.by_name("manifest.json").unwrap(), &mut manifest)
        .unwrap();
    let m: serde_json::Value = serde_json::from_str(&manifest).unwrap();
    let parts = &m["listings"][0]["pages"][0]["parts"];
    assert_eq!(parts.as_array().unwrap().len(), 3, "{manifest}");
    assert_eq!(
        parts[2]["sha256"],
        hex::encode(<sha2::Sha256 as sha2::Digest>::digest(PNG))
    );

    // A pack whose screenshot was swapped (and its manifest hash with it) fails: the chain
    // link commits to the part's hash.
    let tampered = s.path("tampered.zip");
    {
        let mut w = zip::ZipWriter::new(std::fs::File::create(&tampered).unwrap());
        let mut other = PNG.to_vec();
        other[40] ^= 1;
        let sha = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&other));
        let old = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(PNG));
        for name in &names {
            let mut bytes = Vec::new();
            std::io::Read::read_to_end(&mut zip.by_name(name).unwrap(), &mut bytes).unwrap();
            if *name == png_name {
                bytes = other.clone();
            } else if name == "manifest.json" {
                bytes = String::from_utf8(bytes)
                    .unwrap()
                    .replace(&old, &sha)
                    .into_bytes();
            }
            w.start_file(name.as_str(), zip::write::SimpleFileOptions::default())
                .unwrap();
            std::io::Write::write_all(&mut w, &bytes).unwrap();
        }
        w.finish().unwrap();
    }
    let bad = s.run(&["evidence", "verify", "--pack", tampered.to_str().unwrap()]);
    assert_ne!(bad.code(), 0, "{}", bad.stdout());
}
