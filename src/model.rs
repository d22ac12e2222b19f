//! Shared nouns that move between the pipeline's steps: every stage and the store import them
//! from here, so none needs another stage's module to name what it handles.

pub(crate) mod alert;
mod case;
mod verdict;

pub(crate) use case::DOMAINS_PLATFORM;
pub use case::{CaseState, NoticeKind, TransitionDetails};
pub(crate) use case::{InfringementKind, UnknownState, cndrp_deadline, counter_notice_deadline};
pub use verdict::{MATCHER_VERSION, Outcome, Reason, ReasonCode, Verdict};

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

/// A brand owner's registry entry: who holds the rights and which marks they hold.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Brand {
    /// Unique name, e.g. "Nike".
    pub name: String,
    /// The rights holder named in notices.
    pub owner: String,
    /// Alert recipients.
    pub contacts: Vec<String>,
    /// Typical lowest genuine price, in CNY.
    pub reference_price_cny: Option<f64>,
    /// Exact shop names of authorised sellers.
    pub authorized_sellers: Vec<String>,
    /// Unregistered names the brand is known by.
    pub aliases: Vec<String>,
    /// Domain names the brand holds: never candidates of the domain watch.
    #[serde(default)]
    pub domains: Vec<String>,
    pub marks: Vec<Mark>,
    /// How the brand's contacts hear about matches.
    #[serde(default)]
    pub alerts: AlertPrefs,
    /// Genuine price floors by goods group (`[[brand.price]]`); `reference_price_cny` is the
    /// fallback for goods in none of them.
    #[serde(default)]
    pub prices: Vec<PriceFloor>,
    /// A well-known mark (驰名商标): a class mismatch no longer clears.
    #[serde(default)]
    pub well_known: bool,
    /// Whether the plain mark at a genuine price from a shop neither authorised nor official
    /// is a lead (`unauthorised_seller`). On unless the registry turns it off.
    #[serde(default = "yes")]
    pub watch_unauthorised: bool,
    /// Whether platform self-operated stores and official flagship stores named after the
    /// brand count as authorised. On unless the registry turns it off.
    #[serde(default = "yes")]
    pub trust_official_stores: bool,
    /// The brand's own product photos and logos (`[[brand.image]]`), for listings that reuse
    /// them.
    #[serde(default)]
    pub images: Vec<BrandImage>,
}

fn yes() -> bool {
    true
}

impl Default for Brand {
    fn default() -> Self {
        Brand {
            name: String::new(),
            owner: String::new(),
            contacts: Vec::new(),
            reference_price_cny: None,
            authorized_sellers: Vec::new(),
            aliases: Vec::new(),
            domains: Vec::new(),
            marks: Vec::new(),
            alerts: AlertPrefs::default(),
            prices: Vec::new(),
            well_known: false,
            watch_unauthorised: true,
            trust_official_stores: true,
            images: Vec::new(),
        }
    }
}

/// One of a brand's reference images.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BrandImage {
    /// As the registry gives it; a relative path is relative to the registry file.
    pub path: String,
    #[serde(default)]
    pub kind: ImageKind,
    /// SHA-256 of the file, hex; empty until the file is read.
    #[serde(skip)]
    pub sha256: String,
    /// The perceptual hashes it is found by (as it is first, then cropped and mirrored);
    /// empty until the file is read.
    #[serde(skip)]
    pub hashes: Vec<u64>,
    /// The file's bytes, when read from the file for an import; never read back from the store
    /// with the brand.
    #[serde(skip)]
    pub bytes: Vec<u8>,
}

/// What a reference image shows.
#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    Serialize,
    Deserialize,
    strum::IntoStaticStr,
    strum::EnumString,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum ImageKind {
    /// A photo of the goods.
    #[default]
    Product,
    /// The brand's logo.
    Logo,
}

impl ImageKind {
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

/// The lowest genuine price of one group of a brand's goods (`[[brand.price]]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PriceFloor {
    /// Words that place a listing in the group when its category or title has one
    /// (耳机, earphones). Stored as written; matched case-insensitively.
    #[serde(default)]
    pub words: Vec<String>,
    /// Nice classes that place a listing in the group when its goods fall in one.
    #[serde(default)]
    pub classes: Vec<u8>,
    /// The lowest genuine price, in CNY.
    pub min_price_cny: f64,
}

/// Why a reviewer rejected a draft as not infringing.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    Serialize,
    Deserialize,
    strum::EnumString,
    strum::IntoStaticStr,
    strum::Display,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum RejectReason {
    /// The shop is allowed to sell the brand.
    AuthorisedSeller,
    /// The goods are genuine.
    GenuineGoods,
    /// The goods are not the brand's kind of goods (a fruit, a myth, a game).
    NotOurGoods,
}

impl RejectReason {
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

/// What an allow rule matches.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    Serialize,
    Deserialize,
    strum::EnumString,
    strum::IntoStaticStr,
    strum::Display,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum AllowKind {
    /// A shop name, compared as shop names are (case and width folded).
    Seller,
    /// Words that all appear in the title (case and width folded).
    Title,
}

/// A reviewer's rule that keeps a known false positive from coming back.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AllowRule {
    /// The brand whose hits it clears.
    pub brand: String,
    pub kind: AllowKind,
    pub pattern: String,
    pub reason: RejectReason,
}

/// A brand's alert preferences (`[brand.alerts]` in the registry).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct AlertPrefs {
    pub mode: AlertMode,
    /// Digest schedule, a cron expression with 5 or 6 fields (UTC); `None` = daily at 08:00.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
    pub language: Language,
    /// A report of the month, as a PDF attachment, early each month.
    #[serde(default, skip_serializing_if = "ReportSchedule::is_off")]
    pub report: ReportSchedule,
}

