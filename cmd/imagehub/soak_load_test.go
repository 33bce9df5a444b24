package main

// The soak's browsing users, its request figures and its samples of the
// server's memory (BenchmarkSoak in soak_test.go).

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// soakUser is one signed-in user of the soak, with a cookie jar of its own.
type soakUser struct {
	name string
	// admin users browse the admin pages and watch build logs.
	admin bool
	// adminOf is the group this user is a group admin of, if any.
	adminOf string
	// groups are the groups the user belongs to (adminOf among them).
	groups []string
	base   string
	http   *http.Client
}

// soakTransport is shared by every client of the soak: enough idle
// connections for the browsing users and the log viewers together.
var soakTransport = &http.Transport{MaxIdleConns: 512, MaxIdleConnsPerHost: 512, IdleConnTimeout: time.Minute}

func newSoakUser(base, name string) *soakUser {
	jar, _ := cookiejar.New(nil)
	return &soakUser{name: name, base: base, http: &http.Client{
		Transport: soakTransport, Jar: jar,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

var csrfInput = regexp.MustCompile(`name="_csrf" value="([^"]+)"`)

// signIn signs the user in through the sign-in form, with the form's CSRF
// token, as a browser does.
func (u *soakUser) signIn(password string) error {
	res, err := u.http.Get(u.base + "/login")
	if err != nil {
		return err
	}
	page, _ := io.ReadAll(res.Body)
	res.Body.Close()
	m := csrfInput.FindSubmatch(page)
	if res.StatusCode != http.StatusOK || m == nil {
		return fmt.Errorf("GET /login: status %d, CSRF token found: %v", res.StatusCode, m != nil)
	}
	res, err = u.http.PostForm(u.base+"/login", url.Values{"username": {u.name}, "password": {password}, "_csrf": {string(m[1])}})
	if err != nil {
		return err
	}
	io.Copy(io.Discard, res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusSeeOther {
		return fmt.Errorf("POST /login as %s: status %d, want 303", u.name, res.StatusCode)
	}
	return nil
}

// soakSite is what the browsing users know of the installation.
type soakSite struct {
	systemImages []string
	groupImages  map[string][]string // a group's own images, by group
	adminPages   int                 // pages of /admin/images
	// builds lists recent builds, newest last; none before the builds start.
	builds func() []int64
}

// soakRequest is one page or API call of a browsing user: its route family
// (the figures are per family), its path, and whether htmx asks for it.
type soakRequest struct {
	family, path string
	htmx         bool
}

// next picks the user's next request among those of its role.
func (u *soakUser) next(site *soakSite, rng *rand.Rand) soakRequest {
	pick := func(names []string) string { return names[rng.IntN(len(names))] }
	var choices []soakRequest
	switch {
	case u.admin:
		choices = []soakRequest{
			{"GET /admin/images", "/admin/images", false},
			{"GET /admin/images?page=N", "/admin/images?page=" + strconv.Itoa(2+rng.IntN(site.adminPages-1)), false},
			{"GET /admin/images?q= (htmx)", "/admin/images?q=soak-g" + strconv.Itoa(rng.IntN(soakGroups)), true},
			{"GET /admin/images/:name", "/admin/images/" + pick(site.systemImages), false},
			{"GET /api/v1/images?perPage=100", "/api/v1/images?perPage=100&page=" + strconv.Itoa(1+rng.IntN(4)), false},
			{"GET /api/v1/images?q=", "/api/v1/images?q=image-" + strconv.Itoa(rng.IntN(soakSystemImages)), false},
			{"GET /admin/disk", "/admin/disk", false},
		}
		if builds := site.builds(); len(builds) > 0 {
			id := strconv.FormatInt(builds[rng.IntN(len(builds))], 10)
			choices = append(choices,
				soakRequest{"GET /admin/builds/:id", "/admin/builds/" + id, false},
				soakRequest{"GET /api/v1/builds/:id", "/api/v1/builds/" + id, false})
		}
	case u.adminOf != "":
		g := u.adminOf
		choices = []soakRequest{
			{"GET /groups/:group/images", "/groups/" + g + "/images", false},
			{"GET /groups/:group/images/:name", "/groups/" + g + "/images/" + pick(site.groupImages[g]), false},
			{"GET /api/v1/groups/:group/images", "/api/v1/groups/" + g + "/images", false},
			{"GET /images", "/images", false},
			{"GET /api/v1/me/images", "/api/v1/me/images", false},
		}
	default:
		choices = []soakRequest{
			{"GET /images", "/images", false},
			{"GET /api/v1/me/images", "/api/v1/me/images", false},
			{"GET /api/v1/groups/:group/selection", "/api/v1/groups/" + pick(u.groups) + "/selection", false},
			{"GET /account/tokens", "/account/tokens", false},
		}
	}
	return choices[rng.IntN(len(choices))]
}

// browse makes requests with think times of 100 to 400 ms until ctx ends.
// Every answer should be a 200.
func (u *soakUser) browse(ctx context.Context, site *soakSite, st *soakStats, seed uint64) {
	rng := rand.New(rand.NewPCG(seed, 0x50a4))
	for ctx.Err() == nil {
		r := u.next(site, rng)
		u.get(ctx, st, r)
		select {
		case <-ctx.Done():
		case <-time.After(time.Duration(100+rng.IntN(300)) * time.Millisecond):
		}
	}
}

// get makes one request and records its status and duration (the whole body
// read); a request cut short because the phase ended is not counted.
func (u *soakUser) get(ctx context.Context, st *soakStats, r soakRequest) {
	rctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	req, _ := http.NewRequestWithContext(rctx, http.MethodGet, u.base+r.path, nil)
	if r.htmx {
		req.Header.Set("HX-Request", "true")
	}
	start := time.Now()
	res, err := u.http.Do(req)
	if err == nil {
		_, err = io.Copy(io.Discard, res.Body)
		res.Body.Close()
	}
	took := time.Since(start)
	switch {
	case ctx.Err() != nil:
	case err != nil:
		st.record(r.family, 0, took)
		st.fail("%s: GET %s: %v", u.name, r.path, err)
	default:
		st.record(r.family, res.StatusCode, took)
		if res.StatusCode != http.StatusOK {
			st.fail("%s: GET %s: status %d", u.name, r.path, res.StatusCode)
		}
	}
}

// soakStats gathers the answers of one phase, per route family. It is safe
// for concurrent use.
type soakStats struct {
	mu       sync.Mutex
	families map[string]*soakFamily
	// failures describes the first problems seen; nFailures counts them all.
	failures  []string
	nFailures int
}

// soakFamily is the answers of one route family: durations, and counts per
// status (0 for a request that got no answer).
type soakFamily struct {
	took     []time.Duration
	statuses map[int]int
}

func newSoakStats() *soakStats { return &soakStats{families: map[string]*soakFamily{}} }

func (s *soakStats) record(family string, status int, took time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f := s.families[family]
	if f == nil {
		f = &soakFamily{statuses: map[int]int{}}
		s.families[family] = f
	}
	f.took = append(f.took, took)
	f.statuses[status]++
}

// fail notes a problem; the soak fails when there is any.
func (s *soakStats) fail(format string, args ...any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.nFailures++
	if len(s.failures) < 20 {
		s.failures = append(s.failures, fmt.Sprintf(format, args...))
	}
}

// family gives one family's number of answers and their median and 95th
// percentile durations.
func (s *soakStats) family(name string) (n int, p50, p95 time.Duration) {
	return s.durations(func(f string) bool { return f == name })
}

// overall counts the answers of the families whose name starts with prefix
// ("" for all), those of them with a status of 500 or more, and gives the
// 95th percentile of their durations.
func (s *soakStats) overall(prefix string) (n, server int, p95 time.Duration) {
	n, _, p95 = s.durations(func(f string) bool { return strings.HasPrefix(f, prefix) })
	s.mu.Lock()
	defer s.mu.Unlock()
	for name, f := range s.families {
		for status, c := range f.statuses {
			if status >= 500 && strings.HasPrefix(name, prefix) {
				server += c
			}
		}
	}
	return n, server, p95
}

// durations gathers the durations of the families that match, and gives
// their number, median and 95th percentile.
func (s *soakStats) durations(match func(family string) bool) (n int, p50, p95 time.Duration) {
	s.mu.Lock()
	var all []time.Duration
	for name, f := range s.families {
		if match(name) {
			all = append(all, f.took...)
		}
	}
	s.mu.Unlock()
	if len(all) == 0 {
		return 0, 0, 0
	}
	slices.Sort(all)
	at := func(q float64) time.Duration { return all[min(len(all)-1, int(q*float64(len(all))))] }
	return len(all), at(0.50), at(0.95)
}

// names lists the families, sorted.
func (s *soakStats) names() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for name := range s.families {
		out = append(out, name)
	}
	slices.Sort(out)
	return out
}

// statusText is a family's counts per status, such as "200×1234 429×2".
func (s *soakStats) statusText(family string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	f := s.families[family]
	var codes []int
	for code := range f.statuses {
		codes = append(codes, code)
	}
	slices.Sort(codes)
	var parts []string
	for _, code := range codes {
		parts = append(parts, fmt.Sprintf("%d×%d", code, f.statuses[code]))
	}
	return strings.Join(parts, " ")
}

// memSample is the server process's memory at one moment: its resident set
// (VmRSS), and from its metrics its goroutines and open log streams.
type memSample struct {
	at                  time.Duration // since the soak began
	rssKiB              int64
	goroutines, viewers float64
}

// readRSS reads a process's resident set size in KiB from /proc.
func readRSS(pid int) (int64, error) {
	f, err := os.Open("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			return strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
		}
	}
	return 0, fmt.Errorf("no VmRSS in /proc/%d/status", pid)
}

// scrapeGauges reads the named gauges (without labels) from the server's
// /metrics with the admin token.
func scrapeGauges(base, token string, names ...string) (map[string]float64, error) {
	req, _ := http.NewRequest(http.MethodGet, base+"/metrics", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET /metrics: status %d", res.StatusCode)
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(res.Body)
	for sc.Scan() {
		name, value, ok := strings.Cut(sc.Text(), " ")
		if ok && slices.Contains(names, name) {
			out[name], _ = strconv.ParseFloat(value, 64)
		}
	}
	return out, sc.Err()
}

// sampleMemory reads the server's memory now.
func sampleMemory(s *server, since time.Time) (memSample, error) {
	rss, err := readRSS(s.cmd.Process.Pid)
	if err != nil {
		return memSample{}, err
	}
	g, err := scrapeGauges("http://"+s.addr, s.token, "go_goroutines", "imagehub_log_viewers")
	if err != nil {
		return memSample{}, err
	}
	return memSample{at: time.Since(since), rssKiB: rss, goroutines: g["go_goroutines"], viewers: g["imagehub_log_viewers"]}, nil
}

// sampleMemoryEvery samples the server's memory every interval until ctx
// ends, and once more then.
func sampleMemoryEvery(ctx context.Context, s *server, since time.Time, every time.Duration, st *soakStats) []memSample {
	var out []memSample
	take := func() {
		m, err := sampleMemory(s, since)
		if err != nil {
			st.fail("sampling the server's memory: %v", err)
			return
		}
		out = append(out, m)
	}
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			take()
			return out
		case <-tick.C:
			take()
		}
	}
}
