CREATE TABLE users (
	id            INTEGER PRIMARY KEY,
	username      TEXT NOT NULL UNIQUE,
	password_hash TEXT NOT NULL,
	admin         INTEGER NOT NULL DEFAULT 0,
	-- session_epoch grows on every password change; sessions carry the epoch
	-- they were made in, so a change ends every older session.
	session_epoch INTEGER NOT NULL DEFAULT 0,
	created_at    TEXT NOT NULL
);

CREATE TABLE groups (
	id           INTEGER PRIMARY KEY,
	name         TEXT NOT NULL UNIQUE,
	display_name TEXT NOT NULL DEFAULT '',
	created_at   TEXT NOT NULL
);

CREATE TABLE memberships (
	group_id INTEGER NOT NULL REFERENCES groups(id) ON DELETE CASCADE,
	user_id  INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
	role     TEXT NOT NULL CHECK (role IN ('member', 'admin')),
	PRIMARY KEY (group_id, user_id)
);

CREATE TABLE secrets (
	id            INTEGER PRIMARY KEY,
	name          TEXT NOT NULL UNIQUE,
	registry_host TEXT NOT NULL,
	username      TEXT NOT NULL,
	-- AES-GCM: nonce || ciphertext, never the plain password.
	password_enc  BLOB NOT NULL,
	created_at    TEXT NOT NULL
);

CREATE TABLE images (
	id           INTEGER PRIMARY KEY,
	name         TEXT NOT NULL UNIQUE,
	display_name TEXT NOT NULL,
	description  TEXT NOT NULL DEFAULT '',
	type         TEXT NOT NULL CHECK (type IN ('cpu', 'gpu', 'universal')),
	url          TEXT NOT NULL DEFAULT '',
	url_for_gpu  TEXT NOT NULL DEFAULT '',
	use_gpu_url  INTEGER NOT NULL DEFAULT 0,
	-- RESTRICT: a secret in use cannot vanish from under an image.
	secret_id    INTEGER REFERENCES secrets(id) ON DELETE RESTRICT,
	global       INTEGER NOT NULL DEFAULT 0,
	-- NULL: a system image; else the group that owns it.
	owner_group  INTEGER REFERENCES groups(id) ON DELETE CASCADE,
	recipe       TEXT,
	created_at   TEXT NOT NULL,
	updated_at   TEXT NOT NULL
);
CREATE INDEX images_owner ON images(owner_group);

CREATE TABLE image_groups (
	image_id INTEGER NOT NULL REFERENCES images(id) ON DELETE CASCADE,
	group_id INTEGER NOT NULL REFERENCES groups(id) ON DELETE CASCADE,
	PRIMARY KEY (image_id, group_id)
);
CREATE INDEX image_groups_group ON image_groups(group_id);

CREATE TABLE tokens (
	id          INTEGER PRIMARY KEY,
	user_id     INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
	name        TEXT NOT NULL DEFAULT '',
	-- sha256 of the token; the token itself is shown once and never stored.
	hash        TEXT NOT NULL UNIQUE,
	scope       TEXT NOT NULL CHECK (scope IN ('read', 'admin')),
	created_at  TEXT NOT NULL,
	last_used   TEXT
);

CREATE TABLE builds (
	id           INTEGER PRIMARY KEY,
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
CREATE INDEX builds_image ON builds(image_id, id);
CREATE INDEX builds_status ON builds(status, id);
