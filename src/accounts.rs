//! Platform accounts: reading exported browser cookies (Netscape `cookies.txt` or an exporter's
//! JSON), proxies, and storing both sealed under the secret key.
//!
//! Cookies for domains that are not the platform's (by the registrable domain of its
//! definition's search and item URLs) are left out, and named in the import's warnings: browser
//! exports often carry a few third-party cookies, and they have no business going to the
//! platform. A file with no cookie for the platform is refused.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::platform::PlatformDef;
use crate::secrets::{SecretError, SecretKey};
use crate::store::{AccountState, NewAccount, SaveOutcome, Store, StoreError};

/// Larger cookie files are refused: a browser's whole jar is far smaller.
const MAX_COOKIE_FILE: u64 = 4 << 20;
const MAX_NAME_CHARS: usize = 64;
const KEY_CHECK_CONTEXT: &str = "markwatch secret key check";
const KEY_CHECK_PLAINTEXT: &[u8] = b"markwatch";

/// A cookie from an export. `Debug` never shows its value.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct Cookie {
    pub domain: String,
    /// Sent to subdomains too (Netscape's second field; JSON's `!hostOnly`).
    pub include_subdomains: bool,
    pub path: String,
    pub secure: bool,
    pub http_only: bool,
    /// Unix seconds; None for a session cookie.
    pub expires: Option<i64>,
    pub name: String,
    pub value: String,
}

impl fmt::Debug for Cookie {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cookie")
            .field("domain", &self.domain)
            .field("path", &self.path)
            .field("name", &self.name)
            .field("value", &"<redacted>")
            .finish_non_exhaustive()
    }
}

/// A cookie file that cannot be read; nothing of it is stored.
#[derive(Debug, thiserror::Error)]
pub enum CookieFileError {
    #[error("cannot read {}: {source}", file.display())]
    Io {
        file: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: larger than {} bytes; is it a cookie export?", file.display(), MAX_COOKIE_FILE)]
    TooLarge { file: PathBuf },
    #[error("{}, line {line}: {message}", file.display())]
    Line {
        file: PathBuf,
        line: usize,
        message: String,
    },
    #[error("{}: not valid JSON: {message}", file.display())]
    Json { file: PathBuf, message: String },
    #[error("{}, entry {index} (counting from 0): {message}", file.display())]
    Entry {
        file: PathBuf,
        index: usize,
        message: String,
    },
    #[error("{}: no cookies in it", file.display())]
    Empty { file: PathBuf },
    #[error(
        "{}: no cookie for {platform} (its domains: {}); cookies found for: {}",
        file.display(), platform_domains.join(", "), found.join(", ")
    )]
    NoneForPlatform {
        file: PathBuf,
        platform: String,
        platform_domains: Vec<String>,
        found: Vec<String>,
    },
}

/// Reads a Netscape `cookies.txt` or a JSON export (an array of cookie objects, or an object
/// with a `cookies` array), told apart by the first non-blank character.
pub fn read_cookie_file(file: &Path) -> Result<Vec<Cookie>, CookieFileError> {
    let io = |source| CookieFileError::Io {
        file: file.to_owned(),
        source,
    };
    if std::fs::metadata(file).map_err(io)?.len() > MAX_COOKIE_FILE {
        return Err(CookieFileError::TooLarge {
            file: file.to_owned(),
        });
    }
    let bytes = std::fs::read(file).map_err(io)?;
    let text = String::from_utf8(bytes).map_err(|e| {
        let line = 1 + e.as_bytes()[..e.utf8_error().valid_up_to()]
            .iter()
            .filter(|&&b| b == b'\n')
            .count();
        CookieFileError::Line {
            file: file.to_owned(),
            line,
            message: "not UTF-8 text".to_owned(),
        }
    })?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
    let cookies = match text.trim_start().chars().next() {
        Some('[' | '{') => parse_json(file, text)?,
        _ => parse_netscape(file, text)?,
    };
    if cookies.is_empty() {
        return Err(CookieFileError::Empty {
            file: file.to_owned(),
        });
    }
    Ok(cookies)
}

