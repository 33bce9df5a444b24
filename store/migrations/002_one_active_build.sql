-- One build of an image waits or runs at a time. The store checks it when it
-- queues a build, in the same transaction as the insert; this index makes it
-- a rule of the database too, whoever writes. The list of states is that of
-- BuildStatus.Active and of activeBuildCond in build.go.
--
-- Before this migration two rebuilds sent at the same moment could both be
-- queued. The older of such twins is cancelled here, so that the index can
-- be made; the newer one runs.
UPDATE builds
SET status = 'cancelled',
	error = 'cancelled: a newer build of the same image was queued at the same time',
	finished_at = strftime('%Y-%m-%dT%H:%M:%f000Z', 'now')
WHERE status IN ('queued', 'running', 'pushing')
	AND id NOT IN (SELECT MAX(id) FROM builds WHERE status IN ('queued', 'running', 'pushing') GROUP BY image_id);

CREATE UNIQUE INDEX builds_one_active ON builds(image_id) WHERE status IN ('queued', 'running', 'pushing');
