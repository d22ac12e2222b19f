//! Crawler definitions: loads `crawlers/<platform>.toml` into [`PlatformDef`] values.
//!
//! A definition is data only: URL templates, pagination, where listings sit in a page (CSS
//! selectors or JSON pointers into an embedded script object), price rules, block markers,
//! politeness and the complaint channel. Selectors and regexes are compiled once at load, so a
//! malformed definition fails at start with the file and key named, never mid-crawl.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use regex::Regex;
use scraper::Selector;
use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use url::Url;

/// Why a definition could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum PlatformError {
    /// The file or directory could not be read.
    #[error("{path}: cannot read: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The TOML is malformed or has an unknown, missing or mistyped key.
    #[error("{path}: {message}")]
    Parse { path: PathBuf, message: String },
    /// The TOML parsed but a value is unusable (bad selector, regex, pointer or template).
    #[error("{path}: key `{key}`: {message}")]
    Invalid {
        path: PathBuf,
        key: String,
        message: String,
    },
    /// Two files define the same platform key.
    #[error("platform `{platform}` is defined twice: {first} and {second}")]
    Duplicate {
        platform: String,
        first: PathBuf,
        second: PathBuf,
    },
}

/// One platform's crawler definition.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlatformDef {
    /// Platform key used in listings and config, e.g. "taobao".
    pub platform: String,
    /// A platform to search (the default), or the domain watch's findings and complaint channel.
    #[serde(default)]
    pub kind: DefKind,
    /// Human name, e.g. "淘宝 Taobao".
    pub name: String,
    /// Encoding assumed when neither the header nor a meta tag names one.
    pub encoding: String,
    /// ISO 4217 code of displayed prices, unless a page names its own (`fields.currency`).
    #[serde(default = "default_currency")]
    pub currency: String,
    /// What the pages are: HTML (default), a bare JSON reply, or JSONP (`callback({...})`).
    #[serde(default)]
    pub format: PageFormat,
    pub urls: Urls,
    /// Required with `search`.
    pub pagination: Option<Pagination>,
    /// How to read a search results page. Absent for detail-only definitions.
    pub search: Option<SearchRules>,
    /// How to read an item detail page.
    pub detail: Option<DetailRules>,
    #[serde(default)]
    pub price: PriceRules,
    /// Markers of a captcha or login wall in place of the requested page.
    #[serde(default)]
    pub blocked: Vec<BlockMarker>,
    pub rate_limit: RateLimit,
    pub retry: RetryPolicy,
    pub complaint: ComplaintChannel,
    /// Extra request headers (Referer, Accept-Language, ...).
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// How a person logs in, for platforms that serve search only to logged-in sessions.
    pub login: Option<LoginRules>,
    /// The file this definition came from.
    #[serde(skip)]
    pub source: PathBuf,
}

/// What a definition describes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DefKind {
    /// An e-commerce platform, crawled by search and item pages.
    #[default]
    Platform,
    /// Domain names found by the domain watch: their home pages (`urls.item` with the domain as
    /// `{item_id}`), pace and complaint channel. Never crawled by search.
    Domains,
}

/// A platform's display name ("淘宝 Taobao"), or its key when no definition has it.
pub fn display_name(defs: &[PlatformDef], key: &str) -> String {
    defs.iter()
        .find(|d| d.platform == key)
        .map_or_else(|| key.to_owned(), |d| d.name.clone())
}

/// The names of the definitions crawls search: every platform but the domain watch's.
pub fn crawlable(defs: &[PlatformDef]) -> Vec<String> {
    defs.iter()
        .filter(|d| d.kind == DefKind::Platform)
        .map(|d| d.platform.clone())
        .collect()
}

fn default_currency() -> String {
    "CNY".to_string()
}

/// How a page is fetched: a plain HTTP request, or a real browser that runs the page's script.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FetchWith {
    #[default]
    Http,
    /// Debian's Chromium over the DevTools protocol, with the account's own profile.
    Browser,
}

/// `[login]`: where a person logs in to an account, and how markwatch knows they have.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoginRules {
    /// Whether search needs a logged-in account [default: true]. A platform that needs one
    /// and has none healthy is skipped, and the run says which command fixes it.
    #[serde(default = "yes")]
    pub required: bool,
    /// The platform's login page, in its real form (a `base_url` override maps it).
    pub url: String,
    /// Cookies the platform sets once a person has logged in; `accounts login` captures the
    /// session when all of them are present.
    pub session_cookies: Vec<String>,
}

/// The kind of document a platform serves.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PageFormat {
    #[default]
    Html,
    /// The whole body is one JSON value (an API reply).
    Json,
    /// The whole body is `callback(<JSON>)`.
    Jsonp,
}

impl PageFormat {
    /// Whether pages are HTML (and so end in `</html>` when complete).
    pub fn is_html(self) -> bool {
        self == PageFormat::Html
    }
}

