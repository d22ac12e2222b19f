//! Crawl runs, the evidence chain's rows, and listings with their change history. A crawl
//! seals its pages and judges their listings itself; here they are only written, in the
//! handful of statements a group of pages needs.

use super::sql;
use std::collections::hash_map::Entry;
use std::collections::{HashMap, HashSet};

use serde::Serialize;
use sqlx::pool::PoolConnection;
use sqlx::{Any, QueryBuilder, Transaction};

use super::matches::{ListingRow, MatchChange, store_verdicts};
use super::{Result, Store, StoreError, WriteTx, now, to_json};
use crate::model::{Listing, Verdict};

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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, strum::IntoStaticStr)]
#[serde(rename_all = "lowercase")]
#[strum(serialize_all = "lowercase")]
pub enum RunStatus {
    /// Every page fetched.
    Ok,
    /// Some pages failed or were blocked.
    Partial,
    /// Nothing could be fetched.
    Failed,
    /// Not crawled: the platform needs a logged-in account and has none (the error says
    /// which command fixes it).
    Skipped,
    /// Stopped for a person: every account is expired or challenged, or the platform showed a
    /// challenge. Not a failure: the next run tries again.
    Paused,
}

impl Store {
    pub async fn start_crawl_run(&self, platform: &str, keyword: Option<&str>) -> Result<i64> {
        Ok(sql::query_scalar(
            "INSERT INTO crawl_runs (platform, keyword, started_at) VALUES (?, ?, ?) RETURNING id",
        )
        .bind(platform)
        .bind(keyword)
        .bind(now())
        .fetch_one(&self.pool)
        .await?)
    }

    pub(crate) async fn finish_crawl_run(
        &self,
        run_id: i64,
        counts: &RunCounts,
        status: RunStatus,
        error: Option<&str>,
    ) -> Result<()> {
        sql::query(
            "UPDATE crawl_runs SET finished_at = ?, status = ?, pages_ok = ?, pages_retried = ?, pages_failed = ?,
             pages_blocked = ?, listings_new = ?, listings_changed = ?, listings_flagged = ?, error = ?
             WHERE id = ?",
        )
        .bind(now())
        .bind(<&str>::from(status))
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

    /// The newest listing's id (0 when there is none): listings stored later have larger ids.
    pub(crate) async fn last_listing_id(&self) -> Result<i64> {
        Ok(
            sql::query_scalar("SELECT coalesce(max(id), 0) FROM listings")
                .fetch_one(&self.pool)
                .await?,
        )
    }

    /// Takes up to `limit` of `platform`'s listings with no item page, among those up to id
    /// `upto`, the least recently tried first, and marks them tried now. One statement, so two
    /// crawls never take the same ones.
    pub(crate) async fn take_missing_details(
        &self,
        platform: &str,
        upto: i64,
        limit: u32,
    ) -> Result<Vec<(i64, Listing)>> {
        let rows: Vec<ListingRow> = sql::query_as(
            "UPDATE listings SET detail_tried_at = ?
             WHERE id IN (SELECT id FROM listings
                          WHERE platform = ? AND detail_evidence_id IS NULL AND id <= ?
                          ORDER BY detail_tried_at NULLS FIRST, id LIMIT ?)
             RETURNING id, platform, item_id, url, title, seller, seller_id, ship_from, price, currency, category, is_ad, self_operated",
        )
        .bind(now())
        .bind(platform)
        .bind(upto)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        self.taken(rows).await
    }

    /// Takes up to `limit` of `platform`'s listings judged infringing or suspect since `since`
    /// whose stored item page has no screenshot (a photo flagged them after their item page
    /// was fetched), marking each tried. Same order and marking as the missing item pages.
    pub(crate) async fn take_unshot_flagged(
        &self,
        platform: &str,
        since: &str,
        limit: u32,
    ) -> Result<Vec<(i64, Listing)>> {
        let rows: Vec<ListingRow> = sql::query_as(
            "UPDATE listings SET detail_tried_at = ?
             WHERE id IN (SELECT l.id FROM listings l JOIN matches m ON m.listing_id = l.id
                          WHERE l.platform = ? AND m.verdict IN ('infringing', 'suspect')
                            AND m.updated_at >= ? AND l.detail_evidence_id IS NOT NULL
                            AND NOT EXISTS (SELECT 1 FROM evidence_parts p
                                            WHERE p.evidence_id = l.detail_evidence_id
                                              AND p.kind = 'screenshot')
                          ORDER BY l.detail_tried_at NULLS FIRST, l.id LIMIT ?)
             RETURNING id, platform, item_id, url, title, seller, seller_id, ship_from, price, currency, category, is_ad, self_operated",
        )
        .bind(now())
        .bind(platform)
        .bind(since)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        self.taken(rows).await
    }

    /// Listings a `take_*` query marked tried, in id order (RETURNING gives none), with their
    /// photos' hashes: ready to judge.
    async fn taken(&self, mut rows: Vec<ListingRow>) -> Result<Vec<(i64, Listing)>> {
        rows.sort_by_key(|r| r.id());
        let mut conn = self.pool.acquire().await?;
        super::images::with_photo_hashes(&mut conn, rows).await
    }

    /// A connection for a crawl's page writer to keep between its transactions: SQLite empties
    /// a connection's page cache when another has committed since, so commits that took turns
    /// over the pool each began cold.
    pub(crate) async fn writer_connection(&self) -> Result<PoolConnection<Any>> {
        Ok(self.pool.acquire().await?)
    }
}

pub struct StoredPage {
    pub evidence_id: i64,
    pub platform: String,
    pub url: String,
    pub status: u16,
    pub content_type: Option<String>,
    /// The body as stored: compressed.
    pub sealed_body: Vec<u8>,
}

impl Store {
    /// Bytes of pages stored and listings stored, for benchmarks.
    pub async fn bench_totals(&self) -> Result<(u64, u64)> {
        let (bytes, listings): (i64, i64) = sql::query_as(
            "SELECT (SELECT CAST(coalesce(sum(body_len), 0) AS BIGINT) FROM evidence), (SELECT count(*) FROM listings)",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok((bytes as u64, listings as u64))
    }

    /// Stored pages in id order after `after_id`.
    pub async fn stored_pages(&self, after_id: i64, limit: u32) -> Result<Vec<StoredPage>> {
        let rows: Vec<(i64, String, String, i64, String, Vec<u8>)> = sql::query_as(
            "SELECT e.id, r.platform, e.url, e.status, e.headers, e.body FROM evidence e
             JOIN crawl_runs r ON r.id = e.crawl_run_id WHERE e.id > ? ORDER BY e.id LIMIT ?",
        )
        .bind(after_id)
        .bind(i64::from(limit))
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
                    sealed_body: body,
                })
            })
            .collect()
    }
}

