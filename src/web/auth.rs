//! Logins, sessions, CSRF and roles.
//!
//! A session is a random token in an HttpOnly, SameSite=Strict cookie (Secure over HTTPS);
//! the store keeps only its hash. Each session has a CSRF token that every POST must echo in
//! the `csrf` field: [`Posted`] is the only way a handler gets a form from a logged-in user, so
//! no POST can skip the check. The login form, which has no session yet, uses a double-submit
//! cookie. Roles are checked on the server with [`CurrentUser::require`].

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Query, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::form::{CsrfForm, csrf_form, read_form};
use super::headers::Nonce;
use super::redirect::{local_path, see_other};
use super::token::{constant_time_eq, short_token};
use super::{WebError, WebState};
use crate::store::{LoginOutcome, Role, User, capped_name};

const SESSION_COOKIE: &str = "mw_session";
const LOGIN_CSRF_COOKIE: &str = "mw_login_csrf";

impl WebState {
    /// A cookie's name: over HTTPS with the `__Host-` prefix, which browsers accept only from a
    /// secure origin, for the whole host (no `Domain`) and `Path=/`, so neither a sibling
    /// subdomain nor plain HTTP can plant or overwrite it.
    fn cookie_name(&self, base: &'static str) -> String {
        if self.inner.secure_cookies {
            format!("__Host-{base}")
        } else {
            base.to_owned()
        }
    }
}

/// A logged-in user of the browser UI, with what every page needs to render.
#[derive(Debug, Clone)]
pub(crate) struct CurrentUser {
    pub user: User,
    pub csrf: String,
    pub nonce: String,
}

/// What templates see of the logged-in user.
#[derive(Debug, Serialize)]
pub(crate) struct PageUser<'a> {
    pub name: &'a str,
    pub role: Role,
    pub can_act: bool,
    pub is_admin: bool,
}

impl CurrentUser {
    /// Refuses unless the user's role is at least `needed`.
    pub(crate) fn require(&self, needed: Role) -> Result<(), WebError> {
        require(&self.user, needed)
    }

    /// The audit log's actor for this user.
    pub(crate) fn actor(&self) -> String {
        format!("web:{}", self.user.name)
    }

    pub(crate) fn page_user(&self) -> PageUser<'_> {
        PageUser {
            name: &self.user.name,
            role: self.user.role,
            can_act: self.user.role >= Role::Reviewer,
            is_admin: self.user.role >= Role::Admin,
        }
    }
}

pub(super) fn require(user: &User, needed: Role) -> Result<(), WebError> {
    if user.role >= needed {
        Ok(())
    } else {
        Err(WebError::Forbidden {
            role: user.role.as_str(),
            needs: needed.as_str(),
        })
    }
}

impl FromRequestParts<WebState> for CurrentUser {
    type Rejection = WebError;

    async fn from_request_parts(parts: &mut Parts, state: &WebState) -> Result<Self, WebError> {
        let next = parts
            .uri
            .path_and_query()
            .map(|p| p.as_str().to_owned())
            .unwrap_or_else(|| "/".to_owned());
        let Some(token) = cookie(&parts.headers, &state.cookie_name(SESSION_COOKIE)) else {
            return Err(WebError::LoginRequired { next });
        };
        let Some(session) = state.store().session(&token, state.inner.sessions).await? else {
            return Err(WebError::LoginRequired { next });
        };
        let nonce = parts
            .extensions
            .get::<Nonce>()
            .map(|n| n.0.clone())
            .unwrap_or_default();
        Ok(CurrentUser {
            user: session.user,
            csrf: session.csrf_token,
            nonce,
        })
    }
}

/// A form `T` posted by a logged-in user whose CSRF token matched their session's. A body that
/// is not a form of type `T` is refused before the token is compared; either way, no handler
/// sees a form whose token did not match.
pub(super) struct Posted<T> {
    pub user: CurrentUser,
    pub form: T,
}

impl<T: CsrfForm + DeserializeOwned> FromRequest<WebState> for Posted<T> {
    type Rejection = WebError;

    async fn from_request(req: Request, state: &WebState) -> Result<Self, WebError> {
        let (mut parts, body) = req.into_parts();
        let user = CurrentUser::from_request_parts(&mut parts, state).await?;
        let form: T = read_form(Request::from_parts(parts, body), state).await?;
        let sent = form.csrf();
        if !sent.is_empty() && constant_time_eq(sent.as_bytes(), user.csrf.as_bytes()) {
            Ok(Posted { user, form })
        } else {
            Err(WebError::Csrf)
        }
    }
}

