-- The review queue at 100,000 notices: a tally of notices per filterable group, kept by
-- triggers, so the queue's total is a sum over a few hundred rows instead of a count over
-- every notice; and one index per queue order, with the state (and platform) the queue filters
-- on first, so a page is read in order from an index instead of sorting every match.

-- Notices per group of the queue's equality filters. `relisted` and `fileable` are 0 or 1.
CREATE TABLE notice_tallies (
    platform TEXT NOT NULL,
    state    TEXT NOT NULL,
    brand_id INTEGER NOT NULL,
    verdict  TEXT NOT NULL,
    relisted INTEGER NOT NULL,
    fileable INTEGER NOT NULL,
    n        INTEGER NOT NULL,
    PRIMARY KEY (platform, state, brand_id, verdict, relisted, fileable)
) WITHOUT ROWID;

INSERT INTO notice_tallies (platform, state, brand_id, verdict, relisted, fileable, n)
SELECT platform, state, brand_id, verdict, relisted_from IS NOT NULL, not_fileable IS NULL, count(*)
FROM notices GROUP BY 1, 2, 3, 4, 5, 6;

CREATE TRIGGER notice_tallies_insert AFTER INSERT ON notices BEGIN
    INSERT INTO notice_tallies (platform, state, brand_id, verdict, relisted, fileable, n)
    VALUES (NEW.platform, NEW.state, NEW.brand_id, NEW.verdict, NEW.relisted_from IS NOT NULL,
            NEW.not_fileable IS NULL, 1)
    ON CONFLICT DO UPDATE SET n = n + 1;
END;

CREATE TRIGGER notice_tallies_delete AFTER DELETE ON notices BEGIN
    UPDATE notice_tallies SET n = n - 1
    WHERE platform = OLD.platform AND state = OLD.state AND brand_id = OLD.brand_id
      AND verdict = OLD.verdict AND relisted = (OLD.relisted_from IS NOT NULL)
      AND fileable = (OLD.not_fileable IS NULL);
END;

-- Only when a grouped column changes, so a score or timestamp update costs nothing here.
CREATE TRIGGER notice_tallies_update
AFTER UPDATE OF platform, state, brand_id, verdict, relisted_from, not_fileable ON notices
WHEN OLD.platform IS NOT NEW.platform OR OLD.state IS NOT NEW.state
  OR OLD.brand_id IS NOT NEW.brand_id OR OLD.verdict IS NOT NEW.verdict
  OR (OLD.relisted_from IS NULL) IS NOT (NEW.relisted_from IS NULL)
  OR (OLD.not_fileable IS NULL) IS NOT (NEW.not_fileable IS NULL)
BEGIN
    UPDATE notice_tallies SET n = n - 1
    WHERE platform = OLD.platform AND state = OLD.state AND brand_id = OLD.brand_id
      AND verdict = OLD.verdict AND relisted = (OLD.relisted_from IS NOT NULL)
      AND fileable = (OLD.not_fileable IS NULL);
    INSERT INTO notice_tallies (platform, state, brand_id, verdict, relisted, fileable, n)
    VALUES (NEW.platform, NEW.state, NEW.brand_id, NEW.verdict, NEW.relisted_from IS NOT NULL,
            NEW.not_fileable IS NULL, 1)
    ON CONFLICT DO UPDATE SET n = n + 1;
END;

-- One index per queue order (see NoticeSort::order_by), by state and by platform and state.
-- `priority` by state is 0003's notices_queue; `newest`/`oldest` by platform and state is
-- 0003's notices_platform (an index ends with the id).
CREATE INDEX notices_platform_priority ON notices (platform, state, priority DESC, max_score DESC, id DESC);
CREATE INDEX notices_score ON notices (state, max_score DESC, id DESC);
CREATE INDEX notices_platform_score ON notices (platform, state, max_score DESC, id DESC);
CREATE INDEX notices_state_id ON notices (state, id);
CREATE INDEX notices_items ON notices (state, item_count DESC, id DESC);
CREATE INDEX notices_platform_items ON notices (platform, state, item_count DESC, id DESC);
CREATE INDEX notices_updated ON notices (state, updated_at DESC, id DESC);
CREATE INDEX notices_platform_updated ON notices (platform, state, updated_at DESC, id DESC);
CREATE INDEX notices_state_deadline ON notices (state, deadline IS NULL, deadline, id);
