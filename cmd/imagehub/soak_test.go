package main

// The soak: the real server under the load of a busy installation for
// minutes. Its users and figures are in soak_load_test.go, its builds and
// log viewers in soak_logs_test.go.

import (
	"cmp"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"imagehub/buildah/buildtest"
)

var soakDuration = flag.Duration("soak-duration", 5*time.Minute, "how long BenchmarkSoak's full load runs")

// The soak's installation and load.
const (
	soakUsers  = 50
	soakAdmins = 10 // users 0 to 9 are administrators; they also watch the logs
	soakGroups = 10 // user 10+g is group g's group admin; the others are members of two groups
	// soakGroupImages are each group's own images, soakSystemImages the
	// System images, a fifth of them global and the others selected by two
	// groups each.
	soakGroupImages  = 20
	soakSystemImages = 200
	soakBuildSlots   = 4
	soakViewers      = 200
	// soakRunLines is how many numbered lines the RUN step of a soak build
	// prints (the "chatty" stub of apt-get in the test base image).
	soakRunLines = 600
	soakPassword = "soak-password-0123"
	// soakWarmup is how long the idle baseline runs, and how long the soak
	// runs before the server's resident set is taken as its start (at most
	// half the soak).
	soakWarmup = 30 * time.Second
	// soakSampleEvery is how often the server's memory is sampled.
	soakSampleEvery = 10 * time.Second
	// soakMaxRSSGrowth is the most the resident set may grow from the end of
	// the warm-up to the end of the soak.
	soakMaxRSSGrowth = 0.10
)

// soakServerArgs are the server's flags for the soak. The live log streams
// are bounded per build and per user (20 and 10 by default); the soak's 200
// viewers are its 10 administrators with 20 streams each, all of them on one
// build at times, so both bounds are raised, with room for a stream that a
// viewer left and the server has not yet let go.
var soakServerArgs = []string{
	"--build-concurrency", fmt.Sprint(soakBuildSlots),
	"--log-viewers-per-build", fmt.Sprint(soakViewers + 50),
	"--log-viewers-per-user", fmt.Sprint(2 * soakViewers / soakAdmins),
}

