//! Crawl jobs and the workers that run them. A watch's run is one job per platform; a worker
//! claims one under a lease and renews it while it works; a job whose lease runs out (its
//! worker died) is claimed again. At most one job per platform runs at a time across all
//! workers, so a platform's pace and its accounts' limits hold cluster-wide as they hold in
//! one process; workers add throughput across platforms and watches, accounts within a job.

use std::time::Duration;

use chrono::Utc;
use serde::Serialize;

use super::alerts::stamp;
use super::daemon::recount;
use super::sql::{self, Backend};
use super::{Result, Store, WriteTx, now};

/// Serialises claims on PostgreSQL, so two workers never both see a platform free. Claims
/// are short and take no part in the writer lock crawls hold.
const CLAIM_LOCK: i64 = 0x6d77_636c_6169_6d00; // "mwclaim"

/// The notification channel a new job is announced on (PostgreSQL).
pub(crate) const JOBS_CHANNEL: &str = "markwatch_jobs";

/// A job a worker holds.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub(crate) struct Job {
    pub id: i64,
    pub schedule_run_id: i64,
    pub watch: String,
    pub platform: String,
    /// How many times it has been claimed, this claim included.
    pub attempts: i64,
}

/// How a job ended.
pub(crate) struct JobOutcome<'a> {
    pub status: &'a str,
    pub crawl_runs: &'a [i64],
    pub error: Option<&'a str>,
}

/// A worker process as `markwatch workers` shows it.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct WorkerRow {
    pub name: String,
    pub host: String,
    pub pid: i64,
    pub slots: i64,
    pub lease_secs: i64,
    pub started_at: String,
    pub heartbeat_at: String,
    pub stopped_at: Option<String>,
    /// Jobs it holds now.
    pub running: i64,
}

impl WorkerRow {
    /// `alive` while it heartbeats (two missed beats still count), `stopped` once it said so,
    /// else `silent`: killed, hung or cut off, its jobs going to others as leases run out.
    pub fn state(&self, now: chrono::DateTime<Utc>) -> &'static str {
        if self.stopped_at.is_some() {
            return "stopped";
        }
        let last = chrono::DateTime::parse_from_rfc3339(&self.heartbeat_at);
        let fresh = last.is_ok_and(|t| (now - t.to_utc()).num_seconds() <= self.lease_secs);
        if fresh { "alive" } else { "silent" }
    }
}

/// Jobs per platform, for `/metrics`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, sqlx::FromRow)]
pub struct PlatformJobs {
    pub platform: String,
    pub queued: i64,
    pub running: i64,
    /// Seconds the oldest queued job has waited; 0 when none waits.
    pub lag_secs: f64,
}