/// An evidence row, sealed and linked by the crawl (see `crate::seal`).
pub(crate) struct NewEvidence<'a> {
    pub crawl_run_id: i64,
    pub url: &'a str,
    pub fetched_at: &'a str,
    pub status: u16,
    pub headers_json: &'a str,
    /// The body as stored: compressed.
    pub body: &'a [u8],
    pub body_len: usize,
    pub body_sha256: &'a str,
    pub prev_hash: String,
    pub chain_hash: String,
    /// Captured replies and screenshots stored with the page, in order.
    pub parts: Vec<NewPart<'a>>,
    /// The platform account whose session fetched it; not part of the chain link.
    pub account: Option<&'a str>,
}

/// A part of an evidence row (see `crate::seal::Part`), sealed.
pub(crate) struct NewPart<'a> {
    pub kind: &'a str,
    pub url: &'a str,
    pub content_type: &'a str,
    pub fetched_at: &'a str,
    /// The body as stored: compressed.
    pub body: &'a [u8],
    pub body_len: usize,
    pub body_sha256: &'a str,
}

/// What an item page adds to a stored listing.
#[derive(Serialize)]
pub(crate) struct DetailUpdate<'a> {
    pub listing_id: i64,
    pub evidence_id: i64,
    pub seller: Option<&'a str>,
    pub category: Option<&'a str>,
    /// The item page's gallery, queued for fetching should the listing be flagged.
    #[serde(skip)]
    pub images: &'a [String],
}

