//! A brand's monthly report: the month's findings per platform, notices and what came of
//! them, the top sellers and the seller networks they belong to, relistings, the Good-faith
//! standing of each platform account, and the trend charts of the 13 weeks to the month's end.
//! One HTML page (`templates/reports/monthly.html`), printed to PDF by Chromium, for
//! `markwatch report` and the monthly email.

use std::path::PathBuf;

use chrono::{Datelike, Months, NaiveDate, Utc};
use minijinja::{Environment, context};
use serde::Serialize;

use crate::case::{GoodFaith, MAX_COUNTER_RATE, MIN_SUCCESS_RATE};
use crate::fetch::browser::{BrowserError, BrowserSession};
use crate::store::{PeriodCounts, RelistedListing, Store, StoreError, TopSeller};
use crate::trends::{self, Chart, week_of};

const TEMPLATE: &str = include_str!("../templates/reports/monthly.html");

/// Why a monthly report could not be made.
#[derive(Debug, thiserror::Error)]
pub enum MonthlyError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("no brand named `{0}` in the registry")]
    NoBrand(String),
    #[error("`{0}` is not a month; write it as YYYY-MM, e.g. 2026-11")]
    BadMonth(String),
    #[error("report template: {0}")]
    Template(#[from] minijinja::Error),
    #[error("cannot print the report: {0}")]
    Browser(#[from] BrowserError),
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// The first day of a `YYYY-MM` month.
pub fn parse_month(text: &str) -> Result<NaiveDate, MonthlyError> {
    let t = text.trim();
    NaiveDate::parse_from_str(&format!("{t}-01"), "%Y-%m-%d")
        .ok()
        .filter(|_| t.len() == 7)
        .ok_or_else(|| MonthlyError::BadMonth(text.chars().take(20).collect()))
}

/// The month before the one `day` falls in.
pub fn previous_month(day: NaiveDate) -> NaiveDate {
    let first = day.with_day(1).unwrap_or(day);
    first.checked_sub_months(Months::new(1)).unwrap_or(first)
}

/// What the report shows.
#[derive(Debug, Clone, Serialize)]
pub struct MonthlyReport {
    pub brand: String,
    pub owner: String,
    /// YYYY-MM.
    pub month: String,
    pub from: String,
    /// The last day of the month.
    pub to: String,
    pub generated_utc: String,
    /// Per platform, and the sum over them.
    pub platforms: Vec<PeriodCounts>,
    pub totals: PeriodCounts,
    pub top_sellers: Vec<TopSeller>,
    pub networks: Vec<NetworkLine>,
    pub relisted: Vec<RelistedListing>,
    pub good_faith: Vec<GoodFaith>,
    pub min_success: f64,
    pub max_counter: f64,
    pub charts: Vec<Chart>,
}

/// A seller network one of the top sellers belongs to.
#[derive(Debug, Clone, Serialize)]
pub struct NetworkLine {
    pub id: String,
    pub shops: Vec<String>,
    pub listings: usize,
    pub open: usize,
    pub removed: usize,
    pub signals: Vec<&'static str>,
}

/// Gathers `brand`'s report for the month starting on `month`.
pub async fn build(
    store: &Store,
    brand: &str,
    month: NaiveDate,
    platform_name: &(dyn Fn(&str) -> String + Sync),
) -> Result<MonthlyReport, MonthlyError> {
    let brand_id = store
        .brand_id(brand)
        .await?
        .ok_or_else(|| MonthlyError::NoBrand(brand.chars().take(60).collect()))?;
    let owner = store
        .brand_by_name(brand)
        .await?
        .map(|b| b.owner)
        .unwrap_or_default();
    let next = month.checked_add_months(Months::new(1)).unwrap_or(month);
    let last_day = next.pred_opt().unwrap_or(month);
    let (from, to) = (month.to_string(), next.to_string());
    let platforms = store.period_counts(brand_id, &from, &to).await?;
    let mut totals = PeriodCounts {
        platform: "all".into(),
        ..PeriodCounts::default()
    };
    for p in &platforms {
        totals.infringing += p.infringing;
        totals.suspect += p.suspect;
        totals.filed += p.filed;
        totals.removed += p.removed;
        totals.rejected += p.rejected;
        totals.counter_noticed += p.counter_noticed;
        totals.relisted += p.relisted;
    }
    let top_sellers = store.top_sellers(brand_id, &from, &to, 10).await?;
    let networks = crate::sellers::load(store)
        .await?
        .into_iter()
        .filter(|n| {
            n.shops.iter().any(|s| {
                top_sellers
                    .iter()
                    .any(|t| t.platform == s.platform && t.seller == s.seller)
            })
        })
        .map(|n| NetworkLine {
            signals: n.signals(),
            listings: n.listings(),
            open: n.open(),
            removed: n.removed(),
            shops: n
                .shops
                .iter()
                .map(|s| format!("{} ({})", s.seller, platform_name(&s.platform)))
                .collect(),
            id: n.id,
        })
        .collect();
    let relisted = store.relisted_listings(brand_id, &from, &to, 50).await?;
    let good_faith = crate::case::good_faith(store, last_day).await?;
    let trend = trends::load_between(
        store,
        Some(brand_id),
        week_of(last_day) - chrono::Duration::weeks(12),
        week_of(last_day),
    )
    .await?;
    Ok(MonthlyReport {
        brand: brand.to_owned(),
        owner,
        month: month.format("%Y-%m").to_string(),
        from,
        to: last_day.to_string(),
        generated_utc: Utc::now().format("%Y-%m-%d %H:%M UTC").to_string(),
        platforms: platforms
            .into_iter()
            .map(|mut p| {
                p.platform = platform_name(&p.platform);
                p
            })
            .collect(),
        totals,
        top_sellers: top_sellers
            .into_iter()
            .map(|mut t| {
                t.platform = platform_name(&t.platform);
                t
            })
            .collect(),
        networks,
        relisted,
        good_faith,
        min_success: MIN_SUCCESS_RATE * 100.0,
        max_counter: MAX_COUNTER_RATE * 100.0,
        charts: trend.charts(platform_name),
    })
}

/// The report as a standalone HTML page (styles inline, charts as inline SVG).
pub fn render_html(report: &MonthlyReport) -> Result<String, MonthlyError> {
    let mut env = Environment::new();
    env.set_auto_escape_callback(|_| minijinja::AutoEscape::Html);
    env.add_template("monthly.html", TEMPLATE)?;
    Ok(env
        .get_template("monthly.html")?
        .render(context! { r => minijinja::Value::from(minijinja::value::Serde(report)) })?)
}

/// The report printed to PDF by `browser`.
pub async fn render_pdf(
    report: &MonthlyReport,
    browser: &BrowserSession,
) -> Result<Vec<u8>, MonthlyError> {
    let html = render_html(report)?;
    let dir = tempfile::tempdir().map_err(|source| MonthlyError::Io {
        path: std::env::temp_dir(),
        source,
    })?;
    let path = dir.path().join("report.html");
    std::fs::write(&path, html).map_err(|source| MonthlyError::Io {
        path: path.clone(),
        source,
    })?;
    Ok(browser.print_pdf(&path).await?)
}

/// The report printed to PDF by a Chromium of its own (`crawl.browser` settings), started
/// on a throwaway profile and closed after.
pub async fn print_pdf(
    report: &MonthlyReport,
    config: &crate::config::BrowserConfig,
) -> Result<Vec<u8>, MonthlyError> {
    let profile = tempfile::tempdir().map_err(|source| MonthlyError::Io {
        path: std::env::temp_dir(),
        source,
    })?;
    let browser = BrowserSession::launch(crate::fetch::browser::BrowserOptions {
        executable: config.executable.clone(),
        profile_dir: profile.path().to_owned(),
        proxy: None,
        user_agent: None,
        tabs: 1,
        page_timeout: std::time::Duration::from_secs(config.page_timeout_secs.max(60)),
        headless: true,
    })
    .await?;
    let pdf = render_pdf(report, &browser).await;
    browser.close().await;
    pdf
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn months_are_yyyy_mm() {
        assert_eq!(
            parse_month("2026-11").unwrap(),
            NaiveDate::from_ymd_opt(2026, 11, 1).unwrap()
        );
        for bad in ["2026-13", "2026-1", "11/2026", "", "2026-11-05"] {
            assert!(parse_month(bad).is_err(), "{bad}");
        }
        let d = NaiveDate::from_ymd_opt(2026, 1, 15).unwrap();
        assert_eq!(
            previous_month(d),
            NaiveDate::from_ymd_opt(2025, 12, 1).unwrap()
        );
    }
}