/// URL templates in the platform's real form. To fetch elsewhere (the fixture server, a
/// proxy), a `base_url` override replaces scheme, host and port and is prefixed to the path;
/// canonical item URLs keep the real form.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Urls {
    /// Search page; placeholders `{keyword}` (percent-encoded UTF-8), `{page}` and `{offset}`.
    /// Required with `search`.
    pub search: Option<String>,
    /// Item page and canonical item URL; placeholder `{item_id}`.
    pub item: String,
}

/// How result pages are numbered and when to stop.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pagination {
    /// Listings per full page.
    pub page_size: u32,
    /// Never request more pages than this for one keyword.
    pub max_pages: u32,
    /// Value of `{page}` on the first page (JD: 1, Amazon: 1).
    #[serde(default = "one")]
    pub page_start: u32,
    /// Increment of `{page}` per page (JD counts half pages: 1, 3, 5, ...).
    #[serde(default = "one")]
    pub page_step: u32,
    /// How to tell the last page. Default: a page with fewer than `page_size` listings.
    #[serde(default)]
    pub last_page: LastPage,
}

impl Default for Pagination {
    fn default() -> Self {
        Pagination {
            page_size: 1,
            max_pages: 1,
            page_start: 1,
            page_step: 1,
            last_page: LastPage::Count,
        }
    }
}

fn one() -> u32 {
    1
}

/// Last-page detection.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(tag = "by", rename_all = "snake_case", deny_unknown_fields)]
pub enum LastPage {
    /// A page with fewer than `page_size` listings is the last.
    #[default]
    Count,
    /// There is a next page while this CSS selector matches (e.g. an enabled "next" link).
    Selector {
        next: String,
        #[serde(skip)]
        compiled: Option<Selector>,
    },
    /// JSON pointers into the search JSON (embedded in the page, or the captured reply the
    /// listings came from) giving the current and total page numbers. A reply that counts
    /// results instead (mtop: `totalResults`, `s`) names them in `results` and `offset`: there
    /// is a next page while `offset` + the entries read < `results`. Pointers that do not
    /// resolve fall back to the count rule, so one rule serves a classic page and a capture.
    Json {
        current: String,
        total: String,
        #[serde(default)]
        results: Option<String>,
        #[serde(default)]
        offset: Option<String>,
    },
    /// Regexes over the page text whose first group is the current and total page number.
    Regex {
        current: String,
        total: String,
        #[serde(skip)]
        compiled: Option<(Regex, Regex)>,
    },
}

/// Where the listings of a search page sit.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SearchRules {
    /// CSS selector of one listing element (HTML lists). Exclusive with `json`.
    pub items: Option<String>,
    /// Listings as JSON inside a script (read without building a DOM). Exclusive with `items`.
    pub json: Option<EmbeddedJson>,
    /// Listings from API replies the page's own script made, captured by the browser fetcher.
    /// When a captured reply's URL matches, listings are read from the replies (in order) and
    /// the page itself is not; when none matched (an HTTP fetch, a classic page), `items` or
    /// `json` read the page as usual.
    pub capture: Option<CaptureRule>,
    /// Regex over the page text that marks a genuine "no results" page. Without a match, a
    /// page with no listings is reported as a layout change.
    pub empty_marker: Option<String>,
    /// How search pages are fetched [default: http].
    #[serde(default)]
    pub fetch: FetchWith,
    pub fields: SearchFields,
    #[serde(skip)]
    pub(crate) items_selector: Option<Selector>,
    #[serde(skip)]
    pub(crate) empty_regex: Option<Regex>,
}

/// A JSON value embedded in a page's script (or the whole page, for JSON and JSONP formats).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmbeddedJson {
    /// Script variable assigned the value, e.g. `g_page_config`.
    pub variable: Option<String>,
    /// Or a regex whose match ends right where the JSON value starts, e.g. `TShop\.Setup\(\s*`.
    pub regex: Option<String>,
    /// JSON pointer to the array of listings (search pages only).
    pub items: Option<String>,
    #[serde(skip)]
    pub(crate) start: Option<Regex>,
}

/// `[search] capture`: which captured API replies hold the listings, and where.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaptureRule {
    /// Regex over a captured reply's URL.
    pub url: String,
    /// `json` (the body is one JSON value) or `jsonp` (`callback({...})`).
    pub format: CaptureFormat,
    /// JSON pointer to the array of listings in the reply (`*` wildcards allowed). A reply
    /// without it (an API error such as `FAIL_SYS_TOKEN_EMPTY`) carries no listings and is
    /// skipped.
    pub items: String,
    #[serde(skip)]
    pub(crate) url_regex: Option<Regex>,
    /// How the reply's JSON is found (compiled at load).
    #[serde(skip)]
    pub(crate) json: EmbeddedJson,
}

/// The body format of a captured reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CaptureFormat {
    Json,
    Jsonp,
}

impl CaptureRule {
    /// Whether a reply fetched from `url` is one this rule reads. A reply saved without its
    /// URL (empty: `markwatch extract --capture FILE`) is taken as one.
    pub fn matches(&self, url: &str) -> bool {
        url.is_empty() || self.url_regex.as_ref().is_some_and(|re| re.is_match(url))
    }

