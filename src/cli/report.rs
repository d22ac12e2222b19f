//! `markwatch report BRAND --month 2026-11 --out report.pdf`: a brand's monthly report.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::Args;

use super::Context;

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// The brand, as the registry names it
    brand: String,
    /// The month to report, YYYY-MM [default: last month]
    #[arg(long)]
    month: Option<String>,
    /// Where to write it: a PDF printed by Chromium, or the HTML page when the name ends in
    /// .html
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
}

pub async fn run(args: ReportArgs, ctx: &Context) -> anyhow::Result<ExitCode> {
    let month = match &args.month {
        Some(m) => markwatch::parse_month(m)?,
        None => markwatch::previous_month(chrono::Utc::now().date_naive()),
    };
    // Definitions only name the platforms here: without them the keys do.
    let defs = markwatch::load_definitions(&ctx.config.crawl.definitions).unwrap_or_else(|e| {
        tracing::warn!(error = %e, "platforms are named by their keys");
        Vec::new()
    });
    let name = |key: &str| markwatch::platform_display_name(&defs, key);
    let store = ctx.open_store().await?;
    let report = markwatch::build_monthly_report(&store, &args.brand, month, &name).await;
    store.close().await;
    let report = report?;
    let html = args
        .out
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("html") || e.eq_ignore_ascii_case("htm"));
    let bytes = if html {
        markwatch::monthly_report_html(&report)?.into_bytes()
    } else {
        markwatch::print_monthly_report(&report, &ctx.config.crawl.browser).await?
    };
    std::fs::write(&args.out, bytes).with_context(|| format!("{}", args.out.display()))?;
    let t = &report.totals;
    println!(
        "{}: report for {} written to {}: {} infringing, {} suspect found; {} filed, {} removed, {} rejected, {} counter-noticed; {} relisted",
        markwatch::escape_controls(&report.brand),
        report.month,
        args.out.display(),
        t.infringing,
        t.suspect,
        t.filed,
        t.removed,
        t.rejected,
        t.counter_noticed,
        t.relisted
    );
    Ok(ExitCode::SUCCESS)
}