fn parse_netscape(file: &Path, text: &str) -> Result<Vec<Cookie>, CookieFileError> {
    let mut cookies = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let bad = |message: String| CookieFileError::Line {
            file: file.to_owned(),
            line: i + 1,
            message,
        };
        let line = raw.strip_suffix('\r').unwrap_or(raw);
        let (line, http_only) = match line.strip_prefix("#HttpOnly_") {
            Some(rest) => (rest, true),
            None => (line, false),
        };
        if line.trim().is_empty() || (!http_only && line.starts_with('#')) {
            continue;
        }
        let fields: Vec<&str> = line.split('\t').collect();
        let [domain, subdomains, path, secure, expires, name, value] = fields[..] else {
            return Err(bad(format!(
                "expected 7 tab-separated fields (domain, include subdomains, path, secure, \
                 expires, name, value), found {}",
                fields.len()
            )));
        };
        let flag = |field: &str, what: &str| match field {
            "TRUE" => Ok(true),
            "FALSE" => Ok(false),
            _ => Err(bad(format!("{what} must be TRUE or FALSE"))),
        };
        let expires: i64 = expires
            .trim()
            .parse()
            .map_err(|_| bad("expires must be a whole number of seconds".to_owned()))?;
        cookies.push(checked(
            Cookie {
                domain: domain.to_owned(),
                include_subdomains: flag(subdomains, "the include-subdomains field")?,
                path: path.to_owned(),
                secure: flag(secure, "the secure field")?,
                http_only,
                expires: (expires > 0).then_some(expires),
                name: name.to_owned(),
                value: value.to_owned(),
            },
            bad,
        )?);
    }
    Ok(cookies)
}

/// One cookie as browser exporters write it (EditThisCookie, Cookie-Editor, Playwright's
/// storage state); unknown keys such as `sameSite` or `storeId` are ignored.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct JsonCookie {
    name: String,
    value: String,
    domain: String,
    #[serde(default)]
    path: Option<String>,
    #[serde(default)]
    secure: bool,
    #[serde(default)]
    http_only: bool,
    #[serde(default)]
    host_only: Option<bool>,
    #[serde(default)]
    session: bool,
    #[serde(default)]
    expiration_date: Option<f64>,
    #[serde(default)]
    expires: Option<f64>,
}

fn parse_json(file: &Path, text: &str) -> Result<Vec<Cookie>, CookieFileError> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Export {
        Array(Vec<serde_json::Value>),
        Object { cookies: Vec<serde_json::Value> },
    }
    let export: Export = serde_json::from_str(text).map_err(|e| CookieFileError::Json {
        file: file.to_owned(),
        message: if e.is_data() {
            "expected an array of cookie objects, or an object with a `cookies` array".to_owned()
        } else {
            e.to_string()
        },
    })?;
    let (Export::Array(entries) | Export::Object { cookies: entries }) = export;
    entries
        .into_iter()
        .enumerate()
        .map(|(index, entry)| {
            let bad = |message: String| CookieFileError::Entry {
                file: file.to_owned(),
                index,
                message,
            };
            let c: JsonCookie = serde_json::from_value(entry).map_err(|e| bad(e.to_string()))?;
            let expires = if c.session {
                None
            } else {
                match c.expiration_date.or(c.expires) {
                    Some(t) if !t.is_finite() => return Err(bad("expiry is not a number".into())),
                    // Playwright writes -1 for a session cookie.
                    Some(t) if t > 0.0 => Some(t as i64),
                    _ => None,
                }
            };
            let include_subdomains = c.host_only.map_or(c.domain.starts_with('.'), |h| !h);
            checked(
                Cookie {
                    domain: c.domain,
                    include_subdomains,
                    path: c.path.unwrap_or_else(|| "/".to_owned()),
                    secure: c.secure,
                    http_only: c.http_only,
                    expires,
                    name: c.name,
                    value: c.value,
                },
                bad,
            )
        })
        .collect()
}

