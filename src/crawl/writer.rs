//! The crawl's page writer: pages sealed and their listings judged off the async threads,
//! then stored in group commits, each page whole or not at all. A listing never exists without
//! the evidence it came from, nor without its verdict.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;

use sqlx::Any;
use sqlx::pool::PoolConnection;
use tokio::sync::{mpsc, oneshot};

use crate::fetch::Page;
use crate::model::{Listing, Verdict};
use crate::seal::{GENESIS_HASH, Sealed};
use crate::store::{
    DetailUpdate, ImageUpdate, MatchChange, PageListings, RunCounts, Store, StoreError, Upsert,
    WriteTx,
};

type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Gives the verdict on a listing as stored.
pub(crate) type Judge = dyn Fn(&Listing) -> Verdict + Send + Sync;

/// The most pages one group commit stores. It bounds how long the write lock is held (a page
/// takes about a millisecond), so a reviewer's click never waits long behind a crawl.
const MAX_GROUP: usize = 32;

/// How long the writer waits for more pages before committing a group.
const GROUP_WAIT: std::time::Duration = std::time::Duration::from_millis(20);

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

    /// Counts what storing the page did to its listings.
    pub(crate) fn count_into(&self, counts: &mut RunCounts) {
        counts.listings_new += self.new.len() as u64;
        counts.listings_changed += self.changed.len() as u64;
        counts.listings_flagged += self.flagged() as u64;
    }
}

/// A fetched page made ready to store, with all the CPU work done: its body compressed and
/// hashed and its listings judged. Build it off the async threads; storing it then holds the
/// write lock only for the SQL (and for judging listings that changed since last stored).
pub(crate) struct PreparedPage {
    run_id: i64,
    sealed: Sealed,
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
        images: Vec<String>,
        verdict: Verdict,
    },
    /// A listing's photo, with the verdict given once it is known.
    Image {
        update: ImageUpdate,
        listing_id: i64,
        verdict: Option<Verdict>,
    },
    EvidenceOnly,
}

impl PreparedPage {
    /// A search page and the listings read from it, each judged by `judge`.
    pub(crate) fn search(
        run_id: i64,
        page: &Page,
        listings: Vec<Listing>,
        judge: &(dyn Fn(&Listing) -> Verdict + Sync),
    ) -> PreparedPage {
        let verdicts = listings.iter().map(judge).collect();
        PreparedPage {
            run_id,
            sealed: Sealed::new(page),
            content: Content::Search { listings, verdicts },
        }
    }

    /// An item page: what it adds to stored listing `listing_id`, and the verdict given with
    /// that knowledge.
    pub(crate) fn detail(
        run_id: i64,
        page: &Page,
        listing_id: i64,
        seller: Option<String>,
        category: Option<String>,
        images: Vec<String>,
        verdict: Verdict,
    ) -> PreparedPage {
        PreparedPage {
            run_id,
            sealed: Sealed::new(page),
            content: Content::Detail {
                listing_id,
                seller,
                category,
                images,
                verdict,
            },
        }
    }

    /// A listing's photo as fetched (kept as evidence whatever it is), what checking it came to
    /// (`update`; its evidence id is filled in when stored), and the listing's verdict with it.
    pub(crate) fn image(
        run_id: i64,
        page: &Page,
        update: ImageUpdate,
        listing_id: i64,
        verdict: Option<Verdict>,
    ) -> PreparedPage {
        PreparedPage {
            run_id,
            sealed: Sealed::new(page),
            content: Content::Image {
                update,
                listing_id,
                verdict,
            },
        }
    }

    /// Adds the parts a browser page's evidence holds besides its DOM: captured API replies
    /// and screenshots, each hashed into the page's chain link.
    pub(crate) fn with_parts(mut self, parts: Vec<crate::seal::Part>) -> PreparedPage {
        self.sealed = self.sealed.with_parts(parts);
        self
    }

    /// Records which account's session fetched the page.
    pub(crate) fn fetched_by(mut self, account: Option<String>) -> PreparedPage {
        self.sealed.account = account;
        self
    }

    /// A page that yielded nothing to store but itself (a wall, an unreadable page).
    pub(crate) fn evidence(run_id: i64, page: &Page) -> PreparedPage {
        PreparedPage {
            run_id,
            sealed: Sealed::new(page),
            content: Content::EvidenceOnly,
        }
    }
}

