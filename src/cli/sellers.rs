//! `markwatch sellers ...`: repeat infringers and seller networks.

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
    /// Shops linked into networks by a shared seller id, shop-name stem, product photo, or a
    /// relisting's ship-from place and price; every link says why
    Networks {
        /// Print the networks, their shops and links as JSON
        #[arg(long)]
        json: bool,
    },
}

pub async fn run(cmd: SellersCommand, ctx: &Context) -> anyhow::Result<ExitCode> {
    let (min, json) = match cmd {
        SellersCommand::Repeat { min, json } => (min, json),
        SellersCommand::Networks { json } => return networks(json, ctx).await,
    };
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

async fn networks(json: bool, ctx: &Context) -> anyhow::Result<ExitCode> {
    let store = ctx.open_store().await?;
    let networks = markwatch::load_seller_networks(&store).await;
    store.close().await;
    let networks = networks?;
    if json {
        println!("{}", serde_json::to_string_pretty(&networks)?);
        return Ok(ExitCode::SUCCESS);
    }
    for n in &networks {
        println!(
            "network {}: {} shops, {} listings ({} open, {} removed)",
            n.id,
            n.shops.len(),
            n.listings(),
            n.open(),
            n.removed()
        );
        let mut shops = Table::new();
        shops.load_preset(UTF8_FULL_CONDENSED).set_header([
            "Platform",
            "Shop",
            "Seller ids",
            "Ships from",
            "Listings",
            "Open",
            "Removed",
        ]);
        for s in &n.shops {
            shops.add_row([
                s.platform.clone(),
                escape_controls(&s.seller),
                escape_controls(&s.seller_ids.iter().cloned().collect::<Vec<_>>().join(", ")),
                escape_controls(&s.ships_from.iter().cloned().collect::<Vec<_>>().join(", ")),
                s.listings.to_string(),
                s.open.to_string(),
                s.removed.to_string(),
            ]);
        }
        println!("{shops}");
        for l in &n.links {
            println!(
                "  {} — {}: {}: {}",
                escape_controls(&n.shops[l.a].seller),
                escape_controls(&n.shops[l.b].seller),
                l.signal.as_str(),
                escape_controls(&l.detail)
            );
        }
        println!();
    }
    println!("{} seller network(s)", networks.len());
    Ok(ExitCode::SUCCESS)
}
