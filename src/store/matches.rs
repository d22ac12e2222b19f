//! Match verdicts: one row per listing, rewritten only when the verdict changes.
//!
//! Every write goes through [`store_verdicts`], inside the transaction that stored the listing,
//! so a listing is never visible without its verdict, and whatever a new verdict triggers is
//! written atomically with it.

use super::sql::{self, Flag};
use std::collections::HashMap;

use serde::Serialize;
use sqlx::{Any, Transaction};

use super::to_json;
use super::{Result, Store, StoreError, now};
use crate::model::Listing;
use crate::model::{MATCHER_VERSION, Outcome, Verdict};

/// A verdict that was stored because it is new or differs from the one before.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MatchChange {
    pub match_id: i64,
    pub listing_id: i64,
    pub brand_id: Option<i64>,
    /// The verdict before; `None` when the listing had none.
    pub previous: Option<Outcome>,
    pub verdict: Outcome,
}

impl MatchChange {
    /// Whether the listing has just become `outcome` (it was not before).
    pub fn became(&self, outcome: Outcome) -> bool {
        self.verdict == outcome && self.previous != Some(outcome)
    }

    /// Whether the listing has just been flagged for review (it was clear or unjudged).
    pub(crate) fn newly_flagged(&self) -> bool {
        self.verdict.is_flagged() && !self.previous.is_some_and(Outcome::is_flagged)
    }
}

/// What a rematch changed.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RematchSummary {
    pub listings: u64,
    pub unchanged: u64,
    /// (from, to) → count; `from` is `None` for listings never matched before.
    pub transitions: Vec<(Option<Outcome>, Outcome, u64)>,
}

impl Store {
    /// Stored listings in id order after `after_id`, for re-scoring in batches.
    pub(crate) async fn listings_after(
        &self,
        after_id: i64,
        limit: u32,
    ) -> Result<Vec<(i64, Listing)>> {
        let rows: Vec<ListingRow> = sql::query_as(
            "SELECT id, platform, item_id, url, title, seller, seller_id, ship_from, price, currency, category, is_ad, self_operated
             FROM listings WHERE id > ? ORDER BY id LIMIT ?",
        )
        .bind(after_id)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        let mut conn = self.pool.acquire().await?;
        super::images::with_photo_hashes(&mut conn, rows).await
    }

    /// Stores fresh verdicts for stored listings (a rematch batch), in one transaction.
    pub(crate) async fn store_rematch(
        &self,
        verdicts: &[(i64, Verdict)],
    ) -> Result<Vec<MatchChange>> {
        let mut tx = self.begin_write().await?;
        let refs: Vec<_> = verdicts.iter().map(|(id, v)| (*id, v)).collect();
        let changes = store_verdicts(&mut tx, &refs).await?;
        tx.commit().await?;
        Ok(changes)
    }

    /// Matches by verdict, for summaries.
    pub async fn match_counts(&self) -> Result<Vec<(Outcome, u64)>> {
        let rows: Vec<(String, i64)> = sql::query_as(
            "SELECT verdict, count(*) FROM matches GROUP BY verdict ORDER BY verdict",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|(v, n)| Ok((parse_outcome(&v)?, n as u64)))
            .collect()
    }
}

#[derive(sqlx::FromRow)]
pub(super) struct ListingRow {
    id: i64,
    platform: String,
    item_id: String,
    url: String,
    title: String,
    seller: Option<String>,
    seller_id: Option<String>,
    ship_from: Option<String>,
    price: Option<f64>,
    currency: String,
    category: Option<String>,
    #[sqlx(try_from = "Flag")]
    is_ad: bool,
    #[sqlx(try_from = "Flag")]
    self_operated: bool,
}

impl ListingRow {
    pub(super) fn id(&self) -> i64 {
        self.id
    }

    pub(super) fn into_pair(self) -> (i64, Listing) {
        let listing = Listing {
            platform: self.platform,
            item_id: self.item_id,
            url: self.url,
            title: self.title,
            seller: self.seller,
            seller_id: self.seller_id,
            ship_from: self.ship_from,
            price: self.price,
            currency: self.currency,
            category: self.category,
            is_ad: self.is_ad,
            self_operated: self.self_operated,
            image: None,
            image_hashes: Vec::new(),
        };
        (self.id, listing)
    }
}

