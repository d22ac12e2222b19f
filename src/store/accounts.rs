//! Platform accounts: their state, pace, counters and sealed secrets. The store keeps sealed
//! bytes only; sealing and opening belong to `secrets`.

use super::sql;
use serde::Serialize;

use super::{Result, Store, StoreError, now};
use crate::model::alert::{NeedsPerson, Payload};
use crate::store::NewAlert;

/// Whether an account can be used, stored as its snake_case name.
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
pub enum AccountState {
    /// Usable.
    Ok,
    /// The platform showed a login wall: a person must log in again.
    Expired,
    /// The platform showed a challenge (slider, robot check): a person must pass it.
    Challenged,
    /// Resting until `until`.
    Cooling,
}

/// An account as `accounts list` shows it: never its cookies or proxy credentials.
#[derive(Debug, Clone, Serialize)]
pub struct AccountSummary {
    pub platform: String,
    pub name: String,
    pub state: AccountState,
    pub since: String,
    /// For `cooling`: when it may be used again.
    pub until: Option<String>,
    pub last_success_at: Option<String>,
    pub pages_today: i64,
    /// `scheme://host:port` of its proxy, without credentials.
    pub proxy: Option<String>,
    pub requests_per_second: Option<f64>,
    pub concurrency: Option<u32>,
    pub cookies: i64,
    pub created_at: String,
    pub updated_at: String,
}

/// What `accounts import` stores: secrets already sealed.
pub(crate) struct NewAccount<'a> {
    pub(crate) platform: &'a str,
    pub(crate) name: &'a str,
    pub(crate) cookies_sealed: Vec<u8>,
    pub(crate) cookie_count: usize,
    pub(crate) proxy_display: Option<String>,
    pub(crate) proxy_sealed: Option<Vec<u8>>,
    pub(crate) requests_per_second: Option<f64>,
    pub(crate) concurrency: Option<u32>,
}

/// Whether [`Store::save_account`] made a new account or replaced one's session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SaveOutcome {
    Added,
    Replaced,
}

/// An account as stored, its secrets still sealed: what the crawl and `accounts login` open.
#[derive(Debug, Clone, sqlx::FromRow)]
pub(crate) struct SealedAccount {
    pub(crate) id: i64,
    pub(crate) platform: String,
    pub(crate) name: String,
    pub(crate) state: String,
    pub(crate) state_until: Option<String>,
    pub(crate) state_url: Option<String>,
    pub(crate) cookies_sealed: Vec<u8>,
    pub(crate) proxy_sealed: Option<Vec<u8>>,
    pub(crate) requests_per_second: Option<f64>,
    pub(crate) concurrency: Option<i64>,
}

#[derive(sqlx::FromRow)]
struct SummaryRow {
    platform: String,
    name: String,
    state: String,
    state_since: String,
    state_until: Option<String>,
    last_success_at: Option<String>,
    pages_day: Option<String>,
    pages_count: i64,
    proxy_display: Option<String>,
    requests_per_second: Option<f64>,
    concurrency: Option<i64>,
    cookie_count: i64,
    created_at: String,
    updated_at: String,
}

