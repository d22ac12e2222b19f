//! The dashboard's trend charts and the numbers behind them, as CSV.

use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use super::auth::CurrentUser;
use super::{WebError, WebState};
use crate::trends::{self, Chart, ChartKind, PERIODS, Totals};

/// Weeks shown when the request names none.
const DEFAULT_WEEKS: u32 = 13;

/// `?brand=NAME&weeks=N`, as the dashboard's filter form sends it.
#[derive(Debug, Default, Deserialize)]
pub(super) struct TrendQuery {
    #[serde(default)]
    brand: Option<String>,
    #[serde(default)]
    weeks: Option<String>,
}

/// What the dashboard shows of the trends.
#[derive(Serialize)]
pub(super) struct TrendView {
    pub brand: Option<String>,
    pub weeks: u32,
    pub periods: [u32; 3],
    pub brands: Vec<String>,
    pub charts: Vec<Chart>,
    pub totals: Totals,
    /// The filter as a query string, for the CSV links.
    pub query: String,
}

/// The period and brand a request asks for, checked.
async fn filter(
    state: &WebState,
    q: &TrendQuery,
) -> Result<(Option<(String, i64)>, u32), WebError> {
    let weeks = match q.weeks.as_deref().map(str::trim).filter(|w| !w.is_empty()) {
        None => DEFAULT_WEEKS,
        Some(w) => w
            .parse::<u32>()
            .ok()
            .filter(|w| PERIODS.contains(w))
            .ok_or_else(|| {
                WebError::BadRequest(format!(
                    "weeks: `{}` is not a period the charts offer (4, 13 or 52)",
                    w.chars().take(20).collect::<String>()
                ))
            })?,
    };
    let brand = match q.brand.as_deref().map(str::trim).filter(|b| !b.is_empty()) {
        None => None,
        Some(name) => {
            let id = state.store().brand_id(name).await?.ok_or_else(|| {
                WebError::BadRequest(format!(
                    "brand: no brand named `{}` in the registry",
                    name.chars().take(60).collect::<String>()
                ))
            })?;
            Some((name.to_owned(), id))
        }
    };
    Ok((brand, weeks))
}

pub(super) async fn view(state: &WebState, q: &TrendQuery) -> Result<TrendView, WebError> {
    let (brand, weeks) = filter(state, q).await?;
    let today = chrono::Utc::now().date_naive();
    let t = trends::load(state.store(), brand.as_ref().map(|b| b.1), weeks, today).await?;
    let mut query = format!("weeks={weeks}");
    if let Some((name, _)) = &brand {
        query.push_str("&brand=");
        query.push_str(
            &percent_encoding::utf8_percent_encode(name, percent_encoding::NON_ALPHANUMERIC)
                .to_string(),
        );
    }
    Ok(TrendView {
        charts: t.charts(&|k: &str| state.platform_name(k)),
        totals: t.totals(),
        brand: brand.map(|b| b.0),
        weeks,
        periods: PERIODS,
        brands: state.store().brand_names().await?,
        query,
    })
}

/// `GET /trends/{chart}.csv`: one chart's numbers.
pub(super) async fn csv(
    State(state): State<WebState>,
    _user: CurrentUser,
    Path(file): Path<String>,
    Query(q): Query<TrendQuery>,
) -> Result<Response, WebError> {
    let kind = file
        .strip_suffix(".csv")
        .and_then(ChartKind::from_id)
        .ok_or(WebError::NotFound)?;
    let (brand, weeks) = filter(&state, &q).await?;
    let today = chrono::Utc::now().date_naive();
    let t = trends::load(state.store(), brand.as_ref().map(|b| b.1), weeks, today).await?;
    let chart = t.chart(kind, &|k: &str| state.platform_name(k));
    let mut resp = (
        [(header::CONTENT_TYPE, "text/csv; charset=utf-8")],
        chart.table.to_csv(),
    )
        .into_response();
    // The file name is built from our own chart id and a number, never from input.
    if let Ok(v) = HeaderValue::from_str(&format!(
        "attachment; filename=\"markwatch-{}-{weeks}w.csv\"",
        kind.id()
    )) {
        resp.headers_mut().insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(resp)
}
