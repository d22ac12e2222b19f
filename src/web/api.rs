//! The JSON API under `/api/v1`, for teams that integrate: the same reads and actions as the
//! pages, authenticated with `Authorization: Bearer <token>` (`markwatch users token NAME`).
//! No cookies are read here, so there is nothing for a forged cross-site request to ride on.

use axum::extract::{FromRequestParts, State};
use axum::http::header;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;

use super::{WebError, WebState};
use crate::store::User;

/// The user an API token belongs to.
pub struct ApiUser(pub User);

impl ApiUser {
    pub fn actor(&self) -> String {
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
pub struct ApiError(pub WebError);

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
        if status.is_server_error() {
            tracing::error!(error = ?self.0, "API request failed");
        }
        let mut resp = (status, Json(json!({ "error": self.0.to_string() }))).into_response();
        if status == axum::http::StatusCode::UNAUTHORIZED {
            resp.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer"),
            );
        }
        resp
    }
}

pub fn router() -> Router<WebState> {
    Router::new()
        .route("/me", get(me))
        .route("/brands", get(brands))
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
