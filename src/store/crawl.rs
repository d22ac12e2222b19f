//! Crawl runs, evidence (hash-chained), and listings with their change history.

use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::hash_map::Entry;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use serde::Serialize;
use sha2::{Digest, Sha256};
use sqlx::pool::PoolConnection;
use sqlx::{QueryBuilder, Sqlite, Transaction};
use tokio::sync::{mpsc, oneshot};

use super::matches::{MatchChange, store_verdicts};
use super::{Result, Store, StoreError, WriteTx, now};
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

impl RunCounts {
    /// Counts what storing a page did to its listings.
    pub fn add_stored(&mut self, record: &PageRecord) {
        self.listings_new += record.new.len() as u64;
        self.listings_changed += record.changed.len() as u64;
        self.listings_flagged += record.flagged() as u64;
    }
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
    /// Verdicts that are new or differ from the stored ones. A listing judged on several pages
    /// of one group commit is stored once, and reported with the last of them.
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
        commit_group(self.begin_write().await?, pages, judge).await
    }

    /// [`Store::write_pages`] on `conn`, taken from the pool the first time.
    async fn write_pages_on(
        &self,
        conn: &mut Option<PoolConnection<Sqlite>>,
        pages: &[&PreparedPage],
        judge: &(dyn Fn(&Listing) -> Verdict + Sync),
    ) -> Result<Vec<PageRecord>> {
        let conn = match conn {
            Some(conn) => conn,
            None => conn.insert(self.pool.acquire().await?),
        };
        commit_group(self.begin_write_on(conn).await?, pages, judge).await
    }
}

async fn commit_group(
    mut tx: WriteTx<'_>,
    pages: &[&PreparedPage],
    judge: &(dyn Fn(&Listing) -> Verdict + Sync),
) -> Result<Vec<PageRecord>> {
    let records = write_group(&mut tx, pages, judge).await?;
    tx.commit().await?;
    Ok(records)
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

/// How long the writer waits for more pages before committing a group.
const GROUP_WAIT: std::time::Duration = std::time::Duration::from_millis(20);

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
        self.submit(page).await?.wait().await
    }

    /// Hands `page` to the writer without waiting for its commit, so the crawl can fetch the
    /// next page meanwhile; waits only while the writer's queue is full.
    pub async fn submit(&self, page: PreparedPage) -> Result<Committed> {
        let (done, committed) = oneshot::channel();
        self.jobs
            .send(PageJob { page, done })
            .await
            .map_err(|_| StoreError::WriterStopped)?;
        Ok(Committed(committed))
    }
}

/// A page handed to the [`PageWriter`].
pub struct Committed(oneshot::Receiver<Result<PageRecord>>);

impl Committed {
    /// What storing the page did, once it is committed.
    pub async fn wait(self) -> Result<PageRecord> {
        self.0.await.map_err(|_| StoreError::WriterStopped)?
    }
}

