package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"imagehub/buildah/basecheck"
	"imagehub/buildah/buildlog"
	"imagehub/buildah/disk"
	"imagehub/buildah/kube"
	"imagehub/buildah/queue"
	"imagehub/buildah/registry"
	"imagehub/buildah/remote"
	"imagehub/buildah/workerspec"
	"imagehub/handlers"
	"imagehub/handlers/metrics"
	"imagehub/store"
)

// serveConfig is every setting of `imagehub serve`; each flag has an
// IMAGEHUB_* environment variable as its default.
type serveConfig struct {
	addr, data             string
	registry, registryAddr string
	pushSecret             string
	insecure               string
	concurrency            int
	deadline               time.Duration
	storageDriver          string
	secureCookies          bool
	buildAllowCIDRs        []string
	buildLimits            workerspec.Limits
	trustedProxies         []*net.IPNet
	maxLogSize             int64
	groupBuildLimit        int
	viewersPerBuild        int
	viewersPerUser         int
	metricsAddr            string
	baseCheckInterval      time.Duration
	logFormat              string
	disk                   diskSettings
	builder                builderSettings
	// packages are the package mirrors' defaults (mirrors.go).
	packages store.PackageSettings
}

func parseServeFlags(args []string) (c serveConfig, err error) {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.StringVar(&c.addr, "addr", envOr("IMAGEHUB_ADDR", "127.0.0.1:8080"), "address to listen on")
	fs.StringVar(&c.data, "data", envOr("IMAGEHUB_DATA", "./data"), "data folder (database, keys, logs, image storage, embedded registry)")
	fs.StringVar(&c.registry, "registry", os.Getenv("IMAGEHUB_REGISTRY"), "push built images to HOST/PREFIX; empty serves an embedded registry")
	fs.StringVar(&c.registryAddr, "registry-addr", envOr("IMAGEHUB_REGISTRY_ADDR", "127.0.0.1:5000"), "address of the embedded registry")
	fs.StringVar(&c.pushSecret, "push-secret", os.Getenv("IMAGEHUB_PUSH_SECRET"), "name of the secret used to push to --registry")
	fs.StringVar(&c.insecure, "insecure-registries", os.Getenv("IMAGEHUB_INSECURE_REGISTRIES"), "comma-separated registry hosts reached over plain http (the embedded one always is)")
	fs.IntVar(&c.concurrency, "build-concurrency", envInt("IMAGEHUB_BUILD_CONCURRENCY", 2), "builds run at once")
	fs.DurationVar(&c.deadline, "build-deadline", envDuration("IMAGEHUB_BUILD_DEADLINE", 2*time.Hour), "a build still running after this is stopped")
	fs.StringVar(&c.storageDriver, "storage-driver", os.Getenv("IMAGEHUB_STORAGE_DRIVER"), "overlay or vfs; empty picks overlay where the kernel allows it")
	fs.BoolVar(&c.secureCookies, "secure-cookies", os.Getenv("IMAGEHUB_SECURE_COOKIES") == "true", "mark cookies Secure (set when served behind TLS)")
	memory := fs.String("build-memory", envOr("IMAGEHUB_BUILD_MEMORY", "8GiB"), "memory limit of each RUN step, such as 8GiB (root workers; 0 for none); with --builder kubernetes also each build pod's memory request and limit")
	fs.IntVar(&c.buildLimits.Processes, "build-processes", envInt("IMAGEHUB_BUILD_PROCESSES", 4096), "processes RUN steps may have at once (0 for the process's own limit)")
	allow := fs.String("build-allow-cidr", os.Getenv("IMAGEHUB_BUILD_ALLOW_CIDR"), "comma-separated private ranges that RUN steps may reach (a package mirror, say); link-local and this host never")
	proxies := fs.String("trusted-proxies", os.Getenv("IMAGEHUB_TRUSTED_PROXIES"), "comma-separated CIDRs of reverse proxies whose X-Forwarded-For names the client; empty: the connecting address is the client")
	fs.IntVar(&c.groupBuildLimit, "group-build-limit", envInt("IMAGEHUB_GROUP_BUILD_LIMIT", 2), "builds of one group's images that may wait or run at once; 0 means no limit (System images are not limited)")
	fs.IntVar(&c.viewersPerBuild, "log-viewers-per-build", envInt("IMAGEHUB_LOG_VIEWERS_PER_BUILD", handlers.DefaultLogViewersPerBuild), "live log streams one build may have at once; more are refused (429)")
	fs.IntVar(&c.viewersPerUser, "log-viewers-per-user", envInt("IMAGEHUB_LOG_VIEWERS_PER_USER", handlers.DefaultLogViewersPerUser), "live log streams one user may have open at once; more are refused (429)")
	fs.StringVar(&c.metricsAddr, "metrics-addr", os.Getenv("IMAGEHUB_METRICS_ADDR"), "also serve /metrics, without sign-in, on this address of its own (such as 127.0.0.1:9090); empty: only on --addr, to administrators")
	fs.StringVar(&c.logFormat, "log-format", envOr("IMAGEHUB_LOG_FORMAT", "text"), "text or json: the format of the server's log (a line per request among it)")
	fs.DurationVar(&c.baseCheckInterval, "base-check-interval", envDuration("IMAGEHUB_BASE_CHECK_INTERVAL", basecheck.DefaultInterval),
		"how often to check whether the base images of built images have moved; 0 checks only when asked")
	maxLogSize := fs.String("max-log-size", envOr("IMAGEHUB_MAX_LOG_SIZE", "50MiB"), "a build whose log passes this size (in bytes, KiB, MiB or GiB) is stopped and fails")
	diskFlags := addDiskFlags(fs)
	builderFlags := addBuilderFlags(fs)
	addPackageFlags(fs, &c.packages)
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if c.disk, err = diskFlags.parse(); err != nil {
		return c, err
	}
	if err := c.packages.Validate(); err != nil {
		return c, packageFlagsError(err)
	}
	if c.buildAllowCIDRs, err = parseAllowCIDRs(*allow); err != nil {
		return c, err
	}
	if c.buildLimits.MemoryBytes, err = parseSize(*memory); err != nil {
		return c, fmt.Errorf("--build-memory %q is not a size such as 8GiB", *memory)
	}
	if c.trustedProxies, err = parseCIDRs(*proxies); err != nil {
		return c, fmt.Errorf("--trusted-proxies: %w", err)
	}
	if c.concurrency < 1 {
		return c, fmt.Errorf("--build-concurrency must be at least 1")
	}
	if c.groupBuildLimit < 0 {
		return c, fmt.Errorf("--group-build-limit must be 0 (no limit) or more")
	}
	if c.viewersPerBuild < 1 || c.viewersPerUser < 1 {
		return c, fmt.Errorf("--log-viewers-per-build and --log-viewers-per-user must be at least 1")
	}
	if c.baseCheckInterval < 0 {
		return c, fmt.Errorf("--base-check-interval must be 0 (only when asked) or more")
	}
	if c.logFormat != "text" && c.logFormat != "json" {
		return c, fmt.Errorf("--log-format %q must be text or json", c.logFormat)
	}
	if c.maxLogSize, err = parseSize(*maxLogSize); err != nil || c.maxLogSize < 1<<10 {
		return c, fmt.Errorf("--max-log-size %q must be a size of at least 1KiB, such as 50MiB", *maxLogSize)
	}
	// Refuse at start-up what every build would fail on later.
	if c.registry == "" && c.pushSecret != "" {
		return c, fmt.Errorf("--push-secret is for --registry: the embedded registry has accounts of its own (%s in the data folder)", registryAccountsFile)
	}
	if c.registry != "" {
		prefix := strings.TrimSuffix(c.registry, "/")
		if _, err := remote.NormalizeReference(prefix + "/image:tag"); err != nil || !strings.Contains(prefix, "/") {
			return c, fmt.Errorf("--registry %q must be HOST[:PORT]/PREFIX, such as registry.example.com/imagehub", c.registry)
		}
	}
	if c.builder, err = builderFlags.parse(c.registry); err != nil {
		return c, err
	}
	return c, nil
}

