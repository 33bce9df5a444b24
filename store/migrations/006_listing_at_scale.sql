-- Listing and searching 10,000 images (store/catalogue.go).
--
-- The catalogue of images and groups is kept in memory. catalogue_version
-- counts the changes to what it holds (the images, the groups they are
-- granted to, the groups, the names of secrets), whoever makes them: the
-- server, or another imagehub process such as base-images. A listing that reads
-- another version than the one in memory loads the catalogue again.
CREATE TABLE catalogue_version (v INTEGER NOT NULL);
INSERT INTO catalogue_version (v) VALUES (1);

CREATE TRIGGER catalogue_image_insert AFTER INSERT ON images
BEGIN UPDATE catalogue_version SET v = v + 1; END;
CREATE TRIGGER catalogue_image_update AFTER UPDATE ON images
BEGIN UPDATE catalogue_version SET v = v + 1; END;
CREATE TRIGGER catalogue_image_delete AFTER DELETE ON images
BEGIN UPDATE catalogue_version SET v = v + 1; END;

CREATE TRIGGER catalogue_grant_insert AFTER INSERT ON image_groups
BEGIN UPDATE catalogue_version SET v = v + 1; END;
CREATE TRIGGER catalogue_grant_update AFTER UPDATE ON image_groups
BEGIN UPDATE catalogue_version SET v = v + 1; END;
CREATE TRIGGER catalogue_grant_delete AFTER DELETE ON image_groups
BEGIN UPDATE catalogue_version SET v = v + 1; END;

CREATE TRIGGER catalogue_group_insert AFTER INSERT ON groups
BEGIN UPDATE catalogue_version SET v = v + 1; END;
CREATE TRIGGER catalogue_group_rename AFTER UPDATE OF name ON groups
BEGIN UPDATE catalogue_version SET v = v + 1; END;
CREATE TRIGGER catalogue_group_delete AFTER DELETE ON groups
BEGIN UPDATE catalogue_version SET v = v + 1; END;

CREATE TRIGGER catalogue_secret_rename AFTER UPDATE OF name ON secrets
BEGIN UPDATE catalogue_version SET v = v + 1; END;

-- The images table's order, in which the catalogue is read.
CREATE INDEX images_display_name ON images(display_name, name);

-- A user's groups (the key of memberships starts with the group).
CREATE INDEX memberships_user ON memberships(user_id);