/// Refuses a cookie no HTTP client could send.
fn checked(
    cookie: Cookie,
    bad: impl Fn(String) -> CookieFileError,
) -> Result<Cookie, CookieFileError> {
    let domain = cookie.domain.trim_start_matches('.');
    if domain.is_empty()
        || !domain
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-.".contains(c))
    {
        return Err(bad("domain must be a host name".to_owned()));
    }
    if cookie.name.is_empty() {
        return Err(bad("name must not be empty".to_owned()));
    }
    let illegal = |s: &str| s.chars().any(|c| c.is_control() || c == ';');
    if illegal(&cookie.name) || cookie.name.contains('=') || illegal(&cookie.value) {
        return Err(bad(
            "name or value holds a control character, `;` or (in the name) `=`".to_owned(),
        ));
    }
    if !cookie.path.starts_with('/') {
        return Err(bad("path must start with `/`".to_owned()));
    }
    Ok(cookie)
}

/// The registrable domains a platform's cookies may belong to: those of its definition's URLs
/// (`s.taobao.com` → `taobao.com`, `search.jd.com` → `jd.com`).
pub fn platform_domains(def: &PlatformDef) -> Vec<String> {
    let mut domains: Vec<String> = def
        .urls
        .search
        .iter()
        .chain(std::iter::once(&def.urls.item))
        .filter_map(|u| url::Url::parse(&u.replace(['{', '}'], "")).ok())
        .filter_map(|u| u.host_str().map(registrable))
        .collect();
    domains.sort();
    domains.dedup();
    domains
}

/// The last two labels of `host`, or three under a two-letter country's `com`/`net`/`org`/...
fn registrable(host: &str) -> String {
    let labels: Vec<&str> = host.trim_end_matches('.').split('.').collect();
    let n = labels.len();
    let take = if n >= 3
        && labels[n - 1].len() == 2
        && matches!(labels[n - 2], "com" | "net" | "org" | "gov" | "edu" | "co")
    {
        3
    } else {
        2
    };
    labels[n.saturating_sub(take)..]
        .join(".")
        .to_ascii_lowercase()
}

/// [`platform_domains`], plus the host of a `base_url` the config points the platform at (a
/// fixture server or local mirror, often an IP, taken whole: its cookies are set there). Real
/// hosts are still filtered by their registrable domains.
pub(crate) fn platform_domains_with_base(
    def: &PlatformDef,
    base: Option<&url::Url>,
) -> Vec<String> {
    let mut domains = platform_domains(def);
    if let Some(host) = base.and_then(url::Url::host_str) {
        domains.push(host.to_ascii_lowercase());
        domains.sort();
        domains.dedup();
    }
    domains
}

pub(crate) fn belongs(cookie_domain: &str, domains: &[String]) -> bool {
    let d = cookie_domain.trim_start_matches('.').to_ascii_lowercase();
    domains
        .iter()
        .any(|base| d == *base || d.ends_with(&format!(".{base}")))
}

/// A platform's cookies from an export, and the domains of those left out.
#[derive(Debug)]
pub struct PlatformCookies {
    pub cookies: Vec<Cookie>,
    /// Domains whose cookies were left out, each once, sorted.
    pub foreign_domains: Vec<String>,
    pub foreign_count: usize,
}

/// Keeps the cookies for `def`'s domains; refuses a file with none.
pub fn cookies_for_platform(
    file: &Path,
    def: &PlatformDef,
    cookies: Vec<Cookie>,
) -> Result<PlatformCookies, CookieFileError> {
    cookies_for_platform_at(file, def, None, cookies)
}

/// [`cookies_for_platform`] for a platform the config points at `base` (its `base_url`): the
/// base's host counts as the platform's too.
pub fn cookies_for_platform_at(
    file: &Path,
    def: &PlatformDef,
    base: Option<&url::Url>,
    cookies: Vec<Cookie>,
) -> Result<PlatformCookies, CookieFileError> {
    let domains = platform_domains_with_base(def, base);
    let (mine, foreign): (Vec<Cookie>, Vec<Cookie>) = cookies
        .into_iter()
        .partition(|c| belongs(&c.domain, &domains));
    let mut foreign_domains: Vec<String> = foreign.iter().map(|c| c.domain.clone()).collect();
    foreign_domains.sort();
    foreign_domains.dedup();
    if mine.is_empty() {
        return Err(CookieFileError::NoneForPlatform {
            file: file.to_owned(),
            platform: def.platform.clone(),
            platform_domains: domains,
            found: foreign_domains,
        });
    }
    Ok(PlatformCookies {
        cookies: mine,
        foreign_count: foreign.len(),
        foreign_domains,
    })
}

