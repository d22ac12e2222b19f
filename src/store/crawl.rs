//! Crawl runs, evidence (hash-chained), and listings with their change history.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use serde::Serialize;
use sha2::{Digest, Sha256};
use sqlx::{Sqlite, Transaction};
use tokio::sync::{mpsc, oneshot};

use super::matches::{MatchChange, store_verdicts};
use super::{Result, Store, StoreError, now};
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
    ///
    /// One transaction per call; a crawl stores its pages through a [`PageWriter`] instead.
    pub async fn record_page(
        &self,
        run_id: i64,
        page: &Page,
        listings: &[Listing],
        judge: &(dyn Fn(&Listing) -> Verdict + Sync),
    ) -> Result<PageRecord> {
        let prepared = PreparedPage::search(run_id, page, listings.to_vec(), judge);
        self.write_pages(&[&prepared], judge).await.map(one)
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
        let prepared = PreparedPage::detail(
            run_id,
            page,
            listing_id,
            seller.map(str::to_owned),
            category.map(str::to_owned),
            verdict.clone(),
        );
        let record = self
            .write_pages(&[&prepared], &no_listings)
            .await
            .map(one)?;
        Ok((record.evidence_id, record.matches))
    }

    /// Stores a page that yielded no listings (blocked, failed status) so the record is complete.
    pub async fn record_evidence(&self, run_id: i64, page: &Page) -> Result<i64> {
        let prepared = PreparedPage::evidence(run_id, page);
        let record = self
            .write_pages(&[&prepared], &no_listings)
            .await
            .map(one)?;
        Ok(record.evidence_id)
    }

    /// Starts a writer that stores a crawl's pages in group commits, judging changed listings
    /// with `judge`. It stops when the last clone of the returned handle is dropped.
    pub fn page_writer(&self, judge: Arc<Judge>) -> PageWriter {
        let (jobs, queue) = mpsc::channel(MAX_GROUP);
        tokio::spawn(run_page_writer(self.clone(), judge, queue));
        PageWriter { jobs }
    }

    /// Stores `pages` in order, in one transaction.
    async fn write_pages(
        &self,
        pages: &[&PreparedPage],
        judge: &(dyn Fn(&Listing) -> Verdict + Sync),
    ) -> Result<Vec<PageRecord>> {
        let mut tx = self.begin_write().await?;
        let mut chain = None;
        let mut records = Vec::with_capacity(pages.len());
        for page in pages {
            records.push(write_page(&mut tx, &mut chain, page, judge).await?);
        }
        tx.commit().await?;
        Ok(records)
    }
}

/// The judge for pages with no listings to judge.
fn no_listings(_: &Listing) -> Verdict {
    Verdict::clear()
}

fn one(mut records: Vec<PageRecord>) -> PageRecord {
    records.pop().expect("one page in, one record out")
}

/// Gives the verdict on a listing as stored.
pub type Judge = dyn Fn(&Listing) -> Verdict + Send + Sync;

/// The most pages one group commit stores. It bounds how long the write lock is held (a page
/// takes about a millisecond), so a reviewer's click never waits long behind a crawl.
const MAX_GROUP: usize = 32;

/// A fetched page made ready to store, with all the CPU work done: its body compressed and
/// hashed and its listings judged. Build it off the async threads; storing it then holds the
/// write lock only for the SQL.
pub struct PreparedPage {
    run_id: i64,
    sealed: SealedPage,
    content: Content,
}

enum Content {
    Search {
        listings: Vec<Listing>,
        verdicts: Vec<Verdict>,
    },
    Detail {
        listing_id: i64,
        seller: Option<String>,
        category: Option<String>,
        verdict: Verdict,
    },
    EvidenceOnly,
}

impl PreparedPage {
    /// A search page and the listings read from it, each judged by `judge`.
    pub fn search(
        run_id: i64,
        page: &Page,
        listings: Vec<Listing>,
        judge: &(dyn Fn(&Listing) -> Verdict + Sync),
    ) -> PreparedPage {
        let verdicts = listings.iter().map(judge).collect();
        PreparedPage {
            run_id,
            sealed: SealedPage::new(page),
            content: Content::Search { listings, verdicts },
        }
    }

    /// An item page: what it adds to stored listing `listing_id`, and the verdict given with
    /// that knowledge.
    pub fn detail(
        run_id: i64,
        page: &Page,
        listing_id: i64,
        seller: Option<String>,
        category: Option<String>,
        verdict: Verdict,
    ) -> PreparedPage {
        PreparedPage {
            run_id,
            sealed: SealedPage::new(page),
            content: Content::Detail {
                listing_id,
                seller,
                category,
                verdict,
            },
        }
    }