// serveCmd runs the web service until ctx ends.
func serveCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg, err := parseServeFlags(args)
	if err != nil {
		return err
	}
	a := &app{cfg: cfg, logger: newLogger(cfg.logFormat, stderr)}
	if a.data, a.store, err = openDataDir(cfg.data); err != nil {
		return err
	}
	defer a.store.Close()
	a.store.SetGroupBuildLimit(cfg.groupBuildLimit)
	if err := setPackageDefaults(ctx, a.store, cfg.packages); err != nil {
		return err
	}
	if err := bootstrapAdmin(ctx, a.store, stderr); err != nil {
		return err
	}
	if err := removeOrphanBuildLogs(ctx, a.store, a.data.path(buildsFolder), a.logger); err != nil {
		a.logger.Error("removing the logs of deleted builds", "err", err)
	}
	// Both were read once, above; nothing started from here on inherits them.
	os.Unsetenv("IMAGEHUB_SECRET_KEY")
	os.Unsetenv("IMAGEHUB_ADMIN_PASSWORD")
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if err := a.startRegistry(ctx); err != nil {
		return err
	}
	a.metrics = metrics.New(a.logger)
	queueDone, err := a.startQueue(ctx)
	if err != nil {
		return err
	}
	if err := a.startPullSecrets(ctx); err != nil {
		return err
	}
	// On the way out, stop the web first, then let the queue record what it
	// stopped before the store closes.
	defer func() { cancel(); <-queueDone }()
	checksDone := a.startBaseChecks(ctx)
	defer func() { cancel(); <-checksDone }()
	srv, err := a.server()
	if err != nil {
		return err
	}
	a.watchMetrics(srv)
	ln, err := net.Listen("tcp", cfg.addr)
	if err != nil {
		return err
	}
	metricsDone, err := a.serveMetrics(ctx, stdout)
	if err != nil {
		ln.Close()
		return err
	}
	defer func() { cancel(); <-metricsDone }()
	fmt.Fprintf(stdout, "imagehub listening on http://%s (data in %s, pushing to %s)\n", ln.Addr(), cfg.data, a.prefix)
	return serveHTTP(ctx, ln, srv.Handler(), defaultHTTPTimeouts())
}

