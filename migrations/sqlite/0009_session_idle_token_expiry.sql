-- Review UI: sessions end after an idle time as well as at their absolute expiry, and API
-- tokens may expire. Both columns are NULL on older rows: a session's last use then counts
-- from its creation, and a token without expiry lives until revoked.

ALTER TABLE sessions ADD COLUMN last_seen_at TEXT;
ALTER TABLE api_tokens ADD COLUMN expires_at TEXT;
