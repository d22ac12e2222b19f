//! Synthetic matches for benchmarks and UI tests: the one place matches are written other than
//! the pipeline's `store_verdicts`, so a queue of any size can be built without a crawl.

use super::{Result, Store, now};

/// One synthetic verdict on a stored listing.
#[derive(Debug, Clone)]
pub struct SyntheticMatch {
    pub listing_id: i64,
    pub brand_id: i64,
    pub mark_id: Option<i64>,
    /// `infringing` or `suspect`.
    pub verdict: &'static str,
    pub score: f64,
    /// JSON array of {"code", "detail"}, as the matcher stores it.
    pub reasons: String,
}

impl Store {
    /// Writes matches for benchmark or test listings in one transaction; returns their ids.
    pub async fn insert_synthetic_matches(&self, matches: &[SyntheticMatch]) -> Result<Vec<i64>> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let now = now();
        let mut ids = Vec::with_capacity(matches.len());
        for m in matches {
            let id: i64 = sqlx::query_scalar(
                "INSERT INTO matches (listing_id, brand_id, mark_id, verdict, score, reasons, matcher_version,
                 created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, 'synthetic', ?, ?)
                 ON CONFLICT (listing_id) DO UPDATE SET verdict = excluded.verdict, score = excluded.score,
                 reasons = excluded.reasons, updated_at = excluded.updated_at
                 RETURNING id",
            )
            .bind(m.listing_id)
            .bind(m.brand_id)
            .bind(m.mark_id)
            .bind(m.verdict)
            .bind(m.score)
            .bind(&m.reasons)
            .bind(&now)
            .bind(&now)
            .fetch_one(&mut *tx)
            .await?;
            ids.push(id);
        }
        tx.commit().await?;
        Ok(ids)
    }

    /// Brand ids by name, and each brand's marks as (id, text, jurisdiction).
    pub async fn brand_mark_ids(&self) -> Result<Vec<(i64, String, Vec<(i64, String, String)>)>> {
        let brands: Vec<(i64, String)> = sqlx::query_as("SELECT id, name FROM brands ORDER BY id")
            .fetch_all(&self.pool)
            .await?;
        let marks: Vec<(i64, i64, String, String)> =
            sqlx::query_as("SELECT id, brand_id, text, jurisdiction FROM marks ORDER BY id")
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
