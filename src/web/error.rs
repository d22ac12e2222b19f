//! One error type for every handler: a status code and a plain message for the person,
//! the details in the log.

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};

use crate::store::{StoreError, UserError};

#[derive(Debug, thiserror::Error)]
pub enum WebError {
    /// No session (or an expired one): browsers are sent to the login page.
    #[error("login required")]
    LoginRequired { next: String },
    /// An API call without a live token.
    #[error("a valid API token is required")]
    Unauthorized,
    #[error("your role ({role}) may not do this; it needs {needs}")]
    Forbidden {
        role: &'static str,
        needs: &'static str,
    },
    #[error("the form was stale or forged (missing CSRF token); reload the page and try again")]
    Csrf,
    #[error("not found")]
    NotFound,
    #[error("{0}")]
    BadRequest(String),
    /// A request that clashes with the current state (e.g. an invalid transition).
    #[error("{0}")]
    Conflict(String),
    #[error("too many failed logins; try again in {retry_after_secs} s")]
    Throttled { retry_after_secs: i64 },
    /// Too many password checks running at once: refused before hashing.
    #[error("the server is busy checking passwords; try again in {retry_after_secs} s")]
    Busy { retry_after_secs: i64 },
    /// A stored evidence body that no longer opens: damaged or changed after capture.
    #[error(transparent)]
    Damaged(#[from] crate::seal::Damaged),
    #[error("storage error")]
    Store(#[from] StoreError),
    #[error("template error")]
    Template(#[from] minijinja::Error),
}

impl From<UserError> for WebError {
    fn from(e: UserError) -> Self {
        match e {
            UserError::Store(s) => WebError::Store(s),
            UserError::Hash(h) => WebError::BadRequest(format!("cannot hash the password: {h}")),
            UserError::NotFound(_) | UserError::NoToken(_) => WebError::NotFound,
            other => WebError::BadRequest(other.to_string()),
        }
    }
}

impl From<sqlx::Error> for WebError {
    fn from(e: sqlx::Error) -> Self {
        WebError::Store(StoreError::Query(e))
    }
}

impl WebError {
    pub fn status(&self) -> StatusCode {
        match self {
            WebError::LoginRequired { .. } => StatusCode::SEE_OTHER,
            WebError::Unauthorized => StatusCode::UNAUTHORIZED,
            WebError::Forbidden { .. } | WebError::Csrf => StatusCode::FORBIDDEN,
            WebError::NotFound => StatusCode::NOT_FOUND,
            WebError::BadRequest(_) => StatusCode::BAD_REQUEST,
            WebError::Conflict(_) => StatusCode::CONFLICT,
            WebError::Throttled { .. } => StatusCode::TOO_MANY_REQUESTS,
            WebError::Busy { .. } => StatusCode::SERVICE_UNAVAILABLE,
            WebError::Store(_) | WebError::Template(_) | WebError::Damaged(_) => {
                StatusCode::INTERNAL_SERVER_ERROR
            }
        }
    }
}

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        if let WebError::LoginRequired { next } = &self {
            let target = format!("/login?next={}", urlencode(next));
            return Redirect::to(&target).into_response();
        }
        let status = self.status();
        let logged = status == StatusCode::INTERNAL_SERVER_ERROR;
        if logged {
            tracing::error!(error = ?self, "request failed");
        }
        let message = self.to_string();
        let body = format!(
            "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{code} · markwatch</title>\
             <link rel=\"stylesheet\" href=\"/static/app.css\"></head><body><main class=\"narrow\">\
             <h1>{code}</h1><p class=\"error\">{msg}</p><p><a href=\"/\">Back to the dashboard</a></p></main></body></html>",
            code = status.as_u16(),
            msg = html_escape::encode_quoted_attribute(&message),
        );
        let mut resp = (
            status,
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            body,
        )
            .into_response();
        if let WebError::Throttled { retry_after_secs } | WebError::Busy { retry_after_secs } = self
            && let Ok(v) = HeaderValue::from_str(&retry_after_secs.to_string())
        {
            resp.headers_mut().insert(header::RETRY_AFTER, v);
        }
        if logged {
            resp.extensions_mut().insert(CauseLogged);
        }
        resp
    }
}

/// Marks a 500 whose cause was already logged at ERROR.
#[derive(Debug, Clone, Copy)]
pub(super) struct CauseLogged;

/// Logs every 500 at ERROR: those from [`WebError`] log their cause themselves; any other
/// (an extractor's or axum's own) is logged here with its body, which names the cause.
pub(super) async fn log_server_errors(req: Request, next: Next) -> Response {
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let resp = next.run(req).await;
    if resp.status() != StatusCode::INTERNAL_SERVER_ERROR
        || resp.extensions().get::<CauseLogged>().is_some()
    {
        return resp;
    }
    let (parts, body) = resp.into_parts();
    let body = axum::body::to_bytes(body, 64 * 1024)
        .await
        .unwrap_or_default();
    tracing::error!(
        %method,
        path = %path,
        cause = %String::from_utf8_lossy(&body),
        "request failed"
    );
    Response::from_parts(parts, Body::from(body))
}

pub(crate) fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A log sink the test reads back.
    #[derive(Clone, Default)]
    struct Sink(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

    impl std::io::Write for Sink {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[tokio::test]
    async fn every_500_is_logged_at_error_with_its_cause_once() {
        use axum::routing::get;
        let sink = Sink::default();
        let writer = sink.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .finish();
        let _guard = tracing::subscriber::set_default(subscriber);
        let app = axum::Router::new()
            .route(
                "/bare",
                get(|| async { (StatusCode::INTERNAL_SERVER_ERROR, "cannot frobnicate") }),
            )
            .route(
                "/ours",
                get(|| async {
                    WebError::Template(minijinja::Error::new(
                        minijinja::ErrorKind::InvalidOperation,
                        "template went wrong",
                    ))
                }),
            )
            .route("/fine", get(|| async { "ok" }))
            .layer(axum::middleware::from_fn(log_server_errors));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        for (path, status) in [("/bare", 500), ("/ours", 500), ("/fine", 200)] {
            let resp = reqwest::get(format!("http://{addr}{path}")).await.unwrap();
            assert_eq!(resp.status().as_u16(), status, "{path}");
        }
        let log = String::from_utf8(sink.0.lock().unwrap().clone()).unwrap();
        let errors: Vec<&str> = log.lines().filter(|l| l.contains("ERROR")).collect();
        assert_eq!(errors.len(), 2, "{log}");
        assert!(
            errors
                .iter()
                .any(|l| l.contains("cannot frobnicate") && l.contains("/bare")),
            "{log}"
        );
        assert!(
            errors.iter().any(|l| l.contains("template went wrong")),
            "{log}"
        );
    }

    #[tokio::test]
    async fn error_pages_escape_the_message() {
        let resp = WebError::BadRequest("bad `<script>\"x'&</script>`".to_owned()).into_response();
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
        let body = axum::body::to_bytes(resp.into_body(), 1 << 16)
            .await
            .unwrap();
        let body = std::str::from_utf8(&body).unwrap();
        assert!(
            body.contains("bad `&lt;script&gt;&quot;x&#x27;&amp;&lt;/script&gt;`"),
            "{body}"
        );
    }
}
