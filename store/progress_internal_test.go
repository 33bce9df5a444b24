package store

import (
	"context"
	"strings"
	"testing"
	"time"
)

// TestEstimateLeft: the current step's median less the time it has run,
// never below zero, plus the medians of the steps after it; each step's
// median over the earlier builds (the mean of the middle two for an even
// count), so one slow build moves it little.
func TestEstimateLeft(t *testing.T) {
	s := time.Second
	three := [][]time.Duration{
		{10 * s, 20 * s, 30 * s, 5 * s},
		{12 * s, 22 * s, 300 * s, 5 * s}, // a cold cache in step 3
		{11 * s, 21 * s, 32 * s, 7 * s},
	}
	two := three[:2]
	for _, c := range []struct {
		name    string
		history [][]time.Duration
		step    int
		elapsed time.Duration
		want    time.Duration
		ok      bool
	}{
		{"no earlier build", nil, 2, 0, 0, false},
		{"first step, just begun", three, 1, 0, (11 + 21 + 32 + 5) * s, true},
		{"step 2, 5 s in", three, 2, 5 * s, (21 - 5 + 32 + 5) * s, true},
		{"step 2, past its median", three, 2, time.Minute, (32 + 5) * s, true},
		{"last step, past its median", three, 4, time.Minute, 0, true},
		{"two builds: the middle two's mean", two, 3, 0, (165 + 5) * s, true},
		{"one build", three[:1], 4, 2 * s, 3 * s, true},
	} {
		got, ok := estimateLeft(c.history, c.step, c.elapsed)
		if got != c.want || ok != c.ok {
			t.Errorf("%s: %v, %v; want %v, %v", c.name, got, ok, c.want, c.ok)
		}
	}
}

