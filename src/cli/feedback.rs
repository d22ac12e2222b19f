//! `markwatch match stats` and `markwatch match allow`: what reviewers' decisions say about the
//! matcher, and the allow rules their rejections added.

use std::process::ExitCode;

use clap::{Args, Subcommand};
use comfy_table::{ContentArrangement, Table, presets::UTF8_FULL_CONDENSED};
use markwatch::{ReviewStats, escape_controls};

use super::{Context, EXIT_BAD_INPUT};

#[derive(Debug, Args)]
pub struct StatsArgs {
    /// How many recent decisions to count (each notice's latest approve or reject)
    #[arg(long, value_name = "N", default_value_t = 500)]
    last: u32,
    /// Print JSON instead of tables
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Subcommand)]
pub enum AllowCommand {
    /// List allow rules with their ids, brands and where they came from
    List {
        /// Only this brand's rules
        #[arg(long, value_name = "B")]
        brand: Option<String>,
        /// Print JSON instead of a table
        #[arg(long)]
        json: bool,
    },
    /// Remove allow rules by id (the matcher applies them until it next loads the rules)
    Remove {
        #[arg(required = true)]
        ids: Vec<i64>,
    },
}

pub async fn stats(args: StatsArgs, ctx: &Context) -> anyhow::Result<ExitCode> {
    if args.last == 0 {
        anyhow::bail!("--last must be at least 1");
    }
    let store = ctx.open_store().await?;
    let stats = store.review_stats(args.last).await?;
    store.close().await;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&stats)?);
    } else {
        print!("{}", stats_text(&stats));
    }
    Ok(ExitCode::SUCCESS)
}

fn percent(rate: f64) -> String {
    format!("{:.1}%", rate * 100.0)
}

/// The stats as a person reads them: totals, then codes (the costliest first), then why
/// reviewers rejected.
fn stats_text(s: &ReviewStats) -> String {
    let Some(agreement) = s.agreement else {
        return "No review decisions yet: approve or reject drafts first.\n".to_owned();
    };
    let mut out = format!(
        "{} review decision(s), {} to {}: {} agreed with the matcher, {} disagreed ({} agreement)\n",
        s.decisions,
        s.since.as_deref().map_or("", |t| t.get(..16).unwrap_or(t)),
        s.until.as_deref().map_or("", |t| t.get(..16).unwrap_or(t)),
        s.agreed,
        s.disagreed,
        percent(agreement)
    )
    .replace('T', " ");
    let mut codes = Table::new();
    codes
        .load_preset(UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Dynamic)
        .set_header([
            "Reason code",
            "Decisions",
            "Agreed",
            "Disagreed",
            "Agreement",
        ]);
    for c in &s.codes {
        codes.add_row([
            c.code.clone(),
            c.decisions.to_string(),
            c.agreed.to_string(),
            c.disagreed.to_string(),
            percent(c.agreement),
        ]);
    }
    out.push_str(&format!(
        "\nBy reason code in the decided listings' verdicts, most disagreements first:\n{codes}\n"
    ));
    if !s.reject_reasons.is_empty() {
        out.push_str("\nRejections by reason:\n");
        for r in &s.reject_reasons {
            let name = r
                .reason
                .map_or("(none given)".to_owned(), |r| r.as_str().replace('_', " "));
            out.push_str(&format!("  {name:<18} {}\n", r.count));
        }
    }
    out
}

pub async fn allow(cmd: AllowCommand, ctx: &Context) -> anyhow::Result<ExitCode> {
    let store = ctx.open_store().await?;
    let code = match cmd {
        AllowCommand::List { brand, json } => {
            let mut rules = store.list_allow_rules().await?;
            if let Some(b) = &brand {
                rules.retain(|r| r.rule.brand.eq_ignore_ascii_case(b));
            }
            if json {
                println!("{}", serde_json::to_string_pretty(&rules)?);
            } else {
                let mut table = Table::new();
                table
                    .load_preset(UTF8_FULL_CONDENSED)
                    .set_content_arrangement(ContentArrangement::Dynamic)
                    .set_header([
                        "ID", "Brand", "Kind", "Pattern", "Reason", "Notice", "By", "When",
                    ]);
                for r in &rules {
                    table.add_row([
                        r.id.to_string(),
                        r.rule.brand.clone(),
                        r.rule.kind.to_string(),
                        escape_controls(&r.rule.pattern),
                        r.rule.reason.to_string(),
                        r.notice_id.map_or("-".to_owned(), |n| n.to_string()),
                        escape_controls(&r.created_by),
                        r.created_at
                            .get(..16)
                            .unwrap_or(&r.created_at)
                            .replace('T', " "),
                    ]);
                }
                println!("{table}");
                println!("{} rule(s)", rules.len());
            }
            ExitCode::SUCCESS
        }
        AllowCommand::Remove { ids } => {
            let mut code = ExitCode::SUCCESS;
            for id in ids {
                match store.remove_allow_rule(id, &super::actor()).await? {
                    Some(r) => println!(
                        "allow rule {id} removed: {} {:?} for {}",
                        r.rule.kind,
                        escape_controls(&r.rule.pattern),
                        r.rule.brand
                    ),
                    None => {
                        eprintln!("markwatch: allow rule {id} does not exist");
                        code = ExitCode::from(EXIT_BAD_INPUT);
                    }
                }
            }
            code
        }
    };
    store.close().await;
    Ok(code)
}
