//! All SQL lives here: the [`Store`] wraps the SQLite pool, runs migrations at open, and offers
//! one method per question or command the rest of markwatch needs.

mod accounts;
mod alerts;
mod allow;
mod brands;
mod crawl;
mod daemon;
mod drafts;
mod evidence;
mod images;
mod matches;
mod notices;
#[cfg(feature = "fixtures")]
mod synthetic;
mod timestamps;
mod users;

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::{Connection as _, Sqlite, SqliteConnection, Transaction};
use tokio::sync::{Mutex, OwnedMutexGuard};

use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

pub(crate) use accounts::NewAccount;
pub use accounts::{AccountState, AccountSummary, SaveOutcome};
pub use alerts::{Alert, AlertState};
pub(crate) use alerts::{AlertKind, NewAlert};
pub use allow::{
    AllowRequest, AllowRuleRow, AllowRulesStamp, CodeAgreement, Feedback, ReasonCount, Rejection,
    ReviewStats,
};
pub(crate) use brands::RegistryStamp;
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
pub(crate) use matches::{MatchChange, RematchSummary};
pub(crate) use notices::{
    EvidenceRef, EvidenceRole, GoodFaithCounts, MAX_PAGE, NoticeDetail, NoticeMark, NoticePage,
    NoticeSummary,
};
pub use notices::{NoticeFilter, NoticeSort, TransitionError};
#[cfg(feature = "fixtures")]
pub(crate) use synthetic::BrandMarks;
pub(crate) use timestamps::{NewTimestamp, StoredTimestamp};
pub use users::{ApiToken, ApiTokenInfo, Role, UserError};
pub(crate) use users::{LoginOutcome, SessionLimits, User, capped_name, check_password};
#[cfg(test)]
pub(crate) use {daemon::CrawlTotals, drafts::MarkRight};

/// How long a writer waits for another's lock before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// A storage failure, with the database file it concerns.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database file could not be opened or created.
    #[error("cannot open database {}: {source}", path.display())]
    Open {
        path: PathBuf,
        #[source]
        source: sqlx::Error,
    },
    /// A migration failed; the database is left at the last good version.
    #[error("cannot migrate database {}: {source}", path.display())]
    Migrate {
        path: PathBuf,
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
    /// The page writer stopped before storing a page (it panicked, or the runtime is ending).
    #[error("the crawl's page writer has stopped")]
    WriterStopped,
}

pub(crate) type Result<T, E = StoreError> = std::result::Result<T, E>;

/// The markwatch database.
#[derive(Debug, Clone)]
pub struct Store {
    pool: SqlitePool,
    /// SQLite has one writer at a time. Queueing writers here, in order, beats letting them
    /// collide in SQLite's busy handler, which sleeps in steps of up to 100 ms.
    writer: Arc<Mutex<()>>,
}

/// A write transaction holding the process's writer turn until commit or drop.
pub(crate) struct WriteTx<'c> {
    tx: Transaction<'c, Sqlite>,
    _turn: OwnedMutexGuard<()>,
}

impl WriteTx<'_> {
    pub(crate) async fn commit(self) -> Result<()> {
        Ok(self.tx.commit().await?)
    }
}

impl<'c> std::ops::Deref for WriteTx<'c> {
    type Target = Transaction<'c, Sqlite>;
    fn deref(&self) -> &Self::Target {
        &self.tx
    }
}

impl std::ops::DerefMut for WriteTx<'_> {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.tx
    }
}

impl Store {
    /// Opens (creating if needed) the database at `path` and brings its schema up to date.
    /// A new file is created 0600; SQLite gives its WAL and shared-memory files the database
    /// file's mode.
    pub async fn open(path: &Path) -> Result<Store> {
        let open_err = |source| StoreError::Open {
            path: path.to_owned(),
            source,
        };
        create_private(path).map_err(|e| open_err(sqlx::Error::Io(e)))?;
        let options = SqliteConnectOptions::from_str("sqlite:")
            .map_err(open_err)?
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // WAL + NORMAL is durable across application crashes; only power loss can drop the
            // last commits, never corrupt the file.
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            // A crawl's commits rewrite the same index pages; checkpointing every 16 MB of WAL
            // rather than every 4 copies each into the database file less often.
            .pragma("wal_autocheckpoint", "4000")
            // A group commit touches more than SQLite's default 2 MB of pages, which spilled to
            // the WAL mid-transaction and were read back. Each connection fills its own cache,
            // so a larger one costs peak memory for little speed (docs/benchmarks.md).
            .pragma("cache_size", "-8000")
            // Statement journals (for multi-row upserts) in memory, not in temporary files.
            .pragma("temp_store", "memory")
            .busy_timeout(BUSY_TIMEOUT);
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            // A connection to a local file can't go stale the way a network one can; the ping
            // would cost every query a round trip to SQLite's thread.
            .test_before_acquire(false)
            .connect_with(options)
            .await
            .map_err(open_err)?;
        sqlx::migrate!("./migrations")
            .run(&pool)
            .await
            .map_err(|source| StoreError::Migrate {
                path: path.to_owned(),
                source,
            })?;
        tracing::debug!(db = %path.display(), "database open");
        Ok(Store {
            pool,
            writer: Arc::new(Mutex::new(())),
        })
    }

    /// Begins a write transaction: waits for this process's other writers, then takes
    /// SQLite's write lock at once (`BEGIN IMMEDIATE`), so it never fails half-way on a lock.
    pub(crate) async fn begin_write(&self) -> Result<WriteTx<'static>> {
        let turn = self.writer.clone().lock_owned().await;
        let tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        Ok(WriteTx { tx, _turn: turn })
    }

    /// [`Store::begin_write`] on a connection the caller keeps between transactions. It holds
    /// that connection while it waits for its turn, so only a few long-lived writers (a crawl's)
    /// should: a turn's holder may need one of the pool's others.
    pub(crate) async fn begin_write_on<'c>(
        &self,
        conn: &'c mut SqliteConnection,
    ) -> Result<WriteTx<'c>> {
        let turn = self.writer.clone().lock_owned().await;
        let tx = conn.begin_with("BEGIN IMMEDIATE").await?;
        Ok(WriteTx { tx, _turn: turn })
    }

    /// The pool, for tests that look at rows no query method returns.
    #[cfg(test)]
    pub(crate) fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// Closes the pool, checkpointing the WAL.
    pub async fn close(self) {
        self.pool.close().await;
    }
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
        let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
            .fetch_one(&store.pool)
            .await
            .unwrap();
        assert_eq!(mode, "wal");
        let fk: i64 = sqlx::query_scalar("PRAGMA foreign_keys")
            .fetch_one(&store.pool)
            .await
            .unwrap();
        assert_eq!(fk, 1);
        // Reopening an up-to-date file runs no migration and fails nothing.
        store.close().await;
        Store::open(&dir.path().join("t.db")).await.unwrap();
    }
}