// BenchmarkSoak runs `imagehub serve` (--build-concurrency 4) with 400
// images for -soak-duration (5 minutes in `make bench`) under the load of a
// busy installation: 50 users signed in through the sign-in form browse
// their pages and the API with think times of 100 to 400 ms; 4 builds run at
// all times, each image of a slot rebuilt with a new recipe as soon as its
// build ends (a busybox base whose stub apt-get prints 600 numbered lines in
// bursts over 6 s); 200 log viewers follow the running builds over SSE, each
// build from its first line, and move on to the next one.
//
// It fails on any answer of 500 or more (or none at all), on a log line that
// a viewer missed or got wrong or out of order, compared with the build's
// log file once it ended, on an ERROR in the server's log, on a log stream
// the server still counts when every viewer has left, and when the server's
// resident set (VmRSS, sampled every 10 s) grew by 10% or more from the end
// of the warm-up (30 s) to the end. Before the soak the same users browse
// the idle server for 30 s: the latencies are also given as ratios to it.
// It runs once whatever b.N is; it needs root, as the builds do.
func BenchmarkSoak(b *testing.B) {
	if testing.Short() {
		b.Skip("the soak runs for minutes")
	}
	needRoot(b)
	duration := *soakDuration
	warmup := min(soakWarmup, duration/2)
	s := &server{t: b, data: filepath.Join(buildtest.TraversableDir(b), "data"), addr: freeAddr(b), regAdr: freeAddr(b), args: soakServerArgs}
	s.start()
	base := pushBase(b, s)
	setup := time.Now()
	site, users := seedSoak(b, s)
	for _, u := range users {
		if err := u.signIn(soakPassword); err != nil {
			b.Fatal(err)
		}
	}
	soakf("%d groups, %d users signed in, %d images in %.1fs (not measured)", soakGroups, soakUsers,
		soakGroups*soakGroupImages+soakSystemImages, time.Since(setup).Seconds())

	// The baseline: the same users browsing an idle server, for the ratios.
	idle := newSoakStats()
	site.builds = func() []int64 { return nil }
	ctx, cancel := context.WithTimeout(context.Background(), warmup)
	browseAll(ctx, users, site, idle)
	cancel()

	st := newSoakStats()
	d := newSoakDriver(s, base, st)
	site.builds = d.recentBuilds
	start := time.Now()
	ctx, cancel = context.WithTimeout(context.Background(), duration)
	defer cancel()
	samples := make(chan []memSample, 1)
	go func() { samples <- sampleMemoryEvery(ctx, s, start, soakSampleEvery, st) }()
	var slots sync.WaitGroup
	for k := range soakBuildSlots {
		name := fmt.Sprintf("soak-build-%d", k)
		first := s.createCustomImage(name, soakRecipe(base, 0))
		slots.Go(func() { d.runSlot(ctx, name, first.ID) })
	}
	viewCtx, stopViewers := context.WithCancel(context.Background())
	defer stopViewers()
	var viewers sync.WaitGroup
	for i := range soakViewers {
		u := users[i%soakAdmins]
		viewers.Go(func() { d.view(viewCtx, u) })
	}
	browseAll(ctx, users, site, st)
	mem := <-samples

	// The builds under way finish, and their viewers check them.
	drain := time.Now()
	slots.Wait()
	d.stop()
	if !waitGroupFor(&viewers, 5*time.Minute) {
		st.fail("the log viewers had not finished 5 minutes after the last build")
		stopViewers()
		viewers.Wait()
	}
	soakf("the last builds and their viewers finished %.1fs after the soak", time.Since(drain).Seconds())
	if open := openStreams(s, 10*time.Second); open != 0 {
		st.fail("the server still counts %v open log streams 10 s after the last viewer left", open)
	}

	report(b, duration, warmup, idle, st, d, mem)
	if errs := errorSummary(s.out.String()); errs != "" {
		soakf("the server's errors:\n%s", errs)
		st.fail("the server logged errors")
	}
	if st.nFailures > 0 {
		b.Fatalf("%d problems, the first ones:\n%s", st.nFailures, strings.Join(st.failures, "\n"))
	}
}

// seedSoak makes the soak's groups, users and images through the API, and
// returns the users, not yet signed in, with what they may browse.
func seedSoak(b *testing.B, s *server) (*soakSite, []*soakUser) {
	site := &soakSite{groupImages: map[string][]string{}}
	var users []*soakUser
	group := func(g int) string { return fmt.Sprintf("team-%d", g%soakGroups) }
	// call calls the API and answers the name in the answer.
	call := func(method, path string, body any, want int) string {
		var raw json.RawMessage
		if code := s.api(method, path, body, &raw); code != want {
			b.Fatalf("%s %s %v: status %d, want %d: %s", method, path, body, code, want, raw)
		}
		var named struct{ Name string }
		json.Unmarshal(raw, &named)
		return named.Name
	}
	for g := range soakGroups {
		call("POST", "/groups", map[string]string{"name": group(g), "displayName": fmt.Sprintf("Team %d", g)}, http.StatusCreated)
	}
	for i := range soakUsers {
		u := newSoakUser("http://"+s.addr, fmt.Sprintf("soak-user-%02d", i))
		u.admin = i < soakAdmins
		call("POST", "/users", map[string]any{"username": u.name, "password": soakPassword, "admin": u.admin}, http.StatusCreated)
		roles := map[string]string{}
		switch {
		case u.admin:
		case i < soakAdmins+soakGroups:
			u.adminOf = group(i)
			roles[group(i)], roles[group(i+1)] = "admin", "member"
		default:
			roles[group(i)], roles[group(i+3)] = "member", "member"
		}
		for g, role := range roles {
			call("PUT", "/groups/"+g+"/members/"+u.name, map[string]string{"role": role}, http.StatusOK)
			u.groups = append(u.groups, g)
		}
		users = append(users, u)
	}
	for g := range soakGroups {
		for j := range soakGroupImages {
			name := call("POST", "/groups/"+group(g)+"/images", map[string]any{
				"displayName": fmt.Sprintf("soak-g%d-image-%d", g, j), "type": "cpu", "url": fmt.Sprintf("docker.io/library/busybox:1.%d", j),
			}, http.StatusCreated)
			site.groupImages[group(g)] = append(site.groupImages[group(g)], name)
		}
	}
	for j := range soakSystemImages {
		body := map[string]any{"displayName": fmt.Sprintf("soak-system-image-%d", j), "type": "cpu", "url": fmt.Sprintf("docker.io/library/debian:%d", j)}
		if j%5 == 0 {
			body["global"] = true
		} else {
			body["groups"] = []string{group(j), group(j + 1)}
		}
		site.systemImages = append(site.systemImages, call("POST", "/images", body, http.StatusCreated))
	}
	site.adminPages = (soakGroups*soakGroupImages + soakSystemImages) / 20
	return site, users
}

