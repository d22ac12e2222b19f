//! The JSON API under `/api/v1`, for teams that integrate: the same reads and actions as the
//! pages, authenticated with `Authorization: Bearer <token>` (`markwatch users token NAME`).
//! No cookies are read here, so there is nothing for a forged cross-site request to ride on.

use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::header;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::json;

use super::queue::{PAGE_SIZE, QueueQuery};
use super::{WebError, WebState};
use crate::model::{CaseState, RejectReason, TransitionDetails};
use crate::store::{AllowRequest, Feedback, TransitionError};
use crate::store::{NoticeDetail, NoticePage, NoticeSummary, Role, User};

/// The user an API token belongs to.
pub(super) struct ApiUser(pub User);

impl ApiUser {
    pub(super) fn actor(&self) -> String {
        format!("api:{}", self.0.name)
    }
}

impl FromRequestParts<WebState> for ApiUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &WebState) -> Result<Self, ApiError> {
        let token = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
            .ok_or(ApiError(WebError::Unauthorized))?;
        match state.store().user_for_api_token(token).await {
            Ok(Some(user)) => Ok(ApiUser(user)),
            Ok(None) => Err(ApiError(WebError::Unauthorized)),
            Err(e) => Err(ApiError(e.into())),
        }
    }
}

/// A [`WebError`] answered as JSON: `{"error": "..."}` with the same status code.
#[derive(Debug)]
pub(super) struct ApiError(pub WebError);

impl<E: Into<WebError>> From<E> for ApiError {
    fn from(e: E) -> Self {
        ApiError(e.into())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = match &self.0 {
            WebError::LoginRequired { .. } => axum::http::StatusCode::UNAUTHORIZED,
            other => other.status(),
        };
        let logged = status == axum::http::StatusCode::INTERNAL_SERVER_ERROR;
        if logged {
            tracing::error!(error = ?self.0, "API request failed");
        }
        let mut resp = (status, Json(json!({ "error": self.0.to_string() }))).into_response();
        if logged {
            resp.extensions_mut().insert(super::error::CauseLogged);
        }
        if status == axum::http::StatusCode::UNAUTHORIZED {
            resp.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer"),
            );
        }
        resp
    }
}

pub(super) fn router() -> Router<WebState> {
    Router::new()
        .route("/me", get(me))
        .route("/brands", get(brands))
        .route("/notices", get(notices))
        .route("/notices/bulk", post(bulk))
        .route("/notices/{id}", get(notice))
        .route("/notices/{id}/transition", post(transition))
        .route("/counts", get(counts))
}

/// The queue's filters as query parameters (`state=all` for every state), plus `limit`.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(default)]
struct ListQuery {
    #[serde(flatten)]
    q: QueueQuery,
    limit: Option<u64>,
}

async fn notices(
    State(state): State<WebState>,
    _user: ApiUser,
    Query(lq): Query<ListQuery>,
) -> Result<Json<NoticePage>, ApiError> {
    let (filter, sort, page) = lq.q.parse(state.platforms())?;
    let limit = lq
        .limit
        .unwrap_or(PAGE_SIZE)
        .clamp(1, crate::store::MAX_PAGE);
    let rows = state
        .store()
        .list_notices(&filter, sort, (page - 1) * limit, limit)
        .await?;
    Ok(Json(rows))
}

async fn notice(
    State(state): State<WebState>,
    _user: ApiUser,
    Path(id): Path<i64>,
) -> Result<Json<NoticeDetail>, ApiError> {
    let detail = state.store().notice_detail(id).await?;
    Ok(Json(detail.ok_or(WebError::NotFound)?))
}

#[derive(Debug, serde::Deserialize)]
struct TransitionBody {
    to: CaseState,
    #[serde(default)]
    note: Option<String>,
    #[serde(default)]
    complaint_ref: Option<String>,
    #[serde(default)]
    account: Option<String>,
    /// Rejecting a draft: why it is not infringing, and the shops or title words to allow.
    #[serde(default)]
    why: Option<RejectReason>,
    #[serde(default)]
    allow_sellers: Vec<String>,
    #[serde(default)]
    allow_title: Option<String>,
}