/// A form with nothing but its CSRF token (logout).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct CsrfOnly {
    csrf: String,
}

csrf_form!(CsrfOnly);

/// The client's address, for per-IP login throttling. Behind a reverse proxy this is the
/// proxy's address, which then throttles all clients together (the safe direction).
pub(super) struct ClientIp(pub String);

impl<S: Send + Sync> FromRequestParts<S> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(ClientIp(
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|c| c.0.ip().to_string())
                .unwrap_or_else(|| "unknown".to_owned()),
        ))
    }
}

/// One cookie's value from the request's `Cookie` headers.
pub(super) fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_owned())
}

fn set_cookie(state: &WebState, name: &'static str, value: &str, max_age_secs: i64) -> HeaderValue {
    let secure = if state.inner.secure_cookies {
        "; Secure"
    } else {
        ""
    };
    let name = state.cookie_name(name);
    let v = format!(
        "{name}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age_secs}{secure}"
    );
    HeaderValue::from_str(&v).unwrap_or_else(|_| HeaderValue::from_static("invalid=1"))
}

/// Only local paths: `next` must never send a user to another site after login.
fn safe_next(next: Option<&str>) -> String {
    next.and_then(local_path).unwrap_or("/").to_owned()
}

#[derive(Deserialize)]
pub(super) struct LoginQuery {
    next: Option<String>,
}

/// The login form; its `csrf` is checked against the double-submit cookie, there being no
/// session yet.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct LoginForm {
    csrf: String,
    name: String,
    password: String,
    next: Option<String>,
}

fn render_login(
    state: &WebState,
    nonce: &str,
    csrf: &str,
    next: &str,
    error: Option<&str>,
    name: &str,
) -> Result<Html<String>, WebError> {
    state.render(
        "login.html",
        minijinja::context! { nonce, csrf, next, error, name },
    )
}

pub(super) async fn login_page(
    State(state): State<WebState>,
    axum::Extension(nonce): axum::Extension<Nonce>,
    headers: HeaderMap,
    Query(q): Query<LoginQuery>,
) -> Result<Response, WebError> {
    // Keep an existing token: a second tab or a background fetch that lands here must not
    // invalidate the form already on screen.
    let csrf = cookie(&headers, &state.cookie_name(LOGIN_CSRF_COOKIE))
        .filter(|c| c.len() == 32 && c.bytes().all(|b| b.is_ascii_hexdigit()))
        .unwrap_or_else(short_token);
    let next = safe_next(q.next.as_deref());
    let page = render_login(&state, &nonce.0, &csrf, &next, None, "")?;
    let mut resp = page.into_response();
    resp.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(&state, LOGIN_CSRF_COOKIE, &csrf, 3600),
    );
    Ok(resp)
}

pub(super) async fn login(
    State(state): State<WebState>,
    axum::Extension(nonce): axum::Extension<Nonce>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    req: Request,
) -> Result<Response, WebError> {
    let form: LoginForm = read_form(req, &state).await?;
    let cookie_csrf = cookie(&headers, &state.cookie_name(LOGIN_CSRF_COOKIE));
    match cookie_csrf.as_deref() {
        Some(c) if !c.is_empty() && constant_time_eq(c.as_bytes(), form.csrf.as_bytes()) => {}
        _ => return Err(WebError::Csrf),
    }
    // Capped before it is logged or stored: a name is at most 64 characters.
    let name = capped_name(form.name.trim());
    let password = form.password.as_str();
    let next = safe_next(form.next.as_deref());
    let csrf = cookie_csrf.unwrap_or_default();
    // Each check allocates about 19 MiB: beyond the bound, refuse rather than queue.
    let Ok(_permit) = state.inner.password_checks.try_acquire() else {
        tracing::warn!(user = %name, %ip, "login refused: too many password checks at once");
        return Err(WebError::Busy {
            retry_after_secs: 1,
        });
    };
    match state.store().attempt_login(&name, password, &ip).await? {
        LoginOutcome::Ok(user) => {
            let limits = state.inner.sessions;
            let session = state.store().create_session(user.id, &ip, limits).await?;
            tracing::info!(user = %user.name, %ip, "login");
            let mut resp = see_other(&next, "/");
            let h = resp.headers_mut();
            h.append(
                header::SET_COOKIE,
                set_cookie(
                    &state,
                    SESSION_COOKIE,
                    &session,
                    limits.absolute.num_seconds(),
                ),
            );
            h.append(
                header::SET_COOKIE,
                set_cookie(&state, LOGIN_CSRF_COOKIE, "", 0),
            );
            Ok(resp)
        }
        LoginOutcome::Denied => {
            tracing::warn!(user = %name, %ip, "failed login");
            let page = render_login(
                &state,
                &nonce.0,
                &csrf,
                &next,
                Some("Wrong name or password."),
                &name,
            )?;
            Ok((axum::http::StatusCode::UNAUTHORIZED, page).into_response())
        }
        LoginOutcome::Throttled { retry_after_secs } => {
            tracing::warn!(user = %name, %ip, "login throttled");
            Err(WebError::Throttled { retry_after_secs })
        }
    }
}

