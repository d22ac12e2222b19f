//! The weekly tallies the charts and the monthly report read (kept by triggers, see
//! migration 0026), and the seller facts seller networks are built from.

use serde::Serialize;

use super::{Result, Store, sql};

/// One week's count of one metric, summed over brands unless the query named one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct WeeklyTally {
    /// The week's Monday, YYYY-MM-DD.
    pub week: String,
    pub platform: String,
    /// The platform account, for case steps; empty for the other metrics.
    pub account: String,
    pub metric: String,
    /// Days from draft to removal, for `removal_days`; -1 otherwise.
    pub days: i64,
    pub notices: i64,
    pub listings: i64,
}

impl Store {
    /// The tallies of the weeks from `first_week` to `last_week` (Mondays, inclusive), for
    /// one brand or all.
    pub async fn weekly_tallies(
        &self,
        first_week: &str,
        last_week: &str,
        brand_id: Option<i64>,
    ) -> Result<Vec<WeeklyTally>> {
        // Two statements rather than `? IS NULL OR brand_id = ?`, so each keeps its index.
        let query = match brand_id {
            None => sql::query_as(
                "SELECT week, platform, account, metric, days,
                        CAST(sum(notices) AS BIGINT) AS notices, CAST(sum(listings) AS BIGINT) AS listings
                 FROM weekly_activity WHERE week >= ? AND week <= ?
                 GROUP BY week, platform, account, metric, days
                 HAVING sum(notices) <> 0 OR sum(listings) <> 0
                 ORDER BY week, platform, account, metric, days",
            ),
            Some(_) => sql::query_as(
                "SELECT week, platform, account, metric, days,
                        CAST(sum(notices) AS BIGINT) AS notices, CAST(sum(listings) AS BIGINT) AS listings
                 FROM weekly_activity WHERE week >= ? AND week <= ? AND brand_id = ?
                 GROUP BY week, platform, account, metric, days
                 HAVING sum(notices) <> 0 OR sum(listings) <> 0
                 ORDER BY week, platform, account, metric, days",
            ),
        };
        let mut query = query.bind(first_week).bind(last_week);
        if let Some(id) = brand_id {
            query = query.bind(id);
        }
        Ok(query.fetch_all(&self.pool).await?)
    }
}
