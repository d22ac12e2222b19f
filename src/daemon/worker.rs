//! A crawl worker: claims jobs (one platform of a watch's run) from the database, runs each
//! through the [`Pipeline`], renews their leases while it works, and records how each ended.
//! `serve` runs one or more in its own process; `markwatch worker` runs one on any machine
//! that reaches the database. A worker needs only the database, the definitions and the key
//! file: what to crawl comes from the job, the watch from the shared configuration.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::DaemonError;
use super::pipeline::{Pipeline, RunReport};
use crate::schedule::Watch;
use crate::store::{Database, JOBS_CHANNEL, Job, JobOutcome, Store};

/// How often a worker with nothing to do looks for a job when no notification comes (SQLite
/// has none; a PostgreSQL notification can be missed while reconnecting).
const POLL: Duration = Duration::from_secs(2);

/// What a worker does with the jobs it still holds when its time to stop is up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AtStop {
    /// Back to the queue, for any worker (`markwatch worker`).
    Release,
    /// The whole run abandoned and its slot resumed at the next start, as `serve` has always
    /// done: on one machine, the next start is what picks it up.
    AbandonRun,
}

pub(crate) struct WorkerOptions {
    /// Unique among the workers sharing the database.
    pub name: String,
    /// Jobs at once.
    pub slots: u32,
    pub lease: Duration,
    pub at_stop: AtStop,
}

/// What a job's task ends with.
type Ran = (Job, Result<RunReport, DaemonError>);

/// A job running, and how to stop it early.
struct Holding {
    job: Job,
    cancel: CancellationToken,
}

/// The name a worker takes: host, process and a number, so one machine's workers differ.
pub(crate) fn worker_name(n: u32) -> String {
    format!("{}:{}:{n}", host_name(), std::process::id())
}

pub(crate) fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".to_owned())
}

/// Whether a process of this machine is still there.
pub(crate) fn process_alive(pid: i64) -> bool {
    pid > 0 && std::path::Path::new(&format!("/proc/{pid}")).exists()
}

/// Runs a worker until `shutdown`; then its jobs get until `drain` to finish, and those still
/// going are stopped (each page is all-or-nothing in the store) and handled as
/// `options.at_stop` says.
pub(crate) async fn run(
    pipeline: Arc<Pipeline>,
    watches: Arc<Vec<Watch>>,
    database: Database,
    options: WorkerOptions,
    wake: Arc<Notify>,
    shutdown: CancellationToken,
    drain: Duration,
) -> Result<(), DaemonError> {
    let store = pipeline.store().clone();
    store
        .register_worker(
            &options.name,
            &host_name(),
            std::process::id(),
            options.slots,
            options.lease,
        )
        .await?;
    tracing::info!(worker = %options.name, slots = options.slots, "worker started");
    let mut listener = listen(&database).await;
    let mut tasks: JoinSet<Ran> = JoinSet::new();
    let mut holding: HashMap<tokio::task::Id, Holding> = HashMap::new();
    let mut beat = tokio::time::interval(options.lease / 3);
    beat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        // Fill the free slots.
        while tasks.len() < options.slots as usize && !shutdown.is_cancelled() {
            match store.claim_job(&options.name, options.lease).await {
                Ok(Some(job)) => {
                    tracing::info!(worker = %options.name, job = job.id, watch = %job.watch, platform = %job.platform, attempt = job.attempts, "job claimed");
                    let cancel = CancellationToken::new();
                    let id = spawn(&mut tasks, &pipeline, &watches, job.clone(), cancel.clone());
                    holding.insert(id, Holding { job, cancel });
                }
                Ok(None) => break,
                Err(e) => {
                    tracing::error!(worker = %options.name, error = %e, "cannot claim a job; retrying");
                    break;
                }
            }
        }
        let notified = wake.notified();
        tokio::select! {
            _ = shutdown.cancelled() => break,
            Some(joined) = tasks.join_next_with_id(), if !tasks.is_empty() => {
                finished(&store, &options.name, &mut holding, joined).await;
            }
            _ = beat.tick() => heartbeat(&store, &options, &holding).await,
            _ = notified => {}
            _ = next_notification(&mut listener) => {}
            _ = tokio::time::sleep(POLL) => {}
        }
    }
    // Drain: the jobs going get until the deadline, renewing their leases meanwhile.
    let deadline = tokio::time::Instant::now() + drain;
    while !tasks.is_empty() {
        tokio::select! {
            joined = tasks.join_next_with_id() => match joined {
                Some(joined) => finished(&store, &options.name, &mut holding, joined).await,
                None => break,
            },
            _ = beat.tick() => heartbeat(&store, &options, &holding).await,
            _ = tokio::time::sleep_until(deadline) => break,
        }
    }
    // Dropping a run mid-page rolls its open transaction back: nothing half-written stays.
    tasks.abort_all();
    while tasks.join_next().await.is_some() {}
    for (_, h) in holding.drain() {
        let job = &h.job;
        let stopped = match options.at_stop {
            AtStop::Release => {
                tracing::warn!(job = job.id, watch = %job.watch, platform = %job.platform, "job stopped at shutdown; back in the queue");
                store.release_job(job, &options.name).await
            }
            AtStop::AbandonRun => {
                tracing::warn!(watch = %job.watch, run_id = job.schedule_run_id, "run abandoned at shutdown; it resumes at the next start");
                store
                    .abandon_schedule_run(job.schedule_run_id, std::slice::from_ref(&job.platform))
                    .await
            }
        };
        if let Err(e) = stopped {
            tracing::error!(job = job.id, error = %e, "cannot record the stopped job");
        }
    }
    store.stop_worker(&options.name).await?;
    tracing::info!(worker = %options.name, "worker stopped");
    Ok(())
}

