//! One configuration tree: defaults, then `markwatch.toml`, then `MARKWATCH_*` variables.
//!
//! Nested keys use a double underscore in the environment: `MARKWATCH_EMAIL__SMTP__HOST`.
//! Command-line flags (`--db`, `--log-format`) are applied by the caller after loading.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use crate::store::Database;
use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};

/// The file read when `--config` is not given, if it exists.
pub(crate) const DEFAULT_CONFIG_FILE: &str = "markwatch.toml";

/// A bad configuration: which key, from which source, and why.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file named with `--config` does not exist.
    #[error("config file {0} does not exist")]
    Missing(PathBuf),
    /// A key has the wrong type or is unknown; figment's message names the key and source.
    #[error("{0}")]
    Invalid(Box<figment::Error>),
    /// A value parsed but makes no sense.
    #[error("config key `{key}`: {message}")]
    Value { key: &'static str, message: String },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// The SQLite database file, or a `postgres://` URL for a database shared by several
    /// machines.
    pub database: Database,
    pub log: LogConfig,
    pub crawl: CrawlConfig,
    /// Per-platform overrides, keyed by platform name (`taobao`, `tmall`, `jd`, `amazon_cn`).
    pub platforms: BTreeMap<String, PlatformConfig>,
    pub email: EmailConfig,
    pub web: WebConfig,
    /// When the daemon crawls: a default cron, per-platform overrides, extra watches.
    pub schedule: ScheduleConfig,
    /// The long-running process (`markwatch serve`).
    pub daemon: DaemonConfig,
    pub notices: NoticesConfig,
    pub matching: MatchingConfig,
    pub evidence: EvidenceConfig,
    /// The .CN domain watch.
    pub domains: DomainsConfig,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            database: Database::Sqlite(PathBuf::from("markwatch.db")),
            log: LogConfig::default(),
            crawl: CrawlConfig::default(),
            platforms: BTreeMap::new(),
            email: EmailConfig::default(),
            web: WebConfig::default(),
            schedule: ScheduleConfig::default(),
            daemon: DaemonConfig::default(),
            notices: NoticesConfig::default(),
            matching: MatchingConfig::default(),
            evidence: EvidenceConfig::default(),
            domains: DomainsConfig::default(),
        }
    }
}

/// `[domains]`: how the domain watch looks names up and visits their sites.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DomainsConfig {
    /// The name server asked, `IP:port` (`223.5.5.5:53`), or `system` for the machine's own
    /// (`/etc/resolv.conf`).
    pub resolver: String,
    /// DNS queries per second, across the whole watch. A candidate not registered costs one
    /// query, a registered one four (A, AAAA, MX, NS).
    pub queries_per_second: u32,
    /// How long one DNS query may take before it counts as failed.
    pub timeout_secs: u64,
    /// Zones searched besides CNNIC's (`cn`, `com.cn`, `net.cn`, `org.cn`, `中国`, `公司`,
    /// `网络`), e.g. `["com", "hk"]`.
    pub extra_tlds: Vec<String>,
    /// The port home pages are fetched on, when not 80 (a test zone's web server).
    pub http_port: Option<u16>,
}

impl Default for DomainsConfig {
    fn default() -> Self {
        DomainsConfig {
            resolver: "system".to_owned(),
            queries_per_second: 20,
            timeout_secs: 5,
            extra_tlds: Vec::new(),
            http_port: None,
        }
    }
}

/// What the evidence chain is proven by besides its own hashes.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EvidenceConfig {
    /// A trusted timestamp authority (RFC 3161) that stamps the chain's head.
    pub tsa: Option<TsaConfig>,
}

