//! The alert outbox: events written with each match, alert rows and their delivery states,
//! digest and operations bookkeeping, and the brands' alert preferences.
//!
//! Every state change of an alert is one statement or one transaction, so a crash leaves each
//! row in a state the sender can resume from (the alert module documents the delivery contract).

use super::sql;
use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::{Any, AnyConnection, Transaction};

use super::{Result, Store, StoreError};
use crate::model::alert::{
    Deadline, Item, Payload, PlatformFailure, Reason, Relisting, Undeliverable,
};
use crate::model::{AlertMode, AlertPrefs, Language};

/// What an alert is about. Stored in `alerts.kind` as its snake_case name.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Serialize,
    strum::EnumString,
    strum::IntoStaticStr,
    strum::Display,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum AlertKind {
    /// New infringing listings of one brand, one email per crawl.
    Immediate,
    /// Suspect listings, relistings and case deadlines on the brand's schedule.
    Digest,
    /// Crawl failures, to the operations address.
    Operations,
    /// `markwatch alerts test`.
    Test,
    /// A brand's monthly report, attached.
    Report,
}

impl AlertKind {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

/// Where an alert is on its way out. Stored in `alerts.state` as its snake_case name.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    Serialize,
    clap::ValueEnum,
    strum::EnumString,
    strum::IntoStaticStr,
    strum::Display,
)]
#[serde(rename_all = "snake_case")]
#[value(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum AlertState {
    /// Waiting for its first attempt.
    Queued,
    /// A sender holds it (until `lease_until`).
    Sending,
    /// The server accepted it.
    Sent,
    /// The last attempt failed; another is planned at `next_attempt_at`.
    FailedRetrying,
    /// Given up: out of attempts or refused for good. `alerts retry ID` queues it again.
    Dead,
}

impl AlertState {
    #[cfg(test)]
    pub(crate) const ALL: [AlertState; 5] = [
        AlertState::Queued,
        AlertState::Sending,
        AlertState::Sent,
        AlertState::FailedRetrying,
        AlertState::Dead,
    ];

    /// The stored name.
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

fn corrupt(table: &'static str, column: &'static str, value: &str) -> StoreError {
    StoreError::Corrupt {
        table,
        column,
        value: value.to_owned(),
    }
}

/// A stored enum read back by its name: text no variant has is a corrupt row, not a panic.
fn stored<T: std::str::FromStr>(
    table: &'static str,
    column: &'static str,
    value: &str,
) -> Result<T> {
    value.parse().map_err(|_| corrupt(table, column, value))
}

/// An alert row.
#[derive(Debug, Clone, Serialize)]
pub struct Alert {
    pub id: i64,
    pub kind: AlertKind,
    pub brand_id: Option<i64>,
    pub recipients: Vec<String>,
    /// `<...@...>`, the same on every attempt.
    pub message_id: String,
    pub payload: Payload,
    pub state: AlertState,
    pub attempts: i64,
    pub next_attempt_at: Option<String>,
    pub last_error: Option<String>,
    pub server_response: Option<String>,
    pub sent_at: Option<String>,
    pub subject: Option<String>,
    pub created_at: String,
}

/// A new alert, before it has an id.
#[derive(Debug, Clone)]
pub(crate) struct NewAlert {
    pub kind: AlertKind,
    pub brand_id: Option<i64>,
    pub recipients: Vec<String>,
    pub message_id: String,
    /// Empty when the subject template failed; the sender renders it again.
    pub subject: String,
    pub payload: Payload,
}

/// A file an alert carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AlertAttachment {
    pub filename: String,
    pub content_type: String,
    pub bytes: Vec<u8>,
}

/// A brand that wants a monthly report and has not had `month`'s yet.
#[derive(Debug, Clone)]
pub(crate) struct ReportDue {
    pub brand_id: i64,
    pub brand: String,
    pub language: Language,
    pub contacts: Vec<String>,
}

/// A brand with infringing events waiting for the batcher.
#[derive(Debug, Clone)]
pub(crate) struct PendingBrand {
    pub brand_id: i64,
    pub brand: String,
    pub mode: AlertMode,
    pub contacts: Vec<String>,
    pub events: i64,
    pub oldest: DateTime<Utc>,
    pub newest: DateTime<Utc>,
}

/// A brand as the digest scheduler sees it.
#[derive(Debug, Clone)]
pub(crate) struct DigestBrand {
    pub brand_id: i64,
    pub brand: String,
    pub prefs: AlertPrefs,
    pub contacts: Vec<String>,
    /// The end of the last digest's period; `None` before the first.
    pub covered_to: Option<DateTime<Utc>>,
}

/// A platform's current streak of failed crawl runs.
#[derive(Debug, Clone)]
pub(crate) struct FailureStreak {
    pub platform: String,
    /// Consecutive finished runs with status `failed`, newest first counted.
    pub runs: i64,
    pub newest_run_id: i64,
    pub last_error: Option<String>,
    pub last_finished_at: Option<String>,
    /// Operators were already told about this streak.
    pub alerted: bool,
}

const ALERT_COLUMNS: &str = "id, kind, brand_id, recipients, message_id, payload, state, attempts, \
     next_attempt_at, last_error, server_response, sent_at, subject, created_at";

type AlertRow = (
    i64,
    String,
    Option<i64>,
    String,
    String,
    String,
    String,
    i64,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    String,
);

fn alert_from_row(row: AlertRow) -> Result<Alert> {
    let (
        id,
        kind,
        brand_id,
        recipients,
        message_id,
        payload,
        state,
        attempts,
        next_attempt_at,
        last_error,
        server_response,
        sent_at,
        subject,
        created_at,
    ) = row;
    Ok(Alert {
        id,
        kind: stored("alerts", "kind", &kind)?,
        brand_id,
        recipients: serde_json::from_str(&recipients)
            .map_err(|_| corrupt("alerts", "recipients", &recipients))?,
        message_id,
        payload: serde_json::from_str(&payload)
            .map_err(|_| corrupt("alerts", "payload", &payload))?,
        state: stored("alerts", "state", &state)?,
        attempts,
        next_attempt_at,
        last_error,
        server_response,
        sent_at,
        subject,
        created_at,
    })
}

