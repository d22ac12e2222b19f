//! The weekly tallies the charts and the monthly report read (kept by triggers, see
//! migration 0026), and the seller facts seller networks are built from.

use serde::Serialize;

use super::{Result, Store, sql};

/// What the charts of a period are drawn from, summed over brands unless the query named one.
/// Each piece is grouped as its chart needs it, so a year is a few hundred rows.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct TrendTallies {
    pub weekly: Vec<WeeklyTally>,
    pub accounts: Vec<AccountTally>,
    pub removals: Vec<WeeklyRemovals>,
}

/// One week's count of one metric: listings found per platform; case steps and relistings
/// over all platforms (platform "").
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct WeeklyTally {
    /// The week's Monday, YYYY-MM-DD.
    pub week: String,
    pub platform: String,
    pub metric: String,
    pub notices: i64,
    pub listings: i64,
}

/// One platform account's case steps of one kind over the whole period.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct AccountTally {
    pub platform: String,
    pub account: String,
    pub metric: String,
    pub notices: i64,
    pub listings: i64,
}

/// One week's removals and the middle of their days from draft to removal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct WeeklyRemovals {
    /// The week's Monday, YYYY-MM-DD.
    pub week: String,
    /// Cases removed that week.
    pub removed: i64,
    /// The two middle values of their days (the same value when `removed` is odd): the median
    /// is their mean.
    pub low_days: i64,
    pub high_days: i64,
}

/// The tallies a query reads: the rollup for all brands, one brand's own rows by index. Each
/// use appends `AND ...` conditions after it and binds the brand first when there is one.
macro_rules! tallies_of {
    (all) => {
        "weekly_totals WHERE week >= ? AND week <= ?"
    };
    (brand) => {
        "weekly_activity WHERE brand_id = ? AND week >= ? AND week <= ?"
    };
}

/// Per week: listings found per platform, case steps and relistings over all platforms.
macro_rules! weekly_sql {
    ($which:tt) => {
        concat!(
            "SELECT week, CASE WHEN metric IN ('found_infringing', 'found_suspect') THEN platform
                               ELSE '' END AS platform, metric,
                    CAST(sum(notices) AS BIGINT) AS notices, CAST(sum(listings) AS BIGINT) AS listings
             FROM ",
            tallies_of!($which),
            " AND metric <> 'removal_days'
             GROUP BY 1, 2, 3 HAVING sum(notices) <> 0 OR sum(listings) <> 0"
        )
    };
}

/// Per platform account over the period: case steps.
macro_rules! accounts_sql {
    ($which:tt) => {
        concat!(
            "SELECT platform, account, metric,
                    CAST(sum(notices) AS BIGINT) AS notices, CAST(sum(listings) AS BIGINT) AS listings
             FROM ",
            tallies_of!($which),
            " AND metric IN ('filed', 'removed', 'rejected', 'counter_noticed')
             GROUP BY 1, 2, 3 HAVING sum(notices) <> 0 OR sum(listings) <> 0"
        )
    };
}

/// Per week with removals: their count and middle days over all platforms. `upto` counts the
/// week's removals taking at most `days`: the lower middle one is at the first day where it
/// reaches half, the upper one where it passes half.
macro_rules! removals_sql {
    ($which:tt) => {
        concat!(
            "WITH d AS (SELECT week, days, sum(notices) AS n FROM ",
            tallies_of!($which),
            " AND metric = 'removal_days' GROUP BY week, days HAVING sum(notices) > 0),
             c AS (SELECT week, days, sum(n) OVER (PARTITION BY week ORDER BY days) AS upto,
                          sum(n) OVER (PARTITION BY week) AS total FROM d)
             SELECT week, CAST(max(total) AS BIGINT) AS removed,
                    CAST(min(CASE WHEN 2 * upto >= total THEN days END) AS BIGINT) AS low_days,
                    CAST(min(CASE WHEN 2 * upto > total THEN days END) AS BIGINT) AS high_days
             FROM c GROUP BY week ORDER BY week"
        )
    };
}

impl Store {
    /// The tallies of the weeks from `first_week` to `last_week` (Mondays, inclusive), for
    /// one brand or all.
    pub async fn trend_tallies(
        &self,
        first_week: &str,
        last_week: &str,
        brand_id: Option<i64>,
    ) -> Result<TrendTallies> {
        // The medians are taken in the query: a year holds thousands of (week, days) counts.
        let (weekly, accounts, removals) = match brand_id {
            None => (
                sql::query_as(weekly_sql!(all)),
                sql::query_as(accounts_sql!(all)),
                sql::query_as(removals_sql!(all)),
            ),
            Some(id) => (
                sql::query_as(weekly_sql!(brand)).bind(id),
                sql::query_as(accounts_sql!(brand)).bind(id),
                sql::query_as(removals_sql!(brand)).bind(id),
            ),
        };
        Ok(TrendTallies {
            weekly: weekly
                .bind(first_week)
                .bind(last_week)
                .fetch_all(&self.pool)
                .await?,
            accounts: accounts
                .bind(first_week)
                .bind(last_week)
                .fetch_all(&self.pool)
                .await?,
            removals: removals
                .bind(first_week)
                .bind(last_week)
                .fetch_all(&self.pool)
                .await?,
        })
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

/// One platform's figures for a brand over a period, counted from the rows themselves.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PeriodCounts {
    pub platform: String,
    pub infringing: i64,
    pub suspect: i64,
    pub filed: i64,
    pub removed: i64,
    pub rejected: i64,
    pub counter_noticed: i64,
    pub relisted: i64,
}

/// A shop's flagged listings in a period.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct TopSeller {
    pub platform: String,
    pub seller: String,
    pub listings: i64,
    pub removed: i64,
}

