-- Notices and cases: what drafting, the case lifecycle, relisting and the good-faith governor
-- need beyond 0001's notices and notice_items.

-- How drafts are grouped: one open draft per key (platform, brand, right, reason, relisted case)
-- takes new listings until the channel's cap.
ALTER TABLE notices ADD COLUMN group_key TEXT;
-- The infringement type stated in the complaint.
ALTER TABLE notices ADD COLUMN reason TEXT NOT NULL DEFAULT 'counterfeit'
    CHECK (reason IN ('counterfeit', 'trademark_misuse'));
-- Higher first in the queue; relisted cases are raised.
ALTER TABLE notices ADD COLUMN priority INTEGER NOT NULL DEFAULT 0;
-- The earlier case whose removed listing this one's listings relist.
ALTER TABLE notices ADD COLUMN relisted_from INTEGER REFERENCES notices(id);
-- The platform account the complaint is filed under (good-faith rates are per account).
ALTER TABLE notices ADD COLUMN account TEXT;
ALTER TABLE notices ADD COLUMN filed_at TEXT;
ALTER TABLE notices ADD COLUMN counter_noticed_at TEXT;
ALTER TABLE notices ADD COLUMN resolved_at TEXT;
-- Kept in step with notice_items by the drafting transaction, so the queue filters and sorts
-- on indexed columns instead of aggregating items per request.
ALTER TABLE notices ADD COLUMN item_count INTEGER NOT NULL DEFAULT 0;
ALTER TABLE notices ADD COLUMN max_score REAL NOT NULL DEFAULT 0;
ALTER TABLE notices ADD COLUMN verdict TEXT NOT NULL DEFAULT 'suspect'
    CHECK (verdict IN ('infringing', 'suspect'));

CREATE INDEX notices_group ON notices (group_key, state);
CREATE INDEX notices_queue ON notices (state, priority DESC, max_score DESC, id DESC);
CREATE INDEX notices_brand ON notices (brand_id, state);
CREATE INDEX notices_platform ON notices (platform, state);
CREATE INDEX notices_relisted ON notices (relisted_from);
CREATE INDEX notices_deadline ON notices (deadline) WHERE deadline IS NOT NULL;
CREATE INDEX notices_filed ON notices (platform, account, filed_at) WHERE filed_at IS NOT NULL;

-- Per listing: the earlier case it relists and why (same seller, near-identical title).
ALTER TABLE notice_items ADD COLUMN relisted_from INTEGER REFERENCES notices(id);
ALTER TABLE notice_items ADD COLUMN relisted_reason TEXT;
ALTER TABLE notice_items ADD COLUMN added_at TEXT;
CREATE INDEX notice_items_notice ON notice_items (notice_id);

CREATE INDEX audit_log_at ON audit_log (entity, at);
