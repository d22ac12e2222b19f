-- Review UI: browser sessions, API tokens and the login attempts that throttle guessing.
-- Secrets are never stored: sessions and tokens are kept as SHA-256 of the random value.

CREATE TABLE sessions (
    token_hash TEXT PRIMARY KEY,
    user_id    INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    csrf_token TEXT NOT NULL,
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    ip         TEXT
);
CREATE INDEX sessions_user ON sessions (user_id);

CREATE TABLE api_tokens (
    id           INTEGER PRIMARY KEY,
    user_id      INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    token_hash   TEXT NOT NULL UNIQUE,
    label        TEXT,
    created_at   TEXT NOT NULL,
    last_used_at TEXT,
    revoked      INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE login_attempts (
    id        INTEGER PRIMARY KEY,
    at        TEXT NOT NULL,
    user_name TEXT NOT NULL,
    ip        TEXT NOT NULL,
    ok        INTEGER NOT NULL
);
CREATE INDEX login_attempts_user ON login_attempts (user_name, at);
CREATE INDEX login_attempts_ip ON login_attempts (ip, at);