/// A listing drafted as a relisting in a period, with the case it came back from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct RelistedListing {
    pub platform: String,
    pub item_id: String,
    pub title: String,
    pub seller: Option<String>,
    pub earlier_case: i64,
    pub added_at: String,
}

impl Store {
    /// A brand's figures per platform for `[from, to)` (timestamps or dates): listings first
    /// flagged, case steps taken (platform rejections only), relistings drafted.
    pub async fn period_counts(
        &self,
        brand_id: i64,
        from: &str,
        to: &str,
    ) -> Result<Vec<PeriodCounts>> {
        let mut out: std::collections::BTreeMap<String, PeriodCounts> = Default::default();
        let found: Vec<(String, String, i64)> = sql::query_as(
            "SELECT l.platform, m.verdict, count(*) FROM matches m JOIN listings l ON l.id = m.listing_id
             WHERE m.brand_id = ? AND m.verdict <> 'clear' AND m.created_at >= ? AND m.created_at < ?
             GROUP BY l.platform, m.verdict",
        )
        .bind(brand_id)
        .bind(from)
        .bind(to)
        .fetch_all(&self.pool)
        .await?;
        fn slot<'m>(
            out: &'m mut std::collections::BTreeMap<String, PeriodCounts>,
            platform: &str,
        ) -> &'m mut PeriodCounts {
            out.entry(platform.to_owned())
                .or_insert_with(|| PeriodCounts {
                    platform: platform.to_owned(),
                    ..PeriodCounts::default()
                })
        }
        for (platform, verdict, n) in found {
            let c = slot(&mut out, &platform);
            if verdict == "infringing" {
                c.infringing += n;
            } else {
                c.suspect += n;
            }
        }
        let steps: Vec<(String, String, i64)> = sql::query_as(
            "SELECT n.platform, a.to_state, count(*) FROM audit_log a JOIN notices n ON n.id = a.entity_id
             WHERE a.entity = 'notice' AND n.brand_id = ? AND a.at >= ? AND a.at < ?
               AND (a.to_state IN ('filed', 'removed', 'counter_noticed')
                    OR (a.to_state = 'rejected' AND a.from_state IN ('filed', 'counter_noticed')))
             GROUP BY n.platform, a.to_state",
        )
        .bind(brand_id)
        .bind(from)
        .bind(to)
        .fetch_all(&self.pool)
        .await?;
        for (platform, step, n) in steps {
            let c = slot(&mut out, &platform);
            match step.as_str() {
                "filed" => c.filed += n,
                "removed" => c.removed += n,
                "rejected" => c.rejected += n,
                _ => c.counter_noticed += n,
            }
        }
        let relisted: Vec<(String, i64)> = sql::query_as(
            "SELECT n.platform, count(*) FROM notice_items ni JOIN notices n ON n.id = ni.notice_id
             WHERE n.brand_id = ? AND ni.relisted_from IS NOT NULL
               AND coalesce(ni.added_at, n.created_at) >= ? AND coalesce(ni.added_at, n.created_at) < ?
             GROUP BY n.platform",
        )
        .bind(brand_id)
        .bind(from)
        .bind(to)
        .fetch_all(&self.pool)
        .await?;
        for (platform, n) in relisted {
            slot(&mut out, &platform).relisted += n;
        }
        Ok(out.into_values().collect())
    }

    /// The shops with most of a brand's listings flagged in `[from, to)`.
    pub async fn top_sellers(
        &self,
        brand_id: i64,
        from: &str,
        to: &str,
        limit: u32,
    ) -> Result<Vec<TopSeller>> {
        Ok(sql::query_as(
            "SELECT l.platform, l.seller, count(*) AS listings,
                    count(CASE WHEN n.state = 'removed' THEN 1 END) AS removed
             FROM matches m JOIN listings l ON l.id = m.listing_id
             LEFT JOIN notice_items ni ON ni.match_id = m.id LEFT JOIN notices n ON n.id = ni.notice_id
             WHERE m.brand_id = ? AND m.verdict <> 'clear' AND m.created_at >= ? AND m.created_at < ?
               AND l.seller IS NOT NULL AND trim(l.seller) <> ''
             GROUP BY l.platform, l.seller ORDER BY listings DESC, l.platform, l.seller LIMIT ?",
        )
        .bind(brand_id)
        .bind(from)
        .bind(to)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?)
    }

    /// A brand's relistings drafted in `[from, to)`, oldest first, at most `limit`.
    pub async fn relisted_listings(
        &self,
        brand_id: i64,
        from: &str,
        to: &str,
        limit: u32,
    ) -> Result<Vec<RelistedListing>> {
        Ok(sql::query_as(
            "SELECT n.platform, l.item_id, l.title, l.seller, ni.relisted_from AS earlier_case,
                    coalesce(ni.added_at, n.created_at) AS added_at
             FROM notice_items ni JOIN notices n ON n.id = ni.notice_id
             JOIN matches m ON m.id = ni.match_id JOIN listings l ON l.id = m.listing_id
             WHERE n.brand_id = ? AND ni.relisted_from IS NOT NULL
               AND coalesce(ni.added_at, n.created_at) >= ? AND coalesce(ni.added_at, n.created_at) < ?
             ORDER BY added_at, l.id LIMIT ?",
        )
        .bind(brand_id)
        .bind(from)
        .bind(to)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?)
    }
}
