// Package supervisor starts the appliance's services in dependency order
// and stops them in reverse, so nothing is torn down while something that
// depends on it still runs.
package supervisor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"
)

// Service is one part of the appliance.
type Service interface {
	Name() string
	// Start returns once the service is ready; background work continues
	// until Stop.
	Start(ctx context.Context) error
	// Stop ends the service within ctx's deadline.
	Stop(ctx context.Context) error
}

// Named prefixes a service's error with its name, unless the error starts
// with it already, as the errors of a package named like its service do
// ("store: store: …" helped nobody). The composition root names the
// errors of building a service the same way.
func Named(service string, err error) error {
	if strings.HasPrefix(err.Error(), service+": ") {
		return err
	}
	return fmt.Errorf("%s: %w", service, err)
}

func named(svc Service, err error) error { return Named(svc.Name(), err) }

// Failer is implemented by services that can fail while running.
type Failer interface {
	Err() <-chan error
}

// Supervisor runs services.
type Supervisor struct {
	services []Service
	timeout  time.Duration
	log      *slog.Logger
	started  atomic.Int32
}

// New creates a supervisor; services are started in the given order.
func New(log *slog.Logger, stopTimeout time.Duration, services ...Service) *Supervisor {
	return &Supervisor{services: services, timeout: stopTimeout, log: log}
}

// Ready reports whether every service has started.
func (s *Supervisor) Ready() error {
	if n := int(s.started.Load()); n < len(s.services) {
		return fmt.Errorf("%d of %d services started", n, len(s.services))
	}
	return nil
}

// Run starts all services, waits until ctx is done or a service fails, and
// stops the started ones in reverse order. It returns the first failure.
func (s *Supervisor) Run(ctx context.Context) error {
	var running []Service
	var startErr error
	for _, svc := range s.services {
		t0 := time.Now()
		if err := svc.Start(ctx); err != nil {
			startErr = named(svc, err)
			break
		}
		s.log.Debug("service started", "service", svc.Name(), "took", time.Since(t0).Round(time.Millisecond))
		running = append(running, svc)
		s.started.Add(1)
	}

	var runErr error
	if startErr == nil {
		s.log.Info("appliance ready", "services", len(running))
		g, gctx := errgroup.WithContext(ctx)
		for _, svc := range running {
			if f, ok := svc.(Failer); ok {
				g.Go(func() error {
					select {
					case err := <-f.Err():
						return named(svc, err)
					case <-gctx.Done():
						return nil
					}
				})
			}
		}
		g.Go(func() error { <-gctx.Done(); return nil })
		runErr = g.Wait()
	}

	stopCtx, cancel := context.WithTimeout(context.Background(), s.timeout)
	defer cancel()
	var stopErrs []error
	for i := len(running) - 1; i >= 0; i-- {
		svc := running[i]
		if err := svc.Stop(stopCtx); err != nil {
			s.log.Error("service did not stop cleanly", "service", svc.Name(), "err", err)
			stopErrs = append(stopErrs, fmt.Errorf("stop %s: %w", svc.Name(), err))
		} else {
			s.log.Debug("service stopped", "service", svc.Name())
		}
		s.started.Add(-1)
	}
	if startErr != nil {
		return startErr
	}
	if runErr != nil {
		return runErr
	}
	return errors.Join(stopErrs...)
}