pub(super) async fn logout(
    State(state): State<WebState>,
    headers: HeaderMap,
    posted: Posted<CsrfOnly>,
) -> Response {
    let _ = posted;
    if let Some(token) = cookie(&headers, &state.cookie_name(SESSION_COOKIE))
        && let Err(e) = state.store().end_session(&token).await
    {
        tracing::error!(error = %e, "cannot end session");
    }
    let mut resp = Redirect::to("/login").into_response();
    resp.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(&state, SESSION_COOKIE, "", 0),
    );
    resp
}

/// The password change form.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct PasswordForm {
    csrf: String,
    current: String,
    new: String,
    again: String,
}

csrf_form!(PasswordForm);

fn render_password(
    state: &WebState,
    user: &CurrentUser,
    flash: Option<String>,
    error: Option<&str>,
) -> Result<Html<String>, WebError> {
    state.render(
        "password.html",
        minijinja::context! {
            page => super::pages::v(super::pages::page(user, "password", flash)),
            error,
        },
    )
}

pub(super) async fn password_page(
    State(state): State<WebState>,
    user: CurrentUser,
    Query(flash): Query<super::pages::Flash>,
) -> Result<Html<String>, WebError> {
    render_password(&state, &user, flash.message(), None)
}

/// Changes the logged-in user's own password: the current one is checked like a login
/// (throttled, bounded), and every other session of the user ends.
pub(super) async fn change_password(
    State(state): State<WebState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    posted: Posted<PasswordForm>,
) -> Result<Response, WebError> {
    let user = &posted.user;
    let form = &posted.form;
    let refuse = |why: &str| -> Result<Response, WebError> {
        let page = render_password(&state, user, None, Some(why))?;
        Ok((axum::http::StatusCode::BAD_REQUEST, page).into_response())
    };
    if form.new != form.again {
        return refuse("The new passwords differ.");
    }
    if let Err(e) = crate::store::check_password(&user.user.name, &form.new) {
        return refuse(&e.to_string());
    }
    let Ok(_permit) = state.inner.password_checks.try_acquire() else {
        return Err(WebError::Busy {
            retry_after_secs: 1,
        });
    };
    match state
        .store()
        .attempt_login(&user.user.name, &form.current, &ip)
        .await?
    {
        LoginOutcome::Ok(u) if u.id == user.user.id => {}
        LoginOutcome::Ok(_) | LoginOutcome::Denied => {
            tracing::warn!(user = %user.user.name, %ip, "password change: wrong current password");
            return refuse("The current password is wrong.");
        }
        LoginOutcome::Throttled { retry_after_secs } => {
            return Err(WebError::Throttled { retry_after_secs });
        }
    }
    let keep = cookie(&headers, &state.cookie_name(SESSION_COOKIE));
    state
        .store()
        .change_password(&user.user.name, &form.new, &user.actor(), keep.as_deref())
        .await?;
    tracing::info!(user = %user.user.name, %ip, "password changed");
    Ok(see_other("/password?done=password_changed", "/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_stays_on_this_site() {
        assert_eq!(safe_next(Some("/queue?state=draft")), "/queue?state=draft");
        assert_eq!(safe_next(Some("//evil.example/")), "/");
        assert_eq!(safe_next(Some("https://evil.example/")), "/");
        assert_eq!(safe_next(Some("/\\evil.example")), "/");
        assert_eq!(safe_next(Some("/\t/evil.example/path")), "/");
        assert_eq!(safe_next(None), "/");
    }

    #[test]
    fn cookies_are_found_among_others() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; mw_session=abc; b=2"),
        );
        assert_eq!(cookie(&h, "mw_session").as_deref(), Some("abc"));
        assert_eq!(cookie(&h, "mw"), None);
    }
}
