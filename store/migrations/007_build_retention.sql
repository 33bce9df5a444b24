-- Only the newest builds of an image keep their log and their pushed tag
-- (--keep-builds). An older build stays in the history with the time those
-- were deleted; NULL: it still has them.
ALTER TABLE builds ADD COLUMN pruned_at TEXT;
