-- The .CN domain watch: the domain names each brand holds (never candidates), and every
-- candidate found registered, with its DNS records and when it was first and last seen.
CREATE TABLE brand_domains (
    brand_id INTEGER NOT NULL REFERENCES brands(id) ON DELETE CASCADE,
    position INTEGER NOT NULL,
    domain   TEXT NOT NULL,
    PRIMARY KEY (brand_id, position)
);

CREATE TABLE domain_names (
    id            INTEGER PRIMARY KEY,
    domain        TEXT NOT NULL UNIQUE,          -- as DNS carries it (punycode)
    display       TEXT NOT NULL,                 -- as people read it (耐克.中国)
    brand_id      INTEGER NOT NULL REFERENCES brands(id),
    rule          TEXT NOT NULL,                 -- how the candidate was made
    source        TEXT NOT NULL,                 -- the mark or name it came from
    -- web: answers A/AAAA; mail_only: MX and no address; parked: NS only; gone: NXDOMAIN since
    state         TEXT NOT NULL CHECK (state IN ('web', 'mail_only', 'parked', 'gone')),
    records       TEXT NOT NULL,                 -- JSON: {"a": [...], "aaaa": [...], "mx": [...], "ns": [...]}
    first_seen    TEXT NOT NULL,
    last_seen     TEXT NOT NULL,                 -- last run that found it registered
    last_checked  TEXT NOT NULL,
    listing_id    INTEGER REFERENCES listings(id),  -- its home page, judged as a listing
    registered_on TEXT,                          -- from WHOIS, entered by a person
    registrant    TEXT
);
CREATE INDEX domain_names_brand ON domain_names (brand_id, first_seen);
