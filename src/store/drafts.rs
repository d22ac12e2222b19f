//! Drafting's reads and writes: flagged matches not yet in a notice, removed listings to watch
//! for relisting, open drafts with room, and saving a drafting plan in one transaction.

use super::sql;
use chrono::NaiveDate;
use serde::Serialize;
use sqlx::{Any, Transaction};

use super::notices::parse_outcome;
use super::{Result, Store, StoreError, now};
use crate::model::InfringementKind;
use crate::model::Outcome;
use crate::model::Reason;

/// A flagged match that no notice carries yet, with what grouping needs.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct DraftCandidate {
    pub match_id: i64,
    pub listing_id: i64,
    pub platform: String,
    pub item_id: String,
    pub title: String,
    pub seller: Option<String>,
    pub brand_id: i64,
    pub verdict: Outcome,
    pub score: f64,
    pub reasons: Vec<Reason>,
    pub mark: Option<MarkRight>,
}

/// The registered right a match rests on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct MarkRight {
    pub id: i64,
    pub text: String,
    pub jurisdiction: String,
    pub registration_no: String,
    pub expires: Option<NaiveDate>,
}

/// A listing a platform took down: its seller and title are watched for relisting.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct RemovedListing {
    pub notice_id: i64,
    pub listing_id: i64,
    pub platform: String,
    pub item_id: String,
    pub seller: Option<String>,
    pub title: String,
}

/// A draft still taking listings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct OpenDraft {
    pub id: i64,
    pub group_key: String,
    pub item_count: u32,
}

/// One notice to create (or, with `existing`, to add to).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct PlannedNotice {
    /// Add the items to this open draft instead of creating a notice.
    pub existing: Option<i64>,
    pub platform: String,
    pub channel: String,
    pub brand_id: i64,
    pub mark_id: Option<i64>,
    pub reason: InfringementKind,
    pub group_key: String,
    pub not_fileable: Option<String>,
    pub relisted_from: Option<i64>,
    pub priority: i64,
    pub items: Vec<PlannedItem>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PlannedItem {
    pub match_id: i64,
    pub relisted_from: Option<i64>,
    pub relisted_reason: Option<String>,
}

/// What saving a plan did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub(crate) struct SavedDrafts {
    /// Notices created.
    pub created: Vec<i64>,
    /// Existing drafts that took more listings.
    pub extended: Vec<i64>,
    /// Listings placed.
    pub items: u64,
}

/// The columns a draft candidate is read from; the caller adds its joins and conditions.
macro_rules! candidate_select {
    () => {
        "SELECT m.id AS match_id, l.id AS listing_id, l.platform, l.item_id, l.title, l.seller, m.brand_id,
                m.verdict, m.score, m.reasons, mk.id AS mark_id, mk.text, mk.jurisdiction,
                mk.registration_no, mk.expires
         FROM matches m JOIN listings l ON l.id = m.listing_id LEFT JOIN marks mk ON mk.id = m.mark_id"
    };
}

#[derive(sqlx::FromRow)]
struct CandidateRow {
    match_id: i64,
    listing_id: i64,
    platform: String,
    item_id: String,
    title: String,
    seller: Option<String>,
    brand_id: i64,
    verdict: String,
    score: f64,
    reasons: String,
    mark_id: Option<i64>,
    text: Option<String>,
    jurisdiction: Option<String>,
    registration_no: Option<String>,
    expires: Option<String>,
}

fn candidates_from_rows(rows: Vec<CandidateRow>) -> Result<Vec<DraftCandidate>> {
    rows.into_iter()
        .map(|r| {
            let reasons = serde_json::from_str(&r.reasons).map_err(|_| StoreError::Corrupt {
                table: "matches",
                column: "reasons",
                value: r.reasons.clone(),
            })?;
            let mark = match (r.mark_id, r.text, r.jurisdiction, r.registration_no) {
                (Some(id), Some(text), Some(jurisdiction), Some(registration_no)) => {
                    let expires = r
                        .expires
                        .map(|e| {
                            NaiveDate::parse_from_str(&e, "%Y-%m-%d").map_err(|_| {
                                StoreError::Corrupt {
                                    table: "marks",
                                    column: "expires",
                                    value: e,
                                }
                            })
                        })
                        .transpose()?;
                    Some(MarkRight {
                        id,
                        text,
                        jurisdiction,
                        registration_no,
                        expires,
                    })
                }
                _ => None,
            };
            Ok(DraftCandidate {
                verdict: parse_outcome("matches", &r.verdict)?,
                match_id: r.match_id,
                listing_id: r.listing_id,
                platform: r.platform,
                item_id: r.item_id,
                title: r.title,
                seller: r.seller,
                brand_id: r.brand_id,
                score: r.score,
                reasons,
                mark,
            })
        })
        .collect()
}