/// An account's proxy. `Debug` and `Display` show `scheme://host:port` only; the whole URL,
/// credentials included, is sealed at rest.
#[derive(Clone, PartialEq)]
pub struct ProxyUrl(url::Url);

impl fmt::Debug for ProxyUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ProxyUrl({})", self.display_host())
    }
}

impl fmt::Display for ProxyUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.display_host())
    }
}

impl ProxyUrl {
    /// An `http://`, `https://`, `socks5://` or `socks5h://` URL with a host, and nothing after
    /// the port. Errors never repeat the URL (it may hold a password).
    pub fn parse(text: &str) -> Result<ProxyUrl, AccountError> {
        let bad = |why: &str| AccountError::BadProxy(why.to_owned());
        let url = url::Url::parse(text).map_err(|e| AccountError::BadProxy(e.to_string()))?;
        if !matches!(url.scheme(), "http" | "https" | "socks5" | "socks5h") {
            return Err(bad("the scheme must be http, https, socks5 or socks5h"));
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err(bad("no host"));
        }
        if !matches!(url.path(), "" | "/") || url.query().is_some() || url.fragment().is_some() {
            return Err(bad("nothing may follow the host and port"));
        }
        if url.port_or_known_default().is_none() {
            return Err(bad("a socks5 proxy needs a port"));
        }
        Ok(ProxyUrl(url))
    }

    /// The user name and password, decoded, when the URL has them (for a browser, which takes
    /// them apart from its proxy flag).
    pub(crate) fn credentials(&self) -> Option<(String, String)> {
        // Userinfo is percent-encoded (a `+` is a plus, not a space).
        let decode = |s: &str| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8_lossy()
                .into_owned()
        };
        let user = self.0.username();
        (!user.is_empty()).then(|| (decode(user), decode(self.0.password().unwrap_or(""))))
    }

    pub(crate) fn is_socks(&self) -> bool {
        self.0.scheme().starts_with("socks")
    }

    /// The whole URL, credentials included: for the HTTP client only, never to show.
    pub(crate) fn url(&self) -> &str {
        self.0.as_str()
    }

    /// `scheme://host:port`, without credentials: what a browser's `--proxy-server` takes.
    pub(crate) fn server(&self) -> String {
        self.display_host()
    }

    fn display_host(&self) -> String {
        let host = self.0.host_str().unwrap_or_default();
        match self.0.port_or_known_default() {
            Some(port) => format!("{}://{host}:{port}", self.0.scheme()),
            None => format!("{}://{host}", self.0.scheme()),
        }
    }
}

/// An account's own pace; unset parts use the platform's.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct AccountPace {
    pub requests_per_second: Option<f64>,
    pub concurrency: Option<u32>,
}

