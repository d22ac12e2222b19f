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

CREATE FUNCTION notice_outcome() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE notices
    SET removed_at = CASE WHEN NEW.to_state = 'removed' THEN coalesce(removed_at, NEW.at)
                          ELSE removed_at END,
        platform_rejected_at = CASE WHEN NEW.to_state = 'rejected'
                                    THEN coalesce(platform_rejected_at, NEW.at)
                                    ELSE platform_rejected_at END
    WHERE id = NEW.entity_id;
    RETURN NULL;
END
$$;
CREATE TRIGGER notice_outcome AFTER INSERT ON audit_log
    FOR EACH ROW
    WHEN (NEW.entity = 'notice'
          AND (NEW.to_state = 'removed' OR (NEW.to_state = 'rejected' AND NEW.from_state = 'filed')))
    EXECUTE FUNCTION notice_outcome();

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
    filed           BIGINT NOT NULL,
    pending         BIGINT NOT NULL,
    removed         BIGINT NOT NULL,
    rejected        BIGINT NOT NULL,
    counter_noticed BIGINT NOT NULL,
    PRIMARY KEY (day, platform, account)
);

INSERT INTO good_faith_days
SELECT substr(filed_at, 1, 10), platform, coalesce(account, 'default'), sum(item_count),
       sum(CASE WHEN state = 'filed' THEN item_count ELSE 0 END),
       sum(CASE WHEN removed_at IS NOT NULL THEN item_count ELSE 0 END),
       sum(CASE WHEN platform_rejected_at IS NOT NULL THEN item_count ELSE 0 END),
       sum(CASE WHEN counter_noticed_at IS NOT NULL THEN item_count ELSE 0 END)
FROM notices WHERE filed_at IS NOT NULL
GROUP BY 1, 2, 3;

-- Adds one notice's counts (k = 1) or takes them out (k = -1).
CREATE FUNCTION good_faith_days_add(n notices, k BIGINT) RETURNS void LANGUAGE sql AS $$
    INSERT INTO good_faith_days
    VALUES (substr(n.filed_at, 1, 10), n.platform, coalesce(n.account, 'default'),
            k * n.item_count,
            k * CASE WHEN n.state = 'filed' THEN n.item_count ELSE 0 END,
            k * CASE WHEN n.removed_at IS NOT NULL THEN n.item_count ELSE 0 END,
            k * CASE WHEN n.platform_rejected_at IS NOT NULL THEN n.item_count ELSE 0 END,
            k * CASE WHEN n.counter_noticed_at IS NOT NULL THEN n.item_count ELSE 0 END)
    ON CONFLICT (day, platform, account) DO UPDATE
    SET filed = good_faith_days.filed + excluded.filed,
        pending = good_faith_days.pending + excluded.pending,
        removed = good_faith_days.removed + excluded.removed,
        rejected = good_faith_days.rejected + excluded.rejected,
        counter_noticed = good_faith_days.counter_noticed + excluded.counter_noticed;
$$;

-- A notice counts once under its filing day with its current answers: a change takes its old
-- count out and puts the new one in, so the tally always equals a count of the notices.
CREATE FUNCTION good_faith_days_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') AND OLD.filed_at IS NOT NULL THEN
        PERFORM good_faith_days_add(OLD, -1);
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') AND NEW.filed_at IS NOT NULL THEN
        PERFORM good_faith_days_add(NEW, 1);
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER good_faith_days_rows AFTER INSERT OR DELETE ON notices
    FOR EACH ROW EXECUTE FUNCTION good_faith_days_change();
-- Drafts (never filed) cost nothing here.
CREATE TRIGGER good_faith_days_update
    AFTER UPDATE OF filed_at, platform, account, state, item_count, removed_at,
                    platform_rejected_at, counter_noticed_at ON notices
    FOR EACH ROW
    WHEN (OLD.filed_at IS NOT NULL OR NEW.filed_at IS NOT NULL)
    EXECUTE FUNCTION good_faith_days_change();