// app is one `imagehub serve`: its settings and the parts it wires together,
// each made by one method below in the order serveCmd calls them.
type app struct {
	cfg    serveConfig
	logger *slog.Logger
	data   dataDir
	store  *store.Store

	// prefix is where built images are pushed: HOST[:PORT]/PREFIX.
	prefix string
	// insecure lists the registry hosts reached over plain http.
	insecure []string
	// pushAuth pushes to the registry; registryPull reads from it, for
	// base images there (the embedded registry's accounts; nil with
	// --registry, whose push credential comes from --push-secret).
	pushAuth, registryPull *remote.Auth
	// pullSecret is the secret that pulls built images, which they get as
	// their pull secret: --push-secret, or the embedded registry's
	// read-only one.
	pullSecret string

	logs  *buildlog.Hub
	queue *queue.Queue
	// pullSecrets mirrors the pull secrets into a cluster (kube.go); nil
	// without --sync-pull-secrets.
	pullSecrets *kube.PullSecrets

	// metrics are fed by the queue and the web layer (metrics.go).
	metrics *metrics.Metrics
	// registryAdmin deletes from the embedded registry's storage (nil with
	// --registry); disk keeps the disk bounded (disk.go).
	registryAdmin *registry.Admin
	disk          *disk.Keeper
	// baseCheck compares the bases of built images with their registries
	// (basecheck.go).
	baseCheck *basecheck.Checker
}

// registryAccountsFile holds the embedded registry's two accounts, with
// their passwords (0600), in the data folder.
const registryAccountsFile = "registry-accounts.json"

// embeddedPullSecret names the ready pull secret that holds the embedded
// registry's read-only account.
const embeddedPullSecret = "imagehub-registry"

// startRegistry serves the embedded registry unless --registry is given, and
// sets the prefix that built images are pushed under. The embedded registry
// takes only its two accounts, generated once into the data folder: the
// push account for the workers, and the pull-only account, which is kept up
// to date in the store as the ready pull secret "imagehub-registry" that
// built images get and that launchers and nodes pull with.
func (a *app) startRegistry(ctx context.Context) error {
	a.insecure = splitList(a.cfg.insecure)
	if a.cfg.registry != "" {
		a.prefix, a.pullSecret = strings.TrimSuffix(a.cfg.registry, "/"), a.cfg.pushSecret
		return nil
	}
	acc, err := registry.LoadOrCreateAccounts(a.data.path(registryAccountsFile))
	if err != nil {
		return err
	}
	reg, err := registry.StartWithAccounts(ctx, a.cfg.registryAddr, a.data.path(registryFolder), acc)
	if err != nil {
		return fmt.Errorf("embedded registry on %s: %w (use --registry-addr or --registry)", a.cfg.registryAddr, err)
	}
	if err := a.store.PutSecret(ctx, &store.Secret{Name: embeddedPullSecret, RegistryHost: reg.Addr(),
		Username: acc.Pull.Username, Password: acc.Pull.Password}); err != nil {
		reg.Close()
		return fmt.Errorf("the embedded registry's pull secret: %v", describe(err))
	}
	a.logger.Info("embedded registry", "addr", reg.Addr(), "pullSecret", embeddedPullSecret)
	if a.registryAdmin, err = registry.OpenAdmin(ctx, a.data.path("registry")); err != nil {
		reg.Close()
		return err
	}
	a.prefix, a.insecure = reg.Addr()+"/imagehub", append(a.insecure, reg.Addr())
	a.pushAuth = &remote.Auth{Username: acc.Push.Username, Password: acc.Push.Password}
	a.registryPull = &remote.Auth{Username: acc.Pull.Username, Password: acc.Pull.Password}
	a.pullSecret = embeddedPullSecret
	return nil
}

