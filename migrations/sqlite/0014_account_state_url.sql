-- The page that put an account in its state: the login wall it met (expired) or the challenge
-- it was shown (challenged). `accounts login --resume` opens it for a person.
ALTER TABLE accounts ADD COLUMN state_url TEXT;
