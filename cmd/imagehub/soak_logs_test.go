package main

// The soak's builds and their log viewers (BenchmarkSoak in soak_test.go):
// a few build slots each rebuild their own image, one build after another,
// while the viewers follow the running builds over Server-Sent Events and
// check each log they saw, line for line, against the build's log file.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// soakBuild is one build of the soak.
type soakBuild struct {
	id int64
	// final is closed when the build has ended; then status and lines (its
	// whole log, one string per line; nil when it could not be read) are set.
	final  chan struct{}
	status string
	lines  []string
	took   time.Duration
}

// soakDriver starts the builds and keeps the list of running ones for the
// viewers. It is safe for concurrent use.
type soakDriver struct {
	s     *server
	base  string // the base image of the recipes
	stats *soakStats

	mu      sync.Mutex
	changed *sync.Cond
	live    map[int64]*soakBuild // started, not yet ended
	viewers map[int64]int        // viewers following each live build
	stopped bool                 // no more builds will start
	recent  []int64              // the latest builds, newest last
	ended   []*soakBuild

	// What the viewers saw.
	linesDelivered, watched, reconnects, refused int64
	lost, wrong, gaps                            int64
}

func newSoakDriver(s *server, base string, st *soakStats) *soakDriver {
	d := &soakDriver{s: s, base: base, stats: st, live: map[int64]*soakBuild{}, viewers: map[int64]int{}}
	d.changed = sync.NewCond(&d.mu)
	return d
}

// soakRecipe is the recipe of build n of a slot: the chatty stub prints its
// numbered lines, and the version makes each recipe new, so that each build
// runs its RUN step instead of being up to date.
func soakRecipe(base string, n int) map[string]string {
	return map[string]string{"baseImage": base, "apt": "chatty\nv" + strconv.Itoa(n)}
}

// call calls the JSON API with the admin token, recording the answer under
// family, and decodes a 2xx answer into out.
func (d *soakDriver) call(ctx context.Context, family, method, path string, body, out any) (int, []byte, error) {
	var r io.Reader
	if body != nil {
		raw, _ := json.Marshal(body)
		r = bytes.NewReader(raw)
	}
	req, _ := http.NewRequestWithContext(ctx, method, "http://"+d.s.addr+"/api/v1"+path, r)
	req.Header.Set("Authorization", "Bearer "+d.s.token)
	req.Header.Set("Content-Type", "application/json")
	start := time.Now()
	res, err := soakTransport.RoundTrip(req)
	if err != nil {
		if ctx.Err() == nil {
			d.stats.record(family, 0, time.Since(start))
		}
		return 0, nil, err
	}
	raw, err := io.ReadAll(res.Body)
	res.Body.Close()
	d.stats.record(family, res.StatusCode, time.Since(start))
	if err == nil && out != nil && res.StatusCode < 300 {
		err = json.Unmarshal(raw, out)
	}
	return res.StatusCode, raw, err
}

// runSlot follows the first build of its image to its end, then rebuilds the
// image with a new recipe, again and again until ctx ends.
func (d *soakDriver) runSlot(ctx context.Context, image string, first int64) {
	id := first
	for n := 1; ; n++ {
		b := d.start(id)
		d.follow(b)
		if ctx.Err() != nil {
			return
		}
		var next apiBuild
		code, raw, err := d.call(ctx, "driver: POST /api/v1/images/:name/rebuild", http.MethodPost, "/images/"+image+"/rebuild", soakRecipe(d.base, n), &next)
		if err != nil || code != http.StatusAccepted {
			if ctx.Err() == nil {
				d.stats.fail("rebuild %s: status %d %s %v", image, code, raw, err)
			}
			return
		}
		id = next.ID
	}
}

// start lists a build among the live ones.
func (d *soakDriver) start(id int64) *soakBuild {
	b := &soakBuild{id: id, final: make(chan struct{})}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.live[id] = b
	d.recent = append(d.recent, id)
	if len(d.recent) > 16 {
		d.recent = d.recent[1:]
	}
	d.changed.Broadcast()
	return b
}

// recentBuilds lists the latest builds, newest last.
func (d *soakDriver) recentBuilds() []int64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]int64(nil), d.recent...)
}

