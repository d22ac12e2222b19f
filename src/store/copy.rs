//! Copying a whole installation from one database to another (`markwatch migrate-db`): an
//! SQLite file outgrown into a PostgreSQL server, or back. Rows keep their ids, so links,
//! evidence chain hashes and timestamp tokens stay valid.

use std::collections::HashSet;

use serde::Serialize;
use sqlx::any::{AnyRow, AnyTypeInfoKind};
use sqlx::{Row as _, ValueRef as _};

use super::sql::{self, Backend};
use super::{Result, Store, StoreError};

/// Every table, parents before children. [`copy_into`](Store::copy_into) refuses a schema
/// with a table missing here (a test checks the list against the migrations).
const TABLES: &[&str] = &[
    "brands",
    "brand_contacts",
    "brand_aliases",
    "authorized_sellers",
    "brand_domains",
    "marks",
    "mark_classes",
    "brand_prices",
    "brand_images",
    "registry_generation",
    "crawl_runs",
    "evidence",
    "evidence_parts",
    "evidence_timestamps",
    "listings",
    "listing_changes",
    "listing_images",
    "matches",
    "notices",
    "notice_items",
    "alerts",
    "alert_attachments",
    "brand_reports",
    "users",
    "audit_log",
    "alert_events",
    "alert_digests",
    "alert_operations",
    "sessions",
    "api_tokens",
    "login_attempts",
    "schedules",
    "schedule_runs",
    "crawl_jobs",
    "accounts",
    "secret_key_check",
    "crawl_incidents",
    "allow_rules",
    "domain_names",
];

/// Tables not copied, and why.
const NOT_COPIED: &[(&str, &str)] = &[
    // Kept by triggers on `notices`: the copied notices rebuild it.
    ("notice_tallies", "rebuilt from the notices"),
    // Kept by triggers on the matches, the audit log and notice items.
    (
        "weekly_activity",
        "rebuilt from the matches, notices and audit log",
    ),
    ("weekly_totals", "rebuilt from weekly_activity"),
    // Kept by triggers on `notices`.
    ("good_faith_days", "rebuilt from the notices"),
    // A running daemon's address, pid and control token: the target has its own daemon.
    ("daemon_state", "the running daemon's own"),
    // Processes of the source's machines.
    ("workers", "the source's worker processes"),
];

/// Rows per table, as copied and as found after.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TableCount {
    pub table: String,
    pub source: i64,
    pub target: i64,
}

/// A column's kind, from the target's schema: what each copied value is bound as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Int,
    Real,
    Text,
    Blob,
}

