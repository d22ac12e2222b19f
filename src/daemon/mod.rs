//! `markwatch serve`: one process that runs the scheduler, the crawls it starts (fetch →
//! extract → store → match → notices), the alert sender and the HTTP server, until SIGTERM or
//! SIGINT; then it stops within `daemon.shutdown_timeout_secs`.
//!
//! Architecture: [`serve`] takes the single-instance lock beside the database, opens (and
//! migrates) the store, recovers runs a crash cut short, and starts three parts:
//! [`scheduler::Scheduler`] decides when each watch runs and owns the runs going;
//! [`pipeline::Pipeline`] runs one watch, judging listings with the matcher
//! [`matchers::Matchers`] keeps until the registry changes; the alert sender (`alert::run_sender`) delivers the
//! outbox; [`http`] serves health, metrics and the control API
//! (and the review UI). Shutdown: readiness turns 503 while runs get most of the time bound to
//! finish; those still going are then abandoned (each page is one transaction, so nothing
//! half-written stays) and resumed at the next start; then the listener stops and the database
//! is closed.

pub(crate) mod http;
mod matchers;
pub(crate) mod pipeline;
pub(crate) mod scheduler;
pub(crate) mod worker;

use std::fs::File;
use std::net::SocketAddr;
use std::os::unix::fs::OpenOptionsExt as _;
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
use crate::store::{Database, Store, StoreError};
use http::MetricsAccess;

