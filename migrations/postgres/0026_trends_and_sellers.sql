-- What happened each week (weeks start on Monday, UTC), kept by the triggers below so the
-- dashboard's charts and the monthly report sum a few thousand rows instead of scanning a
-- year of notices. The metrics are described in migrations/sqlite/0026; the two sets count
-- the same events.
CREATE TABLE weekly_activity (
    week     TEXT NOT NULL,
    brand_id BIGINT NOT NULL,
    platform TEXT NOT NULL,
    account  TEXT NOT NULL,
    metric   TEXT NOT NULL,
    days     BIGINT NOT NULL,
    notices  BIGINT NOT NULL,
    listings BIGINT NOT NULL,
    PRIMARY KEY (week, brand_id, platform, account, metric, days)
);
CREATE INDEX weekly_activity_brand ON weekly_activity (brand_id, week);

-- The Monday of a stored timestamp's week, as text like the rest of the timestamps.
CREATE FUNCTION activity_week(ts TEXT) RETURNS TEXT LANGUAGE sql IMMUTABLE AS $$
    SELECT to_char(date_trunc('week', CAST(substr(ts, 1, 10) AS date)), 'YYYY-MM-DD')
$$;

CREATE FUNCTION activity_add(w TEXT, b BIGINT, p TEXT, acc TEXT, m TEXT, d BIGINT,
                             nn BIGINT, nl BIGINT) RETURNS void LANGUAGE sql AS $$
    INSERT INTO weekly_activity (week, brand_id, platform, account, metric, days, notices, listings)
    VALUES (w, b, p, acc, m, d, nn, nl)
    ON CONFLICT (week, brand_id, platform, account, metric, days)
    DO UPDATE SET notices = weekly_activity.notices + excluded.notices,
                  listings = weekly_activity.listings + excluded.listings
$$;

CREATE FUNCTION weekly_activity_found() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    p TEXT;
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') AND OLD.verdict <> 'clear' THEN
        SELECT platform INTO p FROM listings WHERE id = OLD.listing_id;
        IF p IS NOT NULL THEN
            PERFORM activity_add(activity_week(OLD.created_at), coalesce(OLD.brand_id, 0), p, '',
                                 'found_' || OLD.verdict, -1, 0, -1);
        END IF;
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') AND NEW.verdict <> 'clear' THEN
        SELECT platform INTO p FROM listings WHERE id = NEW.listing_id;
        IF p IS NOT NULL THEN
            PERFORM activity_add(activity_week(NEW.created_at), coalesce(NEW.brand_id, 0), p, '',
                                 'found_' || NEW.verdict, -1, 0, 1);
        END IF;
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER weekly_activity_found AFTER INSERT OR DELETE ON matches
    FOR EACH ROW EXECUTE FUNCTION weekly_activity_found();
-- Any change to what a row is counted under moves it, so the tallies always equal a count of
-- the rows themselves.
CREATE TRIGGER weekly_activity_found_update
    AFTER UPDATE OF verdict, brand_id, created_at, listing_id ON matches
    FOR EACH ROW
    WHEN (OLD.verdict IS DISTINCT FROM NEW.verdict OR OLD.brand_id IS DISTINCT FROM NEW.brand_id
          OR OLD.created_at IS DISTINCT FROM NEW.created_at
          OR OLD.listing_id IS DISTINCT FROM NEW.listing_id)
    EXECUTE FUNCTION weekly_activity_found();

CREATE FUNCTION weekly_activity_case() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    n notices%ROWTYPE;
BEGIN
    SELECT * INTO n FROM notices WHERE id = NEW.entity_id;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    PERFORM activity_add(activity_week(NEW.at), n.brand_id, n.platform,
                         coalesce(n.account, 'default'), NEW.to_state, -1, 1, n.item_count);
    IF NEW.to_state = 'removed' THEN
        PERFORM activity_add(activity_week(NEW.at), n.brand_id, n.platform, '', 'removal_days',
                             LEAST(90, GREATEST(0, CAST(substr(NEW.at, 1, 10) AS date)
                                                   - CAST(substr(n.created_at, 1, 10) AS date))),
                             1, n.item_count);
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER weekly_activity_case AFTER INSERT ON audit_log
    FOR EACH ROW
    WHEN (NEW.entity = 'notice' AND NEW.entity_id IS NOT NULL
          AND (NEW.to_state IN ('filed', 'removed', 'counter_noticed')
               OR (NEW.to_state = 'rejected' AND NEW.from_state IN ('filed', 'counter_noticed'))))
    EXECUTE FUNCTION weekly_activity_case();

CREATE FUNCTION weekly_activity_relisted() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    n notices%ROWTYPE;
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') AND OLD.relisted_from IS NOT NULL THEN
        SELECT * INTO n FROM notices WHERE id = OLD.notice_id;
        IF FOUND THEN
            PERFORM activity_add(activity_week(coalesce(OLD.added_at, n.created_at)), n.brand_id,
                                 n.platform, '', 'relisted', -1, 0, -1);
        END IF;
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') AND NEW.relisted_from IS NOT NULL THEN
        SELECT * INTO n FROM notices WHERE id = NEW.notice_id;
        IF FOUND THEN
            PERFORM activity_add(activity_week(coalesce(NEW.added_at, n.created_at)), n.brand_id,
                                 n.platform, '', 'relisted', -1, 0, 1);
        END IF;
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER weekly_activity_relisted AFTER INSERT ON notice_items
    FOR EACH ROW WHEN (NEW.relisted_from IS NOT NULL)
    EXECUTE FUNCTION weekly_activity_relisted();
