-- Platform accounts for logged-in crawling. Cookies and the proxy URL are sealed
-- (XChaCha20-Poly1305) by src/secrets.rs under a key kept outside the database; the store
-- holds only the sealed bytes, plus what `accounts list` shows (the proxy's scheme://host:port).
CREATE TABLE accounts (
    id INTEGER PRIMARY KEY,
    platform TEXT NOT NULL,
    name TEXT NOT NULL,
    state TEXT NOT NULL DEFAULT 'ok'
        CHECK (state IN ('ok', 'expired', 'challenged', 'cooling')),
    -- When the account entered its state.
    state_since TEXT NOT NULL,
    -- For `cooling`: when it may be used again.
    state_until TEXT,
    last_success_at TEXT,
    -- Pages fetched on `pages_day` (UTC date); another day counts as none.
    pages_day TEXT,
    pages_count INTEGER NOT NULL DEFAULT 0,
    proxy_display TEXT,
    proxy_sealed BLOB,
    requests_per_second REAL,
    concurrency INTEGER,
    cookies_sealed BLOB NOT NULL,
    cookie_count INTEGER NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    UNIQUE (platform, name)
);

-- A value sealed under the key in use when the first secret was stored: a later run with
-- another key is refused at once, rather than storing secrets no one can open together.
CREATE TABLE secret_key_check (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    sealed BLOB NOT NULL,
    created_at TEXT NOT NULL
);
