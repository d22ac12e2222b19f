//! Crawl runs, evidence (hash-chained), and listings with their change history.

use serde::Serialize;
use sha2::{Digest, Sha256};
use sqlx::{Sqlite, Transaction};

use super::matches::{MatchChange, store_verdicts};
use super::{Result, Store, now};
use crate::fetch::Page;
use crate::matcher::Verdict;
use crate::model::Listing;

/// The chain's first link points at this.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Counters a crawl run keeps.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct RunCounts {
    pub pages_ok: u64,
    pub pages_retried: u64,
    pub pages_failed: u64,
    pub pages_blocked: u64,
    pub listings_new: u64,
    pub listings_changed: u64,
    /// Listings that became infringing or suspect in this run.
    pub listings_flagged: u64,
}

impl std::ops::AddAssign for RunCounts {
    fn add_assign(&mut self, o: RunCounts) {
        self.pages_ok += o.pages_ok;
        self.pages_retried += o.pages_retried;
        self.pages_failed += o.pages_failed;
        self.pages_blocked += o.pages_blocked;
        self.listings_new += o.listings_new;
        self.listings_changed += o.listings_changed;
        self.listings_flagged += o.listings_flagged;
    }
}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RunStatus {
    /// Every page fetched.
    Ok,
    /// Some pages failed or were blocked.
    Partial,
    /// Nothing could be fetched.
    Failed,
}

impl RunStatus {
    fn as_str(self) -> &'static str {
        match self {
            RunStatus::Ok => "ok",
            RunStatus::Partial => "partial",
            RunStatus::Failed => "failed",
        }
    }
}

/// What storing one page did to the listings on it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PageRecord {
    pub evidence_id: i64,
    /// Listings seen for the first time: (index in the input slice, listing id).
    pub new: Vec<(usize, i64)>,
    /// Listings whose title, price or seller changed: (index in the input slice, listing id).
    pub changed: Vec<(usize, i64)>,
    /// Verdicts that are new or differ from the stored ones.
    pub matches: Vec<MatchChange>,
}

impl PageRecord {
    /// Listings on the page that have just been flagged for review.
    pub fn flagged(&self) -> usize {
        self.matches.iter().filter(|m| m.newly_flagged()).count()
    }
}

impl Store {
    pub async fn start_crawl_run(&self, platform: &str, keyword: Option<&str>) -> Result<i64> {
        Ok(sqlx::query_scalar(
            "INSERT INTO crawl_runs (platform, keyword, started_at) VALUES (?, ?, ?) RETURNING id",
        )
        .bind(platform)
        .bind(keyword)
        .bind(now())
        .fetch_one(&self.pool)
        .await?)
    }

