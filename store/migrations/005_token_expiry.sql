-- An API token may carry an expiry (NULL: never); from then on it is refused.
ALTER TABLE tokens ADD COLUMN expires_at TEXT;
