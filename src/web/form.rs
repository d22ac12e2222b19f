//! Posted `application/x-www-form-urlencoded` bodies, with repeated keys (bulk selections).

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};

use super::WebError;

/// Largest form accepted: a bulk selection of a full queue page and a note fit easily.
const MAX_FORM_BYTES: usize = 256 * 1024;

#[derive(Debug, Clone, Default)]
pub struct FormFields(pub Vec<(String, String)>);

impl FormFields {
    pub fn parse(body: &[u8]) -> FormFields {
        FormFields(
            url::form_urlencoded::parse(body)
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        )
    }

    /// The first value for `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// The first value for `key`, trimmed, if not empty.
    pub fn text(&self, key: &str) -> Option<String> {
        self.get(key)
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
    }

    /// Every value for `key`.
    pub fn all(&self, key: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// Every value for `key` that is an id; anything else is a bad request naming the field.
    pub fn ids(&self, key: &str) -> Result<Vec<i64>, WebError> {
        self.all(key)
            .into_iter()
            .map(|v| {
                v.parse()
                    .map_err(|_| WebError::BadRequest(format!("field `{key}`: `{v}` is not an id")))
            })
            .collect()
    }
}

impl<S: Send + Sync> FromRequest<S> for FormFields {
    type Rejection = WebError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let ctype = req
            .headers()
            .get(axum::http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if !ctype.starts_with("application/x-www-form-urlencoded") {
            return Err(WebError::BadRequest(
                "expected a form (application/x-www-form-urlencoded)".to_owned(),
            ));
        }
        let body = Bytes::from_request(req, state)
            .await
            .map_err(|e| WebError::BadRequest(e.to_string()))?;
        if body.len() > MAX_FORM_BYTES {
            return Err(WebError::BadRequest("form too large".to_owned()));
        }
        Ok(FormFields::parse(&body))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_keys_and_bad_ids() {
        let f = FormFields::parse(b"id=1&id=2&note=a+b%26c&csrf=x");
        assert_eq!(f.ids("id").unwrap(), vec![1, 2]);
        assert_eq!(f.get("note"), Some("a b&c"));
        let bad = FormFields::parse(b"id=1&id=x");
        assert!(bad.ids("id").unwrap_err().to_string().contains("`x`"));
    }
}
