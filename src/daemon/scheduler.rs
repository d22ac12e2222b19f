//! The scheduler: one task that decides when each watch runs. It starts a watch's run when
//! its persisted plan says so (the run and one job per platform, in one transaction), skips a
//! slot whose watch is still running, and takes manual requests from the API. The workers
//! ([`super::worker`]), in this process or others, run the jobs and end the run.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, FixedOffset, Utc};
use rand::SeedableRng;
use rand::rngs::StdRng;
use serde::{Deserialize, Serialize};
use tokio::sync::{Notify, mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use super::DaemonError;
use super::pipeline::Pipeline;
use crate::model::Trigger;
use crate::schedule::{self, Due, Plan, Watch};
use crate::store::RunClaim;

/// Longest sleep between looks at the plan, so a changed clock is noticed.
const MAX_NAP: Duration = Duration::from_secs(30);
/// Pause after a database error before trying again.
const ERROR_PAUSE: Duration = Duration::from_secs(5);

/// A request to the scheduler.
enum Command {
    RunNow {
        watches: Vec<String>,
        reply: oneshot::Sender<Result<Vec<Started>, TriggerError>>,
    },
}

/// A run started by hand, or why a watch was not started.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Started {
    pub watch: String,
    /// `schedule_runs.id`; `None` when the watch was already running.
    pub run_id: Option<i64>,
    pub already_running: bool,
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum TriggerError {
    #[error("no watch `{name}` (watches: {known})")]
    UnknownWatch { name: String, known: String },
    #[error("no watch searches platform `{0}`")]
    UnknownPlatform(String),
    #[error("the daemon is shutting down")]
    ShuttingDown,
    #[error("cannot start the run: {0}")]
    Store(String),
}

/// How the API reaches the scheduler.
#[derive(Clone)]
pub(crate) struct SchedulerHandle {
    tx: mpsc::Sender<Command>,
    watches: Arc<Vec<Watch>>,
}

impl SchedulerHandle {
    /// Starts the named watches now (all when `watches` and `platforms` are empty); a
    /// platform names every watch that searches it.
    pub(crate) async fn run_now(
        &self,
        watches: &[String],
        platforms: &[String],
    ) -> Result<Vec<Started>, TriggerError> {
        let known = || {
            self.watches
                .iter()
                .map(|w| w.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        };
        let mut chosen: Vec<String> = Vec::new();
        for name in watches {
            if !self.watches.iter().any(|w| &w.name == name) {
                return Err(TriggerError::UnknownWatch {
                    name: name.clone(),
                    known: known(),
                });
            }
            chosen.push(name.clone());
        }
        for platform in platforms {
            let hits: Vec<_> = self
                .watches
                .iter()
                .filter(|w| w.platforms.contains(platform))
                .map(|w| w.name.clone())
                .collect();
            if hits.is_empty() {
                return Err(TriggerError::UnknownPlatform(platform.clone()));
            }
            chosen.extend(hits);
        }
        if watches.is_empty() && platforms.is_empty() {
            chosen = self.watches.iter().map(|w| w.name.clone()).collect();
        }
        chosen.sort();
        chosen.dedup();
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Command::RunNow {
                watches: chosen,
                reply,
            })
            .await
            .map_err(|_| TriggerError::ShuttingDown)?;
        rx.await.map_err(|_| TriggerError::ShuttingDown)?
    }
}

/// What a finished task hands back.
pub(crate) struct Scheduler {
    pipeline: Arc<Pipeline>,
    watches: Arc<Vec<Watch>>,
    offset: FixedOffset,
    started: DateTime<Utc>,
    rx: mpsc::Receiver<Command>,
    /// Wakes this process's workers when a job is queued.
    queued: Arc<Notify>,
    rng: StdRng,
}

impl Scheduler {
    pub(crate) fn new(
        pipeline: Arc<Pipeline>,
        watches: Vec<Watch>,
        offset: FixedOffset,
        started: DateTime<Utc>,
        queued: Arc<Notify>,
    ) -> (Scheduler, SchedulerHandle) {
        let (tx, rx) = mpsc::channel(16);
        let watches = Arc::new(watches);
        let handle = SchedulerHandle {
            tx,
            watches: watches.clone(),
        };
        let scheduler = Scheduler {
            pipeline,
            watches,
            offset,
            started,
            rx,
            queued,
            rng: StdRng::from_rng(&mut rand::rng()),
        };
        (scheduler, handle)
    }

    /// Brings the persisted plans in line with the configured watches: a new watch, or one
    /// whose cron changed, is planned from now; the others keep their plan, so a slot missed
    /// while the daemon was down is still due.
    pub(crate) async fn sync_plans(&mut self) -> Result<(), DaemonError> {
        let store = self.pipeline.store();
        let rows = store.schedules().await?;
        let now = Utc::now();
        for watch in self.watches.clone().iter() {
            let current = rows.iter().find(|r| r.watch == watch.name);
            if current.is_some_and(|r| r.cron == watch.cron.as_str()) {
                continue;
            }
            let (slot, at) = watch
                .plan_after(now, self.offset, &mut self.rng)
                .ok_or_else(|| DaemonError::NeverFires(watch.name.clone()))?;
            store
                .save_schedule_plan(&watch.name, watch.cron.as_str(), slot, at)
                .await?;
            tracing::info!(watch = %watch.name, cron = watch.cron.as_str(), next = %at, "watch planned");
        }
        Ok(())
    }

    /// Plans and queues runs until `shutdown`.
    pub(crate) async fn run(mut self, shutdown: CancellationToken) {
        loop {
            let nap = match self.start_due().await {
                Ok(nap) => nap,
                Err(e) => {
                    tracing::error!(error = %e, "scheduler: cannot read or update the plan; retrying");
                    ERROR_PAUSE
                }
            };
            tokio::select! {
                _ = shutdown.cancelled() => break,
                Some(cmd) = self.rx.recv() => self.handle(cmd).await,
                _ = tokio::time::sleep(nap) => {}
            }
        }
        self.rx.close();
    }

    /// Starts every due watch; returns how long to sleep before the next is due.
    async fn start_due(&mut self) -> Result<Duration, DaemonError> {
        let store = self.pipeline.store().clone();
        let rows = store.schedules().await?;
        let now = Utc::now();
        let mut nap = MAX_NAP;
        let mut rng = StdRng::from_rng(&mut self.rng);
        for watch in self.watches.clone().iter() {
            let Some(row) = rows.iter().find(|r| r.watch == watch.name) else {
                continue;
            };
            let plan = Plan {
                next_slot: row.next_slot,
                next_run_at: row.next_run_at,
                resume_slot: row.resume_slot.clone(),
            };
            let (slot, trigger) = match schedule::due(&plan, now, self.started) {
                Due::Wait { at } => {
                    nap = nap.min((at - now).to_std().unwrap_or_default());
                    continue;
                }
                Due::Run { slot, trigger } => (slot, trigger),
            };
            let mut replan = || {
                watch
                    .plan_after(now, self.offset, &mut rng)
                    .ok_or_else(|| DaemonError::NeverFires(watch.name.clone()))
            };
            if store.watch_running(&watch.name).await? {
                if trigger != Trigger::Resume {
                    let next = replan()?;
                    store.skip_schedule_slot(&watch.name, &slot, next).await?;
                    tracing::warn!(watch = %watch.name, %slot, "slot skipped: the previous run is still going");
                }
                continue;
            }
            let claim = match trigger {
                Trigger::Resume => RunClaim {
                    watch: &watch.name,
                    slot: &slot,
                    trigger,
                    expect_next_slot: None,
                    platforms: &watch.platforms,
                    // A slot also missed meanwhile is covered by this run.
                    replan: if plan.next_run_at <= now {
                        Some(replan()?)
                    } else {
                        None
                    },
                },
                _ => RunClaim {
                    watch: &watch.name,
                    slot: &slot,
                    trigger,
                    expect_next_slot: Some(plan.next_slot),
                    platforms: &watch.platforms,
                    replan: Some(replan()?),
                },
            };
            match store.claim_schedule_run(&claim).await? {
                Some(run_id) => self.queued(watch, run_id, trigger, &slot),
                None => {
                    // Already run (a slot the cron gives twice, or a lost race): move on.
                    if trigger != Trigger::Resume {
                        let next = replan()?;
                        store
                            .save_schedule_plan(&watch.name, watch.cron.as_str(), next.0, next.1)
                            .await?;
                    }
                    tracing::warn!(watch = %watch.name, %slot, "slot already ran; not running it twice");
                }
            }
        }
        Ok(nap.max(Duration::from_millis(50)))
    }

    fn queued(&self, watch: &Watch, run_id: i64, trigger: Trigger, slot: &str) {
        tracing::info!(watch = %watch.name, run_id, trigger = trigger.as_str(), %slot, platforms = ?watch.platforms, "run queued");
        self.queued.notify_waiters();
    }

    async fn handle(&mut self, cmd: Command) {
        match cmd {
            Command::RunNow { watches, reply } => {
                let mut started = Vec::new();
                let mut failure = None;
                for name in watches {
                    let Some(watch) = self.watches.iter().find(|w| w.name == name).cloned() else {
                        continue;
                    };
                    let running = self.pipeline.store().watch_running(&name).await;
                    if running.as_ref().is_ok_and(|r| *r) {
                        started.push(Started {
                            watch: name,
                            run_id: None,
                            already_running: true,
                        });
                        continue;
                    }
                    let slot = format!(
                        "manual:{}",
                        Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
                    );
                    let claim = RunClaim {
                        watch: &name,
                        slot: &slot,
                        trigger: Trigger::Manual,
                        expect_next_slot: None,
                        replan: None,
                        platforms: &watch.platforms,
                    };
                    match self.pipeline.store().claim_schedule_run(&claim).await {
                        Ok(Some(run_id)) => {
                            self.queued(&watch, run_id, Trigger::Manual, &slot);
                            started.push(Started {
                                watch: name,
                                run_id: Some(run_id),
                                already_running: false,
                            });
                        }
                        Ok(None) => {}
                        Err(e) => failure = Some(TriggerError::Store(e.to_string())),
                    }
                }
                let answer = match failure {
                    Some(e) if started.is_empty() => Err(e),
                    _ => Ok(started),
                };
                let _ = reply.send(answer);
            }
        }
    }
}
