-- What the image of a succeeded build holds, as its worker read it from the
-- image's files (dpkg's status, Python's dist-info folders, conda-meta). A
-- build has a list when it has a package_lists row, empty or not; without
-- one it has none (it did not succeed, it was built before this migration,
-- or its image could not be read).
CREATE TABLE package_lists (
	build_id INTEGER PRIMARY KEY REFERENCES builds(id) ON DELETE CASCADE,
	total    INTEGER NOT NULL
);
CREATE TABLE packages (
	build_id INTEGER NOT NULL REFERENCES package_lists(build_id) ON DELETE CASCADE,
	manager  TEXT NOT NULL CHECK (manager IN ('apt', 'pip', 'conda')),
	name     TEXT NOT NULL,
	version  TEXT NOT NULL,
	PRIMARY KEY (build_id, manager, name)
) WITHOUT ROWID;