    fn validate(&mut self, key: &str) -> Result<(), Invalid> {
        self.url_regex = Some(compile_regex(&format!("{key}.url"), &self.url)?);
        check_pointer(&format!("{key}.items"), &self.items)?;
        let format = match self.format {
            CaptureFormat::Json => PageFormat::Json,
            CaptureFormat::Jsonp => PageFormat::Jsonp,
        };
        self.json = EmbeddedJson {
            items: Some(self.items.clone()),
            ..EmbeddedJson::default()
        };
        self.json.validate(key, format)
    }
}

/// Per-listing fields on a search page. Each is one rule or a list of fallbacks tried in order.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SearchFields {
    pub item_id: Field,
    pub title: Field,
    pub price: Option<Field>,
    pub seller: Option<Field>,
    pub seller_id: Option<Field>,
    pub location: Option<Field>,
    pub sales: Option<Field>,
    pub detail_url: Option<Field>,
    pub image: Option<Field>,
    /// ISO 4217 code the page gives for this listing's price (default: the definition's).
    pub currency: Option<Field>,
    /// True when the rule matches (element present, or value present and matching `regex`).
    pub ad: Option<Field>,
    /// True when the page marks the shop as the platform's own (JD's `data-selfware="1"`,
    /// the 自营 badge, "Ships from and sold by Amazon"); read like `ad`.
    pub self_operated: Option<Field>,
}

/// How to read an item detail page.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DetailRules {
    /// A JSON value in a script that `pointer` rules read.
    pub json: Option<EmbeddedJson>,
    /// How item pages are fetched [default: http].
    #[serde(default)]
    pub fetch: FetchWith,
    pub fields: DetailFieldRules,
}

/// Fields of a detail page. `category` and `images` collect every match.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DetailFieldRules {
    pub item_id: Option<Field>,
    pub title: Option<Field>,
    pub seller: Option<Field>,
    pub price: Option<Field>,
    pub category: Option<Field>,
    pub images: Option<Field>,
    pub sales: Option<Field>,
    /// ISO 4217 code the page gives for the price (default: the definition's).
    pub currency: Option<Field>,
    /// True when the page marks the shop as the platform's own; read like a search page's.
    pub self_operated: Option<Field>,
}

/// One field: fallback rules tried in order; the first that yields a value wins.
#[derive(Debug, Clone)]
pub struct Field(pub Vec<FieldRule>);

/// A single extraction rule. On an HTML listing, `css` is relative to the listing element
/// (absent: the element itself); on a JSON listing, `pointer` is relative to the listing
/// object. `regex` then filters the value (group 1 if present). A detail-page rule with only
/// `regex` runs over the whole page text.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FieldRule {
    pub css: Option<String>,
    /// Read this attribute instead of the element's text.
    pub attr: Option<String>,
    pub pointer: Option<String>,
    pub regex: Option<String>,
    /// Strip surrounding whitespace (default true).
    #[serde(default = "yes")]
    pub trim: bool,
    #[serde(skip)]
    pub(crate) selector: Option<Selector>,
    #[serde(skip)]
    pub(crate) compiled_regex: Option<Regex>,
}

fn yes() -> bool {
    true
}

/// Price text rules. Currency signs, spaces and thousands separators are dropped; for a range
/// the lower bound is the price.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PriceRules {
    #[serde(default = "default_thousands")]
    pub thousands_separator: String,
    #[serde(default = "default_decimal")]
    pub decimal_separator: String,
    #[serde(default = "default_range_separators")]
    pub range_separators: Vec<String>,
}

impl Default for PriceRules {
    fn default() -> Self {
        PriceRules {
            thousands_separator: default_thousands(),
            decimal_separator: default_decimal(),
            range_separators: default_range_separators(),
        }
    }
}

fn default_thousands() -> String {
    ",".into()
}
fn default_decimal() -> String {
    ".".into()
}
fn default_range_separators() -> Vec<String> {
    vec!["-".into(), "~".into(), "–".into(), "至".into()]
}

/// What kind of wall a page is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BlockKind {
    Captcha,
    Login,
}

impl fmt::Display for BlockKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            BlockKind::Captcha => "captcha wall",
            BlockKind::Login => "login wall",
        })
    }
}

/// A regex whose match anywhere in a page means the page is a wall, not content.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BlockMarker {
    pub kind: BlockKind,
    pub pattern: String,
    /// A page that also matches this is content after all (a real item page whose login
    /// iframe URL looks like a wall).
    pub unless: Option<Unless>,
    #[serde(skip)]
    pub(crate) compiled: Option<Regex>,
}

/// What marks a page as content despite a block marker: a CSS selector that matches, or a
/// regex over the page text.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Unless {
    pub css: Option<String>,
    pub regex: Option<String>,
    #[serde(skip)]
    pub(crate) selector: Option<Selector>,
    #[serde(skip)]
    pub(crate) compiled_regex: Option<Regex>,
}

/// Politeness towards the platform.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimit {
    pub requests_per_second: f64,
    pub concurrency: u32,
}

