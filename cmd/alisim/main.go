// Command alisim serves the Alibaba Cloud IoT endpoint simulator
// (internal/alisim) over HTTP, for the development stack, docker-compose and
// the benchmark. It is configured from ALISIM_* environment variables (see
// usage, or `alisim -h`); it takes no arguments.
package main

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
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

// usage documents the settings; the README's configuration section says the
// same.
const usage = `Usage: alisim [-h]

alisim serves a simulator of the Alibaba Cloud IoT Platform's distribution
APIs (API 2018-01-20: CreateProductDistributeJob, CreateDeviceDistributeJob,
QueryDeviceDistributeJob, ListDeviceDistributeJob, DeleteDeviceDistributeJob,
QueryDeviceDistributeDetail, ...) over HTTP, with the real endpoint's
signatures, per-account rates and job quota, and injectable faults. Admin
endpoints: GET /_alisim/audit, GET|POST /_alisim/jobs, GET|POST
/_alisim/faults, GET /healthz; device jobs' result files under
/_alisim/detail/.

Settings (environment; a bad one stops alisim with exit status 2):
  ALISIM_ADDR              listen address (default :8081)
  ALISIM_ACCOUNTS          uid:accessKeyId:secret[,...] the keys it accepts
                           (default ` + alisim.DevAccounts + `)
  ALISIM_JOB_DURATION      time from a job's creation to its end (default 5s)
  ALISIM_FAIL_RATIO        share of jobs that end failed, 0..1 (default 0)
  ALISIM_LIST_LAG          how long a new job stays hidden from
                           ListDeviceDistributeJob (default 0)
  ALISIM_MAX_JOBS          jobs an account may hold (default 10)
  ALISIM_QUOTA_MODE        which jobs count against it: unfinished or
                           undeleted (default unfinished)
  ALISIM_QPS               Action=rate[,...] calls per second per account UID,
                           e.g. CreateProductDistributeJob=4 (default the
                           documented rates: each Create 2, Query 10, List 5,
                           Delete 2, Detail 5)
  ALISIM_MISSING_PRODUCTS  productKey[,...] answered iot.prod.NotExistedProduct
  ALISIM_LATENCY           delay before each call: min-max (0-50ms) or one
                           duration (default none)
  ALISIM_ERROR_RATIO       share of calls answered 500 or 503, 0..1 (default 0)
  ALISIM_TIMEOUT_RATIO     share of successful creates whose job is made but
                           whose answer never comes, 0..1 (default 0)
  ALISIM_ERROR_AFTER_CREATE_RATIO
                           share of successful creates whose job is made but
                           that are answered 503 or 500, 0..1 (default 0)
  ALISIM_QUOTA_EXCEEDED_CODE, ALISIM_CROSS_ACCOUNT_CODE, ALISIM_JOB_NOT_FOUND_CODE
                           the business codes of those refusals (defaults
                           ` + alisim.DefaultQuotaExceededCode + `,
                           ` + alisim.DefaultCrossAccountCode + `,
                           ` + alisim.DefaultJobNotFoundCode + `)
  ALISIM_DEVICE_PACE       time a device job takes per device, on top of
                           ALISIM_JOB_DURATION (default 1ms; 0 for none)
  ALISIM_MISSING_DEVICES   deviceName[,...] whose distribution fails with
                           iot.device.NotExistedDevice in the result file
  ALISIM_DEVICE_FAIL_RATIO fault: share of the devices of each device job
                           that fail, 0..1 (default 0)
  ALISIM_DEVICE_FAIL_CODE  their code (default ` + alisim.DefaultDeviceFailCode + `)
  ALISIM_DETAIL_VALIDITY   how long a QueryDeviceDistributeDetail file URL
                           stays valid (default 10m)
  ALISIM_DETAIL_FORMAT     the result files' format: jsonl or csv (default jsonl)
  ALISIM_SEED              seed of every random choice, for repeatable faults
                           (default random)
`

func main() {
	switch err := parseArgs(os.Args[1:], os.Stdout, os.Stderr); {
	case errors.Is(err, flag.ErrHelp):
		os.Exit(0)
	case err != nil:
		os.Exit(2)
	}
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

// parseArgs accepts -h (usage on stdout, flag.ErrHelp) and nothing else
// (usage on stderr, an error).
func parseArgs(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("alisim", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	err := fs.Parse(args)
	if err == nil && fs.NArg() > 0 {
		err = fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	switch {
	case errors.Is(err, flag.ErrHelp):
		fmt.Fprint(stdout, usage)
	case err != nil:
		fmt.Fprintf(stderr, "alisim: %v\n\n%s", err, usage)
	}
	return err
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