impl Store {
    /// The value sealed under the key first used for this database's secrets, if any.
    pub(crate) async fn secret_key_check(&self) -> Result<Option<Vec<u8>>> {
        Ok(
            sql::query_scalar("SELECT sealed FROM secret_key_check WHERE id = 1")
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    /// Stores `account`, replacing the session, proxy and pace of one with the same platform and
    /// name (its state becomes `ok`: fresh cookies are a fresh login). `key_check` is recorded
    /// with it when the database has none yet.
    pub(crate) async fn save_account(
        &self,
        account: &NewAccount<'_>,
        key_check: &[u8],
    ) -> Result<SaveOutcome> {
        let mut tx = self.begin_write().await?;
        let now = now();
        sql::query(
            "INSERT INTO secret_key_check (id, sealed, created_at) VALUES (1, ?, ?)
             ON CONFLICT (id) DO NOTHING",
        )
        .bind(key_check)
        .bind(&now)
        .execute(&mut **tx)
        .await?;
        let existed: Option<i64> =
            sql::query_scalar("SELECT id FROM accounts WHERE platform = ? AND name = ?")
                .bind(account.platform)
                .bind(account.name)
                .fetch_optional(&mut **tx)
                .await?;
        sql::query(
            "INSERT INTO accounts (platform, name, state, state_since, proxy_display, proxy_sealed,
                 requests_per_second, concurrency, cookies_sealed, cookie_count, created_at,
                 updated_at)
             VALUES (?1, ?2, 'ok', ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?3, ?3)
             ON CONFLICT (platform, name) DO UPDATE SET
                 state = 'ok', state_since = ?3, state_until = NULL, state_url = NULL,
                 proxy_display = ?4, proxy_sealed = ?5, requests_per_second = ?6,
                 concurrency = ?7, cookies_sealed = ?8, cookie_count = ?9, updated_at = ?3",
        )
        .bind(account.platform)
        .bind(account.name)
        .bind(&now)
        .bind(account.proxy_display.as_deref())
        .bind(account.proxy_sealed.as_deref())
        .bind(account.requests_per_second)
        .bind(account.concurrency.map(i64::from))
        .bind(&account.cookies_sealed)
        .bind(i64::try_from(account.cookie_count).unwrap_or(i64::MAX))
        .execute(&mut **tx)
        .await?;
        // A fresh session closes what the old one met: the next wall is a new incident.
        sql::query(
            "UPDATE crawl_incidents SET resolved_at = ?1 WHERE resolved_at IS NULL
             AND account_id = (SELECT id FROM accounts WHERE platform = ?2 AND name = ?3)",
        )
        .bind(&now)
        .bind(account.platform)
        .bind(account.name)
        .execute(&mut **tx)
        .await?;
        tx.commit().await?;
        Ok(if existed.is_some() {
            SaveOutcome::Replaced
        } else {
            SaveOutcome::Added
        })
    }

    /// Every account, by platform and name. `today` is the UTC date (`YYYY-MM-DD`) whose pages
    /// count as today's.
    pub async fn accounts(&self, today: &str) -> Result<Vec<AccountSummary>> {
        let rows: Vec<SummaryRow> = sql::query_as(
            "SELECT platform, name, state, state_since, state_until, last_success_at, pages_day,
                    pages_count, proxy_display, requests_per_second, concurrency, cookie_count,
                    created_at, updated_at
             FROM accounts ORDER BY platform, name",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|r| {
                let state = r.state.parse().map_err(|_| StoreError::Corrupt {
                    table: "accounts",
                    column: "state",
                    value: r.state.clone(),
                })?;
                Ok(AccountSummary {
                    platform: r.platform,
                    name: r.name,
                    state,
                    since: r.state_since,
                    until: r.state_until,
                    last_success_at: r.last_success_at,
                    pages_today: if r.pages_day.as_deref() == Some(today) {
                        r.pages_count
                    } else {
                        0
                    },
                    proxy: r.proxy_display,
                    requests_per_second: r.requests_per_second,
                    concurrency: r.concurrency.and_then(|c| u32::try_from(c).ok()),
                    cookies: r.cookie_count,
                    created_at: r.created_at,
                    updated_at: r.updated_at,
                })
            })
            .collect()
    }

    /// `platform`'s accounts with their sealed secrets, by name; only `name`'s when given.
    pub(crate) async fn sealed_accounts(
        &self,
        platform: &str,
        name: Option<&str>,
    ) -> Result<Vec<SealedAccount>> {
        Ok(sql::query_as(
            "SELECT id, platform, name, state, state_until, state_url, cookies_sealed, proxy_sealed,
                    requests_per_second, concurrency
             FROM accounts WHERE platform = ?1 AND (?2 IS NULL OR name = ?2) ORDER BY name",
        )
        .bind(platform)
        .bind(name)
        .fetch_all(&self.pool)
        .await?)
    }

