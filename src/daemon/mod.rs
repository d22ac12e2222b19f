//! `markwatch serve`: one process that runs the scheduler, the crawls it starts (fetch →
//! extract → store → match → notices), the alert sender and the HTTP server, until SIGTERM or
//! SIGINT; then it stops within `daemon.shutdown_timeout_secs`.
//!
//! Architecture: [`serve`] takes the single-instance lock beside the database, opens (and
//! migrates) the store, recovers runs a crash cut short, and starts three parts:
//! [`scheduler::Scheduler`] decides when each watch runs and owns the runs going;
//! [`pipeline::Pipeline`] runs one watch; the alert sender (`alert::run_sender`) delivers the
//! outbox; [`http`] serves health, metrics and the control API
//! (and the review UI). Shutdown: readiness turns 503, the listener stops, runs get most of
//! the time bound to finish and are then abandoned (each page is one transaction, so nothing
//! half-written stays) and resumed at the next start; then the database is closed.

pub(crate) mod http;
pub(crate) mod pipeline;
pub(crate) mod scheduler;

use std::fs::File;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use rand::Rng;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::crawl::{CrawlError, Pace};
use crate::platform::{self, PlatformError};
use crate::schedule::{self, ScheduleError};
use crate::store::{Store, StoreError};

/// Keys of `daemon_state` a running daemon sets.
pub const STATE_API_ADDR: &str = "api_addr";
pub const STATE_CONTROL_TOKEN: &str = "control_token";
pub(crate) const STATE_PID: &str = "pid";
pub(crate) const STATE_STARTED_AT: &str = "started_at";

/// Why the daemon (or one run) cannot go on.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Crawl(#[from] CrawlError),
    #[error(transparent)]
    Platform(#[from] PlatformError),
    #[error(transparent)]
    Schedule(#[from] ScheduleError),
    /// Another daemon holds the lock on this database.
    #[error(
        "another markwatch daemon is running on {} (lock {} held)",
        database.display(),
        lock.display()
    )]
    AlreadyRunning { database: PathBuf, lock: PathBuf },
    #[error("cannot create the lock file {}: {source}", path.display())]
    Lock {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: String,
        #[source]
        source: std::io::Error,
    },
    #[error("HTTP server failed: {0}")]
    Serve(#[source] std::io::Error),
    #[error("watch `{watch}`: no brand `{brand}` in the registry")]
    UnknownBrand { watch: String, brand: String },
    #[error(
        "watch `{0}`: nothing to search for; import a registry (`markwatch brands import FILE`) or set keywords"
    )]
    NothingToSearch(String),
    #[error("watch `{0}`: its cron expression has no future time")]
    NeverFires(String),
    #[error(transparent)]
    Notice(#[from] crate::notice::NoticeError),
    #[error("cannot set up the review UI: {0}")]
    Web(String),
}

/// How to run the daemon.
pub struct ServeOptions {
    pub config: Config,
    /// [`Pace::UnlimitedOnLoopback`] only for the fixture server on loopback (`serve --demo`).
    pub pace: Pace,
}

/// Holds an exclusive lock on `<database>.lock` for the process's life: two daemons on one
/// database would double every run.
pub struct DaemonLock {
    _file: File,
    path: PathBuf,
}