impl Store {
    /// Infringing and suspect matches no notice carries yet, oldest first.
    pub(crate) async fn draft_candidates(&self) -> Result<Vec<DraftCandidate>> {
        let rows: Vec<CandidateRow> = sql::query_as(concat!(
            candidate_select!(),
            " WHERE m.verdict IN ('infringing', 'suspect') AND m.brand_id IS NOT NULL
               AND NOT EXISTS (SELECT 1 FROM notice_items ni WHERE ni.match_id = m.id)
             ORDER BY m.id"
        ))
        .fetch_all(&self.pool)
        .await?;
        candidates_from_rows(rows)
    }

    /// Of `match_ids`, the flagged matches still open to drafting: in no notice, or in a
    /// draft (which gathering moves them out of) whose group key does not start with
    /// `gathered` (drafts an earlier gathering made), oldest first.
    pub(crate) async fn open_candidates_among(
        &self,
        match_ids: &[i64],
        gathered: &str,
    ) -> Result<Vec<DraftCandidate>> {
        let rows: Vec<CandidateRow> = sql::query_as(concat!(
            candidate_select!(),
            " JOIN json_each(?) j ON CAST(j.value AS BIGINT) = m.id
             WHERE m.verdict IN ('infringing', 'suspect') AND m.brand_id IS NOT NULL
               AND NOT EXISTS (SELECT 1 FROM notice_items ni JOIN notices n ON n.id = ni.notice_id
                               WHERE ni.match_id = m.id
                                 AND (n.state <> 'draft' OR substr(n.group_key, 1, length(?)) = ?))
             ORDER BY m.id"
        ))
        .bind(super::to_json(&match_ids))
        .bind(gathered)
        .bind(gathered)
        .fetch_all(&self.pool)
        .await?;
        candidates_from_rows(rows)
    }

    /// Listings of every case the platform took down (removed, or closed after removal).
    pub(crate) async fn removed_listings(&self) -> Result<Vec<RemovedListing>> {
        Ok(sql::query_as::<(i64, i64, String, String, Option<String>, String)>(
            "SELECT n.id, l.id, l.platform, l.item_id, l.seller, l.title
             FROM notices n JOIN notice_items ni ON ni.notice_id = n.id
             JOIN matches m ON m.id = ni.match_id JOIN listings l ON l.id = m.listing_id
             WHERE n.state = 'removed'
                OR (n.state = 'closed' AND EXISTS (SELECT 1 FROM audit_log a WHERE a.entity = 'notice'
                    AND a.entity_id = n.id AND a.to_state = 'removed'))
             ORDER BY n.id, l.id",
        )
        .fetch_all(&self.pool)
        .await?
        .into_iter()
        .map(
            |(notice_id, listing_id, platform, item_id, seller, title)| RemovedListing {
                notice_id,
                listing_id,
                platform,
                item_id,
                seller,
                title,
            },
        )
        .collect())
    }

    /// Drafts that may still take listings, with their group keys.
    pub(crate) async fn open_drafts(&self) -> Result<Vec<OpenDraft>> {
        Ok(sql::query_as::<(i64, String, i64)>(
            "SELECT id, group_key, item_count FROM notices WHERE state = 'draft' AND group_key IS NOT NULL
             ORDER BY id",
        )
        .fetch_all(&self.pool)
        .await?
        .into_iter()
        .map(|(id, group_key, n)| OpenDraft {
            id,
            group_key,
            item_count: n.max(0) as u32,
        })
        .collect())
    }

