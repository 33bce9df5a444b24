// Package registry is the embedded registry: distribution v3 served from
// inside imagehub, so that a fresh installation can push what it builds.
package registry

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strconv"
	"time"

	"github.com/distribution/distribution/v3/configuration"
	"github.com/distribution/distribution/v3/registry/handlers"
	"github.com/sirupsen/logrus"

	// The registry's storage driver and authentication scheme register
	// themselves by name when imported.
	_ "github.com/distribution/distribution/v3/registry/auth/htpasswd"
	_ "github.com/distribution/distribution/v3/registry/storage/driver/filesystem"
)

// Server is an OCI distribution registry served from inside this process,
// so that a fresh installation can push what it builds without any other
// service.
type Server struct {
	app      *handlers.App
	server   *http.Server
	listener net.Listener
	served   chan error
}

// Start serves a distribution v3 registry on addr ("127.0.0.1:0"
// picks a free port) that keeps its blobs and manifests in dir. A non-empty
// htpasswd is the path of an existing bcrypt htpasswd file, and then every
// request needs one of its users; empty means no authentication. Either way
// every user may push, so Start serves the stand-ins for other registries
// in tests; imagehub's own registry is StartWithAccounts. Deletes are off.
//
// The registry logs through logrus' standard logger, the only logger it can
// be given, so Start quietens that logger: it lowers it to warnings
// when it is more talkative (otherwise every request would write a line) and
// drops the registry's reports of client errors, which are ordinary protocol
// steps here (every "does this tag exist?" is a 404, every authenticated
// client is first challenged with a 401). Server errors are still logged.
// Build workers run in their own processes and are not affected. The registry
// stops when ctx is done or Close is called.
func Start(ctx context.Context, addr, dir string, htpasswd string) (*Server, error) {
	if err := checkRegistryFiles(dir, htpasswd); err != nil {
		return nil, err
	}
	config, err := registryConfig(addr, dir, htpasswd)
	if err != nil {
		return nil, err
	}
	return serve(ctx, config, func(app http.Handler) http.Handler { return app })
}

// StartWithAccounts serves a registry as Start does, guarded by two
// accounts instead of an htpasswd file: every request needs one of them
// (else 401 with a Basic challenge), acc.Pull may only read, acc.Push may
// also push, and nobody may delete. This is imagehub's embedded registry.
func StartWithAccounts(ctx context.Context, addr, dir string, acc Accounts) (*Server, error) {
	if err := acc.check(); err != nil {
		return nil, fmt.Errorf("registry accounts: %w", err)
	}
	if err := checkRegistryFiles(dir, ""); err != nil {
		return nil, err
	}
	config, err := registryConfig(addr, dir, "")
	if err != nil {
		return nil, err
	}
	return serve(ctx, config, func(app http.Handler) http.Handler { return newAccessControl(acc, app) })
}

// serve listens on the configured address and serves the registry app,
// wrapped by guard, until ctx ends or Close is called.
func serve(ctx context.Context, config *configuration.Configuration, guard func(http.Handler) http.Handler) (*Server, error) {
	addr := config.HTTP.Addr
	quietenRegistryLogs(logrus.StandardLogger())
	listener, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("registry: %w", err)
	}
	app := handlers.NewApp(ctx, config)
	r := &Server{
		app:      app,
		server:   &http.Server{Handler: guard(app), ReadHeaderTimeout: 30 * time.Second},
		listener: listener,
		served:   make(chan error, 1),
	}
	go func() { r.served <- r.server.Serve(listener) }()
	go r.closeWhenDone(ctx)
	return r, nil
}

// checkRegistryFiles makes the storage folder and refuses a missing htpasswd
// file: distribution would otherwise create one with a random password of
// its own and write that password to the log.
func checkRegistryFiles(dir, htpasswd string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("registry storage: %w", err)
	}
	if htpasswd == "" {
		return nil
	}
	if _, err := os.Stat(htpasswd); err != nil {
		return fmt.Errorf("registry htpasswd file: %w", err)
	}
	return nil
}

// registryConfig is the registry's configuration, built as JSON (which the
// YAML parser reads) so that paths need no quoting rules of their own; the
// parser fills in distribution's defaults.
func registryConfig(addr, dir, htpasswd string) (*configuration.Configuration, error) {
	secret := make([]byte, 16)
	if _, err := rand.Read(secret); err != nil {
		return nil, err
	}
	doc := map[string]any{
		"version": "0.1",
		"log":     map[string]any{"level": "warn", "accesslog": map[string]any{"disabled": true}},
		"storage": map[string]any{
			"filesystem": map[string]any{"rootdirectory": dir},
			// Nothing is ever deleted through the API: a built image's URL
			// pins a digest, which must stay pullable.
			"delete": map[string]any{"enabled": false},
		},
		"http": map[string]any{"addr": addr, "secret": hex.EncodeToString(secret)},
	}
	if htpasswd != "" {
		doc["auth"] = map[string]any{"htpasswd": map[string]any{"realm": "imagehub", "path": htpasswd}}
	}
	text, err := json.Marshal(doc)
	if err != nil {
		return nil, err
	}
	config, err := configuration.Parse(bytes.NewReader(text))
	if err != nil {
		return nil, fmt.Errorf("registry configuration: %w", err)
	}
	return config, nil
}

// closeWhenDone closes the registry when ctx ends.
func (r *Server) closeWhenDone(ctx context.Context) {
	select {
	case <-ctx.Done():
		_ = r.Close()
	case <-r.served:
	}
}

// Addr is the host:port the registry listens on, the registry host part of
// the references pushed to it.
func (r *Server) Addr() string {
	return r.listener.Addr().String()
}

// Close stops serving at once, dropping requests in flight, and stops the
// registry's background work. Calling it again does nothing.
func (r *Server) Close() error {
	err := r.server.Close()
	if err2 := r.app.Shutdown(); err == nil {
		err = err2
	}
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// quietenRegistryLogs lowers logger to warnings and filters out the
// registry's client-error reports, once.
func quietenRegistryLogs(logger *logrus.Logger) {
	if logger.GetLevel() > logrus.WarnLevel {
		logger.SetLevel(logrus.WarnLevel)
	}
	if _, done := logger.Formatter.(clientErrorFilter); !done {
		logger.SetFormatter(clientErrorFilter{next: logger.Formatter})
	}
}

// clientErrorFilter is a logrus formatter that writes nothing for the
// registry's per-request entries about client errors (status below 500, or
// an authentication challenge) and formats every other entry as before.
type clientErrorFilter struct {
	next logrus.Formatter
}

// Format formats an entry, or returns nothing for a client error.
func (f clientErrorFilter) Format(e *logrus.Entry) ([]byte, error) {
	if isClientError(e) {
		return nil, nil
	}
	return f.next.Format(e)
}

// isClientError reports whether an entry is the registry's report of a
// request that failed through the client's doing.
func isClientError(e *logrus.Entry) bool {
	if _, ok := e.Data["http.request.id"]; !ok {
		return false
	}
	status, err := strconv.Atoi(fmt.Sprint(e.Data["http.response.status"]))
	return err != nil || status < 500
}
