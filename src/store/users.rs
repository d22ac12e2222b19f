//! Review UI accounts: users and roles, argon2id password hashes, browser sessions, API tokens
//! and the login attempts that throttle password guessing.
//!
//! Session and API tokens are random 256-bit values handed to the client once; only their
//! SHA-256 is stored, so a copy of the database does not let anyone log in.

use argon2::Argon2;
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use chrono::{Duration, Utc};
use rand::RngCore;
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::{Result, Store, StoreError, now};

/// What a user may do. Ordered: each role can do everything the one before it can. Stored in
/// `users.role` as its snake_case name.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    strum::EnumString,
    strum::IntoStaticStr,
    strum::Display,
)]
#[serde(rename_all = "snake_case")]
#[strum(
    serialize_all = "snake_case",
    parse_err_ty = String,
    parse_err_fn = unknown_role
)]
pub enum Role {
    /// Reads everything.
    Viewer,
    /// Also acts on drafts and cases.
    Reviewer,
    /// Also manages users and brands.
    Admin,
}

fn unknown_role(s: &str) -> String {
    format!("unknown role `{s}`: expected viewer, reviewer or admin")
}

impl Role {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

/// An account of the review UI.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct User {
    pub id: i64,
    pub name: String,
    pub role: Role,
    pub disabled: bool,
    pub created_at: String,
}

/// A logged-in browser session.
#[derive(Debug, Clone)]
pub struct Session {
    pub user: User,
    /// The token every POST of this session must carry.
    pub csrf_token: String,
    pub expires_at: String,
}

