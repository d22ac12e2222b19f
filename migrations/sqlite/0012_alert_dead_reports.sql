-- Operators hear about alerts given up on in one operations email per incident, not one per
-- alert. `dead_at`: when the alert was given up on. `dead_reported`: 0 while operators have not
-- been told; rows that died before this migration were reported one by one, so they start at 1.
ALTER TABLE alerts ADD COLUMN dead_at TEXT;
ALTER TABLE alerts ADD COLUMN dead_reported INTEGER NOT NULL DEFAULT 1;
CREATE INDEX alerts_dead_unreported ON alerts (dead_at) WHERE dead_reported = 0;
