// Package app wires distq's binaries: the api and the worker, each as
// Run(ctx, cfg, …) so that main, the dev stack and the end-to-end tests
// start them the same way, on any address (":0" in tests).
package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"os"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/redis/go-redis/v9"

	"github.com/distq/distq/internal/alibaba"
	"github.com/distq/distq/internal/config"
	"github.com/distq/distq/internal/metrics"
)

func newRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

func initMetrics(m *metrics.Metrics, cfg *config.Config) {
	teams := configTeams(cfg)
	for _, a := range cfg.Accounts {
		rates := map[string]int{}
		for _, act := range alibaba.Actions {
			rates[act] = a.QPS(act)
		}
		m.InitAccount(a.Name, alibaba.Actions, rates, a.MaxJobs)
		m.SetAccountLimits(a.Name, float64(a.QPS(alibaba.ActionCreate)), a.MaxJobs)
		m.InitTeams(a.Name, teams)
	}
}

// configTeams are the teams cfg names (the api's token tables, the team
// weights), sorted:
// the values the metrics' team label may take besides metrics.OtherTeam.
func configTeams(cfg *config.Config) []string {
	seen := map[string]bool{}
	for _, tokens := range []map[string]string{cfg.Tokens, cfg.TokenHashes} {
		for _, team := range tokens {
			seen[team] = true
		}
	}
	for team := range cfg.TeamWeights {
		seen[team] = true
	}
	return slices.Sorted(maps.Keys(seen))
}

// serve runs srv on ln until ctx ends, then shuts it down within grace.
func serve(ctx context.Context, srv *http.Server, ln net.Listener, grace time.Duration) error {
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), grace)
	defer cancel()
	err := srv.Shutdown(sctx)
	if serr := <-errc; !errors.Is(serr, http.ErrServerClosed) {
		err = errors.Join(err, serr)
	}
	return err
}

func listen(addr string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen %s: %w", addr, err)
	}
	return ln, nil
}

func pinger(rdb redis.UniversalClient) func(context.Context) error {
	return func(ctx context.Context) error {
		if err := rdb.Ping(ctx).Err(); err != nil {
			return fmt.Errorf("redis: %w", err)
		}
		return nil
	}
}

// Logger returns the JSON logger of the binaries.
func Logger(level slog.Level) *slog.Logger {
	l := slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	redis.SetLogger(redisLogger{l})
	return l
}