/// `[evidence.tsa]`: where timestamp tokens come from and whom they are checked against.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TsaConfig {
    /// The TSA's HTTP(S) endpoint; requests are `application/timestamp-query` POSTs.
    pub url: String,
    /// The PEM certificate of the CA that issued the TSA's signing certificate (or the TSA's
    /// own certificate): tokens are verified against it.
    pub ca: PathBuf,
    /// The least time between two tokens: a run that ends sooner after the last one leaves
    /// its records to the next token.
    pub interval_secs: u64,
    pub timeout_secs: u64,
}

impl Default for TsaConfig {
    fn default() -> Self {
        TsaConfig {
            url: String::new(),
            ca: PathBuf::new(),
            interval_secs: 3600,
            timeout_secs: 30,
        }
    }
}

/// How listings are judged beyond the registry.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MatchingConfig {
    /// CNY per unit of other currencies (`USD = 7.2`): prices in them are converted before
    /// they are compared with reference prices. A currency not listed is not compared.
    pub rates: BTreeMap<String, f64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line, for log collectors.
    Json,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    pub format: LogFormat,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CrawlConfig {
    /// Folder of platform definitions (`<platform>.toml`).
    pub definitions: PathBuf,
    pub user_agent: String,
    /// Whole-request timeout, in seconds.
    pub timeout_secs: u64,
    /// Searched on every enabled platform besides the registry's marks and aliases.
    pub extra_keywords: Vec<String>,
    /// Item pages an earlier run left unfetched (it was cut short, the page failed) that each
    /// run fetches per platform, after its searches and at the platform's pace; 0 for none.
    pub missing_item_pages_per_run: u32,
    /// Listing photos each run fetches per platform, after its pages, at the platform's pace:
    /// every listing's main photo, then the gallery of flagged listings; 0 for none.
    pub images_per_run: u32,
    /// The browser for definitions that fetch with `fetch = "browser"`, and for screenshots.
    pub browser: BrowserConfig,
}

/// `[crawl.browser]`: Debian's Chromium, one per account in use, driven over DevTools.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BrowserConfig {
    /// The Chromium binary [default: /usr/bin/chromium, else `chromium` on PATH].
    pub executable: Option<PathBuf>,
    /// Tabs each account's browser loads pages in at once.
    pub tabs: usize,
    /// How long one page may take to load, its script's API calls included.
    pub page_timeout_secs: u64,
    /// A full-page screenshot of the item page of every flagged listing, into its evidence.
    pub screenshots: bool,
}

impl Default for BrowserConfig {
    fn default() -> Self {
        BrowserConfig {
            executable: None,
            tabs: 2,
            page_timeout_secs: 30,
            screenshots: true,
        }
    }
}

