-- Images (issue 22): brands' reference images, and listings' photos with what became of them.

-- A brand's reference images, hashed once at import. `hashes` is the perceptual hash of the
-- image as it is, then of its cropped and mirrored variants: 64-bit words, little-endian.
CREATE TABLE brand_images (
    id           INTEGER PRIMARY KEY,
    brand_id     INTEGER NOT NULL REFERENCES brands(id) ON DELETE CASCADE,
    position     INTEGER NOT NULL,
    path         TEXT NOT NULL,
    kind         TEXT NOT NULL CHECK (kind IN ('product', 'logo')),
    sha256       TEXT NOT NULL,
    hashes       BLOB NOT NULL,
    content_type TEXT NOT NULL,
    bytes        BLOB NOT NULL,
    imported_at  TEXT NOT NULL,
    UNIQUE (brand_id, path)
);

-- A listing's photos: the main one from the search page (position 0), the gallery from its
-- item page. Fetched when wanted: the main one always, the rest for flagged listings.
-- `state`: pending, hashed (accepted: `evidence_id`, `sha256`, `phash` set), refused (not an
-- acceptable image: `error` says why), failed (not fetched: `error`, tried again next run).
CREATE TABLE listing_images (
    id          INTEGER PRIMARY KEY,
    listing_id  INTEGER NOT NULL REFERENCES listings(id) ON DELETE CASCADE,
    position    INTEGER NOT NULL,
    url         TEXT NOT NULL,
    state       TEXT NOT NULL DEFAULT 'pending'
                CHECK (state IN ('pending', 'hashed', 'refused', 'failed')),
    evidence_id INTEGER REFERENCES evidence(id),
    sha256      TEXT,
    phash       INTEGER,
    width       INTEGER,
    height      INTEGER,
    error       TEXT,
    tries       INTEGER NOT NULL DEFAULT 0,
    fetched_at  TEXT,
    UNIQUE (listing_id, url)
);
CREATE INDEX listing_images_waiting ON listing_images (state, listing_id)
    WHERE state IN ('pending', 'failed');