/// Retry policy for transient failures (429, 5xx, timeouts, truncated or blocked pages).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetryPolicy {
    pub max_attempts: u32,
    pub base_backoff_ms: u64,
    pub max_backoff_ms: u64,
}

/// Where takedown complaints for this platform are filed.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ComplaintChannel {
    pub name: String,
    pub url: String,
    /// Most listings one complaint may carry.
    pub max_listings: u32,
    /// Whether the right must be registered in mainland China.
    pub requires_cn_registration: bool,
    /// Notice template family: `templates/notices/<template>.<lang>.txt` [default: the
    /// platform key]. A `<platform>.<lang>.txt` template overrides it.
    #[serde(default)]
    pub template: Option<String>,
    /// How many rights one complaint may rest on.
    #[serde(default)]
    pub rights_per_complaint: RightsPerComplaint,
    /// What the form calls a listing's id ("商品ID", "SKU", "ASIN").
    #[serde(default = "default_listing_id_label")]
    pub listing_id_label: String,
    /// The form's bulk-upload layout: one column per entry, one row per listing.
    #[serde(default)]
    pub export: Vec<ExportColumn>,
}

fn default_listing_id_label() -> String {
    "listing id".to_string()
}

/// How many rights one complaint may rest on.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RightsPerComplaint {
    /// One registered right (one registration number) per complaint: Alibaba IPP.
    #[default]
    OneRight,
    /// One type of right (trademark, copyright, patent) per report: Amazon. Several marks of
    /// one brand may share a report.
    OneType,
}

/// One column of a complaint form's bulk upload.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportColumn {
    /// The column heading the platform's form expects.
    pub header: String,
    pub value: ExportField,
    /// The form refuses a row without it; an export with it empty is an error.
    #[serde(default)]
    pub required: bool,
}

/// The values an export column can carry.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize, serde::Serialize,
)]
#[serde(rename_all = "snake_case")]
pub enum ExportField {
    NoticeId,
    Brand,
    /// "trademark" / 商标.
    RightType,
    RightTypeZh,
    RightsHolder,
    Agent,
    AgentContact,
    Mark,
    RegistrationNo,
    Jurisdiction,
    /// Nice classes, `;`-separated.
    Classes,
    Expires,
    /// `counterfeit` or `trademark_misuse`.
    Reason,
    ReasonZh,
    ReasonEn,
    ListingUrl,
    ListingId,
    Title,
    Seller,
    Price,
    Currency,
    Verdict,
    Score,
    ExplanationZh,
    ExplanationEn,
    /// Files in the evidence pack for this listing, `;`-separated.
    EvidenceFiles,
    /// SHA-256 of each captured page, `;`-separated.
    EvidenceSha256,
    /// When each page was captured, `;`-separated.
    CapturedAt,
}

// ---- fields: one rule or a list of fallbacks ----

impl<'de> Deserialize<'de> for Field {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct FieldVisitor;
        impl<'de> Visitor<'de> for FieldVisitor {
            type Value = Field;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a rule table { css, attr, pointer, regex, trim } or an array of them")
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Field, A::Error> {
                let rule = FieldRule::deserialize(de::value::MapAccessDeserializer::new(map))?;
                Ok(Field(vec![rule]))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Field, A::Error> {
                let rules =
                    Vec::<FieldRule>::deserialize(de::value::SeqAccessDeserializer::new(seq))?;
                Ok(Field(rules))
            }
        }
        d.deserialize_any(FieldVisitor)
    }
}

// ---- loading and validation ----

/// Loads every `*.toml` in `dir`, sorted by file name. Any bad file fails the whole load.
pub fn load_dir(dir: &Path) -> Result<Vec<PlatformDef>, PlatformError> {
    let io = |source| PlatformError::Io {
        path: dir.to_path_buf(),
        source,
    };
    let mut paths = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let path = entry.map_err(io)?.path();
        if path.extension().is_some_and(|e| e == "toml") {
            paths.push(path);
        }
    }
    paths.sort();
    let mut defs: Vec<PlatformDef> = Vec::with_capacity(paths.len());
    for path in paths {
        let def = load_file(&path)?;
        if let Some(prev) = defs.iter().find(|d| d.platform == def.platform) {
            return Err(PlatformError::Duplicate {
                platform: def.platform,
                first: prev.source.clone(),
                second: path,
            });
        }
        defs.push(def);
    }
    Ok(defs)
}