/// Stored time format: RFC 3339 UTC with milliseconds, which sorts as text.
pub(crate) fn stamp(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

fn parse_stamp(table: &'static str, column: &'static str, s: &str) -> Result<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| StoreError::Corrupt {
            table,
            column,
            value: s.to_owned(),
        })
}

// ---------------------------------------------------------------- events (match transaction)

// ---------------------------------------------------------------- brand preferences

pub(super) async fn brand_prefs(conn: &mut AnyConnection) -> Result<HashMap<i64, AlertPrefs>> {
    let rows: Vec<(i64, String, Option<String>, String, String)> = sql::query_as(
        "SELECT id, alert_mode, alert_digest, alert_language, alert_report FROM brands",
    )
    .fetch_all(&mut *conn)
    .await?;
    rows.into_iter()
        .map(|(id, mode, digest, language, report)| {
            let mut prefs = prefs_from_row(mode, digest, language)?;
            prefs.report = stored("brands", "alert_report", &report)?;
            Ok((id, prefs))
        })
        .collect()
}

fn prefs_from_row(mode: String, digest: Option<String>, language: String) -> Result<AlertPrefs> {
    Ok(AlertPrefs {
        mode: stored("brands", "alert_mode", &mode)?,
        digest,
        language: stored("brands", "alert_language", &language)?,
        report: Default::default(),
    })
}

async fn contacts(conn: &mut AnyConnection, brand_id: i64) -> Result<Vec<String>> {
    Ok(
        sql::query_scalar("SELECT email FROM brand_contacts WHERE brand_id = ? ORDER BY position")
            .bind(brand_id)
            .fetch_all(&mut *conn)
            .await?,
    )
}

// ---------------------------------------------------------------- items shown in emails

/// What an email shows of a matched listing (`ni`: its notice item, if any), as [`ItemRow`].
const ITEM_COLUMNS: &str = "m.id AS match_id, l.id AS listing_id, l.platform, l.title, l.seller,
     l.price, l.currency, l.url, m.verdict, m.score, m.reasons, ni.notice_id,
     coalesce(l.detail_evidence_id, l.evidence_id) AS evidence_id";

/// Matches with their listings and notice items, for [`ITEM_COLUMNS`].
const ITEM_FROM: &str = "FROM matches m JOIN listings l ON l.id = m.listing_id
     LEFT JOIN notice_items ni ON ni.match_id = m.id";

#[derive(sqlx::FromRow)]
struct ItemRow {
    match_id: i64,
    listing_id: i64,
    platform: String,
    title: String,
    seller: Option<String>,
    price: Option<f64>,
    currency: String,
    url: String,
    verdict: String,
    score: f64,
    reasons: String,
    notice_id: Option<i64>,
    evidence_id: Option<i64>,
}

impl From<ItemRow> for Item {
    fn from(row: ItemRow) -> Item {
        Item {
            match_id: row.match_id,
            listing_id: row.listing_id,
            platform: row.platform,
            title: row.title,
            seller: row.seller,
            price: row.price,
            currency: row.currency,
            url: row.url,
            verdict: row.verdict,
            score: row.score,
            reasons: parse_reasons(row.match_id, &row.reasons),
            notice_id: row.notice_id,
            evidence_id: row.evidence_id,
        }
    }
}

/// Reasons as the matcher stored them: a JSON array of `{code, detail}`. A reason this version
/// has no code for (written by a newer matcher, or by hand) is left out; the alert still goes.
fn parse_reasons(match_id: i64, raw: &str) -> Vec<Reason> {
    let values: Vec<serde_json::Value> = serde_json::from_str(raw).unwrap_or_default();
    let total = values.len();
    let reasons: Vec<Reason> = values
        .into_iter()
        .filter_map(|v| serde_json::from_value(v).ok())
        .collect();
    if reasons.len() < total {
        tracing::warn!(
            match_id,
            unreadable = total - reasons.len(),
            "stored match reasons this version cannot read; the alert omits them"
        );
    }
    reasons
}

/// Pending events of `kinds` for one brand, with their items, oldest first.
async fn pending_items(
    tx: &mut Transaction<'_, Any>,
    brand_id: i64,
    kind: &str,
) -> Result<(Vec<i64>, Vec<Item>)> {
    let sql = format!(
        "SELECT {ITEM_COLUMNS} {ITEM_FROM} JOIN alert_events e ON e.match_id = m.id
         WHERE e.brand_id = ? AND e.kind = ? AND e.handled_at IS NULL
         ORDER BY e.id"
    );
    let rows: Vec<ItemRow> = sql::query_as(sqlx::AssertSqlSafe(sql))
        .bind(brand_id)
        .bind(kind)
        .fetch_all(&mut **tx)
        .await?;
    let ids: Vec<i64> = sql::query_scalar(
        "SELECT id FROM alert_events WHERE brand_id = ? AND kind = ? AND handled_at IS NULL ORDER BY id",
    )
    .bind(brand_id)
    .bind(kind)
    .fetch_all(&mut **tx)
    .await?;
    // One match can raise several events (infringing, cleared, infringing again): show it once.
    let mut seen = std::collections::HashSet::new();
    let items = rows
        .into_iter()
        .map(Item::from)
        .filter(|i| seen.insert(i.match_id))
        .collect();
    Ok((ids, items))
}

