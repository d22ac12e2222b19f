-- Crawl jobs: a watch's run is one job per platform, claimed by workers (serve's own, or
-- `markwatch worker` on any machine sharing the database) under a lease they renew while they
-- work. A job whose lease runs out (its worker died) is claimed again by another.
CREATE TABLE crawl_jobs (
    id              INTEGER PRIMARY KEY,
    schedule_run_id INTEGER NOT NULL REFERENCES schedule_runs(id),
    watch           TEXT NOT NULL,
    platform        TEXT NOT NULL,
    state           TEXT NOT NULL DEFAULT 'queued'
                    CHECK (state IN ('queued', 'running', 'done', 'cancelled')),
    worker          TEXT,
    lease_until     TEXT,
    attempts        INTEGER NOT NULL DEFAULT 0,
    created_at      TEXT NOT NULL,
    started_at      TEXT,
    finished_at     TEXT,
    status          TEXT CHECK (status IS NULL OR status IN ('ok', 'partial', 'failed')),
    crawl_runs      TEXT,                     -- JSON array of crawl_runs.id
    error           TEXT
);
CREATE INDEX crawl_jobs_open ON crawl_jobs (platform, state) WHERE state IN ('queued', 'running');
CREATE INDEX crawl_jobs_run ON crawl_jobs (schedule_run_id);

-- Every worker process that has run, and its last sign of life.
CREATE TABLE workers (
    name         TEXT PRIMARY KEY,
    host         TEXT NOT NULL,
    pid          INTEGER NOT NULL,
    slots        INTEGER NOT NULL,
    lease_secs   INTEGER NOT NULL,         -- it heartbeats every third of this
    started_at   TEXT NOT NULL,
    heartbeat_at TEXT NOT NULL,
    stopped_at   TEXT
);