impl Store {
    /// Records a worker starting (or starting again under the same name).
    pub(crate) async fn register_worker(
        &self,
        name: &str,
        host: &str,
        pid: u32,
        slots: u32,
        lease: Duration,
    ) -> Result<()> {
        let at = now();
        sql::query(
            "INSERT INTO workers (name, host, pid, slots, lease_secs, started_at, heartbeat_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)
             ON CONFLICT (name) DO UPDATE SET host = excluded.host, pid = excluded.pid,
             slots = excluded.slots, lease_secs = excluded.lease_secs,
             started_at = excluded.started_at, heartbeat_at = excluded.heartbeat_at,
             stopped_at = NULL",
        )
        .bind(name)
        .bind(host)
        .bind(i64::from(pid))
        .bind(i64::from(slots))
        .bind(i64::try_from(lease.as_secs()).unwrap_or(i64::MAX))
        .bind(&at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// A worker's sign of life: renews the leases of `jobs` and returns those it no longer
    /// holds (their lease ran out and another worker took them): it must stop working on them.
    pub(crate) async fn worker_heartbeat(
        &self,
        name: &str,
        jobs: &[i64],
        lease: Duration,
    ) -> Result<Vec<i64>> {
        let at = now();
        let until = lease_end(lease);
        let mut lost = Vec::new();
        let mut tx = self.begin_write().await?;
        sql::query("UPDATE workers SET heartbeat_at = ? WHERE name = ?")
            .bind(&at)
            .bind(name)
            .execute(&mut **tx)
            .await?;
        for &id in jobs {
            let renewed = sql::query(
                "UPDATE crawl_jobs SET lease_until = ?
                 WHERE id = ? AND worker = ? AND state = 'running'",
            )
            .bind(&until)
            .bind(id)
            .bind(name)
            .execute(&mut **tx)
            .await?
            .rows_affected();
            if renewed == 0 {
                lost.push(id);
            }
        }
        tx.commit().await?;
        Ok(lost)
    }

    /// A worker stopping cleanly.
    pub(crate) async fn stop_worker(&self, name: &str) -> Result<()> {
        sql::query("UPDATE workers SET stopped_at = ? WHERE name = ?")
            .bind(now())
            .bind(name)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Claims the oldest job that is queued, or running under a lease that ran out, whose
    /// platform no other worker is crawling and whose run still goes. A job taken over from a
    /// dead worker has the crawl runs it left abandoned first, with what they stored counted.
    pub(crate) async fn claim_job(&self, worker: &str, lease: Duration) -> Result<Option<Job>> {
        let at = now();
        let claimable = "SELECT j.id, j.state, j.started_at FROM crawl_jobs j
             JOIN schedule_runs r ON r.id = j.schedule_run_id AND r.status = 'running'
             WHERE (j.state = 'queued' OR (j.state = 'running' AND j.lease_until < ?1))
               AND NOT EXISTS (SELECT 1 FROM crawl_jobs o WHERE o.platform = j.platform
                               AND o.state = 'running' AND o.lease_until >= ?1 AND o.id <> j.id)
             ORDER BY j.id LIMIT 1";
        let mut tx = match self.backend {
            // SQLite's write lock is the claim lock.
            Backend::Sqlite => self.begin_write().await?,
            Backend::Postgres => {
                let mut tx = self.begin_unlocked().await?;
                sql::query("SELECT pg_advisory_xact_lock(?)")
                    .bind(CLAIM_LOCK)
                    .execute(&mut **tx)
                    .await?;
                tx
            }
        };
        let candidate: Option<(i64, String, Option<String>)> =
            sql::query_as(sqlx::AssertSqlSafe(match self.backend {
                Backend::Sqlite => claimable.to_owned(),
                // A job row a finishing worker holds is passed over, not waited for.
                Backend::Postgres => format!("{claimable} FOR UPDATE OF j SKIP LOCKED"),
            }))
            .bind(&at)
            .fetch_optional(&mut **tx)
            .await?;
        let Some((id, state, started_at)) = candidate else {
            return Ok(None);
        };
        let job: Job = sql::query_as(
            "UPDATE crawl_jobs SET state = 'running', worker = ?, lease_until = ?,
             attempts = attempts + 1, started_at = ?
             WHERE id = ? RETURNING id, schedule_run_id, watch, platform, attempts",
        )
        .bind(worker)
        .bind(lease_end(lease))
        .bind(&at)
        .bind(id)
        .fetch_one(&mut **tx)
        .await?;
        if state == "running" {
            let since = started_at.unwrap_or_else(|| at.clone());
            abandon_crawl_runs(&mut tx, &job.platform, &since, &at, "its worker stopped").await?;
        }
        tx.commit().await?;
        Ok(Some(job))
    }

    /// Records a job's end. The last job of a run ends the run: `ok` when every platform's
    /// was, `failed` when none was, else `partial`, with every crawl run and the first error.
    /// A job this worker no longer holds (its lease ran out) is left to its new holder.
    pub(crate) async fn finish_job(
        &self,
        job: &Job,
        worker: &str,
        outcome: &JobOutcome<'_>,
    ) -> Result<bool> {
        let at = now();
        let runs = serde_json::to_string(outcome.crawl_runs).unwrap_or_else(|_| "[]".to_owned());
        let mut tx = self.begin_write().await?;
        let held = sql::query(
            "UPDATE crawl_jobs SET state = 'done', status = ?, crawl_runs = ?, error = ?,
             finished_at = ?, lease_until = NULL
             WHERE id = ? AND worker = ? AND state = 'running'",
        )
        .bind(outcome.status)
        .bind(runs)
        .bind(outcome.error)
        .bind(&at)
        .bind(job.id)
        .bind(worker)
        .execute(&mut **tx)
        .await?
        .rows_affected()
            > 0;
        if held {
            finish_run_if_done(&mut tx, job.schedule_run_id, &at).await?;
        }
        tx.commit().await?;
        Ok(held)
    }

    /// Puts a job back in the queue (its worker is stopping): another worker, or this one
    /// started again, takes it from the start; the crawl runs it left are abandoned.
    pub(crate) async fn release_job(&self, job: &Job, worker: &str) -> Result<()> {
        let at = now();
        let mut tx = self.begin_write().await?;
        let started: Option<Option<String>> = sql::query_scalar(
            "UPDATE crawl_jobs SET state = 'queued', worker = NULL, lease_until = NULL
             WHERE id = ? AND worker = ? AND state = 'running' RETURNING started_at",
        )
        .bind(job.id)
        .bind(worker)
        .fetch_optional(&mut **tx)
        .await?;
        if let Some(started) = started {
            let since = started.unwrap_or_else(|| at.clone());
            abandon_crawl_runs(&mut tx, &job.platform, &since, &at, "its worker stopped").await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Lets go of the jobs of workers on `host` whose process is gone (`alive` says), so a
    /// restarted `serve` on one machine resumes at once instead of waiting out their leases.
    /// Returns the workers found dead.
    pub(crate) async fn release_dead_local_workers(
        &self,
        host: &str,
        alive: impl Fn(i64) -> bool,
    ) -> Result<Vec<String>> {
        let rows: Vec<(String, i64)> =
            sql::query_as("SELECT name, pid FROM workers WHERE host = ? AND stopped_at IS NULL")
                .bind(host)
                .fetch_all(&self.pool)
                .await?;
        let dead: Vec<String> = rows
            .into_iter()
            .filter(|(_, pid)| !alive(*pid))
            .map(|(name, _)| name)
            .collect();
        let at = now();
        let mut tx = self.begin_write().await?;
        for name in &dead {
            sql::query(
                "UPDATE crawl_jobs SET lease_until = ? WHERE worker = ? AND state = 'running'",
            )
            .bind(&at)
            .bind(name)
            .execute(&mut **tx)
            .await?;
            sql::query("UPDATE workers SET stopped_at = ? WHERE name = ?")
                .bind(&at)
                .bind(name)
                .execute(&mut **tx)
                .await?;
        }
        tx.commit().await?;
        Ok(dead)
    }

    /// Whether a run of `watch` is going (its jobs queued or running).
    pub(crate) async fn watch_running(&self, watch: &str) -> Result<bool> {
        let n: i64 = sql::query_scalar(
            "SELECT count(*) FROM schedule_runs WHERE watch = ? AND status = 'running'",
        )
        .bind(watch)
        .fetch_one(&self.pool)
        .await?;
        Ok(n > 0)
    }

    /// Every worker that has registered, the running ones first, with the jobs it holds.
    pub async fn workers(&self) -> Result<Vec<WorkerRow>> {
        Ok(sql::query_as(
            "SELECT w.name, w.host, w.pid, w.slots, w.lease_secs, w.started_at, w.heartbeat_at,
                    w.stopped_at,
                    (SELECT count(*) FROM crawl_jobs j WHERE j.worker = w.name
                     AND j.state = 'running') AS running
             FROM workers w ORDER BY w.stopped_at IS NOT NULL, w.started_at DESC, w.name",
        )
        .fetch_all(&self.pool)
        .await?)
    }

    /// Queued and running jobs per platform, and how long the oldest queued one has waited.
    pub(crate) async fn platform_jobs(&self) -> Result<Vec<PlatformJobs>> {
        Ok(sql::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT platform,
                    count(*) FILTER (WHERE state = 'queued') AS queued,
                    count(*) FILTER (WHERE state = 'running') AS running,
                    coalesce(max(CASE WHEN state = 'queued' THEN {} - {} END), 0.0) AS lag_secs
             FROM crawl_jobs WHERE state IN ('queued', 'running')
             GROUP BY platform ORDER BY platform",
            self.backend.epoch("now"),
            self.backend.epoch("created_at"),
        )))
        .fetch_all(&self.pool)
        .await?)
    }
}

/// The first moment a lease taken now for `lease` has run out.
fn lease_end(lease: Duration) -> String {
    let lease = chrono::Duration::from_std(lease).unwrap_or(chrono::Duration::MAX);
    stamp(
        Utc::now()
            .checked_add_signed(lease)
            .unwrap_or(chrono::DateTime::<Utc>::MAX_UTC),
    )
}

/// Crawl runs of `platform` started since `since` and still marked running: their process
/// is gone. Abandoned, with what they stored counted.
pub(super) async fn abandon_crawl_runs(
    tx: &mut WriteTx<'_>,
    platform: &str,
    since: &str,
    at: &str,
    why: &str,
) -> Result<()> {
    let backend = Backend::of(tx);
    sql::query(sqlx::AssertSqlSafe(format!(
        "UPDATE crawl_runs SET status = 'abandoned', finished_at = ?,
         error = coalesce(error, ?),{}
         WHERE status = 'running' AND platform = ? AND started_at >= ?",
        recount(backend)
    )))
    .bind(at)
    .bind(format!("interrupted: {why}"))
    .bind(platform)
    .bind(since)
    .execute(&mut ***tx)
    .await?;
    Ok(())
}

/// Ends run `id` if none of its jobs is left to do.
async fn finish_run_if_done(tx: &mut WriteTx<'_>, id: i64, at: &str) -> Result<()> {
    // (state, status, crawl runs, error)
    type JobEnd = (String, Option<String>, Option<String>, Option<String>);
    let jobs: Vec<JobEnd> = sql::query_as(
        "SELECT state, status, crawl_runs, error FROM crawl_jobs
         WHERE schedule_run_id = ? ORDER BY id",
    )
    .bind(id)
    .fetch_all(&mut ***tx)
    .await?;
    if jobs
        .iter()
        .any(|(state, ..)| state == "queued" || state == "running")
    {
        return Ok(());
    }
    let done: Vec<_> = jobs.iter().filter(|j| j.0 == "done").collect();
    let ok = done.iter().filter(|j| j.1.as_deref() == Some("ok")).count();
    let failed = done
        .iter()
        .filter(|j| j.1.as_deref() == Some("failed"))
        .count();
    let status = if ok == done.len() {
        "ok"
    } else if failed == done.len() {
        "failed"
    } else {
        "partial"
    };
    let mut runs: Vec<i64> = Vec::new();
    for (_, _, crawl_runs, _) in &done {
        if let Some(text) = crawl_runs {
            runs.extend(serde_json::from_str::<Vec<i64>>(text).unwrap_or_default());
        }
    }
    let error = done.iter().find_map(|j| j.3.clone());
    super::daemon::finish_schedule_run_in(tx, id, status, &runs, error.as_deref(), at).await
}
