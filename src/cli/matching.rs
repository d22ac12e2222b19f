//! `markwatch match` and `markwatch eval`: the matcher offline, with no database; and
//! `match stats` / `match allow`, what reviewers' decisions say back to it (`feedback.rs`).

use markwatch::{evaluate, load_registry, read_labels, read_listings, run_jsonl};
use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Args, Subcommand};
use markwatch::{MatchSettings, Matcher};

use super::Context;
use super::feedback::{AllowCommand, StatsArgs};

/// `markwatch match --brands … --listings …`, or one of its subcommands. The offline form's
/// flags conflict with a subcommand, so both read as before.
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct MatchCommand {
    #[command(subcommand)]
    command: Option<MatchSubcommand>,
    #[command(flatten)]
    offline: Option<MatchArgs>,
}

#[derive(Debug, Subcommand)]
enum MatchSubcommand {
    /// How often reviewers agreed with the matcher's flags, by reason code, over recent decisions
    Stats(StatsArgs),
    /// Allow rules reviewers added when rejecting drafts: list, remove
    #[command(subcommand)]
    Allow(AllowCommand),
}

pub async fn run(cmd: MatchCommand, ctx: &Context) -> anyhow::Result<ExitCode> {
    match cmd.command {
        None => match cmd.offline {
            Some(args) => run_match(args, ctx),
            // clap requires both flags when no subcommand is given.
            None => anyhow::bail!("give --brands and --listings, or a subcommand (stats, allow)"),
        },
        Some(MatchSubcommand::Stats(args)) => super::feedback::stats(args, ctx).await,
        Some(MatchSubcommand::Allow(cmd)) => super::feedback::allow(cmd, ctx).await,
    }
}

#[derive(Debug, Args)]
pub struct MatchArgs {
    /// Brand registry file (TOML or CSV)
    #[arg(long, value_name = "FILE")]
    brands: PathBuf,
    /// Listings, one JSON object per line (`-` reads standard input)
    #[arg(long, value_name = "FILE")]
    listings: PathBuf,
    /// Write the verdicts here instead of standard output
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    /// Report bad lines on standard error and go on, instead of stopping at the first
    #[arg(long)]
    skip_bad: bool,
}

#[derive(Debug, Args)]
pub struct EvalArgs {
    /// Brand registry file (TOML or CSV)
    #[arg(long, value_name = "FILE")]
    brands: PathBuf,
    /// Labelled listings, one JSON object per line; give it again for more files
    #[arg(long, value_name = "FILE", required = true)]
    listings: Vec<PathBuf>,
    /// Labels, one JSON object per line [default: labels.jsonl beside the first listings]
    #[arg(long, value_name = "FILE")]
    labels: Option<PathBuf>,
}

/// A matcher over a registry file, with the configured exchange rates (no database, so no
/// reviewers' allow rules).
fn build_matcher(brands: &Path, ctx: &Context) -> anyhow::Result<Matcher> {
    let brands = load_registry(brands)?;
    let settings = MatchSettings {
        rates: ctx.config.matching.rates.clone().into_iter().collect(),
        ..MatchSettings::default()
    };
    Matcher::with_settings(&brands, &settings).context("cannot index the registry")
}

fn open_input(path: &Path) -> anyhow::Result<Box<dyn BufRead>> {
    if path == Path::new("-") {
        return Ok(Box::new(std::io::stdin().lock()));
    }
    let file = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    Ok(Box::new(BufReader::new(file)))
}

pub fn run_match(args: MatchArgs, ctx: &Context) -> anyhow::Result<ExitCode> {
    let matcher = build_matcher(&args.brands, ctx)?;
    let input = open_input(&args.listings)?;
    let output: Box<dyn Write> = match &args.out {
        Some(path) => Box::new(BufWriter::new(
            File::create(path).with_context(|| format!("cannot create {}", path.display()))?,
        )),
        None => Box::new(BufWriter::new(std::io::stdout().lock())),
    };
    let summary = run_jsonl(&matcher, input, output, args.skip_bad)
        .with_context(|| format!("matching {}", args.listings.display()))?;
    for bad in &summary.skipped {
        eprintln!("{}: skipped {bad}", args.listings.display());
    }
    eprintln!(
        "{} listings: {} infringing, {} suspect, {} clear{}",
        summary.matched,
        summary.infringing,
        summary.suspect,
        summary.clear,
        if summary.skipped.is_empty() {
            String::new()
        } else {
            let n = summary.skipped.len();
            format!("; {n} bad line{} skipped", if n == 1 { "" } else { "s" })
        }
    );
    Ok(ExitCode::SUCCESS)
}

pub fn run_eval(args: EvalArgs, ctx: &Context) -> anyhow::Result<ExitCode> {
    let matcher = build_matcher(&args.brands, ctx)?;
    let labels_path = args.labels.clone().unwrap_or_else(|| {
        args.listings[0]
            .parent()
            .unwrap_or(Path::new("."))
            .join("labels.jsonl")
    });
    let mut listings = Vec::new();
    for path in &args.listings {
        listings.extend(
            read_listings(open_input(path)?)
                .with_context(|| format!("reading {}", path.display()))?,
        );
    }
    let labels = read_labels(open_input(&labels_path)?)
        .with_context(|| format!("reading {}", labels_path.display()))?;
    let report = evaluate(&matcher, &listings, &labels).to_string();
    match std::io::stdout().lock().write_all(report.as_bytes()) {
        // A closed pipe (`| head`) is the reader's choice, not a failure.
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(ExitCode::SUCCESS),
    }
}
