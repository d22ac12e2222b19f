-- Reviewer feedback: why a draft was rejected as not infringing, and allow rules that keep the
-- same false positive from coming back.

-- The reviewer's reason, on the audit row of the rejection itself. Platform rejections after
-- filing, and rejections from before this column, have none.
ALTER TABLE audit_log ADD COLUMN reject_reason TEXT
    CHECK (reject_reason IN ('authorised_seller', 'genuine_goods', 'not_our_goods'));

-- A seller (the shop name as listed) or a title pattern (words that must all appear) that
-- clears the brand's hits. AUTOINCREMENT: ids are never reused, so (max id, count) changes
-- whenever the set of rules does (`Store::allow_rules_stamp`).
CREATE TABLE allow_rules (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    brand_id   INTEGER NOT NULL REFERENCES brands(id) ON DELETE CASCADE,
    kind       TEXT NOT NULL CHECK (kind IN ('seller', 'title')),
    pattern    TEXT NOT NULL CHECK (trim(pattern) <> ''),
    reason     TEXT NOT NULL CHECK (reason IN ('authorised_seller', 'genuine_goods', 'not_our_goods')),
    -- Where it came from: the rejected notice and the listing that showed the pattern.
    notice_id  INTEGER REFERENCES notices(id) ON DELETE SET NULL,
    listing_id INTEGER REFERENCES listings(id) ON DELETE SET NULL,
    created_by TEXT NOT NULL,
    created_at TEXT NOT NULL,
    UNIQUE (brand_id, kind, pattern)
);