async fn run_page_writer(store: Store, judge: Arc<Judge>, mut queue: mpsc::Receiver<PageJob>) {
    // One connection for every commit: SQLite empties a connection's page cache when another
    // connection has committed since its last transaction, so commits that took turns over the
    // pool's connections each began cold, reading back the index pages the last one wrote.
    let mut conn = None;
    let mut group = Vec::with_capacity(MAX_GROUP);
    while queue.recv_many(&mut group, MAX_GROUP).await > 0 {
        // Each commit rewrites every database page it touches (the tables' last leaves, the
        // indexes'), so a moment's wait for more pages makes fewer, larger commits that write
        // less. A crawl waits for a commit only to learn which listings are new (to fetch
        // their item pages), so the delay costs it little.
        let deadline = tokio::time::Instant::now() + GROUP_WAIT;
        while group.len() < MAX_GROUP {
            let room = MAX_GROUP - group.len();
            let more = queue.recv_many(&mut group, room);
            match tokio::time::timeout_at(deadline, more).await {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
        let pages: Vec<_> = group.iter().map(|job| &job.page).collect();
        let started = std::time::Instant::now();
        let stored = store.write_pages_on(&mut conn, &pages, &*judge).await;
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
                    let stored = store
                        .write_pages_on(&mut conn, &[&job.page], &*judge)
                        .await
                        .map(one);
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

/// Writes a group of prepared pages inside `tx`, with the outcome of storing them one after
/// another, in a handful of statements whatever their number: each statement is a round trip
/// to SQLite's thread, and the write lock is held meanwhile.
async fn write_group(
    tx: &mut Transaction<'_, Sqlite>,
    pages: &[&PreparedPage],
    judge: &(dyn Fn(&Listing) -> Verdict + Sync),
) -> Result<Vec<PageRecord>> {
    let evidence_ids = insert_evidence(tx, pages).await?;
    let mut records: Vec<PageRecord> = evidence_ids
        .iter()
        .map(|&evidence_id| PageRecord {
            evidence_id,
            ..PageRecord::default()
        })
        .collect();

    let searches: Vec<_> = pages
        .iter()
        .zip(&evidence_ids)
        .filter_map(|(page, &evidence_id)| match &page.content {
            Content::Search { listings, .. } => Some(PageListings {
                listings,
                evidence_id,
                seen_at: &page.sealed.fetched_at,
            }),
            _ => None,
        })
        .collect();
    let mut upserts = upsert_listings(tx, &searches).await?.into_iter();

    // Verdicts to store, in page order: (listing, verdict, page).
    let mut verdicts: Vec<(i64, Cow<'_, Verdict>, usize)> = Vec::new();
    let mut details = Vec::new();
    for (at, page) in pages.iter().enumerate() {
        let record = &mut records[at];
        match &page.content {
            Content::Search {
                verdicts: first, ..
            } => {
                let upserts = upserts.next().unwrap_or_default();
                for (index, (upsert, first)) in upserts.into_iter().zip(first).enumerate() {
                    match upsert {
                        Upsert::New(id) => {
                            record.new.push((index, id));
                            verdicts.push((id, Cow::Borrowed(first), at));
                        }
                        // Judged again as now stored: the page may have omitted what an
                        // earlier one showed (Amazon's search pages show no shop).
                        Upsert::Changed(id, stored) => {
                            record.changed.push((index, id));
                            verdicts.push((id, Cow::Owned(judge(&stored)), at));
                        }
                        // Unchanged listings keep their verdict; `rematch` re-scores after
                        // registry edits.
                        Upsert::Same => {}
                    }
                }
            }
            Content::Detail {
                listing_id,
                seller,
                category,
                verdict,
            } => {
                details.push(DetailUpdate {
                    listing_id: *listing_id,
                    evidence_id: record.evidence_id,
                    seller: seller.as_deref(),
                    category: category.as_deref(),
                });
                verdicts.push((*listing_id, Cow::Borrowed(verdict), at));
            }
            Content::EvidenceOnly => {}
        }
    }
    if !details.is_empty() {
        sqlx::query(
            "UPDATE listings SET detail_evidence_id = j.value ->> 'evidence_id',
                 seller = coalesce(j.value ->> 'seller', seller),
                 category = coalesce(j.value ->> 'category', category)
             FROM jsonb_each(?) j WHERE listings.id = j.value ->> 'listing_id'",
        )
        .bind(to_json(&details))
        .execute(&mut **tx)
        .await?;
    }

    // A listing judged twice in the group keeps its last verdict, as if stored page by page.
    let mut last_page = HashMap::new();
    for (id, _, at) in &verdicts {
        last_page.insert(*id, *at);
    }
    let latest: Vec<(i64, &Verdict)> = verdicts
        .iter()
        .filter(|(id, _, at)| last_page[id] == *at)
        .map(|(id, verdict, _)| (*id, verdict.as_ref()))
        .collect();
    for change in store_verdicts(tx, &latest).await? {
        records[last_page[&change.listing_id]].matches.push(change);
    }
    Ok(records)
}

#[derive(Serialize)]
struct DetailUpdate<'a> {
    listing_id: i64,
    evidence_id: i64,
    seller: Option<&'a str>,
    category: Option<&'a str>,
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
            compressed: compress(&page.body),
            body_sha256: hex::encode(Sha256::digest(&page.body)),
            headers_json: serde_json::to_string(&page.headers).unwrap_or_else(|_| "[]".to_owned()),
        }
    }
}

/// zstd at level 1: on search pages it compresses 7-10x, within 3% of level 3, in 10-30% less
/// time, and its smaller tables crowd the parser's data out of cache less (the profile had
/// level 3 at 6% of a crawl's CPU). Each thread keeps its context, whose tables cost as much to
/// set up as a page costs to compress, and a scratch buffer of the worst-case size, so the
/// stored copy is allocated at its compressed size: a page waiting for the writer holds a
/// tenth of its body, not a body-sized buffer.
fn compress(body: &[u8]) -> Vec<u8> {
    struct Zstd {
        context: zstd::bulk::Compressor<'static>,
        scratch: Vec<u8>,
    }
    thread_local! {
        static ZSTD: RefCell<Option<Zstd>> = const { RefCell::new(None) };
    }
    ZSTD.with(|z| {
        let mut z = z.borrow_mut();
        if z.is_none() {
            *z = Some(Zstd {
                context: zstd::bulk::Compressor::new(1).ok()?,
                scratch: Vec::new(),
            });
        }
        let Zstd { context, scratch } = z.as_mut()?;
        scratch.clear();
        scratch.reserve(zstd::zstd_safe::compress_bound(body.len()));
        context.compress_to_buffer(body, scratch).ok()?;
        Some(scratch.to_vec())
    })
    .unwrap_or_else(|| body.to_vec())
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

/// Appends pages to the evidence chain, in order, in one statement; returns their ids.
async fn insert_evidence(
    tx: &mut Transaction<'_, Sqlite>,
    pages: &[&PreparedPage],
) -> Result<Vec<i64>> {
    if pages.is_empty() {
        return Ok(Vec::new());
    }
    // The write lock is held: no other writer can append meanwhile.
    let mut prev: String =
        sqlx::query_scalar("SELECT chain_hash FROM evidence ORDER BY id DESC LIMIT 1")
            .fetch_optional(&mut **tx)
            .await?
            .unwrap_or_else(|| GENESIS_HASH.to_owned());
    let mut links = Vec::with_capacity(pages.len());
    for page in pages {
        let s = &page.sealed;
        let link = chain_hash(
            &prev,
            &s.url,
            &s.fetched_at,
            s.status,
            &s.body_sha256,
            &s.headers_json,
        );
        links.push((prev, link.clone()));
        prev = link;
    }
    let mut q = QueryBuilder::<Sqlite>::new(
        "INSERT INTO evidence (crawl_run_id, url, fetched_at, status, headers, body, body_len,
         body_sha256, prev_hash, chain_hash) ",
    );
    q.push_values(pages.iter().zip(&links), |mut row, (page, (prev, link))| {
        let s = &page.sealed;
        row.push_bind(page.run_id)
            .push_bind(&s.url)
            .push_bind(&s.fetched_at)
            .push_bind(i64::from(s.status))
            .push_bind(&s.headers_json)
            .push_bind(&s.compressed)
            .push_bind(s.body_len as i64)
            .push_bind(&s.body_sha256)
            .push_bind(prev)
            .push_bind(link);
    });
    q.push(" RETURNING id, chain_hash");
    let inserted: Vec<(i64, String)> = q.build_query_as().fetch_all(&mut **tx).await?;
    // Each link is unique (it commits to the one before), so it names its row.
    let ids: HashMap<&str, i64> = inserted.iter().map(|(id, l)| (l.as_str(), *id)).collect();
    Ok(links.iter().map(|(_, link)| ids[link.as_str()]).collect())
}

enum Upsert {
    New(i64),
    /// The listing as now stored: the new fields over what earlier pages showed.
    Changed(i64, Box<Listing>),
    Same,
}

/// A search page's listings, with the evidence they came from.
struct PageListings<'a> {
    listings: &'a [Listing],
    evidence_id: i64,
    seen_at: &'a str,
}

/// A listing as the group has left it so far.
struct Current {
    id: i64,
    title: String,
    price: Option<f64>,
    seller: Option<String>,
    category: Option<String>,
    /// Inserted by this group and not yet claimed as new by the page that showed it first.
    unclaimed: bool,
    /// Where it was last seen, when a page of this group saw it again.
    seen: Option<(i64, String)>,
}

/// Upserts the listings of a group of search pages in a handful of statements, whatever their
/// number. Returns, per page, one outcome per listing, as if the pages were stored one after
/// another: a listing that two pages of the group show is new on the first only.
async fn upsert_listings<'a>(
    tx: &mut Transaction<'_, Sqlite>,
    pages: &[PageListings<'a>],
) -> Result<Vec<Vec<Upsert>>> {
    #[derive(Serialize)]
    struct Key<'a> {
        p: &'a str,
        i: &'a str,
    }
    let key = |l: &'a Listing| (l.platform.as_str(), l.item_id.as_str());
    let all = || {
        pages
            .iter()
            .flat_map(|p| p.listings.iter().map(move |l| (p, l)))
    };
    let mut distinct = HashSet::new();
    let keys: Vec<_> = all()
        .filter(|(_, l)| distinct.insert(key(l)))
        .map(|(_, l)| Key {
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
         FROM jsonb_each(?) j JOIN listings l ON l.platform = j.value ->> 'p' AND l.item_id = j.value ->> 'i'",
    )
    .bind(to_json(&keys))
    .fetch_all(&mut **tx)
    .await?;
    let mut current: HashMap<(&str, &str), Current> = stored
        .iter()
        .map(|(id, platform, item_id, title, price, seller, category)| {
            let now = Current {
                id: *id,
                title: title.clone(),
                price: *price,
                seller: seller.clone(),
                category: category.clone(),
                unclaimed: false,
                seen: None,
            };
            ((platform.as_str(), item_id.as_str()), now)
        })
        .collect();

    // Listings never stored, inserted as the first page to show them has them.
    #[derive(Serialize)]
    struct Fresh<'a> {
        #[serde(flatten)]
        listing: &'a Listing,
        evidence_id: i64,
        seen_at: &'a str,
    }
    let mut fresh = Vec::new();
    for (page, l) in all() {
        if let Entry::Vacant(slot) = current.entry(key(l)) {
            slot.insert(Current {
                id: 0,
                title: l.title.clone(),
                price: l.price,
                seller: l.seller.clone(),
                category: l.category.clone(),
                unclaimed: true,
                seen: None,
            });
            fresh.push(Fresh {
                listing: l,
                evidence_id: page.evidence_id,
                seen_at: page.seen_at,
            });
        }
    }
    if !fresh.is_empty() {
        let inserted: Vec<(i64, String, String)> = sqlx::query_as(
            "INSERT INTO listings (platform, item_id, url, title, seller, price, currency, category, is_ad,
             evidence_id, first_seen, last_seen)
             SELECT j.value ->> 'platform', j.value ->> 'item_id', j.value ->> 'url', j.value ->> 'title',
                    j.value ->> 'seller', j.value ->> 'price', j.value ->> 'currency', j.value ->> 'category',
                    coalesce(j.value ->> 'is_ad', 0), j.value ->> 'evidence_id', j.value ->> 'seen_at',
                    j.value ->> 'seen_at'
             FROM jsonb_each(?) j
             RETURNING id, platform, item_id",
        )
        .bind(to_json(&fresh))
        .fetch_all(&mut **tx)
        .await?;
        let ids: HashMap<(&str, &str), i64> = inserted
            .iter()
            .map(|(id, p, i)| ((p.as_str(), i.as_str()), *id))
            .collect();
        for f in &fresh {
            if let (Some(now), Some(&id)) =
                (current.get_mut(&key(f.listing)), ids.get(&key(f.listing)))
            {
                now.id = id;
            }
        }
    }

    #[derive(Serialize)]
    struct Change<'a> {
        listing_id: i64,
        field: &'static str,
        old_value: Option<String>,
        new_value: Option<String>,
        evidence_id: i64,
        changed_at: &'a str,
    }
    let mut changes = Vec::new();
    let mut out = Vec::with_capacity(pages.len());
    for page in pages {
        let mut first_on_page = HashSet::new();
        let mut upserts = Vec::with_capacity(page.listings.len());
        for l in page.listings {
            // The same item twice on a page (an ad and its organic twin) is one listing.
            let Some(now) = current
                .get_mut(&key(l))
                .filter(|_| first_on_page.insert(key(l)))
            else {
                upserts.push(Upsert::Same);
                continue;
            };
            if std::mem::take(&mut now.unclaimed) {
                upserts.push(Upsert::New(now.id));
                continue;
            }
            now.seen = Some((page.evidence_id, page.seen_at.to_owned()));
            let diff = field_changes(now, l);
            if diff.is_empty() {
                upserts.push(Upsert::Same);
                continue;
            }
            for (field, old_value, new_value) in diff {
                changes.push(Change {
                    listing_id: now.id,
                    field,
                    old_value,
                    new_value,
                    evidence_id: page.evidence_id,
                    changed_at: page.seen_at,
                });
            }
            now.title = l.title.clone();
            now.price = l.price;
            now.seller = l.seller.clone().or(now.seller.take());
            upserts.push(Upsert::Changed(
                now.id,
                Box::new(Listing {
                    seller: now.seller.clone(),
                    category: now.category.clone(),
                    ..l.clone()
                }),
            ));
        }
        out.push(upserts);
    }
    if !changes.is_empty() {
        sqlx::query(
            "INSERT INTO listing_changes (listing_id, field, old_value, new_value, evidence_id, changed_at)
             SELECT j.value ->> 'listing_id', j.value ->> 'field', j.value ->> 'old_value',
                    j.value ->> 'new_value', j.value ->> 'evidence_id', j.value ->> 'changed_at'
             FROM jsonb_each(?) j",
        )
        .bind(to_json(&changes))
        .execute(&mut **tx)
        .await?;
    }

    // Listings seen again: where they were last seen, and their fields as now known.
    #[derive(Serialize)]
    struct Seen<'a> {
        id: i64,
        title: &'a str,
        price: Option<f64>,
        seller: Option<&'a str>,
        evidence_id: i64,
        seen_at: &'a str,
    }
    let seen: Vec<Seen<'_>> = current
        .values()
        .filter_map(|now| {
            let (evidence_id, seen_at) = now.seen.as_ref()?;
            Some(Seen {
                id: now.id,
                title: &now.title,
                price: now.price,
                seller: now.seller.as_deref(),
                evidence_id: *evidence_id,
                seen_at,
            })
        })
        .collect();
    if !seen.is_empty() {
        sqlx::query(
            "UPDATE listings SET title = j.value ->> 'title', price = j.value ->> 'price',
                 seller = coalesce(j.value ->> 'seller', seller), evidence_id = j.value ->> 'evidence_id',
                 last_seen = max(last_seen, j.value ->> 'seen_at')
             FROM jsonb_each(?) j WHERE listings.id = j.value ->> 'id'",
        )
        .bind(to_json(&seen))
        .execute(&mut **tx)
        .await?;
    }
    Ok(out)
}

