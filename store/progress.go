package store

import (
	"context"
	"database/sql"
	"errors"
	"math"
	"slices"
	"time"
)

// BuildProgress is how far a running build is: the step of its
// Containerfile that runs (buildah's "STEP n/m", reported by its worker) and
// how long the build should still take, by the step durations of the
// image's earlier successful builds (estimateLeft).
type BuildProgress struct {
	Step  int `json:"step"`
	Steps int `json:"steps"`
	// ETASeconds is the estimate in whole seconds, rounded up; nil when no
	// earlier successful build of the image ran as many steps.
	ETASeconds *int `json:"etaSeconds,omitempty"`
}

// MaxBuildSteps bounds the steps a build may report: a generated
// Containerfile has a handful.
const MaxBuildSteps = 1000

// etaBuilds is how many of an image's newest successful builds (of as many
// steps as the running one) its estimate is taken from.
const etaBuilds = 5

// RecordBuildStep records that a running build's worker began step (of
// steps) at the time at. A step ends when the next begins, the last when the
// build finishes (finishBuild). Steps come in order: a step that is not
// after the last one recorded, a count of steps other than the one recorded
// or out of 1..MaxBuildSteps is EINVALID; a build that does not run is
// ECONFLICT.
func (s *Store) RecordBuildStep(ctx context.Context, id int64, step, steps int, at time.Time) error {
	if step < 1 || step > steps || steps > MaxBuildSteps {
		return Errorf(EINVALID, "Step %d of %d is not a step of a build (at most %d).", step, steps, MaxBuildSteps)
	}
	return s.inTx(ctx, func(tx *sql.Tx) error {
		var (
			status BuildStatus
			known  sql.NullInt64
			last   int
		)
		err := tx.QueryRowContext(ctx, `SELECT status, steps, (SELECT COALESCE(MAX(step), 0) FROM build_steps WHERE build_id = b.id)
			FROM builds b WHERE id = ?`, id).Scan(&status, &known, &last)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			return Errorf(ENOTFOUND, "Build %d not found.", id)
		case err != nil:
			return err
		case status != BuildRunning && status != BuildPushing:
			return Errorf(ECONFLICT, "Build %d is not running (%s).", id, status)
		case known.Valid && known.Int64 != int64(steps):
			return Errorf(EINVALID, "Build %d has %d steps, not %d.", id, known.Int64, steps)
		case step <= last:
			return Errorf(EINVALID, "Build %d is at step %d already; step %d comes too late.", id, last, step)
		}
		if err := endStep(ctx, tx, id, at); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE builds SET steps = ? WHERE id = ?`, steps, id); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO build_steps (build_id, step, started_at) VALUES (?, ?, ?)`, id, step, formatTime(at))
		return err
	})
}

// endStep ends the step of build id that runs, if one does, at the time at.
func endStep(ctx context.Context, tx *sql.Tx, id int64, at time.Time) error {
	var step int
	var started string
	err := tx.QueryRowContext(ctx, `SELECT step, started_at FROM build_steps WHERE build_id = ? AND duration_ms IS NULL`, id).Scan(&step, &started)
	if errors.Is(err, sql.ErrNoRows) {
		return nil
	} else if err != nil {
		return err
	}
	took := max(at.Sub(parseTime(started)), 0)
	_, err = tx.ExecContext(ctx, `UPDATE build_steps SET duration_ms = ? WHERE build_id = ? AND step = ?`, took.Milliseconds(), id, step)
	return err
}

// addProgress gives each running build of bs its progress, as of now.
func (s *Store) addProgress(ctx context.Context, q querier, bs []*Build) error {
	for _, b := range bs {
		if b.Status != BuildRunning && b.Status != BuildPushing {
			continue
		}
		p, err := buildProgress(ctx, q, b.ID, s.now())
		if err != nil {
			return err
		}
		b.Progress = p
	}
	return nil
}

// buildProgress is the progress of running build id as of now: nil before
// its first step.
func buildProgress(ctx context.Context, q querier, id int64, now time.Time) (*BuildProgress, error) {
	rows, err := q.QueryContext(ctx, `SELECT b.steps, s.step, s.started_at FROM builds b JOIN build_steps s ON s.build_id = b.id
		WHERE b.id = ? ORDER BY s.step DESC LIMIT 1`, id)
	if err != nil {
		return nil, err
	}
	var p BuildProgress
	var started string
	found := rows.Next()
	if found {
		err = rows.Scan(&p.Steps, &p.Step, &started)
	}
	if err = errors.Join(err, rows.Close(), rows.Err()); err != nil || !found {
		return nil, err
	}
	history, err := stepHistory(ctx, q, id, p.Steps)
	if err != nil {
		return nil, err
	}
	if left, ok := estimateLeft(history, p.Step, now.Sub(parseTime(started))); ok {
		secs := int(math.Ceil(left.Seconds()))
		p.ETASeconds = &secs
	}
	return &p, nil
}

// stepHistory returns the step durations of the newest etaBuilds
// successful builds before build id of its image that ran steps steps and
// have the duration of each.
func stepHistory(ctx context.Context, q querier, id int64, steps int) ([][]time.Duration, error) {
	rows, err := q.QueryContext(ctx, `SELECT s.build_id, s.duration_ms FROM build_steps s WHERE s.build_id IN (
			SELECT e.id FROM builds e WHERE e.image_id = (SELECT image_id FROM builds WHERE id = ?) AND e.id < ?
				AND e.status = 'succeeded' AND e.steps = ?
				AND (SELECT COUNT(*) FROM build_steps t WHERE t.build_id = e.id AND t.duration_ms IS NOT NULL) = e.steps
			ORDER BY e.id DESC LIMIT ?)
		ORDER BY s.build_id, s.step`, id, id, steps, etaBuilds)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var history [][]time.Duration
	last := int64(0)
	for rows.Next() {
		var build, ms int64
		if err := rows.Scan(&build, &ms); err != nil {
			return nil, err
		}
		if build != last {
			history = append(history, make([]time.Duration, 0, steps))
			last = build
		}
		h := &history[len(history)-1]
		*h = append(*h, time.Duration(ms)*time.Millisecond)
	}
	return history, rows.Err()
}

// estimateLeft estimates how long a build at step (counted from 1) that has
// run for elapsed in that step still takes, from history, the step
// durations of earlier builds of as many steps: for each step, the median
// of its earlier durations (one slow build, with a cold cache, does not
// move it much); the current step's median less elapsed, never below zero,
// plus the medians of the steps after it. No history, no estimate.
func estimateLeft(history [][]time.Duration, step int, elapsed time.Duration) (time.Duration, bool) {
	if len(history) == 0 {
		return 0, false
	}
	var left time.Duration
	for i := max(step-1, 0); i < len(history[0]); i++ {
		d := medianStep(history, i)
		if i == step-1 {
			d = max(d-elapsed, 0)
		}
		left += d
	}
	return left, true
}

// medianStep is the median of the i-th durations of history, the mean of
// the middle two when there are as many above as below.
func medianStep(history [][]time.Duration, i int) time.Duration {
	ds := make([]time.Duration, 0, len(history))
	for _, h := range history {
		if i < len(h) {
			ds = append(ds, h[i])
		}
	}
	if len(ds) == 0 {
		return 0
	}
	slices.Sort(ds)
	mid := len(ds) / 2
	if len(ds)%2 == 0 {
		return (ds[mid-1] + ds[mid]) / 2
	}
	return ds[mid]
}
