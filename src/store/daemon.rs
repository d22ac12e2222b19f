//! The daemon's tables: schedules and their runs, facts about the running daemon, readiness,
//! the counts `/metrics` reports (read at scrape time, so they survive restarts), and online
//! backups.

use super::sql;
use std::path::Path;

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::{Connection, Row};

use super::sql::Flag;
use super::{Backend, Result, Store, StoreError, now};
use crate::model::{Trigger, slot_key};

/// A watch's persisted schedule.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ScheduleRow {
    pub watch: String,
    pub cron: String,
    pub next_slot: DateTime<Utc>,
    pub next_run_at: DateTime<Utc>,
    pub resume_slot: Option<String>,
    pub last_slot: Option<String>,
    pub last_started_at: Option<String>,
    pub last_finished_at: Option<String>,
    pub last_status: Option<String>,
}

/// One run a schedule started, skipped, or was asked for.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize, sqlx::FromRow)]
pub struct ScheduleRunRow {
    pub id: i64,
    pub watch: String,
    pub slot: String,
    pub trigger: String,
    pub started_at: String,
    pub finished_at: Option<String>,
    pub status: String,
    /// JSON array of `crawl_runs.id`.
    pub crawl_runs: Option<String>,
    pub error: Option<String>,
}

/// Starting a run: the run row and the schedule's new plan, written together.
#[derive(Debug, Clone)]
pub(crate) struct RunClaim<'a> {
    pub watch: &'a str,
    pub slot: &'a str,
    pub trigger: Trigger,
    /// The schedule's next slot as read; the claim fails if another writer moved it.
    pub expect_next_slot: Option<DateTime<Utc>>,
    /// The plan after this run: (next slot, next start).
    pub replan: Option<(DateTime<Utc>, DateTime<Utc>)>,
    /// The platforms it crawls: one job each, for the workers.
    pub platforms: &'a [String],
}

/// Whether the daemon can serve: both must be `Ok` for `/readyz`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct Readiness {
    pub writable: std::result::Result<(), String>,
    pub migrations: std::result::Result<(), String>,
}

impl Readiness {
    #[cfg(test)]
    pub(crate) fn is_ready(&self) -> bool {
        self.writable.is_ok() && self.migrations.is_ok()
    }
}

/// Crawl totals for one platform over every finished run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, sqlx::FromRow)]
pub struct CrawlTotals {
    pub platform: String,
    pub pages_ok: i64,
    pub pages_retried: i64,
    pub pages_failed: i64,
    pub pages_blocked: i64,
    pub listings_new: i64,
    pub listings_changed: i64,
}

/// Upper bounds, in seconds, of the crawl duration histogram's buckets.
pub(crate) const CRAWL_DURATION_BUCKETS: [f64; 10] = [
    1.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0,
];

/// One platform's crawl durations: cumulative counts per bucket of
/// [`CRAWL_DURATION_BUCKETS`], then the total count and sum.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DurationHistogram {
    pub platform: String,
    pub buckets: Vec<i64>,
    pub count: i64,
    pub sum_secs: f64,
}

/// Everything `/metrics` reports that lives in the database.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct MetricCounts {
    pub crawl: Vec<CrawlTotals>,
    /// (platform, status, runs).
    pub crawl_runs: Vec<(String, String, i64)>,
    pub crawl_durations: Vec<DurationHistogram>,
    /// (platform, listings stored).
    pub listings: Vec<(String, i64)>,
    /// (platform, verdict, matches).
    pub matches: Vec<(String, String, i64)>,
    /// (platform, state, notices).
    pub notices: Vec<(String, String, i64)>,
    /// (kind, state, alerts).
    pub alerts: Vec<(String, String, i64)>,
    /// Seconds since the oldest alert still waiting to be sent was queued.
    pub oldest_queued_alert_secs: Option<f64>,
    /// (watch, trigger, status, runs).
    pub schedule_runs: Vec<(String, String, String, i64)>,
    pub schedules: Vec<ScheduleRow>,
    pub evidence_pages: i64,
    /// Workers heartbeating (see [`super::WorkerRow::state`]).
    pub workers_alive: i64,
    /// Queued and running crawl jobs, and the queue's lag, per platform.
    pub jobs: Vec<super::PlatformJobs>,
}

