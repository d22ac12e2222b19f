-- markwatch schema: one table group per pipeline step.
-- Times are RFC 3339 UTC text; dates are YYYY-MM-DD text.

-- Registry ------------------------------------------------------------------

CREATE TABLE brands (
    id                  INTEGER PRIMARY KEY,
    name                TEXT NOT NULL UNIQUE,
    owner               TEXT NOT NULL,
    reference_price_cny REAL CHECK (reference_price_cny IS NULL OR reference_price_cny > 0),
    created_at          TEXT NOT NULL,
    updated_at          TEXT NOT NULL
);

-- Ordered lists hang off the brand; `position` keeps the file's order for export.
CREATE TABLE brand_contacts (
    brand_id INTEGER NOT NULL REFERENCES brands(id) ON DELETE CASCADE,
    position INTEGER NOT NULL,
    email    TEXT NOT NULL,
    PRIMARY KEY (brand_id, position)
);

CREATE TABLE brand_aliases (
    brand_id INTEGER NOT NULL REFERENCES brands(id) ON DELETE CASCADE,
    position INTEGER NOT NULL,
    alias    TEXT NOT NULL,
    PRIMARY KEY (brand_id, position)
);

CREATE TABLE authorized_sellers (
    brand_id INTEGER NOT NULL REFERENCES brands(id) ON DELETE CASCADE,
    position INTEGER NOT NULL,
    seller   TEXT NOT NULL,
    PRIMARY KEY (brand_id, position)
);

CREATE TABLE marks (
    id              INTEGER PRIMARY KEY,
    brand_id        INTEGER NOT NULL REFERENCES brands(id) ON DELETE CASCADE,
    text            TEXT NOT NULL,
    jurisdiction    TEXT NOT NULL,
    registration_no TEXT NOT NULL,
    expires         TEXT,
    created_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL,
    UNIQUE (brand_id, text, jurisdiction)
);

CREATE TABLE mark_classes (
    mark_id INTEGER NOT NULL REFERENCES marks(id) ON DELETE CASCADE,
    class   INTEGER NOT NULL CHECK (class BETWEEN 1 AND 45),
    PRIMARY KEY (mark_id, class)
);

-- Crawl ---------------------------------------------------------------------

CREATE TABLE crawl_runs (
    id               INTEGER PRIMARY KEY,
    platform         TEXT NOT NULL,
    keyword          TEXT,
    started_at       TEXT NOT NULL,
    finished_at      TEXT,
    status           TEXT NOT NULL DEFAULT 'running'
                     CHECK (status IN ('running', 'ok', 'partial', 'failed', 'abandoned')),
    pages_ok         INTEGER NOT NULL DEFAULT 0,
    pages_retried    INTEGER NOT NULL DEFAULT 0,
    pages_failed     INTEGER NOT NULL DEFAULT 0,
    pages_blocked    INTEGER NOT NULL DEFAULT 0,
    listings_new     INTEGER NOT NULL DEFAULT 0,
    listings_changed INTEGER NOT NULL DEFAULT 0,
    error            TEXT
);
CREATE INDEX crawl_runs_platform ON crawl_runs (platform, started_at);

-- Every page fetched, stored once, hash-chained: chain_hash = sha256(prev chain_hash || record).
CREATE TABLE evidence (
    id           INTEGER PRIMARY KEY,
    crawl_run_id INTEGER REFERENCES crawl_runs(id),
    url          TEXT NOT NULL,
    fetched_at   TEXT NOT NULL,
    status       INTEGER NOT NULL,
    headers      TEXT NOT NULL,          -- JSON object
    body         BLOB NOT NULL,          -- zstd-compressed raw bytes as received
    body_len     INTEGER NOT NULL,
    body_sha256  TEXT NOT NULL,
    prev_hash    TEXT NOT NULL,
    chain_hash   TEXT NOT NULL UNIQUE
);

CREATE TABLE listings (
    id          INTEGER PRIMARY KEY,
    platform    TEXT NOT NULL,
    item_id     TEXT NOT NULL,
    url         TEXT NOT NULL,
    title       TEXT NOT NULL,
    seller      TEXT,
    price       REAL,
    currency    TEXT NOT NULL DEFAULT 'CNY',
    category    TEXT,
    is_ad       INTEGER NOT NULL DEFAULT 0,
    evidence_id INTEGER REFERENCES evidence(id),        -- latest search page showing it
    detail_evidence_id INTEGER REFERENCES evidence(id), -- its item page, when fetched
    first_seen  TEXT NOT NULL,
    last_seen   TEXT NOT NULL,
    UNIQUE (platform, item_id)
);
CREATE INDEX listings_seller ON listings (platform, seller);

