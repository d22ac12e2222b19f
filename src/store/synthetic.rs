//! Registry ids for synthetic review data (benchmarks and UI tests).

use super::sql;
use super::{Result, Store};

/// A brand's id and name, with its marks as (id, text, jurisdiction).
pub(crate) type BrandMarks = (i64, String, Vec<(i64, String, String)>);

impl Store {
    /// Brand ids by name, and each brand's marks as (id, text, jurisdiction).
    pub(crate) async fn brand_mark_ids(&self) -> Result<Vec<BrandMarks>> {
        let brands: Vec<(i64, String)> = sql::query_as("SELECT id, name FROM brands ORDER BY id")
            .fetch_all(&self.pool)
            .await?;
        let marks: Vec<(i64, i64, String, String)> =
            sql::query_as("SELECT id, brand_id, text, jurisdiction FROM marks ORDER BY id")
                .fetch_all(&self.pool)
                .await?;
        Ok(brands
            .into_iter()
            .map(|(id, name)| {
                let ms = marks
                    .iter()
                    .filter(|m| m.1 == id)
                    .map(|m| (m.0, m.2.clone(), m.3.clone()))
                    .collect();
                (id, name, ms)
            })
            .collect())
    }
}

/// A seeded draft's made-up past: when it was detected, and the case steps after, each
/// (from, to, when) in order.
#[derive(Debug, Clone)]
pub(crate) struct SeededHistory {
    pub notice_id: i64,
    pub detected_at: String,
    pub account: String,
    pub steps: Vec<(&'static str, &'static str, String)>,
    /// An earlier seeded case its listings are relistings of.
    pub relisted_from: Option<i64>,
}

impl Store {
    /// Seeded drafts (`bench:` group keys) not yet given a history, oldest first.
    pub(crate) async fn seeded_drafts(&self) -> Result<Vec<(i64, String)>> {
        Ok(sql::query_as(
            "SELECT id, platform FROM notices
             WHERE state = 'draft' AND group_key LIKE 'bench:%' AND filed_at IS NULL
               AND NOT EXISTS (SELECT 1 FROM audit_log a WHERE a.entity = 'notice'
                               AND a.entity_id = notices.id AND a.action <> 'draft')
             ORDER BY id",
        )
        .fetch_all(&self.pool)
        .await?)
    }

    /// Writes seeded histories: backdates each case and its listings' detection, then takes
    /// its steps as the case workflow would (state, timestamps, audit rows), so the weekly
    /// tallies' triggers count them in the weeks they name.
    pub(crate) async fn write_seeded_histories(&self, histories: &[SeededHistory]) -> Result<()> {
        let mut tx = self.begin_write().await?;
        for h in histories {
            sql::query(
                "UPDATE notices SET created_at = ?, updated_at = ?, relisted_from = ? WHERE id = ?",
            )
            .bind(&h.detected_at)
            .bind(&h.detected_at)
            .bind(h.relisted_from)
            .bind(h.notice_id)
            .execute(&mut **tx)
            .await?;
            sql::query(
                "UPDATE matches SET created_at = ?, updated_at = ?
                 WHERE id IN (SELECT match_id FROM notice_items WHERE notice_id = ?)",
            )
            .bind(&h.detected_at)
            .bind(&h.detected_at)
            .bind(h.notice_id)
            .execute(&mut **tx)
            .await?;
            sql::query(
                "UPDATE notice_items SET added_at = ?, relisted_from = ?, relisted_reason = ?
                 WHERE notice_id = ?",
            )
            .bind(&h.detected_at)
            .bind(h.relisted_from)
            .bind(h.relisted_from.map(|_| "same seller"))
            .bind(h.notice_id)
            .execute(&mut **tx)
            .await?;
            sql::query("UPDATE audit_log SET at = ? WHERE entity = 'notice' AND entity_id = ? AND action = 'draft'")
                .bind(&h.detected_at)
                .bind(h.notice_id)
                .execute(&mut **tx)
                .await?;
            for (from, to, at) in &h.steps {
                // Each step's own timestamp; approval has none.
                let stamp = match *to {
                    "filed" => "filed_at = ?,",
                    "counter_noticed" => "counter_noticed_at = ?,",
                    "removed" | "rejected" => "resolved_at = ?,",
                    _ => "",
                };
                // `stamp` is one of the pieces above, never input.
                let mut q = sql::query(sqlx::AssertSqlSafe(format!(
                    "UPDATE notices SET {stamp} state = ?,
                         account = CASE WHEN ? = 'filed' THEN ? ELSE account END,
                         complaint_ref = CASE WHEN ? = 'filed' THEN 'SEED-' || id ELSE complaint_ref END,
                         updated_at = ?
                     WHERE id = ?"
                )));
                if !stamp.is_empty() {
                    q = q.bind(at);
                }
                q.bind(*to)
                    .bind(*to)
                    .bind(&h.account)
                    .bind(*to)
                    .bind(at)
                    .bind(h.notice_id)
                    .execute(&mut **tx)
                    .await?;
                if *to == "counter_noticed"
                    && let Some(day) = at.get(..10).and_then(|d| d.parse().ok())
                {
                    sql::query("UPDATE notices SET deadline = ? WHERE id = ?")
                        .bind(crate::model::counter_notice_deadline(day).to_string())
                        .bind(h.notice_id)
                        .execute(&mut **tx)
                        .await?;
                }
                sql::query(
                    "INSERT INTO audit_log (at, actor, entity, entity_id, action, from_state, to_state)
                     VALUES (?, 'seed', 'notice', ?, ?, ?, ?)",
                )
                .bind(at)
                .bind(h.notice_id)
                .bind(*to)
                .bind(*from)
                .bind(*to)
                .execute(&mut **tx)
                .await?;
            }
        }
        tx.commit().await
    }
}
