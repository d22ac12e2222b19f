-- Listings a run flagged for review, so operators see a run's yield beside its pages.
ALTER TABLE crawl_runs ADD COLUMN listings_flagged INTEGER NOT NULL DEFAULT 0;
