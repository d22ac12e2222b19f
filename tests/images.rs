//! Listing photos end to end: the fixture platforms serve brands' reference photos reused with
//! counterfeiters' edits (and every other listing a photo of its own); a real crawl fetches
//! them through the platform's session, keeps them as evidence and judges the listings again.

mod common;

use std::collections::HashMap;

use common::web::WebServer;
use markwatch::{
    Config, Crawl, FetchWith, FixtureOptions, FixtureServer, Outcome, Pace, PlatformConfig,
    ReasonCode, Role, Search, load_definitions,
};

async fn start() -> String {
    let server = FixtureServer::new(FixtureOptions::from_source_tree()).expect("fixture server");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(markwatch::serve_fixtures(listener, server));
    base
}

fn crawl(base: &str) -> Crawl {
    let defs = load_definitions(&common::repo().join("crawlers")).unwrap();
    let mut config = Config::default();
    config.crawl.timeout_secs = 10;
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
    Crawl::builder(&config, defs)
        .platforms(&["jd".to_owned(), "taobao".to_owned(), "tmall".to_owned()])
        .pace(Pace::UnlimitedOnLoopback)
        .fetch_details(true)
        .draft_notices(true)
        .build()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reused_brand_photos_are_found_and_honest_photos_are_not() {
    // The review UI's database, with the demo registry and its reference images imported.
    let web = WebServer::start().await;
    let store = web.store.clone();
    let base = start().await;
    let keywords: Vec<String> = [
        "nike", "adidas", "gucci", "rolex", "apple", "chanel", "dyson", "lv",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    crawl(&base)
        .run(&store, &Search::Keywords(keywords))
        .await
        .unwrap();

    // Ground truth: the labels of kind `image`.
    let labels = std::fs::read_to_string(common::repo().join("fixtures/labels.jsonl")).unwrap();
    let mut truth: HashMap<String, (String, String)> = HashMap::new();
    for line in labels.lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        if v["kind"] == "image" {
            truth.insert(
                v["id"].as_str().unwrap().to_owned(),
                (
                    v["verdict"].as_str().unwrap().to_owned(),
                    v["brand"].as_str().unwrap().to_owned(),
                ),
            );
        }
    }
    let db = sqlx::SqlitePool::connect(&format!("sqlite:{}", web.db_file().display()))
        .await
        .unwrap();
    let rows: Vec<(String, String, String, Option<String>, String)> = sqlx::query_as(
        "SELECT l.platform, l.item_id, m.verdict, b.name, m.reasons FROM matches m
         JOIN listings l ON l.id = m.listing_id LEFT JOIN brands b ON b.id = m.brand_id",
    )
    .fetch_all(&db)
    .await
    .unwrap();
    let photos: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM listing_images i JOIN evidence e ON e.id = i.evidence_id
         WHERE i.state = 'hashed' AND length(i.sha256) = 64",
    )
    .fetch_one(&db)
    .await
    .unwrap();
    assert!(photos > 300, "photos kept as evidence: {photos}");
    let (mut found, mut seen, mut honest_flagged) = (0, 0, Vec::new());
    for (platform, item_id, verdict_now, brand_now, reasons) in &rows {
        let id = format!("{platform}:{item_id}");
        let reasons: Vec<markwatch::Reason> = serde_json::from_str(reasons).unwrap();
        let by_image = reasons.iter().any(|x| x.code == ReasonCode::ImageMatch);
        let flagged = verdict_now != Outcome::Clear.as_str();
        match truth.get(&id) {
            Some((verdict, brand)) => {
                seen += 1;
                if by_image && flagged && brand_now.as_deref() == Some(brand.as_str()) {
                    found += 1;
                    if verdict == "infringing" {
                        assert_eq!(
                            verdict_now, "infringing",
                            "{id}: copy wording and the photo"
                        );
                    }
                } else {
                    println!("missed {id}: {verdict_now} {brand_now:?} {reasons:?}");
                }
            }
            None if by_image && flagged => honest_flagged.push(id),
            None => {}
        }
    }
    let recall = found as f64 / seen as f64;
    println!(
        "image cases crawled {seen}, found {found}: recall {recall:.3}; honest photos flagged {}",
        honest_flagged.len()
    );
    assert!(
        seen >= 30,
        "the crawl reached only {seen} of the image cases"
    );
    assert!(recall >= 0.95, "recall {recall}");
    assert!(
        honest_flagged.is_empty(),
        "honest listings matched by photo: {honest_flagged:?}"
    );
    check_review_ui(&web, &db).await;
}

/// The queue shows each notice's photo, and a notice shows the listing's photo beside the brand's
/// reference image, both served from what markwatch stored.
async fn check_review_ui(web: &WebServer, db: &sqlx::SqlitePool) {
    web.add_user("rev", Role::Reviewer).await;
    let client = web.client();
    web.login(&client, "rev").await;
    let queue = web.text(&client, "/queue").await;
    assert!(
        queue.contains("<img src=\"/photos/"),
        "no thumbnails in the queue"
    );
    // A notice on a listing flagged by its photo alone.
    let notice: i64 = sqlx::query_scalar(
        "SELECT ni.notice_id FROM notice_items ni JOIN matches m ON m.id = ni.match_id
         WHERE m.reasons LIKE '%image_match%' AND m.mark_id IS NULL LIMIT 1",
    )
    .fetch_one(db)
    .await
    .expect("a drafted notice on a photo match");
    let page = web.text(&client, &format!("/notices/{notice}")).await;
    assert!(
        page.contains("/photos/reference/"),
        "no reference image beside the photo"
    );
    assert!(page.contains("distance"), "{page}");
    let photo = page
        .split("<img src=\"/photos/")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap()
        .to_owned();
    let resp = client
        .get(web.url(&format!("/photos/{photo}")))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "image/jpeg");
    let bytes = resp.bytes().await.unwrap();
    use sha2::Digest;
    let stored: String = sqlx::query_scalar("SELECT sha256 FROM listing_images WHERE id = ?")
        .bind(photo.parse::<i64>().unwrap())
        .fetch_one(db)
        .await
        .unwrap();
    assert_eq!(
        hex::encode(sha2::Sha256::digest(&bytes)),
        stored,
        "served from evidence as captured"
    );
    // The notice's report shows the same pair, from the same bytes, side by side.
    let dir = tempfile::tempdir().unwrap();
    let templates = markwatch::Templates::load(None).unwrap();
    let html = markwatch::write_report_html(&web.store, notice, &templates, dir.path())
        .await
        .unwrap();
    let html = std::fs::read_to_string(html).unwrap();
    assert!(html.contains("Compared with the genuine product"), "{html}");
    let listing_file = format!("photo-{photo}.jpg");
    assert!(html.contains(&listing_file), "{html}");
    assert_eq!(
        hex::encode(sha2::Sha256::digest(
            std::fs::read(dir.path().join(&listing_file)).unwrap()
        )),
        stored
    );
    let reference = page
        .split("/photos/reference/")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap();
    let reference_file = format!("reference-{reference}.jpg");
    assert!(html.contains(&reference_file), "{html}");
    assert!(dir.path().join(&reference_file).exists());

    // Not for anonymous visitors.
    let anon = web
        .client()
        .get(web.url(&format!("/photos/{photo}")))
        .send()
        .await
        .unwrap();
    assert_ne!(anon.status(), 200);
}