/// The steps of storing a crawl's pages, inside one write transaction the crawl holds.
impl WriteTx<'_> {
    /// The chain hash of the newest evidence row: what the next row links to. The write lock
    /// is held, so no other writer can append before this transaction commits.
    pub(crate) async fn chain_head(&mut self) -> Result<Option<String>> {
        Ok(
            sql::query_scalar("SELECT chain_hash FROM evidence ORDER BY id DESC LIMIT 1")
                .fetch_optional(&mut ***self)
                .await?,
        )
    }

    /// Appends rows to the evidence chain, in order, in one statement; returns their ids.
    pub(crate) async fn insert_evidence(&mut self, rows: &[NewEvidence<'_>]) -> Result<Vec<i64>> {
        if rows.is_empty() {
            return Ok(Vec::new());
        }
        let mut q = QueryBuilder::<Any>::new(
            "INSERT INTO evidence (crawl_run_id, url, fetched_at, status, headers, body, body_len,
             body_sha256, prev_hash, chain_hash, account) ",
        );
        q.push_values(rows, |mut row, e| {
            row.push_bind(e.crawl_run_id)
                .push_bind(e.url)
                .push_bind(e.fetched_at)
                .push_bind(i64::from(e.status))
                .push_bind(e.headers_json)
                .push_bind(e.body)
                .push_bind(e.body_len as i64)
                .push_bind(e.body_sha256)
                .push_bind(&e.prev_hash)
                .push_bind(&e.chain_hash)
                .push_bind(e.account);
        });
        q.push(" RETURNING id, chain_hash");
        let inserted: Vec<(i64, String)> = sql::build_as(&mut q).fetch_all(&mut ***self).await?;
        // Each link is unique (it commits to the one before), so it names its row.
        let ids: HashMap<&str, i64> = inserted.iter().map(|(id, l)| (l.as_str(), *id)).collect();
        let ids: Vec<i64> = rows
            .iter()
            .map(|e| {
                ids.get(e.chain_hash.as_str())
                    .copied()
                    .ok_or(StoreError::Corrupt {
                        table: "evidence",
                        column: "chain_hash",
                        value: e.chain_hash.clone(),
                    })
            })
            .collect::<Result<_>>()?;
        for (e, id) in rows.iter().zip(&ids) {
            for (seq, p) in e.parts.iter().enumerate() {
                sql::query(
                    "INSERT INTO evidence_parts (evidence_id, seq, kind, url, content_type,
                     fetched_at, body, body_len, body_sha256) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                )
                .bind(id)
                .bind(seq as i64)
                .bind(p.kind)
                .bind(p.url)
                .bind(p.content_type)
                .bind(p.fetched_at)
                .bind(p.body)
                .bind(p.body_len as i64)
                .bind(p.body_sha256)
                .execute(&mut ***self)
                .await?;
            }
        }
        Ok(ids)
    }

    /// Upserts the listings of a group of search pages; see [`upsert_listings`].
    pub(crate) async fn upsert_listings(
        &mut self,
        pages: &[PageListings<'_>],
    ) -> Result<Vec<Vec<Upsert>>> {
        let mut upserts = upsert_listings(self, pages).await?;
        // A changed listing is judged again as stored: with the photos already fetched.
        let changed: Vec<i64> = upserts
            .iter()
            .flatten()
            .filter_map(|u| match u {
                Upsert::Changed(id, _) => Some(*id),
                _ => None,
            })
            .collect();
        if !changed.is_empty() {
            let mut hashes = super::images::image_hashes(self, &changed).await?;
            for u in upserts.iter_mut().flatten() {
                if let Upsert::Changed(id, listing) = u {
                    listing.image_hashes = hashes.get(id).cloned().unwrap_or_default();
                }
            }
            hashes.clear();
        }
        // Each listing's main photo, queued for fetching.
        #[derive(Serialize)]
        struct Photo<'a> {
            platform: &'a str,
            item_id: &'a str,
            image: &'a str,
        }
        let photos: Vec<Photo<'_>> = pages
            .iter()
            .flat_map(|p| p.listings)
            .filter_map(|l| {
                Some(Photo {
                    platform: &l.platform,
                    item_id: &l.item_id,
                    image: l.image.as_deref().filter(|u| !u.is_empty())?,
                })
            })
            .collect();
        if !photos.is_empty() {
            sql::query(
                "INSERT INTO listing_images (listing_id, position, url)
                 SELECT l.id, 0, j.value ->> 'image' FROM jsonb_each(?) j
                 JOIN listings l ON l.platform = j.value ->> 'platform'
                     AND l.item_id = j.value ->> 'item_id'
                 WHERE true ON CONFLICT (listing_id, url) DO NOTHING",
            )
            .bind(to_json(&photos))
            .execute(&mut ***self)
            .await?;
        }
        Ok(upserts)
    }

    /// Fills in what item pages show (the shop, the category) and links their evidence.
    pub(crate) async fn update_details(&mut self, details: &[DetailUpdate<'_>]) -> Result<()> {
        if details.is_empty() {
            return Ok(());
        }
        sql::query(
            "UPDATE listings SET detail_evidence_id = CAST(j.value ->> 'evidence_id' AS BIGINT),
                 seller = coalesce(j.value ->> 'seller', seller),
                 category = coalesce(j.value ->> 'category', category)
             FROM jsonb_each(?) j WHERE listings.id = CAST(j.value ->> 'listing_id' AS BIGINT)",
        )
        .bind(to_json(&details))
        .execute(&mut ***self)
        .await?;
        let gallery: Vec<(i64, usize, &str)> = details
            .iter()
            .flat_map(|d| {
                d.images
                    .iter()
                    .enumerate()
                    .map(move |(i, url)| (d.listing_id, i + 1, url.as_str()))
            })
            .collect();
        self.add_images(&gallery).await
    }

    /// Stores verdicts that are new or differ from the stored ones; returns the changes.
    pub(crate) async fn store_verdicts(
        &mut self,
        verdicts: &[(i64, &Verdict)],
    ) -> Result<Vec<MatchChange>> {
        store_verdicts(self, verdicts).await
    }
}

