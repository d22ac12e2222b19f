-- No query looks listings up by seller: relisting is judged in Rust over removed listings, and
-- the repeat-sellers report scans every listing with or without this index. Every crawl paid
-- for it on each listing stored.
DROP INDEX IF EXISTS listings_seller;
