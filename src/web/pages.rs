//! Server-rendered pages outside the notice queue: dashboard, brands, users, static assets.

use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use minijinja::context;
use serde::{Deserialize, Serialize};

use super::auth::{CurrentUser, PageUser, Posted};
use super::form::{csrf_form, text};
use super::{WebError, WebState};
use crate::registry;
use crate::store::Role;

/// What the layout needs on every page.
#[derive(Serialize)]
pub(super) struct PageCtx<'a> {
    pub user: PageUser<'a>,
    pub csrf: &'a str,
    pub nonce: &'a str,
    pub nav: &'a str,
    pub flash: Option<String>,
}

pub(super) fn page<'a>(user: &'a CurrentUser, nav: &'a str, flash: Option<String>) -> PageCtx<'a> {
    PageCtx {
        user: user.page_user(),
        csrf: &user.csrf,
        nonce: &user.nonce,
        nav,
        flash,
    }
}

/// Any serialisable value as a template value.
pub(super) fn v<T: Serialize>(value: T) -> minijinja::Value {
    minijinja::Value::from(minijinja::value::Serde(value))
}

/// `?done=...` after a redirect: fixed messages only, never text from the URL.
#[derive(Debug, Deserialize, Default)]
pub(super) struct Flash {
    done: Option<String>,
    n: Option<u32>,
}

impl Flash {
    pub(super) fn message(&self) -> Option<String> {
        let n = self.n.unwrap_or(0);
        let msg = match self.done.as_deref()? {
            "imported" => "Registry imported.".to_owned(),
            "user_added" => "User added.".to_owned(),
            "user_changed" => "User updated.".to_owned(),
            "password_changed" => {
                "Password changed; your other sessions were logged out.".to_owned()
            }
            "approved" => format!("Approved {n} notice(s)."),
            "rejected" => format!("Rejected {n} notice(s)."),
            "rejected_allowed" => format!("Rejected; {n} allow rule(s) added."),
            "allow_removed" => "Allow rule removed.".to_owned(),
            "filed" => "Marked as filed.".to_owned(),
            "resolved" => "Outcome recorded.".to_owned(),
            "none" => "Nothing was selected.".to_owned(),
            "network_drafted" => {
                format!("Drafted {n} open listing(s) of this network into notices.")
            }
            "network_nothing" => "This network has no open listing left to draft.".to_owned(),
            _ => return None,
        };
        Some(msg)
    }
}

pub(super) async fn brands(
    State(state): State<WebState>,
    user: CurrentUser,
    Query(flash): Query<Flash>,
) -> Result<Html<String>, WebError> {
    render_brands(&state, &user, flash.message(), &[], "").await
}

async fn render_brands(
    state: &WebState,
    user: &CurrentUser,
    flash: Option<String>,
    problems: &[registry::Problem],
    source: &str,
) -> Result<Html<String>, WebError> {
    #[derive(Serialize)]
    struct ProblemView<'a> {
        line: Option<usize>,
        field: &'a str,
        message: &'a str,
    }
    let brands = state.store().brands().await?;
    let problems: Vec<ProblemView> = problems
        .iter()
        .map(|p| ProblemView {
            line: p.line,
            field: &p.field,
            message: &p.message,
        })
        .collect();
    state.render(
        "brands.html",
        context! {
            page => v(page(user, "brands", flash)),
            brands => v(brands),
            problems => v(problems),
            source,
            today => chrono::Utc::now().date_naive().to_string(),
        },
    )
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct ImportForm {
    csrf: String,
    registry: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct UserForm {
    csrf: String,
    action: String,
    name: Option<String>,
    role: String,
    password: String,
}

csrf_form!(ImportForm, UserForm);

/// Admins import a registry pasted as TOML; the same all-or-nothing import as the CLI.
pub(super) async fn import_brands(
    State(state): State<WebState>,
    posted: Posted<ImportForm>,
) -> Result<Response, WebError> {
    posted.user.require(Role::Admin)?;
    let source = posted.form.registry.as_str();
    match registry::parse_toml(source) {
        Ok(brands) => {
            state
                .store()
                .import_registry(&brands, &posted.user.actor(), "web form")
                .await?;
            Ok(Redirect::to("/brands?done=imported").into_response())
        }
        Err(problems) => {
            let page = render_brands(&state, &posted.user, None, &problems, source).await?;
            Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response())
        }
    }
}

