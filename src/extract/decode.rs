//! Bytes to text: picks the page's encoding and decodes it.
//!
//! Order: a byte-order mark wins; then the Content-Type charset; then a `<meta>` charset;
//! then the definition's default. A declaration that does not fit the bytes (a lying header
//! or meta tag) loses to a candidate that decodes cleanly. GBK is decoded as GB18030.

use encoding_rs::{DecoderResult, Encoding, GB18030, UTF_8};
use regex::bytes::Regex;
use serde::Serialize;
use std::sync::LazyLock;

/// Where the encoding used came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CharsetSource {
    Bom,
    Header,
    Meta,
    Default,
    /// No declaration fitted the bytes; another candidate decoded them cleanly.
    Sniffed,
}

/// A decoded page.
#[derive(Debug, Clone)]
pub struct Decoded {
    pub text: String,
    /// WHATWG name of the encoding used, e.g. "UTF-8", "gb18030".
    pub encoding_used: &'static str,
    pub source: CharsetSource,
    /// The encoding the header or meta tag declared, if any.
    pub declared: Option<&'static str>,
    /// Whether malformed sequences were replaced with U+FFFD.
    pub had_errors: bool,
}

static META_CHARSET: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r#"(?i-u)<meta\b[^>]*?\bcharset\s*=\s*["']?\s*([a-z0-9_\-:.]+)"#)
        .expect("static regex")
});

/// How far into the page to look for a `<meta>` charset (browsers look at 1024 bytes; real
/// pages put scripts first, so look further).
const META_SCAN: usize = 8192;

/// Encoding named by a Content-Type header's `charset` parameter.
pub(crate) fn charset_from_content_type(content_type: &str) -> Option<&'static Encoding> {
    content_type.split(';').skip(1).find_map(|param| {
        let (k, v) = param.split_once('=')?;
        if !k.trim().eq_ignore_ascii_case("charset") {
            return None;
        }
        Encoding::for_label(v.trim().trim_matches(['"', '\'']).as_bytes())
    })
}

/// Encoding named by a `<meta charset>` or `<meta http-equiv content="...charset=">` tag.
pub(crate) fn charset_from_meta(bytes: &[u8]) -> Option<&'static Encoding> {
    let head = &bytes[..bytes.len().min(META_SCAN)];
    let caps = META_CHARSET.captures(head)?;
    Encoding::for_label(caps.get(1)?.as_bytes())
}