#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    #[error("unknown platform `{platform}`; the definitions have: {known}")]
    UnknownPlatform { platform: String, known: String },
    #[error("account name must be 1 to {MAX_NAME_CHARS} characters, with no control characters")]
    BadName,
    #[error("bad proxy URL: {0}")]
    BadProxy(String),
    #[error("--rps must be a number above 0, and --concurrency at least 1")]
    BadPace,
    #[error(transparent)]
    CookieFile(#[from] CookieFileError),
    #[error(transparent)]
    Secret(#[from] SecretError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl AccountError {
    /// Whether the user's input is at fault (rather than the machine).
    pub fn is_bad_input(&self) -> bool {
        match self {
            AccountError::UnknownPlatform { .. }
            | AccountError::BadName
            | AccountError::BadProxy(_)
            | AccountError::BadPace
            | AccountError::CookieFile(_) => true,
            AccountError::Secret(e) => !matches!(e, SecretError::Io { .. }),
            AccountError::Store(_) => false,
        }
    }
}

/// Stores an account's cookies, proxy and pace, sealed under `key`, replacing the session of an
/// account with the same platform and name. A key other than the one this database's secrets
/// were sealed under is refused before anything is written.
pub async fn import_account(
    store: &Store,
    key: &SecretKey,
    platform: &str,
    name: &str,
    cookies: &[Cookie],
    proxy: Option<&ProxyUrl>,
    pace: AccountPace,
) -> Result<SaveOutcome, AccountError> {
    if name.is_empty()
        || name.chars().count() > MAX_NAME_CHARS
        || name.chars().any(char::is_control)
    {
        return Err(AccountError::BadName);
    }
    if pace
        .requests_per_second
        .is_some_and(|r| !(r > 0.0 && r.is_finite()))
        || pace.concurrency == Some(0)
    {
        return Err(AccountError::BadPace);
    }
    let check = match store.secret_key_check().await? {
        Some(sealed) => {
            key.open(KEY_CHECK_CONTEXT, &sealed, "this database's secrets")?;
            sealed
        }
        None => key.seal(KEY_CHECK_CONTEXT, KEY_CHECK_PLAINTEXT),
    };
    let cookie_json = serde_json::to_vec(cookies).expect("cookies serialise");
    let account = NewAccount {
        platform,
        name,
        cookies_sealed: key.seal(&secret_context("cookies", platform, name), &cookie_json),
        cookie_count: cookies.len(),
        proxy_display: proxy.map(ProxyUrl::display_host),
        proxy_sealed: proxy.map(|p| {
            key.seal(
                &secret_context("proxy", platform, name),
                p.0.as_str().as_bytes(),
            )
        }),
        requests_per_second: pace.requests_per_second,
        concurrency: pace.concurrency,
    };
    Ok(store.save_account(&account, &check).await?)
}

/// An account opened for use: its session and proxy unsealed. `Debug` shows neither.
#[derive(Clone)]
pub struct OpenedAccount {
    pub id: i64,
    pub platform: String,
    pub name: String,
    pub state: AccountState,
    /// For `cooling`: when it may be used again.
    pub state_until: Option<String>,
    /// For `expired` and `challenged`: the page that showed it (a person opens it to resume).
    pub state_url: Option<String>,
    pub cookies: Vec<Cookie>,
    pub proxy: Option<ProxyUrl>,
    pub pace: AccountPace,
}

impl fmt::Debug for OpenedAccount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpenedAccount")
            .field("platform", &self.platform)
            .field("name", &self.name)
            .field("state", &self.state)
            .field("cookies", &self.cookies.len())
            .field("proxy", &self.proxy)
            .finish_non_exhaustive()
    }
}

/// `platform`'s accounts (only `name`'s when given), their secrets opened with `key`.
pub async fn open_accounts(
    store: &Store,
    key: &SecretKey,
    platform: &str,
    name: Option<&str>,
) -> Result<Vec<OpenedAccount>, AccountError> {
    let rows = store.sealed_accounts(platform, name).await?;
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        let who = format!("the cookies of {platform} account {}", row.name);
        let plain = key.open(
            &secret_context("cookies", platform, &row.name),
            &row.cookies_sealed,
            &who,
        )?;
        let cookies: Vec<Cookie> =
            serde_json::from_slice(&plain).map_err(|_| StoreError::Corrupt {
                table: "accounts",
                column: "cookies_sealed",
                value: row.name.clone(),
            })?;
        let proxy = match &row.proxy_sealed {
            Some(sealed) => {
                let who = format!("the proxy of {platform} account {}", row.name);
                let plain =
                    key.open(&secret_context("proxy", platform, &row.name), sealed, &who)?;
                let text = String::from_utf8(plain).map_err(|_| StoreError::Corrupt {
                    table: "accounts",
                    column: "proxy_sealed",
                    value: row.name.clone(),
                })?;
                Some(ProxyUrl::parse(&text)?)
            }
            None => None,
        };
        let state = row.state.parse().map_err(|_| StoreError::Corrupt {
            table: "accounts",
            column: "state",
            value: row.state.clone(),
        })?;
        out.push(OpenedAccount {
            id: row.id,
            platform: row.platform,
            name: row.name,
            state,
            state_until: row.state_until,
            state_url: row.state_url,
            cookies,
            proxy,
            pace: AccountPace {
                requests_per_second: row.requests_per_second,
                concurrency: row.concurrency.and_then(|c| u32::try_from(c).ok()),
            },
        });
    }
    Ok(out)
}