/// Why an account change was refused.
#[derive(Debug, thiserror::Error)]
pub enum UserError {
    #[error("a user named `{0}` already exists")]
    Exists(String),
    #[error("no user named `{0}`")]
    NotFound(String),
    #[error("user name `{0}` is not allowed: use 1-64 letters, digits, `.`, `_`, `-` or `@`")]
    BadName(String),
    #[error("the password is too short: use at least {MIN_PASSWORD_LEN} characters")]
    WeakPassword,
    #[error("cannot hash the password: {0}")]
    Hash(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for UserError {
    fn from(e: sqlx::Error) -> Self {
        UserError::Store(StoreError::Query(e))
    }
}

pub(super) const MIN_PASSWORD_LEN: usize = 10;

/// Failed logins that lock one account for [`LOGIN_WINDOW_MINUTES`].
pub(super) const MAX_FAILURES_PER_ACCOUNT: i64 = 5;
/// Failed logins that lock one client address, whichever accounts it tries.
pub(super) const MAX_FAILURES_PER_IP: i64 = 20;
pub(super) const LOGIN_WINDOW_MINUTES: i64 = 15;

/// How long a browser session lasts from login.
pub(crate) const SESSION_HOURS: i64 = 12;

/// The outcome of a login attempt.
#[derive(Debug, Clone)]
pub(crate) enum LoginOutcome {
    Ok(User),
    /// Wrong name or password, or a disabled account: deliberately indistinguishable.
    Denied,
    /// Too many recent failures for this account or address; retry after this many seconds.
    Throttled {
        retry_after_secs: i64,
    },
}

/// A fresh random secret, hex-encoded.
pub(super) fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

fn sha256_hex(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@'))
}

fn stamp(t: chrono::DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// Hashes off the async threads: argon2id takes tens of milliseconds by design.
async fn hash_password(password: String) -> std::result::Result<String, UserError> {
    tokio::task::spawn_blocking(move || {
        Argon2::default()
            .hash_password(password.as_bytes())
            .map(|h: PasswordHash| h.to_string())
            .map_err(|e| UserError::Hash(e.to_string()))
    })
    .await
    .map_err(|e| UserError::Hash(e.to_string()))?
}

async fn verify_password(password: String, stored: String) -> bool {
    tokio::task::spawn_blocking(move || {
        PasswordHash::new(&stored)
            .map(|hash| {
                Argon2::default()
                    .verify_password(password.as_bytes(), &hash)
                    .is_ok()
            })
            .unwrap_or(false)
    })
    .await
    .unwrap_or(false)
}

/// A hash of nothing anyone knows: unknown names cost the same time as known ones.
static DUMMY_HASH: std::sync::OnceLock<String> = std::sync::OnceLock::new();

type UserRow = (i64, String, String, bool, String);

fn user_from_row((id, name, role, disabled, created_at): UserRow) -> Result<User> {
    let role = role.parse().map_err(|_| StoreError::Corrupt {
        table: "users",
        column: "role",
        value: role,
    })?;
    Ok(User {
        id,
        name,
        role,
        disabled,
        created_at,
    })
}

impl Store {
    /// Adds an account; `actor` goes into the audit log.
    pub async fn add_user(
        &self,
        name: &str,
        role: Role,
        password: &str,
        actor: &str,
    ) -> std::result::Result<User, UserError> {
        if !valid_name(name) {
            return Err(UserError::BadName(name.to_owned()));
        }
        if password.chars().count() < MIN_PASSWORD_LEN {
            return Err(UserError::WeakPassword);
        }
        let hash = hash_password(password.to_owned()).await?;
        let mut tx = self.begin_write().await?;
        let now = now();
        let id: Option<i64> = sqlx::query_scalar(
            "INSERT INTO users (name, role, password_hash, created_at) VALUES (?, ?, ?, ?)
             ON CONFLICT (name) DO NOTHING RETURNING id",
        )
        .bind(name)
        .bind(role.as_str())
        .bind(&hash)
        .bind(&now)
        .fetch_optional(&mut **tx)
        .await?;
        let Some(id) = id else {
            return Err(UserError::Exists(name.to_owned()));
        };
        audit(&mut tx, actor, id, "user_add", Some(role.as_str())).await?;
        tx.commit().await?;
        Ok(User {
            id,
            name: name.to_owned(),
            role,
            disabled: false,
            created_at: now,
        })
    }

    /// Every account, by name.
    pub async fn users(&self) -> Result<Vec<User>> {
        let rows: Vec<UserRow> =
            sqlx::query_as("SELECT id, name, role, disabled, created_at FROM users ORDER BY name")
                .fetch_all(&self.pool)
                .await?;
        rows.into_iter().map(user_from_row).collect()
    }

    pub async fn user_by_name(&self, name: &str) -> Result<Option<User>> {
        let row: Option<UserRow> =
            sqlx::query_as("SELECT id, name, role, disabled, created_at FROM users WHERE name = ?")
                .bind(name)
                .fetch_optional(&self.pool)
                .await?;
        row.map(user_from_row).transpose()
    }

    /// Replaces a password and ends the account's sessions.
    pub async fn set_password(
        &self,
        name: &str,
        password: &str,
        actor: &str,
    ) -> std::result::Result<(), UserError> {
        if password.chars().count() < MIN_PASSWORD_LEN {
            return Err(UserError::WeakPassword);
        }
        let hash = hash_password(password.to_owned()).await?;
        let mut tx = self.begin_write().await?;
        let id: Option<i64> =
            sqlx::query_scalar("UPDATE users SET password_hash = ? WHERE name = ? RETURNING id")
                .bind(&hash)
                .bind(name)
                .fetch_optional(&mut **tx)
                .await?;
        let id = id.ok_or_else(|| UserError::NotFound(name.to_owned()))?;
        sqlx::query("DELETE FROM sessions WHERE user_id = ?")
            .bind(id)
            .execute(&mut **tx)
            .await?;
        audit(&mut tx, actor, id, "user_passwd", None).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Disables (or re-enables) an account; disabling ends its sessions and revokes its tokens.
    pub async fn set_user_disabled(
        &self,
        name: &str,
        disabled: bool,
        actor: &str,
    ) -> std::result::Result<(), UserError> {
        let mut tx = self.begin_write().await?;
        let id: Option<i64> =
            sqlx::query_scalar("UPDATE users SET disabled = ? WHERE name = ? RETURNING id")
                .bind(disabled)
                .bind(name)
                .fetch_optional(&mut **tx)
                .await?;
        let id = id.ok_or_else(|| UserError::NotFound(name.to_owned()))?;
        if disabled {
            sqlx::query("DELETE FROM sessions WHERE user_id = ?")
                .bind(id)
                .execute(&mut **tx)
                .await?;
            sqlx::query("UPDATE api_tokens SET revoked = 1 WHERE user_id = ?")
                .bind(id)
                .execute(&mut **tx)
                .await?;
        }
        let action = if disabled {
            "user_disable"
        } else {
            "user_enable"
        };
        audit(&mut tx, actor, id, action, None).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Changes an account's role; its sessions carry on with the new role at once.
    pub(crate) async fn set_user_role(
        &self,
        name: &str,
        role: Role,
        actor: &str,
    ) -> std::result::Result<(), UserError> {
        let mut tx = self.begin_write().await?;
        let id: Option<i64> =
            sqlx::query_scalar("UPDATE users SET role = ? WHERE name = ? RETURNING id")
                .bind(role.as_str())
                .bind(name)
                .fetch_optional(&mut **tx)
                .await?;
        let id = id.ok_or_else(|| UserError::NotFound(name.to_owned()))?;
        audit(&mut tx, actor, id, "user_role", Some(role.as_str())).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Checks a name and password, throttled per account and per client address.
    /// Every attempt is recorded, so the limits hold across restarts.
    pub(crate) async fn attempt_login(
        &self,
        name: &str,
        password: &str,
        ip: &str,
    ) -> Result<LoginOutcome> {
        let now_t = Utc::now();
        let since = stamp(now_t - Duration::minutes(LOGIN_WINDOW_MINUTES));
        let (by_user, first_user): (i64, Option<String>) = sqlx::query_as(
            "SELECT count(*), min(at) FROM login_attempts WHERE user_name = ? AND ok = 0 AND at > ?",
        )
        .bind(name)
        .bind(&since)
        .fetch_one(&self.pool)
        .await?;
        let (by_ip, first_ip): (i64, Option<String>) = sqlx::query_as(
            "SELECT count(*), min(at) FROM login_attempts WHERE ip = ? AND ok = 0 AND at > ?",
        )
        .bind(ip)
        .bind(&since)
        .fetch_one(&self.pool)
        .await?;
        let oldest = if by_user >= MAX_FAILURES_PER_ACCOUNT {
            first_user
        } else if by_ip >= MAX_FAILURES_PER_IP {
            first_ip
        } else {
            None
        };
        if let Some(oldest) = oldest {
            // The lock lifts when the oldest failure in the window ages out.
            let retry_after_secs = chrono::DateTime::parse_from_rfc3339(&oldest)
                .map(|t| {
                    (t.with_timezone(&Utc) + Duration::minutes(LOGIN_WINDOW_MINUTES) - now_t)
                        .num_seconds()
                        .max(1)
                })
                .unwrap_or(LOGIN_WINDOW_MINUTES * 60);
            return Ok(LoginOutcome::Throttled { retry_after_secs });
        }

        let row: Option<(i64, String, String, bool, String, String)> = sqlx::query_as(
            "SELECT id, name, role, disabled, created_at, password_hash FROM users WHERE name = ?",
        )
        .bind(name)
        .fetch_optional(&self.pool)
        .await?;
        let user = match row {
            Some((id, uname, role, disabled, created_at, hash)) => {
                let ok = verify_password(password.to_owned(), hash).await;
                let user = user_from_row((id, uname, role, disabled, created_at))?;
                (ok && !user.disabled).then_some(user)
            }
            None => {
                let dummy = match DUMMY_HASH.get() {
                    Some(h) => h.clone(),
                    None => {
                        let h = hash_password(random_token())
                            .await
                            .unwrap_or_else(|_| String::new());
                        DUMMY_HASH.get_or_init(|| h).clone()
                    }
                };
                verify_password(password.to_owned(), dummy).await;
                None
            }
        };
        sqlx::query("INSERT INTO login_attempts (at, user_name, ip, ok) VALUES (?, ?, ?, ?)")
            .bind(now())
            .bind(name)
            .bind(ip)
            .bind(user.is_some())
            .execute(&self.pool)
            .await?;
        Ok(match user {
            Some(user) => LoginOutcome::Ok(user),
            None => LoginOutcome::Denied,
        })
    }

    /// Starts a browser session for a user who just logged in.
    /// Opens a session; returns its token for the cookie, which is stored only as a hash.
    pub(crate) async fn create_session(&self, user_id: i64, ip: &str) -> Result<String> {
        let token = random_token();
        let csrf_token = random_token();
        let now_t = Utc::now();
        let expires_at = stamp(now_t + Duration::hours(SESSION_HOURS));
        // Old expired sessions go whenever a new one starts.
        sqlx::query("DELETE FROM sessions WHERE expires_at < ?")
            .bind(stamp(now_t))
            .execute(&self.pool)
            .await?;
        sqlx::query(
            "INSERT INTO sessions (token_hash, user_id, csrf_token, created_at, expires_at, ip)
             VALUES (?, ?, ?, ?, ?, ?)",
        )
        .bind(sha256_hex(&token))
        .bind(user_id)
        .bind(&csrf_token)
        .bind(stamp(now_t))
        .bind(&expires_at)
        .bind(ip)
        .execute(&self.pool)
        .await?;
        Ok(token)
    }

    /// The live session for a cookie's token: unexpired, and its user not disabled.
    pub async fn session(&self, token: &str) -> Result<Option<Session>> {
        let row: Option<(i64, String, String, bool, String, String, String)> = sqlx::query_as(
            "SELECT u.id, u.name, u.role, u.disabled, u.created_at, s.csrf_token, s.expires_at
             FROM sessions s JOIN users u ON u.id = s.user_id
             WHERE s.token_hash = ? AND s.expires_at > ? AND u.disabled = 0",
        )
        .bind(sha256_hex(token))
        .bind(now())
        .fetch_optional(&self.pool)
        .await?;
        row.map(
            |(id, name, role, disabled, created, csrf_token, expires_at)| {
                Ok(Session {
                    user: user_from_row((id, name, role, disabled, created))?,
                    csrf_token,
                    expires_at,
                })
            },
        )
        .transpose()
    }

    pub(crate) async fn end_session(&self, token: &str) -> Result<()> {
        sqlx::query("DELETE FROM sessions WHERE token_hash = ?")
            .bind(sha256_hex(token))
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Issues an API token for `name`; the token is returned once and only its hash is kept.
    pub async fn create_api_token(
        &self,
        name: &str,
        label: Option<&str>,
        actor: &str,
    ) -> std::result::Result<String, UserError> {
        let user = self
            .user_by_name(name)
            .await?
            .ok_or_else(|| UserError::NotFound(name.to_owned()))?;
        let token = format!("mw_{}", random_token());
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "INSERT INTO api_tokens (user_id, token_hash, label, created_at) VALUES (?, ?, ?, ?)",
        )
        .bind(user.id)
        .bind(sha256_hex(&token))
        .bind(label)
        .bind(now())
        .execute(&mut **tx)
        .await?;
        audit(&mut tx, actor, user.id, "token_issue", None).await?;
        tx.commit().await?;
        Ok(token)
    }

    /// The enabled user an API token belongs to, if the token is live.
    pub(crate) async fn user_for_api_token(&self, token: &str) -> Result<Option<User>> {
        let hash = sha256_hex(token);
        let row: Option<UserRow> = sqlx::query_as(
            "SELECT u.id, u.name, u.role, u.disabled, u.created_at
             FROM api_tokens t JOIN users u ON u.id = t.user_id
             WHERE t.token_hash = ? AND t.revoked = 0 AND u.disabled = 0",
        )
        .bind(&hash)
        .fetch_optional(&self.pool)
        .await?;
        if row.is_some() {
            sqlx::query("UPDATE api_tokens SET last_used_at = ? WHERE token_hash = ?")
                .bind(now())
                .bind(&hash)
                .execute(&self.pool)
                .await?;
        }
        row.map(user_from_row).transpose()
    }
}

async fn audit(
    tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
    actor: &str,
    user_id: i64,
    action: &str,
    to_state: Option<&str>,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO audit_log (at, actor, entity, entity_id, action, to_state) VALUES (?, ?, 'user', ?, ?, ?)",
    )
    .bind(now())
    .bind(actor)
    .bind(user_id)
    .bind(action)
    .bind(to_state)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("t.db")).await.unwrap();
        (dir, store)
    }

    #[test]
    fn role_names_are_stable_and_unknown_ones_are_corrupt_rows() {
        for (role, name) in [
            (Role::Viewer, "viewer"),
            (Role::Reviewer, "reviewer"),
            (Role::Admin, "admin"),
        ] {
            assert_eq!(role.as_str(), name);
            assert_eq!(role.to_string(), name);
            assert_eq!(name.parse::<Role>(), Ok(role));
        }
        assert_eq!(
            "root".parse::<Role>(),
            Err("unknown role `root`: expected viewer, reviewer or admin".to_owned())
        );
        let row = (
            1,
            "eve".to_owned(),
            "root".to_owned(),
            false,
            "x".to_owned(),
        );
        assert!(matches!(
            user_from_row(row),
            Err(StoreError::Corrupt { table: "users", column: "role", value }) if value == "root"
        ));
    }

    #[tokio::test]
    async fn password_is_stored_as_argon2id_and_verified() {
        let (_dir, store) = store().await;
        store
            .add_user("alice", Role::Reviewer, "correct horse battery", "test")
            .await
            .unwrap();
        let hash: String = sqlx::query_scalar("SELECT password_hash FROM users")
            .fetch_one(&store.pool)
            .await
            .unwrap();
        assert!(hash.starts_with("$argon2id$"), "{hash}");
        assert!(!hash.contains("correct horse"));
        assert!(matches!(
            store
                .attempt_login("alice", "correct horse battery", "1.2.3.4")
                .await
                .unwrap(),
            LoginOutcome::Ok(u) if u.role == Role::Reviewer
        ));
        assert!(matches!(
            store
                .attempt_login("alice", "wrong", "1.2.3.4")
                .await
                .unwrap(),
            LoginOutcome::Denied
        ));
        assert!(matches!(
            store
                .add_user("alice", Role::Admin, "another password", "t")
                .await,
            Err(UserError::Exists(_))
        ));
        assert!(matches!(
            store.add_user("bob", Role::Admin, "short", "t").await,
            Err(UserError::WeakPassword)
        ));
    }

    #[tokio::test]
    async fn account_locks_after_repeated_failures_even_with_the_right_password() {
        let (_dir, store) = store().await;
        store
            .add_user("carol", Role::Viewer, "the real password", "test")
            .await
            .unwrap();
        for _ in 0..MAX_FAILURES_PER_ACCOUNT {
            let out = store
                .attempt_login("carol", "guess", "10.0.0.1")
                .await
                .unwrap();
            assert!(matches!(out, LoginOutcome::Denied));
        }
        let out = store
            .attempt_login("carol", "the real password", "10.0.0.2")
            .await
            .unwrap();
        assert!(
            matches!(out, LoginOutcome::Throttled { retry_after_secs } if retry_after_secs > 0)
        );
    }

    #[tokio::test]
    async fn sessions_end_when_the_user_is_disabled() {
        let (_dir, store) = store().await;
        let user = store
            .add_user("dave", Role::Admin, "a long password", "test")
            .await
            .unwrap();
        let token = store.create_session(user.id, "127.0.0.1").await.unwrap();
        let live = store.session(&token).await.unwrap().unwrap();
        assert_eq!(live.user.name, "dave");
        assert!(!live.csrf_token.is_empty());
        assert!(store.session("not-a-token").await.unwrap().is_none());
        let api_token = store.create_api_token("dave", None, "test").await.unwrap();
        assert!(
            store
                .user_for_api_token(&api_token)
                .await
                .unwrap()
                .is_some()
        );
        store.set_user_disabled("dave", true, "test").await.unwrap();
        assert!(store.session(&token).await.unwrap().is_none());
        assert!(
            store
                .user_for_api_token(&api_token)
                .await
                .unwrap()
                .is_none()
        );
    }
}