// follow polls a build until it has ended, then reads its whole log: the
// queue writes the last line before it records the final state, so the log
// is whole by then.
func (d *soakDriver) follow(b *soakBuild) {
	ctx := context.Background()
	started := time.Now()
	path := "/builds/" + strconv.FormatInt(b.id, 10)
	deadline := started.Add(10 * time.Minute)
	for {
		var got apiBuild
		code, raw, err := d.call(ctx, "driver: GET /api/v1/builds/:id", http.MethodGet, path, nil, &got)
		if err != nil || code != http.StatusOK {
			d.stats.fail("build %d: status %d %s %v", b.id, code, raw, err)
		} else if got.Status != "queued" && got.Status != "running" && got.Status != "pushing" {
			b.status = got.Status
			break
		}
		if time.Now().After(deadline) {
			d.stats.fail("build %d has not ended after 10 minutes", b.id)
			break
		}
		time.Sleep(250 * time.Millisecond)
	}
	b.took = time.Since(started)
	var raw []byte
	for attempt := 1; b.lines == nil && attempt <= 3; attempt++ {
		code, text, err := d.call(ctx, "driver: GET /api/v1/builds/:id/log", http.MethodGet, path+"/log", nil, nil)
		if err != nil || code != http.StatusOK {
			d.stats.fail("build %d's log: status %d %v", b.id, code, err)
			time.Sleep(time.Second)
			continue
		}
		raw, b.lines = text, strings.Split(strings.TrimSuffix(string(text), "\n"), "\n")
	}
	if b.status != "succeeded" {
		d.stats.fail("build %d ended %s; its log ends:\n%s", b.id, b.status, raw[max(0, len(raw)-2000):])
	}
	close(b.final)
	d.mu.Lock()
	defer d.mu.Unlock()
	delete(d.live, b.id)
	d.ended = append(d.ended, b)
	d.changed.Broadcast()
}

// stop says that no more builds will start; viewers end once they have
// seen every build still live.
func (d *soakDriver) stop() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.stopped = true
	d.changed.Broadcast()
}

// next picks the live build with the fewest viewers among those the viewer
// has not watched yet, waiting for one; nil when there will be none.
func (d *soakDriver) next(watched map[int64]bool) *soakBuild {
	d.mu.Lock()
	defer d.mu.Unlock()
	for {
		var best *soakBuild
		for id, b := range d.live {
			if !watched[id] && (best == nil || d.viewers[id] < d.viewers[best.id]) {
				best = b
			}
		}
		if best != nil {
			d.viewers[best.id]++
			return best
		}
		if d.stopped {
			return nil
		}
		d.changed.Wait()
	}
}

func (d *soakDriver) leave(b *soakBuild) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.viewers[b.id]--; d.viewers[b.id] <= 0 {
		delete(d.viewers, b.id)
	}
}

// view follows builds one after another as user u, each from its first
// line, until there are no more or ctx ends.
func (d *soakDriver) view(ctx context.Context, u *soakUser) {
	watched := map[int64]bool{}
	for ctx.Err() == nil {
		b := d.next(watched)
		if b == nil {
			return
		}
		watched[b.id] = true
		d.watch(ctx, u, b)
		d.leave(b)
	}
}

// soakEvent is one Server-Sent Event of a log stream.
type soakEvent struct {
	name string
	id   int64
	data string
}

// watch follows one build's log from its first line to its done event,
// reconnecting with Last-Event-ID as a browser does when the stream ends
// early, and checks what arrived against the build's log file.
func (d *soakDriver) watch(ctx context.Context, u *soakUser, b *soakBuild) {
	var got []string
	var last int64
	for attempt := 0; ; attempt++ {
		if ctx.Err() != nil {
			d.stats.fail("%s: build %d's log stream was still open when the soak gave up waiting", u.name, b.id)
			return
		}
		if attempt == 50 {
			d.stats.fail("%s gave up on build %d after 50 attempts", u.name, b.id)
			return
		}
		done, err := d.stream(ctx, u, b.id, last, func(ev soakEvent) {
			if ev.id != last+1 {
				d.count(&d.gaps, 1)
				d.stats.fail("build %d: %s got line %d after line %d", b.id, u.name, ev.id, last)
			}
			got = append(got, ev.data)
			last = ev.id
		})
		if done {
			break
		}
		if err != nil {
			time.Sleep(time.Second)
		} else { // dropped for falling behind: resume after the last line
			d.count(&d.reconnects, 1)
		}
	}
	select {
	case <-b.final:
	case <-ctx.Done():
		d.stats.fail("build %d: no final log after its done event", b.id)
		return
	}
	d.check(u, b, got)
}