    pub async fn finish_crawl_run(
        &self,
        run_id: i64,
        counts: &RunCounts,
        status: RunStatus,
        error: Option<&str>,
    ) -> Result<()> {
        sqlx::query(
            "UPDATE crawl_runs SET finished_at = ?, status = ?, pages_ok = ?, pages_retried = ?, pages_failed = ?,
             pages_blocked = ?, listings_new = ?, listings_changed = ?, listings_flagged = ?, error = ?
             WHERE id = ?",
        )
        .bind(now())
        .bind(status.as_str())
        .bind(counts.pages_ok as i64)
        .bind(counts.pages_retried as i64)
        .bind(counts.pages_failed as i64)
        .bind(counts.pages_blocked as i64)
        .bind(counts.listings_new as i64)
        .bind(counts.listings_changed as i64)
        .bind(counts.listings_flagged as i64)
        .bind(error)
        .bind(run_id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Stores a fetched page as evidence, upserts the listings extracted from it and their
    /// verdicts, atomically: a listing never exists without the evidence it came from, nor
    /// without its verdict.
    ///
    /// `judge` gives the verdict on a new or changed listing as it will be stored: a search page
    /// that omits the shop doesn't make the verdict forget what the item page showed.
    pub async fn record_page(
        &self,
        run_id: i64,
        page: &Page,
        listings: &[Listing],
        judge: &(dyn Fn(&Listing) -> Verdict + Sync),
    ) -> Result<PageRecord> {
        // Compress and hash outside the write lock.
        let sealed = SealedPage::new(page);
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let evidence_id = insert_evidence(&mut tx, run_id, page, &sealed).await?;
        let mut record = PageRecord {
            evidence_id,
            ..PageRecord::default()
        };
        let seen_at = page
            .fetched_at
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        let mut verdicts = Vec::with_capacity(listings.len());
        for (index, listing) in listings.iter().enumerate() {
            // Unchanged listings keep their verdict; `rematch` re-scores after registry edits.
            match upsert_listing(&mut tx, listing, evidence_id, &seen_at).await? {
                Upsert::New(id) => {
                    record.new.push((index, id));
                    verdicts.push((id, judge(listing)));
                }
                Upsert::Changed(id, stored) => {
                    record.changed.push((index, id));
                    verdicts.push((id, judge(&stored)));
                }
                Upsert::Same => {}
            }
        }
        let refs: Vec<_> = verdicts.iter().map(|(id, v)| (*id, v)).collect();
        record.matches = store_verdicts(&mut tx, &refs).await?;
        tx.commit().await?;
        Ok(record)
    }

    /// Stores an item page as evidence, fills in what only the item page shows, and stores the
    /// verdict given with that knowledge.
    pub async fn record_detail(
        &self,
        run_id: i64,
        page: &Page,
        listing_id: i64,
        seller: Option<&str>,
        category: Option<&str>,
        verdict: &Verdict,
    ) -> Result<(i64, Vec<MatchChange>)> {
        let sealed = SealedPage::new(page);
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let evidence_id = insert_evidence(&mut tx, run_id, page, &sealed).await?;
        sqlx::query(
            "UPDATE listings SET detail_evidence_id = ?, seller = coalesce(?, seller), category = coalesce(?, category)
             WHERE id = ?",
        )
        .bind(evidence_id)
        .bind(seller)
        .bind(category)
        .bind(listing_id)
        .execute(&mut *tx)
        .await?;
        let changes = store_verdicts(&mut tx, &[(listing_id, verdict)]).await?;
        tx.commit().await?;
        Ok((evidence_id, changes))
    }

    /// Stores a page that yielded no listings (blocked, failed status) so the record is complete.
    pub async fn record_evidence(&self, run_id: i64, page: &Page) -> Result<i64> {
        let sealed = SealedPage::new(page);
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let evidence_id = insert_evidence(&mut tx, run_id, page, &sealed).await?;
        tx.commit().await?;
        Ok(evidence_id)
    }
}

/// A page's body compressed and its hashes computed, ready to insert.
struct SealedPage {
    compressed: Vec<u8>,
    body_sha256: String,
    headers_json: String,
}

impl SealedPage {
    fn new(page: &Page) -> SealedPage {
        SealedPage {
            // Level 3: most of the size win at a fraction of the time of higher levels.
            compressed: zstd::bulk::compress(&page.body, 3).unwrap_or_else(|_| page.body.clone()),
            body_sha256: hex::encode(Sha256::digest(&page.body)),
            headers_json: serde_json::to_string(&page.headers).unwrap_or_else(|_| "[]".to_owned()),
        }
    }
}

/// The chain link: commits to the previous link and to everything stored about the page.
pub fn chain_hash(
    prev: &str,
    url: &str,
    fetched_at: &str,
    status: u16,
    body_sha256: &str,
    headers_json: &str,
) -> String {
    let mut h = Sha256::new();
    for part in [
        prev,
        url,
        fetched_at,
        &status.to_string(),
        body_sha256,
        headers_json,
    ] {
        h.update(part.as_bytes());
        h.update(b"\n");
    }
    hex::encode(h.finalize())
}

async fn insert_evidence(
    tx: &mut Transaction<'_, Sqlite>,
    run_id: i64,
    page: &Page,
    sealed: &SealedPage,
) -> Result<i64> {
    let prev: Option<String> =
        sqlx::query_scalar("SELECT chain_hash FROM evidence ORDER BY id DESC LIMIT 1")
            .fetch_optional(&mut **tx)
            .await?;
    let prev = prev.unwrap_or_else(|| GENESIS_HASH.to_owned());
    let fetched_at = page
        .fetched_at
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let chain = chain_hash(
        &prev,
        &page.final_url,
        &fetched_at,
        page.status,
        &sealed.body_sha256,
        &sealed.headers_json,
    );
    Ok(sqlx::query_scalar(
        "INSERT INTO evidence (crawl_run_id, url, fetched_at, status, headers, body, body_len, body_sha256,
         prev_hash, chain_hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
    )
    .bind(run_id)
    .bind(&page.final_url)
    .bind(&fetched_at)
    .bind(i64::from(page.status))
    .bind(&sealed.headers_json)
    .bind(&sealed.compressed)
    .bind(page.body.len() as i64)
    .bind(&sealed.body_sha256)
    .bind(&prev)
    .bind(&chain)
    .fetch_one(&mut **tx)
    .await?)
}

enum Upsert {
    New(i64),
    /// The listing as now stored: the new fields over what earlier pages showed.
    Changed(i64, Box<Listing>),
    Same,
}

async fn upsert_listing(
    tx: &mut Transaction<'_, Sqlite>,
    l: &Listing,
    evidence_id: i64,
    seen_at: &str,
) -> Result<Upsert> {
    /// id, title, price, seller, category
    type Stored = (i64, String, Option<f64>, Option<String>, Option<String>);
    let existing: Option<Stored> = sqlx::query_as(
        "SELECT id, title, price, seller, category FROM listings WHERE platform = ? AND item_id = ?",
    )
    .bind(&l.platform)
    .bind(&l.item_id)
    .fetch_optional(&mut **tx)
    .await?;
    let Some((id, title, price, seller, category)) = existing else {
        let id = sqlx::query_scalar(
            "INSERT INTO listings (platform, item_id, url, title, seller, price, currency, category, is_ad,
             evidence_id, first_seen, last_seen) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
        )
        .bind(&l.platform)
        .bind(&l.item_id)
        .bind(&l.url)
        .bind(&l.title)
        .bind(&l.seller)
        .bind(l.price)
        .bind(&l.currency)
        .bind(&l.category)
        .bind(l.is_ad)
        .bind(evidence_id)
        .bind(seen_at)
        .bind(seen_at)
        .fetch_one(&mut **tx)
        .await?;
        return Ok(Upsert::New(id));
    };
    let price_text = |p: Option<f64>| p.map(|p| format!("{p:.2}"));
    // A search page without a seller (Amazon) doesn't erase the one the item page gave.
    let seller_changed = l.seller.is_some() && l.seller != seller;
    let changes = [
        (
            "title",
            (title != l.title).then(|| (Some(title.clone()), Some(l.title.clone()))),
        ),
        (
            "price",
            (price_text(price) != price_text(l.price))
                .then(|| (price_text(price), price_text(l.price))),
        ),
        (
            "seller",
            seller_changed.then(|| (seller.clone(), l.seller.clone())),
        ),
    ];
    let mut changed = false;
    for (field, change) in changes {
        if let Some((old, new)) = change {
            changed = true;
            sqlx::query(
                "INSERT INTO listing_changes (listing_id, field, old_value, new_value, evidence_id, changed_at)
                 VALUES (?, ?, ?, ?, ?, ?)",
            )
            .bind(id)
            .bind(field)
            .bind(old)
            .bind(new)
            .bind(evidence_id)
            .bind(seen_at)
            .execute(&mut **tx)
            .await?;
        }
    }
    sqlx::query(
        "UPDATE listings SET title = ?, price = ?, seller = coalesce(?, seller), url = ?, evidence_id = ?,
         last_seen = max(last_seen, ?) WHERE id = ?",
    )
    .bind(&l.title)
    .bind(l.price)
    .bind(&l.seller)
    .bind(&l.url)
    .bind(evidence_id)
    .bind(seen_at)
    .bind(id)
    .execute(&mut **tx)
    .await?;
    Ok(if changed {
        Upsert::Changed(
            id,
            Box::new(Listing {
                seller: l.seller.clone().or(seller),
                category,
                ..l.clone()
            }),
        )
    } else {
        Upsert::Same
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(body: &str) -> Page {
        Page {
            url: "http://127.0.0.1/jd/search?keyword=x".to_owned(),
            final_url: "http://127.0.0.1/jd/search?keyword=x".to_owned(),
            status: 200,
            headers: vec![("content-type".to_owned(), "text/html".to_owned())],
            body: body.as_bytes().to_vec(),
            fetched_at: chrono::Utc::now(),
            attempts: 1,
        }
    }

    fn listing(title: &str, price: f64) -> Listing {
        Listing {
            platform: "jd".to_owned(),
            item_id: "100012043978".to_owned(),
            url: "https://item.jd.com/100012043978.html".to_owned(),
            title: title.to_owned(),
            seller: Some("京东自营".to_owned()),
            price: Some(price),
            currency: "CNY".to_owned(),
            ..Listing::default()
        }
    }

    #[tokio::test]
    async fn listings_are_upserted_and_changes_recorded_with_chained_evidence() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("t.db")).await.unwrap();
        let run = store.start_crawl_run("jd", None).await.unwrap();
        let matcher = crate::matcher::Matcher::new(&[]).unwrap();
        let judge = |l: &Listing| matcher.check(&crate::matcher::Item::from(l));
        let first = store
            .record_page(run, &page("a"), &[listing("耐克 跑鞋", 499.0)], &judge)
            .await
            .unwrap();
        assert_eq!((first.new.len(), first.changed.len()), (1, 0));
        assert_eq!(first.matches.len(), 1);
        let same = store
            .record_page(run, &page("b"), &[listing("耐克 跑鞋", 499.0)], &judge)
            .await
            .unwrap();
        assert_eq!((same.new.len(), same.changed.len()), (0, 0));
        let changed = store
            .record_page(run, &page("c"), &[listing("耐克 跑鞋 男", 459.0)], &judge)
            .await
            .unwrap();
        assert_eq!(changed.changed, first.new);

        let count: i64 = sqlx::query_scalar("SELECT count(*) FROM listings")
            .fetch_one(&store.pool)
            .await
            .unwrap();
        assert_eq!(count, 1);
        let fields: Vec<(String, String, String)> =
            sqlx::query_as("SELECT field, old_value, new_value FROM listing_changes ORDER BY id")
                .fetch_all(&store.pool)
                .await
                .unwrap();
        assert_eq!(
            fields,
            vec![
                ("title".into(), "耐克 跑鞋".into(), "耐克 跑鞋 男".into()),
                ("price".into(), "499.00".into(), "459.00".into()),
            ]
        );
        // Each link commits to the one before it.
        let links: Vec<(String, String)> =
            sqlx::query_as("SELECT prev_hash, chain_hash FROM evidence ORDER BY id")
                .fetch_all(&store.pool)
                .await
                .unwrap();
        assert_eq!(links.len(), 3);
        assert_eq!(links[0].0, GENESIS_HASH);
        assert_eq!(links[1].0, links[0].1);
        assert_eq!(links[2].0, links[1].1);
        let body: Vec<u8> = sqlx::query_scalar("SELECT body FROM evidence WHERE id = ?")
            .bind(first.evidence_id)
            .fetch_one(&store.pool)
            .await
            .unwrap();
        assert_eq!(zstd::decode_all(&body[..]).unwrap(), b"a");
    }
}
