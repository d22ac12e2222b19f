//! The daemon's own HTTP routes: liveness, readiness, Prometheus metrics, and the control API
//! (start a run now, read schedules and runs) that `markwatch crawl --now` calls.
//!
//! The control API takes the bearer token the daemon writes at start to a 0600 file beside the
//! database (`<db>.token`): whoever can read that file may trigger runs. The database keeps
//! only the token's SHA-256.

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
    /// SHA-256 of the control token.
    pub control_token_hash: [u8; 32],
    /// Cancelled when shutdown begins: `/readyz` then answers 503 so traffic drains.
    pub shutdown: CancellationToken,
    /// Who may read `/metrics` on this listener.
    pub metrics: MetricsAccess,
}

/// Who may read `/metrics` on a listener.
#[derive(Debug, Clone, Copy)]
pub(crate) enum MetricsAccess {
    /// Anyone who reaches the listener (`daemon.metrics_addr` without a token).
    Open,
    /// Those presenting the bearer token whose SHA-256 this is (`daemon.metrics_token_file`).
    Token([u8; 32]),
    /// No one: the listener may be behind a public proxy, and no token is configured.
    Off,
}

/// `/healthz`, `/readyz`, `/metrics` and `/api/daemon/...`, with the review UI's security
/// headers.
pub(crate) fn router(state: DaemonHttp) -> Router {
    ops_routes()
        .route("/api/daemon/crawl", post(crawl_now))
        .route("/api/daemon/schedules", get(schedules))
        .route("/api/daemon/runs/{id}", get(run))
        .with_state(state)
        .layer(axum::middleware::from_fn(
            crate::web::plain_security_headers,
        ))
}

/// Only `/healthz`, `/readyz` and `/metrics`: the `daemon.metrics_addr` listener.
pub(crate) fn ops_router(state: DaemonHttp) -> Router {
    ops_routes()
        .with_state(state)
        .layer(axum::middleware::from_fn(
            crate::web::plain_security_headers,
        ))
}

fn ops_routes() -> Router<DaemonHttp> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
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
    match s.metrics {
        MetricsAccess::Open => {}
        MetricsAccess::Token(hash) if bearer_matches(&headers, &hash) => {}
        MetricsAccess::Token(_) => {
            return error(
                StatusCode::UNAUTHORIZED,
                "a bearer token is required (daemon.metrics_token_file)",
            );
        }
        MetricsAccess::Off => {
            return error(
                StatusCode::FORBIDDEN,
                "metrics are not served here: set daemon.metrics_addr or daemon.metrics_token_file",
            );
        }
    }
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
    bearer_matches(headers, &s.control_token_hash)
}

/// Whether the request's bearer token hashes to `hash`. Comparing hashes in constant time
/// gives away neither the token nor its length.
fn bearer_matches(headers: &HeaderMap, hash: &[u8; 32]) -> bool {
    use subtle::ConstantTimeEq as _;
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .is_some_and(|g| bool::from(super::token_hash(g).ct_eq(hash)))
}

fn unauthorised() -> Response {
    error(
        StatusCode::UNAUTHORIZED,
        "a bearer token is required (markwatch crawl --now reads it from the file <database>.token)",
    )
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