/// One step of the lifecycle, through the same transition function as the pages and the CLI.
async fn transition(
    State(state): State<WebState>,
    user: ApiUser,
    Path(id): Path<i64>,
    Json(body): Json<TransitionBody>,
) -> Result<Json<NoticeSummary>, ApiError> {
    super::auth::require(&user.0, Role::Reviewer)?;
    let details = TransitionDetails {
        note: body.note,
        complaint_ref: body.complaint_ref,
        account: body.account,
    };
    let mut allow: Vec<AllowRequest> = body
        .allow_sellers
        .into_iter()
        .map(|s| AllowRequest::Seller(Some(s)))
        .collect();
    allow.extend(body.allow_title.map(AllowRequest::Title));
    let feedback = Feedback {
        reason: body.why,
        allow,
    };
    if body.to == CaseState::Rejected {
        let rejection = state
            .store()
            .reject_notice(id, &user.actor(), &details, &feedback)
            .await?;
        return Ok(Json(rejection.notice));
    }
    if feedback != Feedback::default() {
        return Err(WebError::BadRequest(
            "`why`, `allow_sellers` and `allow_title` are for rejecting".to_owned(),
        )
        .into());
    }
    let notice = state
        .store()
        .transition_notice(id, body.to, &user.actor(), &details)
        .await?;
    Ok(Json(notice))
}

#[derive(Debug, serde::Deserialize)]
struct BulkBody {
    ids: Vec<i64>,
    to: CaseState,
    #[serde(default)]
    note: Option<String>,
    /// Rejecting: why the drafts are not infringing.
    #[serde(default)]
    why: Option<RejectReason>,
}

/// Approve or reject many drafts; each is its own transition, reported one by one.
async fn bulk(
    State(state): State<WebState>,
    user: ApiUser,
    Json(body): Json<BulkBody>,
) -> Result<Json<serde_json::Value>, ApiError> {
    super::auth::require(&user.0, Role::Reviewer)?;
    if !matches!(body.to, CaseState::Approved | CaseState::Rejected) {
        return Err(
            WebError::BadRequest("bulk `to` must be approved or rejected".to_owned()).into(),
        );
    }
    if body.ids.len() > 500 {
        return Err(WebError::BadRequest("at most 500 ids at once".to_owned()).into());
    }
    let details = TransitionDetails {
        note: body.note,
        ..TransitionDetails::default()
    };
    if body.why.is_some() && body.to != CaseState::Rejected {
        return Err(WebError::BadRequest("`why` is for rejecting".to_owned()).into());
    }
    let feedback = Feedback {
        reason: body.why,
        allow: Vec::new(),
    };
    let mut done = Vec::new();
    let mut failed = Vec::new();
    let (store, actor) = (state.store(), user.actor());
    for id in body.ids {
        let result = if body.to == CaseState::Rejected {
            let rejected = store.reject_notice(id, &actor, &details, &feedback);
            rejected.await.map(|_| ())
        } else {
            let moved = store.transition_notice(id, body.to, &actor, &details);
            moved.await.map(|_| ())
        };
        match result {
            Ok(()) => done.push(id),
            Err(TransitionError::Store(e)) => return Err(e.into()),
            Err(e) => failed.push(json!({ "id": id, "error": e.to_string() })),
        }
    }
    Ok(Json(json!({ "done": done, "failed": failed })))
}

async fn counts(
    State(state): State<WebState>,
    _user: ApiUser,
) -> Result<Json<serde_json::Value>, ApiError> {
    let counts = state.store().notice_counts().await?;
    let since = (chrono::Utc::now() - chrono::Months::new(3))
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let good_faith = state.store().good_faith_counts(&since).await?;
    Ok(Json(json!({ "counts": counts, "good_faith": good_faith })))
}

async fn me(user: ApiUser) -> Json<User> {
    Json(user.0)
}

async fn brands(
    State(state): State<WebState>,
    _user: ApiUser,
) -> Result<Json<serde_json::Value>, ApiError> {
    let brands = state.store().brands().await?;
    Ok(Json(json!({ "brands": brands })))
}