// httpTimeouts bound how long a client may hold a connection without doing
// its part, so that slow or idle clients cannot use up the server's
// connections and goroutines (slowloris).
type httpTimeouts struct {
	// readHeader bounds reading a request's headers; read, the whole
	// request with its body (bodies are at most 1 MiB).
	readHeader, read time.Duration
	// idle bounds the wait for the next request on a kept-alive connection.
	idle time.Duration
	// write bounds writing one answer: a deadline that withWriteDeadline
	// sets as each request starts. http.Server.WriteTimeout stays 0, so
	// that nothing bounds a connection as a whole: a live log stream (SSE)
	// lasts as long as its build, and it moves its own deadline forward
	// with each flush (handlers.StreamLog, 30 s a write).
	write time.Duration
}

// defaultHTTPTimeouts are the timeouts of `imagehub serve`. The longest
// honest answer is a build log of up to --max-log-size (50 MiB) downloaded
// at once, hence the generous write bound.
func defaultHTTPTimeouts() httpTimeouts {
	return httpTimeouts{readHeader: 10 * time.Second, read: time.Minute, idle: 2 * time.Minute, write: 10 * time.Minute}
}

// serveHTTP serves until ctx ends, then lets requests in flight finish.
func serveHTTP(ctx context.Context, ln net.Listener, h http.Handler, t httpTimeouts) error {
	// WriteTimeout stays 0: see httpTimeouts.write.
	hs := &http.Server{Handler: withWriteDeadline(h, t.write),
		ReadHeaderTimeout: t.readHeader, ReadTimeout: t.read, IdleTimeout: t.idle}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := hs.Shutdown(shutdown); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return nil
}

// parseAllowCIDRs reads --build-allow-cidr: private ranges RUN steps may
// reach. Loopback, link-local and unspecified ranges are refused: RUN steps
// never reach this host or cloud metadata, whatever is allowed.
func parseAllowCIDRs(s string) ([]string, error) {
	var out []string
	for _, c := range splitList(s) {
		_, n, err := net.ParseCIDR(c)
		if err != nil {
			return nil, fmt.Errorf("--build-allow-cidr %q is not a CIDR such as 10.20.0.0/16", c)
		}
		if n.IP.IsLoopback() || n.IP.IsLinkLocalUnicast() || n.IP.IsUnspecified() || n.Contains(net.IPv4(169, 254, 169, 254)) {
			return nil, fmt.Errorf("--build-allow-cidr %s: loopback, link-local and catch-all ranges are never open to builds", c)
		}
		out = append(out, n.String())
	}
	return out, nil
}

// withWriteDeadline gives every answer a write deadline d from the start of
// its request; a handler may move it (a log stream does, with each flush).
func withWriteDeadline(h http.Handler, d time.Duration) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.NewResponseController(w).SetWriteDeadline(time.Now().Add(d))
		h.ServeHTTP(w, r)
	})
}

func splitList(s string) []string {
	var out []string
	for _, x := range strings.Split(s, ",") {
		if x = strings.TrimSpace(x); x != "" {
			out = append(out, x)
		}
	}
	return out
}

// parseCIDRs reads a comma-separated list of CIDRs; a bare address stands
// for itself alone.
func parseCIDRs(s string) ([]*net.IPNet, error) {
	var out []*net.IPNet
	for _, x := range splitList(s) {
		if !strings.Contains(x, "/") {
			ip := net.ParseIP(x)
			if ip == nil {
				return nil, fmt.Errorf("%q is neither a CIDR such as 10.0.0.0/8 nor an address", x)
			}
			bits := 128
			if ip.To4() != nil {
				ip, bits = ip.To4(), 32
			}
			out = append(out, &net.IPNet{IP: ip, Mask: net.CIDRMask(bits, bits)})
			continue
		}
		_, n, err := net.ParseCIDR(x)
		if err != nil {
			return nil, fmt.Errorf("%q is not a CIDR such as 10.0.0.0/8", x)
		}
		out = append(out, n)
	}
	return out, nil
}

