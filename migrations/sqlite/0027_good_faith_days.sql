-- The Good-faith standing (complaints filed under each platform account in the last three
-- months, by the platform's answer) as a tally per filing day, kept by triggers, so the
-- dashboard and the filing check sum a few hundred rows instead of every case filed in the
-- window and its audit history.

-- When the platform first answered a filed complaint, on the notice itself:
--   removed_at            the first time its listings were taken down
--   platform_rejected_at  the first time the platform rejected it after filing (a reviewer
--                         rejecting a draft is not the platform's answer and sets neither)
-- Both follow the audit log, which is only ever appended to.
ALTER TABLE notices ADD COLUMN removed_at TEXT;
ALTER TABLE notices ADD COLUMN platform_rejected_at TEXT;

CREATE TRIGGER notice_outcome AFTER INSERT ON audit_log
WHEN NEW.entity = 'notice'
 AND (NEW.to_state = 'removed' OR (NEW.to_state = 'rejected' AND NEW.from_state = 'filed'))
BEGIN
    UPDATE notices
    SET removed_at = CASE WHEN NEW.to_state = 'removed' THEN coalesce(removed_at, NEW.at)
                          ELSE removed_at END,
        platform_rejected_at = CASE WHEN NEW.to_state = 'rejected'
                                    THEN coalesce(platform_rejected_at, NEW.at)
                                    ELSE platform_rejected_at END
    WHERE id = NEW.entity_id;
END;

-- One pass over each kind of answer (a per-notice `min(at)` would walk the log by time).
UPDATE notices SET removed_at = a.at
FROM (SELECT entity_id, min(at) AS at FROM audit_log
      WHERE entity = 'notice' AND to_state = 'removed' GROUP BY entity_id) a
WHERE notices.id = a.entity_id;
UPDATE notices SET platform_rejected_at = a.at
FROM (SELECT entity_id, min(at) AS at FROM audit_log
      WHERE entity = 'notice' AND from_state = 'filed' AND to_state = 'rejected' GROUP BY entity_id) a
WHERE notices.id = a.entity_id;

-- Listings in complaints filed that day (UTC) under one account, and how many of them are
-- still pending, were removed, rejected by the platform, or counter-noticed.
CREATE TABLE good_faith_days (
    day             TEXT NOT NULL,
    platform        TEXT NOT NULL,
    account         TEXT NOT NULL,
    filed           INTEGER NOT NULL,
    pending         INTEGER NOT NULL,
    removed         INTEGER NOT NULL,
    rejected        INTEGER NOT NULL,
    counter_noticed INTEGER NOT NULL,
    PRIMARY KEY (day, platform, account)
) WITHOUT ROWID;

INSERT INTO good_faith_days
SELECT substr(filed_at, 1, 10), platform, coalesce(account, 'default'), sum(item_count),
       sum(CASE WHEN state = 'filed' THEN item_count ELSE 0 END),
       sum(CASE WHEN removed_at IS NOT NULL THEN item_count ELSE 0 END),
       sum(CASE WHEN platform_rejected_at IS NOT NULL THEN item_count ELSE 0 END),
       sum(CASE WHEN counter_noticed_at IS NOT NULL THEN item_count ELSE 0 END)
FROM notices WHERE filed_at IS NOT NULL
GROUP BY 1, 2, 3;

-- A notice counts once under its filing day with its current answers: a change takes its old
-- count out and puts the new one in, so the tally always equals a count of the notices.
CREATE TRIGGER good_faith_days_insert AFTER INSERT ON notices
WHEN NEW.filed_at IS NOT NULL
BEGIN
    INSERT INTO good_faith_days
    VALUES (substr(NEW.filed_at, 1, 10), NEW.platform, coalesce(NEW.account, 'default'),
            NEW.item_count,
            CASE WHEN NEW.state = 'filed' THEN NEW.item_count ELSE 0 END,
            CASE WHEN NEW.removed_at IS NOT NULL THEN NEW.item_count ELSE 0 END,
            CASE WHEN NEW.platform_rejected_at IS NOT NULL THEN NEW.item_count ELSE 0 END,
            CASE WHEN NEW.counter_noticed_at IS NOT NULL THEN NEW.item_count ELSE 0 END)
    ON CONFLICT DO UPDATE SET filed = filed + excluded.filed, pending = pending + excluded.pending,
        removed = removed + excluded.removed, rejected = rejected + excluded.rejected,
        counter_noticed = counter_noticed + excluded.counter_noticed;
END;

CREATE TRIGGER good_faith_days_delete AFTER DELETE ON notices
WHEN OLD.filed_at IS NOT NULL
BEGIN
    UPDATE good_faith_days
    SET filed = filed - OLD.item_count,
        pending = pending - CASE WHEN OLD.state = 'filed' THEN OLD.item_count ELSE 0 END,
        removed = removed - CASE WHEN OLD.removed_at IS NOT NULL THEN OLD.item_count ELSE 0 END,
        rejected = rejected - CASE WHEN OLD.platform_rejected_at IS NOT NULL THEN OLD.item_count ELSE 0 END,
        counter_noticed = counter_noticed
                          - CASE WHEN OLD.counter_noticed_at IS NOT NULL THEN OLD.item_count ELSE 0 END
    WHERE day = substr(OLD.filed_at, 1, 10) AND platform = OLD.platform
      AND account = coalesce(OLD.account, 'default');
END;

-- Drafts (never filed) cost nothing here.
CREATE TRIGGER good_faith_days_update
AFTER UPDATE OF filed_at, platform, account, state, item_count, removed_at, platform_rejected_at,
                counter_noticed_at ON notices
WHEN OLD.filed_at IS NOT NULL OR NEW.filed_at IS NOT NULL
BEGIN
    UPDATE good_faith_days
    SET filed = filed - OLD.item_count,
        pending = pending - CASE WHEN OLD.state = 'filed' THEN OLD.item_count ELSE 0 END,
        removed = removed - CASE WHEN OLD.removed_at IS NOT NULL THEN OLD.item_count ELSE 0 END,
        rejected = rejected - CASE WHEN OLD.platform_rejected_at IS NOT NULL THEN OLD.item_count ELSE 0 END,
        counter_noticed = counter_noticed
                          - CASE WHEN OLD.counter_noticed_at IS NOT NULL THEN OLD.item_count ELSE 0 END
    WHERE day = substr(OLD.filed_at, 1, 10) AND platform = OLD.platform
      AND account = coalesce(OLD.account, 'default');
    INSERT INTO good_faith_days
    SELECT substr(NEW.filed_at, 1, 10), NEW.platform, coalesce(NEW.account, 'default'),
           NEW.item_count,
           CASE WHEN NEW.state = 'filed' THEN NEW.item_count ELSE 0 END,
           CASE WHEN NEW.removed_at IS NOT NULL THEN NEW.item_count ELSE 0 END,
           CASE WHEN NEW.platform_rejected_at IS NOT NULL THEN NEW.item_count ELSE 0 END,
           CASE WHEN NEW.counter_noticed_at IS NOT NULL THEN NEW.item_count ELSE 0 END
    WHERE NEW.filed_at IS NOT NULL
    ON CONFLICT DO UPDATE SET filed = filed + excluded.filed, pending = pending + excluded.pending,
        removed = removed + excluded.removed, rejected = rejected + excluded.rejected,
        counter_noticed = counter_noticed + excluded.counter_noticed;
END;