/// How often a brand's contacts get a report. Stored in `brands.alert_report`.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Default,
    Serialize,
    Deserialize,
    strum::EnumString,
    strum::IntoStaticStr,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum ReportSchedule {
    #[default]
    Off,
    /// The previous month's report, on the 1st.
    Monthly,
}

impl ReportSchedule {
    pub fn as_str(self) -> &'static str {
        self.into()
    }

    pub fn is_off(&self) -> bool {
        *self == ReportSchedule::Off
    }
}

/// When a brand's contacts are emailed. Stored in `brands.alert_mode` as its snake_case name.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Default,
    Serialize,
    Deserialize,
    strum::EnumString,
    strum::IntoStaticStr,
    strum::Display,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum AlertMode {
    /// One email per crawl for new infringing listings, plus the digest for the rest.
    #[default]
    Immediate,
    /// Everything waits for the digest.
    Digest,
    /// No email at all.
    Off,
}

impl AlertMode {
    /// The stored and configured name.
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

/// A language markwatch writes in: a brand's alert emails (`brands.alert_language`, English
/// unless set) and takedown notices (each in every language of [`Language::ALL`]). Its code
/// ("en", "zh") is what is stored, configured, serialised and put in template file names.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    Default,
    Serialize,
    Deserialize,
    strum::EnumString,
    strum::IntoStaticStr,
    strum::Display,
)]
#[serde(rename_all = "snake_case")]
#[strum(
    serialize_all = "snake_case",
    parse_err_ty = String,
    parse_err_fn = unknown_language
)]
pub enum Language {
    #[default]
    En,
    Zh,
}

fn unknown_language(s: &str) -> String {
    format!("unknown language `{s}`; expected zh or en")
}

impl Language {
    /// Every language, in the order notices are written: Chinese first.
    pub(crate) const ALL: [Language; 2] = [Language::Zh, Language::En];

    /// The language's code, "en" or "zh".
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

/// A registered trademark.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Mark {
    pub text: String,
    /// ISO 3166 alpha-2 code, or "WIPO" / "EU".
    pub jurisdiction: String,
    pub registration_no: String,
    /// Nice classes, 1..=45, sorted and unique.
    pub classes: Vec<u8>,
    pub expires: Option<NaiveDate>,
}

impl Mark {}

/// A listing as extracted from a platform page.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Listing {
    /// Platform key, e.g. "taobao".
    pub platform: String,
    /// The platform's own item id (Taobao nid, JD SKU, Amazon ASIN).
    pub item_id: String,
    /// Canonical item URL in the platform's real form.
    pub url: String,
    pub title: String,
    /// Shop or seller name.
    pub seller: Option<String>,
    /// The platform's own id for the shop, which outlives a change of name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seller_id: Option<String>,
    /// Where the page says it ships from ("广东 深圳").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ship_from: Option<String>,
    /// Lowest displayed price.
    pub price: Option<f64>,
    /// ISO 4217, "CNY" on every platform we watch.
    pub currency: String,
    pub category: Option<String>,
    /// Whether the platform marked it as an advertisement.
    #[serde(default)]
    pub is_ad: bool,
    /// Whether the page marks the shop as the platform's own (京东自营, 天猫超市, sold by
    /// Amazon): read from the page, never guessed from the shop name.
    #[serde(default)]
    pub self_operated: bool,
    /// The main image's URL, from the search page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// Perceptual hashes of the photos fetched so far; filled by the store and the image
    /// fetcher, never read from a page.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub image_hashes: Vec<u64>,
}

/// Why a run starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, strum::IntoStaticStr)]
#[strum(serialize_all = "snake_case")]
pub(crate) enum Trigger {
    /// Its slot came while the daemon was running.
    Schedule,
    /// Its slot passed while the daemon was down.
    CatchUp,
    /// It runs a slot again whose run was cut short.
    Resume,
    /// Someone asked for it (`markwatch crawl --now`, the API).
    Manual,
}

impl Trigger {
    pub(crate) fn as_str(self) -> &'static str {
        self.into()
    }
}

/// How a slot is stored: RFC 3339 UTC, to the second.
pub(crate) fn slot_key(slot: chrono::DateTime<chrono::Utc>) -> String {
    slot.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The strings are stored in the database and written in registries: they never change.
    #[test]
    fn stored_names_are_stable() {
        for (mode, name) in [
            (AlertMode::Immediate, "immediate"),
            (AlertMode::Digest, "digest"),
            (AlertMode::Off, "off"),
        ] {
            assert_eq!(mode.as_str(), name);
            assert_eq!(mode.to_string(), name);
            assert_eq!(name.parse::<AlertMode>(), Ok(mode));
            assert_eq!(serde_json::to_value(mode).unwrap(), name);
        }
        for (lang, name) in [(Language::En, "en"), (Language::Zh, "zh")] {
            assert_eq!(lang.as_str(), name);
            assert_eq!(lang.to_string(), name);
            assert_eq!(name.parse::<Language>(), Ok(lang));
            assert_eq!(serde_json::to_value(lang).unwrap(), name);
            assert_eq!(
                serde_json::from_value::<Language>(name.into()).unwrap(),
                lang
            );
        }
        assert!("Immediate".parse::<AlertMode>().is_err());
        assert_eq!(
            "EN".parse::<Language>(),
            Err("unknown language `EN`; expected zh or en".to_owned())
        );
        assert_eq!(Language::default(), Language::En);
        assert_eq!(Trigger::CatchUp.as_str(), "catch_up");
        assert_eq!(Trigger::Manual.as_str(), "manual");
        assert_eq!(AlertMode::default(), AlertMode::Immediate);
    }
}