/// An account as the web shows it: state, counters, the command that fixes it; never its
/// cookies or proxy credentials.
#[derive(Serialize)]
pub(super) struct AccountRow {
    platform: String,
    name: String,
    state: String,
    since: String,
    until: Option<String>,
    last_success_at: Option<String>,
    pages_today: i64,
    /// What a person runs, for an expired or challenged account.
    command: Option<String>,
}

async fn account_rows(store: &crate::store::Store) -> Result<Vec<AccountRow>, WebError> {
    let today = chrono::Utc::now().format("%Y-%m-%d").to_string();
    Ok(store
        .accounts(&today)
        .await?
        .into_iter()
        .map(|a| {
            let state = a.state.to_string();
            let command = matches!(
                a.state,
                crate::store::AccountState::Expired | crate::store::AccountState::Challenged
            )
            .then(|| crate::model::alert::fix_command(&a.platform, &a.name, &state));
            AccountRow {
                platform: a.platform,
                name: a.name,
                state,
                since: a.since,
                until: a.until,
                last_success_at: a.last_success_at,
                pages_today: a.pages_today,
                command,
            }
        })
        .collect())
}

/// The accounts that need a person (expired or challenged), for the dashboard.
pub(super) async fn needing_person(
    store: &crate::store::Store,
) -> Result<Vec<AccountRow>, WebError> {
    let mut rows = account_rows(store).await?;
    rows.retain(|a| a.command.is_some());
    Ok(rows)
}

/// `/accounts`: every platform account, read-only.
pub(super) async fn accounts(
    State(state): State<WebState>,
    user: CurrentUser,
    Query(flash): Query<Flash>,
) -> Result<Html<String>, WebError> {
    user.require(Role::Reviewer)?;
    let accounts = account_rows(state.store()).await?;
    state.render(
        "accounts.html",
        context! { page => v(page(&user, "accounts", flash.message())), accounts => v(accounts) },
    )
}

pub(super) async fn users(
    State(state): State<WebState>,
    user: CurrentUser,
    Query(flash): Query<Flash>,
) -> Result<Html<String>, WebError> {
    user.require(Role::Admin)?;
    let users = state.store().users().await?;
    state.render(
        "users.html",
        context! { page => v(page(&user, "users", flash.message())), users => v(users) },
    )
}

/// Admins add users, change roles, disable and enable accounts.
pub(super) async fn change_user(
    State(state): State<WebState>,
    posted: Posted<UserForm>,
) -> Result<Response, WebError> {
    posted.user.require(Role::Admin)?;
    let form = &posted.form;
    let actor = posted.user.actor();
    let name = text(&form.name)
        .ok_or_else(|| WebError::BadRequest("field `name` is required".to_owned()))?;
    let role = || -> Result<Role, WebError> { form.role.parse().map_err(WebError::BadRequest) };
    let store = state.store();
    let done = match form.action.as_str() {
        "add" => {
            store
                .add_user(&name, role()?, &form.password, &actor)
                .await?;
            "user_added"
        }
        "role" => {
            if name == posted.user.user.name && role()? < Role::Admin {
                return Err(WebError::Conflict(
                    "you cannot remove your own admin role".to_owned(),
                ));
            }
            store.set_user_role(&name, role()?, &actor).await?;
            "user_changed"
        }
        "disable" => {
            if name == posted.user.user.name {
                return Err(WebError::Conflict(
                    "you cannot disable your own account".to_owned(),
                ));
            }
            store.set_user_disabled(&name, true, &actor).await?;
            "user_changed"
        }
        "enable" => {
            store.set_user_disabled(&name, false, &actor).await?;
            "user_changed"
        }
        other => {
            return Err(WebError::BadRequest(format!("unknown action `{other}`")));
        }
    };
    Ok(Redirect::to(&format!("/users?done={done}")).into_response())
}

const APP_CSS: &str = include_str!("../../static/web/app.css");
const APP_JS: &str = include_str!("../../static/web/app.js");

pub(super) async fn static_file(Path(file): Path<String>) -> Response {
    let (body, ctype) = match file.as_str() {
        "app.css" => (APP_CSS, "text/css; charset=utf-8"),
        "app.js" => (APP_JS, "text/javascript; charset=utf-8"),
        _ => return StatusCode::NOT_FOUND.into_response(),
    };
    (
        [
            (header::CONTENT_TYPE, ctype),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        body,
    )
        .into_response()
}

/// No icon: answered here so browsers' automatic requests don't land on the login page.
pub(super) async fn favicon() -> StatusCode {
    StatusCode::NO_CONTENT
}

pub(super) async fn not_found(_user: CurrentUser) -> WebError {
    WebError::NotFound
}
