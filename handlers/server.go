// Package handlers is imagehub's web layer: the HTML pages an administrator
// and a user work with (templ + htmx), the JSON API under /api/v1, sign-in with
// a session cookie or an API token, and the one route table that ties them
// together. Handlers stay small: they read the request, call the store and
// render a view; what an error means for the HTTP status is decided in one
// place (errors.go).
package handlers

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/gorilla/sessions"
	"github.com/labstack/echo/v4"

	"imagehub/buildah/basecheck"
	"imagehub/buildah/buildlog"
	"imagehub/buildah/disk"
	"imagehub/buildah/remote"
	"imagehub/store"
)

// InspectFunc looks an image reference up in its registry without pulling
// it (a remote.Policy's Inspect, which decides where the server may connect;
// tests answer from a table). insecure allows plain HTTP or an unverified
// certificate.
type InspectFunc func(ctx context.Context, ref string, auth *remote.Auth, insecure bool) (remote.ImageInfo, error)

// NormalizeFunc parses an image reference and returns its full, normalised
// form ("busybox" → "docker.io/library/busybox:latest"); the error is a
// sentence meant for the person who typed the reference.
type NormalizeFunc func(ref string) (string, error)

// portChecked adds to normalize the rule that the reference parser does not
// know: the registry's port is a TCP port (store.PortReason, the rule of a
// secret's registry host too).
func portChecked(normalize NormalizeFunc) NormalizeFunc {
	return func(ref string) (string, error) {
		norm, err := normalize(ref)
		if err != nil {
			return "", err
		}
		if r := store.PortReason(remote.Host(norm)); r != "" {
			return "", fmt.Errorf("%s (%s)", strings.TrimSuffix(r, "."), remote.Host(norm))
		}
		return norm, nil
	}
}

// Config is what the web layer is built from; main fills it.
type Config struct {
	// Store is the database.
	Store *store.Store
	// HashKey authenticates the session cookie (32 or 64 random bytes).
	HashKey []byte
	// BlockKey encrypts the session cookie (16, 24 or 32 random bytes).
	BlockKey []byte
	// Secure marks cookies Secure; set it when imagehub is reached over TLS.
	Secure bool
	// Logger receives internal errors, which clients never see.
	Logger *slog.Logger
	// Inspect backs the "Check" action. Saving an image never calls it, so
	// an unreachable registry never prevents a save.
	Inspect InspectFunc
	// Normalize is applied to every image URL before it is saved, with a
	// registry port above 65535 refused on top (portChecked).
	Normalize NormalizeFunc
	// InsecureRegistries lists registry hosts (host[:port]) that are reached
	// over plain HTTP or without verifying their certificate, such as the
	// embedded registry on 127.0.0.1:5000.
	InsecureRegistries []string
	// Builds runs custom image builds; nil serves the catalogue without
	// building (builds are recorded as queued and wait).
	Builds BuildQueue
	// Logs holds the build logs; required when Builds is set.
	Logs *buildlog.Hub
	// RegistryPrefix is where built images are pushed: HOST[:PORT]/PREFIX.
	RegistryPrefix string
	// PushSecret names the secret that pulls built images from the
	// registry they are pushed to; it becomes a built image's pull secret.
	PushSecret string
	// TrustedProxies are the address ranges of the reverse proxies in front
	// of imagehub. A request from one of them is taken to come from the
	// address it names in X-Forwarded-For (the nearest one that is not a
	// trusted proxy itself); with none, the address that connected is the
	// client's and X-Forwarded-For is ignored. The sign-in limits count per
	// client address.
	TrustedProxies []*net.IPNet
	// Disk keeps the disk bounded: a deleted image's tags and cache images
	// go, and the disk page (/admin/disk) reports and collects the
	// registry's garbage. Nil: nothing is freed, and the page says so.
	Disk *disk.Keeper
	// LogViewersPerBuild and LogViewersPerUser bound the live log streams
	// open at once to one build and by one user; past them a stream is
	// refused with 429. Zero means DefaultLogViewersPerBuild and
	// DefaultLogViewersPerUser.
	LogViewersPerBuild, LogViewersPerUser int
	// BaseCheck compares the bases of built images with their registries
	// (POST …/base-check); nil answers that base checks are off.
	BaseCheck *basecheck.Checker
	// Requests is told of every request answered (the metrics); nil tells
	// nobody.
	Requests RequestObserver
	// Metrics serves GET /metrics to administrators (the Prometheus text
	// format); nil answers 404 there.
	Metrics http.Handler
	// SecretsChanged is called after a pull secret was added or deleted
	// (the pull secrets' mirror in a cluster, --sync-pull-secrets); nil
	// calls nothing.
	SecretsChanged func()
}

