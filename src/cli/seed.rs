//! `markwatch bench seed-notices N`: synthetic review data, never for a production database.

use std::process::ExitCode;
use std::time::Instant;

use clap::Args;

use super::Context;

#[derive(Debug, Args)]
pub struct SeedArgs {
    /// How many notices to add
    count: usize,
    /// Random seed: the same seed gives the same data
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

pub async fn run(args: SeedArgs, ctx: &Context) -> anyhow::Result<ExitCode> {
    let SeedArgs { count, seed } = args;
    let store = ctx.open_store().await?;
    let started = Instant::now();
    let done = markwatch::seed_notices(&store, count, seed, |n| {
        if n % 10_000 == 0 || n == count {
            eprintln!("  {n}/{count} notices");
        }
    })
    .await;
    store.close().await;
    let done = done?;
    println!(
        "seeded {done} draft notices into {} in {:.1} s",
        ctx.config.database,
        started.elapsed().as_secs_f64()
    );
    Ok(ExitCode::SUCCESS)
}
