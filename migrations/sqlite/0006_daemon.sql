-- The daemon: schedules whose last and next run survive restarts, one row per run a
-- schedule starts (or skips), and the running daemon's control endpoint.

-- One row per watch (a platform's default schedule, or a `[[schedule.watch]]` entry).
CREATE TABLE schedules (
    watch            TEXT PRIMARY KEY,
    cron             TEXT NOT NULL,       -- as configured; a change re-plans the next slot
    next_slot        TEXT NOT NULL,       -- the cron time of the next run
    next_run_at      TEXT NOT NULL,       -- next_slot plus jitter: when it will start
    last_slot        TEXT,
    last_started_at  TEXT,
    last_finished_at TEXT,
    last_status      TEXT,
    resume_slot      TEXT,                -- a run cut short (crash, shutdown): run it again first
    updated_at       TEXT NOT NULL
);

CREATE TABLE schedule_runs (
    id          INTEGER PRIMARY KEY,
    watch       TEXT NOT NULL,
    slot        TEXT NOT NULL,            -- the cron time it is for; the request time if manual
    trigger     TEXT NOT NULL CHECK (trigger IN ('schedule', 'catch_up', 'resume', 'manual')),
    started_at  TEXT NOT NULL,
    finished_at TEXT,
    status      TEXT NOT NULL DEFAULT 'running'
                CHECK (status IN ('running', 'ok', 'partial', 'failed', 'abandoned', 'skipped')),
    crawl_runs  TEXT,                     -- JSON array of crawl_runs.id
    error       TEXT
);
-- A slot runs once. An abandoned run (crash, shutdown) is resumed under the same slot.
CREATE UNIQUE INDEX schedule_runs_slot ON schedule_runs (watch, slot)
    WHERE status NOT IN ('abandoned', 'skipped');
CREATE INDEX schedule_runs_started ON schedule_runs (started_at);

-- Small facts about the running daemon: where its API listens and its control token,
-- so `markwatch crawl --now` on the same machine can reach it.
CREATE TABLE daemon_state (
    key        TEXT PRIMARY KEY,
    value      TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
