// Command devstack runs the whole of distq in one process for a developer:
// the Alibaba endpoint simulator, the api and a worker, on an embedded Redis
// (or DISTQ_REDIS_URL's). It honours the settings of the README's
// configuration table that make sense on one machine, prints which it took
// (never a secret), the API address, a token and a ready-to-paste curl.
// `make run` starts it; Ctrl-C stops it cleanly with exit status 0.
package main

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/distq/distq/internal/devstack"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		stop() // a second Ctrl-C ends the process at once, drained or not
	}()
	if err := run(ctx, os.Getenv, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "devstack:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, getenv func(string) string, out io.Writer) error {
	opts, took, ignored, err := devstack.FromEnv(getenv)
	if err != nil {
		return err
	}
	level := slog.LevelInfo
	if getenv("DISTQ_DEV_QUIET") != "" {
		level = slog.LevelWarn
	}
	opts.Log = slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	st, err := devstack.Start(ctx, opts)
	if err != nil {
		return err
	}
	defer st.Stop()
	banner(out, st, opts, took, ignored)
	select {
	case <-ctx.Done():
	case err := <-st.Errors():
		return err
	}
	fmt.Fprintln(out, "stopping…")
	return nil
}

func banner(out io.Writer, st *devstack.Stack, opts devstack.Options, took, ignored []devstack.Setting) {
	redis := st.RedisURL + " (embedded; set DISTQ_REDIS_URL to use your own)"
	if opts.RedisURL != "" {
		redis = "DISTQ_REDIS_URL's"
		if u, err := url.Parse(opts.RedisURL); err == nil {
			redis = u.Redacted() // no password
		}
	}
	token, bearer := st.Token+" (team "+devstack.DevTeam+")", st.Token
	if _, own := opts.Env["DISTQ_API_TOKENS"]; own {
		token, bearer = "yours, from DISTQ_API_TOKENS (put one in TOKEN for the examples)", "$TOKEN"
	} else if _, file := opts.Env["DISTQ_API_TOKENS_FILE"]; file {
		token += ", and those of DISTQ_API_TOKENS_FILE"
	}
	cfg := st.Config
	var accounts []string
	for _, a := range cfg.Accounts {
		accounts = append(accounts, fmt.Sprintf("%s (uid %s: create %d/s, query %d/s, %d jobs)", a.Name, a.UID, a.CreateQPS, a.QueryQPS, a.MaxJobs))
	}
	fmt.Fprintf(out, `
distq dev stack is up
  api:        %[1]s   (openapi: %[1]s/openapi.yaml)
  console:    %[1]s/console/   (sign in with a team's API token)
  simulator:  %[2]s   (audit: %[2]s/_alisim/audit)
  metrics:    %[1]s/metrics  %[3]s/metrics
  redis:      %[4]s
  token:      %[5]s
  accounts:   %[6]s
  teams:      %[7]d requests/s each (DISTQ_TEAM_RPS)
  job time:   %[8]v per remote job (ALISIM_JOB_DURATION)
`, st.APIURL, st.SimURL, st.MetricsURLs[0], redis, token, strings.Join(accounts, "; "), cfg.TeamRPS,
		cmp.Or(opts.Sim.JobDuration, 5*time.Second))
	if len(took) == 0 {
		fmt.Fprintln(out, "  settings:   the defaults (none taken from the environment; see the README's Configuration)")
	}
	for i, s := range took {
		fmt.Fprintf(out, "  %-11s %s\n", map[bool]string{true: "settings:"}[i == 0], s)
	}
	for _, s := range ignored {
		fmt.Fprintf(out, "  ignored:    %s\n", s)
	}
	fmt.Fprintf(out, `
Submit a distribution:
  curl -s -X POST %[1]s/v1/distributions -H "Authorization: Bearer %[2]s" -H 'Content-Type: application/json' -d '{"product_key":"a1demoProduct","source_instance_id":"iotx-oxssharez200","target_instance_id":"iot-cn-6ja0000demo"}'
Then follow it (replace ID):
  curl -s '%[1]s/v1/distributions/ID?wait=30s&state=queued' -H "Authorization: Bearer %[2]s"

Ctrl-C stops everything.
`, st.APIURL, bearer)
}
