//! `markwatch domains`: the .CN domain watch by hand: candidates, a run now, what was found,
//! and the WHOIS facts a complaint needs.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use clap::{Args, Subcommand};
use comfy_table::{Table, presets::UTF8_FULL_CONDENSED};
use markwatch::{
    CandidateOptions, Pace, RunStatus, domain_candidates, load_definitions, load_registry,
    pipeline_matcher, queue_drafts, run_domain_watch,
};

use super::Context;

#[derive(Debug, Subcommand)]
pub enum DomainsCommand {
    /// Print the domain names watched for a brand, with the rule that made each
    Candidates(CandidatesArgs),
    /// Look every candidate up now, judge the live sites and draft complaints (CNDRP)
    Watch(WatchArgs),
    /// The registered domains found so far, newest first
    List(ListArgs),
    /// Record what WHOIS says about a found domain: when it was registered (the CNDRP
    /// deadline runs from it) and by whom
    Whois(WhoisArgs),
}

#[derive(Debug, Args)]
pub struct CandidatesArgs {
    /// The brand, as named in the registry
    brand: String,
    /// Read the brand from this registry file rather than the database
    #[arg(long, value_name = "FILE")]
    registry: Option<PathBuf>,
    /// JSON lines instead of a table
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
pub struct WatchArgs {
    /// Only this brand (repeatable) [default: every brand in the registry]
    #[arg(long = "brand", value_name = "B")]
    brands: Vec<String>,
    /// The run's report as JSON
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Only this brand's
    #[arg(long, value_name = "B")]
    brand: Option<String>,
    /// JSON lines instead of a table
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
pub struct WhoisArgs {
    /// The domain, as found (ASCII or Chinese)
    domain: String,
    /// Registration date, YYYY-MM-DD
    #[arg(long, value_name = "DATE")]
    registered_on: Option<chrono::NaiveDate>,
    /// The registrant, as WHOIS names it
    #[arg(long, value_name = "NAME")]
    registrant: Option<String>,
}

pub async fn run(cmd: DomainsCommand, ctx: &Context) -> anyhow::Result<ExitCode> {
    match cmd {
        DomainsCommand::Candidates(args) => candidates(args, ctx).await,
        DomainsCommand::Watch(args) => watch(args, ctx).await,
        DomainsCommand::List(args) => list(args, ctx).await,
        DomainsCommand::Whois(args) => whois(args, ctx).await,
    }
}

async fn candidates(args: CandidatesArgs, ctx: &Context) -> anyhow::Result<ExitCode> {
    let brand = match &args.registry {
        Some(file) => load_registry(file)?
            .into_iter()
            .find(|b| b.name == args.brand),
        None => {
            let store = ctx.open_store().await?;
            let brand = store.brand_by_name(&args.brand).await?;
            store.close().await;
            brand
        }
    };
    let Some(brand) = brand else {
        bail!("no brand `{}` in the registry", args.brand);
    };
    let options = CandidateOptions {
        extra_tlds: ctx.config.domains.extra_tlds.clone(),
    };
    let list = domain_candidates(&brand, &options);
    if args.json {
        for c in &list {
            println!("{}", serde_json::to_string(c)?);
        }
        return Ok(ExitCode::SUCCESS);
    }
    let mut table = Table::new();
    table
        .load_preset(UTF8_FULL_CONDENSED)
        .set_header(["Domain", "As DNS has it", "Rule", "From"]);
    for c in &list {
        table.add_row([
            c.display.as_str(),
            c.domain.as_str(),
            c.rule.as_str(),
            c.source.as_str(),
        ]);
    }
    println!("{table}");
    println!("{} candidates for {}", list.len(), brand.name);
    Ok(ExitCode::SUCCESS)
}

async fn watch(args: WatchArgs, ctx: &Context) -> anyhow::Result<ExitCode> {
    let config = &ctx.config;
    let defs = load_definitions(&config.crawl.definitions)?;
    let store = ctx.open_store().await?;
    let matcher = pipeline_matcher(&store, config).await?;
    let (summary, report) =
        run_domain_watch(&store, config, &defs, matcher, &args.brands, Pace::Polite).await?;
    let drafts = queue_drafts(&store, &defs).await?;
    store.close().await;
    if args.json {
        println!(
            "{}",
            serde_json::json!({ "run": summary, "domains": report, "drafts": drafts })
        );
    } else {
        println!(
            "{} brands, {} candidates: {} registered ({} new), {} gone, {} flagged, {} lookups failed",
            report.brands,
            report.candidates,
            report.registered,
            report.new.len(),
            report.gone,
            report.flagged.len(),
            report.failed
        );
        if !report.new.is_empty() {
            println!("new: {}", report.new.join(", "));
        }
        if !report.flagged.is_empty() {
            println!("flagged: {}", report.flagged.join(", "));
        }
        for f in &report.failures {
            println!("failed: {f}");
        }
        println!("{}", super::queue::draft_line(&drafts));
    }
    Ok(if summary.status == RunStatus::Failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

async fn list(args: ListArgs, ctx: &Context) -> anyhow::Result<ExitCode> {
    let store = ctx.open_store().await?;
    let rows = store.domains(args.brand.as_deref()).await?;
    store.close().await;
    if args.json {
        for d in &rows {
            println!("{}", serde_json::to_string(d)?);
        }
        return Ok(ExitCode::SUCCESS);
    }
    if rows.is_empty() {
        println!("no registered candidate found yet (`markwatch domains watch` looks)");
        return Ok(ExitCode::SUCCESS);
    }
    let mut table = Table::new();
    table.load_preset(UTF8_FULL_CONDENSED).set_header([
        "Domain",
        "Brand",
        "Rule",
        "State",
        "Verdict",
        "First seen",
        "Last seen",
        "Site title",
    ]);
    for d in &rows {
        table.add_row([
            d.display.clone(),
            d.brand.clone(),
            d.rule.clone(),
            d.state.clone(),
            d.verdict.clone().unwrap_or_default(),
            d.first_seen.get(..10).unwrap_or(&d.first_seen).to_owned(),
            d.last_seen.get(..10).unwrap_or(&d.last_seen).to_owned(),
            // Scraped: control characters shown, not obeyed.
            markwatch::escape_controls(d.title.as_deref().unwrap_or_default()),
        ]);
    }
    println!("{table}");
    Ok(ExitCode::SUCCESS)
}

async fn whois(args: WhoisArgs, ctx: &Context) -> anyhow::Result<ExitCode> {
    if args.registered_on.is_none() && args.registrant.is_none() {
        bail!("give --registered-on DATE, --registrant NAME or both");
    }
    let store = ctx.open_store().await?;
    let done = store
        .set_domain_registration(&args.domain, args.registered_on, args.registrant.as_deref())
        .await
        .context("cannot record the WHOIS facts")?;
    store.close().await;
    if !done {
        bail!(
            "no domain `{}` has been found (see `markwatch domains list`)",
            args.domain
        );
    }
    println!("recorded for {}", args.domain);
    Ok(ExitCode::SUCCESS)
}
