-- Build ids are never reused. Without AUTOINCREMENT, SQLite gives a new row
-- the largest id in the table plus one, so after the newest builds were
-- deleted (with their image) a new build took an old build's id, and with it
-- the old build's log folder. SQLite cannot add AUTOINCREMENT to a column, so
-- the table is made again with it and the rows copied, ids included; the
-- indexes of 001 and 002 are made again on the new table.
CREATE TABLE builds_autoincrement (
	id           INTEGER PRIMARY KEY AUTOINCREMENT,
	image_id     INTEGER NOT NULL REFERENCES images(id) ON DELETE CASCADE,
	status       TEXT NOT NULL,
	recipe       TEXT NOT NULL,
	target_image TEXT NOT NULL DEFAULT '',
	digest       TEXT NOT NULL DEFAULT '',
	error        TEXT NOT NULL DEFAULT '',
	created_at   TEXT NOT NULL,
	started_at   TEXT,
	finished_at  TEXT
);
INSERT INTO builds_autoincrement (id, image_id, status, recipe, target_image, digest, error, created_at, started_at, finished_at)
	SELECT id, image_id, status, recipe, target_image, digest, error, created_at, started_at, finished_at FROM builds;
DROP TABLE builds;
ALTER TABLE builds_autoincrement RENAME TO builds;

CREATE INDEX builds_image ON builds(image_id, id);
CREATE INDEX builds_status ON builds(status, id);
CREATE UNIQUE INDEX builds_one_active ON builds(image_id) WHERE status IN ('queued', 'running', 'pushing');

-- The next id follows the largest one kept. (Ids deleted before this
-- migration are not known; the server removes log folders that belong to no
-- build at start-up, so none of them can be shown as a new build's log.)
DELETE FROM sqlite_sequence WHERE name = 'builds';
INSERT INTO sqlite_sequence (name, seq) SELECT 'builds', COALESCE(MAX(id), 0) FROM builds;
