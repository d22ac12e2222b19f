//! Command-line edge: clap definitions and dispatch to the library. No logic of its own.

mod accounts;
mod alerts;
mod backup;
#[cfg(feature = "fixtures")]
mod bench;
#[cfg(feature = "fixtures")]
mod bench_browser;
#[cfg(feature = "fixtures")]
mod bench_domains;
mod brands;
mod cases;
mod config;
mod crawl;
#[cfg(feature = "fixtures")]
mod demo;
mod domains;
mod evidence;
mod extract;
mod feedback;
#[cfg(feature = "fixtures")]
mod fixtures;
mod matching;
mod migrate_db;
mod queue;
mod report;
#[cfg(feature = "fixtures")]
mod seed;
mod sellers;
mod serve;
mod users;
mod workers;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use markwatch::MatchFileError;
use markwatch::PlatformError;
use markwatch::RegistryError;
use markwatch::Store;
use markwatch::{Config, ConfigError, LogFormat};

/// Exit status for a runtime failure (database, network, I/O).
pub const EXIT_FAILURE: ExitCode = ExitCode::FAILURE;
/// Exit status for bad input: an invalid file, configuration or argument.
pub const EXIT_BAD_INPUT: u8 = 2;

#[derive(Debug, Parser)]
#[command(
    name = "markwatch",
    version,
    about = "Watches e-commerce platforms for trademark infringement"
)]
pub struct Cli {
    /// Configuration file [default: ./markwatch.toml if present]
    #[arg(long, global = true, env = "MARKWATCH_CONFIG", value_name = "PATH")]
    config: Option<PathBuf>,
    /// SQLite database file or postgres:// URL; overrides `database` in the configuration
    #[arg(long, global = true, value_name = "PATH|URL", value_parser = markwatch::Database::parse)]
    db: Option<markwatch::Database>,
    /// Log format; overrides `log.format` (RUST_LOG sets the level)
    #[arg(long, global = true, value_enum)]
    log_format: Option<LogFormat>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Platform accounts for logged-in crawling: import exported cookies, list, remove
    #[command(subcommand)]
    Accounts(accounts::AccountsCommand),
    /// Measure throughput and memory (method and figures: docs/benchmarks.md)
    #[cfg(feature = "fixtures")]
    #[command(subcommand)]
    Bench(bench::BenchCommand),
    /// Manage the brand registry: brands, marks, aliases, authorised sellers
    #[command(subcommand)]
    Brands(brands::BrandsCommand),
    /// Inspect the configuration
    #[command(subcommand)]
    Config(config::ConfigCommand),
    /// Crawl the platforms for the registry's marks and store listings with evidence
    Crawl(crawl::CrawlArgs),
    /// The .CN domain watch: candidates per brand, a run now, the domains found
    #[command(subcommand)]
    Domains(domains::DomainsCommand),
    /// Print the listings a definition extracts from a saved page, as JSONL
    Extract(extract::ExtractArgs),
    /// Serve the fixture platforms (local look-alikes of the real sites, with fault injection)
    #[cfg(feature = "fixtures")]
    #[command(subcommand)]
    Fixtures(fixtures::FixturesCommand),
    /// Match a JSONL file of listings against a registry file, offline (no database); or, with
    /// `stats` and `allow`, review the matcher against reviewers' decisions
    Match(matching::MatchCommand),
    /// Score the matcher against labelled listings: precision, recall, F1, confusion
    Eval(matching::EvalArgs),
    /// Run the daemon: scheduled crawls, matching, notices, alerts, health, metrics, review UI
    Serve(serve::ServeArgs),
    /// Run crawl jobs from a shared (PostgreSQL) database, beside `serve` on other machines
    Worker(workers::WorkerArgs),
    /// List the crawl workers that have run on this database, and what they hold
    Workers(workers::WorkersArgs),
    /// Run the whole pipeline once on the bundled brands and fixture platforms, in a fresh directory
    #[cfg(feature = "fixtures")]
    Demo(demo::DemoArgs),
    /// Copy the live database to FILE (consistent while the daemon runs)
    Backup(backup::BackupArgs),
    /// Copy a whole installation into an empty database (SQLite to PostgreSQL, or back) and
    /// check the copy
    MigrateDb(migrate_db::MigrateDbArgs),
    /// Manage review UI accounts, roles and API tokens
    #[command(subcommand)]
    Users(users::UsersCommand),
    /// Judge every stored listing again, after the registry or the matcher changed
    Rematch,
    /// The takedown queue: list, review, approve, file, resolve and export notices
    #[command(subcommand)]
    Queue(queue::QueueCommand),
    /// Evidence packs and the evidence hash chain
    #[command(subcommand)]
    Evidence(evidence::EvidenceCommand),
    /// Filed cases: Art. 43 deadlines and good-faith standing
    #[command(subcommand)]
    Cases(cases::CasesCommand),
    /// Sellers: repeat infringers and seller networks
    #[command(subcommand)]
    Sellers(sellers::SellersCommand),
    /// A brand's monthly report: findings, notices and outcomes, sellers, relistings,
    /// Good-faith standing and trend charts, as PDF or HTML
    Report(report::ReportArgs),
    /// Alert emails: list the outbox, retry, send a test, send what is due
    #[command(subcommand)]
    Alerts(alerts::AlertsCommand),
}

