//! All SQL lives here: the [`Store`] wraps the pool of its [`Database`] (an SQLite file or a
//! PostgreSQL server), runs that backend's migrations at open, and offers one method per
//! question or command the rest of markwatch needs. Both backends run the same statements
//! through `sqlx::Any` ([`sql`]); where their SQL differs, the query matches on [`Backend`].

mod accounts;
mod alerts;
mod allow;
mod brands;
mod copy;
mod crawl;
mod daemon;
mod database;
mod domains;
mod drafts;
mod evidence;
mod images;
mod jobs;
mod matches;
mod notices;
pub(crate) mod sql;
#[cfg(feature = "fixtures")]
mod synthetic;
mod timestamps;
mod trends;
mod users;

use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{Any, AnyConnection, AnyPool, Connection as _, Executor as _, Transaction};
use tokio::sync::{Mutex, OwnedMutexGuard};

pub use database::Database;
pub use domains::DomainRow;
pub(crate) use domains::DomainSighting;
pub use sql::Backend;

pub(crate) use accounts::NewAccount;
pub use accounts::{AccountState, AccountSummary, SaveOutcome};
pub use alerts::{Alert, AlertState};
pub(crate) use alerts::{AlertAttachment, AlertKind, NewAlert};
pub use allow::{
    AllowRequest, AllowRuleRow, AllowRulesStamp, CodeAgreement, Feedback, ReasonCount, Rejection,
    ReviewStats,
};
pub(crate) use brands::RegistryStamp;
pub use copy::TableCount;
pub use crawl::RunStatus;
pub use crawl::StoredPage;
pub(crate) use crawl::{DetailUpdate, NewEvidence, NewPart, PageListings, RunCounts, Upsert};
pub use daemon::ScheduleRunRow;
pub(crate) use daemon::{
    CRAWL_DURATION_BUCKETS, DurationHistogram, MetricCounts, RunClaim, ScheduleRow,
};
pub(crate) use drafts::{DraftCandidate, OpenDraft, PlannedItem, PlannedNotice, RemovedListing};
pub(crate) use evidence::{EvidencePage, EvidencePart};
pub(crate) use images::{ImageUpdate, ListingPhoto, RefPhoto, WantedImage};
pub use jobs::WorkerRow;
pub(crate) use jobs::{JOBS_CHANNEL, Job, JobOutcome, PlatformJobs};
pub(crate) use matches::{MatchChange, RematchSummary};
pub(crate) use notices::{
    DomainFacts, EvidenceRef, EvidenceRole, GoodFaithCounts, MAX_PAGE, NoticeDetail, NoticeMark,
    NoticePage, NoticeSummary,
};
pub use notices::{NoticeFilter, NoticeSort, TransitionError};
#[cfg(feature = "fixtures")]
pub(crate) use synthetic::{BrandMarks, SeededHistory};
pub(crate) use timestamps::{NewTimestamp, StoredTimestamp};
pub use trends::{
    AccountTally, PeriodCounts, RelistedListing, SellerListing, TopSeller, TrendTallies,
    WeeklyRemovals, WeeklyTally,
};
pub use users::{ApiToken, ApiTokenInfo, Role, UserError};
pub(crate) use users::{LoginOutcome, SessionLimits, User, capped_name, check_password};
#[cfg(test)]
pub(crate) use {daemon::CrawlTotals, drafts::MarkRight};

/// How long a writer waits for another's lock before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// A storage failure, with the database it concerns.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database could not be opened, created or reached.
    #[error("cannot open database {database}: {source}")]
    Open {
        database: Database,
        #[source]
        source: sqlx::Error,
    },
    /// A migration failed; the database is left at the last good version.
    #[error("cannot migrate database {database}: {source}")]
    Migrate {
        database: Database,
        #[source]
        source: sqlx::migrate::MigrateError,
    },
    /// A query failed.
    #[error("database error: {0}")]
    Query(#[from] sqlx::Error),
    /// A stored value no longer parses (the file was edited by hand, or is corrupt).
    #[error("corrupt value in {table}.{column}: {value}")]
    Corrupt {
        table: &'static str,
        column: &'static str,
        value: String,
    },
    /// Copying one database into another cannot go on.
    #[error("cannot copy the database: {0}")]
    Copy(String),
    /// The operation is not one this backend offers.
    #[error("{0}")]
    Unsupported(&'static str),
    /// The page writer stopped before storing a page (it panicked, or the runtime is ending).
    #[error("the crawl's page writer has stopped")]
    WriterStopped,
}

pub(crate) type Result<T, E = StoreError> = std::result::Result<T, E>;

/// The markwatch database.
#[derive(Debug, Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
    /// One writer at a time, as SQLite has it. Queueing this process's writers here, in order,
    /// beats letting them collide in SQLite's busy handler, which sleeps in steps of up to
    /// 100 ms. On PostgreSQL, writers on every machine also take [`WRITER_LOCK`].
    writer: Arc<Mutex<()>>,
}

