//! Unit-test setup for the notice tables: a real SQLite file with the demo registry, listings
//! stored from a page, and matches written as the pipeline writes them.

use crate::fetch::Page;
use crate::model::Listing;
use crate::store::{Database, Store};

/// A fresh, empty database for one test: an SQLite file in `dir`, or, when `MW_TEST_POSTGRES`
/// names a server (`postgres://user@host:port`), a new database `mw_test_…` on it. `.ci/run`
/// runs the suites both ways; it drops the `mw_test_` databases before it starts.
pub(crate) async fn scratch_db(dir: &std::path::Path) -> Database {
    use sqlx::migrate::MigrateDatabase as _;
    let name = format!("mw_test_{}", hex::encode(rand::random::<[u8; 8]>()));
    match std::env::var("MW_TEST_POSTGRES") {
        Ok(server) if !server.is_empty() => {
            let url = format!("{}/{name}", server.trim_end_matches('/'));
            sqlx::Postgres::create_database(&url)
                .await
                .expect("create a test database on MW_TEST_POSTGRES");
            Database::Postgres(url)
        }
        _ => Database::Sqlite(dir.join(format!("{name}.db"))),
    }
}

pub(crate) struct TestDb {
    pub store: Store,
    _dir: tempfile::TempDir,
}

impl TestDb {
    pub(crate) async fn new() -> TestDb {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(scratch_db(dir.path()).await).await.unwrap();
        let brands = crate::registry::load_file(std::path::Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/fixtures/brands.toml"
        )))
        .unwrap();
        store
            .import_registry(&brands, "test", "brands.toml")
            .await
            .unwrap();
        TestDb { store, _dir: dir }
    }

    pub(crate) fn pool(&self) -> &sqlx::AnyPool {
        self.store.pool()
    }

    /// Stores one listing (with its page as evidence) and a match for it on `mark` of `brand`.
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn listing_with_match(
        &self,
        platform: &str,
        item_id: &str,
        title: &str,
        seller: &str,
        brand: &str,
        mark: Option<(&str, &str)>,
        verdict: &str,
        score: f64,
    ) -> (i64, i64) {
        let listing = Listing {
            platform: platform.to_owned(),
            item_id: item_id.to_owned(),
            url: format!("https://example.test/{platform}/{item_id}"),
            title: title.to_owned(),
            seller: Some(seller.to_owned()),
            price: Some(39.0),
            currency: "CNY".to_owned(),
            ..Listing::default()
        };
        let page = Page {
            url: format!("http://127.0.0.1/{platform}/search?q=x&i={item_id}"),
            final_url: format!("http://127.0.0.1/{platform}/search?q=x&i={item_id}"),
            status: 200,
            headers: vec![("content-type".to_owned(), "text/html".to_owned())],
            body: format!("<html><body>{title}</body></html>").into_bytes(),
            fetched_at: chrono::Utc::now(),
            attempts: 1,
        };
        let run = self.store.start_crawl_run(platform, None).await.unwrap();
        let rec = crate::crawl::record_page(&self.store, run, &page, &[listing], &|_| {
            crate::model::Verdict::clear()
        })
        .await
        .unwrap();
        let listing_id = rec.new.first().or(rec.changed.first()).map(|x| x.1);
        let listing_id = match listing_id {
            Some(id) => id,
            None => crate::store::sql::query_scalar(
                "SELECT id FROM listings WHERE platform = ? AND item_id = ?",
            )
            .bind(platform)
            .bind(item_id)
            .fetch_one(self.pool())
            .await
            .unwrap(),
        };
        let brand_id: i64 = crate::store::sql::query_scalar("SELECT id FROM brands WHERE name = ?")
            .bind(brand)
            .fetch_one(self.pool())
            .await
            .unwrap();
        let mark_id: Option<i64> = match mark {
            Some((text, jurisdiction)) => Some(
                crate::store::sql::query_scalar(
                    "SELECT id FROM marks WHERE brand_id = ? AND text = ? AND jurisdiction = ?",
                )
                .bind(brand_id)
                .bind(text)
                .bind(jurisdiction)
                .fetch_one(self.pool())
                .await
                .unwrap(),
            ),
            None => None,
        };
        let reasons = serde_json::json!([
            {"code": "mark_exact", "detail": format!("{} in the title", mark.map(|m| m.0).unwrap_or(brand))},
            {"code": "counterfeit_term", "detail": "高仿"}
        ]);
        let now = crate::store::now();
        let match_id: i64 = crate::store::sql::query_scalar(
            "INSERT INTO matches (listing_id, brand_id, mark_id, verdict, score, reasons, matcher_version,
             created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, 'test', ?, ?)
             ON CONFLICT (listing_id) DO UPDATE SET brand_id = excluded.brand_id, mark_id = excluded.mark_id,
             verdict = excluded.verdict, score = excluded.score, reasons = excluded.reasons RETURNING id",
        )
        .bind(listing_id)
        .bind(brand_id)
        .bind(mark_id)
        .bind(verdict)
        .bind(score)
        .bind(reasons.to_string())
        .bind(&now)
        .bind(&now)
        .fetch_one(self.pool())
        .await
        .unwrap();
        (listing_id, match_id)
    }
}
