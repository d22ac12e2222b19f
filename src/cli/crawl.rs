//! `markwatch crawl` and `markwatch extract`.

use markwatch::{load_definitions, rematch};
use std::process::ExitCode;

use anyhow::bail;
use clap::Args;
use comfy_table::{Table, presets::UTF8_FULL_CONDENSED};
use markwatch::Outcome;
use markwatch::{Crawl, CrawlError, RunStatus, Search};

use super::Context;

/// `crawl --once` exit code when a platform was skipped or paused for a person.
const NEEDS_PERSON: u8 = 3;

#[derive(Debug, Args)]
pub struct CrawlArgs {
    /// Crawl once now and exit (scheduled crawling belongs to the daemon). Exits 3 when a
    /// platform needs a person (no logged-in account, or its accounts expired or challenged)
    #[arg(long)]
    once: bool,
    /// Only these platforms (repeatable) [default: every enabled platform]
    #[arg(long = "platform", value_name = "P")]
    platforms: Vec<String>,
    /// Only these keywords (repeatable) [default: the registry's marks and aliases]
    #[arg(long = "keyword", value_name = "K")]
    keywords: Vec<String>,
    /// Skip item pages (faster; listings keep only what search pages show)
    #[arg(long)]
    no_details: bool,
    /// Ask the running daemon to start runs now (every watch, or --watch/--platform ones)
    #[arg(long, conflicts_with_all = ["once", "keywords", "no_details"])]
    now: bool,
    /// With --now: this watch (repeatable); a platform's own watch is named after it
    #[arg(long = "watch", value_name = "W", requires = "now")]
    watches: Vec<String>,
    /// With --now: wait for the runs to finish and print how they ended
    #[arg(long, requires = "now")]
    wait: bool,
}

pub async fn run_crawl(args: CrawlArgs, ctx: &Context) -> anyhow::Result<ExitCode> {
    if args.now {
        return super::serve::crawl_now(ctx, args.watches, args.platforms, args.wait).await;
    }
    if !args.once {
        bail!("pass --once to crawl now; scheduled crawling runs under the daemon");
    }
    let config = &ctx.config;
    let defs = load_definitions(&config.crawl.definitions)?;
    let key = load_secret_key(ctx)?;
    let mut crawl = Crawl::builder(config, defs)
        .fetch_details(!args.no_details)
        .secret_key(key);
    if !args.platforms.is_empty() {
        crawl = crawl.platforms(&args.platforms);
    }
    let crawl = crawl.build()?;
    let search = if args.keywords.is_empty() {
        Search::Brands(Vec::new())
    } else {
        Search::Keywords(args.keywords)
    };
    let store = ctx.open_store().await?;
    let report = match crawl.run(&store, &search).await {
        Err(CrawlError::NothingToSearch) => bail!(
            "nothing to search for: import a registry (`markwatch brands import FILE`) or pass --keyword"
        ),
        report => report?,
    };
    store.close().await;

    let mut table = Table::new();
    table.load_preset(UTF8_FULL_CONDENSED).set_header([
        "Platform",
        "Run",
        "Status",
        "Pages ok",
        "Retried",
        "Failed",
        "Blocked",
        "New listings",
        "Changed",
        "Flagged",
    ]);
    for s in &report.runs {
        let c = &s.counts;
        table.add_row([
            s.platform.clone(),
            s.run_id.to_string(),
            format!("{:?}", s.status).to_lowercase(),
            c.pages_ok.to_string(),
            c.pages_retried.to_string(),
            c.pages_failed.to_string(),
            c.pages_blocked.to_string(),
            c.listings_new.to_string(),
            c.listings_changed.to_string(),
            c.listings_flagged.to_string(),
        ]);
    }
    println!("{table}");
    for s in report.runs.iter().filter(|s| s.error.is_some()) {
        println!(
            "{}: first problem: {}",
            s.platform,
            s.error.as_deref().unwrap_or_default()
        );
    }
    if let Some(drafts) = &report.drafts {
        println!("{}", super::queue::draft_line(drafts));
    }
    if let Some(line) =
        super::evidence::stamp_line(report.timestamp.as_ref(), report.timestamp_error.as_deref())
    {
        println!("{line}");
    }
    let held: Vec<_> = report
        .runs
        .iter()
        .filter(|s| matches!(s.status, RunStatus::Skipped | RunStatus::Paused))
        .collect();
    if !held.is_empty() {
        for s in &held {
            eprintln!(
                "{} was not crawled through: {}",
                s.platform,
                s.error.as_deref().unwrap_or("it needs a person")
            );
        }
        // A person must act before these platforms are watched again.
        return Ok(ExitCode::from(NEEDS_PERSON));
    }
    Ok(ExitCode::SUCCESS)
}

/// The key that opens the platforms' accounts, loaded as `accounts import` does:
/// MARKWATCH_SECRET_KEY, or the key file beside the database.
pub(super) fn load_secret_key(ctx: &Context) -> anyhow::Result<markwatch::SecretKey> {
    let env = std::env::var(markwatch::SECRET_KEY_ENV).ok();
    let file = markwatch::default_key_file(&ctx.config.database);
    Ok(markwatch::SecretKey::load(env.as_deref(), &file)?)
}

/// `markwatch rematch`: judge every stored listing again with the current registry.
pub async fn run_rematch(ctx: &Context) -> anyhow::Result<ExitCode> {
    let store = ctx.open_store().await?;
    let matcher = markwatch::pipeline_matcher(&store, &ctx.config).await?;
    let summary = rematch(&store, &matcher).await?;
    let counts = store.match_counts().await?;
    store.close().await;
    println!(
        "re-scored {} listings: {} unchanged, {} changed",
        summary.listings,
        summary.unchanged,
        summary.listings - summary.unchanged
    );
    let name = |o: Option<Outcome>| o.map_or("unjudged", Outcome::as_str);
    for (from, to, n) in &summary.transitions {
        println!("  {:>10} -> {:<10} {n}", name(*from), to.as_str());
    }
    let totals: Vec<_> = counts.iter().map(|(o, n)| format!("{o} {n}")).collect();
    println!("matches now: {}", totals.join(", "));
    Ok(ExitCode::SUCCESS)
}