/// The PostgreSQL advisory lock a write transaction holds until it ends: writes from all
/// workers are serialised as SQLite serialises them, so the evidence chain has one head and a
/// read-then-write never races another machine's. Writes are short group commits; crawling,
/// which is the slow part, runs in parallel.
const WRITER_LOCK: i64 = 0x6d61_726b_7761_7463; // "markwatc"

/// A write transaction holding the process's writer turn until commit or drop.
pub(crate) struct WriteTx<'c> {
    tx: Transaction<'c, Any>,
    _turn: Option<OwnedMutexGuard<()>>,
}

impl WriteTx<'_> {
    pub(crate) async fn commit(self) -> Result<()> {
        Ok(self.tx.commit().await?)
    }
}

impl<'c> std::ops::Deref for WriteTx<'c> {
    type Target = Transaction<'c, Any>;
    fn deref(&self) -> &Self::Target {
        &self.tx
    }
}

impl std::ops::DerefMut for WriteTx<'_> {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.tx
    }
}

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

fn migrations(backend: Backend) -> &'static sqlx::migrate::Migrator {
    match backend {
        Backend::Sqlite => &SQLITE_MIGRATIONS,
        Backend::Postgres => &POSTGRES_MIGRATIONS,
    }
}

/// Settings every SQLite connection gets when it opens.
const SQLITE_PRAGMAS: &str = "
    PRAGMA journal_mode = WAL;
    -- WAL + NORMAL is durable across application crashes; only power loss can drop the last
    -- commits, never corrupt the file.
    PRAGMA synchronous = NORMAL;
    PRAGMA foreign_keys = ON;
    PRAGMA busy_timeout = 10000;
    -- A crawl's commits rewrite the same index pages; checkpointing every 16 MB of WAL rather
    -- than every 4 copies each into the database file less often.
    PRAGMA wal_autocheckpoint = 4000;
    -- A group commit touches more than SQLite's default 2 MB of pages, which spilled to the WAL
    -- mid-transaction and were read back. Each connection fills its own cache, so a larger one
    -- costs peak memory for little speed (docs/benchmarks.md).
    PRAGMA cache_size = -8000;
    -- Statement journals (for multi-row upserts) in memory, not in temporary files.
    PRAGMA temp_store = memory;
";

impl Store {
    /// Opens the database and brings its schema up to date. A new SQLite file is created 0600;
    /// SQLite gives its WAL and shared-memory files the database file's mode. A PostgreSQL
    /// database must exist; its tables are created here.
    pub async fn open(database: impl Into<Database>) -> Result<Store> {
        sqlx::any::install_default_drivers();
        let database = database.into();
        let open_err = |source| StoreError::Open {
            database: database.clone(),
            source,
        };
        let backend = database.backend();
        let pool = match &database {
            Database::Sqlite(path) => {
                create_private(path).map_err(|e| open_err(sqlx::Error::Io(e)))?;
                let url = sqlite_url(path).map_err(|e| open_err(sqlx::Error::Io(e)))?;
                let options = AnyConnectOptions::from_str(&url).map_err(open_err)?;
                AnyPoolOptions::new()
                    .max_connections(8)
                    // A connection to a local file can't go stale the way a network one can;
                    // the ping would cost every query a round trip to SQLite's thread.
                    .test_before_acquire(false)
                    .after_connect(|conn, _| {
                        Box::pin(async move {
                            conn.execute(SQLITE_PRAGMAS).await?;
                            Ok(())
                        })
                    })
                    .connect_with(options)
                    .await
                    .map_err(open_err)?
            }
            Database::Postgres(url) => {
                let options = AnyConnectOptions::from_str(url).map_err(open_err)?;
                AnyPoolOptions::new()
                    .max_connections(16)
                    .acquire_timeout(BUSY_TIMEOUT)
                    .connect_with(options)
                    .await
                    .map_err(open_err)?
            }
        };
        migrations(backend)
            .run(&pool)
            .await
            .map_err(|source| StoreError::Migrate {
                database: database.clone(),
                source,
            })?;
        tracing::debug!(db = %database, "database open");
        Ok(Store {
            pool,
            backend,
            writer: Arc::new(Mutex::new(())),
        })
    }