impl Cli {
    /// Whether the command prints and exits, rather than serving until stopped.
    pub fn prints_and_exits(&self) -> bool {
        match self.command {
            Command::Serve(_) | Command::Worker(_) => false,
            #[cfg(feature = "fixtures")]
            Command::Fixtures(_) => false,
            _ => true,
        }
    }
}

/// What every command gets: the effective configuration.
pub struct Context {
    pub config: Config,
}

impl Context {
    /// Opens the configured database, creating and migrating it as needed.
    pub async fn open_store(&self) -> anyhow::Result<Store> {
        Ok(Store::open(&self.config.database).await?)
    }
}

pub async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let mut config = Config::load(cli.config.as_deref())?;
    if let Some(db) = cli.db {
        config.database = db;
    }
    if let Some(format) = cli.log_format {
        config.log.format = format;
    }
    // The demo prints its own steps; its logs show only problems unless RUST_LOG asks.
    #[cfg(feature = "fixtures")]
    let quiet = matches!(cli.command, Command::Demo(_));
    #[cfg(not(feature = "fixtures"))]
    let quiet = false;
    init_logging(config.log.format, quiet).context("cannot set up logging")?;
    let ctx = Context { config };
    match cli.command {
        Command::Accounts(cmd) => accounts::run(cmd, &ctx).await,
        #[cfg(feature = "fixtures")]
        Command::Bench(cmd) => bench::run(cmd, &ctx).await,
        Command::Brands(cmd) => brands::run(cmd, &ctx).await,
        Command::Config(cmd) => config::run(cmd, &ctx),
        Command::Crawl(args) => crawl::run_crawl(args, &ctx).await,
        Command::Domains(cmd) => domains::run(cmd, &ctx).await,
        Command::Extract(args) => extract::run_extract(args, &ctx),
        #[cfg(feature = "fixtures")]
        Command::Fixtures(cmd) => fixtures::run(cmd).await,
        Command::Match(cmd) => matching::run(cmd, &ctx).await,
        Command::Eval(args) => matching::run_eval(args, &ctx),
        Command::Serve(args) => serve::run(args, &ctx).await,
        Command::Worker(args) => workers::run_worker(args, &ctx).await,
        Command::Workers(args) => workers::run_workers(args, &ctx).await,
        #[cfg(feature = "fixtures")]
        Command::Demo(args) => demo::run(args, &ctx).await,
        Command::Backup(args) => backup::run(args, &ctx).await,
        Command::MigrateDb(args) => migrate_db::run(args, &ctx).await,
        Command::Users(cmd) => users::run(cmd, &ctx).await,
        Command::Rematch => crawl::run_rematch(&ctx).await,
        Command::Queue(cmd) => queue::run(cmd, &ctx).await,
        Command::Evidence(cmd) => evidence::run(cmd, &ctx).await,
        Command::Cases(cmd) => cases::run(cmd, &ctx).await,
        Command::Sellers(cmd) => sellers::run(cmd, &ctx).await,
        Command::Report(args) => report::run(args, &ctx).await,
        Command::Alerts(cmd) => alerts::run(cmd, &ctx).await,
    }
}

