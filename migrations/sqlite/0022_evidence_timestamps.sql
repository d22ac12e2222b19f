-- Trusted timestamps (issue 23): RFC 3161 tokens over the evidence chain's head. A token whose
-- imprint is record N's chain hash proves, at the TSA's time, every record up to N.
CREATE TABLE evidence_timestamps (
    id          INTEGER PRIMARY KEY,
    -- The last record the token covers; its chain hash is the token's message imprint.
    evidence_id INTEGER NOT NULL REFERENCES evidence(id),
    chain_hash  TEXT NOT NULL,
    tsa_url     TEXT NOT NULL,
    -- The TSA's time (genTime), RFC 3339 UTC, and the subject of the certificate that signed.
    gen_time    TEXT NOT NULL,
    tsa_name    TEXT NOT NULL,
    -- The TimeStampResp as received (DER): `openssl ts -verify -in` reads it as it is.
    reply       BLOB NOT NULL,
    stamped_at  TEXT NOT NULL
);
CREATE INDEX evidence_timestamps_by_record ON evidence_timestamps (evidence_id);

-- The platform account whose session fetched a record: named in reports, never drawn into
-- the screenshot. Not part of the chain link (links of earlier records stay as they are).
ALTER TABLE evidence ADD COLUMN account TEXT;