// TestBuildProgress: a running build's JSON progress is its last step with
// an ETA from the image's earlier successful builds of as many steps
// (failed ones and other step counts do not count); none before the first
// step, none once it finished, and steps out of order are refused.
func TestBuildProgress(t *testing.T) {
	s, _ := openInternal(t)
	ctx := context.Background()
	clock := time.Date(2026, 11, 29, 6, 0, 0, 0, time.UTC)
	s.now = func() time.Time { return clock }
	r := createSci(t, s)
	digest := "sha256:" + strings.Repeat("a", 64)
	// build runs steps of these durations (in seconds), then ends as final.
	build := func(durations []int, final BuildStatus) int64 {
		t.Helper()
		b, err := s.CreateBuild(ctx, "sci", r, "reg/imagehub/sci:t")
		must(t, err)
		must(t, s.StartBuild(ctx, b.ID))
		for i, d := range durations {
			must(t, s.RecordBuildStep(ctx, b.ID, i+1, len(durations), clock))
			clock = clock.Add(time.Duration(d) * time.Second)
		}
		if final == BuildSucceeded {
			must(t, s.SucceedBuild(ctx, b.ID, digest, nil))
		} else {
			must(t, s.FinishBuild(ctx, b.ID, final, "", "broken"))
		}
		return b.ID
	}
	progress := func(id int64) *BuildProgress {
		t.Helper()
		b, err := s.FindBuild(ctx, id)
		must(t, err)
		return b.Progress
	}

	first := build([]int{10, 20, 30, 40}, BuildSucceeded)
	if p := progress(first); p != nil {
		t.Errorf("a finished build has progress %+v", *p)
	}
	b, err := s.CreateBuild(ctx, "sci", r, "reg/imagehub/sci:t")
	must(t, err)
	must(t, s.StartBuild(ctx, b.ID))
	if p := progress(b.ID); p != nil {
		t.Errorf("a build before its first step has progress %+v", *p)
	}
	must(t, s.RecordBuildStep(ctx, b.ID, 1, 4, clock))
	clock = clock.Add(3 * time.Second)
	if p := progress(b.ID); p == nil || p.Step != 1 || p.Steps != 4 || p.ETASeconds == nil || *p.ETASeconds != 97 {
		t.Errorf("after one earlier build, 3 s into step 1: %+v, want step 1 of 4 and 97 s left", p)
	}
	must(t, s.FinishBuild(ctx, b.ID, BuildFailed, "", "broken"))
	build([]int{1, 1, 1, 1}, BuildFailed)
	build([]int{5, 5, 5}, BuildSucceeded)
	build([]int{20, 40, 50, 60}, BuildSucceeded)
	next, err := s.CreateBuild(ctx, "sci", r, "reg/imagehub/sci:t")
	must(t, err)
	third := next.ID
	must(t, s.StartBuild(ctx, third))
	must(t, s.RecordBuildStep(ctx, third, 1, 4, clock))
	clock = clock.Add(7 * time.Second)
	must(t, s.RecordBuildStep(ctx, third, 2, 4, clock))
	clock = clock.Add(5 * time.Second)
	// Step 2's median (20+40)/2 = 30 less 5, then 40 and 50.
	p := progress(third)
	if p == nil || p.Step != 2 || p.Steps != 4 || p.ETASeconds == nil || *p.ETASeconds != 25+40+50 {
		t.Errorf("the third build, 5 s into step 2: %+v, want step 2 of 4 and 115 s left", p)
	}
	bs, err := s.ListBuilds(ctx, "sci")
	must(t, err)
	active, err := s.ActiveBuilds(ctx, "sci")
	must(t, err)
	if bs[0].Progress == nil || *bs[0].Progress.ETASeconds != 115 || active["sci"].Progress == nil || active["sci"].Progress.Step != 2 {
		t.Errorf("ListBuilds and ActiveBuilds do not carry the progress: %+v, %+v", bs[0].Progress, active["sci"].Progress)
	}

	for _, c := range []struct {
		step, steps int
		code        string
	}{{2, 4, EINVALID}, {1, 4, EINVALID}, {3, 5, EINVALID}, {5, 4, EINVALID}, {0, 4, EINVALID}, {2, MaxBuildSteps + 1, EINVALID}} {
		if err := s.RecordBuildStep(ctx, third, c.step, c.steps, clock); ErrorCode(err) != c.code {
			t.Errorf("step %d of %d: %v, want %s", c.step, c.steps, err, c.code)
		}
	}
	must(t, s.FinishBuild(ctx, third, BuildCancelled, "", "cancelled"))
	if err := s.RecordBuildStep(ctx, third, 3, 4, clock); ErrorCode(err) != ECONFLICT {
		t.Errorf("a step of a finished build: %v, want ECONFLICT", err)
	}
}

// TestBuildProgressNewestBuilds: the ETA comes from the image's newest
// etaBuilds successful builds only: of six one-step builds of 100, 100,
// 100, 10, 10 and 10 s, the newest five's median is 10 s (all six's would
// be 55 s).
func TestBuildProgressNewestBuilds(t *testing.T) {
	s, _ := openInternal(t)
	ctx := context.Background()
	clock := time.Date(2026, 11, 29, 6, 0, 0, 0, time.UTC)
	s.now = func() time.Time { return clock }
	r := createSci(t, s)
	start := func() int64 {
		b, err := s.CreateBuild(ctx, "sci", r, "reg/imagehub/sci:t")
		must(t, err)
		must(t, s.StartBuild(ctx, b.ID))
		must(t, s.RecordBuildStep(ctx, b.ID, 1, 1, clock))
		return b.ID
	}
	for _, secs := range []int{100, 100, 100, 10, 10, 10} {
		id := start()
		clock = clock.Add(time.Duration(secs) * time.Second)
		must(t, s.SucceedBuild(ctx, id, "sha256:"+strings.Repeat("a", 64), nil))
	}
	b, err := s.FindBuild(ctx, start())
	must(t, err)
	if p := b.Progress; p == nil || p.ETASeconds == nil || *p.ETASeconds != 10 {
		t.Errorf("progress %+v, want 10 s left (the newest five builds' median)", p)
	}
}
