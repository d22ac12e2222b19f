//! markwatch: watches Chinese e-commerce platforms for listings that infringe registered
//! trademarks, drafts takedown notices with evidence, and alerts brand owners.
//!
//! Data moves one way: schedule → fetch → extract → store → match → notice → alert → review.

#![warn(unreachable_pub)]

// The modules are private: what the binary, the tests and the benches use is re-exported below,
// grouped by stage, and everything else is the crate's own business (so rustc finds dead code).

/// Platform accounts: exported cookies, proxies, pace; stored sealed.
mod accounts;
/// Email alerts: the outbox, batching, digests, delivery with retries.
mod alert;
/// The case lifecycle of a takedown notice: states, transitions, deadlines.
mod case;
/// Charts as SVG text, readable without colour.
mod chart;
/// Configuration: defaults, `markwatch.toml`, `MARKWATCH_*` variables.
mod config;
/// One crawl: fetch → extract → store for every platform and watched keyword.
mod crawl;
/// Cron expressions and UTC offsets: the one reader for crawl and digest schedules.
mod cron;
/// The daemon (`markwatch serve`): scheduler, runs, health, metrics, control API, shutdown.
mod daemon;
/// The .CN domain watch: candidates, DNS, home pages judged, CNDRP drafts.
mod domains;
/// Evidence packs (zip + manifest.json) for notices, and their verification.
mod evidence;
/// Decoding and listing extraction from fetched pages.
mod extract;
/// Polite HTTP: pacing, retries, Retry-After; responses kept as evidence.
mod fetch;
/// The fixture platforms: an HTTP server rendering pages from the catalogue, with faults.
#[cfg(feature = "fixtures")]
mod fixture_server;
/// Listing photos and reference images: bounded decoding, perceptual hashes.
mod images;
/// `accounts login`: a person logs in in Chromium; the session's cookies are captured.
mod login;
/// Matching listings against the registry: an explained verdict per listing.
mod matcher;
/// Prometheus metrics, read from the database at scrape time.
mod metrics;
/// Shared nouns: brands, marks, listings.
mod model;
/// A brand's monthly report, as HTML and as PDF.
mod monthly;
/// Takedown notices: drafting by platform rules, templates, form exports.
mod notice;
/// Crawler definitions (`crawlers/*.toml`) loaded into `PlatformDef` values.
mod platform;
/// The brand registry file format (TOML and CSV): parse, validate, export.
mod registry;
/// Re-scoring stored listings after the registry or the matcher changes.
mod rematch;
/// One PDF report per notice: screenshots, hashes, times, timestamps, reasons.
mod report;
/// Cron schedules and watches: when the daemon crawls, and how restarts keep to it.
mod schedule;
/// Evidence sealing: compression, hashes and the hash chain; opening and verifying it.
mod seal;
/// Secrets at rest: the key and sealing (XChaCha20-Poly1305).
mod secrets;
/// Seller networks: shops linked by a seller id, a name stem, a photo or a relisting's pattern.
mod sellers;
/// SQLite storage; all SQL lives here.
mod store;
#[cfg(test)]
mod test_support;
/// Trusted timestamps (RFC 3161) over the evidence chain's head.
mod timestamp;
/// Weekly trends for the dashboard and the monthly report.
mod trends;
/// The review UI and JSON API: axum router, users, sessions, CSRF, security headers.
mod web;

// Configuration.
pub use config::{
    Config, ConfigError, DomainsConfig, EmailTransport, LogFormat, PlatformConfig, TsaConfig,
    WatchKind,
};

// Shared nouns.
pub use model::{
    AllowKind, AllowRule, Brand, BrandImage, CaseState, ImageKind, Language, Listing,
    MATCHER_VERSION, Mark, NoticeKind, Outcome, PriceFloor, Reason, ReasonCode, RejectReason,
    TransitionDetails, Verdict,
};

// Platform definitions and the registry.
pub use platform::{
    BlockKind, CaptureFormat, CaptureRule, DefKind, ExportField, FetchWith, LoginRules,
    PlatformDef, PlatformError, crawlable, display_name as platform_display_name,
    load_dir as load_definitions, load_file as load_definition,
};
pub use registry::{
    RegistryError, load_file as load_registry, parse_toml as parse_registry_toml,
    to_toml as registry_to_toml,
};

// Fetching and reading pages.
pub use extract::{
    CapturedReply, CharsetSource, DetailFields, ExtractError, Extracted, SearchPage,
    capture_answers, decode_capture, decode_page, detect_block, detect_block_captured,
    extract_detail, extract_file, extract_search, extract_search_captured,
    extract_search_captured_lenient, extract_search_lenient,
};
pub use fetch::Page;
pub use fetch::browser::{
    BrowserError, BrowserOptions, BrowserSession, Captured, Load, Loaded, SCREENSHOT_MAX_HEIGHT,
    find_chromium,
};
pub use images::{Fingerprint, ImageError, ImageHasher, distance as image_distance};