    /// Saves a drafting plan in one transaction: new notices with an audit row each, items
    /// added to open drafts, and each touched notice's counts and strongest verdict refreshed.
    /// A match another run placed meanwhile is skipped (match ids are unique across notices).
    pub(crate) async fn save_drafts(
        &self,
        plan: &[PlannedNotice],
        actor: &str,
    ) -> Result<SavedDrafts> {
        let mut tx = self.begin_write().await?;
        let now = now();
        let mut saved = SavedDrafts::default();
        for p in plan {
            // A draft approved (or rejected) since the plan was made takes no more listings.
            let still_open = match p.existing {
                Some(id) => {
                    sql::query_scalar::<i64>(
                        "SELECT id FROM notices WHERE id = ? AND state = 'draft'",
                    )
                    .bind(id)
                    .fetch_optional(&mut **tx)
                    .await?
                }
                None => None,
            };
            let (id, created) = match still_open {
                Some(id) => (id, false),
                None => {
                    let id = insert_notice(&mut tx, p, &now).await?;
                    (id, true)
                }
            };
            let mut added = 0;
            for item in &p.items {
                added += insert_item(&mut tx, id, item, &now).await?;
            }
            if created && added == 0 {
                sql::query("DELETE FROM notices WHERE id = ?")
                    .bind(id)
                    .execute(&mut **tx)
                    .await?;
                continue;
            }
            if added == 0 {
                continue;
            }
            refresh_aggregates(&mut tx, id, &now).await?;
            saved.items += added;
            if created {
                let note = match &p.not_fileable {
                    Some(why) => format!("{added} listing(s); not fileable: {why}"),
                    None => format!("{added} listing(s)"),
                };
                sql::query(
                    "INSERT INTO audit_log (at, actor, entity, entity_id, action, from_state, to_state, note)
                     VALUES (?, ?, 'notice', ?, 'draft', NULL, 'draft', ?)",
                )
                .bind(&now)
                .bind(actor)
                .bind(id)
                .bind(note)
                .execute(&mut **tx)
                .await?;
                saved.created.push(id);
            } else {
                saved.extended.push(id);
            }
        }
        tx.commit().await?;
        Ok(saved)
    }

    /// Gathers listings into new drafts, as `plan` groups them: each listing still in a draft
    /// moves out of it, one in no notice is added, and one filed meanwhile is left where it is.
    /// Drafts left empty are closed, saying where their listings went. One transaction; `note`
    /// (what the gathering was, e.g. a seller network) goes in each new draft's audit row.
    pub(crate) async fn gather_drafts(
        &self,
        plan: &[PlannedNotice],
        actor: &str,
        note: &str,
    ) -> Result<SavedDrafts> {
        let mut tx = self.begin_write().await?;
        let now = now();
        let mut saved = SavedDrafts::default();
        for p in plan {
            let id = insert_notice(&mut tx, p, &now).await?;
            let mut emptied = Vec::new();
            let mut placed = 0;
            for item in &p.items {
                let from: Option<i64> = sql::query_scalar(
                    "SELECT ni.notice_id FROM notice_items ni JOIN notices n ON n.id = ni.notice_id
                     WHERE ni.match_id = ? AND n.state = 'draft'",
                )
                .bind(item.match_id)
                .fetch_optional(&mut **tx)
                .await?;
                let moved = match from {
                    Some(from) => {
                        emptied.push(from);
                        sql::query("UPDATE notice_items SET notice_id = ? WHERE match_id = ?")
                            .bind(id)
                            .bind(item.match_id)
                            .execute(&mut **tx)
                            .await?
                            .rows_affected()
                    }
                    None => insert_item(&mut tx, id, item, &now).await?,
                };
                placed += moved;
            }
            if placed == 0 {
                sql::query("DELETE FROM notices WHERE id = ?")
                    .bind(id)
                    .execute(&mut **tx)
                    .await?;
                continue;
            }
            refresh_aggregates(&mut tx, id, &now).await?;
            emptied.sort_unstable();
            emptied.dedup();
            for from in emptied {
                let moved = format!("listings moved into notice {id}: {note}");
                settle_draft(&mut tx, from, Gave::Gathered, &moved, actor, &now).await?;
            }
            sql::query(
                "INSERT INTO audit_log (at, actor, entity, entity_id, action, from_state, to_state, note)
                 VALUES (?, ?, 'notice', ?, 'draft', NULL, 'draft', ?)",
            )
            .bind(&now)
            .bind(actor)
            .bind(id)
            .bind(format!("{placed} listing(s); {note}"))
            .execute(&mut **tx)
            .await?;
            saved.created.push(id);
            saved.items += placed;
        }
        tx.commit().await?;
        Ok(saved)
    }