async fn mark_handled(
    tx: &mut Transaction<'_, Any>,
    event_ids: &[i64],
    alert_id: Option<i64>,
    now: &str,
) -> Result<()> {
    for id in event_ids {
        sql::query("UPDATE alert_events SET handled_at = ?, alert_id = ? WHERE id = ?")
            .bind(now)
            .bind(alert_id)
            .bind(id)
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}

pub(super) async fn insert_alert_tx(
    tx: &mut Transaction<'_, Any>,
    alert: &NewAlert,
    now: &str,
) -> Result<i64> {
    let recipients = serde_json::to_string(&alert.recipients).expect("strings serialise");
    let payload = serde_json::to_string(&alert.payload).expect("payload serialises");
    Ok(sql::query_scalar(
        "INSERT INTO alerts (kind, brand_id, recipients, message_id, payload, subject, created_at)
         VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id",
    )
    .bind(alert.kind.as_str())
    .bind(alert.brand_id)
    .bind(recipients)
    .bind(&alert.message_id)
    .bind(payload)
    .bind(Some(&alert.subject).filter(|s| !s.is_empty()))
    .bind(now)
    .fetch_one(&mut **tx)
    .await?)
}

impl Store {
    // ------------------------------------------------------------ monthly reports

    /// Brands that want a monthly report and have none recorded for `month` (YYYY-MM).
    pub(crate) async fn reports_due(&self, month: &str) -> Result<Vec<ReportDue>> {
        let rows: Vec<(i64, String, String)> = sql::query_as(
            "SELECT b.id, b.name, b.alert_language FROM brands b
             WHERE b.alert_report = 'monthly'
               AND EXISTS (SELECT 1 FROM brand_contacts c WHERE c.brand_id = b.id)
               AND NOT EXISTS (SELECT 1 FROM brand_reports r WHERE r.brand_id = b.id AND r.month = ?)
             ORDER BY b.id",
        )
        .bind(month)
        .fetch_all(&self.pool)
        .await?;
        let mut conn = self.pool.acquire().await?;
        let mut out = Vec::with_capacity(rows.len());
        for (brand_id, brand, language) in rows {
            out.push(ReportDue {
                brand_id,
                contacts: contacts(&mut conn, brand_id).await?,
                language: stored("brands", "alert_language", &language)?,
                brand,
            });
        }
        Ok(out)
    }

    /// Queues a brand's report for `month` with its attachment, and records it as sent for
    /// that month, in one transaction. None (and nothing queued) when another process
    /// recorded it first.
    pub(crate) async fn queue_report_alert(
        &self,
        alert: &NewAlert,
        attachment: &AlertAttachment,
        month: &str,
    ) -> Result<Option<i64>> {
        let brand_id = alert
            .brand_id
            .ok_or_else(|| corrupt("alerts", "brand_id", "none"))?;
        let mut tx = self.begin_write().await?;
        let now = super::now();
        let claimed = sql::query(
            "INSERT INTO brand_reports (brand_id, month, created_at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
        )
        .bind(brand_id)
        .bind(month)
        .bind(&now)
        .execute(&mut **tx)
        .await?
        .rows_affected();
        if claimed == 0 {
            return Ok(None);
        }
        let id = insert_alert_tx(&mut tx, alert, &now).await?;
        sql::query(
            "INSERT INTO alert_attachments (alert_id, position, filename, content_type, bytes)
             VALUES (?, 0, ?, ?, ?)",
        )
        .bind(id)
        .bind(&attachment.filename)
        .bind(&attachment.content_type)
        .bind(&attachment.bytes)
        .execute(&mut **tx)
        .await?;
        sql::query("UPDATE brand_reports SET alert_id = ? WHERE brand_id = ? AND month = ?")
            .bind(id)
            .bind(brand_id)
            .bind(month)
            .execute(&mut **tx)
            .await?;
        tx.commit().await?;
        Ok(Some(id))
    }

    /// The files an alert carries, in order.
    pub(crate) async fn alert_attachments(&self, alert_id: i64) -> Result<Vec<AlertAttachment>> {
        let rows: Vec<(String, String, Vec<u8>)> = sql::query_as(
            "SELECT filename, content_type, bytes FROM alert_attachments WHERE alert_id = ? ORDER BY position",
        )
        .bind(alert_id)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(filename, content_type, bytes)| AlertAttachment {
                filename,
                content_type,
                bytes,
            })
            .collect())
    }

    // ------------------------------------------------------------ batching

    /// Brands with infringing events the batcher has not handled yet.
    pub(crate) async fn pending_alert_brands(&self) -> Result<Vec<PendingBrand>> {
        let mut conn = self.pool.acquire().await?;
        let rows: Vec<(i64, String, String, i64, String, String)> = sql::query_as(
            "SELECT b.id, b.name, b.alert_mode, count(*), min(e.created_at), max(e.created_at)
             FROM alert_events e JOIN brands b ON b.id = e.brand_id
             WHERE e.handled_at IS NULL AND e.kind = 'infringing'
             GROUP BY b.id ORDER BY b.id",
        )
        .fetch_all(&mut *conn)
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for (brand_id, brand, mode, events, oldest, newest) in rows {
            out.push(PendingBrand {
                brand_id,
                brand,
                mode: stored("brands", "alert_mode", &mode)?,
                contacts: contacts(&mut conn, brand_id).await?,
                events,
                oldest: parse_stamp("alert_events", "created_at", &oldest)?,
                newest: parse_stamp("alert_events", "created_at", &newest)?,
            });
        }
        Ok(out)
    }

    /// Turns one brand's pending infringing events into one immediate alert, atomically: each
    /// event ends up in exactly one alert. `make` builds the alert from the payload (subject,
    /// recipients, Message-ID); returns `None` when another batcher got there first.
    pub(crate) async fn batch_immediate(
        &self,
        brand_id: i64,
        make: impl FnOnce(Payload) -> NewAlert,
    ) -> Result<Option<i64>> {
        let mut tx = self.begin_write().await?;
        let (event_ids, items) = pending_items(&mut tx, brand_id, "infringing").await?;
        if event_ids.is_empty() {
            return Ok(None);
        }
        let now = super::now();
        let (brand, language) = brand_name_language(&mut tx, brand_id).await?;
        let payload = Payload {
            brand: Some(brand),
            language,
            infringing: items,
            ..Payload::default()
        };
        let alert_id = insert_alert_tx(&mut tx, &make(payload), &now).await?;
        mark_handled(&mut tx, &event_ids, Some(alert_id), &now).await?;
        tx.commit().await?;
        Ok(Some(alert_id))
    }

    // ------------------------------------------------------------ digests

    /// Every brand with its preferences, contacts and digest progress.
    pub(crate) async fn digest_brands(&self) -> Result<Vec<DigestBrand>> {
        let mut conn = self.pool.acquire().await?;
        type DigestRow = (i64, String, String, Option<String>, String, Option<String>);
        let rows: Vec<DigestRow> = sql::query_as(
            "SELECT b.id, b.name, b.alert_mode, b.alert_digest, b.alert_language, d.covered_to
             FROM brands b LEFT JOIN alert_digests d ON d.brand_id = b.id ORDER BY b.id",
        )
        .fetch_all(&mut *conn)
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for (brand_id, brand, mode, digest, language, covered_to) in rows {
            out.push(DigestBrand {
                brand_id,
                brand,
                prefs: prefs_from_row(mode, digest, language)?,
                contacts: contacts(&mut conn, brand_id).await?,
                covered_to: covered_to
                    .map(|c| parse_stamp("alert_digests", "covered_to", &c))
                    .transpose()?,
            });
        }
        Ok(out)
    }

    /// Starts a brand's digest schedule at `at` without sending anything.
    pub(crate) async fn start_digest_schedule(
        &self,
        brand_id: i64,
        at: DateTime<Utc>,
    ) -> Result<()> {
        sql::query(
            "INSERT INTO alert_digests (brand_id, covered_to) VALUES (?, ?) ON CONFLICT DO NOTHING",
        )
        .bind(brand_id)
        .bind(stamp(at))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Closes one digest period for a brand, atomically: takes its pending suspect events (and
    /// infringing ones when `include_infringing`), the relistings and upcoming deadlines, and
    /// queues one alert if there is anything to say. Returns the alert id, if one was queued.
    ///
    /// `expected_from` guards against two schedulers closing the same period twice.
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn close_digest(
        &self,
        brand_id: i64,
        expected_from: Option<DateTime<Utc>>,
        to: DateTime<Utc>,
        include_infringing: bool,
        send: bool,
        deadline_horizon: chrono::Duration,
        make: impl FnOnce(Payload) -> NewAlert,
    ) -> Result<Option<i64>> {
        let mut tx = self.begin_write().await?;
        let current: Option<String> =
            sql::query_scalar("SELECT covered_to FROM alert_digests WHERE brand_id = ?")
                .bind(brand_id)
                .fetch_optional(&mut **tx)
                .await?;
        if current != expected_from.map(stamp) {
            return Ok(None);
        }
        let from = expected_from.map(stamp).unwrap_or_default();
        let to_s = stamp(to);
        let (mut event_ids, suspect) = pending_items(&mut tx, brand_id, "suspect").await?;
        let mut infringing = Vec::new();
        if include_infringing {
            let (ids, items) = pending_items(&mut tx, brand_id, "infringing").await?;
            event_ids.extend(ids);
            infringing = items;
        }
        let relisted = relistings(&mut tx, brand_id, &from, &to_s).await?;
        let deadlines = deadlines(&mut tx, brand_id, to, deadline_horizon).await?;
        let (brand, language) = brand_name_language(&mut tx, brand_id).await?;
        let payload = Payload {
            brand: Some(brand),
            language,
            infringing,
            suspect,
            relisted,
            deadlines,
            period_from: expected_from.map(stamp),
            period_to: Some(to_s.clone()),
            ..Payload::default()
        };
        let now = super::now();
        let alert_id = if send && !payload.is_empty() {
            Some(insert_alert_tx(&mut tx, &make(payload), &now).await?)
        } else {
            None
        };
        mark_handled(&mut tx, &event_ids, alert_id, &now).await?;
        sql::query(
            "INSERT INTO alert_digests (brand_id, covered_to) VALUES (?, ?)
             ON CONFLICT (brand_id) DO UPDATE SET covered_to = excluded.covered_to",
        )
        .bind(brand_id)
        .bind(&to_s)
        .execute(&mut **tx)
        .await?;
        tx.commit().await?;
        Ok(alert_id)
    }

    // ------------------------------------------------------------ operations

    /// Each platform's current run of consecutive failed crawls (finished runs only).
    pub(crate) async fn failure_streaks(&self) -> Result<Vec<FailureStreak>> {
        let mut conn = self.pool.acquire().await?;
        let platforms: Vec<String> =
            sql::query_scalar("SELECT DISTINCT platform FROM crawl_runs ORDER BY platform")
                .fetch_all(&mut *conn)
                .await?;
        let mut out = Vec::new();
        for platform in platforms {
            // Runs still going say nothing yet; abandoned ones (crash) neither succeed nor fail.
            let last_good: i64 = sql::query_scalar(
                "SELECT coalesce(max(id), 0) FROM crawl_runs WHERE platform = ? AND status IN ('ok', 'partial')",
            )
            .bind(&platform)
            .fetch_one(&mut *conn)
            .await?;
            let (runs, newest): (i64, Option<i64>) = sql::query_as(
                "SELECT count(*), max(id) FROM crawl_runs WHERE platform = ? AND id > ? AND status = 'failed'",
            )
            .bind(&platform)
            .bind(last_good)
            .fetch_one(&mut *conn)
            .await?;
            let Some(newest_run_id) = newest else {
                continue;
            };
            let (last_error, last_finished_at): (Option<String>, Option<String>) =
                sql::query_as("SELECT error, finished_at FROM crawl_runs WHERE id = ?")
                    .bind(newest_run_id)
                    .fetch_one(&mut *conn)
                    .await?;
            let told: Option<i64> =
                sql::query_scalar("SELECT last_run_id FROM alert_operations WHERE platform = ?")
                    .bind(&platform)
                    .fetch_optional(&mut *conn)
                    .await?;
            out.push(FailureStreak {
                platform,
                runs,
                newest_run_id,
                last_error,
                last_finished_at,
                alerted: told.is_some_and(|t| t > last_good),
            });
        }
        Ok(out)
    }

    /// Queues the operations alert for failure streaks and remembers them, atomically, so one
    /// streak alerts once.
    pub(crate) async fn queue_operations_alert(
        &self,
        streaks: &[FailureStreak],
        alert: NewAlert,
    ) -> Result<i64> {
        let mut tx = self.begin_write().await?;
        let now = super::now();
        let id = insert_alert_tx(&mut tx, &alert, &now).await?;
        for s in streaks {
            sql::query(
                "INSERT INTO alert_operations (platform, last_run_id) VALUES (?, ?)
                 ON CONFLICT (platform) DO UPDATE SET last_run_id = excluded.last_run_id",
            )
            .bind(&s.platform)
            .bind(s.newest_run_id)
            .execute(&mut **tx)
            .await?;
        }
        tx.commit().await?;
        Ok(id)
    }

    // ------------------------------------------------------------ delivery

    /// Queues an alert built outside the pipeline (tests, `alerts test`).
    pub(crate) async fn insert_alert(&self, alert: &NewAlert) -> Result<i64> {
        let mut tx = self.begin_write().await?;
        let id = insert_alert_tx(&mut tx, alert, &super::now()).await?;
        tx.commit().await?;
        Ok(id)
    }

    /// Claims up to `limit` alerts that are due (queued, retry time reached, or held by a
    /// sender whose lease ran out), moving them to `sending`. A claim is not an attempt: a
    /// sender that dies holding a lease has tried nothing, or counted what it tried
    /// ([`Store::start_alert_attempt`]). `only` restricts the claim to one alert.
    pub(crate) async fn claim_due_alerts(
        &self,
        now: DateTime<Utc>,
        lease: chrono::Duration,
        limit: i64,
        only: Option<i64>,
    ) -> Result<Vec<Alert>> {
        let now_s = stamp(now);
        let lease_s = stamp(now + lease);
        let mut tx = self.begin_write().await?;
        let sql = format!(
            "SELECT {ALERT_COLUMNS} FROM alerts
             WHERE ((state = 'queued' AND (next_attempt_at IS NULL OR next_attempt_at <= ?1))
                OR (state = 'failed_retrying' AND next_attempt_at <= ?1)
                OR (state = 'sending' AND lease_until <= ?1))
               AND (?2 IS NULL OR id = ?2)
             ORDER BY id LIMIT ?3"
        );
        let rows: Vec<AlertRow> = sql::query_as(sqlx::AssertSqlSafe(sql))
            .bind(&now_s)
            .bind(only)
            .bind(limit)
            .fetch_all(&mut **tx)
            .await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            let mut alert = alert_from_row(row)?;
            sql::query("UPDATE alerts SET state = 'sending', lease_until = ? WHERE id = ?")
                .bind(&lease_s)
                .bind(alert.id)
                .execute(&mut **tx)
                .await?;
            alert.state = AlertState::Sending;
            out.push(alert);
        }
        tx.commit().await?;
        Ok(out)
    }

    /// Counts a delivery attempt, committed before the message goes to the server, and renews
    /// the lease from `now` for the conversation. Returns the attempt's number, or `None` when
    /// the row is no longer this sender's to send.
    pub(crate) async fn start_alert_attempt(
        &self,
        id: i64,
        now: DateTime<Utc>,
        lease: chrono::Duration,
    ) -> Result<Option<i64>> {
        let mut tx = self.begin_write().await?;
        let attempt = sql::query_scalar(
            "UPDATE alerts SET attempts = attempts + 1, lease_until = ?
             WHERE id = ? AND state = 'sending' RETURNING attempts",
        )
        .bind(stamp(now + lease))
        .bind(id)
        .fetch_optional(&mut **tx)
        .await?;
        tx.commit().await?;
        Ok(attempt)
    }

    /// Records the server's acceptance. Only a row this sender still holds is changed.
    pub(crate) async fn mark_alert_sent(
        &self,
        id: i64,
        response: &str,
        at: DateTime<Utc>,
    ) -> Result<bool> {
        let done = sql::query(
            "UPDATE alerts SET state = 'sent', sent_at = ?, server_response = ?, last_error = NULL,
             next_attempt_at = NULL, lease_until = NULL WHERE id = ? AND state = 'sending'",
        )
        .bind(stamp(at))
        .bind(response)
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Records a failed attempt: retried at `next_attempt`, or dead when `None`.
    pub(crate) async fn mark_alert_failed(
        &self,
        id: i64,
        error: &str,
        next_attempt: Option<DateTime<Utc>>,
    ) -> Result<AlertState> {
        let state = if next_attempt.is_some() {
            AlertState::FailedRetrying
        } else {
            AlertState::Dead
        };
        sql::query(
            "UPDATE alerts SET state = ?, last_error = ?, next_attempt_at = ?, lease_until = NULL
             WHERE id = ? AND state = 'sending'",
        )
        .bind(state.as_str())
        .bind(error)
        .bind(next_attempt.map(stamp))
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(state)
    }

    /// Gives up on an alert. A brand's alert (immediate or digest) waits to be reported to
    /// operators ([`Store::report_dead_alerts`]); an operations or test alert does not, so a
    /// broken operations address cannot loop.
    pub(crate) async fn mark_alert_dead(&self, id: i64, error: &str) -> Result<()> {
        sql::query(
            "UPDATE alerts SET state = 'dead', last_error = ?, next_attempt_at = NULL, lease_until = NULL,
             dead_at = ?, dead_reported = CASE WHEN kind IN ('immediate', 'digest') THEN 0 ELSE 1 END
             WHERE id = ? AND state = 'sending'",
        )
        .bind(error)
        .bind(super::now())
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The dead brand alerts operators have not been told about: how many, and when the first
    /// and the last of them died.
    pub(crate) async fn unreported_dead(
        &self,
    ) -> Result<Option<(i64, DateTime<Utc>, DateTime<Utc>)>> {
        let (n, first, last): (i64, Option<String>, Option<String>) = sql::query_as(
            "SELECT count(*), min(dead_at), max(dead_at) FROM alerts
             WHERE dead_reported = 0 AND state = 'dead'",
        )
        .fetch_one(&self.pool)
        .await?;
        match (first, last) {
            (Some(first), Some(last)) if n > 0 => Ok(Some((
                n,
                parse_stamp("alerts", "dead_at", &first)?,
                parse_stamp("alerts", "dead_at", &last)?,
            ))),
            _ => Ok(None),
        }
    }

    /// Queues one operations alert listing every dead brand alert not reported yet, and marks
    /// them reported, atomically: each dead alert is in exactly one report. `make` builds the
    /// alert from the payload. Returns its id, or `None` when there was nothing to report.
    pub(crate) async fn report_dead_alerts(
        &self,
        make: impl FnOnce(Payload) -> NewAlert,
    ) -> Result<Option<i64>> {
        let mut tx = self.begin_write().await?;
        let rows: Vec<(i64, Option<String>, String, Option<String>)> = sql::query_as(
            "SELECT id, subject, recipients, last_error FROM alerts
             WHERE dead_reported = 0 AND state = 'dead' ORDER BY id",
        )
        .fetch_all(&mut **tx)
        .await?;
        if rows.is_empty() {
            return Ok(None);
        }
        let mut undeliverable = Vec::with_capacity(rows.len());
        for (alert_id, subject, recipients, error) in rows {
            undeliverable.push(Undeliverable {
                alert_id,
                subject,
                recipients: serde_json::from_str(&recipients)
                    .map_err(|_| corrupt("alerts", "recipients", &recipients))?,
                error: error.unwrap_or_default(),
            });
            sql::query("UPDATE alerts SET dead_reported = 1 WHERE id = ?")
                .bind(alert_id)
                .execute(&mut **tx)
                .await?;
        }
        let payload = Payload {
            undeliverable,
            ..Payload::default()
        };
        let id = insert_alert_tx(&mut tx, &make(payload), &super::now()).await?;
        tx.commit().await?;
        Ok(Some(id))
    }

    /// Hands claimed alerts back untried, not before `until` (the server was unreachable for
    /// another alert, or the sender is stopping). Claims count no attempt, so none is undone.
    pub(crate) async fn defer_alerts(
        &self,
        ids: &[i64],
        until: DateTime<Utc>,
        why: &str,
    ) -> Result<usize> {
        let mut tx = self.begin_write().await?;
        let mut n = 0;
        for id in ids {
            n += sql::query(
                "UPDATE alerts SET state = CASE WHEN attempts = 0 THEN 'queued' ELSE 'failed_retrying' END,
                 next_attempt_at = ?, last_error = ?, lease_until = NULL
                 WHERE id = ? AND state = 'sending'",
            )
            .bind(stamp(until))
            .bind(why)
            .bind(id)
            .execute(&mut **tx)
            .await?
            .rows_affected() as usize;
        }
        tx.commit().await?;
        Ok(n)
    }

    /// Queues a dead or retrying alert again now, with a fresh set of attempts, and audits it.
    /// Returns the state it was in, or `None` if there is no such alert.
    pub async fn retry_alert(&self, id: i64, actor: &str) -> Result<Option<AlertState>> {
        let mut tx = self.begin_write().await?;
        let state: Option<String> = sql::query_scalar("SELECT state FROM alerts WHERE id = ?")
            .bind(id)
            .fetch_optional(&mut **tx)
            .await?;
        let Some(state) = state else {
            return Ok(None);
        };
        let state = stored("alerts", "state", &state)?;
        if matches!(state, AlertState::Dead | AlertState::FailedRetrying) {
            sql::query(
                "UPDATE alerts SET state = 'queued', attempts = 0, next_attempt_at = NULL WHERE id = ?",
            )
            .bind(id)
            .execute(&mut **tx)
            .await?;
            sql::query(
                "INSERT INTO audit_log (at, actor, entity, entity_id, action, from_state, to_state)
                 VALUES (?, ?, 'alert', ?, 'retry', ?, 'queued')",
            )
            .bind(super::now())
            .bind(actor)
            .bind(id)
            .bind(state.as_str())
            .execute(&mut **tx)
            .await?;
            tx.commit().await?;
        }
        Ok(Some(state))
    }

    /// Alerts, newest first, optionally in one state.
    pub async fn list_alerts(&self, state: Option<AlertState>, limit: i64) -> Result<Vec<Alert>> {
        let sql = format!(
            "SELECT {ALERT_COLUMNS} FROM alerts WHERE (?1 IS NULL OR state = ?1) ORDER BY id DESC LIMIT ?2"
        );
        let rows: Vec<AlertRow> = sql::query_as(sqlx::AssertSqlSafe(sql))
            .bind(state.map(AlertState::as_str))
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
        rows.into_iter().map(alert_from_row).collect()
    }

    /// One alert by id.
    pub async fn alert(&self, id: i64) -> Result<Option<Alert>> {
        let sql = format!("SELECT {ALERT_COLUMNS} FROM alerts WHERE id = ?");
        sql::query_as(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .map(alert_from_row)
            .transpose()
    }
}

async fn brand_name_language(
    tx: &mut Transaction<'_, Any>,
    brand_id: i64,
) -> Result<(String, Language)> {
    let (name, language): (String, String) =
        sql::query_as("SELECT name, alert_language FROM brands WHERE id = ?")
            .bind(brand_id)
            .fetch_one(&mut **tx)
            .await?;
    let language = stored("brands", "alert_language", &language)?;
    Ok((name, language))
}

/// Listings linked to an earlier case as relistings during (from, to].
async fn relistings(
    tx: &mut Transaction<'_, Any>,
    brand_id: i64,
    from: &str,
    to: &str,
) -> Result<Vec<Relisting>> {
    #[derive(sqlx::FromRow)]
    struct Row {
        #[sqlx(flatten)]
        item: ItemRow,
        relisted_from: i64,
        relisted_reason: Option<String>,
    }
    let sql = format!(
        "SELECT {ITEM_COLUMNS}, ni.relisted_from, ni.relisted_reason
         FROM notice_items ni JOIN matches m ON m.id = ni.match_id
         JOIN listings l ON l.id = m.listing_id
         WHERE m.brand_id = ? AND ni.relisted_from IS NOT NULL AND ni.added_at > ? AND ni.added_at <= ?
         ORDER BY ni.added_at"
    );
    let rows: Vec<Row> = sql::query_as(sqlx::AssertSqlSafe(sql))
        .bind(brand_id)
        .bind(from)
        .bind(to)
        .fetch_all(&mut **tx)
        .await?;
    Ok(rows
        .into_iter()
        .map(|r| Relisting {
            item: r.item.into(),
            earlier_notice_id: r.relisted_from,
            reason: r.relisted_reason,
        })
        .collect())
}

/// Counter-noticed cases of the brand whose Art. 43 deadline falls within `horizon` of `now`, or
/// has passed while the case is still open.
async fn deadlines(
    tx: &mut Transaction<'_, Any>,
    brand_id: i64,
    now: DateTime<Utc>,
    horizon: chrono::Duration,
) -> Result<Vec<Deadline>> {
    let until = (now + horizon).format("%Y-%m-%d").to_string();
    let today = now.format("%Y-%m-%d").to_string();
    let rows: Vec<(i64, String, String, String, Option<String>)> = sql::query_as(
        "SELECT id, platform, state, deadline, complaint_ref FROM notices
         WHERE brand_id = ? AND deadline IS NOT NULL AND state = 'counter_noticed'
           AND substr(deadline, 1, 10) <= ?
         ORDER BY deadline, id",
    )
    .bind(brand_id)
    .bind(&until)
    .fetch_all(&mut **tx)
    .await?;
    Ok(rows
        .into_iter()
        .map(
            |(notice_id, platform, state, deadline, complaint_ref)| Deadline {
                overdue: deadline.get(..10).is_some_and(|d| d < today.as_str()),
                notice_id,
                platform,
                state,
                deadline,
                complaint_ref,
            },
        )
        .collect())
}

/// Failure details for the operations email.
impl From<&FailureStreak> for PlatformFailure {
    fn from(s: &FailureStreak) -> Self {
        PlatformFailure {
            platform: s.platform.clone(),
            consecutive_failures: s.runs,
            last_error: s.last_error.clone(),
            last_run_at: s.last_finished_at.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Brand, Mark};
    use crate::model::{Outcome, Verdict};
    use crate::store::Backend;

    async fn store_with_brand(dir: &std::path::Path) -> (Store, i64) {
        let store = Store::open(crate::test_support::scratch_db(dir).await)
            .await
            .unwrap();
        let brand = Brand {
            name: "Nike".to_owned(),
            owner: "Nike Innovate C.V.".to_owned(),
            contacts: vec!["ip@nike.example".to_owned()],
            reference_price_cny: None,
            authorized_sellers: vec![],
            aliases: vec![],
            marks: vec![Mark {
                text: "NIKE".to_owned(),
                jurisdiction: "CN".to_owned(),
                registration_no: "T-1".to_owned(),
                classes: vec![25],
                expires: None,
            }],
            alerts: AlertPrefs {
                mode: AlertMode::Digest,
                digest: Some("0 9 * * 1".to_owned()),
                language: Language::Zh,
                ..AlertPrefs::default()
            },
            ..Brand::default()
        };
        store
            .import_registry(std::slice::from_ref(&brand), "test", "t")
            .await
            .unwrap();
        assert_eq!(
            store.brands().await.unwrap(),
            vec![brand],
            "preferences round-trip"
        );
        let listing: i64 = sql::query_scalar(
            "INSERT INTO listings (platform, item_id, url, title, first_seen, last_seen)
             VALUES ('taobao', '1', 'https://item.taobao.com/item.htm?id=1', 'NIKE 高仿', 'x', 'x') RETURNING id",
        )
        .fetch_one(&store.pool)
        .await
        .unwrap();
        (store, listing)
    }

    fn verdict(outcome: Outcome, score: f64) -> Verdict {
        Verdict {
            verdict: outcome,
            score,
            brand: Some("Nike".to_owned()),
            mark: Some("NIKE".to_owned()),
            reasons: vec![],
        }
    }

    async fn events(store: &Store) -> Vec<String> {
        sql::query_scalar("SELECT kind FROM alert_events ORDER BY id")
            .fetch_all(&store.pool)
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn a_verdict_raises_an_event_only_when_it_newly_flags_the_listing() {
        let dir = tempfile::tempdir().unwrap();
        let (store, listing) = store_with_brand(dir.path()).await;
        let steps = [
            (Outcome::Infringing, 0.9, vec!["infringing"]),
            (Outcome::Infringing, 0.95, vec!["infringing"]), // rescored, still infringing
            (Outcome::Suspect, 0.6, vec!["infringing"]),     // downgraded: nothing new
            (Outcome::Clear, 0.0, vec!["infringing"]),
            (Outcome::Suspect, 0.6, vec!["infringing", "suspect"]),
            (
                Outcome::Infringing,
                0.9,
                vec!["infringing", "suspect", "infringing"],
            ),
        ];
        for (outcome, score, want) in steps {
            let v = verdict(outcome, score);
            store.store_rematch(&[(listing, v)]).await.unwrap();
            assert_eq!(events(&store).await, want, "after {outcome:?}");
        }
    }

    #[tokio::test]
    async fn a_digest_carries_suspects_relistings_and_deadlines_once() {
        let dir = tempfile::tempdir().unwrap();
        let (store, listing) = store_with_brand(dir.path()).await;
        store
            .store_rematch(&[(listing, verdict(Outcome::Suspect, 0.6))])
            .await
            .unwrap();
        let now = Utc::now();
        let in_3_days = (now + chrono::Duration::days(3))
            .format("%Y-%m-%d")
            .to_string();
        let in_30_days = (now + chrono::Duration::days(30))
            .format("%Y-%m-%d")
            .to_string();
        for (state, deadline) in [
            ("removed", None),
            ("draft", None),
            ("counter_noticed", Some(in_3_days.clone())),
            ("counter_noticed", Some(in_30_days)),
        ] {
            sql::query(
                "INSERT INTO notices (platform, brand_id, channel, state, deadline, complaint_ref, created_at, updated_at)
                 VALUES ('taobao', 1, 'ipp', ?, ?, 'IPP-7', 'x', 'x')",
            )
            .bind(state)
            .bind(deadline)
            .execute(&store.pool)
            .await
            .unwrap();
        }
        sql::query(
            "INSERT INTO notice_items (notice_id, match_id, relisted_from, relisted_reason, added_at)
             VALUES (2, 1, 1, 'same seller', ?)",
        )
        .bind(stamp(now))
        .execute(&store.pool)
        .await
        .unwrap();

        let make = |payload: Payload| NewAlert {
            kind: AlertKind::Digest,
            brand_id: Some(1),
            recipients: vec!["ip@nike.example".to_owned()],
            message_id: "<d1@markwatch.example>".to_owned(),
            subject: "digest".to_owned(),
            payload,
        };
        let from = now - chrono::Duration::days(1);
        store.start_digest_schedule(1, from).await.unwrap();
        let to = now + chrono::Duration::seconds(1);
        let week = chrono::Duration::days(7);
        let id = store
            .close_digest(1, Some(from), to, true, true, week, make)
            .await
            .unwrap()
            .expect("a digest");
        let alert = store.alert(id).await.unwrap().unwrap();
        let p = &alert.payload;
        assert_eq!(p.language, Language::Zh);
        assert_eq!(p.suspect.len(), 1);
        assert_eq!(
            p.suspect[0].notice_id,
            Some(2),
            "links to the draft holding it"
        );
        assert_eq!(p.relisted.len(), 1);
        assert_eq!(p.relisted[0].earlier_notice_id, 1);
        assert_eq!(p.relisted[0].reason.as_deref(), Some("same seller"));
        assert_eq!(p.deadlines.len(), 1, "{:?}", p.deadlines);
        assert_eq!(p.deadlines[0].deadline, in_3_days);
        assert!(!p.deadlines[0].overdue);

        // The same period cannot be closed twice; the next one has no events or relistings.
        let again = store
            .close_digest(1, Some(from), to, true, true, week, make)
            .await
            .unwrap();
        assert_eq!(again, None);
        let later = to + chrono::Duration::days(1);
        let next = store
            .close_digest(
                1,
                Some(to),
                later,
                true,
                true,
                chrono::Duration::days(0),
                make,
            )
            .await
            .unwrap();
        assert_eq!(next, None, "nothing new to say: no email");
    }

    #[tokio::test]
    async fn stored_names_round_trip_and_unknown_ones_are_corrupt_rows() {
        for (kind, name) in [
            (AlertKind::Immediate, "immediate"),
            (AlertKind::Digest, "digest"),
            (AlertKind::Operations, "operations"),
            (AlertKind::Test, "test"),
        ] {
            assert_eq!(kind.as_str(), name);
            assert_eq!(stored::<AlertKind>("alerts", "kind", name).unwrap(), kind);
        }
        let names = ["queued", "sending", "sent", "failed_retrying", "dead"];
        for (state, name) in AlertState::ALL.into_iter().zip(names) {
            assert_eq!(state.as_str(), name);
            assert_eq!(state.to_string(), name);
            assert_eq!(
                stored::<AlertState>("alerts", "state", name).unwrap(),
                state
            );
        }

        let dir = tempfile::tempdir().unwrap();
        let (store, _) = store_with_brand(dir.path()).await;
        let id: i64 = sql::query_scalar(
            "INSERT INTO alerts (kind, recipients, message_id, payload, created_at)
             VALUES ('weekly', '[]', '<w@markwatch.example>', '{}', 'x') RETURNING id",
        )
        .fetch_one(&store.pool)
        .await
        .unwrap();
        let err = store.alert(id).await.unwrap_err();
        assert!(
            matches!(&err, StoreError::Corrupt { table: "alerts", column: "kind", value } if value == "weekly"),
            "{err:?}"
        );

        // The schema's CHECKs keep these out; a database edited by hand may still have them.
        let mut conn = store.pool.acquire().await.unwrap();
        sql::query(match store.backend {
            Backend::Sqlite => "PRAGMA ignore_check_constraints = ON",
            Backend::Postgres => {
                "ALTER TABLE brands DROP CONSTRAINT brands_alert_mode_check,
                 DROP CONSTRAINT brands_alert_language_check"
            }
        })
        .execute(&mut *conn)
        .await
        .unwrap();
        for (column, value) in [("alert_mode", "Digest"), ("alert_language", "fr")] {
            sql::query(sqlx::AssertSqlSafe(format!(
                "UPDATE brands SET {column} = ?"
            )))
            .bind(value)
            .execute(&mut *conn)
            .await
            .unwrap();
            let err = store.brands().await.unwrap_err();
            assert!(
                matches!(&err, StoreError::Corrupt { table: "brands", column: c, value: v } if *c == column && v == value),
                "{err:?}"
            );
            sql::query("UPDATE brands SET alert_mode = 'digest', alert_language = 'zh'")
                .execute(&mut *conn)
                .await
                .unwrap();
        }
        if store.backend == Backend::Sqlite {
            sql::query("PRAGMA ignore_check_constraints = OFF")
                .execute(&mut *conn)
                .await
                .unwrap();
        }
    }
}
