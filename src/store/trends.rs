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

/// A flagged listing with what can link its shop to others.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct SellerListing {
    pub listing_id: i64,
    pub match_id: i64,
    pub platform: String,
    pub seller: String,
    pub seller_id: Option<String>,
    pub ship_from: Option<String>,
    pub price: Option<f64>,
    pub title: String,
    pub brand: String,
    pub verdict: String,
    /// The case carrying it, if one does, and its state.
    pub notice_id: Option<i64>,
    pub notice_state: Option<String>,
    /// Drafted as a relisting of an earlier case.
    pub relisted: i64,
}

impl Store {
    /// Every infringing or suspect listing whose shop is named, with its case.
    pub async fn seller_listings(&self) -> Result<Vec<SellerListing>> {
        Ok(sql::query_as(
            "SELECT l.id AS listing_id, m.id AS match_id, l.platform, l.seller, l.seller_id,
                    l.ship_from, l.price, l.title, b.name AS brand, m.verdict,
                    n.id AS notice_id, n.state AS notice_state,
                    CASE WHEN ni.relisted_from IS NULL THEN 0 ELSE 1 END AS relisted
             FROM matches m JOIN listings l ON l.id = m.listing_id JOIN brands b ON b.id = m.brand_id
             LEFT JOIN notice_items ni ON ni.match_id = m.id LEFT JOIN notices n ON n.id = ni.notice_id
             WHERE m.verdict IN ('infringing', 'suspect') AND l.seller IS NOT NULL AND trim(l.seller) <> ''
             ORDER BY l.id",
        )
        .fetch_all(&self.pool)
        .await?)
    }

    /// The perceptual hashes of flagged listings' photos: (listing id, hash).
    pub async fn flagged_photo_hashes(&self) -> Result<Vec<(i64, i64)>> {
        Ok(sql::query_as(
            "SELECT li.listing_id, li.phash FROM listing_images li
             JOIN matches m ON m.listing_id = li.listing_id
             WHERE li.state = 'hashed' AND li.phash IS NOT NULL
               AND m.verdict IN ('infringing', 'suspect')
             ORDER BY li.listing_id, li.position",
        )
        .fetch_all(&self.pool)
        .await?)
    }
}