/// What `markwatch backup` wrote.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BackupSummary {
    pub bytes: u64,
    /// `PRAGMA integrity_check` on the copy.
    pub integrity: String,
}

/// A crawl run records its counts when it ends; one cut short (kill -9, shutdown) would keep
/// zeros. These count what it stored instead: each page of evidence as fetched, the listings
/// first seen on its platform after it started (and before its platform's next run), the
/// listings its pages changed. Walls and unreadable pages it stored count as fetched too.
pub(super) fn recount(backend: Backend) -> String {
    let at = |t: &str| backend.epoch(t);
    let pages = backend.greatest(
        "pages_ok",
        "(SELECT count(*) FROM evidence e WHERE e.crawl_run_id = crawl_runs.id)",
    );
    let new = backend.greatest(
        "listings_new",
        &format!(
            "(SELECT count(*) FROM listings l WHERE l.platform = crawl_runs.platform
              AND {} >= {}
              AND NOT EXISTS (SELECT 1 FROM crawl_runs n WHERE n.platform = crawl_runs.platform
                  AND n.id > crawl_runs.id AND {} <= {}))",
            at("l.first_seen"),
            at("crawl_runs.started_at"),
            at("n.started_at"),
            at("l.first_seen"),
        ),
    );
    let changed = backend.greatest(
        "listings_changed",
        "(SELECT count(DISTINCT c.listing_id) FROM listing_changes c
          JOIN evidence e ON e.id = c.evidence_id WHERE e.crawl_run_id = crawl_runs.id)",
    );
    format!(" pages_ok = {pages}, listings_new = {new}, listings_changed = {changed}")
}

fn parse_time(column: &'static str, value: &str) -> Result<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(value)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| StoreError::Corrupt {
            table: "schedules",
            column,
            value: value.to_owned(),
        })
}

