//! Review UI accounts: users and roles, argon2id password hashes, browser sessions, API tokens
//! and the login attempts that throttle password guessing.
//!
//! Session and API tokens are random 256-bit values handed to the client once; only their
//! SHA-256 is stored, so a copy of the database does not let anyone log in.

use super::sql::{self, Flag};
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
pub(crate) struct Session {
    pub user: User,
    /// The token every POST of this session must carry.
    pub csrf_token: String,
}

/// A newly issued API token: its id (for revoking) and the secret, shown once.
#[derive(Debug, Clone)]
pub struct ApiToken {
    pub id: i64,
    pub token: String,
}

/// An API token as listed: never the secret.
#[derive(Debug, Clone, Serialize)]
pub struct ApiTokenInfo {
    pub id: i64,
    pub user: String,
    pub label: Option<String>,
    pub created_at: String,
    pub last_used_at: Option<String>,
    pub expires_at: Option<String>,
    pub revoked: bool,
}

type ApiTokenRow = (
    i64,
    String,
    Option<String>,
    String,
    Option<String>,
    Option<String>,
    Flag,
);

/// Why an account change was refused.
#[derive(Debug, thiserror::Error)]
pub enum UserError {
    #[error("a user named `{0}` already exists")]
    Exists(String),
    #[error("no user named `{0}`")]
    NotFound(String),
    #[error("no API token with id {0}")]
    NoToken(i64),
    #[error("user name `{}` is not allowed: use 1-64 letters, digits, `.`, `_`, `-` or `@`", capped_name(.0))]
    BadName(String),
    /// The password is too weak; the reason says why.
    #[error("the password is too weak: {0}")]
    WeakPassword(String),
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
/// Longer passwords are refused: the strength estimate's cost grows with the length.
pub(super) const MAX_PASSWORD_LEN: usize = 256;

/// Failed logins that lock one account for [`LOGIN_WINDOW_MINUTES`].
pub(super) const MAX_FAILURES_PER_ACCOUNT: i64 = 5;
/// Failed logins that lock one client address, whichever accounts it tries.
pub(super) const MAX_FAILURES_PER_IP: i64 = 20;
pub(super) const LOGIN_WINDOW_MINUTES: i64 = 15;

/// Session lifetimes (`web.session_hours`, `web.session_idle_minutes`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct SessionLimits {
    /// From login, whatever the use.
    pub absolute: Duration,
    /// Since the session's last request.
    pub idle: Duration,
}

/// How often a live session's last use is written: not on every request.
const LAST_SEEN_GRANULARITY_SECS: i64 = 60;

/// Refuses a password that is short, overly long, holds the user name, or that the zxcvbn
/// estimate scores below 3 of 4 (guessable within about 10^10 tries: common and well-known
/// passwords, keyboard walks, names with digits).
pub(crate) fn check_password(name: &str, password: &str) -> std::result::Result<(), UserError> {
    let chars = password.chars().count();
    if chars < MIN_PASSWORD_LEN {
        return Err(UserError::WeakPassword(format!(
            "use at least {MIN_PASSWORD_LEN} characters"
        )));
    }
    if chars > MAX_PASSWORD_LEN {
        return Err(UserError::WeakPassword(format!(
            "use at most {MAX_PASSWORD_LEN} characters"
        )));
    }
    // Names of one or two letters are in most passwords; zxcvbn weighs those as user input.
    if name.chars().count() >= 3 && password.to_lowercase().contains(&name.to_lowercase()) {
        return Err(UserError::WeakPassword(
            "it contains the user name".to_owned(),
        ));
    }
    let estimate = zxcvbn::zxcvbn(password, &[name]);
    if estimate.score() < zxcvbn::Score::Three {
        let why = estimate
            .feedback()
            .and_then(|f| f.warning())
            .map(|w| w.to_string())
            .unwrap_or_else(|| "it is easy to guess".to_owned());
        return Err(UserError::WeakPassword(format!(
            "{why} Use a longer phrase of unrelated words."
        )));
    }
    Ok(())
}

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

/// The longest user name, in characters.
pub(crate) const MAX_NAME_CHARS: usize = 64;

