-- Settings an administrator changes on the Settings page, a row each (the
-- package mirrors and their secrets). No row, or an empty value, means the
-- value of the server's flag.
CREATE TABLE settings (
	name  TEXT PRIMARY KEY,
	value TEXT NOT NULL
);
