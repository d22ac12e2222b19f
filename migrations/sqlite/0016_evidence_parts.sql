-- Evidence of several parts: a browser page's captured API replies and screenshots, beside
-- the page body in `evidence`. Each part's SHA-256 is covered by its row's chain hash.
CREATE TABLE evidence_parts (
    evidence_id  INTEGER NOT NULL REFERENCES evidence(id),
    seq          INTEGER NOT NULL,
    kind         TEXT NOT NULL CHECK (kind IN ('capture', 'screenshot')),
    url          TEXT NOT NULL,
    content_type TEXT NOT NULL,
    fetched_at   TEXT NOT NULL,
    body         BLOB NOT NULL,          -- zstd-compressed raw bytes as received
    body_len     INTEGER NOT NULL,
    body_sha256  TEXT NOT NULL,
    PRIMARY KEY (evidence_id, seq)
);
