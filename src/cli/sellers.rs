//! `markwatch sellers ...`: repeat infringers.

use std::process::ExitCode;

use clap::Subcommand;
use comfy_table::{Table, presets::UTF8_FULL_CONDENSED};
use markwatch::escape_controls;

use super::Context;

#[derive(Debug, Subcommand)]
pub enum SellersCommand {
    /// Sellers with listings in several cases, most relistings first
    Repeat {
        /// Least listings in cases to count as a repeat infringer
        #[arg(long, default_value_t = 2)]
        min: u32,
        #[arg(long)]
        json: bool,
    },
}

pub async fn run(cmd: SellersCommand, ctx: &Context) -> anyhow::Result<ExitCode> {
    let SellersCommand::Repeat { min, json } = cmd;
    let store = ctx.open_store().await?;
    let sellers = store.repeat_sellers(min.max(1)).await?;
    store.close().await;
    if json {
        println!("{}", serde_json::to_string_pretty(&sellers)?);
        return Ok(ExitCode::SUCCESS);
    }
    let mut table = Table::new();
    table.load_preset(UTF8_FULL_CONDENSED).set_header([
        "Platform",
        "Seller",
        "Listings",
        "Cases",
        "Removed",
        "Relisted",
        "Last seen",
    ]);
    for s in &sellers {
        table.add_row([
            s.platform.clone(),
            escape_controls(&s.seller),
            s.listings.to_string(),
            s.cases.to_string(),
            s.removed.to_string(),
            s.relisted.to_string(),
            s.last_seen.clone(),
        ]);
    }
    println!("{table}");
    println!("{} repeat seller(s)", sellers.len());
    Ok(ExitCode::SUCCESS)
}