/// Keys of `daemon_state` a running daemon sets.
pub const STATE_API_ADDR: &str = "api_addr";
/// Where the `daemon.metrics_addr` listener listens, when there is one.
pub(crate) const STATE_METRICS_ADDR: &str = "metrics_addr";
/// The control token's SHA-256 (hex). The token itself is only in the token file.
pub(crate) const STATE_CONTROL_TOKEN_HASH: &str = "control_token_sha256";
/// Where earlier releases kept the token in plain text; deleted at start.
const STATE_LEGACY_CONTROL_TOKEN: &str = "control_token";
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
    Domains(#[from] crate::domains::DomainError),
    /// The key that opens the platforms' accounts could not be loaded.
    #[error(transparent)]
    Secret(#[from] crate::secrets::SecretError),
    #[error(transparent)]
    Platform(#[from] PlatformError),
    #[error(transparent)]
    Schedule(#[from] ScheduleError),
    /// Another daemon holds the lock on this database.
    #[error(
        "another markwatch daemon is running on {} (lock {} held)",
        database,
        lock.display()
    )]
    AlreadyRunning { database: String, lock: PathBuf },
    #[error("cannot create the lock file {}: {source}", path.display())]
    Lock {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot write the control token file {}: {source}", path.display())]
    TokenFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("daemon.metrics_token_file {}: {reason}", path.display())]
    MetricsToken { path: PathBuf, reason: String },
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
    /// A job's watch is not in this process's configuration.
    #[error("watch `{0}` is not configured here (the workers' configuration must match serve's)")]
    UnknownWatch(String),
    /// The worker's lease on the job ran out and another worker took it.
    #[error("the job's lease ran out")]
    LeaseLost,
    #[error("the run crashed: {0}")]
    Crashed(String),
}

/// How to run the daemon.
pub struct ServeOptions {
    pub config: Config,
    /// [`Pace::UnlimitedOnLoopback`] only for the fixture server on loopback (`serve --demo`).
    pub pace: Pace,
}

/// How to run `markwatch worker`.
pub struct WorkerProcessOptions {
    pub config: Config,
    /// Jobs at once; one per defined platform when `None`.
    pub slots: Option<u32>,
    pub pace: Pace,
}

/// `markwatch worker`: claims and runs crawl jobs from the shared database until `shutdown`;
/// the jobs still going at the deadline go back to the queue for another worker.
pub async fn run_worker_process(
    options: WorkerProcessOptions,
    shutdown: CancellationToken,
) -> Result<(), DaemonError> {
    let config = options.config;
    let store = Store::open(&config.database).await?;
    let defs = platform::load_dir(&config.crawl.definitions)?;
    let names = platform::crawlable(&defs);
    let watches = schedule::watches(&config, &names)?;
    let pipeline = pipeline_for(&store, &config, &defs, options.pace)?;
    let worker_options = worker::WorkerOptions {
        name: worker::worker_name(0),
        slots: options.slots.unwrap_or(defs.len().max(1) as u32).max(1),
        lease: Duration::from_secs(config.daemon.job_lease_secs),
        at_stop: worker::AtStop::Release,
    };
    let drain = Duration::from_secs(config.daemon.shutdown_timeout_secs).mul_f64(0.75);
    let ran = worker::run(
        pipeline,
        Arc::new(watches),
        config.database.clone(),
        worker_options,
        Arc::new(tokio::sync::Notify::new()),
        shutdown,
        drain,
    )
    .await;
    store.close().await;
    ran
}

/// The pipeline a process's workers run jobs through, with the accounts' key loaded as
/// `accounts import` loads it: MARKWATCH_SECRET_KEY, or the key file beside the database; the
/// crawl opens each platform's accounts with it at every run.
fn pipeline_for(
    store: &Store,
    config: &Config,
    defs: &[crate::platform::PlatformDef],
    pace: Pace,
) -> Result<Arc<pipeline::Pipeline>, DaemonError> {
    let env_key = std::env::var(crate::secrets::SECRET_KEY_ENV).ok();
    let key = crate::secrets::SecretKey::load(
        env_key.as_deref(),
        &crate::secrets::default_key_file(&config.database),
    )?;
    Ok(Arc::new(
        pipeline::Pipeline::new(store.clone(), config.clone(), defs.to_vec(), pace)
            .with_secret_key(key),
    ))
}

/// Holds an exclusive lock on `<database>.lock` for the process's life: two daemons on one
/// database would double every run. The lock sits beside the canonical file, so a symlink or
/// another spelling of the path meets the same lock. For PostgreSQL it is `markwatch.lock` in
/// the working directory: one daemon per directory on each machine.
pub struct DaemonLock {
    _file: File,
    path: PathBuf,
    database: Database,
}

impl DaemonLock {
    pub fn acquire(database: impl Into<Database>) -> Result<DaemonLock, DaemonError> {
        let database = &database.into();
        let lock_err = |path: &Path, source| DaemonError::Lock {
            path: path.to_owned(),
            source,
        };
        let canonical = match database {
            Database::Sqlite(file) => {
                // The file must exist to be resolved; created here it gets the store's mode.
                crate::store::create_private(file).map_err(|e| lock_err(file, e))?;
                let canonical = std::fs::canonicalize(file).map_err(|e| lock_err(file, e))?;
                Database::Sqlite(canonical)
            }
            Database::Postgres(_) => database.clone(),
        };
        let path = canonical.companion(".lock");
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .open(&path)
            .map_err(|e| lock_err(&path, e))?;
        match file.try_lock() {
            Ok(()) => Ok(DaemonLock {
                _file: file,
                path,
                database: canonical,
            }),
            Err(std::fs::TryLockError::WouldBlock) => Err(DaemonError::AlreadyRunning {
                database: canonical.to_string(),
                lock: path,
            }),
            Err(std::fs::TryLockError::Error(source)) => Err(lock_err(&path, source)),
        }
    }

    /// The database the lock is for, a file's symlinks resolved.
    pub fn database(&self) -> &Database {
        &self.database
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// The file holding the running daemon's control token, beside the (canonical) database,
/// mode 0600: whoever can read it (the daemon's user, root) may call the control API. The
/// database keeps only the token's hash.
pub fn control_token_path(database: impl Into<Database>) -> std::io::Result<PathBuf> {
    let database = database.into();
    match &database {
        Database::Sqlite(file) => Ok(beside(&std::fs::canonicalize(file)?, ".token")),
        Database::Postgres(_) => Ok(database.companion(".token")),
    }
}

/// The SHA-256 of a bearer token, as kept: the control token is 256 random bits, so a fast hash
/// is enough.
pub(crate) fn token_hash(token: &str) -> [u8; 32] {
    use sha2::Digest as _;
    sha2::Sha256::digest(token.as_bytes()).into()
}

/// The control token file this daemon wrote; removed at exit if it is still this daemon's.
struct TokenFile {
    path: PathBuf,
    token: String,
}

impl TokenFile {
    /// Writes `token` to `path` through a fresh 0600 file renamed into place, so the token is
    /// never readable by others, not even for a moment, and a planted symlink isn't followed.
    fn write(path: PathBuf, token: String) -> Result<TokenFile, DaemonError> {
        use std::io::Write as _;
        use std::os::unix::fs::PermissionsExt as _;
        let fail = |source| DaemonError::TokenFile {
            path: path.clone(),
            source,
        };
        let tmp = beside(&path, &format!(".{}.tmp", std::process::id()));
        let _ = std::fs::remove_file(&tmp);
        let written = (|| {
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&tmp)?;
            file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
            file.write_all(token.as_bytes())?;
            file.sync_all()?;
            std::fs::rename(&tmp, &path)
        })();
        if let Err(e) = written {
            let _ = std::fs::remove_file(&tmp);
            return Err(fail(e));
        }
        Ok(TokenFile { path, token })
    }

    fn remove(self) {
        if std::fs::read_to_string(&self.path).is_ok_and(|t| t == self.token)
            && let Err(e) = std::fs::remove_file(&self.path)
        {
            tracing::warn!(path = %self.path.display(), error = %e, "cannot remove the control token file");
        }
    }
}

/// The SHA-256 of the bearer token in `daemon.metrics_token_file`.
fn read_metrics_token(path: &Path) -> Result<[u8; 32], DaemonError> {
    let fail = |reason: String| DaemonError::MetricsToken {
        path: path.to_owned(),
        reason,
    };
    let text = std::fs::read_to_string(path).map_err(|e| fail(e.to_string()))?;
    let token = text.trim();
    if token.len() < 16 {
        return Err(fail("the token must be at least 16 characters".to_owned()));
    }
    Ok(token_hash(token))
}

/// `file` with `suffix` appended to its name.
fn beside(file: &Path, suffix: &str) -> PathBuf {
    let mut name = file.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
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
    let metrics_token = match &config.daemon.metrics_token_file {
        Some(path) => Some(read_metrics_token(path)?),
        None => None,
    };
    let store = Store::open(&config.database).await?;
    let defs = platform::load_dir(&config.crawl.definitions)?;
    let names = platform::crawlable(&defs);
    let watches = schedule::watches(&config, &names)?;
    let offset =
        schedule::parse_utc_offset(&config.schedule.utc_offset).map_err(ScheduleError::from)?;

    // Jobs of this machine's workers that died with an earlier process are free at once;
    // other machines' go when their leases run out.
    for name in store
        .release_dead_local_workers(&worker::host_name(), worker::process_alive)
        .await?
    {
        tracing::warn!(worker = %name, "a worker of an earlier process is gone; its jobs are free");
    }
    for (watch, slot) in store.recover_interrupted_runs().await? {
        tracing::warn!(%watch, %slot, "a run was cut short when markwatch last stopped; it runs again now");
    }
    let pipeline = pipeline_for(&store, &config, &defs, options.pace)?;
    let queued = Arc::new(tokio::sync::Notify::new());
    let (mut scheduler, handle) = scheduler::Scheduler::new(
        pipeline.clone(),
        watches.clone(),
        offset,
        started,
        queued.clone(),
    );
    scheduler.sync_plans().await?;

    let addr = &config.web.addr;
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| DaemonError::Bind {
            addr: addr.clone(),
            source,
        })?;
    let local = listener.local_addr().map_err(DaemonError::Serve)?;
    let ops_listener = match &config.daemon.metrics_addr {
        Some(addr) => Some(
            TcpListener::bind(addr)
                .await
                .map_err(|source| DaemonError::Bind {
                    addr: addr.clone(),
                    source,
                })?,
        ),
        None => None,
    };
    let ops_local = match &ops_listener {
        Some(l) => Some(l.local_addr().map_err(DaemonError::Serve)?),
        None => None,
    };
    // `/metrics` on web.addr only with a token: that address is often behind a public proxy.
    let (main_metrics, ops_metrics) = match metrics_token {
        Some(hash) if ops_listener.is_some() => (MetricsAccess::Off, MetricsAccess::Token(hash)),
        Some(hash) => (MetricsAccess::Token(hash), MetricsAccess::Off),
        None => (MetricsAccess::Off, MetricsAccess::Open),
    };
    let token = hex::encode(rand::rng().random::<[u8; 32]>());
    let control_hash = token_hash(&token);
    let token_file = TokenFile::write(lock.database().companion(".token"), token)?;
    store
        .delete_daemon_state(&[STATE_LEGACY_CONTROL_TOKEN])
        .await?;
    store
        .set_daemon_state(&[
            (STATE_API_ADDR, &local.to_string()),
            (STATE_CONTROL_TOKEN_HASH, &hex::encode(control_hash)),
            (STATE_PID, &std::process::id().to_string()),
            (STATE_STARTED_AT, &started.to_rfc3339()),
        ])
        .await?;
    match ops_local {
        Some(a) => {
            store
                .set_daemon_state(&[(STATE_METRICS_ADDR, &a.to_string())])
                .await?
        }
        None => store.delete_daemon_state(&[STATE_METRICS_ADDR]).await?,
    }

    let daemon_http = http::DaemonHttp {
        store: store.clone(),
        scheduler: handle,
        started,
        control_token_hash: control_hash,
        shutdown: shutdown.clone(),
        metrics: main_metrics,
    };
    let ops_app = http::ops_router(http::DaemonHttp {
        metrics: ops_metrics,
        ..daemon_http.clone()
    });
    let mut app = http::router(daemon_http);
    // The review UI and its JSON API, from the same listener.
    let web = crate::web::WebState::new(store.clone(), config.clone(), &defs)
        .map_err(|e| DaemonError::Web(e.to_string()))?;
    app = app.merge(crate::web::router(web));
    // The listener outlives the signal: `/readyz` answers 503 while the runs drain, so a load
    // balancer sees the shutdown, and it stops only once they have.
    let http_stop = CancellationToken::new();
    let http_stopper = http_stop.clone();
    let ops_stop = http_stop.clone();
    let mut http_task = tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(async move { http_stop.cancelled().await })
        .await
    });
    let mut ops_task = ops_listener.map(|listener| {
        tokio::spawn(async move {
            let served = axum::serve(listener, ops_app)
                .with_graceful_shutdown(async move { ops_stop.cancelled().await })
                .await;
            if let Err(e) = served {
                tracing::error!(error = %e, "the metrics listener failed");
            }
        })
    });

    let bound = Duration::from_secs(config.daemon.shutdown_timeout_secs);
    // Runs get three quarters of the bound; the rest is for recording, HTTP and closing.
    let drain = bound.mul_f64(0.75);
    let mut scheduler_task = tokio::spawn(scheduler.run(shutdown.clone()));
    // This process's own workers: a job per platform at once each, as one process always
    // crawled; a run they cannot finish by the deadline is resumed at the next start.
    let shared_watches = Arc::new(watches.clone());
    let mut worker_tasks = tokio::task::JoinSet::new();
    for n in 0..config.daemon.workers {
        let options = worker::WorkerOptions {
            name: worker::worker_name(n),
            slots: defs.len().max(1) as u32,
            lease: Duration::from_secs(config.daemon.job_lease_secs),
            at_stop: worker::AtStop::AbandonRun,
        };
        worker_tasks.spawn(worker::run(
            pipeline.clone(),
            shared_watches.clone(),
            config.database.clone(),
            options,
            queued.clone(),
            shutdown.clone(),
            drain,
        ));
    }

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
        metrics_addr = ?ops_local,
        db = %config.database,
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
    while let Ok(Some(stopped)) = tokio::time::timeout_at(deadline, worker_tasks.join_next()).await
    {
        if let Ok(Err(e)) = stopped {
            tracing::error!(error = %e, "a worker failed");
        }
    }
    worker_tasks.abort_all();
    if tokio::time::timeout_at(deadline, &mut alert_task)
        .await
        .is_err()
    {
        // An alert mid-delivery stays `sending` under its lease and is sent after restart.
        tracing::warn!("alert sender still delivering at the deadline; stopping it");
        alert_task.abort();
    }
    http_stopper.cancel();
    if !http_task.is_finished()
        && tokio::time::timeout_at(deadline, &mut http_task)
            .await
            .is_err()
    {
        tracing::warn!("HTTP connections still open at the deadline; closing them");
        http_task.abort();
    }
    if let Some(task) = &mut ops_task
        && tokio::time::timeout_at(deadline, &mut *task).await.is_err()
    {
        task.abort();
    }
    // Only this daemon's own entries: the lock makes another daemon unlikely, not impossible
    // (a database reached through a hard link, or on a file system without locks).
    match store
        .clear_daemon_state_if(
            &[
                STATE_API_ADDR,
                STATE_METRICS_ADDR,
                STATE_CONTROL_TOKEN_HASH,
                STATE_PID,
            ],
            STATE_CONTROL_TOKEN_HASH,
            &hex::encode(control_hash),
        )
        .await
    {
        Ok(true) => {}
        Ok(false) => tracing::warn!("another daemon's address is in the database; leaving it"),
        Err(e) => tracing::warn!(error = %e, "cannot clear the daemon's address from the database"),
    }
    token_file.remove();
    store.close().await;
    drop(lock);
    tracing::info!("stopped");
    match failure {
        Some(e) => Err(e),
        None => Ok(()),
    }
}