/// Associated data for a sealed value: what it is and whose, so it opens nowhere else.
fn secret_context(what: &str, platform: &str, name: &str) -> String {
    format!("markwatch account {what}\0{platform}\0{name}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(name: &str, text: &str) -> Result<Vec<Cookie>, CookieFileError> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        read_cookie_file(&path)
    }

    #[test]
    fn netscape_with_comments_and_http_only() {
        let cookies = parse(
            "c.txt",
            "# Netscape HTTP Cookie File\n\n.taobao.com\tTRUE\t/\tTRUE\t1900000000\t_m_h5_tk\tabc_123\r\n\
             #HttpOnly_.taobao.com\tTRUE\t/\tFALSE\t0\tcookie2\tsecretvalue\n",
        )
        .unwrap();
        assert_eq!(cookies.len(), 2);
        assert_eq!(cookies[0].value, "abc_123");
        assert_eq!(cookies[0].expires, Some(1_900_000_000));
        assert!(cookies[1].http_only && cookies[1].expires.is_none());
        assert!(!format!("{:?}", cookies[1]).contains("secretvalue"));
    }

    #[test]
    fn netscape_error_names_line() {
        let err = parse(
            "c.txt",
            "# c\n.jd.com\tTRUE\t/\tFALSE\t0\ta\tb\n.jd.com\tTRUE\t/\n",
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("line 3") && err.contains("found 3"), "{err}");
    }

    #[test]
    fn json_exports() {
        let cookies = parse(
            "c.json",
            r#"[{"name":"a","value":"1","domain":".jd.com","hostOnly":false,"expirationDate":1900000000.5,"sameSite":"lax"},
                {"name":"b","value":"2","domain":"www.jd.com","session":true}]"#,
        )
        .unwrap();
        assert_eq!(cookies[0].expires, Some(1_900_000_000));
        assert!(cookies[0].include_subdomains && !cookies[1].include_subdomains);
        let err = parse("c.json", r#"{"cookies":[{"name":"a","value":"1","domain":"x.com"},{"name":"b","domain":"x.com"}]}"#)
            .unwrap_err()
            .to_string();
        assert!(err.contains("entry 1") && err.contains("value"), "{err}");
    }

    #[test]
    fn registrable_domains() {
        assert_eq!(registrable("s.taobao.com"), "taobao.com");
        assert_eq!(registrable("www.amazon.cn"), "amazon.cn");
        assert_eq!(registrable("www.example.com.cn"), "example.com.cn");
        assert!(belongs(".taobao.com", &["taobao.com".to_owned()]));
        assert!(!belongs("nottaobao.com", &["taobao.com".to_owned()]));
        let def = crate::platform::load_file(
            &Path::new(env!("CARGO_MANIFEST_DIR")).join("crawlers/taobao.toml"),
        )
        .unwrap();
        let base = url::Url::parse("http://127.0.0.1:8400/taobao").unwrap();
        let with = platform_domains_with_base(&def, Some(&base));
        assert!(belongs("127.0.0.1", &with) && belongs(".taobao.com", &with));
        assert!(!belongs("127.0.0.1", &platform_domains(&def)));
    }

    #[test]
    fn proxy_hides_credentials() {
        let p = ProxyUrl::parse("socks5://user:hunter2@10.1.2.3:1080").unwrap();
        assert_eq!(p.to_string(), "socks5://10.1.2.3:1080");
        assert!(!format!("{p:?}").contains("hunter2"));
        assert_eq!(
            p.credentials(),
            Some(("user".to_owned(), "hunter2".to_owned()))
        );
        assert_eq!(ProxyUrl::parse("http://h:1").unwrap().credentials(), None);
        let encoded = ProxyUrl::parse("http://a%40b:p%2Bq+r@h:1").unwrap();
        assert_eq!(
            encoded.credentials(),
            Some(("a@b".to_owned(), "p+q+r".to_owned()))
        );
        assert!(ProxyUrl::parse("ftp://h:1").is_err());
        assert!(ProxyUrl::parse("http://h:1/path").is_err());
        let err = ProxyUrl::parse("gopher://u:hunter2@h")
            .unwrap_err()
            .to_string();
        assert!(!err.contains("hunter2"), "{err}");
    }
}
