-- The steps of a build's Containerfile as its worker reported them (buildah's
-- "STEP n/m"): steps is m, NULL until the first step; each step began at
-- started_at and took duration_ms, NULL while it runs. A step ends when the
-- next one begins, the last one when the build ends (committing, listing
-- the packages and pushing are part of it). The succeeded builds' durations
-- are what the ETA of the image's next builds is estimated from.
ALTER TABLE builds ADD COLUMN steps INTEGER;
CREATE TABLE build_steps (
	build_id    INTEGER NOT NULL REFERENCES builds(id) ON DELETE CASCADE,
	step        INTEGER NOT NULL CHECK (step >= 1),
	started_at  TEXT NOT NULL,
	duration_ms INTEGER,
	PRIMARY KEY (build_id, step)
) WITHOUT ROWID;