impl DaemonLock {
    pub fn acquire(database: &Path) -> Result<DaemonLock, DaemonError> {
        let mut name = database.as_os_str().to_owned();
        name.push(".lock");
        let path = PathBuf::from(name);
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|source| DaemonError::Lock {
                path: path.clone(),
                source,
            })?;
        match file.try_lock() {
            Ok(()) => Ok(DaemonLock { _file: file, path }),
            Err(std::fs::TryLockError::WouldBlock) => Err(DaemonError::AlreadyRunning {
                database: database.to_owned(),
                lock: path,
            }),
            Err(std::fs::TryLockError::Error(source)) => Err(DaemonError::Lock { path, source }),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Runs the daemon until `shutdown` is cancelled, then stops within the configured bound.
/// `on_listening` is told the HTTP address once it accepts connections.
pub async fn serve(
    options: ServeOptions,
    shutdown: CancellationToken,
    on_listening: impl FnOnce(SocketAddr),
) -> Result<(), DaemonError> {
    let config = options.config;
    let started = Utc::now();
    let lock = DaemonLock::acquire(&config.database)?;
    let store = Store::open(&config.database).await?;
    let defs = platform::load_dir(&config.crawl.definitions)?;
    let names: Vec<String> = defs.iter().map(|d| d.platform.clone()).collect();
    let watches = schedule::watches(&config, &names)?;
    let offset =
        schedule::parse_utc_offset(&config.schedule.utc_offset).map_err(ScheduleError::from)?;

    for (watch, slot) in store.recover_interrupted_runs().await? {
        tracing::warn!(%watch, %slot, "a run was cut short when markwatch last stopped; it runs again now");
    }
    let pipeline = Arc::new(pipeline::Pipeline::new(
        store.clone(),
        config.clone(),
        defs.clone(),
        options.pace,
    ));
    let (mut scheduler, handle) =
        scheduler::Scheduler::new(pipeline, watches.clone(), offset, started);
    scheduler.sync_plans().await?;

    let addr = &config.web.addr;
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| DaemonError::Bind {
            addr: addr.clone(),
            source,
        })?;
    let local = listener.local_addr().map_err(DaemonError::Serve)?;
    let token = hex::encode(rand::rng().random::<[u8; 32]>());
    store
        .set_daemon_state(&[
            (STATE_API_ADDR, &local.to_string()),
            (STATE_CONTROL_TOKEN, &token),
            (STATE_PID, &std::process::id().to_string()),
            (STATE_STARTED_AT, &started.to_rfc3339()),
        ])
        .await?;

    let mut app = http::router(http::DaemonHttp {
        store: store.clone(),
        scheduler: handle,
        started,
        control_token: token,
        shutdown: shutdown.clone(),
    });
    // The review UI and its JSON API, from the same listener.
    let web = crate::web::WebState::new(store.clone(), config.clone(), &defs)
        .map_err(|e| DaemonError::Web(e.to_string()))?;
    app = app.merge(crate::web::router(web));
    let http_stop = shutdown.clone();
    let mut http_task = tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(async move { http_stop.cancelled().await })
        .await
    });

    let bound = Duration::from_secs(config.daemon.shutdown_timeout_secs);
    // Runs get three quarters of the bound; the rest is for recording, HTTP and closing.
    let drain = bound.mul_f64(0.75);
    let mut scheduler_task = tokio::spawn(scheduler.run(shutdown.clone(), drain));

    // The alert sender: batches the matches' alert events, queues digests, delivers.
    let alert_config = config.clone();
    let alert_store = store.clone();
    let alert_stop = shutdown.clone();
    let mut alert_task = tokio::spawn(async move {
        if let Err(e) =
            crate::alert::run_sender(alert_store, &alert_config, alert_stop.cancelled_owned()).await
        {
            tracing::error!(error = %e, "alert sender cannot start; alerts stay queued");
        }
    });

    let names: Vec<&str> = watches.iter().map(|w| w.name.as_str()).collect();
    tracing::info!(
        addr = %local,
        db = %config.database.display(),
        lock = %lock.path().display(),
        watches = ?names,
        "markwatch serving"
    );
    on_listening(local);

    let mut failure = None;
    tokio::select! {
        biased;
        _ = shutdown.cancelled() => {}
        served = &mut http_task => {
            // The server stopping on its own (not for a shutdown) is a failure: stop the rest.
            if !shutdown.is_cancelled() {
                failure = Some(match served {
                    Ok(Err(e)) => DaemonError::Serve(e),
                    _ => DaemonError::Serve(std::io::Error::other("the HTTP server stopped")),
                });
                shutdown.cancel();
            }
        }
    }
    tracing::info!(bound = ?bound, "shutting down");
    let deadline = tokio::time::Instant::now() + bound;
    if tokio::time::timeout_at(deadline, &mut scheduler_task)
        .await
        .is_err()
    {
        tracing::error!("scheduler did not stop in time");
        scheduler_task.abort();
    }
    if tokio::time::timeout_at(deadline, &mut alert_task)
        .await
        .is_err()
    {
        // An alert mid-delivery stays `sending` under its lease and is sent after restart.
        tracing::warn!("alert sender still delivering at the deadline; stopping it");
        alert_task.abort();
    }
    if !http_task.is_finished()
        && tokio::time::timeout_at(deadline, &mut http_task)
            .await
            .is_err()
    {
        tracing::warn!("HTTP connections still open at the deadline; closing them");
        http_task.abort();
    }
    if let Err(e) = store
        .clear_daemon_state(&[STATE_API_ADDR, STATE_CONTROL_TOKEN, STATE_PID])
        .await
    {
        tracing::warn!(error = %e, "cannot clear the daemon's address from the database");
    }
    store.close().await;
    drop(lock);
    tracing::info!("stopped");
    match failure {
        Some(e) => Err(e),
        None => Ok(()),
    }
}
