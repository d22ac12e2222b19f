//! The review UI and its JSON API: one axum [`router`] the daemon mounts.
//!
//! Architecture: [`WebState`] holds the store, the configuration, the platforms (from the
//! loaded crawler definitions, so a new `crawlers/*.toml` needs no change here) and the
//! compiled templates.
//! `auth` owns logins, sessions, CSRF and roles; `pages` the server-rendered HTML; `api` the
//! JSON API for API tokens; `headers` the security headers every response carries. Pages work
//! without JavaScript; `static/app.js` (nonce'd) only adds keyboard shortcuts and select-all.

mod allow;
mod api;
mod auth;
mod cases;
mod error;
mod export;
mod form;
mod headers;
mod networks;
mod pages;
mod queue;
mod redirect;
#[cfg(feature = "fixtures")]
pub(crate) mod seed;
mod templates;
mod token;
mod trends;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::routing::{get, post};

use serde::Serialize;

use crate::config::Config;
use crate::platform::PlatformDef;
use crate::store::{SessionLimits, Store};

pub(crate) use error::WebError;
pub(crate) use headers::plain_security_headers;

/// What every handler shares. Cheap to clone.
#[derive(Clone)]
pub struct WebState {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    config: Config,
    /// The platforms with a loaded definition, in the definitions' order.
    platforms: Vec<Platform>,
    defs: Vec<PlatformDef>,
    templates: minijinja::Environment<'static>,
    /// Cookies get `Secure` when the UI is reached over HTTPS (`web.base_url`).
    secure_cookies: bool,
    /// Bounds the password checks running at once (`web.max_password_checks`).
    password_checks: tokio::sync::Semaphore,
    sessions: SessionLimits,
}

/// A platform as the UI offers it: the key notices carry and the definition's display name.
#[derive(Debug, Clone, Serialize)]
pub struct Platform {
    /// e.g. "taobao"
    pub key: String,
    /// e.g. "淘宝 Taobao"
    pub name: String,
}

impl WebState {
    /// Builds the state for [`router`] with the platforms of the loaded crawler definitions
    /// (`platform::load_dir`); fails only if a built-in template does not compile.
    pub fn new(store: Store, config: Config, defs: &[PlatformDef]) -> Result<WebState, WebError> {
        let secure_cookies = config.web.base_url.starts_with("https://");
        let max_checks = config.web.max_password_checks.max(1);
        let sessions = SessionLimits {
            absolute: chrono::Duration::hours(i64::from(config.web.session_hours)),
            idle: chrono::Duration::minutes(i64::from(config.web.session_idle_minutes)),
        };
        let platforms = defs
            .iter()
            .map(|d| Platform {
                key: d.platform.clone(),
                name: d.name.clone(),
            })
            .collect();
        Ok(WebState {
            inner: Arc::new(Inner {
                store,
                config,
                platforms,
                defs: defs.to_vec(),
                templates: templates::environment()?,
                secure_cookies,
                password_checks: tokio::sync::Semaphore::new(max_checks),
                sessions,
            }),
        })
    }

    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    /// The platforms the UI filters and exports by.
    pub fn platforms(&self) -> &[Platform] {
        &self.inner.platforms
    }

    /// A platform's display name, or its key.
    pub(crate) fn platform_name(&self, key: &str) -> String {
        crate::platform::display_name(&self.inner.defs, key)
    }

    /// The platform definitions, for drafting from the UI.
    pub(crate) fn definitions(&self) -> &[PlatformDef] {
        &self.inner.defs
    }
}

/// Every route of the review UI and the JSON API, with security headers on all responses.
///
/// Serve it with connection info so logins are throttled per client address:
/// `axum::serve(listener, router(state).into_make_service_with_connect_info::<SocketAddr>())`,
/// or use [`serve`].
pub(crate) fn router(state: WebState) -> Router {
    Router::new()
        .route("/", get(cases::dashboard))
        .route("/queue", get(queue::queue))
        .route("/queue/bulk", post(queue::bulk))
        .route("/notices/{id}", get(queue::notice))
        .route("/notices/{id}/transition", post(queue::transition))
        .route("/evidence/{id}", get(queue::evidence))
        .route("/evidence/{id}/raw", get(queue::evidence_raw))
        .route("/evidence/{id}/part/{seq}", get(queue::evidence_part))
        .route("/photos/{id}", get(queue::listing_photo))
        .route("/photos/reference/{id}", get(queue::reference_photo))
        .route("/cases", get(cases::cases))
        .route("/export", get(export::export))
        .route("/sellers", get(networks::sellers))
        .route("/sellers/networks/{id}", get(networks::network))
        .route("/sellers/networks/{id}/draft", post(networks::draft))
        .route("/trends/{file}", get(trends::csv))
        .route("/allow", get(allow::allow_rules))
        .route("/allow/{id}/remove", post(allow::remove_allow_rule))
        .route("/login", get(auth::login_page).post(auth::login))
        .route("/logout", post(auth::logout))
        .route(
            "/password",
            get(auth::password_page).post(auth::change_password),
        )
        .route("/brands", get(pages::brands).post(pages::import_brands))
        .route("/users", get(pages::users).post(pages::change_user))
        .route("/accounts", get(pages::accounts))
        .route("/static/{file}", get(pages::static_file))
        .route("/favicon.ico", get(pages::favicon))
        .nest("/api/v1", api::router())
        .fallback(pages::not_found)
        .layer(axum::middleware::from_fn(error::log_server_errors))
        .layer(axum::middleware::from_fn(headers::security_headers))
        .with_state(state)
}

/// Serves [`router`] on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: WebState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(
        listener,
        router(state).into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
}