/// Which of title, price and seller changed: (field, old, new).
fn field_changes(
    now: &Current,
    l: &Listing,
) -> Vec<(&'static str, Option<String>, Option<String>)> {
    let price_text = |p: Option<f64>| p.map(|p| format!("{p:.2}"));
    let mut changes = Vec::new();
    if now.title != l.title {
        changes.push(("title", Some(now.title.clone()), Some(l.title.clone())));
    }
    if price_text(now.price) != price_text(l.price) {
        changes.push(("price", price_text(now.price), price_text(l.price)));
    }
    // A search page without a seller (Amazon) doesn't erase the one the item page gave.
    if l.seller.is_some() && l.seller != now.seller {
        changes.push(("seller", now.seller.clone(), l.seller.clone()));
    }
    changes
}

/// A JSON array for `jsonb_each(?)`: one bound parameter however many values. (`json_each`
/// hands each element back as text, for every `->>` on it to parse again.)
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

    /// Everything a crawl leaves in the database, timestamps of writing and match ids aside.
    async fn snapshot(store: &Store) -> Vec<String> {
        let mut rows = Vec::new();
        for query in [
            "SELECT json_array(id, platform, item_id, title, price, seller, category, evidence_id,
                    detail_evidence_id, first_seen, last_seen) FROM listings ORDER BY id",
            "SELECT json_array(id, listing_id, field, old_value, new_value, evidence_id)
             FROM listing_changes ORDER BY id",
            "SELECT json_array(listing_id, verdict, score) FROM matches ORDER BY listing_id",
            "SELECT json_array(id, crawl_run_id, url, prev_hash, chain_hash) FROM evidence ORDER BY id",
        ] {
            let found: Vec<String> = sqlx::query_scalar(query)
                .fetch_all(&store.pool)
                .await
                .unwrap();
            rows.extend(found);
        }
        rows
    }

    #[tokio::test]
    async fn a_group_commit_stores_what_page_by_page_commits_store() {
        let at =
            |s: u32| chrono::DateTime::from_timestamp(1_790_000_000 + i64::from(s), 0).unwrap();
        let item = |id: &str, title: &str, price: f64, seller: Option<&str>| Listing {
            item_id: id.to_owned(),
            url: format!("https://item.jd.com/{id}.html"),
            seller: seller.map(str::to_owned),
            ..listing(title, price)
        };
        let page_at = |body: &str, s| Page {
            fetched_at: at(s),
            ..page(body)
        };
        // Cheap means suspect: a price change changes the verdict.
        let judge = |l: &Listing| Verdict {
            verdict: if l.price < Some(100.0) {
                crate::matcher::Outcome::Suspect
            } else {
                crate::matcher::Outcome::Clear
            },
            score: if l.seller.is_some() { 0.5 } else { 0.4 },
            ..Verdict::clear()
        };
        let run = 1;
        let pages = [
            // New twice over (an ad and its organic twin), and new.
            PreparedPage::search(
                run,
                &page_at("a", 1),
                vec![
                    item("1", "耐克 跑鞋", 499.0, None),
                    item("2", "阿迪 T恤", 89.0, Some("小店")),
                    item("1", "耐克 跑鞋", 499.0, None),
                ],
                &judge,
            ),
            // Seen again cheaper, and a third listing.
            PreparedPage::search(
                run,
                &page_at("b", 2),
                vec![
                    item("1", "耐克 跑鞋", 49.0, None),
                    item("3", "索尼 耳机", 199.0, None),
                ],
                &judge,
            ),
            // Unchanged, and a shop where there was none.
            PreparedPage::search(
                run,
                &page_at("c", 3),
                vec![
                    item("2", "阿迪 T恤", 89.0, Some("小店")),
                    item("3", "索尼 耳机", 199.0, Some("索尼专卖")),
                ],
                &judge,
            ),
            PreparedPage::detail(
                run,
                &page_at("d", 4),
                1,
                Some("耐克工厂店".to_owned()),
                Some("运动鞋".to_owned()),
                judge(&item("1", "耐克 跑鞋", 49.0, Some("耐克工厂店"))),
            ),
            PreparedPage::evidence(run, &page_at("captcha", 5)),
        ];

        let dir = tempfile::tempdir().unwrap();
        let (one_by_one, grouped) = (
            Store::open(&dir.path().join("a.db")).await.unwrap(),
            Store::open(&dir.path().join("b.db")).await.unwrap(),
        );
        let mut records = Vec::new();
        for store in [&one_by_one, &grouped] {
            assert_eq!(store.start_crawl_run("jd", None).await.unwrap(), run);
        }
        for page in &pages {
            records.extend(one_by_one.write_pages(&[page], &judge).await.unwrap());
        }
        let all: Vec<_> = pages.iter().collect();
        let group = grouped.write_pages(&all, &judge).await.unwrap();

        assert_eq!(snapshot(&grouped).await, snapshot(&one_by_one).await);
        let outcome = |r: &PageRecord| (r.evidence_id, r.new.clone(), r.changed.clone());
        assert_eq!(
            group.iter().map(outcome).collect::<Vec<_>>(),
            records.iter().map(outcome).collect::<Vec<_>>()
        );
        assert_eq!(group[0].new, vec![(0, 1), (1, 2)]);
        assert_eq!(
            (group[1].new.clone(), group[1].changed.clone()),
            (vec![(1, 3)], vec![(0, 1)])
        );
        assert_eq!(group[2].changed, vec![(1, 3)]);
        // Listing 1 became suspect on the second page and was judged again on its item page:
        // the group stores its last verdict once, and reports the flag with that page.
        let flagged =
            |records: &[PageRecord]| records.iter().map(PageRecord::flagged).collect::<Vec<_>>();
        assert_eq!(flagged(&records), vec![1, 1, 0, 0, 0]);
        assert_eq!(flagged(&group), vec![1, 0, 0, 1, 0]);
    }
}
