-- Item pages still missing (a crawl cut short before it fetched them, a page that failed) are
-- fetched by later crawls, a bounded number per run: `detail_tried_at` says when one last
-- tried, so the least recently tried go first and a page that always fails cannot starve the
-- rest. The index holds only listings without their item page.
ALTER TABLE listings ADD COLUMN detail_tried_at TEXT;
CREATE INDEX listings_detail_missing ON listings (platform, detail_tried_at, id)
    WHERE detail_evidence_id IS NULL;
