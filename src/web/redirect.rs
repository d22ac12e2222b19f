//! Redirects to targets that came from outside (`next=` after login, `back=` after a bulk
//! action): only to paths on this site, else to a fallback.

use axum::response::{IntoResponse, Redirect, Response};

/// `target` if every browser reads it as a path on this site: one leading `/` (not `//` or
/// `/\`), and printable ASCII only. Browsers strip tabs and newlines from URLs, so `/\t/host`
/// would become `//host`, another origin; they read `\` as `/`; control characters cannot go
/// into a `Location` header at all. No `#` either, so a query can be appended.
pub(super) fn local_path(target: &str) -> Option<&str> {
    let ok = target.starts_with('/')
        && !target[1..].starts_with('/')
        && target
            .bytes()
            .all(|b| b.is_ascii_graphic() && b != b'\\' && b != b'#');
    ok.then_some(target)
}

/// A 303 to `target` if [`local_path`] accepts it, else to `fallback`.
pub(super) fn see_other(target: &str, fallback: &'static str) -> Response {
    // Printable ASCII always makes a valid header value, so this cannot become a 500.
    Redirect::to(local_path(target).unwrap_or(fallback)).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_printable_paths_on_this_site() {
        for good in [
            "/",
            "/queue?state=draft&brand=%E8%80%90",
            "/notices/7?done=x",
        ] {
            assert_eq!(local_path(good), Some(good));
        }
        for bad in [
            "",
            "queue",
            "//evil.example/",
            "/\\evil.example",
            "/x\\y",
            "https://evil.example/",
            "/\t/evil.example/path",
            "/\n/evil.example",
            "/\r",
            "/\u{1}",
            "/\u{7f}",
            "/ x",
            "/queue?platform=jd\0x",
            "/é",
            "/a#b",
        ] {
            assert_eq!(local_path(bad), None, "{bad:?}");
        }
        let resp = see_other("/\u{1}", "/queue");
        assert_eq!(resp.status(), axum::http::StatusCode::SEE_OTHER);
        assert_eq!(resp.headers()["location"], "/queue");
    }
}