    /// A page that yielded nothing to store but itself (a wall, an unreadable page).
    pub fn evidence(run_id: i64, page: &Page) -> PreparedPage {
        PreparedPage {
            run_id,
            sealed: SealedPage::new(page),
            content: Content::EvidenceOnly,
        }
    }
}

/// Stores a crawl's pages. SQLite takes one writer at a time, and a transaction per page made
/// every page queue for the lock; the writer instead commits whatever pages arrived while the
/// last commit was written, up to [`MAX_GROUP`], in one transaction. Each page is still stored
/// whole or not at all, and [`PageWriter::store`] returns only once its page is committed.
#[derive(Clone)]
pub struct PageWriter {
    jobs: mpsc::Sender<PageJob>,
}

struct PageJob {
    page: PreparedPage,
    done: oneshot::Sender<Result<PageRecord>>,
}

impl PageWriter {
    /// Stores `page` and returns what it did, once committed.
    pub async fn store(&self, page: PreparedPage) -> Result<PageRecord> {
        let (done, committed) = oneshot::channel();
        self.jobs
            .send(PageJob { page, done })
            .await
            .map_err(|_| StoreError::WriterStopped)?;
        committed.await.map_err(|_| StoreError::WriterStopped)?
    }
}

async fn run_page_writer(store: Store, judge: Arc<Judge>, mut queue: mpsc::Receiver<PageJob>) {
    let mut group = Vec::with_capacity(MAX_GROUP);
    while queue.recv_many(&mut group, MAX_GROUP).await > 0 {
        let pages: Vec<_> = group.iter().map(|job| &job.page).collect();
        let started = std::time::Instant::now();
        let stored = store.write_pages(&pages, &*judge).await;
        tracing::trace!(pages = pages.len(), elapsed = ?started.elapsed(), "group commit");
        match stored {
            Ok(records) => {
                for (job, record) in group.drain(..).zip(records) {
                    let _ = job.done.send(Ok(record));
                }
            }
            // One bad page must not fail the pages that happened to share its commit.
            Err(e) if group.len() > 1 => {
                tracing::warn!(error = %e, pages = group.len(), "group commit failed; storing its pages one by one");
                for job in group.drain(..) {
                    let stored = store.write_pages(&[&job.page], &*judge).await.map(one);
                    let _ = job.done.send(stored);
                }
            }
            Err(e) => {
                if let Some(job) = group.pop() {
                    let _ = job.done.send(Err(e));
                }
            }
        }
    }
}

/// Writes one prepared page inside `tx`. `chain` carries the evidence chain's last link
/// between the pages of one transaction.
async fn write_page(
    tx: &mut Transaction<'_, Sqlite>,
    chain: &mut Option<String>,
    page: &PreparedPage,
    judge: &(dyn Fn(&Listing) -> Verdict + Sync),
) -> Result<PageRecord> {
    let evidence_id = insert_evidence(tx, chain, page.run_id, &page.sealed).await?;
    let mut record = PageRecord {
        evidence_id,
        ..PageRecord::default()
    };
    match &page.content {
        Content::Search { listings, verdicts } => {
            let seen_at = &page.sealed.fetched_at;
            let upserts = upsert_listings(tx, listings, evidence_id, seen_at).await?;
            // A changed listing is judged again as now stored; unchanged ones keep their
            // verdict (`rematch` re-scores after registry edits).
            let again: Vec<Option<Verdict>> = upserts
                .iter()
                .map(|u| match u {
                    Upsert::Changed(_, listing) => Some(judge(listing)),
                    _ => None,
                })
                .collect();
            let mut stored = Vec::with_capacity(listings.len());
            for (index, (upsert, (first, again))) in
                upserts.iter().zip(verdicts.iter().zip(&again)).enumerate()
            {
                let id = match upsert {
                    Upsert::New(id) => {
                        record.new.push((index, *id));
                        *id
                    }
                    Upsert::Changed(id, _) => {
                        record.changed.push((index, *id));
                        *id
                    }
                    Upsert::Same => continue,
                };
                stored.push((id, again.as_ref().unwrap_or(first)));
            }
            record.matches = store_verdicts(tx, &stored).await?;
        }
        Content::Detail {
            listing_id,
            seller,
            category,
            verdict,
        } => {
            sqlx::query(
                "UPDATE listings SET detail_evidence_id = ?, seller = coalesce(?, seller), category = coalesce(?, category)
                 WHERE id = ?",
            )
            .bind(evidence_id)
            .bind(seller)
            .bind(category)
            .bind(listing_id)
            .execute(&mut **tx)
            .await?;
            record.matches = store_verdicts(tx, &[(*listing_id, verdict)]).await?;
        }
        Content::EvidenceOnly => {}
    }
    Ok(record)
}

/// A stored page, decompressed, as the crawl received it.
#[derive(Debug, Clone)]
pub struct StoredPage {
    pub evidence_id: i64,
    pub platform: String,
    pub url: String,
    pub status: u16,
    pub content_type: Option<String>,
    pub body: Vec<u8>,
}

