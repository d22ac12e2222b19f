//! Security headers on every response, and the per-request script nonce. Knows nothing of
//! logins: `auth` reads the [`Nonce`] this middleware puts in the request.

use axum::extract::Request;
use axum::http::{HeaderMap, HeaderName, HeaderValue, header};
use axum::middleware::Next;
use axum::response::Response;

/// This request's CSP nonce: the only inline or external script that runs carries it.
#[derive(Debug, Clone)]
pub(super) struct Nonce(pub String);

pub(super) async fn security_headers(mut req: Request, next: Next) -> Response {
    let nonce = super::token::short_token();
    req.extensions_mut().insert(Nonce(nonce.clone()));
    let mut resp = next.run(req).await;
    let h = resp.headers_mut();
    // Handlers serving captured pages set their own (sandboxing) policy; keep it.
    if !h.contains_key(header::CONTENT_SECURITY_POLICY) {
        let csp = format!(
            "default-src 'none'; script-src 'nonce-{nonce}'; style-src 'self'; img-src 'self' data:; \
             connect-src 'self'; form-action 'self'; frame-src 'self'; base-uri 'none'; frame-ancestors 'none'"
        );
        if let Ok(v) = HeaderValue::from_str(&csp) {
            h.insert(header::CONTENT_SECURITY_POLICY, v);
        }
    }
    common(h);
    resp
}

/// The same headers for responses that are never pages (health, metrics, the daemon's API):
/// a policy that allows nothing.
pub(crate) async fn plain_security_headers(req: Request, next: Next) -> Response {
    let mut resp = next.run(req).await;
    let h = resp.headers_mut();
    if !h.contains_key(header::CONTENT_SECURITY_POLICY) {
        h.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static("default-src 'none'; frame-ancestors 'none'"),
        );
    }
    common(h);
    resp
}

/// Every response's headers but the content security policy.
fn common(h: &mut HeaderMap) {
    if !h.contains_key(header::X_FRAME_OPTIONS) {
        h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    }
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    // Links out to listings must not tell platforms which case a reviewer was looking at.
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(
        HeaderName::from_static("cross-origin-opener-policy"),
        HeaderValue::from_static("same-origin"),
    );
    h.insert(
        HeaderName::from_static("permissions-policy"),
        HeaderValue::from_static("camera=(), microphone=(), geolocation=()"),
    );
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
}