// parseSize reads a size in bytes, KiB, MiB or GiB: "1048576", "512KiB", "50MiB".
func parseSize(s string) (int64, error) {
	s = strings.TrimSpace(s)
	unit := int64(1)
	for suffix, u := range map[string]int64{"KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30} {
		if n, ok := strings.CutSuffix(s, suffix); ok {
			s, unit = strings.TrimSpace(n), u
			break
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 || n > math.MaxInt64/unit {
		return 0, fmt.Errorf("not a size: %q", s)
	}
	return n * unit, nil
}

func envInt(name string, def int) int {
	if n, err := strconv.Atoi(os.Getenv(name)); err == nil {
		return n
	}
	return def
}

func envDuration(name string, def time.Duration) time.Duration {
	if d, err := time.ParseDuration(os.Getenv(name)); err == nil {
		return d
	}
	return def
}

// startQueue recovers the builds a previous run left behind and starts the
// queue that runs builds in `imagehub build-worker` children. The returned
// channel yields the queue's end once ctx is done.
func (a *app) startQueue(ctx context.Context) (<-chan error, error) {
	stg := storageOf(a.data, a.cfg.storageDriver)
	pushAuth := a.pushAuth
	if pushAuth == nil {
		var err error
		if pushAuth, err = secretAuth(ctx, a.store, a.cfg.pushSecret); err != nil {
			return nil, err
		}
	}
	runner, err := a.cfg.builder.runner(a.cfg, stg, a.logger)
	if err != nil {
		return nil, err
	}
	a.logs = buildlog.NewHub(a.data.path(buildsFolder))
	a.queue = queue.New(queue.Config{
		Store: a.store, Logs: a.logs, Storage: stg, Runner: runner,
		Concurrency: a.cfg.concurrency, Deadline: a.cfg.deadline, PushAuth: pushAuth, Insecure: a.insecure,
		AllowCIDRs: a.cfg.buildAllowCIDRs, Limits: a.cfg.buildLimits,
		RegistryPullAuth: a.registryPull, TmpRoot: a.data.path(tmpFolder), Logger: a.logger, MaxLogSize: a.cfg.maxLogSize,
		Observer: a.metrics,
		// The disk keeper is made next, before the queue runs.
		Hold: func() string { return a.disk.Hold() }, Finished: func(ctx context.Context, b *store.Build) { a.disk.BuildFinished(ctx, b) },
		CacheSize:    a.cfg.disk.cacheSize,
		PackageCache: a.data.path(cacheFolder, "packages"),
	})
	if err := a.startDiskKeeper(ctx); err != nil {
		return nil, err
	}
	if err := a.queue.Recover(ctx); err != nil {
		a.logger.Error("recovering builds of the previous run", "err", err)
	}
	done := make(chan error, 1)
	go func() { done <- a.queue.Run(ctx) }()
	return done, nil
}

// secretAuth returns the credentials of a named secret, or nil for "".
func secretAuth(ctx context.Context, st *store.Store, name string) (*remote.Auth, error) {
	if name == "" {
		return nil, nil
	}
	_, user, pass, err := st.SecretAuth(ctx, name)
	if err != nil {
		return nil, fmt.Errorf("--push-secret %s: %v", name, describe(err))
	}
	return &remote.Auth{Username: user, Password: pass}, nil
}

// server builds the web layer, with session keys made once into the data
// folder so that sign-ins survive a restart.
func (a *app) server() (*handlers.Server, error) {
	keys, err := a.data.keyFile("session.key", 64)
	if err != nil {
		return nil, err
	}
	return handlers.New(handlers.Config{
		Store: a.store, HashKey: keys[:32], BlockKey: keys[32:], Secure: a.cfg.secureCookies, Logger: a.logger,
		Inspect: a.outboundPolicy().Inspect, BaseCheck: a.baseCheck, Normalize: remote.NormalizeReference, InsecureRegistries: a.insecure,
		Builds: a.queue, Logs: a.logs, RegistryPrefix: a.prefix, PushSecret: a.pullSecret, Disk: a.disk,
		TrustedProxies:     a.cfg.trustedProxies,
		LogViewersPerBuild: a.cfg.viewersPerBuild, LogViewersPerUser: a.cfg.viewersPerUser,
		Requests: a.metrics, Metrics: a.metrics.Handler(), SecretsChanged: a.secretsChanged(),
	})
}
