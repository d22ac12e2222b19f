-- The queue's sort orders across several states (the default queue, a filter on more than
-- one state): the state-led indexes of 0007 give PostgreSQL their order only within one state,
-- so it sorted every matching notice per page. These give the order whole; INCLUDE (state)
-- lets a deep page skip rows in the index alone.
CREATE INDEX notices_priority_any ON notices (priority DESC, max_score DESC, id DESC) INCLUDE (state);
CREATE INDEX notices_score_any ON notices (max_score DESC, id DESC) INCLUDE (state);
CREATE INDEX notices_items_any ON notices (item_count DESC, id DESC) INCLUDE (state);
CREATE INDEX notices_updated_any ON notices (updated_at DESC, id DESC) INCLUDE (state);
CREATE INDEX notices_deadline_any ON notices ((deadline IS NULL), deadline, id) INCLUDE (state);
CREATE INDEX notices_platform_priority_any
    ON notices (platform, priority DESC, max_score DESC, id DESC) INCLUDE (state);
CREATE INDEX notices_platform_score_any
    ON notices (platform, max_score DESC, id DESC) INCLUDE (state);
