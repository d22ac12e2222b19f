//! `markwatch worker` (claims and runs crawl jobs from the shared database until SIGTERM or
//! SIGINT) and `markwatch workers` (who is working).

use std::process::ExitCode;

use clap::Args;
use markwatch::{Pace, WorkerProcessOptions, run_worker_process};
use tokio_util::sync::CancellationToken;

use super::Context;
use super::serve::spawn_signal_watch;

#[derive(Debug, Args)]
pub struct WorkerArgs {
    /// Jobs at once (a job is one platform of a watch's run) [default: one per platform]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=64))]
    slots: Option<u32>,
}

pub async fn run_worker(args: WorkerArgs, ctx: &Context) -> anyhow::Result<ExitCode> {
    let shutdown = CancellationToken::new();
    spawn_signal_watch(shutdown.clone())?;
    eprintln!(
        "markwatch worker on {}; SIGTERM or Ctrl-C stops (jobs still going return to the queue)",
        ctx.config.database
    );
    let options = WorkerProcessOptions {
        config: ctx.config.clone(),
        slots: args.slots,
        pace: Pace::Polite,
    };
    run_worker_process(options, shutdown).await?;
    Ok(ExitCode::SUCCESS)
}

#[derive(Debug, Args)]
pub struct WorkersArgs {
    /// JSON lines instead of a table
    #[arg(long)]
    json: bool,
}

pub async fn run_workers(args: WorkersArgs, ctx: &Context) -> anyhow::Result<ExitCode> {
    let store = ctx.open_store().await?;
    let workers = store.workers().await?;
    store.close().await;
    let now = chrono::Utc::now();
    let state = |w: &markwatch::WorkerRow| w.state(now);
    if args.json {
        for w in &workers {
            let mut v = serde_json::to_value(w)?;
            v["state"] = state(w).into();
            println!("{v}");
        }
        return Ok(ExitCode::SUCCESS);
    }
    if workers.is_empty() {
        println!("no worker has run on this database");
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "{:<36} {:<7} {:>4} {:>5} {:<24} {:<24}",
        "worker", "state", "jobs", "slots", "started", "last heartbeat"
    );
    for w in &workers {
        println!(
            "{:<36} {:<7} {:>4} {:>5} {:<24} {:<24}",
            w.name,
            state(w),
            w.running,
            w.slots,
            w.started_at,
            w.heartbeat_at
        );
    }
    Ok(ExitCode::SUCCESS)
}