/// Loads and validates one definition file.
pub fn load_file(path: &Path) -> Result<PlatformDef, PlatformError> {
    let text = std::fs::read_to_string(path).map_err(|source| PlatformError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    parse_def(&text, path)
}

/// Parses and validates a definition held in memory; `path` names it in errors.
pub(crate) fn parse_def(text: &str, path: &Path) -> Result<PlatformDef, PlatformError> {
    let mut def: PlatformDef = toml::from_str(text).map_err(|e| PlatformError::Parse {
        path: path.to_path_buf(),
        message: e.to_string().trim_end().to_string(),
    })?;
    def.source = path.to_path_buf();
    def.validate()
        .map_err(|(key, message)| PlatformError::Invalid {
            path: path.to_path_buf(),
            key,
            message,
        })?;
    Ok(def)
}

type Invalid = (String, String);

fn invalid(key: &str, message: impl Into<String>) -> Invalid {
    (key.to_string(), message.into())
}

fn compile_regex(key: &str, pattern: &str) -> Result<Regex, Invalid> {
    Regex::new(pattern).map_err(|e| invalid(key, format!("bad regex: {e}")))
}

fn compile_selector(key: &str, css: &str) -> Result<Selector, Invalid> {
    Selector::parse(css).map_err(|e| invalid(key, format!("bad CSS selector `{css}`: {e}")))
}

fn check_pointer(key: &str, pointer: &str) -> Result<(), Invalid> {
    if pointer.is_empty() || pointer.starts_with('/') {
        Ok(())
    } else {
        Err(invalid(
            key,
            format!("JSON pointer `{pointer}` must be empty or start with `/`"),
        ))
    }
}

/// Where a rule is evaluated, which decides the keys it may use.
#[derive(Clone, Copy, PartialEq)]
enum RuleContext {
    HtmlItem,
    /// A CSS listing on the page, or a JSON listing of a captured reply: `css`/`attr` rules
    /// read the former, `pointer` rules the latter.
    HtmlOrCapture,
    JsonItem,
    Page {
        has_json: bool,
    },
}

impl FieldRule {
    fn compile(&mut self, key: &str, ctx: RuleContext) -> Result<(), Invalid> {
        match ctx {
            RuleContext::HtmlItem if self.pointer.is_some() => {
                return Err(invalid(
                    key,
                    "`pointer` needs embedded JSON, but this definition lists items by CSS",
                ));
            }
            RuleContext::HtmlOrCapture if self.pointer.is_some() && self.attr.is_some() => {
                return Err(invalid(
                    key,
                    "`attr` reads a DOM element and `pointer` a captured reply: use one",
                ));
            }
            RuleContext::JsonItem if self.css.is_some() || self.attr.is_some() => {
                return Err(invalid(
                    key,
                    "`css`/`attr` need a DOM, but this definition reads items from embedded JSON",
                ));
            }
            RuleContext::JsonItem if self.pointer.is_none() => {
                return Err(invalid(key, "a JSON listing field needs `pointer`"));
            }
            RuleContext::Page { has_json: false } if self.pointer.is_some() => {
                return Err(invalid(
                    key,
                    "`pointer` needs a `json` table beside `fields`",
                ));
            }
            RuleContext::Page { .. }
                if self.css.is_none() && self.pointer.is_none() && self.regex.is_none() =>
            {
                return Err(invalid(
                    key,
                    "a page field needs `css`, `pointer` or `regex`",
                ));
            }
            _ => {}
        }
        if self.css.is_some() && self.pointer.is_some() {
            return Err(invalid(key, "use either `css` or `pointer`, not both"));
        }
        if let Some(css) = &self.css {
            self.selector = Some(compile_selector(&format!("{key}.css"), css)?);
        }
        if let Some(p) = &self.pointer {
            check_pointer(&format!("{key}.pointer"), p)?;
        }
        if let Some(re) = &self.regex {
            self.compiled_regex = Some(compile_regex(&format!("{key}.regex"), re)?);
        }
        Ok(())
    }
}

impl Field {
    fn compile(&mut self, key: &str, ctx: RuleContext) -> Result<(), Invalid> {
        if self.0.is_empty() {
            return Err(invalid(key, "needs at least one rule"));
        }
        let many = self.0.len() > 1;
        for (i, rule) in self.0.iter_mut().enumerate() {
            let k = if many {
                format!("{key}[{i}]")
            } else {
                key.to_string()
            };
            rule.compile(&k, ctx)?;
        }
        Ok(())
    }
}

fn compile_opt(field: &mut Option<Field>, key: &str, ctx: RuleContext) -> Result<(), Invalid> {
    match field {
        Some(f) => f.compile(key, ctx),
        None => Ok(()),
    }
}

impl EmbeddedJson {
    pub(crate) fn validate(&mut self, key: &str, format: PageFormat) -> Result<(), Invalid> {
        match (&self.variable, &self.regex) {
            (Some(_), Some(_)) => Err(invalid(key, "use either `variable` or `regex`, not both")),
            (None, None) if format.is_html() => Err(invalid(
                key,
                "needs `variable` or `regex` (or `format = \"json\"` for a bare JSON page)",
            )),
            (None, None) => Ok(()),
            (Some(v), None) => {
                if v.is_empty() || !v.chars().all(|c| c.is_alphanumeric() || "_$.".contains(c)) {
                    return Err(invalid(
                        &format!("{key}.variable"),
                        format!("`{v}` is not a script variable name"),
                    ));
                }
                Ok(())
            }
            (None, Some(re)) => compile_regex(&format!("{key}.regex"), re).map(|_| ()),
        }?;
        if let Some(p) = &self.items {
            check_pointer(&format!("{key}.items"), p)?;
        }
        let pattern = match (&self.variable, &self.regex, format) {
            (Some(v), _, _) => format!(r"(?:^|[^\w$.]){}\s*=\s*", regex::escape(v)),
            (_, Some(re), _) => re.clone(),
            (None, None, PageFormat::Jsonp) => r"^\s*(?:/\*\*/\s*)?[\w$.]+\s*\(\s*".to_string(),
            (None, None, _) => r"^\s*".to_string(),
        };
        self.start = Some(compile_regex(key, &pattern)?);
        Ok(())
    }

    /// How the value is found, for messages.
    pub(crate) fn describe(&self) -> String {
        match (&self.variable, &self.regex) {
            (Some(v), _) => v.clone(),
            (_, Some(re)) => re.clone(),
            (None, None) => "the page's JSON".to_string(),
        }
    }

    /// The regex whose match end is where the JSON value starts (compiled at load).
    pub(crate) fn start_regex(&self) -> Option<&Regex> {
        self.start.as_ref()
    }
}

impl PlatformDef {
    fn validate(&mut self) -> Result<(), Invalid> {
        if self.platform.is_empty()
            || !self
                .platform
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        {
            return Err(invalid(
                "platform",
                format!(
                    "`{}` must be lowercase letters, digits or `_`",
                    self.platform
                ),
            ));
        }
        if encoding_rs::Encoding::for_label(self.encoding.as_bytes()).is_none() {
            return Err(invalid(
                "encoding",
                format!("unknown encoding `{}`", self.encoding),
            ));
        }
        if let Some(search) = &self.urls.search {
            check_template("urls.search", search, &["keyword", "page", "offset"])?;
            if !search.contains("{keyword}") {
                return Err(invalid("urls.search", "must contain `{keyword}`"));
            }
        } else if self.search.is_some() {
            return Err(invalid("urls.search", "missing: required with `search`"));
        }
        check_template("urls.item", &self.urls.item, &["item_id"])?;
        if let Some(login) = &self.login {
            if Url::parse(&login.url).is_err() {
                return Err(invalid(
                    "login.url",
                    format!("`{}` is not a URL", login.url),
                ));
            }
            if login.session_cookies.is_empty() {
                return Err(invalid(
                    "login.session_cookies",
                    "name at least one cookie the platform sets once logged in",
                ));
            }
        }
        if !self.urls.item.contains("{item_id}") {
            return Err(invalid("urls.item", "must contain `{item_id}`"));
        }
        let search_json = self.search.as_ref().is_some_and(|s| s.json.is_some());
        let search_capture = self.search.as_ref().is_some_and(|s| s.capture.is_some());
        if self.search.is_some() && self.pagination.is_none() {
            return Err(invalid("pagination", "missing: required with `search`"));
        }
        let mut default_pagination = Pagination::default();
        let p = self.pagination.as_mut().unwrap_or(&mut default_pagination);
        if p.page_size == 0 {
            return Err(invalid("pagination.page_size", "must be at least 1"));
        }
        if p.max_pages == 0 {
            return Err(invalid("pagination.max_pages", "must be at least 1"));
        }
        if p.page_step == 0 {
            return Err(invalid("pagination.page_step", "must be at least 1"));
        }
        match &mut p.last_page {
            LastPage::Count => {}
            LastPage::Selector { next, compiled } => {
                // With `capture`, the selector reads the page (classic) and captures use the
                // count rule.
                if search_json && !search_capture {
                    return Err(invalid(
                        "pagination.last_page.next",
                        "a CSS selector needs a DOM, but this definition reads embedded JSON",
                    ));
                }
                *compiled = Some(compile_selector("pagination.last_page.next", next)?);
            }
            LastPage::Json {
                current,
                total,
                results,
                offset,
            } => {
                if !search_json && !search_capture {
                    return Err(invalid(
                        "pagination.last_page",
                        "`by = \"json\"` needs `search.json` or `search.capture`",
                    ));
                }
                check_pointer("pagination.last_page.current", current)?;
                check_pointer("pagination.last_page.total", total)?;
                if results.is_some() != offset.is_some() {
                    return Err(invalid(
                        "pagination.last_page",
                        "`results` and `offset` go together",
                    ));
                }
                if let (Some(r), Some(o)) = (results, offset) {
                    check_pointer("pagination.last_page.results", r)?;
                    check_pointer("pagination.last_page.offset", o)?;
                }
            }
            LastPage::Regex {
                current,
                total,
                compiled,
            } => {
                *compiled = Some((
                    compile_regex("pagination.last_page.current", current)?,
                    compile_regex("pagination.last_page.total", total)?,
                ));
            }
        }
        if self.kind == DefKind::Domains && self.platform != "domains" {
            return Err(invalid(
                "platform",
                "a definition of kind `domains` must be platform `domains`",
            ));
        }
        if self.kind == DefKind::Platform && self.search.is_none() && self.detail.is_none() {
            return Err(invalid(
                "search",
                "a definition needs `search`, `detail` or both",
            ));
        }
        if let Some(search) = &mut self.search {
            if let Some(c) = &mut search.capture {
                c.validate("search.capture")?;
            }
            let capture = search.capture.is_some();
            let ctx = match (&search.items, &mut search.json) {
                (Some(_), Some(_)) => {
                    return Err(invalid(
                        "search",
                        "use either `items` (CSS) or `json`, not both",
                    ));
                }
                (None, None) if capture => RuleContext::JsonItem,
                (None, None) => {
                    return Err(invalid(
                        "search",
                        "needs `items` (CSS), a `json` table or a `capture` rule",
                    ));
                }
                (Some(_), None) if !self.format.is_html() => {
                    return Err(invalid(
                        "search.items",
                        "a CSS selector needs HTML, but `format` says the pages are JSON; use `search.json`",
                    ));
                }
                (Some(css), None) => {
                    search.items_selector = Some(compile_selector("search.items", css)?);
                    if capture {
                        RuleContext::HtmlOrCapture
                    } else {
                        RuleContext::HtmlItem
                    }
                }
                (None, Some(json)) => {
                    json.validate("search.json", self.format)?;
                    if json.items.is_none() {
                        return Err(invalid(
                            "search.json.items",
                            "missing: the JSON pointer to the listing array",
                        ));
                    }
                    RuleContext::JsonItem
                }
            };
            if let Some(m) = &search.empty_marker {
                search.empty_regex = Some(compile_regex("search.empty_marker", m)?);
            }
            let f = &mut search.fields;
            f.item_id.compile("search.fields.item_id", ctx)?;
            f.title.compile("search.fields.title", ctx)?;
            compile_opt(&mut f.price, "search.fields.price", ctx)?;
            compile_opt(&mut f.seller, "search.fields.seller", ctx)?;
            compile_opt(&mut f.seller_id, "search.fields.seller_id", ctx)?;
            compile_opt(&mut f.location, "search.fields.location", ctx)?;
            compile_opt(&mut f.sales, "search.fields.sales", ctx)?;
            compile_opt(&mut f.detail_url, "search.fields.detail_url", ctx)?;
            compile_opt(&mut f.image, "search.fields.image", ctx)?;
            compile_opt(&mut f.ad, "search.fields.ad", ctx)?;
            compile_opt(&mut f.self_operated, "search.fields.self_operated", ctx)?;
            compile_opt(&mut f.currency, "search.fields.currency", ctx)?;
        }
        if let Some(detail) = &mut self.detail {
            if detail.json.is_none() && !self.format.is_html() {
                detail.json = Some(EmbeddedJson::default()); // the page is the JSON
            }
            if let Some(json) = &mut detail.json {
                json.validate("detail.json", self.format)?;
            }
            let ctx = RuleContext::Page {
                has_json: detail.json.is_some(),
            };
            let f = &mut detail.fields;
            compile_opt(&mut f.item_id, "detail.fields.item_id", ctx)?;
            compile_opt(&mut f.title, "detail.fields.title", ctx)?;
            compile_opt(&mut f.seller, "detail.fields.seller", ctx)?;
            compile_opt(&mut f.price, "detail.fields.price", ctx)?;
            compile_opt(&mut f.category, "detail.fields.category", ctx)?;
            compile_opt(&mut f.images, "detail.fields.images", ctx)?;
            compile_opt(&mut f.sales, "detail.fields.sales", ctx)?;
            compile_opt(&mut f.currency, "detail.fields.currency", ctx)?;
            compile_opt(&mut f.self_operated, "detail.fields.self_operated", ctx)?;
        }
        for (i, m) in self.blocked.iter_mut().enumerate() {
            m.compiled = Some(compile_regex(&format!("blocked[{i}].pattern"), &m.pattern)?);
            if let Some(u) = &mut m.unless {
                let key = format!("blocked[{i}].unless");
                match (&u.css, &u.regex) {
                    (Some(css), None) => {
                        u.selector = Some(compile_selector(&format!("{key}.css"), css)?)
                    }
                    (None, Some(re)) => {
                        u.compiled_regex = Some(compile_regex(&format!("{key}.regex"), re)?)
                    }
                    _ => return Err(invalid(&key, "needs exactly one of `css` or `regex`")),
                }
            }
        }
        if self.currency.len() != 3 || !self.currency.chars().all(|c| c.is_ascii_uppercase()) {
            return Err(invalid(
                "currency",
                format!(
                    "`{}` is not an ISO 4217 code such as \"CNY\"",
                    self.currency
                ),
            ));
        }
        if self.price.range_separators.iter().any(|s| s.is_empty()) {
            return Err(invalid(
                "price.range_separators",
                "separators must not be empty",
            ));
        }
        if self.price.decimal_separator.chars().count() != 1 {
            return Err(invalid("price.decimal_separator", "must be one character"));
        }
        if !(self.rate_limit.requests_per_second > 0.0
            && self.rate_limit.requests_per_second.is_finite())
        {
            return Err(invalid("rate_limit.requests_per_second", "must be above 0"));
        }
        if self.rate_limit.concurrency == 0 {
            return Err(invalid("rate_limit.concurrency", "must be at least 1"));
        }
        if self.retry.max_attempts == 0 {
            return Err(invalid("retry.max_attempts", "must be at least 1"));
        }
        if self.retry.max_backoff_ms < self.retry.base_backoff_ms {
            return Err(invalid(
                "retry.max_backoff_ms",
                "must not be below retry.base_backoff_ms",
            ));
        }
        for (i, col) in self.complaint.export.iter().enumerate() {
            if col.header.trim().is_empty() {
                return Err(invalid(
                    &format!("complaint.export[{i}].header"),
                    "must not be empty",
                ));
            }
        }
        if self.complaint.max_listings == 0 {
            return Err(invalid("complaint.max_listings", "must be at least 1"));
        }
        Url::parse(&self.complaint.url)
            .map_err(|e| invalid("complaint.url", format!("not a URL: {e}")))?;
        Ok(())
    }

    /// The last-page rule (count-based when the definition has no pagination).
    pub(crate) fn last_page(&self) -> &LastPage {
        static COUNT: LastPage = LastPage::Count;
        self.pagination.as_ref().map_or(&COUNT, |p| &p.last_page)
    }

    /// Listings per full search page.
    pub fn page_size(&self) -> u32 {
        self.pagination.as_ref().map_or(1, |p| p.page_size)
    }

    /// Real-form search URL for `keyword`, 1-based `page_no`. A detail-only definition has
    /// no search URL; its item URL stands in (it names the platform's origin).
    pub fn search_url(&self, keyword: &str, page_no: u32) -> String {
        let n = page_no.max(1) - 1;
        let p = self.pagination.clone().unwrap_or_default();
        let keyword: String = url::form_urlencoded::byte_serialize(keyword.as_bytes()).collect();
        self.urls
            .search
            .as_deref()
            .unwrap_or(&self.urls.item)
            .replace("{keyword}", &keyword)
            .replace("{page}", &(p.page_start + n * p.page_step).to_string())
            .replace("{offset}", &(n * p.page_size).to_string())
    }

    /// Canonical item URL in the platform's real form.
    pub fn item_url(&self, item_id: &str) -> String {
        let id: String = url::form_urlencoded::byte_serialize(item_id.as_bytes()).collect();
        self.urls.item.replace("{item_id}", &id)
    }

    /// The URL to fetch for a real-form URL: with `base` set, its scheme, host and path prefix
    /// replace the real scheme and host (`https://search.jd.com/Search?q` with base
    /// `http://127.0.0.1:8400/jd` becomes `http://127.0.0.1:8400/jd/Search?q`).
    pub fn fetch_url(real: &str, base: Option<&Url>) -> String {
        let Some(base) = base else {
            return real.to_string();
        };
        let Ok(real) = Url::parse(real) else {
            return real.to_string();
        };
        let mut out = base.as_str().trim_end_matches('/').to_string();
        out.push_str(real.path());
        if let Some(q) = real.query() {
            out.push('?');
            out.push_str(q);
        }
        out
    }
}

fn check_template(key: &str, template: &str, allowed: &[&str]) -> Result<(), Invalid> {
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        let after = &rest[open + 1..];
        let Some(close) = after.find('}') else {
            return Err(invalid(key, "unclosed `{` in template"));
        };
        let name = &after[..close];
        if !allowed.contains(&name) {
            return Err(invalid(
                key,
                format!(
                    "unknown placeholder `{{{name}}}` (allowed: {})",
                    allowed.join(", ")
                ),
            ));
        }
        rest = &after[close + 1..];
    }
    let probe = allowed.iter().fold(template.to_string(), |t, p| {
        t.replace(&format!("{{{p}}}"), "1")
    });
    Url::parse(&probe).map_err(|e| invalid(key, format!("not a URL: {e}")))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jd() -> PlatformDef {
        load_file(&Path::new(env!("CARGO_MANIFEST_DIR")).join("crawlers/jd.toml")).unwrap()
    }

    #[test]
    fn search_urls_follow_each_platform_numbering() {
        let jd = jd();
        assert_eq!(
            jd.search_url("耐克 鞋", 3),
            "https://search.jd.com/Search?keyword=%E8%80%90%E5%85%8B+%E9%9E%8B&enc=utf-8&page=5"
        );
        assert_eq!(
            jd.item_url("100012345"),
            "https://item.jd.com/100012345.html"
        );
    }

    #[test]
    fn base_url_replaces_host_and_keeps_path() {
        let base = Url::parse("http://127.0.0.1:8400/jd").unwrap();
        assert_eq!(
            PlatformDef::fetch_url("https://search.jd.com/Search?keyword=a&page=1", Some(&base)),
            "http://127.0.0.1:8400/jd/Search?keyword=a&page=1"
        );
        assert_eq!(
            PlatformDef::fetch_url("https://item.jd.com/1.html", None),
            "https://item.jd.com/1.html"
        );
    }
}