/// Stores one search page, its listings and their verdicts in one transaction, outside a
/// crawl (seeders, tests). `judge` gives the verdict on each listing as it will be stored.
pub async fn record_page(
    store: &Store,
    run_id: i64,
    page: &Page,
    listings: &[Listing],
    judge: &(dyn Fn(&Listing) -> Verdict + Sync),
) -> Result<PageRecord> {
    record_page_with_parts(store, run_id, page, Vec::new(), listings, judge).await
}

/// [`record_page`] for a browser page: with its captured replies and screenshots.
pub async fn record_page_with_parts(
    store: &Store,
    run_id: i64,
    page: &Page,
    parts: Vec<crate::seal::Part>,
    listings: &[Listing],
    judge: &(dyn Fn(&Listing) -> Verdict + Sync),
) -> Result<PageRecord> {
    let prepared = PreparedPage::search(run_id, page, listings.to_vec(), judge).with_parts(parts);
    let mut records = commit_group(store.begin_write().await?, &[&prepared], judge).await?;
    records.pop().ok_or(StoreError::WriterStopped)
}

/// Stores a crawl's pages. SQLite takes one writer at a time, and a transaction per page made
/// every page queue for the lock; the writer instead commits whatever pages arrived while the
/// last commit was written, up to [`MAX_GROUP`], in one transaction. Each page is still stored
/// whole or not at all, and [`PageWriter::store`] returns only once its page is committed.
#[derive(Clone)]
pub(crate) struct PageWriter {
    jobs: mpsc::Sender<PageJob>,
}

struct PageJob {
    page: PreparedPage,
    done: oneshot::Sender<Result<PageRecord>>,
}

impl PageWriter {
    /// Starts a writer that stores a crawl's pages, judging changed listings with `judge`. It
    /// stops when the last clone of the returned handle is dropped.
    pub(crate) fn start(store: &Store, judge: Arc<Judge>) -> PageWriter {
        let (jobs, queue) = mpsc::channel(MAX_GROUP);
        tokio::spawn(run_page_writer(store.clone(), judge, queue));
        PageWriter { jobs }
    }

    /// Stores `page` and returns what it did, once committed.
    pub(crate) async fn store(&self, page: PreparedPage) -> Result<PageRecord> {
        self.submit(page).await?.wait().await
    }

    /// Hands `page` to the writer without waiting for its commit, so the crawl can fetch the
    /// next page meanwhile; waits only while the writer's queue is full.
    pub(crate) async fn submit(&self, page: PreparedPage) -> Result<Committed> {
        let (done, committed) = oneshot::channel();
        self.jobs
            .send(PageJob { page, done })
            .await
            .map_err(|_| StoreError::WriterStopped)?;
        Ok(Committed(committed))
    }
}

/// A page handed to the [`PageWriter`].
pub(crate) struct Committed(oneshot::Receiver<Result<PageRecord>>);

impl Committed {
    /// What storing the page did, once it is committed.
    pub(crate) async fn wait(self) -> Result<PageRecord> {
        self.0.await.map_err(|_| StoreError::WriterStopped)?
    }
}