// stream reads one connection's events into line until the done event
// (done true) or the end of the stream. A refusal (429, too many viewers)
// or a failed request is an error.
func (d *soakDriver) stream(ctx context.Context, u *soakUser, id, after int64, line func(soakEvent)) (done bool, err error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, u.base+"/api/v1/builds/"+strconv.FormatInt(id, 10)+"/log", nil)
	req.Header.Set("Accept", "text/event-stream")
	if after > 0 {
		req.Header.Set("Last-Event-ID", strconv.FormatInt(after, 10))
	}
	const family = "SSE /api/v1/builds/:id/log (to headers)"
	start := time.Now()
	res, err := u.http.Do(req)
	if err != nil {
		if ctx.Err() == nil {
			d.stats.record(family, 0, time.Since(start))
			d.stats.fail("%s: log stream of build %d: %v", u.name, id, err)
		}
		return false, err
	}
	defer res.Body.Close()
	d.stats.record(family, res.StatusCode, time.Since(start))
	switch {
	case res.StatusCode == http.StatusTooManyRequests:
		d.count(&d.refused, 1)
		return false, fmt.Errorf("refused")
	case res.StatusCode != http.StatusOK:
		msg, _ := io.ReadAll(res.Body)
		d.stats.fail("%s: log stream of build %d: status %d %s", u.name, id, res.StatusCode, bytes.TrimSpace(msg))
		return false, fmt.Errorf("status %d", res.StatusCode)
	}
	err = readEvents(res.Body, func(ev soakEvent) bool {
		if ev.name == "done" {
			done = true
			return false
		}
		if ev.id > 0 {
			line(ev)
		}
		return true
	})
	return done, err
}

// readEvents parses a text/event-stream, calling f with each event until f
// returns false or the stream ends. Data fields are joined with newlines, as
// a browser's EventSource does.
func readEvents(r io.Reader, f func(soakEvent) bool) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	var ev soakEvent
	var data []string
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			if data != nil {
				ev.data = strings.Join(data, "\n")
				if !f(ev) {
					return nil
				}
			}
			ev, data = soakEvent{}, nil
		case strings.HasPrefix(line, ":"):
		default:
			field, value, _ := strings.Cut(line, ":")
			value = strings.TrimPrefix(value, " ")
			switch field {
			case "event":
				ev.name = value
			case "id":
				ev.id, _ = strconv.ParseInt(value, 10, 64)
			case "data":
				data = append(data, value)
			}
		}
	}
	return sc.Err()
}

// check compares the lines a viewer got with the build's log file, where a
// carriage return inside a line arrives as a line break.
func (d *soakDriver) check(u *soakUser, b *soakBuild, got []string) {
	if b.lines == nil { // a failure already
		return
	}
	d.count(&d.watched, 1)
	d.count(&d.linesDelivered, int64(len(got)))
	var lost, wrong int
	for i, want := range b.lines {
		want = strings.ReplaceAll(want, "\r", "\n")
		switch {
		case i >= len(got):
			lost++
		case got[i] != want:
			wrong++
		}
	}
	wrong += max(0, len(got)-len(b.lines))
	if lost+wrong > 0 {
		d.count(&d.lost, int64(lost))
		d.count(&d.wrong, int64(wrong))
		d.stats.fail("build %d: %s got %d lines of %d: %d missing, %d wrong", b.id, u.name, len(got), len(b.lines), lost, wrong)
	}
}

func (d *soakDriver) count(n *int64, by int64) {
	d.mu.Lock()
	defer d.mu.Unlock()
	*n += by
}