// browseAll runs every user's browsing until ctx ends.
func browseAll(ctx context.Context, users []*soakUser, site *soakSite, st *soakStats) {
	var wg sync.WaitGroup
	for i, u := range users {
		wg.Go(func() { u.browse(ctx, site, st, uint64(i)) })
	}
	wg.Wait()
}

// waitGroupFor waits for wg at most d, and reports whether it finished.
func waitGroupFor(wg *sync.WaitGroup, d time.Duration) bool {
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
		return true
	case <-time.After(d):
		return false
	}
}

// openStreams waits up to d for the server's count of open log streams to
// fall to zero, and returns the last count (-1 when it cannot be read).
func openStreams(s *server, d time.Duration) float64 {
	deadline := time.Now().Add(d)
	for {
		g, err := scrapeGauges("http://"+s.addr, s.token, "imagehub_log_viewers")
		n, ok := g["imagehub_log_viewers"]
		if err != nil || !ok {
			n = -1
		}
		if n == 0 || time.Now().After(deadline) {
			return n
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// errorSummary groups the server's ERROR lines by message and error, each
// with its count and its first line.
func errorSummary(out string) string {
	var keys []string
	first, count := map[string]string{}, map[string]int{}
	for _, line := range strings.Split(out, "\n") {
		if !strings.Contains(line, "level=ERROR") {
			continue
		}
		key := serverLogField(line, "msg") + ": " + serverLogField(line, "err")
		if count[key]++; count[key] == 1 {
			keys = append(keys, key)
			first[key] = line
		}
	}
	var b strings.Builder
	for _, key := range keys {
		fmt.Fprintf(&b, "%d× %s\n    %s\n", count[key], key, first[key])
	}
	return b.String()
}

// serverLogField reads one field of a line of the server's text log.
func serverLogField(line, name string) string {
	_, rest, ok := strings.Cut(line, " "+name+"=")
	if !ok {
		return ""
	}
	if strings.HasPrefix(rest, `"`) {
		if v, err := strconv.QuotedPrefix(rest); err == nil {
			u, _ := strconv.Unquote(v)
			return u
		}
	}
	v, _, _ := strings.Cut(rest, " ")
	return v
}

// report logs the soak's figures and reports the main ones as the
// benchmark's metrics; a resident set that grew too much is a failure.
func report(b *testing.B, duration, warmup time.Duration, idle, st *soakStats, d *soakDriver, mem []memSample) {
	const browsing = "GET /"
	soakf("%-42s %8s %7s %7s %8s %6s  %s", "route family", "requests", "p50 ms", "p95 ms", "idle p95", "ratio", "statuses")
	for _, name := range st.names() {
		n, p50, p95 := st.family(name)
		_, _, idle95 := idle.family(name)
		ratio := "-"
		if idle95 > 0 {
			ratio = fmt.Sprintf("%.2f", p95.Seconds()/idle95.Seconds())
		}
		soakf("%-42s %8d %7.1f %7.1f %8.1f %6s  %s", name, n, ms(p50), ms(p95), ms(idle95), ratio, st.statusText(name))
	}
	pages, _, p95 := st.overall(browsing)
	_, _, idle95 := idle.overall(browsing)
	all, server, _ := st.overall("")
	rate := float64(pages) / duration.Seconds()
	soakf("browsing: %d requests in %s, %.1f req/s, p95 %.1f ms (idle %.1f ms, ratio %.2f); %d answers in all, %d of them 5xx",
		pages, duration, rate, ms(p95), ms(idle95), p95.Seconds()/idle95.Seconds(), all, server)

	d.mu.Lock()
	statuses := map[string]int{}
	var took []time.Duration
	for _, bd := range d.ended {
		statuses[bd.status]++
		took = append(took, bd.took)
	}
	soakf("builds: %d ended %v, median %.1fs from queued to ended; log viewers: %d builds watched whole, %d lines delivered, "+
		"%d lost, %d wrong, %d out of order; %d resumed after a drop, %d refused (429)",
		len(d.ended), statuses, median(took).Seconds(), d.watched, d.linesDelivered, d.lost, d.wrong, d.gaps, d.reconnects, d.refused)
	if len(d.ended) == 0 || d.watched == 0 {
		st.fail("no build ended or none was watched: the soak measured nothing")
	}
	lost := float64(d.lost + d.wrong + d.gaps)
	delivered, ended := float64(d.linesDelivered), float64(len(d.ended))
	d.mu.Unlock()

	var first, last, peak memSample
	for _, m := range mem {
		if m.at < warmup {
			continue
		}
		if first.rssKiB == 0 {
			first = m
		}
		last, peak.rssKiB = m, max(peak.rssKiB, m.rssKiB)
	}
	if first.rssKiB == 0 {
		st.fail("no sample of the server's memory after the warm-up")
		return
	}
	growth := float64(last.rssKiB-first.rssKiB) / float64(first.rssKiB)
	for _, m := range mem {
		soakf("  at %5.0fs: RSS %6.1f MB, %5.0f goroutines, %3.0f log streams", m.at.Seconds(), float64(m.rssKiB)/1024, m.goroutines, m.viewers)
	}
	soakf("server RSS: %.1f MB at %.0fs, %.1f MB at the end, %.1f MB at most: %+.1f%%; goroutines %.0f then %.0f",
		mb(first), first.at.Seconds(), mb(last), float64(peak.rssKiB)/1024, 100*growth, first.goroutines, last.goroutines)
	if growth >= soakMaxRSSGrowth {
		st.fail("the server's resident set grew by %.1f%% (from %.1f MB to %.1f MB), the most allowed is %.0f%%",
			100*growth, mb(first), mb(last), 100*soakMaxRSSGrowth)
	}

	b.ReportMetric(0, "ns/op")
	b.ReportMetric(rate, "req/s")
	b.ReportMetric(ms(p95), "p95-ms")
	b.ReportMetric(p95.Seconds()/idle95.Seconds(), "p95-ratio-vs-idle")
	b.ReportMetric(float64(server), "5xx")
	b.ReportMetric(ended, "builds")
	b.ReportMetric(delivered, "log-lines")
	b.ReportMetric(lost, "lost-lines")
	b.ReportMetric(mb(first), "rss-start-MB")
	b.ReportMetric(mb(last), "rss-end-MB")
	b.ReportMetric(float64(peak.rssKiB)/1024, "rss-max-MB")
	b.ReportMetric(100*growth, "rss-growth-%")
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func mb(m memSample) float64 { return float64(m.rssKiB) / 1024 }

// median is the middle value of xs (the higher one of an even count).
func median[T cmp.Ordered](xs []T) T {
	if len(xs) == 0 {
		var zero T
		return zero
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}

// soakf prints a line of the soak's report on standard output: the
// benchmark's own log keeps only its first lines when it passes.
func soakf(format string, args ...any) { fmt.Printf(format+"\n", args...) }
