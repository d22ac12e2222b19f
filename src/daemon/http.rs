//! The daemon's own HTTP routes: liveness, readiness, Prometheus metrics, and the control API
//! (start a run now, read schedules and runs) that `markwatch crawl --now` calls.
//!
//! The control API takes the bearer token the daemon writes into its database at start
//! (`daemon_state.control_token`): whoever can read the database may trigger runs.

use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use super::scheduler::{SchedulerHandle, Started, TriggerError};
use crate::store::{ScheduleRow, ScheduleRunRow, Store};

/// A readiness probe that takes longer than this answers "not ready".
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Clone)]
pub(crate) struct DaemonHttp {
    pub store: Store,
    pub scheduler: SchedulerHandle,
    pub started: DateTime<Utc>,
    pub control_token: String,
    /// Cancelled when shutdown begins: `/readyz` then answers 503 so traffic drains.
    pub shutdown: CancellationToken,
}

/// `/healthz`, `/readyz`, `/metrics` and `/api/daemon/...`.
pub(crate) fn router(state: DaemonHttp) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/api/daemon/crawl", post(crawl_now))
        .route("/api/daemon/schedules", get(schedules))
        .route("/api/daemon/runs/{id}", get(run))
        .with_state(state)
}

async fn healthz() -> &'static str {
    "ok\n"
}

#[derive(Serialize)]
struct ReadyBody {
    ready: bool,
    database_writable: bool,
    migrations_current: bool,
    shutting_down: bool,
    /// Why it is not ready, in words.
    problems: Vec<String>,
}

async fn readyz(State(s): State<DaemonHttp>) -> Response {
    let shutting_down = s.shutdown.is_cancelled();
    let mut problems = Vec::new();
    let (writable, migrated) = match tokio::time::timeout(PROBE_TIMEOUT, s.store.readiness()).await
    {
        Ok(r) => {
            problems.extend(r.writable.as_ref().err().cloned());
            problems.extend(r.migrations.as_ref().err().cloned());
            (r.writable.is_ok(), r.migrations.is_ok())
        }
        Err(_) => {
            problems.push("the database did not answer within 5 s".to_owned());
            (false, false)
        }
    };
    if shutting_down {
        problems.push("shutting down".to_owned());
    }
    let body = ReadyBody {
        ready: problems.is_empty(),
        database_writable: writable,
        migrations_current: migrated,
        shutting_down,
        problems,
    };
    let status = if body.ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body)).into_response()
}

async fn metrics(State(s): State<DaemonHttp>, headers: HeaderMap) -> Response {
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok());
    let format = crate::metrics::Format::negotiate(accept);
    match crate::metrics::scrape(&s.store, s.started, format).await {
        Ok(text) => ([(header::CONTENT_TYPE, format.content_type())], text).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "metrics scrape failed");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                "cannot read the database\n",
            )
                .into_response()
        }
    }
}

fn authorised(s: &DaemonHttp, headers: &HeaderMap) -> bool {
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    given.is_some_and(|g| constant_time_eq(g.as_bytes(), s.control_token.as_bytes()))
}

fn unauthorised() -> Response {
    error(
        StatusCode::UNAUTHORIZED,
        "a bearer token is required (markwatch crawl --now reads it from the database)",
    )
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn error(status: StatusCode, message: &str) -> Response {
    #[derive(Serialize)]
    struct Body<'a> {
        error: &'a str,
    }
    (status, Json(Body { error: message })).into_response()
}

/// The body of `POST /api/daemon/crawl`; both empty means every watch.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CrawlRequest {
    pub watches: Vec<String>,
    pub platforms: Vec<String>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct CrawlResponse {
    pub runs: Vec<Started>,
}

async fn crawl_now(
    State(s): State<DaemonHttp>,
    headers: HeaderMap,
    body: Option<Json<CrawlRequest>>,
) -> Response {
    if !authorised(&s, &headers) {
        return unauthorised();
    }
    let request = body.map(|Json(b)| b).unwrap_or_default();
    match s
        .scheduler
        .run_now(&request.watches, &request.platforms)
        .await
    {
        Ok(runs) if runs.iter().all(|r| r.already_running) && !runs.is_empty() => {
            (StatusCode::CONFLICT, Json(CrawlResponse { runs })).into_response()
        }
        Ok(runs) => (StatusCode::ACCEPTED, Json(CrawlResponse { runs })).into_response(),
        Err(e @ (TriggerError::UnknownWatch { .. } | TriggerError::UnknownPlatform(_))) => {
            error(StatusCode::NOT_FOUND, &e.to_string())
        }
        Err(e) => error(StatusCode::SERVICE_UNAVAILABLE, &e.to_string()),
    }
}

#[derive(Serialize)]
struct SchedulesBody {
    schedules: Vec<ScheduleRow>,
    recent_runs: Vec<ScheduleRunRow>,
}

async fn schedules(State(s): State<DaemonHttp>, headers: HeaderMap) -> Response {
    if !authorised(&s, &headers) {
        return unauthorised();
    }
    let rows = s.store.schedules().await;
    let runs = s.store.schedule_runs(50).await;
    match (rows, runs) {
        (Ok(schedules), Ok(recent_runs)) => Json(SchedulesBody {
            schedules,
            recent_runs,
        })
        .into_response(),
        (Err(e), _) | (_, Err(e)) => error(StatusCode::SERVICE_UNAVAILABLE, &e.to_string()),
    }
}

async fn run(State(s): State<DaemonHttp>, headers: HeaderMap, Path(id): Path<i64>) -> Response {
    if !authorised(&s, &headers) {
        return unauthorised();
    }
    match s.store.schedule_run(id).await {
        Ok(Some(run)) => Json(run).into_response(),
        Ok(None) => error(StatusCode::NOT_FOUND, "no such run"),
        Err(e) => error(StatusCode::SERVICE_UNAVAILABLE, &e.to_string()),
    }
}