async fn run_page_writer(store: Store, judge: Arc<Judge>, mut queue: mpsc::Receiver<PageJob>) {
    // One connection for every commit: SQLite empties a connection's page cache when another
    // connection has committed since its last transaction.
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
        let stored = write_on(&store, &mut conn, &pages, &*judge).await;
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
                    let stored = write_on(&store, &mut conn, &[&job.page], &*judge)
                        .await
                        .and_then(|mut r| r.pop().ok_or(StoreError::WriterStopped));
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

/// Stores `pages` in one transaction on `conn`, taken from the pool the first time.
async fn write_on(
    store: &Store,
    conn: &mut Option<PoolConnection<Any>>,
    pages: &[&PreparedPage],
    judge: &(dyn Fn(&Listing) -> Verdict + Sync),
) -> Result<Vec<PageRecord>> {
    let conn = match conn {
        Some(conn) => conn,
        None => conn.insert(store.writer_connection().await?),
    };
    commit_group(store.begin_write_on(conn).await?, pages, judge).await
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

/// Writes a group of prepared pages inside `tx`, with the outcome of storing them one after
/// another, in a handful of statements whatever their number: each statement is a round trip
/// to SQLite's thread, and the write lock is held meanwhile.
async fn write_group(
    tx: &mut WriteTx<'_>,
    pages: &[&PreparedPage],
    judge: &(dyn Fn(&Listing) -> Verdict + Sync),
) -> Result<Vec<PageRecord>> {
    let mut prev = tx
        .chain_head()
        .await?
        .unwrap_or_else(|| GENESIS_HASH.to_owned());
    let mut rows = Vec::with_capacity(pages.len());
    for page in pages {
        let row = page.sealed.link(page.run_id, &prev);
        prev.clone_from(&row.chain_hash);
        rows.push(row);
    }
    let evidence_ids = tx.insert_evidence(&rows).await?;
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
    let mut upserts = tx.upsert_listings(&searches).await?.into_iter();

    // Verdicts to store, in page order: (listing, verdict, page).
    let mut verdicts: Vec<(i64, Cow<'_, Verdict>, usize)> = Vec::new();
    let mut details = Vec::new();
    let mut images = Vec::new();
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
                images,
                verdict,
            } => {
                details.push(DetailUpdate {
                    listing_id: *listing_id,
                    evidence_id: record.evidence_id,
                    seller: seller.as_deref(),
                    category: category.as_deref(),
                    images,
                });
                verdicts.push((*listing_id, Cow::Borrowed(verdict), at));
            }
            Content::Image {
                update,
                listing_id,
                verdict,
            } => {
                images.push(ImageUpdate {
                    evidence_id: record.evidence_id,
                    ..update.clone()
                });
                if let Some(verdict) = verdict {
                    verdicts.push((*listing_id, Cow::Borrowed(verdict), at));
                }
            }
            Content::EvidenceOnly => {}
        }
    }
    tx.update_details(&details).await?;
    tx.update_images(&images).await?;

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
    for change in tx.store_verdicts(&latest).await? {
        records[last_page[&change.listing_id]].matches.push(change);
    }
    Ok(records)
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
        let store = Store::open(crate::test_support::scratch_db(dir.path()).await)
            .await
            .unwrap();
        let run = store.start_crawl_run("jd", None).await.unwrap();
        let matcher = crate::matcher::Matcher::new(&[]).unwrap();
        let judge = |l: &Listing| matcher.check(&crate::matcher::Item::from(l));
        let first = record_page(
            &store,
            run,
            &page("a"),
            &[listing("耐克 跑鞋", 499.0)],
            &judge,
        )
        .await
        .unwrap();
        assert_eq!((first.new.len(), first.changed.len()), (1, 0));
        assert_eq!(first.matches.len(), 1);
        let same = record_page(
            &store,
            run,
            &page("b"),
            &[listing("耐克 跑鞋", 499.0)],
            &judge,
        )
        .await
        .unwrap();
        assert_eq!((same.new.len(), same.changed.len()), (0, 0));
        let changed = record_page(
            &store,
            run,
            &page("c"),
            &[listing("耐克 跑鞋 男", 459.0)],
            &judge,
        )
        .await
        .unwrap();
        assert_eq!(changed.changed, first.new);
        // An ad and its organic twin on one page are one listing.
        let mut twin = listing("索尼 耳机", 99.0);
        twin.item_id = "100099".to_owned();
        let twins = record_page(&store, run, &page("d"), &[twin.clone(), twin], &judge)
            .await
            .unwrap();
        assert_eq!((twins.new.len(), twins.matches.len()), (1, 1));

        let count: i64 = crate::store::sql::query_scalar("SELECT count(*) FROM listings")
            .fetch_one(store.pool())
            .await
            .unwrap();
        assert_eq!(count, 2);
        let fields: Vec<(String, String, String)> = crate::store::sql::query_as(
            "SELECT field, old_value, new_value FROM listing_changes ORDER BY id",
        )
        .fetch_all(store.pool())
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
            crate::store::sql::query_as("SELECT prev_hash, chain_hash FROM evidence ORDER BY id")
                .fetch_all(store.pool())
                .await
                .unwrap();
        assert_eq!(links.len(), 4);
        assert_eq!(links[0].0, GENESIS_HASH);
        assert_eq!(links[1].0, links[0].1);
        assert_eq!(links[2].0, links[1].1);
        let body: Vec<u8> =
            crate::store::sql::query_scalar("SELECT body FROM evidence WHERE id = ?")
                .bind(first.evidence_id)
                .fetch_one(store.pool())
                .await
                .unwrap();
        assert_eq!(zstd::decode_all(&body[..]).unwrap(), b"a");
    }

    #[tokio::test]
    async fn missing_item_pages_are_taken_least_recently_tried_first() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(crate::test_support::scratch_db(dir.path()).await)
            .await
            .unwrap();
        let run = store.start_crawl_run("jd", None).await.unwrap();
        let items: Vec<_> = ["1", "2", "3"]
            .iter()
            .map(|id| Listing {
                item_id: (*id).to_owned(),
                ..listing("耐克 跑鞋", 499.0)
            })
            .collect();
        let judge = |_: &Listing| Verdict::clear();
        let stored = record_page(&store, run, &page("a"), &items, &judge)
            .await
            .unwrap();
        let ids: Vec<i64> = stored.new.iter().map(|(_, id)| *id).collect();
        let take = |upto, limit| {
            let store = store.clone();
            async move {
                let taken = store.take_missing_details("jd", upto, limit).await.unwrap();
                taken.into_iter().map(|(id, _)| id).collect::<Vec<_>>()
            }
        };
        let last = store.last_listing_id().await.unwrap();
        assert_eq!(last, ids[2]);
        assert_eq!(take(last, 2).await, ids[..2]);
        // Never tried before those tried already; then by id.
        assert_eq!(take(last, 2).await, [ids[0], ids[2]]);
        // Only listings up to `upto`, and another platform's never.
        assert_eq!(take(ids[1], 5).await.len(), 2);
        assert_eq!(
            store
                .take_missing_details("tmall", last, 5)
                .await
                .unwrap()
                .len(),
            0
        );
    }

    /// Everything a crawl leaves in the database, timestamps of writing and match ids aside.
    async fn snapshot(store: &Store) -> Vec<String> {
        let mut rows = Vec::new();
        let array = match store.backend() {
            crate::store::Backend::Sqlite => "json_array",
            crate::store::Backend::Postgres => "json_build_array",
        };
        for query in [
            "id, platform, item_id, title, price, seller, category, evidence_id,
             detail_evidence_id, first_seen, last_seen) AS TEXT) FROM listings ORDER BY id",
            "id, listing_id, field, old_value, new_value, evidence_id) AS TEXT)
             FROM listing_changes ORDER BY id",
            "listing_id, verdict, score) AS TEXT) FROM matches ORDER BY listing_id",
            "id, crawl_run_id, url, prev_hash, chain_hash) AS TEXT) FROM evidence ORDER BY id",
        ] {
            let query = format!("SELECT CAST({array}({query}");
            let found: Vec<String> = crate::store::sql::query_scalar(sqlx::AssertSqlSafe(query))
                .fetch_all(store.pool())
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
                crate::model::Outcome::Suspect
            } else {
                crate::model::Outcome::Clear
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
                vec!["https://img.alicdn.com/imgextra/i1/1/O1CN01a.jpg".to_owned()],
                judge(&item("1", "耐克 跑鞋", 49.0, Some("耐克工厂店"))),
            ),
            PreparedPage::evidence(run, &page_at("captcha", 5)),
        ];

        let dir = tempfile::tempdir().unwrap();
        let (one_by_one, grouped) = (
            Store::open(crate::test_support::scratch_db(dir.path()).await)
                .await
                .unwrap(),
            Store::open(crate::test_support::scratch_db(dir.path()).await)
                .await
                .unwrap(),
        );
        let mut records = Vec::new();
        for store in [&one_by_one, &grouped] {
            assert_eq!(store.start_crawl_run("jd", None).await.unwrap(), run);
        }
        for page in &pages {
            records.extend(
                commit_group(one_by_one.begin_write().await.unwrap(), &[page], &judge)
                    .await
                    .unwrap(),
            );
        }
        let all: Vec<_> = pages.iter().collect();
        let group = commit_group(grouped.begin_write().await.unwrap(), &all, &judge)
            .await
            .unwrap();

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