fn spawn(
    tasks: &mut JoinSet<Ran>,
    pipeline: &Arc<Pipeline>,
    watches: &Arc<Vec<Watch>>,
    job: Job,
    cancel: CancellationToken,
) -> tokio::task::Id {
    let pipeline = pipeline.clone();
    let watch = watches.iter().find(|w| w.name == job.watch).map(|w| Watch {
        platforms: vec![job.platform.clone()],
        ..w.clone()
    });
    tasks
        .spawn(async move {
            let result = match watch {
                Some(watch) => tokio::select! {
                    r = pipeline.run(&watch) => r,
                    _ = cancel.cancelled() => Err(DaemonError::LeaseLost),
                },
                None => Err(DaemonError::UnknownWatch(job.watch.clone())),
            };
            (job, result)
        })
        .id()
}

async fn finished(
    store: &Store,
    worker: &str,
    holding: &mut HashMap<tokio::task::Id, Holding>,
    joined: Result<(tokio::task::Id, Ran), tokio::task::JoinError>,
) {
    let (job, result) = match joined {
        Ok((id, done)) => {
            holding.remove(&id);
            done
        }
        Err(e) => {
            let Some(h) = holding.remove(&e.id()) else {
                return;
            };
            (h.job, Err(DaemonError::Crashed(e.to_string())))
        }
    };
    if matches!(result, Err(DaemonError::LeaseLost)) {
        tracing::warn!(
            job = job.id,
            "job given up: its lease ran out and another worker has it"
        );
        return;
    }
    let (status, runs, error) = match &result {
        Ok(report) => (report.status, report.crawl_run_ids(), report.error.clone()),
        Err(e) => ("failed", Vec::new(), Some(e.to_string())),
    };
    tracing::info!(job = job.id, watch = %job.watch, platform = %job.platform, status, "job finished");
    let outcome = JobOutcome {
        status,
        crawl_runs: &runs,
        error: error.as_deref(),
    };
    match store.finish_job(&job, worker, &outcome).await {
        Ok(true) => {}
        Ok(false) => tracing::warn!(job = job.id, "job finished after another worker took it"),
        Err(e) => tracing::error!(job = job.id, error = %e, "cannot record the end of a job"),
    }
}

async fn heartbeat(
    store: &Store,
    options: &WorkerOptions,
    holding: &HashMap<tokio::task::Id, Holding>,
) {
    let ids: Vec<i64> = holding.values().map(|h| h.job.id).collect();
    match store
        .worker_heartbeat(&options.name, &ids, options.lease)
        .await
    {
        Ok(lost) => {
            for h in holding.values().filter(|h| lost.contains(&h.job.id)) {
                h.cancel.cancel();
            }
        }
        Err(e) => tracing::error!(worker = %options.name, error = %e, "heartbeat failed"),
    }
}

/// A PostgreSQL listener on the jobs channel; none for SQLite, or when it cannot connect (the
/// worker then polls).
async fn listen(database: &Database) -> Option<sqlx::postgres::PgListener> {
    let Database::Postgres(url) = database else {
        return None;
    };
    let mut listener = match sqlx::postgres::PgListener::connect(url).await {
        Ok(l) => l,
        Err(e) => {
            tracing::warn!(error = %e, "cannot listen for new jobs; polling instead");
            return None;
        }
    };
    match listener.listen(JOBS_CHANNEL).await {
        Ok(()) => Some(listener),
        Err(e) => {
            tracing::warn!(error = %e, "cannot listen for new jobs; polling instead");
            None
        }
    }
}

/// The next notification, or never when there is no listener.
async fn next_notification(listener: &mut Option<sqlx::postgres::PgListener>) {
    match listener {
        Some(l) => {
            if l.recv().await.is_err() {
                // Reconnects on the next call; meanwhile the poll covers.
                tokio::time::sleep(POLL).await;
            }
        }
        None => std::future::pending().await,
    }
}
