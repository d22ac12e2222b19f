-- The registry's matching switches and price floors (`well_known`, `watch_unauthorised`,
-- `trust_official_stores`, `[[brand.price]]`), and the generation a cached matcher is checked
-- against.

ALTER TABLE brands ADD COLUMN well_known INTEGER NOT NULL DEFAULT 0
    CHECK (well_known IN (0, 1));
ALTER TABLE brands ADD COLUMN watch_unauthorised INTEGER NOT NULL DEFAULT 1
    CHECK (watch_unauthorised IN (0, 1));
ALTER TABLE brands ADD COLUMN trust_official_stores INTEGER NOT NULL DEFAULT 1
    CHECK (trust_official_stores IN (0, 1));

-- A brand's price floors in the file's order. Words and classes are JSON arrays, read back
-- exactly as written.
CREATE TABLE brand_prices (
    brand_id      INTEGER NOT NULL REFERENCES brands(id) ON DELETE CASCADE,
    position      INTEGER NOT NULL,
    words         TEXT NOT NULL,
    classes       TEXT NOT NULL,
    min_price_cny REAL NOT NULL CHECK (min_price_cny > 0),
    PRIMARY KEY (brand_id, position)
);

-- At most one row (none reads as generation 0, so a fresh database holds no rows). Every write
-- to the registry's tables bumps it in the same transaction, so a reader that saw the same
-- generation twice saw the same registry.
CREATE TABLE registry_generation (
    id         INTEGER PRIMARY KEY CHECK (id = 1),
    generation INTEGER NOT NULL
);
