//! `markwatch bench seed-notices N [--history-weeks W]`: synthetic review data, never for a
//! production database.

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
    /// Spread the new drafts over this many weeks before today and give most of them a case
    /// history (filed, removed, rejected, counter-noticed, relisted), for the trend charts
    #[arg(long, value_name = "WEEKS")]
    history_weeks: Option<u32>,
}

pub async fn run(args: SeedArgs, ctx: &Context) -> anyhow::Result<ExitCode> {
    let SeedArgs {
        count,
        seed,
        history_weeks,
    } = args;
    let store = ctx.open_store().await?;
    let started = Instant::now();
    let done = markwatch::seed_notices(&store, count, seed, |n| {
        if n % 10_000 == 0 || n == count {
            eprintln!("  {n}/{count} notices");
        }
    })
    .await;
    let done = match (done, history_weeks) {
        (Ok(done), Some(weeks)) => {
            let today = chrono::Utc::now().date_naive();
            markwatch::seed_history(&store, weeks, seed, today, |n| {
                if n % 10_000 == 0 {
                    eprintln!("  {n} histories");
                }
            })
            .await
            .map(|_| done)
        }
        (done, _) => done,
    };
    store.close().await;
    let done = done?;
    println!(
        "seeded {done} notices into {} in {:.1} s{}",
        ctx.config.database,
        started.elapsed().as_secs_f64(),
        history_weeks.map_or(String::new(), |w| format!(", with {w} weeks of history"))
    );
    Ok(ExitCode::SUCCESS)
}
