-- no-transaction
-- A platform's run may now end `skipped` (no logged-in account: nothing was fetched) or
-- `paused` (every account needs a person, or the platform showed a challenge): neither is a
-- failure that pages operators every run. SQLite cannot alter a CHECK, so crawl_runs is
-- rebuilt; foreign keys are off while evidence's references point at the rebuilt table.
PRAGMA foreign_keys = OFF;
BEGIN;
CREATE TABLE crawl_runs_new (
    id               INTEGER PRIMARY KEY,
    platform         TEXT NOT NULL,
    keyword          TEXT,
    started_at       TEXT NOT NULL,
    finished_at      TEXT,
    status           TEXT NOT NULL DEFAULT 'running'
                     CHECK (status IN ('running', 'ok', 'partial', 'failed', 'abandoned',
                                       'skipped', 'paused')),
    pages_ok         INTEGER NOT NULL DEFAULT 0,
    pages_retried    INTEGER NOT NULL DEFAULT 0,
    pages_failed     INTEGER NOT NULL DEFAULT 0,
    pages_blocked    INTEGER NOT NULL DEFAULT 0,
    listings_new     INTEGER NOT NULL DEFAULT 0,
    listings_changed INTEGER NOT NULL DEFAULT 0,
    error            TEXT,
    listings_flagged INTEGER NOT NULL DEFAULT 0
);
INSERT INTO crawl_runs_new (id, platform, keyword, started_at, finished_at, status, pages_ok,
        pages_retried, pages_failed, pages_blocked, listings_new, listings_changed, error,
        listings_flagged)
    SELECT id, platform, keyword, started_at, finished_at, status, pages_ok, pages_retried,
        pages_failed, pages_blocked, listings_new, listings_changed, error, listings_flagged
    FROM crawl_runs;
DROP TABLE crawl_runs;
ALTER TABLE crawl_runs_new RENAME TO crawl_runs;
CREATE INDEX crawl_runs_platform ON crawl_runs (platform, started_at);

-- Something only a person can fix, met by the crawl: an account's login wall or challenge, or
-- a challenge to an anonymous platform (account_id NULL). Operators get one email per incident
-- (`reported`); it is closed (`resolved_at`) when the account is imported again or an
-- anonymous platform's run goes through, so the next one is a new incident.
CREATE TABLE crawl_incidents (
    id          INTEGER PRIMARY KEY,
    platform    TEXT NOT NULL,
    account_id  INTEGER REFERENCES accounts(id) ON DELETE CASCADE,
    account     TEXT,
    kind        TEXT NOT NULL CHECK (kind IN ('expired', 'challenged')),
    url         TEXT,
    at          TEXT NOT NULL,
    reported    INTEGER NOT NULL DEFAULT 0,
    resolved_at TEXT
);
CREATE INDEX crawl_incidents_unreported ON crawl_incidents (id) WHERE reported = 0;
COMMIT;
PRAGMA foreign_keys = ON;
