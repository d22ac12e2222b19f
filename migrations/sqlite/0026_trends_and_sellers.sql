-- What happened each week (weeks start on Monday, UTC), kept by the triggers below so the
-- dashboard's charts and the monthly report sum a few thousand rows instead of scanning a
-- year of notices. Each row counts events of one kind:
--   found_infringing, found_suspect  listings first flagged that week (by the match's current
--                                     verdict; a re-match moves the count)
--   filed, removed, rejected,         case steps taken that week, from the audit log;
--   counter_noticed                   `rejected` only when the platform rejected a filed case
--   removal_days                      removals, by whole days from draft to removal (max 90)
--   relisted                          listings drafted as relistings of an earlier case
-- `notices` counts cases and `listings` the listings in them (the unit of the Good-faith
-- rates). `account` is set for case steps only, `days` for removal_days only.
CREATE TABLE weekly_activity (
    week     TEXT NOT NULL,
    brand_id INTEGER NOT NULL,
    platform TEXT NOT NULL,
    account  TEXT NOT NULL,
    metric   TEXT NOT NULL,
    days     INTEGER NOT NULL,
    notices  INTEGER NOT NULL,
    listings INTEGER NOT NULL,
    PRIMARY KEY (week, brand_id, platform, account, metric, days)
) WITHOUT ROWID;
CREATE INDEX weekly_activity_brand ON weekly_activity (brand_id, week);

CREATE TRIGGER weekly_activity_found AFTER INSERT ON matches
WHEN NEW.verdict <> 'clear'
BEGIN
    INSERT INTO weekly_activity (week, brand_id, platform, account, metric, days, notices, listings)
    SELECT date(substr(NEW.created_at, 1, 10), 'weekday 0', '-6 days'), coalesce(NEW.brand_id, 0),
           l.platform, '', 'found_' || NEW.verdict, -1, 0, 1
    FROM listings l WHERE l.id = NEW.listing_id
    ON CONFLICT DO UPDATE SET listings = listings + 1;
END;

-- Any change to what a row is counted under moves it, so the tallies always equal a count of
-- the rows themselves.
CREATE TRIGGER weekly_activity_found_update
AFTER UPDATE OF verdict, brand_id, created_at, listing_id ON matches
WHEN OLD.verdict IS NOT NEW.verdict OR OLD.brand_id IS NOT NEW.brand_id
  OR OLD.created_at IS NOT NEW.created_at OR OLD.listing_id IS NOT NEW.listing_id
BEGIN
    UPDATE weekly_activity SET listings = listings - 1
    WHERE OLD.verdict <> 'clear'
      AND week = date(substr(OLD.created_at, 1, 10), 'weekday 0', '-6 days')
      AND brand_id = coalesce(OLD.brand_id, 0)
      AND platform = (SELECT platform FROM listings WHERE id = OLD.listing_id)
      AND account = '' AND metric = 'found_' || OLD.verdict AND days = -1;
    INSERT INTO weekly_activity (week, brand_id, platform, account, metric, days, notices, listings)
    SELECT date(substr(NEW.created_at, 1, 10), 'weekday 0', '-6 days'), coalesce(NEW.brand_id, 0),
           l.platform, '', 'found_' || NEW.verdict, -1, 0, 1
    FROM listings l WHERE l.id = NEW.listing_id AND NEW.verdict <> 'clear'
    ON CONFLICT DO UPDATE SET listings = listings + 1;
END;

CREATE TRIGGER weekly_activity_found_delete AFTER DELETE ON matches
WHEN OLD.verdict <> 'clear'
BEGIN
    UPDATE weekly_activity SET listings = listings - 1
    WHERE week = date(substr(OLD.created_at, 1, 10), 'weekday 0', '-6 days')
      AND brand_id = coalesce(OLD.brand_id, 0)
      AND platform = (SELECT platform FROM listings WHERE id = OLD.listing_id)
      AND account = '' AND metric = 'found_' || OLD.verdict AND days = -1;
END;

CREATE TRIGGER weekly_activity_case AFTER INSERT ON audit_log
WHEN NEW.entity = 'notice' AND NEW.entity_id IS NOT NULL
  AND (NEW.to_state IN ('filed', 'removed', 'counter_noticed')
       OR (NEW.to_state = 'rejected' AND NEW.from_state IN ('filed', 'counter_noticed')))
