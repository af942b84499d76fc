// Package devstack starts the whole of distq in one process — the endpoint
// simulator, the api and workers, on a given Redis or an embedded one — for
// `make run`, the end-to-end tests and the CLI's tests. It wires the same
// Run functions the binaries use.
package devstack

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/alicebob/miniredis/v2"

	"github.com/distq/distq/internal/alisim"
	"github.com/distq/distq/internal/app"
	"github.com/distq/distq/internal/config"
)

// Dev credentials of the stack: the simulator's development account.
const (
	DevTeam   = "dev"
	DevToken  = "dev-token-change-me"
	DevUID    = "1234567890123456"
	DevKeyID  = "dev-access-key"
	DevSecret = "dev-secret"
)

// Options configure a stack. Zero values select the defaults.
type Options struct {
	// RedisURL is the Redis to use; empty starts an embedded one (miniredis).
	RedisURL string
	// APIAddr, SimAddr, MetricsAddr default to 127.0.0.1:0.
	APIAddr, SimAddr, MetricsAddr string
	// Workers is the number of worker instances (default 1).
	Workers int
	// Sim configures the simulator (its Accounts default to the dev account).
	Sim alisim.Config
	// Env adds or overrides distq settings (DISTQ_* variables). By default
	// distq's one account is the simulator's first, its endpoint the
	// simulator, and its one team DevTeam with DevToken.
	Env map[string]string
	// Worker tunes the workers.
	Worker app.WorkerOptions
	// Log receives the logs (default: discarded).
	Log *slog.Logger
}

// Stack is a running stack.
type Stack struct {
	APIURL      string
	SimURL      string
	MetricsURLs []string
	RedisURL    string
	Token       string
	Sim         *alisim.Server
	Config      *config.Config

	cancel context.CancelFunc
	wg     sync.WaitGroup
	errs   chan error
	mini   *miniredis.Miniredis
}

// Start starts a stack; Stop (or the end of ctx) stops it.
func Start(ctx context.Context, o Options) (*Stack, error) {
	log := o.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(ctx)
	s := &Stack{cancel: cancel, errs: make(chan error, 16), Token: DevToken}
	fail := func(err error) (*Stack, error) { s.Stop(); return nil, err }

	s.RedisURL = o.RedisURL
	if s.RedisURL == "" {
		m := miniredis.NewMiniRedis()
		if err := m.StartAddr("127.0.0.1:0"); err != nil {
			return fail(fmt.Errorf("embedded redis: %w", err))
		}
		s.mini = m
		s.RedisURL = "redis://" + m.Addr() + "/0"
	}

	simCfg := o.Sim
	if len(simCfg.Accounts) == 0 {
		simCfg.Accounts = []alisim.Account{{UID: DevUID, AccessKeyID: DevKeyID, AccessKeySecret: DevSecret}}
	}
	if simCfg.JobDuration == 0 {
		simCfg.JobDuration = 5 * time.Second
	}
	s.Sim = alisim.New(simCfg)
	simLn, err := net.Listen("tcp", cmp.Or(o.SimAddr, "127.0.0.1:0"))
	if err != nil {
		return fail(fmt.Errorf("simulator listen: %w", err))
	}
	simSrv := &http.Server{Handler: s.Sim, ReadHeaderTimeout: 10 * time.Second}
	s.SimURL = "http://" + simLn.Addr().String()
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		go func() { <-ctx.Done(); simSrv.Close() }()
		if err := simSrv.Serve(simLn); !errors.Is(err, http.ErrServerClosed) {
			s.errs <- fmt.Errorf("simulator: %w", err)
		}
	}()

	env := map[string]string{
		"DISTQ_REDIS_URL":                 s.RedisURL,
		"DISTQ_HTTP_ADDR":                 cmp.Or(o.APIAddr, "127.0.0.1:0"),
		"DISTQ_METRICS_ADDR":              cmp.Or(o.MetricsAddr, "127.0.0.1:0"),
		"DISTQ_API_TOKENS":                DevTeam + ":" + DevToken,
		"DISTQ_ALIBABA_UID":               simCfg.Accounts[0].UID,
		"ALIBABA_CLOUD_ACCESS_KEY_ID":     simCfg.Accounts[0].AccessKeyID,
		"ALIBABA_CLOUD_ACCESS_KEY_SECRET": simCfg.Accounts[0].AccessKeySecret,
		"DISTQ_ALIBABA_ENDPOINT":          s.SimURL,
	}
	for k, v := range o.Env {
		env[k] = v
	}
	if tokens, ok := o.Env["DISTQ_API_TOKENS"]; ok {
		s.Token = ""
		if _, tok, ok := strings.Cut(strings.Split(tokens, ",")[0], ":"); ok {
			s.Token = tok
		}
	}
	cfg, err := config.FromEnv(func(k string) string { return env[k] })
	if err != nil {
		return fail(err)
	}
	s.Config = cfg

	apiReady := make(chan string, 1)
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		if err := app.RunAPI(ctx, cfg, log.With("component", "api"), func(a string) { apiReady <- a }); err != nil {
			s.errs <- fmt.Errorf("api: %w", err)
		}
	}()
	for i := range max(o.Workers, 1) {
		wcfg := *cfg
		if i > 0 {
			wcfg.MetricsAddr = "127.0.0.1:0"
		}
		ready := make(chan string, 1)
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			if err := app.RunWorker(ctx, &wcfg, log.With("component", "worker", "worker", i), o.Worker, func(a string) { ready <- a }); err != nil {
				s.errs <- fmt.Errorf("worker %d: %w", i, err)
			}
		}()
		select {
		case a := <-ready:
			s.MetricsURLs = append(s.MetricsURLs, "http://"+a)
		case err := <-s.errs:
			return fail(err)
		}
	}
	select {
	case a := <-apiReady:
		s.APIURL = "http://" + a
	case err := <-s.errs:
		return fail(err)
	}
	return s, nil
}

// Errors carries failures of the stack's parts after Start.
func (s *Stack) Errors() <-chan error { return s.errs }

// Stop stops every part and waits for them.
func (s *Stack) Stop() {
	s.cancel()
	s.wg.Wait()
	if s.mini != nil {
		s.mini.Close()
	}
}
