-- The digest of the base image a build was built on: the manifest its
-- worker inspected and pinned in FROM (or, for a build that found its
-- image up to date, the base's digest it checked). '' when the build never
-- looked (it failed first, or it ran before this migration).
ALTER TABLE builds ADD COLUMN base_digest TEXT NOT NULL DEFAULT '';
-- What the registry's reference of that base named when imagehub last
-- looked (the build itself, then the base checks of a succeeded build),
-- and when. The image whose current build this is has a base update
-- available when it differs from base_digest.
ALTER TABLE builds ADD COLUMN base_seen_digest TEXT NOT NULL DEFAULT '';
ALTER TABLE builds ADD COLUMN base_seen_at TEXT;
