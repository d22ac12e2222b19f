-- A scheduled run whose platforms were all held for a person (no logged-in account, or every
-- account challenged or expired), the rest having gone through, ends `paused`: not `partial`,
-- which reads as a fault. SQLite cannot alter a CHECK, so the table is rebuilt.
CREATE TABLE schedule_runs_new (
    id          INTEGER PRIMARY KEY,
    watch       TEXT NOT NULL,
    slot        TEXT NOT NULL,
    trigger     TEXT NOT NULL CHECK (trigger IN ('schedule', 'catch_up', 'resume', 'manual')),
    started_at  TEXT NOT NULL,
    finished_at TEXT,
    status      TEXT NOT NULL DEFAULT 'running'
                CHECK (status IN ('running', 'ok', 'partial', 'failed', 'abandoned', 'skipped',
                                  'paused')),
    crawl_runs  TEXT,
    error       TEXT
);
INSERT INTO schedule_runs_new (id, watch, slot, trigger, started_at, finished_at, status,
        crawl_runs, error)
    SELECT id, watch, slot, trigger, started_at, finished_at, status, crawl_runs, error
    FROM schedule_runs;
DROP TABLE schedule_runs;
ALTER TABLE schedule_runs_new RENAME TO schedule_runs;
CREATE UNIQUE INDEX schedule_runs_slot ON schedule_runs (watch, slot)
    WHERE status NOT IN ('abandoned', 'skipped');
CREATE INDEX schedule_runs_started ON schedule_runs (started_at);