impl Store {
    /// Copies every row into `target`, which must be freshly migrated and empty, in one
    /// transaction: all or nothing. Returns the rows per table in both, read back after.
    pub async fn copy_into(&self, target: &Store) -> Result<Vec<TableCount>> {
        let tables = self.table_names().await?;
        let known: HashSet<&str> = TABLES
            .iter()
            .chain(NOT_COPIED.iter().map(|(t, _)| t))
            .copied()
            .collect();
        if let Some(t) = tables.iter().find(|t| !known.contains(t.as_str())) {
            return Err(StoreError::Copy(format!(
                "table `{t}` is not in the copy list (store/copy.rs)"
            )));
        }
        for &table in TABLES {
            if target.count_rows(table).await? > 0 {
                return Err(StoreError::Copy(format!(
                    "the target already holds data (table `{table}`); copy into an empty database"
                )));
            }
        }
        let mut tx = target.begin_write().await?;
        for &table in TABLES {
            let columns = self.columns_in(table, target).await?;
            let names: Vec<&str> = columns.iter().map(|(n, _)| n.as_str()).collect();
            let order = match self.backend {
                Backend::Sqlite => "rowid".to_owned(),
                Backend::Postgres if table == "notice_items" => "seq".to_owned(),
                Backend::Postgres => "1".to_owned(),
            };
            // Batches bound the parameters per statement and the rows held at once.
            let per_batch = (8_000 / names.len().max(1)).clamp(1, 500);
            let mut offset = 0i64;
            loop {
                let rows: Vec<AnyRow> = sql::query(sqlx::AssertSqlSafe(format!(
                    "SELECT {} FROM {table} ORDER BY {order} LIMIT ? OFFSET ?",
                    names.join(", ")
                )))
                .bind(per_batch as i64)
                .bind(offset)
                .fetch_all(&self.pool)
                .await?;
                if rows.is_empty() {
                    break;
                }
                offset += rows.len() as i64;
                let one = format!("({})", vec!["?"; names.len()].join(", "));
                let mut q = sql::query(sqlx::AssertSqlSafe(format!(
                    "INSERT INTO {table} ({}) VALUES {}",
                    names.join(", "),
                    vec![one; rows.len()].join(", ")
                )));
                for row in &rows {
                    for (i, (name, kind)) in columns.iter().enumerate() {
                        q = bind_value(q, row, i, *kind).map_err(|e| {
                            StoreError::Copy(format!("{table}.{name}, row {offset}: {e}"))
                        })?;
                    }
                }
                q.execute(&mut **tx).await?;
            }
        }
        if target.backend == Backend::Postgres {
            // Identities go on from the largest id copied.
            for &table in TABLES {
                let columns = target.column_types(table).await?;
                if !columns.iter().any(|(name, _)| name == "id") {
                    continue;
                }
                sql::query(sqlx::AssertSqlSafe(format!(
                    "SELECT setval(pg_get_serial_sequence('{table}', 'id'),
                                   coalesce((SELECT max(id) FROM {table}), 0) + 1, false)
                     WHERE pg_get_serial_sequence('{table}', 'id') IS NOT NULL"
                )))
                .execute(&mut **tx)
                .await?;
            }
        }
        tx.commit().await?;
        let mut counts = Vec::new();
        for &table in TABLES {
            counts.push(TableCount {
                table: table.to_owned(),
                source: self.count_rows(table).await?,
                target: target.count_rows(table).await?,
            });
        }
        Ok(counts)
    }

    /// The tables of the schema, migrations' bookkeeping aside.
    async fn table_names(&self) -> Result<Vec<String>> {
        Ok(sql::query_scalar(match self.backend {
            Backend::Sqlite => {
                "SELECT name FROM sqlite_master WHERE type = 'table'
                 AND name NOT LIKE 'sqlite_%' AND name NOT LIKE '_sqlx%' ORDER BY name"
            }
            Backend::Postgres => {
                "SELECT CAST(table_name AS TEXT) FROM information_schema.tables
                 WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'
                 AND table_name NOT LIKE '\\_sqlx%' ORDER BY 1"
            }
        })
        .fetch_all(&self.pool)
        .await?)
    }

    async fn count_rows(&self, table: &str) -> Result<i64> {
        // `table` is one of TABLES, never input.
        Ok(
            sql::query_scalar(sqlx::AssertSqlSafe(format!("SELECT count(*) FROM {table}")))
                .fetch_one(&self.pool)
                .await?,
        )
    }

    /// The columns of `table` both databases have, in this one's order, with the target's
    /// kind. (PostgreSQL's `notice_items.seq` fills itself in on insert.)
    async fn columns_in(&self, table: &str, target: &Store) -> Result<Vec<(String, Kind)>> {
        let ours = self.column_types(table).await?;
        let theirs = target.column_types(table).await?;
        Ok(ours
            .into_iter()
            .filter_map(|(name, _)| {
                let kind = theirs.iter().find(|(n, _)| *n == name)?.1;
                Some((name, kind))
            })
            .collect())
    }

    async fn column_types(&self, table: &str) -> Result<Vec<(String, Kind)>> {
        let rows: Vec<(String, String)> = sql::query_as(match self.backend {
            Backend::Sqlite => "SELECT name, type FROM pragma_table_info(?) ORDER BY cid",
            Backend::Postgres => {
                "SELECT CAST(column_name AS TEXT), CAST(data_type AS TEXT)
                 FROM information_schema.columns
                 WHERE table_schema = current_schema() AND table_name = ?
                   AND is_generated = 'NEVER' AND identity_generation IS DISTINCT FROM 'ALWAYS'
                 ORDER BY ordinal_position"
            }
        })
        .bind(table)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(name, ty)| {
                let ty = ty.to_ascii_uppercase();
                let kind = if ty.contains("INT") {
                    Kind::Int
                } else if ty.contains("REAL") || ty.contains("DOUBLE") || ty.contains("FLOA") {
                    Kind::Real
                } else if ty.contains("BLOB") || ty.contains("BYTEA") {
                    Kind::Blob
                } else {
                    Kind::Text
                };
                (name, kind)
            })
            .collect())
    }
}

type Insert = sqlx::query::Query<'static, sqlx::Any, sqlx::any::AnyArguments>;

/// Binds column `i` of `row` as the target column's kind; a NULL is bound typed, as
/// PostgreSQL wants it.
fn bind_value(
    q: Insert,
    row: &AnyRow,
    i: usize,
    kind: Kind,
) -> std::result::Result<Insert, String> {
    let raw = row.try_get_raw(i).map_err(|e| e.to_string())?;
    let null = raw.is_null();
    let found = raw.type_info().kind();
    let err = |e: sqlx::Error| e.to_string();
    Ok(match kind {
        _ if null => match kind {
            Kind::Int => q.bind(None::<i64>),
            Kind::Real => q.bind(None::<f64>),
            Kind::Text => q.bind(None::<String>),
            Kind::Blob => q.bind(None::<Vec<u8>>),
        },
        Kind::Int if found == AnyTypeInfoKind::Bool => {
            q.bind(i64::from(row.try_get::<bool, _>(i).map_err(err)?))
        }
        Kind::Int => q.bind(row.try_get::<i64, _>(i).map_err(err)?),
        // SQLite hands back a whole-number REAL as it was stored; both kinds read as f64.
        Kind::Real if found.is_integer() => q.bind(row.try_get::<i64, _>(i).map_err(err)? as f64),
        Kind::Real => q.bind(row.try_get::<f64, _>(i).map_err(err)?),
        Kind::Text => q.bind(row.try_get::<String, _>(i).map_err(err)?),
        Kind::Blob => q.bind(row.try_get::<Vec<u8>, _>(i).map_err(err)?),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every table the migrations make is either copied or said not to be.
    #[tokio::test]
    async fn every_table_is_in_the_copy_list() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().join("t.db")).await.unwrap();
        let mut listed: Vec<&str> = TABLES
            .iter()
            .chain(NOT_COPIED.iter().map(|(t, _)| t))
            .copied()
            .collect();
        listed.sort();
        assert_eq!(store.table_names().await.unwrap(), listed);
    }
}