// BuildQueue is what the web layer needs of the build queue: to be told a
// build is waiting, to cancel one, and what holds queued builds.
type BuildQueue interface {
	Notify()
	Cancel(ctx context.Context, id int64) error
	// Waiting says what queued builds wait for ("waiting for disk space:
	// …"), or "" when nothing holds them but the concurrency limit.
	Waiting() string
}

// Server holds the web layer's dependencies and its route table.
type Server struct {
	store      *store.Store
	cookies    *sessions.CookieStore
	log        *slog.Logger
	inspect    InspectFunc
	normalize  NormalizeFunc
	insecure   map[string]bool
	builds     BuildQueue
	disk       *disk.Keeper
	baseCheck  *basecheck.Checker
	logs       *buildlog.Hub
	registry   string
	pushSecret string
	// logins counts failed sign-ins per username and address (limiter.go).
	logins *loginLimiter
	// checkPassword is the store's Authenticate (bcrypt); tests count its calls.
	checkPassword func(ctx context.Context, username, password string) (*store.User, error)
	// clientAddr tells the client's address from a request (TrustedProxies).
	clientAddr echo.IPExtractor
	// sessionName is the session cookie's name (session.go).
	sessionName string
	// decoded keeps the values of session cookies (session_decode.go).
	decoded decodedSessions
	// viewers counts the live log streams (log_viewers.go).
	viewers *logViewers
	// requests is told of every request answered; metricsHandler serves
	// /metrics (observe.go).
	requests       RequestObserver
	metricsHandler http.Handler
	// selections keeps the answers of the selection routes
	// (selection_answers.go).
	selections selectionAnswers
	// secretsChanged is Config.SecretsChanged, never nil.
	secretsChanged func()
	// now is the clock of sign-in limits and session expiry; tests move it.
	now    func() time.Time
	routes []route
	echo   *echo.Echo
	// staticVersion is the digest of the static files, in their URLs.
	staticVersion string
}

// sessionMaxAge is how long a sign-in lasts: a working day.
const sessionMaxAge = 12 * 60 * 60

// maxBody bounds request bodies; the largest legitimate one is a recipe.
const maxBody = 1 << 20

