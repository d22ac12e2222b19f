//! The dashboard (counts, Art. 43 deadlines, good-faith rates) and the cases page.

use std::collections::BTreeMap;

use axum::extract::{Query, State};
use axum::response::Html;
use chrono::NaiveDate;
use minijinja::context;
use serde::Serialize;

use super::auth::CurrentUser;
use super::pages::{Flash, page, v};
use super::{WebError, WebState};
use crate::case::{MAX_COUNTER_RATE, MIN_SUCCESS_RATE};
use crate::model::CaseState;
use crate::store::{NoticeFilter, NoticeSort, NoticeSummary};

/// Deadlines this close are shown as urgent.
const URGENT_DAYS: i64 = 5;
/// Cases listed per section of the cases page; the queue pages through the rest.
const SECTION_ROWS: u64 = 100;

#[derive(Serialize)]
struct RateRow {
    platform: String,
    account: String,
    filed: i64,
    pending: i64,
    decided: i64,
    removed: i64,
    counter_noticed: i64,
    success: Option<f64>,
    counter: Option<f64>,
    success_ok: bool,
    counter_ok: bool,
}

#[derive(Serialize)]
struct CaseRow {
    #[serde(flatten)]
    notice: NoticeSummary,
    /// Days until the Art. 43 deadline (negative once passed).
    days_left: Option<i64>,
}

fn days_left(deadline: Option<&str>, today: NaiveDate) -> Option<i64> {
    let d = NaiveDate::parse_from_str(deadline?.get(..10)?, "%Y-%m-%d").ok()?;
    Some((d - today).num_days())
}

fn with_countdown(notices: Vec<NoticeSummary>, today: NaiveDate) -> Vec<CaseRow> {
    notices
        .into_iter()
        .map(|n| CaseRow {
            days_left: days_left(n.deadline.as_deref(), today),
            notice: n,
        })
        .collect()
}

pub(super) async fn dashboard(
    State(state): State<WebState>,
    user: CurrentUser,
    Query(flash): Query<Flash>,
    Query(trend_query): Query<super::trends::TrendQuery>,
) -> Result<Html<String>, WebError> {
    let trends = super::trends::view(&state, &trend_query).await?;
    let store = state.store();
    let today = chrono::Utc::now().date_naive();
    // Platform -> state -> count, every defined platform and state present.
    let mut counts: BTreeMap<String, BTreeMap<&'static str, i64>> = state
        .platforms()
        .iter()
        .map(|p| {
            (
                p.key.clone(),
                CaseState::ALL.iter().map(|s| (s.as_str(), 0)).collect(),
            )
        })
        .collect();
    for c in store.notice_counts().await? {
        if let Some(state) = CaseState::ALL.iter().find(|s| s.as_str() == c.state) {
            *counts
                .entry(c.platform.clone())
                .or_insert_with(|| CaseState::ALL.iter().map(|s| (s.as_str(), 0)).collect())
                .entry(state.as_str())
                .or_insert(0) += c.count;
        }
    }
    let rates: Vec<RateRow> = crate::case::good_faith(store, today)
        .await?
        .into_iter()
        .map(|gf| {
            let c = gf.counts;
            RateRow {
                success_ok: gf.success_rate.is_none_or(|s| s >= MIN_SUCCESS_RATE),
                counter_ok: gf.counter_rate.is_none_or(|c| c <= MAX_COUNTER_RATE),
                decided: c.decided(),
                platform: c.platform,
                account: c.account,
                filed: c.filed,
                pending: c.pending,
                removed: c.removed,
                counter_noticed: c.counter_noticed,
                success: gf.success_rate,
                counter: gf.counter_rate,
            }
        })
        .collect();
    let deadlines = store
        .list_notices(
            &NoticeFilter {
                states: vec![CaseState::CounterNoticed],
                ..NoticeFilter::default()
            },
            NoticeSort::Deadline,
            0,
            10,
        )
        .await?;
    let brands = store.brands().await?;
    let needs_person = super::pages::needing_person(store).await?;
    state.render(
        "dashboard.html",
        context! {
            page => v(page(&user, "dashboard", flash.message())),
            counts => v(counts),
            platform_names => v(platform_names(&state)),
            states => v(CaseState::ALL.iter().map(|s| s.as_str()).collect::<Vec<_>>()),
            rates => v(rates),
            min_success => MIN_SUCCESS_RATE * 100.0,
            max_counter => MAX_COUNTER_RATE * 100.0,
            deadlines => v(with_countdown(deadlines.notices, today)),
            urgent_days => URGENT_DAYS,
            brand_count => brands.len(),
            mark_count => brands.iter().map(|b| b.marks.len()).sum::<usize>(),
            needs_person => v(needs_person),
            trends => v(trends),
        },
    )
}

/// Platform key -> display name, for tables keyed by platform.
pub(super) fn platform_names(state: &WebState) -> BTreeMap<&str, &str> {
    state
        .platforms()
        .iter()
        .map(|p| (p.key.as_str(), p.name.as_str()))
        .collect()
}

#[derive(Serialize)]
struct Section {
    key: &'static str,
    title: &'static str,
    note: &'static str,
    total: u64,
    rows: Vec<CaseRow>,
}

/// Filed, counter-noticed (with the Art. 43 countdown), removed and rejected cases.
pub(super) async fn cases(
    State(state): State<WebState>,
    user: CurrentUser,
) -> Result<Html<String>, WebError> {
    let today = chrono::Utc::now().date_naive();
    let specs = [
        (
            CaseState::CounterNoticed,
            NoticeSort::Deadline,
            "Counter-noticed",
            "E-Commerce Law Art. 43: the rights holder has 15 days from the counter-notice to complain to the authorities or sue, or the platform restores the listings.",
        ),
        (
            CaseState::Filed,
            NoticeSort::Oldest,
            "Filed, waiting for the platform",
            "",
        ),
        (
            CaseState::Approved,
            NoticeSort::Oldest,
            "Approved, to file",
            "",
        ),
        (CaseState::Removed, NoticeSort::Updated, "Removed", ""),
        (CaseState::Rejected, NoticeSort::Updated, "Rejected", ""),
    ];
    let mut sections = Vec::new();
    for (case_state, sort, title, note) in specs {
        let page_rows = state
            .store()
            .list_notices(
                &NoticeFilter {
                    states: vec![case_state],
                    ..NoticeFilter::default()
                },
                sort,
                0,
                SECTION_ROWS,
            )
            .await?;
        sections.push(Section {
            key: case_state.as_str(),
            title,
            note,
            total: page_rows.total,
            rows: with_countdown(page_rows.notices, today),
        });
    }
    state.render(
        "cases.html",
        context! {
            page => v(page(&user, "cases", None)),
            sections => v(sections),
            urgent_days => URGENT_DAYS,
            section_rows => SECTION_ROWS,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn countdown_counts_calendar_days() {
        let today = NaiveDate::from_ymd_opt(2026, 3, 1).unwrap();
        assert_eq!(days_left(Some("2026-03-16"), today), Some(15));
        assert_eq!(days_left(Some("2026-02-27"), today), Some(-2));
        assert_eq!(days_left(None, today), None);
        assert_eq!(days_left(Some("soon"), today), None);
    }
}