BEGIN
    INSERT INTO weekly_activity (week, brand_id, platform, account, metric, days, notices, listings)
    SELECT date(substr(NEW.at, 1, 10), 'weekday 0', '-6 days'), n.brand_id, n.platform,
           coalesce(n.account, 'default'), NEW.to_state, -1, 1, n.item_count
    FROM notices n WHERE n.id = NEW.entity_id
    ON CONFLICT DO UPDATE SET notices = notices + 1, listings = listings + excluded.listings;
    INSERT INTO weekly_activity (week, brand_id, platform, account, metric, days, notices, listings)
    SELECT date(substr(NEW.at, 1, 10), 'weekday 0', '-6 days'), n.brand_id, n.platform, '',
           'removal_days',
           min(90, max(0, CAST(julianday(substr(NEW.at, 1, 10)) - julianday(substr(n.created_at, 1, 10)) AS INTEGER))),
           1, n.item_count
    FROM notices n WHERE n.id = NEW.entity_id AND NEW.to_state = 'removed'
    ON CONFLICT DO UPDATE SET notices = notices + 1, listings = listings + excluded.listings;
END;

CREATE TRIGGER weekly_activity_relisted AFTER INSERT ON notice_items
WHEN NEW.relisted_from IS NOT NULL
BEGIN
    INSERT INTO weekly_activity (week, brand_id, platform, account, metric, days, notices, listings)
    SELECT date(substr(coalesce(NEW.added_at, n.created_at), 1, 10), 'weekday 0', '-6 days'),
           n.brand_id, n.platform, '', 'relisted', -1, 0, 1
    FROM notices n WHERE n.id = NEW.notice_id
    ON CONFLICT DO UPDATE SET listings = listings + 1;
END;

CREATE TRIGGER weekly_activity_relisted_delete AFTER DELETE ON notice_items
WHEN OLD.relisted_from IS NOT NULL
BEGIN
    UPDATE weekly_activity SET listings = listings - 1
    WHERE (week, brand_id, platform) IN (
        SELECT date(substr(coalesce(OLD.added_at, n.created_at), 1, 10), 'weekday 0', '-6 days'),
               n.brand_id, n.platform
        FROM notices n WHERE n.id = OLD.notice_id)
      AND account = '' AND metric = 'relisted' AND days = -1;
END;

CREATE TRIGGER weekly_activity_relisted_update
AFTER UPDATE OF relisted_from, added_at, notice_id ON notice_items
WHEN (OLD.relisted_from IS NULL) IS NOT (NEW.relisted_from IS NULL)
  OR OLD.added_at IS NOT NEW.added_at OR OLD.notice_id IS NOT NEW.notice_id
BEGIN
    UPDATE weekly_activity SET listings = listings - 1
    WHERE OLD.relisted_from IS NOT NULL
      AND (week, brand_id, platform) IN (
        SELECT date(substr(coalesce(OLD.added_at, n.created_at), 1, 10), 'weekday 0', '-6 days'),
               n.brand_id, n.platform
        FROM notices n WHERE n.id = OLD.notice_id)
      AND account = '' AND metric = 'relisted' AND days = -1;
    INSERT INTO weekly_activity (week, brand_id, platform, account, metric, days, notices, listings)
    SELECT date(substr(coalesce(NEW.added_at, n.created_at), 1, 10), 'weekday 0', '-6 days'),
           n.brand_id, n.platform, '', 'relisted', -1, 0, 1
    FROM notices n WHERE n.id = NEW.notice_id AND NEW.relisted_from IS NOT NULL
    ON CONFLICT DO UPDATE SET listings = listings + 1;
END;

-- The same summed over brands, for the charts of all brands: kept from weekly_activity, whose
-- rows only ever change their counts.
CREATE TABLE weekly_totals (
    week     TEXT NOT NULL,
    platform TEXT NOT NULL,
    account  TEXT NOT NULL,
    metric   TEXT NOT NULL,
    days     INTEGER NOT NULL,
    notices  INTEGER NOT NULL,
    listings INTEGER NOT NULL,
    PRIMARY KEY (week, platform, account, metric, days)
) WITHOUT ROWID;

