//! The scheduler: one task that owns which runs are going. It starts a watch's run when its
//! persisted plan says so, skips a slot whose watch is still running, takes manual requests
//! from the API, and on shutdown lets runs finish until a deadline, then abandons the rest
//! (each page is all-or-nothing in the store) so the next start resumes them.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, FixedOffset, Utc};
use rand::SeedableRng;
use rand::rngs::StdRng;
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::DaemonError;
use super::pipeline::{Pipeline, RunReport};
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
struct Done {
    run_id: i64,
    watch: String,
    result: Result<RunReport, DaemonError>,
}

struct Going {
    run_id: i64,
    watch: String,
    platforms: Vec<String>,
}

pub(crate) struct Scheduler {
    pipeline: Arc<Pipeline>,
    watches: Arc<Vec<Watch>>,
    offset: FixedOffset,
    started: DateTime<Utc>,
    rx: mpsc::Receiver<Command>,
    tasks: JoinSet<Done>,
    going: HashMap<tokio::task::Id, Going>,
    rng: StdRng,
}

impl Scheduler {
    pub(crate) fn new(
        pipeline: Arc<Pipeline>,
        watches: Vec<Watch>,
        offset: FixedOffset,
        started: DateTime<Utc>,
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
            tasks: JoinSet::new(),
            going: HashMap::new(),
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

    /// Runs until `shutdown`, then drains: runs still going at `drain_deadline` after the
    /// signal are abandoned and recorded so.
    pub(crate) async fn run(mut self, shutdown: CancellationToken, drain: Duration) {
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
                Some(joined) = self.tasks.join_next_with_id(), if !self.tasks.is_empty() => {
                    self.finished(joined).await;
                }
                _ = tokio::time::sleep(nap) => {}
            }
        }
        self.drain(drain).await;
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
            if self.is_running(&watch.name) {
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
                    replan: Some(replan()?),
                },
            };
            match store.claim_schedule_run(&claim).await? {
                Some(run_id) => self.spawn(watch, run_id, trigger, &slot),
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

    fn is_running(&self, watch: &str) -> bool {
        self.going.values().any(|g| g.watch == watch)
    }

    fn spawn(&mut self, watch: &Watch, run_id: i64, trigger: Trigger, slot: &str) {
        tracing::info!(watch = %watch.name, run_id, trigger = trigger.as_str(), %slot, "run starting");
        let pipeline = self.pipeline.clone();
        let w = watch.clone();
        let handle = self.tasks.spawn(async move {
            let result = pipeline.run(&w).await;
            Done {
                run_id,
                watch: w.name,
                result,
            }
        });
        self.going.insert(
            handle.id(),
            Going {
                run_id,
                watch: watch.name.clone(),
                platforms: watch.platforms.clone(),
            },
        );
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
                    if self.is_running(&name) {
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
                    };
                    match self.pipeline.store().claim_schedule_run(&claim).await {
                        Ok(Some(run_id)) => {
                            self.spawn(&watch, run_id, Trigger::Manual, &slot);
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

    async fn finished(&mut self, joined: Result<(tokio::task::Id, Done), tokio::task::JoinError>) {
        let store = self.pipeline.store().clone();
        let (run_id, status, runs, error) = match joined {
            Ok((id, done)) => {
                self.going.remove(&id);
                match done.result {
                    Ok(report) => {
                        tracing::info!(watch = %done.watch, run_id = done.run_id, status = report.status, "run finished");
                        (
                            done.run_id,
                            report.status,
                            report.crawl_run_ids(),
                            report.error,
                        )
                    }
                    Err(e) => {
                        tracing::error!(watch = %done.watch, run_id = done.run_id, error = %e, "run failed");
                        (done.run_id, "failed", Vec::new(), Some(e.to_string()))
                    }
                }
            }
            Err(e) => {
                let Some(going) = self.going.remove(&e.id()) else {
                    return;
                };
                tracing::error!(watch = %going.watch, run_id = going.run_id, error = %e, "run crashed");
                (
                    going.run_id,
                    "failed",
                    Vec::new(),
                    Some(format!("crashed: {e}")),
                )
            }
        };
        if let Err(e) = store
            .finish_schedule_run(run_id, status, &runs, error.as_deref())
            .await
        {
            tracing::error!(run_id, error = %e, "cannot record the end of a run");
        }
    }

    async fn drain(mut self, drain: Duration) {
        self.rx.close();
        if !self.tasks.is_empty() {
            tracing::info!(
                runs = self.tasks.len(),
                ?drain,
                "waiting for runs to finish"
            );
        }
        let deadline = tokio::time::Instant::now() + drain;
        while !self.tasks.is_empty() {
            match tokio::time::timeout_at(deadline, self.tasks.join_next_with_id()).await {
                Ok(Some(joined)) => self.finished(joined).await,
                Ok(None) => break,
                Err(_) => break,
            }
        }
        if self.tasks.is_empty() {
            return;
        }
        // Dropping a run mid-page rolls its open transaction back: nothing half-written stays.
        self.tasks.abort_all();
        while self.tasks.join_next().await.is_some() {}
        let store = self.pipeline.store().clone();
        for (_, going) in self.going.drain() {
            tracing::warn!(watch = %going.watch, run_id = going.run_id, "run abandoned at shutdown; it resumes at the next start");
            if let Err(e) = store
                .abandon_schedule_run(going.run_id, &going.platforms)
                .await
            {
                tracing::error!(run_id = going.run_id, error = %e, "cannot record the abandoned run");
            }
        }
    }
}