/// GBK and GB2312 pages routinely hold GB18030-only characters; decode all three as GB18030.
fn widen(enc: &'static Encoding) -> &'static Encoding {
    if enc == encoding_rs::GBK {
        GB18030
    } else {
        enc
    }
}

/// Whether `bytes` decode without malformed sequences. A sequence cut off at the very end
/// (a truncated page) does not count against the encoding.
fn decodes_cleanly(enc: &'static Encoding, bytes: &[u8]) -> bool {
    if enc == UTF_8 {
        return match std::str::from_utf8(bytes) {
            Ok(_) => true,
            Err(e) => e.error_len().is_none(),
        };
    }
    let mut decoder = enc.new_decoder_without_bom_handling();
    let mut out = String::with_capacity(
        decoder
            .max_utf8_buffer_length_without_replacement(bytes.len())
            .unwrap_or(bytes.len() * 3),
    );
    let (result, _) = decoder.decode_to_string_without_replacement(bytes, &mut out, false);
    !matches!(result, DecoderResult::Malformed(..))
}

fn has_non_ascii(bytes: &[u8]) -> bool {
    !bytes.is_ascii()
}

/// Decodes a fetched page. `default_encoding` is the definition's label (unknown: UTF-8).
pub fn decode_page(bytes: &[u8], content_type: Option<&str>, default_encoding: &str) -> Decoded {
    if let Some((enc, bom_len)) = Encoding::for_bom(bytes) {
        let (text, had_errors) = enc.decode_without_bom_handling(&bytes[bom_len..]);
        return Decoded {
            text: text.into_owned(),
            encoding_used: enc.name(),
            source: CharsetSource::Bom,
            declared: content_type
                .and_then(charset_from_content_type)
                .or_else(|| charset_from_meta(bytes))
                .map(Encoding::name),
            had_errors,
        };
    }
    let header = content_type.and_then(charset_from_content_type).map(widen);
    let meta = charset_from_meta(bytes).map(widen);
    let default = widen(Encoding::for_label(default_encoding.as_bytes()).unwrap_or(UTF_8));
    let declared = header.or(meta);
    let (first, first_source) = match (header, meta) {
        (Some(h), _) => (h, CharsetSource::Header),
        (None, Some(m)) => (m, CharsetSource::Meta),
        (None, None) => (default, CharsetSource::Default),
    };

    // Valid UTF-8 with non-ASCII text is almost never legacy-encoded text by accident, so a
    // legacy declaration over such bytes is the lie.
    let utf8_ok = decodes_cleanly(UTF_8, bytes);
    if !(first != UTF_8 && utf8_ok && has_non_ascii(bytes)) {
        // The common case, a declaration that fits, takes a single decoding pass.
        let (text, had_errors) = first.decode_without_bom_handling(bytes);
        if !had_errors {
            return Decoded {
                text: text.into_owned(),
                encoding_used: first.name(),
                source: first_source,
                declared: declared.map(Encoding::name),
                had_errors,
            };
        }
    }
    let pick = if first != UTF_8 && utf8_ok && has_non_ascii(bytes) {
        Some((UTF_8, CharsetSource::Sniffed))
    } else if decodes_cleanly(first, bytes) {
        Some((first, first_source))
    } else {
        let candidates = [
            (meta, CharsetSource::Meta),
            (Some(default), CharsetSource::Default),
            (Some(UTF_8), CharsetSource::Sniffed),
            (Some(GB18030), CharsetSource::Sniffed),
        ];
        candidates.into_iter().find_map(|(enc, source)| {
            let enc = enc?;
            (enc != first && decodes_cleanly(enc, bytes)).then_some((enc, source))
        })
    };
    let (enc, source) = pick.unwrap_or((first, first_source));
    let (text, had_errors) = enc.decode_without_bom_handling(bytes);
    Decoded {
        text: text.into_owned(),
        encoding_used: enc.name(),
        source,
        declared: declared.map(Encoding::name),
        had_errors,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TITLE: &str = "耐克 Nike Air Max 官方旗舰店 ¥1,299.00";

    fn page(charset: &str) -> String {
        format!("<html><head><meta charset=\"{charset}\"></head><body>{TITLE}</body></html>")
    }

    fn gbk(text: &str) -> Vec<u8> {
        GB18030.encode(text).0.into_owned()
    }

    #[test]
    fn header_charset_decodes_gbk() {
        let d = decode_page(&gbk(&page("gbk")), Some("text/html; charset=GBK"), "utf-8");
        assert!(d.text.contains(TITLE));
        assert_eq!(d.encoding_used, "gb18030");
        assert_eq!(d.source, CharsetSource::Header);
    }

    #[test]
    fn meta_charset_is_used_without_header() {
        let d = decode_page(&gbk(&page("gb2312")), Some("text/html"), "utf-8");
        assert!(d.text.contains(TITLE));
        assert_eq!(d.source, CharsetSource::Meta);
    }

    #[test]
    fn definition_default_applies_when_nothing_is_declared() {
        let bytes = gbk(&format!("<html><body>{TITLE}</body></html>"));
        let d = decode_page(&bytes, None, "gbk");
        assert!(d.text.contains(TITLE));
        assert_eq!(d.source, CharsetSource::Default);
    }

    #[test]
    fn lying_utf8_declaration_over_gbk_bytes_falls_back() {
        let d = decode_page(
            &gbk(&page("utf-8")),
            Some("text/html; charset=utf-8"),
            "utf-8",
        );
        assert!(d.text.contains(TITLE), "{}", d.text);
        assert!(!d.had_errors);
        assert_eq!(d.encoding_used, "gb18030");
    }

    #[test]
    fn lying_gbk_declaration_over_utf8_bytes_falls_back() {
        let bytes = page("gbk").into_bytes();
        let d = decode_page(&bytes, Some("text/html; charset=gbk"), "gbk");
        assert!(d.text.contains(TITLE));
        assert_eq!(d.encoding_used, "UTF-8");
        assert_eq!(d.source, CharsetSource::Sniffed);
    }

    #[test]
    fn bom_wins_over_header() {
        let mut bytes = vec![0xEF, 0xBB, 0xBF];
        bytes.extend_from_slice(page("gbk").as_bytes());
        let d = decode_page(&bytes, Some("text/html; charset=gbk"), "gbk");
        assert!(d.text.starts_with("<html>"));
        assert!(d.text.contains(TITLE));
        assert_eq!(d.source, CharsetSource::Bom);
    }

    #[test]
    fn truncated_multibyte_tail_does_not_flip_the_encoding() {
        let mut bytes = page("utf-8").into_bytes();
        bytes.truncate(bytes.len() - 40);
        bytes.extend_from_slice(&"耐".as_bytes()[..2]);
        let d = decode_page(&bytes, Some("text/html; charset=utf-8"), "utf-8");
        assert_eq!(d.encoding_used, "UTF-8");
        assert!(d.text.contains("耐克 Nike"));
    }
}