/// A name from outside, cut to [`MAX_NAME_CHARS`] before it is logged or stored. A cut name
/// ends in `…`, which no valid name holds, so it never matches an account.
pub(crate) fn capped_name(name: &str) -> String {
    match name.char_indices().nth(MAX_NAME_CHARS) {
        Some((cut, _)) => format!("{}…", &name[..cut]),
        None => name.to_owned(),
    }
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NAME_CHARS
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

/// The argon2id hash of a random password nobody kept, with the default parameters: checking
/// an unknown name against it costs what checking a real one does.
const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$czISzwImQSNbjNw1IRDoQg$gi7yOKGQJ2FVKDjJc2NjRe2opItLboNOate5chYa/Nw";

type UserRow = (i64, String, String, Flag, String);

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
        disabled: disabled.0,
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
        check_password(name, password)?;
        let hash = hash_password(password.to_owned()).await?;
        let mut tx = self.begin_write().await?;
        let now = now();
        let id: Option<i64> = sql::query_scalar(
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
            sql::query_as("SELECT id, name, role, disabled, created_at FROM users ORDER BY name")
                .fetch_all(&self.pool)
                .await?;
        rows.into_iter().map(user_from_row).collect()
    }

    pub async fn user_by_name(&self, name: &str) -> Result<Option<User>> {
        let row: Option<UserRow> =
            sql::query_as("SELECT id, name, role, disabled, created_at FROM users WHERE name = ?")
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
        self.change_password(name, password, actor, None).await
    }

    /// Replaces a password and ends the account's sessions, except the one whose cookie token
    /// is `keep` (the session that made the change).
    pub(crate) async fn change_password(
        &self,
        name: &str,
        password: &str,
        actor: &str,
        keep: Option<&str>,
    ) -> std::result::Result<(), UserError> {
        check_password(name, password)?;
        let hash = hash_password(password.to_owned()).await?;
        let mut tx = self.begin_write().await?;
        let id: Option<i64> =
            sql::query_scalar("UPDATE users SET password_hash = ? WHERE name = ? RETURNING id")
                .bind(&hash)
                .bind(name)
                .fetch_optional(&mut **tx)
                .await?;
        let id = id.ok_or_else(|| UserError::NotFound(name.to_owned()))?;
        sql::query("DELETE FROM sessions WHERE user_id = ? AND token_hash IS DISTINCT FROM ?")
            .bind(id)
            .bind(keep.map(sha256_hex))
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
            sql::query_scalar("UPDATE users SET disabled = ? WHERE name = ? RETURNING id")
                .bind(i64::from(disabled))
                .bind(name)
                .fetch_optional(&mut **tx)
                .await?;
        let id = id.ok_or_else(|| UserError::NotFound(name.to_owned()))?;
        if disabled {
            sql::query("DELETE FROM sessions WHERE user_id = ?")
                .bind(id)
                .execute(&mut **tx)
                .await?;
            sql::query("UPDATE api_tokens SET revoked = 1 WHERE user_id = ?")
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
            sql::query_scalar("UPDATE users SET role = ? WHERE name = ? RETURNING id")
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
    ///
    /// The attempt is counted and recorded as a failure in one write transaction before the
    /// password is hashed, so a burst of concurrent guesses cannot all pass the count while
    /// the first hashes run; a success then marks its row.
    pub(crate) async fn attempt_login(
        &self,
        name: &str,
        password: &str,
        ip: &str,
    ) -> Result<LoginOutcome> {
        let name = capped_name(name);
        let name = name.as_str();
        let now_t = Utc::now();
        let since = stamp(now_t - Duration::minutes(LOGIN_WINDOW_MINUTES));
        let mut tx = self.begin_write().await?;
        let (by_user, first_user): (i64, Option<String>) = sql::query_as(
            "SELECT count(*), min(at) FROM login_attempts WHERE user_name = ? AND ok = 0 AND at > ?",
        )
        .bind(name)
        .bind(&since)
        .fetch_one(&mut **tx)
        .await?;
        let (by_ip, first_ip): (i64, Option<String>) = sql::query_as(
            "SELECT count(*), min(at) FROM login_attempts WHERE ip = ? AND ok = 0 AND at > ?",
        )
        .bind(ip)
        .bind(&since)
        .fetch_one(&mut **tx)
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
        let attempt: i64 = sql::query_scalar(
            "INSERT INTO login_attempts (at, user_name, ip, ok) VALUES (?, ?, ?, 0) RETURNING id",
        )
        .bind(stamp(now_t))
        .bind(name)
        .bind(ip)
        .fetch_one(&mut **tx)
        .await?;
        let row: Option<(i64, String, String, Flag, String, String)> = sql::query_as(
            "SELECT id, name, role, disabled, created_at, password_hash FROM users WHERE name = ?",
        )
        .bind(name)
        .fetch_optional(&mut **tx)
        .await?;
        tx.commit().await?;

        let user = match row {
            Some((id, uname, role, disabled, created_at, hash)) => {
                let ok = verify_password(password.to_owned(), hash).await;
                let user = user_from_row((id, uname, role, disabled, created_at))?;
                (ok && !user.disabled).then_some(user)
            }
            None => {
                // Unknown names cost the same time as known ones.
                verify_password(password.to_owned(), DUMMY_HASH.to_owned()).await;
                None
            }
        };
        if user.is_some() {
            sql::query("UPDATE login_attempts SET ok = 1 WHERE id = ?")
                .bind(attempt)
                .execute(&self.pool)
                .await?;
        }
        Ok(match user {
            Some(user) => LoginOutcome::Ok(user),
            None => LoginOutcome::Denied,
        })
    }

    /// Starts a browser session for a user who just logged in.
    /// Opens a session; returns its token for the cookie, which is stored only as a hash.
    pub(crate) async fn create_session(
        &self,
        user_id: i64,
        ip: &str,
        limits: SessionLimits,
    ) -> Result<String> {
        let token = random_token();
        let csrf_token = random_token();
        let now_t = Utc::now();
        let expires_at = stamp(now_t + limits.absolute);
        // Old expired sessions go whenever a new one starts.
        sql::query("DELETE FROM sessions WHERE expires_at < ?")
            .bind(stamp(now_t))
            .execute(&self.pool)
            .await?;
        sql::query(
            "INSERT INTO sessions
                 (token_hash, user_id, csrf_token, created_at, expires_at, ip, last_seen_at)
             VALUES (?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(sha256_hex(&token))
        .bind(user_id)
        .bind(&csrf_token)
        .bind(stamp(now_t))
        .bind(&expires_at)
        .bind(ip)
        .bind(stamp(now_t))
        .execute(&self.pool)
        .await?;
        Ok(token)
    }

    /// The live session for a cookie's token: unexpired, used within the idle limit, and its
    /// user not disabled. Finding it counts as a use.
    pub(crate) async fn session(
        &self,
        token: &str,
        limits: SessionLimits,
    ) -> Result<Option<Session>> {
        let now_t = Utc::now();
        let hash = sha256_hex(token);
        let row: Option<(i64, String, String, Flag, String, String)> = sql::query_as(
            "SELECT u.id, u.name, u.role, u.disabled, u.created_at, s.csrf_token
             FROM sessions s JOIN users u ON u.id = s.user_id
             WHERE s.token_hash = ? AND s.expires_at > ?
               AND coalesce(s.last_seen_at, s.created_at) > ? AND u.disabled = 0",
        )
        .bind(&hash)
        .bind(stamp(now_t))
        .bind(stamp(now_t - limits.idle))
        .fetch_optional(&self.pool)
        .await?;
        if row.is_some() {
            sql::query(
                "UPDATE sessions SET last_seen_at = ?
                 WHERE token_hash = ? AND coalesce(last_seen_at, created_at) < ?",
            )
            .bind(stamp(now_t))
            .bind(&hash)
            .bind(stamp(now_t - Duration::seconds(LAST_SEEN_GRANULARITY_SECS)))
            .execute(&self.pool)
            .await?;
        }
        row.map(|(id, name, role, disabled, created, csrf_token)| {
            Ok(Session {
                user: user_from_row((id, name, role, disabled, created))?,
                csrf_token,
            })
        })
        .transpose()
    }

    pub(crate) async fn end_session(&self, token: &str) -> Result<()> {
        sql::query("DELETE FROM sessions WHERE token_hash = ?")
            .bind(sha256_hex(token))
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Issues an API token for `name`, valid until `expires_at` if given (else until revoked);
    /// the token is returned once and only its hash is kept.
    pub async fn create_api_token(
        &self,
        name: &str,
        label: Option<&str>,
        expires_at: Option<chrono::DateTime<Utc>>,
        actor: &str,
    ) -> std::result::Result<ApiToken, UserError> {
        let user = self
            .user_by_name(name)
            .await?
            .ok_or_else(|| UserError::NotFound(name.to_owned()))?;
        let token = format!("mw_{}", random_token());
        let mut tx = self.begin_write().await?;
        let id: i64 = sql::query_scalar(
            "INSERT INTO api_tokens (user_id, token_hash, label, created_at, expires_at)
             VALUES (?, ?, ?, ?, ?) RETURNING id",
        )
        .bind(user.id)
        .bind(sha256_hex(&token))
        .bind(label)
        .bind(now())
        .bind(expires_at.map(stamp))
        .fetch_one(&mut **tx)
        .await?;
        audit(&mut tx, actor, user.id, "token_issue", None).await?;
        tx.commit().await?;
        Ok(ApiToken { id, token })
    }

    /// Every API token of every user (never the secret), newest first.
    pub async fn api_tokens(&self) -> Result<Vec<ApiTokenInfo>> {
        let rows: Vec<ApiTokenRow> = sql::query_as(
            "SELECT t.id, u.name, t.label, t.created_at, t.last_used_at, t.expires_at, t.revoked
             FROM api_tokens t JOIN users u ON u.id = t.user_id ORDER BY t.id DESC",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(
                |(id, user, label, created_at, last_used_at, expires_at, revoked)| ApiTokenInfo {
                    id,
                    user,
                    label,
                    created_at,
                    last_used_at,
                    expires_at,
                    revoked: revoked.0,
                },
            )
            .collect())
    }

    /// Revokes one API token by its id; the other tokens of its user keep working.
    pub async fn revoke_api_token(
        &self,
        id: i64,
        actor: &str,
    ) -> std::result::Result<(), UserError> {
        let mut tx = self.begin_write().await?;
        let user_id: Option<i64> =
            sql::query_scalar("UPDATE api_tokens SET revoked = 1 WHERE id = ? RETURNING user_id")
                .bind(id)
                .fetch_optional(&mut **tx)
                .await?;
        let user_id = user_id.ok_or_else(|| UserError::NoToken(id))?;
        audit(
            &mut tx,
            actor,
            user_id,
            "token_revoke",
            Some(&id.to_string()),
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The enabled user an API token belongs to, if the token is live.
    pub(crate) async fn user_for_api_token(&self, token: &str) -> Result<Option<User>> {
        let hash = sha256_hex(token);
        let row: Option<UserRow> = sql::query_as(
            "SELECT u.id, u.name, u.role, u.disabled, u.created_at
             FROM api_tokens t JOIN users u ON u.id = t.user_id
             WHERE t.token_hash = ? AND t.revoked = 0 AND u.disabled = 0
               AND (t.expires_at IS NULL OR t.expires_at > ?)",
        )
        .bind(&hash)
        .bind(now())
        .fetch_optional(&self.pool)
        .await?;
        if row.is_some() {
            sql::query("UPDATE api_tokens SET last_used_at = ? WHERE token_hash = ?")
                .bind(now())
                .bind(&hash)
                .execute(&self.pool)
                .await?;
        }
        row.map(user_from_row).transpose()
    }
}

async fn audit(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    actor: &str,
    user_id: i64,
    action: &str,
    to_state: Option<&str>,
) -> Result<()> {
    sql::query(
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

    const LIMITS: SessionLimits = SessionLimits {
        absolute: Duration::hours(12),
        idle: Duration::minutes(30),
    };

    async fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(crate::test_support::scratch_db(dir.path()).await)
            .await
            .unwrap();
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
            Flag(false),
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
            .add_user("alice", Role::Reviewer, "plum vivid orbit kettle", "test")
            .await
            .unwrap();
        let hash: String = sql::query_scalar("SELECT password_hash FROM users")
            .fetch_one(&store.pool)
            .await
            .unwrap();
        assert!(hash.starts_with("$argon2id$"), "{hash}");
        assert!(!hash.contains("correct horse"));
        assert!(matches!(
            store
                .attempt_login("alice", "plum vivid orbit kettle", "1.2.3.4")
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
                .add_user("alice", Role::Admin, "lantern quarry fig moss", "t")
                .await,
            Err(UserError::Exists(_))
        ));
        assert!(matches!(
            store.add_user("bob", Role::Admin, "short", "t").await,
            Err(UserError::WeakPassword(_))
        ));
    }

    #[tokio::test]
    async fn account_locks_after_repeated_failures_even_with_the_right_password() {
        let (_dir, store) = store().await;
        store
            .add_user("carol", Role::Viewer, "saffron tundra pebble oak", "test")
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
            .attempt_login("carol", "saffron tundra pebble oak", "10.0.0.2")
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
            .add_user("dave", Role::Admin, "ember walrus canyon tulip", "test")
            .await
            .unwrap();
        let token = store
            .create_session(user.id, "127.0.0.1", LIMITS)
            .await
            .unwrap();
        let live = store.session(&token, LIMITS).await.unwrap().unwrap();
        assert_eq!(live.user.name, "dave");
        assert!(!live.csrf_token.is_empty());
        assert!(
            store
                .session("not-a-token", LIMITS)
                .await
                .unwrap()
                .is_none()
        );
        let api_token = store
            .create_api_token("dave", None, None, "test")
            .await
            .unwrap()
            .token;
        assert!(
            store
                .user_for_api_token(&api_token)
                .await
                .unwrap()
                .is_some()
        );
        store.set_user_disabled("dave", true, "test").await.unwrap();
        assert!(store.session(&token, LIMITS).await.unwrap().is_none());
        assert!(
            store
                .user_for_api_token(&api_token)
                .await
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn weak_well_known_and_name_holding_passwords_are_refused() {
        for (name, weak) in [
            ("alice", "short"),
            ("alice", "password123"),
            ("alice", "qwertyuiop"),
            ("alice", "alice2024!!"),
            ("alice", "xxALICExx-1234"),
            ("bob", "iloveyou12345"),
            ("carol", "1234567890"),
        ] {
            assert!(
                matches!(check_password(name, weak), Err(UserError::WeakPassword(_))),
                "{name}: {weak}"
            );
        }
        for (name, strong) in [
            ("alice", "plum vivid orbit kettle"),
            ("bob", "correct horse battery staple"),
        ] {
            check_password(name, strong).unwrap_or_else(|e| panic!("{strong}: {e}"));
        }
        assert!(check_password("a", &"x".repeat(MAX_PASSWORD_LEN + 1)).is_err());
    }

    #[test]
    fn the_dummy_hash_is_an_argon2id_hash_with_the_default_cost() {
        let hash = PasswordHash::new(DUMMY_HASH).unwrap();
        assert_eq!(hash.algorithm.as_str(), "argon2id");
        let params = argon2::Params::try_from(&hash).unwrap();
        let default = argon2::Params::default();
        assert_eq!(
            (params.m_cost(), params.t_cost(), params.p_cost()),
            (default.m_cost(), default.t_cost(), default.p_cost())
        );
    }

    #[test]
    fn names_are_capped_and_a_capped_name_is_never_valid() {
        assert_eq!(capped_name("alice"), "alice");
        let long = "耐".repeat(250_000);
        let capped = capped_name(&long);
        assert_eq!(capped.chars().count(), MAX_NAME_CHARS + 1);
        assert_eq!(capped_name(&capped), capped);
        assert!(!valid_name(&capped_name(&"a".repeat(65))));
        assert_eq!(capped_name(&"a".repeat(64)), "a".repeat(64));
    }
}
