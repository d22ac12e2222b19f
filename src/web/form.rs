//! Posted `application/x-www-form-urlencoded` bodies, deserialized into a struct per form by
//! axum-extra's `Form` (serde_html_form: a repeated key such as a bulk selection's `id` fills a
//! `Vec`). [`read_form`] is the one way handlers read a body; `auth::Posted` adds the CSRF
//! check for logged-in users.

use axum::body::Body;
use axum::extract::{FromRequest, Request};
use axum_extra::extract::Form;
use serde::de::DeserializeOwned;

use super::WebError;
use crate::model::RejectReason;
use crate::store::{AllowRequest, Feedback};

/// Largest form accepted: a bulk selection of a full queue page and a note fit easily.
const MAX_FORM_BYTES: usize = 256 * 1024;

/// A form a logged-in user posts: it echoes the session's CSRF token in its `csrf` field.
pub(super) trait CsrfForm {
    /// The `csrf` field as sent (empty if it was missing).
    fn csrf(&self) -> &str;
}

/// Implements [`CsrfForm`] for form structs with a `csrf: String` field.
macro_rules! csrf_form {
    ($($form:ty),+) => {
        $(impl $crate::web::form::CsrfForm for $form {
            fn csrf(&self) -> &str {
                &self.csrf
            }
        })+
    };
}
pub(crate) use csrf_form;

/// Reads a form of type `T` from `req`: at most [`MAX_FORM_BYTES`], and only a urlencoded form.
pub(super) async fn read_form<T: DeserializeOwned, S: Send + Sync>(
    req: Request,
    state: &S,
) -> Result<T, WebError> {
    let (parts, body) = req.into_parts();
    let bytes = axum::body::to_bytes(body, MAX_FORM_BYTES)
        .await
        .map_err(|_| WebError::BadRequest("form too large".to_owned()))?;
    let req = Request::from_parts(parts, Body::from(bytes));
    match Form::<T>::from_request(req, state).await {
        Ok(Form(form)) => Ok(form),
        Err(e) => Err(WebError::BadRequest(e.body_text())),
    }
}

/// A text field, trimmed, if not empty.
pub(super) fn text(field: &Option<String>) -> Option<String> {
    field
        .as_deref()
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_owned)
}

/// A rejection's feedback fields: `why` (a reason's name, `-` or `_` between words), the
/// shops to allow, and title words to allow. Empty fields ask for nothing.
pub(super) fn feedback(
    why: &Option<String>,
    allow_seller: &[String],
    allow_title: &Option<String>,
) -> Result<Feedback, WebError> {
    let reason = match text(why) {
        None => None,
        Some(w) => Some(w.replace('-', "_").parse::<RejectReason>().map_err(|_| {
            WebError::BadRequest(format!(
                "field `why`: `{w}` is not authorised_seller, genuine_goods or not_our_goods"
            ))
        })?),
    };
    let mut allow: Vec<AllowRequest> = allow_seller
        .iter()
        .filter(|s| !s.trim().is_empty())
        .map(|s| AllowRequest::Seller(Some(s.trim().to_owned())))
        .collect();
    if let Some(words) = text(allow_title) {
        allow.push(AllowRequest::Title(words));
    }
    Ok(Feedback { reason, allow })
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::header;
    use serde::Deserialize;

    #[derive(Debug, Default, Deserialize)]
    #[serde(default)]
    struct Bulk {
        id: Vec<i64>,
        note: Option<String>,
    }

    fn post(body: &'static str, ctype: &str) -> Request {
        Request::post("/")
            .header(header::CONTENT_TYPE, ctype)
            .body(Body::from(body))
            .unwrap()
    }

    const FORM: &str = "application/x-www-form-urlencoded";

    #[tokio::test]
    async fn repeated_keys_and_bad_ids() {
        let f: Bulk = read_form(post("id=1&id=2&note=a+b%26c&csrf=x", FORM), &())
            .await
            .unwrap();
        assert_eq!(f.id, vec![1, 2]);
        assert_eq!(f.note.as_deref(), Some("a b&c"));
        let one: Bulk = read_form(post("id=7", FORM), &()).await.unwrap();
        assert_eq!(one.id, vec![7]);
        let none: Bulk = read_form(post("note=+", FORM), &()).await.unwrap();
        assert!(none.id.is_empty());
        assert_eq!(text(&none.note), None);
        let bad = read_form::<Bulk, _>(post("id=1&id=x", FORM), &()).await;
        assert!(bad.unwrap_err().to_string().contains("id"));
        let json = read_form::<Bulk, _>(post("{}", "application/json"), &()).await;
        assert!(matches!(json, Err(WebError::BadRequest(_))));
    }
}