fn parse_outcome(s: &str) -> Result<Outcome> {
    match s {
        "infringing" => Ok(Outcome::Infringing),
        "suspect" => Ok(Outcome::Suspect),
        "clear" => Ok(Outcome::Clear),
        other => Err(StoreError::Corrupt {
            table: "matches",
            column: "verdict",
            value: other.to_owned(),
        }),
    }
}

/// The stored form of a verdict; two verdicts with equal rows are the same verdict.
#[derive(Debug, PartialEq, Serialize, sqlx::FromRow)]
struct MatchRow {
    listing_id: i64,
    brand_id: Option<i64>,
    mark_id: Option<i64>,
    verdict: String,
    score: f64,
    reasons: String,
    matcher_version: String,
}

#[derive(sqlx::FromRow)]
struct StoredMatch {
    id: i64,
    listing_id: i64,
    #[sqlx(flatten)]
    row: MatchRow,
}

/// Upserts the verdict of each listing and returns those that changed. Runs inside the caller's
/// transaction: this is the one place verdicts are written. New verdicts go in one statement.
pub(crate) async fn store_verdicts(
    tx: &mut Transaction<'_, Any>,
    verdicts: &[(i64, &Verdict)],
) -> Result<Vec<MatchChange>> {
    if verdicts.is_empty() {
        return Ok(Vec::new());
    }
    let at = now();
    let listing_ids: Vec<i64> = verdicts.iter().map(|(id, _)| *id).collect();
    let stored: Vec<StoredMatch> = sql::query_as(
        "SELECT listing_id, id, brand_id, mark_id, verdict, score, reasons, matcher_version
         FROM matches WHERE listing_id IN (SELECT CAST(value AS BIGINT) FROM json_each(?))",
    )
    .bind(to_json(&listing_ids))
    .fetch_all(&mut **tx)
    .await?;
    let mut stored: HashMap<i64, StoredMatch> =
        stored.into_iter().map(|m| (m.listing_id, m)).collect();

    let ids = RegistryIds::load(tx, verdicts).await?;
    let mut changes = Vec::new();
    let mut fresh = Vec::new();
    for &(listing_id, verdict) in verdicts {
        let (brand_id, mark_id) = ids.resolve(verdict);
        let row = MatchRow {
            listing_id,
            brand_id,
            mark_id,
            verdict: verdict.verdict.as_str().to_owned(),
            // Rounded as displayed, so float noise never counts as a change.
            score: (verdict.score.clamp(0.0, 1.0) * 1000.0).round() / 1000.0,
            reasons: serde_json::to_string(&verdict.reasons).unwrap_or_else(|_| "[]".to_owned()),
            matcher_version: MATCHER_VERSION.to_owned(),
        };
        let Some(was) = stored.remove(&listing_id) else {
            fresh.push(row);
            continue;
        };
        if was.row == row {
            continue;
        }
        sql::query(
            "UPDATE matches SET brand_id = ?, mark_id = ?, verdict = ?, score = ?, reasons = ?,
             matcher_version = ?, updated_at = ? WHERE id = ?",
        )
        .bind(row.brand_id)
        .bind(row.mark_id)
        .bind(&row.verdict)
        .bind(row.score)
        .bind(&row.reasons)
        .bind(&row.matcher_version)
        .bind(&at)
        .bind(was.id)
        .execute(&mut **tx)
        .await?;
        changes.push(MatchChange {
            match_id: was.id,
            listing_id,
            brand_id,
            previous: Some(parse_outcome(&was.row.verdict)?),
            verdict: parse_outcome(&row.verdict)?,
        });
    }
    if !fresh.is_empty() {
        let inserted: Vec<(i64, i64, Option<i64>, String)> = sql::query_as(
            "INSERT INTO matches (listing_id, brand_id, mark_id, verdict, score, reasons, matcher_version,
             created_at, updated_at)
             SELECT CAST(j.value ->> 'listing_id' AS BIGINT), CAST(j.value ->> 'brand_id' AS BIGINT), CAST(j.value ->> 'mark_id' AS BIGINT),
                    j.value ->> 'verdict', CAST(j.value ->> 'score' AS DOUBLE PRECISION), j.value ->> 'reasons',
                    j.value ->> 'matcher_version', ?, ?
             FROM jsonb_each(?) j
             RETURNING id, listing_id, brand_id, verdict",
        )
        .bind(&at)
        .bind(&at)
        .bind(to_json(&fresh))
        .fetch_all(&mut **tx)
        .await?;
        for (match_id, listing_id, brand_id, verdict) in inserted {
            changes.push(MatchChange {
                match_id,
                listing_id,
                brand_id,
                previous: None,
                verdict: parse_outcome(&verdict)?,
            });
        }
    }
    record_match_changes(tx, &changes).await?;
    Ok(changes)
}