// New checks cfg and builds the server with its routes.
func New(cfg Config) (*Server, error) {
	if cfg.Store == nil {
		return nil, errors.New("handlers: Config.Store is required")
	}
	if n := len(cfg.HashKey); n != 32 && n != 64 {
		return nil, fmt.Errorf("handlers: HashKey must be 32 or 64 bytes, got %d", n)
	}
	if n := len(cfg.BlockKey); n != 16 && n != 24 && n != 32 {
		return nil, fmt.Errorf("handlers: BlockKey must be 16, 24 or 32 bytes, got %d", n)
	}
	if cfg.Inspect == nil || cfg.Normalize == nil {
		return nil, errors.New("handlers: Config.Inspect and Config.Normalize are required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	cookies := sessions.NewCookieStore(cfg.HashKey, cfg.BlockKey)
	cookies.Options = &sessions.Options{
		Path:     "/",
		MaxAge:   sessionMaxAge,
		HttpOnly: true,
		Secure:   cfg.Secure,
		SameSite: http.SameSiteLaxMode,
	}
	cookies.MaxAge(sessionMaxAge)
	s := &Server{
		store:      cfg.Store,
		cookies:    cookies,
		log:        cfg.Logger,
		inspect:    cfg.Inspect,
		normalize:  portChecked(cfg.Normalize),
		insecure:   map[string]bool{},
		builds:     cfg.Builds,
		disk:       cfg.Disk,
		baseCheck:  cfg.BaseCheck,
		logs:       cfg.Logs,
		registry:   strings.TrimSuffix(cfg.RegistryPrefix, "/"),
		pushSecret: cfg.PushSecret,
		logins:     newLoginLimiter(),
		viewers:    newLogViewers(cfg.LogViewersPerBuild, cfg.LogViewersPerUser),
		now:        wallClock,
	}
	s.requests, s.metricsHandler = cfg.Requests, cfg.Metrics
	s.secretsChanged = cfg.SecretsChanged
	if s.secretsChanged == nil {
		s.secretsChanged = func() {}
	}
	if s.requests == nil {
		s.requests = nopRequests{}
	}
	s.checkPassword = s.store.Authenticate
	s.sessionName = sessionName
	if cfg.Secure {
		s.sessionName = secureSessionName
	}
	s.clientAddr = clientAddress(cfg.TrustedProxies)
	if s.builds != nil && (s.logs == nil || s.registry == "") {
		return nil, errors.New("handlers: Config.Builds needs Config.Logs and Config.RegistryPrefix")
	}
	var err error
	if s.staticVersion, err = staticDigest(); err != nil {
		return nil, fmt.Errorf("handlers: reading the static files: %w", err)
	}
	for _, h := range cfg.InsecureRegistries {
		s.insecure[strings.ToLower(h)] = true
	}
	s.routes = s.routeTable()
	s.echo = s.newEcho()
	return s, nil
}

// Handler returns the HTTP handler serving every route.
func (s *Server) Handler() http.Handler { return s.echo }

// newEcho registers the route table on a fresh echo instance, each route
// behind the middleware of its access level, the reading of its body
// (body.go) and the CSRF check.
func (s *Server) newEcho() *echo.Echo {
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.HTTPErrorHandler = s.handleError
	e.JSONSerializer = jsonSerializer{}
	e.IPExtractor = s.clientAddr
	e.Use(s.observeRequest, s.recoverPanic, s.securityHeaders, limitBody, s.authenticate)
	for _, r := range s.routes {
		e.Add(r.Method, r.Path, r.Handler, s.requireAccess(r.Access), readBody, s.checkCSRF)
	}
	return e
}

// clientAddress returns how the client's address is told: the address that
// connected, unless it is one of the trusted proxies, which name the client
// in X-Forwarded-For. Echo would trust every loopback and private address
// by default; only the ranges given are trusted here.
func clientAddress(trusted []*net.IPNet) echo.IPExtractor {
	if len(trusted) == 0 {
		return echo.ExtractIPDirect()
	}
	opts := []echo.TrustOption{echo.TrustLoopback(false), echo.TrustLinkLocal(false), echo.TrustPrivateNet(false)}
	for _, n := range trusted {
		opts = append(opts, echo.TrustIPRange(n))
	}
	return echo.ExtractIPFromXFFHeader(opts...)
}

// recoverPanic turns a panic in a handler into a logged internal error, so
// that neither the process nor a stack trace reaches the client.
func (s *Server) recoverPanic(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) (err error) {
		defer func() {
			if p := recover(); p != nil {
				if p == http.ErrAbortHandler {
					panic(p)
				}
				err = fmt.Errorf("panic: %v", p)
			}
		}()
		return next(c)
	}
}

// securityHeaders sets the headers every answer carries. The content
// security policy allows only our own scripts and styles: the pages have no
// inline script, and htmx's inline indicator style is turned off in the layout.
func (s *Server) securityHeaders(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		h := c.Response().Header()
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "same-origin")
		h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "+
			"connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'")
		return next(c)
	}
}

// limitBody refuses bodies larger than maxBody: at once when the request
// says its length, else when readBody reads past it.
func limitBody(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		r := c.Request()
		if r.ContentLength > maxBody {
			return errBodyTooLarge()
		}
		r.Body = http.MaxBytesReader(c.Response(), r.Body, maxBody)
		return next(c)
	}
}