    /// Takes listings a rematch has since judged clear out of drafts (never out of a notice
    /// already approved or further on), with an audit row per draft; a draft left with no
    /// listing is rejected. Returns how many listings were taken out.
    pub(crate) async fn prune_cleared_drafts(&self, actor: &str) -> Result<u64> {
        let mut tx = self.begin_write().await?;
        let now = now();
        let rows: Vec<(i64, i64)> = sql::query_as(
            "SELECT ni.notice_id, count(*) FROM notice_items ni JOIN matches m ON m.id = ni.match_id
             JOIN notices n ON n.id = ni.notice_id
             WHERE n.state = 'draft' AND m.verdict = 'clear' GROUP BY ni.notice_id",
        )
        .fetch_all(&mut **tx)
        .await?;
        let mut pruned = 0;
        for (notice_id, n) in rows {
            sql::query(
                "DELETE FROM notice_items WHERE notice_id = ? AND match_id IN
                 (SELECT id FROM matches WHERE verdict = 'clear')",
            )
            .bind(notice_id)
            .execute(&mut **tx)
            .await?;
            let note = format!("{n} listing(s) re-scored clear and taken out");
            settle_draft(&mut tx, notice_id, Gave::Pruned, &note, actor, &now).await?;
            pruned += n as u64;
        }
        tx.commit().await?;
        Ok(pruned)
    }

    /// Re-checks why open drafts cannot be filed (a mark renewed or expired since drafting).
    /// `reasons` maps notice id → reason (None: fileable). Returns how many changed.
    pub(crate) async fn set_not_fileable(&self, reasons: &[(i64, Option<String>)]) -> Result<u64> {
        let mut tx = self.begin_write().await?;
        let now = now();
        let mut changed = 0;
        for (id, reason) in reasons {
            changed += sql::query(
                "UPDATE notices SET not_fileable = ?, updated_at = ?
                 WHERE id = ? AND state IN ('draft', 'approved') AND not_fileable IS DISTINCT FROM ?",
            )
            .bind(reason)
            .bind(&now)
            .bind(id)
            .bind(reason)
            .execute(&mut **tx)
            .await?
            .rows_affected();
        }
        tx.commit().await?;
        Ok(changed)
    }

    /// Open drafts and approved notices with the right they rest on, for re-checking.
    pub(crate) async fn unfiled_rights(&self) -> Result<Vec<(i64, String, Option<MarkRight>)>> {
        let rows: Vec<UnfiledRow> = sql::query_as(
                "SELECT n.id, n.platform, mk.id, mk.text, mk.jurisdiction, mk.registration_no, mk.expires
                 FROM notices n LEFT JOIN marks mk ON mk.id = n.mark_id
                 WHERE n.state IN ('draft', 'approved') ORDER BY n.id",
            )
            .fetch_all(&self.pool)
            .await?;
        Ok(rows
            .into_iter()
            .map(|(id, platform, mid, text, jur, reg, expires)| {
                let mark = match (mid, text, jur, reg) {
                    (Some(id), Some(text), Some(jurisdiction), Some(registration_no)) => {
                        Some(MarkRight {
                            id,
                            text,
                            jurisdiction,
                            registration_no,
                            expires: expires
                                .and_then(|e| NaiveDate::parse_from_str(&e, "%Y-%m-%d").ok()),
                        })
                    }
                    _ => None,
                };
                (id, platform, mark)
            })
            .collect())
    }
}

/// Notice id, platform, and the mark's id, text, jurisdiction, registration number, expiry.
type UnfiledRow = (
    i64,
    String,
    Option<i64>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
);