impl Store {
    /// Bytes of pages stored and listings stored, for benchmarks.
    pub async fn bench_totals(&self) -> Result<(u64, u64)> {
        let (bytes, listings): (i64, i64) = sqlx::query_as(
            "SELECT (SELECT coalesce(sum(body_len), 0) FROM evidence), (SELECT count(*) FROM listings)",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok((bytes as u64, listings as u64))
    }

    /// Stored pages in id order after `after_id`, bodies decompressed.
    pub async fn stored_pages(&self, after_id: i64, limit: u32) -> Result<Vec<StoredPage>> {
        let rows: Vec<(i64, String, String, i64, String, Vec<u8>)> = sqlx::query_as(
            "SELECT e.id, r.platform, e.url, e.status, e.headers, e.body FROM evidence e
             JOIN crawl_runs r ON r.id = e.crawl_run_id WHERE e.id > ? ORDER BY e.id LIMIT ?",
        )
        .bind(after_id)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|(id, platform, url, status, headers, body)| {
                let corrupt = |column| StoreError::Corrupt {
                    table: "evidence",
                    column,
                    value: format!("record {id}"),
                };
                let headers: Vec<(String, String)> =
                    serde_json::from_str(&headers).map_err(|_| corrupt("headers"))?;
                Ok(StoredPage {
                    evidence_id: id,
                    platform,
                    url,
                    status: u16::try_from(status).map_err(|_| corrupt("status"))?,
                    content_type: headers
                        .into_iter()
                        .find(|(k, _)| k.eq_ignore_ascii_case("content-type"))
                        .map(|(_, v)| v),
                    body: zstd::decode_all(&body[..]).map_err(|_| corrupt("body"))?,
                })
            })
            .collect()
    }
}

/// A page's body compressed and its hashes computed, ready to insert.
struct SealedPage {
    url: String,
    fetched_at: String,
    status: u16,
    body_len: usize,
    compressed: Vec<u8>,
    body_sha256: String,
    headers_json: String,
}