/// Brand and mark ids by name for a batch of verdicts, looked up in one query.
#[derive(Default)]
struct RegistryIds {
    brands: HashMap<String, i64>,
    marks: HashMap<(i64, String), i64>,
}

impl RegistryIds {
    async fn load(
        tx: &mut Transaction<'_, Any>,
        verdicts: &[(i64, &Verdict)],
    ) -> Result<RegistryIds> {
        #[derive(Serialize, PartialEq, Eq, Hash)]
        struct Wanted<'a> {
            b: &'a str,
            m: Option<&'a str>,
        }
        let mut seen = std::collections::HashSet::new();
        let wanted: Vec<Wanted<'_>> = verdicts
            .iter()
            .filter_map(|(_, v)| {
                let w = Wanted {
                    b: v.brand.as_deref()?,
                    m: v.mark.as_deref(),
                };
                seen.insert((w.b, w.m)).then_some(w)
            })
            .collect();
        let mut ids = RegistryIds::default();
        if wanted.is_empty() {
            return Ok(ids);
        }
        // The same text may be registered in several places; the CN registration is the one
        // every platform we watch accepts, so it comes first and is kept.
        let rows: Vec<(String, i64, Option<String>, Option<i64>)> = sql::query_as(
            "SELECT b.name, b.id, m.text, m.id FROM jsonb_each(?) j
             JOIN brands b ON b.name = j.value ->> 'b'
             LEFT JOIN marks m ON m.brand_id = b.id AND m.text = j.value ->> 'm'
             ORDER BY j.key, m.jurisdiction = 'CN' DESC, m.expires IS NULL DESC, m.expires DESC, m.id",
        )
        .bind(to_json(&wanted))
        .fetch_all(&mut **tx)
        .await?;
        for (brand, brand_id, mark, mark_id) in rows {
            if let (Some(mark), Some(mark_id)) = (mark, mark_id) {
                ids.marks.entry((brand_id, mark)).or_insert(mark_id);
            }
            ids.brands.insert(brand, brand_id);
        }
        Ok(ids)
    }

    fn resolve(&self, verdict: &Verdict) -> (Option<i64>, Option<i64>) {
        let brand_id = verdict
            .brand
            .as_ref()
            .and_then(|b| self.brands.get(b).copied());
        let mark_id = brand_id
            .zip(verdict.mark.clone())
            .and_then(|key| self.marks.get(&key).copied());
        (brand_id, mark_id)
    }
}

/// The alert events stored verdicts raise, written in the verdicts' transaction (one statement):
/// a listing newly `infringing` (immediate alert), or newly flagged `suspect` (digest). A listing
/// moving down from infringing to suspect, or staying where it was, raises nothing.
async fn record_match_changes(
    tx: &mut Transaction<'_, Any>,
    changes: &[MatchChange],
) -> Result<()> {
    #[derive(Serialize)]
    struct Event {
        kind: &'static str,
        brand_id: i64,
        match_id: i64,
        listing_id: i64,
    }
    let events: Vec<Event> = changes
        .iter()
        .filter_map(|c| {
            let brand_id = c.brand_id?;
            let kind = if c.became(Outcome::Infringing) {
                "infringing"
            } else if c.verdict == Outcome::Suspect && c.newly_flagged() {
                "suspect"
            } else {
                return None;
            };
            Some(Event {
                kind,
                brand_id,
                match_id: c.match_id,
                listing_id: c.listing_id,
            })
        })
        .collect();
    if events.is_empty() {
        return Ok(());
    }
    sql::query(
        "INSERT INTO alert_events (kind, brand_id, match_id, listing_id, created_at)
         SELECT j.value ->> 'kind', CAST(j.value ->> 'brand_id' AS BIGINT), CAST(j.value ->> 'match_id' AS BIGINT),
                CAST(j.value ->> 'listing_id' AS BIGINT), ?
         FROM jsonb_each(?) j",
    )
    .bind(super::now())
    .bind(serde_json::to_string(&events).expect("events serialise"))
    .execute(&mut **tx)
    .await?;
    Ok(())
}
