//! `markwatch cases ...`: deadlines and good-faith standing of filed cases.

use markwatch::{GOOD_FAITH_MONTHS, good_faith};
use std::process::ExitCode;

use chrono::Days;
use clap::Subcommand;
use comfy_table::{Table, presets::UTF8_FULL_CONDENSED};
use markwatch::{MAX_COUNTER_RATE, MIN_SUCCESS_RATE};

use super::Context;

#[derive(Debug, Subcommand)]
pub enum CasesCommand {
    /// Counter-noticed cases whose Art. 43 deadline (15 days) is due within N days, overdue first
    Deadlines {
        /// Days ahead [default: notices.deadline_days]
        #[arg(long, value_name = "N")]
        within: Option<u32>,
        #[arg(long)]
        json: bool,
    },
    /// Each platform account's takedown success and counter-notice rates over the last 3 months
    GoodFaith {
        #[arg(long)]
        json: bool,
    },
}

pub async fn run(cmd: CasesCommand, ctx: &Context) -> anyhow::Result<ExitCode> {
    let today = chrono::Utc::now().date_naive();
    match cmd {
        CasesCommand::Deadlines { within, json } => {
            let days = within.unwrap_or(ctx.config.notices.deadline_days);
            let until = today
                .checked_add_days(Days::new(u64::from(days)))
                .unwrap_or(today);
            let store = ctx.open_store().await?;
            let due = store.upcoming_deadlines(&until.to_string()).await?;
            store.close().await;
            if json {
                println!("{}", serde_json::to_string_pretty(&due)?);
                return Ok(ExitCode::SUCCESS);
            }
            let mut table = Table::new();
            table.load_preset(UTF8_FULL_CONDENSED).set_header([
                "ID",
                "Platform",
                "Brand",
                "Complaint ref",
                "Counter-notice",
                "Deadline",
                "Days left",
            ]);
            for n in &due {
                let deadline = n.deadline.clone().unwrap_or_default();
                let left = chrono::NaiveDate::parse_from_str(&deadline, "%Y-%m-%d")
                    .map(|d| (d - today).num_days())
                    .map(|d| {
                        if d < 0 {
                            format!("{} overdue", -d)
                        } else {
                            d.to_string()
                        }
                    })
                    .unwrap_or_default();
                table.add_row([
                    n.id.to_string(),
                    n.platform.clone(),
                    n.brand.clone(),
                    n.complaint_ref.clone().unwrap_or_default(),
                    n.counter_noticed_at.clone().unwrap_or_default(),
                    deadline,
                    left,
                ]);
            }
            println!("{table}");
            println!("{} case(s) due by {until}", due.len());
        }
        CasesCommand::GoodFaith { json } => {
            let store = ctx.open_store().await?;
            let rates = good_faith(&store, today).await?;
            store.close().await;
            if json {
                println!("{}", serde_json::to_string_pretty(&rates)?);
                return Ok(ExitCode::SUCCESS);
            }
            let pct = |r: Option<f64>| r.map_or("n/a".to_owned(), |r| format!("{:.1}%", r * 100.0));
            let mut table = Table::new();
            table.load_preset(UTF8_FULL_CONDENSED).set_header([
                "Platform",
                "Account",
                "Filed",
                "Pending",
                "Removed",
                "Rejected",
                "Counter-noticed",
                "Success",
                "Counter rate",
                "Standing",
            ]);
            for g in &rates {
                let c = &g.counts;
                table.add_row([
                    c.platform.clone(),
                    c.account.clone(),
                    c.filed.to_string(),
                    c.pending.to_string(),
                    c.removed.to_string(),
                    c.rejected.to_string(),
                    c.counter_noticed.to_string(),
                    pct(g.success_rate),
                    pct(g.counter_rate),
                    if g.at_risk { "AT RISK" } else { "ok" }.to_owned(),
                ]);
            }
            println!("{table}");
            println!(
                "thresholds: success ≥ {:.0}%, counter-notices ≤ {:.0}%, over {} months (in listings)",
                MIN_SUCCESS_RATE * 100.0,
                MAX_COUNTER_RATE * 100.0,
                GOOD_FAITH_MONTHS
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
