-- Alerts: per-brand preferences, the event outbox written with each match, and sender state.

-- Per-brand preferences, part of the registry (brands.toml `[brand.alerts]`).
ALTER TABLE brands ADD COLUMN alert_mode TEXT NOT NULL DEFAULT 'immediate'
    CHECK (alert_mode IN ('immediate', 'digest', 'off'));
ALTER TABLE brands ADD COLUMN alert_digest TEXT;            -- cron; NULL = daily at 08:00 UTC
ALTER TABLE brands ADD COLUMN alert_language TEXT NOT NULL DEFAULT 'en'
    CHECK (alert_language IN ('en', 'zh'));

-- What happened, written in the same transaction as the match that caused it. The batcher
-- (infringing) and the digest (suspect, and infringing for digest-mode brands) turn a brand's
-- pending events into one `alerts` row and mark them handled in the same transaction.
CREATE TABLE alert_events (
    id         INTEGER PRIMARY KEY,
    kind       TEXT NOT NULL CHECK (kind IN ('infringing', 'suspect')),
    brand_id   INTEGER NOT NULL REFERENCES brands(id) ON DELETE CASCADE,
    match_id   INTEGER NOT NULL REFERENCES matches(id) ON DELETE CASCADE,
    listing_id INTEGER NOT NULL REFERENCES listings(id) ON DELETE CASCADE,
    created_at TEXT NOT NULL,
    handled_at TEXT,                     -- NULL while pending
    alert_id   INTEGER REFERENCES alerts(id) ON DELETE SET NULL   -- NULL if dropped (mode off)
);
CREATE INDEX alert_events_pending ON alert_events (brand_id, kind, id) WHERE handled_at IS NULL;

-- A row in state 'sending' belongs to one sender until this time; after it, a crashed sender's
-- claim is taken over.
ALTER TABLE alerts ADD COLUMN lease_until TEXT;
-- The subject as rendered, for `alerts list` and the review UI.
ALTER TABLE alerts ADD COLUMN subject TEXT;

-- When each brand's digest last covered up to.
CREATE TABLE alert_digests (
    brand_id    INTEGER PRIMARY KEY REFERENCES brands(id) ON DELETE CASCADE,
    covered_to  TEXT NOT NULL
);

-- The last failed run of a platform that operators were told about, so a streak alerts once.
CREATE TABLE alert_operations (
    platform        TEXT PRIMARY KEY,
    last_run_id     INTEGER NOT NULL
);
