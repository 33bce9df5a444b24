-- "system" is the owner of the administrators' images, and a reserved group
-- name since this migration (store/group.go). A group that had that name was
-- taken for that owner: its own images showed as System images, and its
-- group admins could manage the System images. Such a group keeps its id,
-- members, grants and own images under a name of its own.
UPDATE groups SET name = 'system-group-' || id WHERE name = 'system';