impl SealedPage {
    fn new(page: &Page) -> SealedPage {
        SealedPage {
            url: page.final_url.clone(),
            fetched_at: page
                .fetched_at
                .to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            status: page.status,
            body_len: page.body.len(),
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

/// Appends a page to the evidence chain. `chain` caches the last link within a transaction,
/// which holds the write lock, so no other writer can append meanwhile.
async fn insert_evidence(
    tx: &mut Transaction<'_, Sqlite>,
    chain: &mut Option<String>,
    run_id: i64,
    sealed: &SealedPage,
) -> Result<i64> {
    let prev = match chain.take() {
        Some(prev) => prev,
        None => sqlx::query_scalar("SELECT chain_hash FROM evidence ORDER BY id DESC LIMIT 1")
            .fetch_optional(&mut **tx)
            .await?
            .unwrap_or_else(|| GENESIS_HASH.to_owned()),
    };
    let link = chain_hash(
        &prev,
        &sealed.url,
        &sealed.fetched_at,
        sealed.status,
        &sealed.body_sha256,
        &sealed.headers_json,
    );
    let id = sqlx::query_scalar(
        "INSERT INTO evidence (crawl_run_id, url, fetched_at, status, headers, body, body_len, body_sha256,
         prev_hash, chain_hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
    )
    .bind(run_id)
    .bind(&sealed.url)
    .bind(&sealed.fetched_at)
    .bind(i64::from(sealed.status))
    .bind(&sealed.headers_json)
    .bind(&sealed.compressed)
    .bind(sealed.body_len as i64)
    .bind(&sealed.body_sha256)
    .bind(&prev)
    .bind(&link)
    .fetch_one(&mut **tx)
    .await?;
    *chain = Some(link);
    Ok(id)
}

enum Upsert {
    New(i64),
    /// The listing as now stored: the new fields over what earlier pages showed.
    Changed(i64, Box<Listing>),
    Same,
}

/// Upserts a page's listings in a handful of statements, whatever their number: a page holds
/// up to 60 listings and the write lock is held meanwhile. Returns one outcome per listing.
async fn upsert_listings(
    tx: &mut Transaction<'_, Sqlite>,
    listings: &[Listing],
    evidence_id: i64,
    seen_at: &str,
) -> Result<Vec<Upsert>> {
    #[derive(Serialize)]
    struct Key<'a> {
        p: &'a str,
        i: &'a str,
    }
    let keys: Vec<_> = listings
        .iter()
        .map(|l| Key {
            p: &l.platform,
            i: &l.item_id,
        })
        .collect();
    /// id, platform, item_id, title, price, seller, category
    type Stored = (
        i64,
        String,
        String,
        String,
        Option<f64>,
        Option<String>,
        Option<String>,
    );
    let stored: Vec<Stored> = sqlx::query_as(
        "SELECT l.id, l.platform, l.item_id, l.title, l.price, l.seller, l.category
         FROM json_each(?) j JOIN listings l ON l.platform = j.value ->> 'p' AND l.item_id = j.value ->> 'i'",
    )
    .bind(to_json(&keys))
    .fetch_all(&mut **tx)
    .await?;
    let stored: HashMap<(&str, &str), &Stored> = stored
        .iter()
        .map(|row| ((row.1.as_str(), row.2.as_str()), row))
        .collect();

    let mut out = Vec::with_capacity(listings.len());
    let mut first_on_page = HashSet::new();
    let mut fresh = Vec::new();
    let mut same = Vec::new();
    for l in listings {
        let key = (l.platform.as_str(), l.item_id.as_str());
        // The same item twice on a page (an ad and its organic twin) is one listing.
        if !first_on_page.insert(key) {
            out.push(Upsert::Same);
            continue;
        }
        let Some(&&(id, _, _, ref title, price, ref seller, ref category)) = stored.get(&key)
        else {
            fresh.push(l);
            out.push(Upsert::New(0));
            continue;
        };
        let changed =
            record_changes(tx, id, l, (title, price, seller), evidence_id, seen_at).await?;
        if !changed {
            same.push(id);
            out.push(Upsert::Same);
            continue;
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
        out.push(Upsert::Changed(
            id,
            Box::new(Listing {
                seller: l.seller.clone().or_else(|| seller.clone()),
                category: category.clone(),
                ..l.clone()
            }),
        ));
    }
    if !same.is_empty() {
        sqlx::query(
            "UPDATE listings SET evidence_id = ?, last_seen = max(last_seen, ?)
             WHERE id IN (SELECT value FROM json_each(?))",
        )
        .bind(evidence_id)
        .bind(seen_at)
        .bind(to_json(&same))
        .execute(&mut **tx)
        .await?;
    }
    if !fresh.is_empty() {
        let inserted: Vec<(i64, String, String)> = sqlx::query_as(
            "INSERT INTO listings (platform, item_id, url, title, seller, price, currency, category, is_ad,
             evidence_id, first_seen, last_seen)
             SELECT j.value ->> 'platform', j.value ->> 'item_id', j.value ->> 'url', j.value ->> 'title',
                    j.value ->> 'seller', j.value ->> 'price', j.value ->> 'currency', j.value ->> 'category',
                    coalesce(j.value ->> 'is_ad', 0), ?, ?, ?
             FROM json_each(?) j
             RETURNING id, platform, item_id",
        )
        .bind(evidence_id)
        .bind(seen_at)
        .bind(seen_at)
        .bind(to_json(&fresh))
        .fetch_all(&mut **tx)
        .await?;
        let ids: HashMap<(&str, &str), i64> = inserted
            .iter()
            .map(|(id, p, i)| ((p.as_str(), i.as_str()), *id))
            .collect();
        for (l, upsert) in listings.iter().zip(out.iter_mut()) {
            if let Upsert::New(id) = upsert {
                *id = ids[&(l.platform.as_str(), l.item_id.as_str())];
            }
        }
    }
    Ok(out)
}

/// Records which of title, price and seller changed; returns whether any did.
async fn record_changes(
    tx: &mut Transaction<'_, Sqlite>,
    id: i64,
    l: &Listing,
    (title, price, seller): (&str, Option<f64>, &Option<String>),
    evidence_id: i64,
    seen_at: &str,
) -> Result<bool> {
    let price_text = |p: Option<f64>| p.map(|p| format!("{p:.2}"));
    // A search page without a seller (Amazon) doesn't erase the one the item page gave.
    let seller_changed = l.seller.is_some() && l.seller != *seller;
    let changes = [
        (
            "title",
            (title != l.title).then(|| (Some(title.to_owned()), Some(l.title.clone()))),
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
    Ok(changed)
}

/// A JSON array for `json_each(?)`: one bound parameter however many values.
pub(super) fn to_json<T: Serialize>(values: &T) -> String {
    serde_json::to_string(values).expect("plain data serialises")
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
        // An ad and its organic twin on one page are one listing.
        let mut twin = listing("索尼 耳机", 99.0);
        twin.item_id = "100099".to_owned();
        let twins = store
            .record_page(run, &page("d"), &[twin.clone(), twin], &judge)
            .await
            .unwrap();
        assert_eq!((twins.new.len(), twins.matches.len()), (1, 1));

        let count: i64 = sqlx::query_scalar("SELECT count(*) FROM listings")
            .fetch_one(&store.pool)
            .await
            .unwrap();
        assert_eq!(count, 2);
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
        assert_eq!(links.len(), 4);
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