    /// Puts an account in `state` (`expired` or `challenged`) because of the page at `url`,
    /// and opens an incident for operators unless one is open for it already. Returns whether
    /// a new incident was opened.
    pub(crate) async fn account_needs_person(
        &self,
        account_id: i64,
        state: AccountState,
        url: &str,
    ) -> Result<bool> {
        let mut tx = self.begin_write().await?;
        let now = now();
        let row: Option<(String, String, String)> =
            sql::query_as("SELECT platform, name, state FROM accounts WHERE id = ?")
                .bind(account_id)
                .fetch_optional(&mut **tx)
                .await?;
        let Some((platform, name, old)) = row else {
            return Ok(false); // removed meanwhile
        };
        let state: &str = state.into();
        if old != state {
            sql::query(
                "UPDATE accounts SET state = ?, state_since = ?, state_until = NULL,
                     state_url = ?, updated_at = ? WHERE id = ?",
            )
            .bind(state)
            .bind(&now)
            .bind(url)
            .bind(&now)
            .bind(account_id)
            .execute(&mut **tx)
            .await?;
        }
        let open: Option<i64> = sql::query_scalar(
            "SELECT id FROM crawl_incidents WHERE account_id = ? AND resolved_at IS NULL",
        )
        .bind(account_id)
        .fetch_optional(&mut **tx)
        .await?;
        if open.is_none() {
            sql::query(
                "INSERT INTO crawl_incidents (platform, account_id, account, kind, url, at)
                 VALUES (?, ?, ?, ?, ?, ?)",
            )
            .bind(&platform)
            .bind(account_id)
            .bind(&name)
            .bind(state)
            .bind(url)
            .bind(&now)
            .execute(&mut **tx)
            .await?;
        }
        tx.commit().await?;
        Ok(open.is_none())
    }

    /// A platform crawled without an account showed a challenge at `url`: opens an incident
    /// unless one is open. Returns whether a new one was opened.
    pub(crate) async fn platform_challenged(&self, platform: &str, url: &str) -> Result<bool> {
        let mut tx = self.begin_write().await?;
        let open: Option<i64> = sql::query_scalar(
            "SELECT id FROM crawl_incidents
             WHERE platform = ? AND account_id IS NULL AND resolved_at IS NULL",
        )
        .bind(platform)
        .fetch_optional(&mut **tx)
        .await?;
        if open.is_none() {
            sql::query(
                "INSERT INTO crawl_incidents (platform, kind, url, at)
                 VALUES (?, 'challenged', ?, ?)",
            )
            .bind(platform)
            .bind(url)
            .bind(now())
            .execute(&mut **tx)
            .await?;
        }
        tx.commit().await?;
        Ok(open.is_none())
    }