/// Keeps a notice's denormalised item count, top score and strongest verdict in step.
/// Why a draft gave listings up.
#[derive(Clone, Copy)]
enum Gave {
    /// Into another notice (a seller network's); emptied, it is closed.
    Gathered,
    /// A rematch cleared them; emptied, it is rejected.
    Pruned,
}

/// After a draft gave listings up: its counts refreshed, closed or rejected when none are
/// left, and an audit row saying why.
async fn settle_draft(
    tx: &mut Transaction<'_, Any>,
    id: i64,
    gave: Gave,
    note: &str,
    actor: &str,
    now: &str,
) -> Result<()> {
    refresh_aggregates(tx, id, now).await?;
    let left: i64 = sql::query_scalar("SELECT item_count FROM notices WHERE id = ?")
        .bind(id)
        .fetch_one(&mut **tx)
        .await?;
    let (state, action) = match (gave, left == 0) {
        (Gave::Gathered, true) => ("closed", "gather"),
        (Gave::Gathered, false) => ("draft", "gather"),
        (Gave::Pruned, true) => ("rejected", "reject"),
        (Gave::Pruned, false) => ("draft", "prune"),
    };
    if left == 0 {
        sql::query("UPDATE notices SET state = ?, resolved_at = ?, updated_at = ? WHERE id = ?")
            .bind(state)
            .bind(now)
            .bind(now)
            .bind(id)
            .execute(&mut **tx)
            .await?;
    }
    sql::query(
        "INSERT INTO audit_log (at, actor, entity, entity_id, action, from_state, to_state, note)
         VALUES (?, ?, 'notice', ?, ?, 'draft', ?, ?)",
    )
    .bind(now)
    .bind(actor)
    .bind(id)
    .bind(action)
    .bind(state)
    .bind(note)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Creates the draft a planned notice describes; its items are added by the caller.
async fn insert_notice(tx: &mut Transaction<'_, Any>, p: &PlannedNotice, now: &str) -> Result<i64> {
    Ok(sql::query_scalar(
        "INSERT INTO notices (platform, brand_id, mark_id, channel, state, not_fileable, group_key,
         reason, priority, relisted_from, created_at, updated_at)
         VALUES (?, ?, ?, ?, 'draft', ?, ?, ?, ?, ?, ?, ?) RETURNING id",
    )
    .bind(&p.platform)
    .bind(p.brand_id)
    .bind(p.mark_id)
    .bind(&p.channel)
    .bind(&p.not_fileable)
    .bind(&p.group_key)
    .bind(p.reason.as_str())
    .bind(p.priority)
    .bind(p.relisted_from)
    .bind(now)
    .bind(now)
    .fetch_one(&mut **tx)
    .await?)
}

/// Adds a listing to a notice, unless another notice holds it already; returns 1 if added.
async fn insert_item(
    tx: &mut Transaction<'_, Any>,
    notice_id: i64,
    item: &PlannedItem,
    now: &str,
) -> Result<u64> {
    Ok(sql::query(
        "INSERT INTO notice_items (notice_id, match_id, relisted_from, relisted_reason, added_at)
         VALUES (?, ?, ?, ?, ?) ON CONFLICT (match_id) DO NOTHING",
    )
    .bind(notice_id)
    .bind(item.match_id)
    .bind(item.relisted_from)
    .bind(&item.relisted_reason)
    .bind(now)
    .execute(&mut **tx)
    .await?
    .rows_affected())
}

async fn refresh_aggregates(tx: &mut Transaction<'_, Any>, id: i64, now: &str) -> Result<()> {
    sql::query(
        "UPDATE notices SET
            item_count = (SELECT count(*) FROM notice_items WHERE notice_id = ?1),
            max_score = coalesce((SELECT max(m.score) FROM notice_items ni JOIN matches m ON m.id = ni.match_id
                                  WHERE ni.notice_id = ?1), 0),
            verdict = CASE WHEN EXISTS (SELECT 1 FROM notice_items ni JOIN matches m ON m.id = ni.match_id
                                        WHERE ni.notice_id = ?1 AND m.verdict = 'infringing')
                           THEN 'infringing' ELSE 'suspect' END,
            updated_at = ?2
         WHERE id = ?1",
    )
    .bind(id)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(())
}