// Matching.
pub use matcher::{
    Item as MatchItem, MatchFileError, MatchSettings, Matcher, evaluate, read_labels,
    read_listings, run_jsonl,
};

// Evidence sealing and storage.
pub use seal::{Part, PartKind, open as open_sealed, verify_chain as verify_evidence_chain};
pub use store::{
    Alert, AlertState, ApiToken, ApiTokenInfo, NoticeFilter, NoticeSort, Role, ScheduleRunRow,
    Store, StoredPage, TransitionError, UserError,
};
pub use timestamp::{
    StampOutcome, TimestampError, TimestampReport, TokenCheck, TokenInfo, TrustAnchor, Tsa,
    check_reply as check_timestamp_reply, verify_timestamps,
};
// Reviewer feedback: rejection reasons, allow rules, agreement with the matcher.
pub use store::{
    AllowRequest, AllowRuleRow, AllowRulesStamp, CodeAgreement, Feedback, ReasonCount, Rejection,
    ReviewStats,
};

// Crawling and schedules.
pub use crawl::{
    Crawl, CrawlError, Pace, RunSummary, Search, pipeline_matcher, record_page,
    record_page_with_parts, watch_keywords,
};
pub use cron::CronExpr;
pub use schedule::Watch;
pub use store::{Backend, Database, RunStatus, TableCount, WorkerRow};

// Monthly reports.
pub use model::ReportSchedule;
pub use monthly::{
    MonthlyError, MonthlyReport, build as build_monthly_report, parse_month, previous_month,
    print_pdf as print_monthly_report, render_html as monthly_report_html,
    render_pdf as monthly_report_pdf,
};
pub use store::{PeriodCounts, RelistedListing, TopSeller};

// Seller networks.
pub use notice::draft_network;
pub use sellers::{
    Link as NetworkLink, Network, Shop, Signal, load as load_seller_networks, name_stem,
    networks as seller_networks,
};
pub use store::SellerListing;

// Trends and charts.
pub use store::{AccountTally, TrendTallies, WeeklyRemovals, WeeklyTally};
pub use trends::{
    AccountOutcomes, CaseWeek, Chart, ChartKind, Found, PERIODS, Removals, Table, Totals, Trends,
    load as load_trends, week_of,
};

// The domain watch.
pub use domains::{
    Candidate as DomainCandidate, CandidateOptions, DomainError, DomainReport, DomainResolver,
    Lookup as DomainLookup, PLATFORM as DOMAINS_PLATFORM, Records as DomainRecords,
    Rule as DomainRule, candidates as domain_candidates, run as run_domain_watch,
};
pub use store::DomainRow;

// Notices, cases and evidence packs.
pub use case::{GOOD_FAITH_MONTHS, MAX_COUNTER_RATE, MIN_SUCCESS_RATE, check_filing, good_faith};
pub use evidence::{PackExtras, export_pack, verify_pack, verify_pack_with_store};
pub use notice::{
    DraftSummary, ExportFormat, ExportOptions, NoticeContext, Templates, bundled_templates,
    escape_controls, explain_en, export_platform_batch, queue_drafts,
};
pub use report::{ReportError, render_report, write_report_html};

// Alerts.
pub use alert::{AlertError, Sender};
pub use rematch::rematch;

// Platform accounts and secrets at rest.
pub use accounts::{
    AccountError, AccountPace, Cookie, CookieFileError, OpenedAccount, PlatformCookies, ProxyUrl,
    cookies_for_platform, cookies_for_platform_at, import_account, open_accounts, platform_domains,
    read_cookie_file,
};
pub use login::{
    BrowserView, LoginError, LoginRun, capture_session, start_url, tunnel_instructions,
};
pub use secrets::{SECRET_KEY_ENV, SecretError, SecretKey, default_key_file};
pub use store::{AccountState, AccountSummary, SaveOutcome};

// The daemon and the review UI.
pub use daemon::http::{CrawlRequest, CrawlResponse};
pub use daemon::pipeline::Pipeline;
pub use daemon::{
    DaemonLock, STATE_API_ADDR, ServeOptions, WorkerProcessOptions, control_token_path,
    run_worker_process, serve as serve_daemon,
};
pub use web::{WebState, serve as serve_review_ui};

// The fixture platforms and seeders (feature `fixtures`).
#[cfg(feature = "fixtures")]
pub use fixture_server::{
    Fault, FixtureDns, FixtureMode, FixtureOptions, FixtureServer, FixtureZone, MTOP_APP_KEY,
    MTOP_SEARCH_API, ModernOptions, ZoneEntry, mtop_sign, parse_faults, serve as serve_fixtures,
    serve_zone, write_fixture_images,
};
#[cfg(feature = "fixtures")]
pub use web::seed::{SeedListing, seed_history, seed_listings, seed_notice, seed_notices};