CREATE TRIGGER weekly_activity_relisted_delete AFTER DELETE ON notice_items
    FOR EACH ROW WHEN (OLD.relisted_from IS NOT NULL)
    EXECUTE FUNCTION weekly_activity_relisted();
CREATE TRIGGER weekly_activity_relisted_update
    AFTER UPDATE OF relisted_from, added_at, notice_id ON notice_items
    FOR EACH ROW
    WHEN ((OLD.relisted_from IS NULL) IS DISTINCT FROM (NEW.relisted_from IS NULL)
          OR OLD.added_at IS DISTINCT FROM NEW.added_at OR OLD.notice_id IS DISTINCT FROM NEW.notice_id)
    EXECUTE FUNCTION weekly_activity_relisted();

-- The same summed over brands, for the charts of all brands: kept from weekly_activity, whose
-- rows only ever change their counts.
CREATE TABLE weekly_totals (
    week     TEXT NOT NULL,
    platform TEXT NOT NULL,
    account  TEXT NOT NULL,
    metric   TEXT NOT NULL,
    days     BIGINT NOT NULL,
    notices  BIGINT NOT NULL,
    listings BIGINT NOT NULL,
    PRIMARY KEY (week, platform, account, metric, days)
);

CREATE FUNCTION weekly_totals_add() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    dn BIGINT := NEW.notices;
    dl BIGINT := NEW.listings;
BEGIN
    IF TG_OP = 'UPDATE' THEN
        dn := NEW.notices - OLD.notices;
        dl := NEW.listings - OLD.listings;
    END IF;
    INSERT INTO weekly_totals (week, platform, account, metric, days, notices, listings)
    VALUES (NEW.week, NEW.platform, NEW.account, NEW.metric, NEW.days, dn, dl)
    ON CONFLICT (week, platform, account, metric, days)
    DO UPDATE SET notices = weekly_totals.notices + excluded.notices,
                  listings = weekly_totals.listings + excluded.listings;
    RETURN NULL;
END
$$;
CREATE TRIGGER weekly_totals_add AFTER INSERT OR UPDATE OF notices, listings ON weekly_activity
    FOR EACH ROW EXECUTE FUNCTION weekly_totals_add();

-- What is already stored, counted the same way.
INSERT INTO weekly_activity (week, brand_id, platform, account, metric, days, notices, listings)
SELECT activity_week(m.created_at), coalesce(m.brand_id, 0), l.platform, '', 'found_' || m.verdict,
       -1, 0, count(*)
FROM matches m JOIN listings l ON l.id = m.listing_id
WHERE m.verdict <> 'clear'
GROUP BY 1, 2, 3, 5;

INSERT INTO weekly_activity (week, brand_id, platform, account, metric, days, notices, listings)
SELECT activity_week(a.at), n.brand_id, n.platform, coalesce(n.account, 'default'), a.to_state,
       -1, count(*), sum(n.item_count)
FROM audit_log a JOIN notices n ON n.id = a.entity_id
WHERE a.entity = 'notice'
  AND (a.to_state IN ('filed', 'removed', 'counter_noticed')
       OR (a.to_state = 'rejected' AND a.from_state IN ('filed', 'counter_noticed')))
GROUP BY 1, 2, 3, 4, 5;

INSERT INTO weekly_activity (week, brand_id, platform, account, metric, days, notices, listings)
SELECT activity_week(a.at), n.brand_id, n.platform, '', 'removal_days',
       LEAST(90, GREATEST(0, CAST(substr(a.at, 1, 10) AS date) - CAST(substr(n.created_at, 1, 10) AS date))),
       count(*), sum(n.item_count)
FROM audit_log a JOIN notices n ON n.id = a.entity_id
WHERE a.entity = 'notice' AND a.to_state = 'removed'
GROUP BY 1, 2, 3, 6;

INSERT INTO weekly_activity (week, brand_id, platform, account, metric, days, notices, listings)
SELECT activity_week(coalesce(ni.added_at, n.created_at)), n.brand_id, n.platform, '', 'relisted',
       -1, 0, count(*)
FROM notice_items ni JOIN notices n ON n.id = ni.notice_id
WHERE ni.relisted_from IS NOT NULL
GROUP BY 1, 2, 3;

ALTER TABLE listings ADD COLUMN seller_id TEXT;
ALTER TABLE listings ADD COLUMN ship_from TEXT;
CREATE INDEX listings_seller_id ON listings (platform, seller_id) WHERE seller_id IS NOT NULL;

-- Monthly reports: which brands want one, and the ones already sent (one per brand and month).
ALTER TABLE brands ADD COLUMN alert_report TEXT NOT NULL DEFAULT 'off'
    CHECK (alert_report IN ('off', 'monthly'));
CREATE TABLE brand_reports (
    brand_id   BIGINT NOT NULL REFERENCES brands(id) ON DELETE CASCADE,
    month      TEXT NOT NULL,
    alert_id   BIGINT REFERENCES alerts(id) ON DELETE SET NULL,
    created_at TEXT NOT NULL,
    PRIMARY KEY (brand_id, month)
);
CREATE TABLE alert_attachments (
    alert_id     BIGINT NOT NULL REFERENCES alerts(id) ON DELETE CASCADE,
    position     BIGINT NOT NULL,
    filename     TEXT NOT NULL,
    content_type TEXT NOT NULL,
    bytes        BYTEA NOT NULL,
    PRIMARY KEY (alert_id, position)
);
