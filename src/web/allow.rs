//! `/allow`: the allow rules reviewers added when rejecting drafts, and their removal.

use axum::extract::{Path, Query, State};
use axum::response::{Html, IntoResponse, Redirect, Response};
use minijinja::context;

use super::auth::{CsrfOnly, CurrentUser, Posted};
use super::pages::{Flash, page, v};
use super::{WebError, WebState};
use crate::store::Role;

/// Every allow rule, by brand; reviewers may remove them.
pub(super) async fn allow_rules(
    State(state): State<WebState>,
    user: CurrentUser,
    Query(flash): Query<Flash>,
) -> Result<Html<String>, WebError> {
    let rules = state.store().list_allow_rules().await?;
    state.render(
        "allow.html",
        context! { page => v(page(&user, "allow", flash.message())), rules => v(rules) },
    )
}

/// Removes one rule; the matcher stops applying it once it next reloads the rules.
pub(super) async fn remove_allow_rule(
    State(state): State<WebState>,
    Path(id): Path<i64>,
    posted: Posted<CsrfOnly>,
) -> Result<Response, WebError> {
    posted.user.require(Role::Reviewer)?;
    state
        .store()
        .remove_allow_rule(id, &posted.user.actor())
        .await?
        .ok_or(WebError::NotFound)?;
    Ok(Redirect::to("/allow?done=allow_removed").into_response())
}