-- Title and price changes, recorded rather than duplicated.
CREATE TABLE listing_changes (
    id          INTEGER PRIMARY KEY,
    listing_id  INTEGER NOT NULL REFERENCES listings(id) ON DELETE CASCADE,
    field       TEXT NOT NULL,
    old_value   TEXT,
    new_value   TEXT,
    evidence_id INTEGER REFERENCES evidence(id),
    changed_at  TEXT NOT NULL
);

-- Match ---------------------------------------------------------------------

CREATE TABLE matches (
    id              INTEGER PRIMARY KEY,
    listing_id      INTEGER NOT NULL REFERENCES listings(id) ON DELETE CASCADE,
    brand_id        INTEGER REFERENCES brands(id) ON DELETE CASCADE,
    mark_id         INTEGER REFERENCES marks(id) ON DELETE SET NULL,
    verdict         TEXT NOT NULL CHECK (verdict IN ('infringing', 'suspect', 'clear')),
    score           REAL NOT NULL CHECK (score BETWEEN 0 AND 1),
    reasons         TEXT NOT NULL,       -- JSON array of {code, detail}
    matcher_version TEXT NOT NULL,
    created_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL,
    UNIQUE (listing_id)
);
CREATE INDEX matches_verdict ON matches (verdict, brand_id);

-- Notices and cases -----------------------------------------------------------

CREATE TABLE notices (
    id                 INTEGER PRIMARY KEY,
    platform           TEXT NOT NULL,
    brand_id           INTEGER NOT NULL REFERENCES brands(id),
    mark_id            INTEGER REFERENCES marks(id),
    channel            TEXT NOT NULL,
    state              TEXT NOT NULL DEFAULT 'draft'
                       CHECK (state IN ('draft', 'approved', 'filed', 'removed', 'rejected',
                                        'counter_noticed', 'closed')),
    not_fileable       TEXT,             -- why it cannot be filed, shown to reviewers
    complaint_ref      TEXT,
    deadline           TEXT,             -- Art. 43: 15 days after a counter-notice
    created_at         TEXT NOT NULL,
    updated_at         TEXT NOT NULL
);
CREATE INDEX notices_state ON notices (state, platform);

CREATE TABLE notice_items (
    notice_id INTEGER NOT NULL REFERENCES notices(id) ON DELETE CASCADE,
    match_id  INTEGER NOT NULL UNIQUE REFERENCES matches(id),
    PRIMARY KEY (notice_id, match_id)
);

-- Alerts (outbox) ------------------------------------------------------------

CREATE TABLE alerts (
    id              INTEGER PRIMARY KEY,
    kind            TEXT NOT NULL,       -- immediate, digest, operations, test
    brand_id        INTEGER REFERENCES brands(id),
    recipients      TEXT NOT NULL,       -- JSON array
    message_id      TEXT NOT NULL UNIQUE,
    payload         TEXT NOT NULL,       -- JSON: what the message reports
    state           TEXT NOT NULL DEFAULT 'queued'
                    CHECK (state IN ('queued', 'sending', 'sent', 'failed_retrying', 'dead')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TEXT,
    last_error      TEXT,
    server_response TEXT,
    sent_at         TEXT,
    created_at      TEXT NOT NULL
);
CREATE INDEX alerts_state ON alerts (state, next_attempt_at);

-- Review ----------------------------------------------------------------------

CREATE TABLE users (
    id            INTEGER PRIMARY KEY,
    name          TEXT NOT NULL UNIQUE,
    role          TEXT NOT NULL CHECK (role IN ('viewer', 'reviewer', 'admin')),
    password_hash TEXT NOT NULL,
    disabled      INTEGER NOT NULL DEFAULT 0,
    created_at    TEXT NOT NULL
);

CREATE TABLE audit_log (
    id         INTEGER PRIMARY KEY,
    at         TEXT NOT NULL,
    actor      TEXT NOT NULL,
    entity     TEXT NOT NULL,            -- e.g. 'notice', 'registry'
    entity_id  INTEGER,
    action     TEXT NOT NULL,
    from_state TEXT,
    to_state   TEXT,
    note       TEXT
);
CREATE INDEX audit_log_entity ON audit_log (entity, entity_id);
