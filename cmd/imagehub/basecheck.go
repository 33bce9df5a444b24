package main

import (
	"context"

	"imagehub/buildah/basecheck"
	"imagehub/buildah/remote"
)

// outboundPolicy is where the server's own registry requests may go (the
// Check button, base checks): public addresses and the configured
// registries only, the one builds are pushed to and the insecure ones (the
// embedded registry among them). A build worker follows the same policy.
func (a *app) outboundPolicy() *remote.Policy {
	return remote.NewPolicy(append([]string{remote.Host(a.prefix)}, a.insecure...)...)
}

// startBaseChecks makes the base checker that the web layer's base-check
// routes use and starts its periodic check (--base-check-interval; none
// at 0). The returned channel is closed once ctx is done and the periodic
// check has stopped.
func (a *app) startBaseChecks(ctx context.Context) <-chan struct{} {
	a.baseCheck = basecheck.New(basecheck.Config{
		Store: a.store, Policy: a.outboundPolicy(), Insecure: a.insecure, RegistryPullAuth: a.registryPull,
		Interval: a.cfg.baseCheckInterval, Logger: a.logger,
	})
	done := make(chan struct{})
	go func() {
		defer close(done)
		a.baseCheck.Run(ctx)
	}()
	return done
}