fn init_logging(format: LogFormat, quiet: bool) -> anyhow::Result<()> {
    use tracing_subscriber::EnvFilter;
    let default = if quiet {
        "markwatch=warn"
    } else {
        "markwatch=info"
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    // Colours only on a terminal: a log file or journal gets plain text.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.fmt_fields(escaped_fields()).try_init(),
        // JSON strings escape control characters themselves.
        LogFormat::Json => builder.json().try_init(),
    }
    .map_err(|e| anyhow::anyhow!(e))
}

/// The text log's fields and message, with control characters escaped: text from outside (a
/// login name, a URL, a page's title) can never start a line of its own or drive a terminal.
/// tracing-subscriber escapes only ANSI sequences, not `\n` or `\r`.
fn escaped_fields() -> impl for<'w> tracing_subscriber::fmt::FormatFields<'w> + 'static {
    use tracing_subscriber::field::MakeExt as _;
    tracing_subscriber::fmt::format::debug_fn(|w, field, value| {
        let text = format!("{value:?}");
        let text = escape_controls(&text);
        if field.name() == "message" {
            w.write_str(&text)
        } else {
            write!(w, "{field}={text}")
        }
    })
    .delimited(" ")
}

/// `text` with control characters, line and paragraph separators and bidi overrides written
/// as Rust escapes (`\n`, `\u{1b}`).
fn escape_controls(text: &str) -> std::borrow::Cow<'_, str> {
    fn needs_escape(c: char) -> bool {
        c.is_control()
            || matches!(c, '\u{2028}' | '\u{2029}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
    }
    if !text.chars().any(needs_escape) {
        return text.into();
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        if needs_escape(c) {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out.into()
}

/// Bad input exits 2, so scripts can tell a broken file from a broken machine.
pub fn exit_code_for(error: &anyhow::Error) -> ExitCode {
    let bad_input = error.chain().any(|e| {
        e.downcast_ref::<RegistryError>().is_some()
            || e.downcast_ref::<ConfigError>().is_some()
            || e.downcast_ref::<PlatformError>().is_some()
            || e.downcast_ref::<markwatch::TransitionError>()
                .is_some_and(markwatch::TransitionError::is_refusal)
            || e.downcast_ref::<markwatch::AccountError>()
                .is_some_and(markwatch::AccountError::is_bad_input)
            || e.downcast_ref::<markwatch::CookieFileError>().is_some()
            || e.downcast_ref::<markwatch::SecretError>()
                .is_some_and(|s| !matches!(s, markwatch::SecretError::Io { .. }))
            || e.downcast_ref::<MatchFileError>()
                .is_some_and(MatchFileError::is_bad_input)
            || e.downcast_ref::<markwatch::AlertError>()
                .is_some_and(markwatch::AlertError::is_bad_input)
            || e.downcast_ref::<markwatch::UserError>().is_some_and(|u| {
                !matches!(
                    u,
                    markwatch::UserError::Store(_) | markwatch::UserError::Hash(_)
                )
            })
    });
    if bad_input {
        ExitCode::from(EXIT_BAD_INPUT)
    } else {
        EXIT_FAILURE
    }
}

/// Who is acting, for the audit log.
pub fn actor() -> String {
    let user = std::env::var("USER").unwrap_or_else(|_| "unknown".to_owned());
    format!("cli:{user}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_escaped() {
        assert_eq!(escape_controls("plain 耐克"), "plain 耐克");
        assert_eq!(
            escape_controls("a\nb\rc\u{1b}[31md\u{2028}e\u{202e}"),
            "a\\nb\\rc\\u{1b}[31md\\u{2028}e\\u{202e}"
        );
    }
}
