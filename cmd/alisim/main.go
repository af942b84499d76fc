// Command alisim serves the Alibaba Cloud IoT endpoint simulator
// (internal/alisim) over HTTP, for the development stack, docker-compose and
// the benchmark. It is configured from ALISIM_* environment variables; see
// alisim.ConfigFromEnv, plus ALISIM_ADDR (default ":8081").
package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/distq/distq/internal/alisim"
)

// shutdownTimeout bounds the wait for calls in flight at shutdown; a call
// held by the timeout fault is cut at that point.
const shutdownTimeout = 5 * time.Second

// configError is a bad setting: the binary exits 2.
type configError struct{ err error }

func (e configError) Error() string { return e.err.Error() }
func (e configError) Unwrap() error { return e.err }

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	logger := slog.New(slog.NewTextHandler(os.Stderr, nil))
	err := run(ctx, os.Getenv, logger, nil)
	stop()
	if err != nil {
		logger.Error("alisim stopped", "err", err)
		if errors.As(err, new(configError)) {
			os.Exit(2)
		}
		os.Exit(1)
	}
}

// run serves until ctx is done, then shuts down gracefully. ready, when not
// nil, receives the address listened on once the server accepts calls.
func run(ctx context.Context, getenv func(string) string, logger *slog.Logger, ready func(addr string)) error {
	cfg, err := alisim.ConfigFromEnv(getenv)
	if err != nil {
		return configError{err}
	}
	addr := cmp.Or(getenv("ALISIM_ADDR"), ":8081")
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return configError{fmt.Errorf("ALISIM_ADDR: %w", err)}
	}
	srv := &http.Server{
		Handler:           alisim.New(cfg),
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelDebug),
	}
	uids := make([]string, 0, len(cfg.Accounts))
	for _, a := range cfg.Accounts {
		uids = append(uids, a.UID) // never the secret
	}
	logger.Info("alisim listening", "addr", ln.Addr().String(), "account_uids", uids,
		"max_jobs", cmp.Or(cfg.MaxJobs, 10), "quota_mode", cmp.Or(cfg.QuotaMode, alisim.QuotaUnfinished),
		"job_duration", cmp.Or(cfg.JobDuration, 5*time.Second).String())

	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	if ready != nil {
		ready(ln.Addr().String())
	}
	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	logger.Info("alisim shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		// Calls still held by the timeout fault: cut them.
		_ = srv.Close()
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve: %w", err)
	}
	return nil
}
