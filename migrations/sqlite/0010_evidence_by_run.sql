-- A run cut short is recounted from the evidence it stored.
CREATE INDEX IF NOT EXISTS evidence_crawl_run ON evidence (crawl_run_id);