/// What storing a search page did to one of its listings.
pub(crate) enum Upsert {
    New(i64),
    /// The listing as now stored: the new fields over what earlier pages showed.
    Changed(i64, Box<Listing>),
    Same,
}

/// A search page's listings, with the evidence they came from.
pub(crate) struct PageListings<'a> {
    pub listings: &'a [Listing],
    pub evidence_id: i64,
    pub seen_at: &'a str,
}

/// A listing as the group has left it so far.
struct Current {
    id: i64,
    title: String,
    price: Option<f64>,
    seller: Option<String>,
    category: Option<String>,
    /// The shop's id and ship-from place as the latest page showed them.
    seller_id: Option<String>,
    ship_from: Option<String>,
    /// Inserted by this group and not yet claimed as new by the page that showed it first.
    unclaimed: bool,
    /// Where it was last seen, when a page of this group saw it again.
    seen: Option<(i64, String)>,
}

/// Upserts the listings of a group of search pages in a handful of statements, whatever their
/// number. Returns, per page, one outcome per listing, as if the pages were stored one after
/// another: a listing that two pages of the group show is new on the first only.
async fn upsert_listings<'a>(
    tx: &mut Transaction<'_, Any>,
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
    let stored: Vec<Stored> = sql::query_as(
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
                seller_id: None,
                ship_from: None,
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
                seller_id: l.seller_id.clone(),
                ship_from: l.ship_from.clone(),
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
        let inserted: Vec<(i64, String, String)> = sql::query_as(
            "INSERT INTO listings (platform, item_id, url, title, seller, seller_id, ship_from, price, currency,
             category, is_ad, self_operated, evidence_id, first_seen, last_seen)
             SELECT j.value ->> 'platform', j.value ->> 'item_id', j.value ->> 'url', j.value ->> 'title',
                    j.value ->> 'seller', j.value ->> 'seller_id', j.value ->> 'ship_from', CAST(j.value ->> 'price' AS DOUBLE PRECISION), j.value ->> 'currency', j.value ->> 'category',
                    coalesce(CAST(CAST(j.value ->> 'is_ad' AS BOOLEAN) AS INTEGER), 0), coalesce(CAST(CAST(j.value ->> 'self_operated' AS BOOLEAN) AS INTEGER), 0),
                    CAST(j.value ->> 'evidence_id' AS BIGINT), j.value ->> 'seen_at',
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
            now.seller_id = l.seller_id.clone().or(now.seller_id.take());
            now.ship_from = l.ship_from.clone().or(now.ship_from.take());
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
        sql::query(
            "INSERT INTO listing_changes (listing_id, field, old_value, new_value, evidence_id, changed_at)
             SELECT CAST(j.value ->> 'listing_id' AS BIGINT), j.value ->> 'field', j.value ->> 'old_value',
                    j.value ->> 'new_value', CAST(j.value ->> 'evidence_id' AS BIGINT), j.value ->> 'changed_at'
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
        seller_id: Option<&'a str>,
        ship_from: Option<&'a str>,
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
                seller_id: now.seller_id.as_deref(),
                ship_from: now.ship_from.as_deref(),
                evidence_id: *evidence_id,
                seen_at,
            })
        })
        .collect();
    if !seen.is_empty() {
        sql::query(
            "UPDATE listings SET title = j.value ->> 'title', price = CAST(j.value ->> 'price' AS DOUBLE PRECISION),
                 seller = coalesce(j.value ->> 'seller', seller),
                 seller_id = coalesce(j.value ->> 'seller_id', seller_id),
                 ship_from = coalesce(j.value ->> 'ship_from', ship_from), evidence_id = CAST(j.value ->> 'evidence_id' AS BIGINT),
                 last_seen = CASE WHEN last_seen > j.value ->> 'seen_at' THEN last_seen
                                 ELSE j.value ->> 'seen_at' END
             FROM jsonb_each(?) j WHERE listings.id = CAST(j.value ->> 'id' AS BIGINT)",
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