impl Default for CrawlConfig {
    fn default() -> Self {
        CrawlConfig {
            definitions: PathBuf::from("crawlers"),
            user_agent: concat!("markwatch/", env!("CARGO_PKG_VERSION")).to_owned(),
            timeout_secs: 30,
            extra_keywords: Vec::new(),
            missing_item_pages_per_run: 200,
            images_per_run: 1000,
            browser: BrowserConfig::default(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PlatformConfig {
    pub enabled: bool,
    /// Fetch from here instead of the definition's real hosts (e.g. the fixture server).
    pub base_url: Option<String>,
    /// This platform's cron schedule under the daemon, or "off"; default `schedule.cron`.
    pub schedule: Option<String>,
    /// Overrides the definition's requests per second (0 = no limit: loopback only).
    pub requests_per_second: Option<f64>,
    /// Overrides the definition's requests in flight at once.
    pub concurrency: Option<u32>,
    /// Overrides how the definition fetches search and item pages ("http" or "browser").
    pub fetch: Option<crate::platform::FetchWith>,
    /// Overrides the definition's `login.required` (false: crawl without accounts).
    pub login_required: Option<bool>,
}

impl Default for PlatformConfig {
    fn default() -> Self {
        PlatformConfig {
            enabled: true,
            base_url: None,
            schedule: None,
            requests_per_second: None,
            concurrency: None,
            fetch: None,
            login_required: None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EmailTransport {
    /// Write `.eml` files into `email.dir`: works with no mail server.
    #[default]
    File,
    Smtp,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EmailConfig {
    pub transport: EmailTransport,
    /// Where the file transport writes.
    pub dir: PathBuf,
    pub from: String,
    /// Optional address for operators: crawl failures and dead alerts.
    pub operations: Option<String>,
    pub smtp: SmtpConfig,
    /// Infringing matches of one brand wait this long for more (the rest of the crawl) before
    /// they go out as one email.
    pub batch_window_secs: u64,
    /// ... but never longer than this after the first one.
    pub batch_max_wait_secs: u64,
    /// Attempts before an alert is `dead`.
    pub max_attempts: u32,
    /// First retry delay; doubles each attempt up to `retry_max_secs`.
    pub retry_base_secs: u64,
    pub retry_max_secs: u64,
    /// How long a sender holds an alert in `sending` before another may take it over (a
    /// crashed sender's alerts wait this long). Keep it above the SMTP timeout.
    pub lease_secs: u64,
    /// SMTP connection and command timeout.
    pub timeout_secs: u64,
    /// How often the sender looks for work.
    pub poll_secs: u64,
    /// Operators are emailed after this many consecutive failed runs of a platform.
    pub operations_after_failures: u32,
    /// Digests list case deadlines falling within this many days.
    pub deadline_days: u32,
    /// Folder of template overrides (`en/immediate.html`, ...); bundled defaults otherwise.
    pub templates: Option<PathBuf>,
}

impl Default for EmailConfig {
    fn default() -> Self {
        EmailConfig {
            transport: EmailTransport::File,
            dir: PathBuf::from("outbox"),
            from: "markwatch <markwatch@localhost>".to_owned(),
            operations: None,
            smtp: SmtpConfig::default(),
            batch_window_secs: 30,
            batch_max_wait_secs: 600,
            max_attempts: 8,
            retry_base_secs: 30,
            retry_max_secs: 3600,
            lease_secs: 300,
            timeout_secs: 60,
            poll_secs: 10,
            operations_after_failures: 3,
            deadline_days: 7,
            templates: None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SmtpTls {
    #[default]
    Starttls,
    /// Implicit TLS, usually port 465.
    Tls,
    /// Plain text: only for a relay on loopback.
    None,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SmtpConfig {
    pub host: String,
    pub port: u16,
    pub tls: SmtpTls,
    pub username: Option<String>,
    /// Prefer `password_file` or `MARKWATCH_EMAIL__SMTP__PASSWORD` to writing it here.
    pub password: Option<Secret>,
    pub password_file: Option<PathBuf>,
}

impl Default for SmtpConfig {
    fn default() -> Self {
        SmtpConfig {
            host: "localhost".to_owned(),
            port: 587,
            tls: SmtpTls::Starttls,
            username: None,
            password: None,
            password_file: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WebConfig {
    /// Address the daemon's HTTP server listens on.
    pub addr: String,
    /// Public URL of the review UI, used for links in emails. An `https://` URL also makes
    /// the session cookie `Secure` with the `__Host-` prefix.
    pub base_url: String,
    /// Password checks (argon2id, about 19 MiB each) that may run at once; logins beyond
    /// this get 503 with Retry-After.
    pub max_password_checks: usize,
    /// A browser session ends after this many minutes without a request...
    pub session_idle_minutes: u32,
    /// ...and this many hours after login, whatever its use.
    pub session_hours: u32,
}

impl Default for WebConfig {
    fn default() -> Self {
        WebConfig {
            addr: "127.0.0.1:8080".to_owned(),
            base_url: "http://127.0.0.1:8080".to_owned(),
            max_password_checks: 4,
            session_idle_minutes: 30,
            session_hours: 12,
        }
    }
}

/// Takedown notices: who files them, under which accounts, from which templates.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NoticesConfig {
    /// Folder of notice templates (`<platform>.<lang>.txt` or `<template>.<lang>.txt`) that
    /// override the bundled ones; edited templates take effect at the next run.
    pub templates: Option<PathBuf>,
    /// The agent filing on the rights holders' behalf (law firm, brand-protection team); empty:
    /// the rights holder files itself.
    pub agent: String,
    /// The agent's contact (address, email, phone) printed in notices.
    pub agent_contact: String,
    /// Who signs the good-faith declaration.
    pub signatory: String,
    /// The platform account complaints are filed under, per platform; good-faith rates are
    /// tracked per account. Unlisted platforms use "default".
    pub accounts: BTreeMap<String, String>,
    /// How many days ahead `cases deadlines` looks.
    pub deadline_days: u32,
}

impl Default for NoticesConfig {
    fn default() -> Self {
        NoticesConfig {
            templates: None,
            agent: String::new(),
            agent_contact: String::new(),
            signatory: String::new(),
            accounts: BTreeMap::new(),
            deadline_days: 7,
        }
    }
}

impl NoticesConfig {
    /// The account complaints on `platform` are filed under.
    pub fn account_for(&self, platform: &str) -> &str {
        self.accounts
            .get(platform)
            .map(String::as_str)
            .unwrap_or("default")
    }
}

/// A value that must never be printed: `Debug` and `Serialize` redact it.
#[derive(Clone, PartialEq, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    pub(crate) fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\"[redacted]\"")
    }
}

impl Serialize for Secret {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str("[redacted]")
    }
}

impl Config {
    /// Loads defaults, then `file` (or `./markwatch.toml` if present), then the environment.
    pub fn load(file: Option<&Path>) -> Result<Config, ConfigError> {
        Self::load_with_env(file, Env::prefixed("MARKWATCH_"))
    }

    fn load_with_env(file: Option<&Path>, env: Env) -> Result<Config, ConfigError> {
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        match file {
            Some(path) if !path.exists() => return Err(ConfigError::Missing(path.to_owned())),
            Some(path) => figment = figment.merge(Toml::file_exact(path)),
            None if Path::new(DEFAULT_CONFIG_FILE).exists() => {
                figment = figment.merge(Toml::file_exact(DEFAULT_CONFIG_FILE))
            }
            None => {}
        }
        // MARKWATCH_CONFIG names the file itself and MARKWATCH_SECRET_KEY is the accounts' key;
        // the CLI reads both, not here.
        let env = env.ignore(&["config", "secret_key"]).split("__");
        let config: Config = figment
            .merge(env)
            .extract()
            .map_err(|e| ConfigError::Invalid(Box::new(e)))?;
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let bad = |key, message: &str| {
            Err(ConfigError::Value {
                key,
                message: message.to_owned(),
            })
        };
        if self
            .database
            .file()
            .is_some_and(|f| f.as_os_str().is_empty())
        {
            return bad("database", "must name a file or a postgres:// URL");
        }
        if self.crawl.timeout_secs == 0 {
            return bad("crawl.timeout_secs", "must be at least 1");
        }
        if self.domains.resolver != "system"
            && self
                .domains
                .resolver
                .parse::<std::net::SocketAddr>()
                .is_err()
        {
            return bad(
                "domains.resolver",
                "must be `system` or a name server's IP:port, like 223.5.5.5:53",
            );
        }
        if self.domains.queries_per_second == 0 {
            return bad("domains.queries_per_second", "must be at least 1");
        }
        if !(1..=60).contains(&self.domains.timeout_secs) {
            return bad("domains.timeout_secs", "must be between 1 and 60");
        }
        if self.crawl.browser.tabs == 0 {
            return bad("crawl.browser.tabs", "must be at least 1");
        }
        if self.crawl.browser.page_timeout_secs == 0 {
            return bad("crawl.browser.page_timeout_secs", "must be at least 1");
        }
        if self.crawl.user_agent.trim().is_empty() {
            return bad("crawl.user_agent", "must not be empty");
        }
        if let Some(tsa) = &self.evidence.tsa {
            if !(tsa.url.starts_with("http://") || tsa.url.starts_with("https://")) {
                return bad("evidence.tsa.url", "must be an http:// or https:// URL");
            }
            if tsa.ca.as_os_str().is_empty() {
                return bad(
                    "evidence.tsa.ca",
                    "must name the TSA's CA certificate (PEM)",
                );
            }
            if tsa.timeout_secs == 0 {
                return bad("evidence.tsa.timeout_secs", "must be at least 1");
            }
        }
        for (code, rate) in &self.matching.rates {
            if !(code.len() == 3 && code.bytes().all(|b| b.is_ascii_alphabetic())) {
                return Err(ConfigError::Value {
                    key: "matching.rates",
                    message: format!("`{code}` is not an ISO 4217 currency code such as USD"),
                });
            }
            if !(rate.is_finite() && *rate > 0.0) {
                return Err(ConfigError::Value {
                    key: "matching.rates",
                    message: format!("matching.rates.{code} must be a positive number of CNY"),
                });
            }
        }
        if self.email.smtp.password.is_some() && self.email.smtp.password_file.is_some() {
            return bad(
                "email.smtp.password_file",
                "set either email.smtp.password or email.smtp.password_file, not both",
            );
        }
        if self.email.transport == EmailTransport::Smtp && self.email.smtp.host.trim().is_empty() {
            return bad(
                "email.smtp.host",
                "must be set when email.transport = \"smtp\"",
            );
        }
        if self.web.addr.parse::<std::net::SocketAddr>().is_err() {
            return bad("web.addr", "must be an address like 127.0.0.1:8080");
        }
        if self.web.max_password_checks == 0 {
            return bad("web.max_password_checks", "must be at least 1");
        }
        if self.web.session_idle_minutes == 0
            || self.web.session_hours == 0
            || u64::from(self.web.session_idle_minutes) > u64::from(self.web.session_hours) * 60
        {
            return bad(
                "web.session_idle_minutes",
                "session_idle_minutes and session_hours must be at least 1, and the idle timeout no longer than session_hours",
            );
        }
        if self.email.max_attempts == 0 {
            return bad("email.max_attempts", "must be at least 1");
        }
        if self.email.retry_base_secs == 0 || self.email.retry_max_secs < self.email.retry_base_secs
        {
            return bad(
                "email.retry_max_secs",
                "retry_base_secs must be at least 1 and retry_max_secs at least retry_base_secs",
            );
        }
        if self.email.lease_secs == 0 || self.email.timeout_secs == 0 || self.email.poll_secs == 0 {
            return bad(
                "email.lease_secs",
                "lease_secs, timeout_secs and poll_secs must be at least 1",
            );
        }
        if self.email.operations_after_failures == 0 {
            return bad("email.operations_after_failures", "must be at least 1");
        }
        for (key, address) in [
            ("email.from", Some(&self.email.from)),
            ("email.operations", self.email.operations.as_ref()),
        ] {
            if let Some(address) = address
                && address.parse::<lettre::message::Mailbox>().is_err()
            {
                return Err(ConfigError::Value {
                    key,
                    message: format!("`{address}` is not an email address"),
                });
            }
        }
        for (name, platform) in &self.platforms {
            if let Some(url) = &platform.base_url
                && url::Url::parse(url).is_err()
            {
                return Err(ConfigError::Value {
                    key: "platforms.*.base_url",
                    message: format!("platforms.{name}.base_url is not a URL: {url}"),
                });
            }
        }
        self.validate_daemon()?;
        Ok(())
    }

    /// The effective configuration as TOML, secrets redacted.
    pub fn to_redacted_toml(&self) -> String {
        toml::to_string_pretty(self).unwrap_or_else(|e| format!("# cannot render: {e}\n"))
    }
}

/// When the daemon crawls.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ScheduleConfig {
    /// Each enabled platform's schedule unless `platforms.<name>.schedule` says otherwise.
    /// Five fields (Unix cron) or six/seven (seconds first, the `cron` crate's form).
    pub cron: String,
    /// Each run starts up to this many seconds after its cron time, chosen at random once.
    pub jitter_secs: u64,
    /// The cron expressions' clock, e.g. "+08:00" for China Standard Time.
    pub utc_offset: String,
    /// Extra watches: their own keywords or brands, platforms and schedule.
    pub watch: Vec<WatchConfig>,
}

impl Default for ScheduleConfig {
    fn default() -> Self {
        ScheduleConfig {
            cron: "0 */6 * * *".to_owned(),
            jitter_secs: 300,
            utc_offset: "+00:00".to_owned(),
            watch: Vec::new(),
        }
    }
}

/// A `[[schedule.watch]]` entry.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WatchConfig {
    /// Unique; must not be a platform name (those are the platforms' own watches).
    pub name: String,
    pub cron: String,
    /// Platforms searched [default: every enabled platform].
    pub platforms: Vec<String>,
    /// Search words [default: the marks and aliases of `brands`, or of the whole registry].
    pub keywords: Vec<String>,
    /// Only these brands' marks and aliases (names as in the registry).
    pub brands: Vec<String>,
    /// Overrides `schedule.jitter_secs`.
    pub jitter_secs: Option<u64>,
    /// `listings` (the default) crawls platforms; `domains` runs the .CN domain watch for
    /// `brands` (or the whole registry).
    pub kind: WatchKind,
}

/// What a watch looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WatchKind {
    #[default]
    Listings,
    Domains,
}

/// The long-running process.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DaemonConfig {
    /// On SIGTERM/SIGINT, the process exits within this many seconds: crawls still running
    /// then are abandoned (each page is all-or-nothing) and resumed at the next start.
    pub shutdown_timeout_secs: u64,
    /// A second listener for `/metrics`, `/healthz` and `/readyz` only (a private interface);
    /// `/metrics` then leaves `web.addr`.
    pub metrics_addr: Option<String>,
    /// A file holding the bearer token `/metrics` requires. Without it and without
    /// `metrics_addr`, `web.addr` (often behind a public proxy) serves no metrics.
    pub metrics_token_file: Option<PathBuf>,
    /// Crawl workers `serve` runs itself (`serve --workers`); 0 leaves every job to
    /// `markwatch worker` processes.
    pub workers: u32,
    /// A worker holds a job this long past its last heartbeat (sent every third of it); a job
    /// whose worker died is taken over by another once the lease has run out.
    pub job_lease_secs: u64,
}

impl Default for DaemonConfig {
    fn default() -> Self {
        DaemonConfig {
            shutdown_timeout_secs: 30,
            metrics_addr: None,
            metrics_token_file: None,
            workers: 1,
            job_lease_secs: 60,
        }
    }
}

impl Config {
    fn validate_daemon(&self) -> Result<(), ConfigError> {
        let value = |key, message: String| Err(ConfigError::Value { key, message });
        if !(3..=86_400).contains(&self.daemon.job_lease_secs) {
            return value(
                "daemon.job_lease_secs",
                "must be between 3 and 86400".to_owned(),
            );
        }
        if let Err(e) = crate::cron::CronExpr::parse(&self.schedule.cron) {
            return value("schedule.cron", e.to_string());
        }
        if let Err(e) = crate::cron::parse_utc_offset(&self.schedule.utc_offset) {
            return value("schedule.utc_offset", e.to_string());
        }
        for (name, platform) in &self.platforms {
            if let Some(cron) = &platform.schedule
                && cron.trim() != "off"
                && let Err(e) = crate::cron::CronExpr::parse(cron)
            {
                return value(
                    "platforms.*.schedule",
                    format!("platforms.{name}.schedule: {e}"),
                );
            }
            if platform
                .requests_per_second
                .is_some_and(|r| !(r >= 0.0 && r.is_finite()))
            {
                return value(
                    "platforms.*.requests_per_second",
                    format!("platforms.{name}.requests_per_second must be 0 or more"),
                );
            }
            if platform.concurrency == Some(0) {
                return value(
                    "platforms.*.concurrency",
                    format!("platforms.{name}.concurrency must be at least 1"),
                );
            }
        }
        let mut names = std::collections::BTreeSet::new();
        for (i, watch) in self.schedule.watch.iter().enumerate() {
            let name = watch.name.trim();
            if name.is_empty() {
                return value(
                    "schedule.watch.name",
                    format!("schedule.watch[{i}] needs a name"),
                );
            }
            if !names.insert(name) {
                return value(
                    "schedule.watch.name",
                    format!("schedule.watch `{name}` is defined twice"),
                );
            }
            if let Err(e) = crate::cron::CronExpr::parse(&watch.cron) {
                return value(
                    "schedule.watch.cron",
                    format!("schedule.watch `{name}`: {e}"),
                );
            }
        }
        if let Some(addr) = &self.daemon.metrics_addr
            && addr.parse::<std::net::SocketAddr>().is_err()
        {
            return value(
                "daemon.metrics_addr",
                "must be an address like 127.0.0.1:9184".to_owned(),
            );
        }
        if self.daemon.shutdown_timeout_secs == 0 {
            return value(
                "daemon.shutdown_timeout_secs",
                "must be at least 1".to_owned(),
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Loads `toml` as the config file, with no environment overrides.
    fn load(toml: &str) -> Result<Config, ConfigError> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("markwatch.toml");
        std::fs::write(&path, toml).unwrap();
        Config::load_with_env(Some(&path), Env::prefixed("MARKWATCH_UNIT_TEST_"))
    }

    #[test]
    fn no_file_gives_defaults() {
        let config = Config::load_with_env(None, Env::prefixed("MARKWATCH_UNIT_TEST_")).unwrap();
        assert_eq!(config, Config::default());
        assert_eq!(
            config.database,
            Database::Sqlite(PathBuf::from("markwatch.db"))
        );
    }

    #[test]
    fn exchange_rates_are_read_and_checked() {
        let config = load("[matching.rates]\nUSD = 7.2\nEUR = 7.8\n").unwrap();
        assert_eq!(config.matching.rates.get("EUR"), Some(&7.8));
        let err = load("[matching.rates]\nUSD = -1\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("matching.rates.USD"), "{err}");
        let err = load("[matching.rates]\ndollar = 7\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("`dollar`"), "{err}");
    }

    #[test]
    fn unknown_key_is_named() {
        let err = load("databse = \"x.db\"\n").unwrap_err().to_string();
        assert!(err.contains("databse"), "{err}");
    }

    #[test]
    fn wrong_type_names_the_key() {
        let err = load("[crawl]\ntimeout_secs = \"soon\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("timeout_secs"), "{err}");
    }

    #[test]
    fn secrets_are_redacted() {
        let config = load("[email.smtp]\npassword = \"hunter2\"\n").unwrap();
        assert_eq!(
            config.email.smtp.password.as_ref().map(Secret::expose),
            Some("hunter2")
        );
        let shown = config.to_redacted_toml();
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("[redacted]"), "{shown}");
        assert!(!format!("{config:?}").contains("hunter2"));
        let config = load("database = \"postgres://mw:hunter2@db.internal/mw\"\n").unwrap();
        let shown = config.to_redacted_toml();
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(
            shown.contains("postgres://mw:***@db.internal/mw"),
            "{shown}"
        );
        assert!(!format!("{config:?}").contains("hunter2"));
    }

    #[test]
    fn bad_values_are_named() {
        let err = load("[web]\naddr = \"everywhere\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("web.addr"), "{err}");
    }
}