    /// Which database this is, for the few statements whose SQL differs.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The migrations this binary carries for this store's backend.
    pub(crate) fn migrator(&self) -> &'static sqlx::migrate::Migrator {
        migrations(self.backend)
    }

    /// Begins a write transaction: waits for this process's other writers, then takes the
    /// database's write lock at once (SQLite's `BEGIN IMMEDIATE`, PostgreSQL's
    /// [`WRITER_LOCK`]), so it never fails half-way on a lock.
    pub(crate) async fn begin_write(&self) -> Result<WriteTx<'static>> {
        let turn = self.writer.clone().lock_owned().await;
        let tx = match self.backend {
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await?,
            Backend::Postgres => {
                let mut tx = self.pool.begin().await?;
                take_writer_lock(&mut tx).await?;
                tx
            }
        };
        Ok(WriteTx {
            tx,
            _turn: Some(turn),
        })
    }

    /// A PostgreSQL transaction outside the writer lock, for writes that take a narrower lock
    /// of their own (claiming a job).
    pub(crate) async fn begin_unlocked(&self) -> Result<WriteTx<'static>> {
        Ok(WriteTx {
            tx: self.pool.begin().await?,
            _turn: None,
        })
    }

    /// [`Store::begin_write`] on a connection the caller keeps between transactions. It holds
    /// that connection while it waits for its turn, so only a few long-lived writers (a crawl's)
    /// should: a turn's holder may need one of the pool's others.
    pub(crate) async fn begin_write_on<'c>(
        &self,
        conn: &'c mut AnyConnection,
    ) -> Result<WriteTx<'c>> {
        let turn = self.writer.clone().lock_owned().await;
        let tx = match self.backend {
            Backend::Sqlite => conn.begin_with("BEGIN IMMEDIATE").await?,
            Backend::Postgres => {
                let mut tx = conn.begin().await?;
                take_writer_lock(&mut tx).await?;
                tx
            }
        };
        Ok(WriteTx {
            tx,
            _turn: Some(turn),
        })
    }

    /// The pool, for tests that look at rows no query method returns.
    #[cfg(test)]
    pub(crate) fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Closes the pool, checkpointing the WAL.
    pub async fn close(self) {
        self.pool.close().await;
    }
}

async fn take_writer_lock(tx: &mut Transaction<'_, Any>) -> Result<()> {
    sql::query("SELECT pg_advisory_xact_lock(?)")
        .bind(WRITER_LOCK)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// `sqlite:///absolute/path?mode=rwc`, percent-encoded as a URL must be.
fn sqlite_url(path: &Path) -> std::io::Result<String> {
    let absolute = std::path::absolute(path)?;
    let url = url::Url::from_file_path(&absolute).map_err(|()| {
        std::io::Error::new(std::io::ErrorKind::InvalidInput, "not an absolute path")
    })?;
    Ok(format!("sqlite://{}?mode=rwc", url.path()))
}

/// Creates `path` empty with mode 0600 (whatever the umask) unless it exists; SQLite takes an
/// empty file as a new database. The database holds password hashes and session tokens.
pub(crate) fn create_private(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        // The umask can only take bits away; set exactly 0600 all the same.
        Ok(file) => file.set_permissions(std::fs::Permissions::from_mode(0o600)),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

/// A JSON array for `jsonb_each(?)`: one bound parameter however many values. (`json_each`
/// hands each element back as text, for every `->>` on it to parse again.)
pub(crate) fn to_json<T: serde::Serialize>(values: &T) -> String {
    serde_json::to_string(values).expect("plain data serialises")
}

/// Current time as stored: RFC 3339 UTC with milliseconds.
pub(crate) fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn opens_fresh_file_with_wal_and_foreign_keys() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("t.db")).await.unwrap();
        let mode: String = sql::query_scalar("PRAGMA journal_mode")
            .fetch_one(&store.pool)
            .await
            .unwrap();
        assert_eq!(mode, "wal");
        let fk: i64 = sql::query_scalar("PRAGMA foreign_keys")
            .fetch_one(&store.pool)
            .await
            .unwrap();
        assert_eq!(fk, 1);
        // Reopening an up-to-date file runs no migration and fails nothing.
        store.close().await;
        Store::open(&dir.path().join("t.db")).await.unwrap();
    }
}