    /// A platform crawled without an account got through: its challenge incident is over.
    pub(crate) async fn platform_cleared(&self, platform: &str) -> Result<()> {
        let mut tx = self.begin_write().await?;
        sql::query(
            "UPDATE crawl_incidents SET resolved_at = ? WHERE platform = ?
             AND account_id IS NULL AND resolved_at IS NULL",
        )
        .bind(now())
        .bind(platform)
        .execute(&mut **tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Counts `pages` fetched through an account on `today` (UTC date), and when `success`,
    /// records now as its last success.
    pub(crate) async fn count_account_pages(
        &self,
        account_id: i64,
        today: &str,
        pages: u32,
        success: bool,
    ) -> Result<()> {
        let mut tx = self.begin_write().await?;
        let now = now();
        sql::query(
            "UPDATE accounts SET
                 pages_count = CASE WHEN pages_day = ?1 THEN pages_count + ?2 ELSE ?2 END,
                 pages_day = ?1,
                 last_success_at = CASE WHEN ?3 THEN ?4 ELSE last_success_at END
             WHERE id = ?5",
        )
        .bind(today)
        .bind(i64::from(pages))
        .bind(success)
        .bind(&now)
        .bind(account_id)
        .execute(&mut **tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Queues one operations alert listing every incident not reported yet, and marks them
    /// reported, atomically. `make` builds the alert; `None` when there was nothing to report.
    pub(crate) async fn report_incidents(
        &self,
        make: impl FnOnce(Payload) -> NewAlert,
    ) -> Result<Option<i64>> {
        let mut tx = self.begin_write().await?;
        type Row = (i64, String, Option<String>, String, Option<String>, String);
        let rows: Vec<Row> = sql::query_as(
            "SELECT id, platform, account, kind, url, at FROM crawl_incidents
                 WHERE reported = 0 ORDER BY id",
        )
        .fetch_all(&mut **tx)
        .await?;
        if rows.is_empty() {
            return Ok(None);
        }
        let mut needs_person = Vec::with_capacity(rows.len());
        for (id, platform, account, kind, url, at) in rows {
            needs_person.push(NeedsPerson::new(platform, account, kind, url, at));
            sql::query("UPDATE crawl_incidents SET reported = 1 WHERE id = ?")
                .bind(id)
                .execute(&mut **tx)
                .await?;
        }
        let payload = Payload {
            needs_person,
            ..Payload::default()
        };
        let id = super::alerts::insert_alert_tx(&mut tx, &make(payload), &now()).await?;
        tx.commit().await?;
        Ok(Some(id))
    }

    /// Deletes an account with its secrets; false when there was none.
    pub async fn remove_account(&self, platform: &str, name: &str) -> Result<bool> {
        let mut tx = self.begin_write().await?;
        let done = sql::query("DELETE FROM accounts WHERE platform = ? AND name = ?")
            .bind(platform)
            .bind(name)
            .execute(&mut **tx)
            .await?;
        tx.commit().await?;
        Ok(done.rows_affected() > 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn account<'a>(name: &'a str, cookies: &[u8]) -> NewAccount<'a> {
        NewAccount {
            platform: "taobao",
            name,
            cookies_sealed: cookies.to_vec(),
            cookie_count: 2,
            proxy_display: Some("socks5://10.0.0.1:1080".to_owned()),
            proxy_sealed: Some(b"sealed proxy".to_vec()),
            requests_per_second: Some(0.5),
            concurrency: Some(1),
        }
    }

    #[tokio::test]
    async fn save_replace_list_remove() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(crate::test_support::scratch_db(dir.path()).await)
            .await
            .unwrap();
        assert_eq!(store.secret_key_check().await.unwrap(), None);
        let out = store
            .save_account(&account("alice", b"one"), b"check1")
            .await
            .unwrap();
        assert_eq!(out, SaveOutcome::Added);
        let out = store
            .save_account(&account("alice", b"two"), b"check2")
            .await
            .unwrap();
        assert_eq!(out, SaveOutcome::Replaced);
        // The first key's check stays.
        assert_eq!(
            store.secret_key_check().await.unwrap().as_deref(),
            Some(&b"check1"[..])
        );
        let list = store.accounts("2026-01-01").await.unwrap();
        assert_eq!(list.len(), 1);
        assert_eq!(list[0].state, AccountState::Ok);
        assert_eq!(list[0].pages_today, 0);
        assert_eq!(list[0].proxy.as_deref(), Some("socks5://10.0.0.1:1080"));
        let sealed: Vec<u8> = sql::query_scalar("SELECT cookies_sealed FROM accounts")
            .fetch_one(store.pool())
            .await
            .unwrap();
        assert_eq!(sealed, b"two");
        assert!(store.remove_account("taobao", "alice").await.unwrap());
        assert!(!store.remove_account("taobao", "alice").await.unwrap());
        assert!(store.accounts("2026-01-01").await.unwrap().is_empty());
    }
}