fn stamp(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

impl Store {
    /// Every watch's persisted schedule.
    pub async fn schedules(&self) -> Result<Vec<ScheduleRow>> {
        let rows = sql::query(
            "SELECT watch, cron, next_slot, next_run_at, resume_slot, last_slot, last_started_at,
             last_finished_at, last_status FROM schedules ORDER BY watch",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|r| {
                Ok(ScheduleRow {
                    watch: r.get("watch"),
                    cron: r.get("cron"),
                    next_slot: parse_time("next_slot", r.get("next_slot"))?,
                    next_run_at: parse_time("next_run_at", r.get("next_run_at"))?,
                    resume_slot: r.get("resume_slot"),
                    last_slot: r.get("last_slot"),
                    last_started_at: r.get("last_started_at"),
                    last_finished_at: r.get("last_finished_at"),
                    last_status: r.get("last_status"),
                })
            })
            .collect()
    }

    /// Sets a watch's next slot (a new watch, or its cron changed), keeping its history.
    pub(crate) async fn save_schedule_plan(
        &self,
        watch: &str,
        cron: &str,
        next_slot: DateTime<Utc>,
        next_run_at: DateTime<Utc>,
    ) -> Result<()> {
        sql::query(
            "INSERT INTO schedules (watch, cron, next_slot, next_run_at, updated_at) VALUES (?, ?, ?, ?, ?)
             ON CONFLICT (watch) DO UPDATE SET cron = excluded.cron, next_slot = excluded.next_slot,
             next_run_at = excluded.next_run_at, updated_at = excluded.updated_at",
        )
        .bind(watch)
        .bind(cron)
        .bind(slot_key(next_slot))
        .bind(stamp(next_run_at))
        .bind(now())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// After a crash: runs left `running` that no live worker holds (no job under a lease
    /// still running) are marked abandoned, their jobs cancelled and their slots queued to run
    /// again; crawl runs left `running` on platforms no live worker crawls are abandoned.
    /// Returns the (watch, slot) pairs to resume. Call before starting any run, after
    /// [`Store::release_dead_local_workers`].
    pub(crate) async fn recover_interrupted_runs(&self) -> Result<Vec<(String, String)>> {
        let at = now();
        let mut tx = self.begin_write().await?;
        let cut: Vec<(i64, String, String)> = sql::query_as(
            "UPDATE schedule_runs SET status = 'abandoned', finished_at = ?1,
             error = coalesce(error, 'the daemon stopped before the run finished')
             WHERE status = 'running' AND NOT EXISTS (
                 SELECT 1 FROM crawl_jobs j WHERE j.schedule_run_id = schedule_runs.id
                 AND j.state = 'running' AND j.lease_until >= ?1)
             RETURNING id, watch, slot",
        )
        .bind(&at)
        .fetch_all(&mut **tx)
        .await?;
        for (id, watch, slot) in &cut {
            sql::query("UPDATE schedules SET resume_slot = ?, updated_at = ? WHERE watch = ?")
                .bind(slot)
                .bind(&at)
                .bind(watch)
                .execute(&mut **tx)
                .await?;
            cancel_jobs(&mut tx, *id, &at).await?;
        }
        sql::query(sqlx::AssertSqlSafe(format!(
            "UPDATE crawl_runs SET status = 'abandoned', finished_at = ?1,
             error = coalesce(error, 'interrupted: the process stopped during the run'),{}
             WHERE status = 'running' AND NOT EXISTS (
                 SELECT 1 FROM crawl_jobs j WHERE j.platform = crawl_runs.platform
                 AND j.state = 'running' AND j.lease_until >= ?1)",
            recount(self.backend)
        )))
        .bind(&at)
        .execute(&mut **tx)
        .await?;
        tx.commit().await?;
        Ok(cut.into_iter().map(|(_, w, s)| (w, s)).collect())
    }

    /// Starts a run: inserts it and moves the schedule on, atomically. `None` when the slot
    /// already ran (or runs) or another writer moved the schedule first.
    pub(crate) async fn claim_schedule_run(&self, claim: &RunClaim<'_>) -> Result<Option<i64>> {
        let at = now();
        let mut tx = self.begin_write().await?;
        if let Some(expected) = claim.expect_next_slot {
            let moved =
                sql::query_scalar::<String>("SELECT next_slot FROM schedules WHERE watch = ?")
                    .bind(claim.watch)
                    .fetch_optional(&mut **tx)
                    .await?
                    .is_none_or(|s| s != slot_key(expected));
            if moved {
                return Ok(None);
            }
        }
        let inserted = sql::query_scalar::<i64>(
            "INSERT INTO schedule_runs (watch, slot, trigger, started_at) VALUES (?, ?, ?, ?)
             ON CONFLICT DO NOTHING RETURNING id",
        )
        .bind(claim.watch)
        .bind(claim.slot)
        .bind(claim.trigger.as_str())
        .bind(&at)
        .fetch_optional(&mut **tx)
        .await?;
        let Some(id) = inserted else {
            return Ok(None);
        };
        sql::query(
            "INSERT INTO crawl_jobs (schedule_run_id, watch, platform, created_at)
             SELECT ?, ?, value, ? FROM json_each(?)",
        )
        .bind(id)
        .bind(claim.watch)
        .bind(&at)
        .bind(super::to_json(&claim.platforms))
        .execute(&mut **tx)
        .await?;
        if self.backend == Backend::Postgres {
            // Delivered at commit: workers listening wake at once instead of at their next poll.
            sql::query("SELECT pg_notify(?, '')")
                .bind(super::jobs::JOBS_CHANNEL)
                .execute(&mut **tx)
                .await?;
        }
        if claim.trigger != Trigger::Manual {
            sql::query(
                "UPDATE schedules SET last_slot = ?, last_started_at = ?, updated_at = ?,
                 resume_slot = CASE WHEN ? THEN NULL ELSE resume_slot END WHERE watch = ?",
            )
            .bind(claim.slot)
            .bind(&at)
            .bind(&at)
            .bind(claim.trigger == Trigger::Resume)
            .bind(claim.watch)
            .execute(&mut **tx)
            .await?;
        }
        if let Some((slot, run_at)) = claim.replan {
            sql::query(
                "UPDATE schedules SET next_slot = ?, next_run_at = ?, updated_at = ? WHERE watch = ?",
            )
            .bind(slot_key(slot))
            .bind(stamp(run_at))
            .bind(&at)
            .bind(claim.watch)
            .execute(&mut **tx)
            .await?;
        }
        tx.commit().await?;
        Ok(Some(id))
    }

    /// Records a slot skipped because the watch's previous run was still going, and moves on.
    pub(crate) async fn skip_schedule_slot(
        &self,
        watch: &str,
        slot: &str,
        next: (DateTime<Utc>, DateTime<Utc>),
    ) -> Result<()> {
        let at = now();
        let mut tx = self.begin_write().await?;
        sql::query(
            "INSERT INTO schedule_runs (watch, slot, trigger, started_at, finished_at, status, error)
             VALUES (?, ?, 'schedule', ?, ?, 'skipped', 'the previous run was still going')",
        )
        .bind(watch)
        .bind(slot)
        .bind(&at)
        .bind(&at)
        .execute(&mut **tx)
        .await?;
        sql::query(
            "UPDATE schedules SET next_slot = ?, next_run_at = ?, updated_at = ? WHERE watch = ?",
        )
        .bind(slot_key(next.0))
        .bind(stamp(next.1))
        .bind(&at)
        .bind(watch)
        .execute(&mut **tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Records how a run ended.
    #[cfg(test)]
    pub(crate) async fn finish_schedule_run(
        &self,
        id: i64,
        status: &str,
        crawl_runs: &[i64],
        error: Option<&str>,
    ) -> Result<()> {
        let mut tx = self.begin_write().await?;
        finish_schedule_run_in(&mut tx, id, status, crawl_runs, error, &now()).await?;
        tx.commit().await?;
        Ok(())
    }

    /// A run cut short by shutdown: abandoned, its crawl runs too, its slot queued to run again.
    pub(crate) async fn abandon_schedule_run(&self, id: i64, platforms: &[String]) -> Result<()> {
        let at = now();
        let mut tx = self.begin_write().await?;
        let (watch, slot, started_at): (String, String, String) = sql::query_as(
            "UPDATE schedule_runs SET status = 'abandoned', finished_at = ?,
             error = 'the daemon shut down during the run' WHERE id = ? RETURNING watch, slot, started_at",
        )
        .bind(&at)
        .bind(id)
        .fetch_one(&mut **tx)
        .await?;
        sql::query("UPDATE schedules SET resume_slot = ?, updated_at = ? WHERE watch = ?")
            .bind(&slot)
            .bind(&at)
            .bind(&watch)
            .execute(&mut **tx)
            .await?;
        cancel_jobs(&mut tx, id, &at).await?;
        for platform in platforms {
            sql::query(sqlx::AssertSqlSafe(format!(
                "UPDATE crawl_runs SET status = 'abandoned', finished_at = ?,
                 error = coalesce(error, 'abandoned at shutdown'),{}
                 WHERE status = 'running' AND platform = ? AND started_at >= ?",
                recount(self.backend)
            )))
            .bind(&at)
            .bind(platform)
            .bind(&started_at)
            .execute(&mut **tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// The most recent runs, newest first.
    pub async fn schedule_runs(&self, limit: i64) -> Result<Vec<ScheduleRunRow>> {
        Ok(sql::query_as(
            "SELECT id, watch, slot, trigger, started_at, finished_at, status, crawl_runs, error
             FROM schedule_runs ORDER BY id DESC LIMIT ?",
        )
        .bind(limit)
        .fetch_all(&self.pool)
        .await?)
    }

    /// One run by id.
    pub(crate) async fn schedule_run(&self, id: i64) -> Result<Option<ScheduleRunRow>> {
        Ok(sql::query_as(
            "SELECT id, watch, slot, trigger, started_at, finished_at, status, crawl_runs, error
             FROM schedule_runs WHERE id = ?",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await?)
    }

    /// Records facts about the running daemon (its API address, control token).
    pub(crate) async fn set_daemon_state(&self, pairs: &[(&str, &str)]) -> Result<()> {
        let at = now();
        let mut tx = self.begin_write().await?;
        for (key, value) in pairs {
            sql::query(
                "INSERT INTO daemon_state (key, value, updated_at) VALUES (?, ?, ?)
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
            )
            .bind(key)
            .bind(value)
            .bind(&at)
            .execute(&mut **tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    pub async fn daemon_state(&self, key: &str) -> Result<Option<String>> {
        Ok(
            sql::query_scalar("SELECT value FROM daemon_state WHERE key = ?")
                .bind(key)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    /// Deletes `keys`, but only while `owner_key` still holds `owner_value`: a daemon clears
    /// only the state it wrote, never a newer daemon's. Returns whether it did.
    pub(crate) async fn clear_daemon_state_if(
        &self,
        keys: &[&str],
        owner_key: &str,
        owner_value: &str,
    ) -> Result<bool> {
        let mut tx = self.begin_write().await?;
        let owner: Option<String> =
            sql::query_scalar("SELECT value FROM daemon_state WHERE key = ?")
                .bind(owner_key)
                .fetch_optional(&mut **tx)
                .await?;
        if owner.as_deref() != Some(owner_value) {
            return Ok(false);
        }
        for key in keys {
            sql::query("DELETE FROM daemon_state WHERE key = ?")
                .bind(key)
                .execute(&mut **tx)
                .await?;
        }
        tx.commit().await?;
        Ok(true)
    }

    /// Deletes `keys` outright (values an older release wrote).
    pub(crate) async fn delete_daemon_state(&self, keys: &[&str]) -> Result<()> {
        let mut tx = self.begin_write().await?;
        for key in keys {
            sql::query("DELETE FROM daemon_state WHERE key = ?")
                .bind(key)
                .execute(&mut **tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Whether the database takes a write now, and whether its migrations are exactly this
    /// binary's.
    pub(crate) async fn readiness(&self) -> Readiness {
        let writable = sql::query(
            "INSERT INTO daemon_state (key, value, updated_at) VALUES ('ready_probe', ?1, ?1)
             ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
        )
        .bind(now())
        .execute(&self.pool)
        .await
        .map(|_| ())
        .map_err(|e| format!("database not writable: {e}"));
        Readiness {
            writable,
            migrations: self.migrations_current().await,
        }
    }

    async fn migrations_current(&self) -> std::result::Result<(), String> {
        let applied: Vec<(i64, Vec<u8>, bool)> = sql::query_as::<(i64, Vec<u8>, Flag)>(
            "SELECT version, checksum, CAST(success AS INTEGER) FROM _sqlx_migrations",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(|e| format!("cannot read the migration table: {e}"))?
        .into_iter()
        .map(|(v, c, ok)| (v, c, ok.0))
        .collect();
        let migrator = self.migrator();
        for m in migrator
            .iter()
            .filter(|m| m.migration_type.is_up_migration())
        {
            match applied.iter().find(|(v, _, _)| *v == m.version) {
                None => return Err(format!("migration {} is not applied", m.version)),
                Some((_, _, false)) => {
                    return Err(format!("migration {} failed part-way", m.version));
                }
                Some((_, checksum, _)) if checksum[..] != m.checksum[..] => {
                    return Err(format!(
                        "migration {} differs from this binary's",
                        m.version
                    ));
                }
                Some(_) => {}
            }
        }
        if let Some((v, _, _)) = applied
            .iter()
            .find(|(v, _, _)| !migrator.iter().any(|m| m.version == *v))
        {
            return Err(format!(
                "the database has migration {v}, unknown to this binary (a newer markwatch?)"
            ));
        }
        Ok(())
    }

    /// The counts `/metrics` reports.
    pub async fn metric_counts(&self) -> Result<MetricCounts> {
        let crawl = sql::query_as(
            "SELECT platform, CAST(sum(pages_ok) AS BIGINT) AS pages_ok,
             CAST(sum(pages_retried) AS BIGINT) AS pages_retried,
             CAST(sum(pages_failed) AS BIGINT) AS pages_failed,
             CAST(sum(pages_blocked) AS BIGINT) AS pages_blocked,
             CAST(sum(listings_new) AS BIGINT) AS listings_new,
             CAST(sum(listings_changed) AS BIGINT) AS listings_changed
             FROM crawl_runs GROUP BY platform ORDER BY platform",
        )
        .fetch_all(&self.pool)
        .await?;
        let crawl_runs = sql::query_as(
            "SELECT platform, status, count(*) FROM crawl_runs GROUP BY platform, status ORDER BY 1, 2",
        )
        .fetch_all(&self.pool)
        .await?;
        let buckets: Vec<String> = CRAWL_DURATION_BUCKETS
            .iter()
            .map(|b| format!("count(*) FILTER (WHERE d <= {b})"))
            .collect();
        let durations = sql::query(sqlx::AssertSqlSafe(format!(
            "SELECT platform, count(*) AS n, coalesce(sum(d), 0.0) AS s, {}
             FROM (SELECT platform, {} - {} AS d
                   FROM crawl_runs WHERE finished_at IS NOT NULL AND status <> 'abandoned') AS runs
             GROUP BY platform ORDER BY platform",
            buckets.join(", "),
            self.backend.epoch("finished_at"),
            self.backend.epoch("started_at"),
        )))
        .fetch_all(&self.pool)
        .await?
        .into_iter()
        .map(|r| DurationHistogram {
            platform: r.get(0),
            count: r.get(1),
            sum_secs: r.get(2),
            buckets: (3..3 + CRAWL_DURATION_BUCKETS.len())
                .map(|i| r.get(i))
                .collect(),
        })
        .collect();
        let listings = sql::query_as(
            "SELECT platform, count(*) FROM listings GROUP BY platform ORDER BY platform",
        )
        .fetch_all(&self.pool)
        .await?;
        let matches = sql::query_as(
            "SELECT l.platform, m.verdict, count(*) FROM matches m JOIN listings l ON l.id = m.listing_id
             GROUP BY l.platform, m.verdict ORDER BY 1, 2",
        )
        .fetch_all(&self.pool)
        .await?;
        let notices = sql::query_as(
            "SELECT platform, state, count(*) FROM notices GROUP BY platform, state ORDER BY 1, 2",
        )
        .fetch_all(&self.pool)
        .await?;
        let alerts = sql::query_as(
            "SELECT kind, state, count(*) FROM alerts GROUP BY kind, state ORDER BY 1, 2",
        )
        .fetch_all(&self.pool)
        .await?;
        let oldest: Option<f64> = sql::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT {} - {} FROM alerts WHERE state IN ('queued', 'failed_retrying')",
            self.backend.epoch("now"),
            self.backend.epoch("min(created_at)"),
        )))
        .fetch_one(&self.pool)
        .await?;
        let schedule_runs = sql::query_as(
            "SELECT watch, trigger, status, count(*) FROM schedule_runs
             GROUP BY watch, trigger, status ORDER BY 1, 2, 3",
        )
        .fetch_all(&self.pool)
        .await?;
        let evidence_pages = sql::query_scalar("SELECT count(*) FROM evidence")
            .fetch_one(&self.pool)
            .await?;
        let now_t = Utc::now();
        let workers = self.workers().await?;
        let workers_alive = workers.iter().filter(|w| w.state(now_t) == "alive").count() as i64;
        let jobs = self.platform_jobs().await?;
        Ok(MetricCounts {
            crawl,
            crawl_runs,
            crawl_durations: durations,
            listings,
            matches,
            notices,
            alerts,
            oldest_queued_alert_secs: oldest.map(|s| s.max(0.0)),
            schedule_runs,
            schedules: self.schedules().await?,
            evidence_pages,
            workers_alive,
            jobs,
        })
    }

    /// Copies the live database to `dest` with `VACUUM INTO` (a consistent snapshot while
    /// writers carry on), through a temporary name so a half-written file never has the final
    /// one, then checks the copy's integrity.
    pub async fn backup_to(&self, dest: &Path) -> Result<BackupSummary> {
        let io = |e: std::io::Error| StoreError::Query(sqlx::Error::Io(e));
        if self.backend == Backend::Postgres {
            return Err(StoreError::Unsupported(
                "`backup` copies an SQLite file; back up PostgreSQL with pg_dump (deploy/README.md)",
            ));
        }
        if dest.exists() {
            return Err(io(std::io::Error::new(
                std::io::ErrorKind::AlreadyExists,
                format!("{} already exists; choose a new name", dest.display()),
            )));
        }
        let file_name = dest
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "backup".to_owned());
        let partial = dest.with_file_name(format!(".{file_name}.partial-{}", std::process::id()));
        let _ = std::fs::remove_file(&partial);
        // Made empty and 0600 first: VACUUM INTO fills an empty file, and would otherwise
        // create it readable by everyone.
        super::create_private(&partial).map_err(io)?;
        let vacuumed = sql::query("VACUUM INTO ?")
            .bind(partial.to_string_lossy().into_owned())
            .execute(&self.pool)
            .await;
        if let Err(e) = vacuumed {
            let _ = std::fs::remove_file(&partial);
            return Err(e.into());
        }
        let integrity = check_integrity(&partial).await;
        let integrity = match integrity {
            Ok(v) => v,
            Err(e) => {
                let _ = std::fs::remove_file(&partial);
                return Err(e);
            }
        };
        if integrity != "ok" {
            let _ = std::fs::remove_file(&partial);
            return Err(StoreError::Corrupt {
                table: "(backup)",
                column: "integrity_check",
                value: integrity,
            });
        }
        std::fs::rename(&partial, dest).map_err(io)?;
        let bytes = std::fs::metadata(dest).map_err(io)?.len();
        Ok(BackupSummary { bytes, integrity })
    }
}

/// Takes run `id`'s jobs out of the queue and from their workers: the run is over.
async fn cancel_jobs(tx: &mut super::WriteTx<'_>, id: i64, at: &str) -> Result<()> {
    sql::query(
        "UPDATE crawl_jobs SET state = 'cancelled', finished_at = ?, lease_until = NULL
         WHERE schedule_run_id = ? AND state IN ('queued', 'running')",
    )
    .bind(at)
    .bind(id)
    .execute(&mut ***tx)
    .await?;
    Ok(())
}

/// Records how run `id` ended, in `tx`.
pub(super) async fn finish_schedule_run_in(
    tx: &mut super::WriteTx<'_>,
    id: i64,
    status: &str,
    crawl_runs: &[i64],
    error: Option<&str>,
    at: &str,
) -> Result<()> {
    let runs = serde_json::to_string(crawl_runs).unwrap_or_else(|_| "[]".to_owned());
    let (watch, trigger): (String, String) = sql::query_as(
        "UPDATE schedule_runs SET status = ?, finished_at = ?, crawl_runs = ?, error = ?
         WHERE id = ? RETURNING watch, trigger",
    )
    .bind(status)
    .bind(at)
    .bind(runs)
    .bind(error)
    .bind(id)
    .fetch_one(&mut ***tx)
    .await?;
    if trigger != Trigger::Manual.as_str() {
        sql::query(
            "UPDATE schedules SET last_finished_at = ?, last_status = ?, updated_at = ? WHERE watch = ?",
        )
        .bind(at)
        .bind(status)
        .bind(at)
        .bind(&watch)
        .execute(&mut ***tx)
        .await?;
    }
    Ok(())
}

async fn check_integrity(path: &Path) -> Result<String> {
    let options = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(path)
        .read_only(true);
    let mut conn = sqlx::SqliteConnection::connect_with(&options).await?;
    let result: String = sqlx::query_scalar("PRAGMA integrity_check")
        .fetch_one(&mut conn)
        .await?;
    conn.close().await?;
    Ok(result)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    async fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("t.db")).await.unwrap();
        (dir, store)
    }

    #[tokio::test]
    async fn a_slot_is_claimed_once_and_a_cut_run_is_resumed_once() {
        let (_dir, store) = store().await;
        let slot = t("2026-11-21T06:00:00Z");
        store
            .save_schedule_plan("jd", "0 */6 * * *", slot, t("2026-11-21T06:02:00Z"))
            .await
            .unwrap();
        let claim = RunClaim {
            watch: "jd",
            slot: "2026-11-21T06:00:00Z",
            trigger: Trigger::Schedule,
            expect_next_slot: Some(slot),
            replan: Some((t("2026-11-21T12:00:00Z"), t("2026-11-21T12:01:00Z"))),
            platforms: &[],
        };
        let id = store.claim_schedule_run(&claim).await.unwrap().unwrap();
        // The schedule moved on: the same claim again is refused, and so is the slot.
        assert_eq!(store.claim_schedule_run(&claim).await.unwrap(), None);
        let again = RunClaim {
            expect_next_slot: None,
            replan: None,
            ..claim.clone()
        };
        assert_eq!(store.claim_schedule_run(&again).await.unwrap(), None);
        let row = &store.schedules().await.unwrap()[0];
        assert_eq!(row.next_slot, t("2026-11-21T12:00:00Z"));
        assert_eq!(row.last_slot.as_deref(), Some("2026-11-21T06:00:00Z"));

        // A crash leaves it running; recovery queues the slot again, once.
        let cut = store.recover_interrupted_runs().await.unwrap();
        assert_eq!(cut, [("jd".to_owned(), "2026-11-21T06:00:00Z".to_owned())]);
        assert_eq!(store.recover_interrupted_runs().await.unwrap(), []);
        let row = &store.schedules().await.unwrap()[0];
        assert_eq!(row.resume_slot.as_deref(), Some("2026-11-21T06:00:00Z"));
        let resume = RunClaim {
            trigger: Trigger::Resume,
            ..again.clone()
        };
        let resumed = store.claim_schedule_run(&resume).await.unwrap().unwrap();
        assert_ne!(resumed, id);
        assert_eq!(store.schedules().await.unwrap()[0].resume_slot, None);
        // While the resumed run lives, the slot can't start a third time.
        assert_eq!(store.claim_schedule_run(&resume).await.unwrap(), None);
        store
            .finish_schedule_run(resumed, "ok", &[4, 5], None)
            .await
            .unwrap();
        let runs = store.schedule_runs(10).await.unwrap();
        let statuses: Vec<_> = runs.iter().map(|r| r.status.as_str()).collect();
        assert_eq!(statuses, ["ok", "abandoned"]);
        assert_eq!(runs[0].crawl_runs.as_deref(), Some("[4,5]"));
        assert_eq!(
            store.schedules().await.unwrap()[0].last_status.as_deref(),
            Some("ok")
        );
    }

    #[tokio::test]
    async fn a_run_held_for_a_person_is_recorded_paused() {
        let (_dir, store) = store().await;
        let claim = RunClaim {
            watch: "taobao",
            slot: "2026-12-03T06:00:00Z",
            trigger: Trigger::Manual,
            expect_next_slot: None,
            replan: None,
            platforms: &[],
        };
        let id = store.claim_schedule_run(&claim).await.unwrap().unwrap();
        let why = "taobao: no logged-in account for taobao: markwatch accounts login taobao NAME";
        store
            .finish_schedule_run(id, "paused", &[7], Some(why))
            .await
            .unwrap();
        let runs = store.schedule_runs(10).await.unwrap();
        assert_eq!(runs[0].status, "paused");
        assert_eq!(runs[0].error.as_deref(), Some(why));
    }

    #[tokio::test]
    async fn ready_when_writable_and_migrated() {
        let (_dir, store) = store().await;
        let ready = store.readiness().await;
        assert!(ready.is_ready(), "{ready:?}");
        // A migration this binary doesn't know (a newer markwatch ran here) is not current.
        sql::query(
            "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time)
             VALUES (9999, 'future', 1, x'00', 0)",
        )
        .execute(&store.pool)
        .await
        .unwrap();
        let ready = store.readiness().await;
        assert!(ready.writable.is_ok());
        assert!(
            ready.migrations.as_ref().unwrap_err().contains("9999"),
            "{ready:?}"
        );
    }

    #[tokio::test]
    async fn backup_is_a_consistent_copy_and_never_overwrites() {
        let (dir, store) = store().await;
        store.set_daemon_state(&[("k", "v")]).await.unwrap();
        let dest = dir.path().join("copy.db");
        let summary = store.backup_to(&dest).await.unwrap();
        assert_eq!(summary.integrity, "ok");
        assert!(summary.bytes > 0);
        let copy = Store::open(&dest).await.unwrap();
        assert_eq!(copy.daemon_state("k").await.unwrap().as_deref(), Some("v"));
        let err = store.backup_to(&dest).await.unwrap_err().to_string();
        assert!(err.contains("already exists"), "{err}");
        // The copy holds the same secrets: the owner's alone, whatever the umask.
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&dest).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[tokio::test]
    async fn a_daemon_clears_only_the_state_it_wrote() {
        let (_dir, store) = store().await;
        let keys = ["api_addr", "owner"];
        store
            .set_daemon_state(&[("api_addr", "127.0.0.1:1"), ("owner", "mine")])
            .await
            .unwrap();
        // Another daemon took over since: its entries stay.
        store
            .set_daemon_state(&[("api_addr", "127.0.0.1:2"), ("owner", "theirs")])
            .await
            .unwrap();
        assert!(
            !store
                .clear_daemon_state_if(&keys, "owner", "mine")
                .await
                .unwrap()
        );
        assert_eq!(
            store.daemon_state("api_addr").await.unwrap().as_deref(),
            Some("127.0.0.1:2")
        );
        assert!(
            store
                .clear_daemon_state_if(&keys, "owner", "theirs")
                .await
                .unwrap()
        );
        assert_eq!(store.daemon_state("api_addr").await.unwrap(), None);
        assert_eq!(store.daemon_state("owner").await.unwrap(), None);
    }
}