CREATE TRIGGER weekly_totals_insert AFTER INSERT ON weekly_activity
BEGIN
    INSERT INTO weekly_totals (week, platform, account, metric, days, notices, listings)
    VALUES (NEW.week, NEW.platform, NEW.account, NEW.metric, NEW.days, NEW.notices, NEW.listings)
    ON CONFLICT DO UPDATE SET notices = notices + excluded.notices, listings = listings + excluded.listings;
END;

CREATE TRIGGER weekly_totals_update AFTER UPDATE OF notices, listings ON weekly_activity
BEGIN
    UPDATE weekly_totals
    SET notices = notices + NEW.notices - OLD.notices, listings = listings + NEW.listings - OLD.listings
    WHERE week = NEW.week AND platform = NEW.platform AND account = NEW.account
      AND metric = NEW.metric AND days = NEW.days;
END;

-- What is already stored, counted the same way.
INSERT INTO weekly_activity (week, brand_id, platform, account, metric, days, notices, listings)
SELECT date(substr(m.created_at, 1, 10), 'weekday 0', '-6 days'), coalesce(m.brand_id, 0),
       l.platform, '', 'found_' || m.verdict, -1, 0, count(*)
FROM matches m JOIN listings l ON l.id = m.listing_id
WHERE m.verdict <> 'clear'
GROUP BY 1, 2, 3, 5;

INSERT INTO weekly_activity (week, brand_id, platform, account, metric, days, notices, listings)
SELECT date(substr(a.at, 1, 10), 'weekday 0', '-6 days'), n.brand_id, n.platform,
       coalesce(n.account, 'default'), a.to_state, -1, count(*), sum(n.item_count)
FROM audit_log a JOIN notices n ON n.id = a.entity_id
WHERE a.entity = 'notice'
  AND (a.to_state IN ('filed', 'removed', 'counter_noticed')
       OR (a.to_state = 'rejected' AND a.from_state IN ('filed', 'counter_noticed')))
GROUP BY 1, 2, 3, 4, 5;

INSERT INTO weekly_activity (week, brand_id, platform, account, metric, days, notices, listings)
SELECT date(substr(a.at, 1, 10), 'weekday 0', '-6 days'), n.brand_id, n.platform, '',
       'removal_days',
       min(90, max(0, CAST(julianday(substr(a.at, 1, 10)) - julianday(substr(n.created_at, 1, 10)) AS INTEGER))),
       count(*), sum(n.item_count)
FROM audit_log a JOIN notices n ON n.id = a.entity_id
WHERE a.entity = 'notice' AND a.to_state = 'removed'
GROUP BY 1, 2, 3, 6;

INSERT INTO weekly_activity (week, brand_id, platform, account, metric, days, notices, listings)
SELECT date(substr(coalesce(ni.added_at, n.created_at), 1, 10), 'weekday 0', '-6 days'),
       n.brand_id, n.platform, '', 'relisted', -1, 0, count(*)
FROM notice_items ni JOIN notices n ON n.id = ni.notice_id
WHERE ni.relisted_from IS NOT NULL
GROUP BY 1, 2, 3;

-- Seller networks: the platform's own id for a shop (which outlives its name) and where it
-- ships from, as the search page shows them.
ALTER TABLE listings ADD COLUMN seller_id TEXT;
ALTER TABLE listings ADD COLUMN ship_from TEXT;
CREATE INDEX listings_seller_id ON listings (platform, seller_id) WHERE seller_id IS NOT NULL;

-- Monthly reports: which brands want one, and the ones already sent (one per brand and month).
ALTER TABLE brands ADD COLUMN alert_report TEXT NOT NULL DEFAULT 'off'
    CHECK (alert_report IN ('off', 'monthly'));
CREATE TABLE brand_reports (
    brand_id   INTEGER NOT NULL REFERENCES brands(id) ON DELETE CASCADE,
    month      TEXT NOT NULL,                       -- YYYY-MM
    alert_id   INTEGER REFERENCES alerts(id) ON DELETE SET NULL,
    created_at TEXT NOT NULL,
    PRIMARY KEY (brand_id, month)
);
-- Files an alert carries (a report's PDF), sent as attachments.
CREATE TABLE alert_attachments (
    alert_id     INTEGER NOT NULL REFERENCES alerts(id) ON DELETE CASCADE,
    position     INTEGER NOT NULL,
    filename     TEXT NOT NULL,
    content_type TEXT NOT NULL,
    bytes        BLOB NOT NULL,
    PRIMARY KEY (alert_id, position)
);
