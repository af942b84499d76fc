// Command devstack runs the whole of distq in one process for a developer:
// the Alibaba endpoint simulator, the api and a worker, on an embedded Redis
// (or DISTQ_REDIS_URL's). It prints the API address, a dev token and a
// ready-to-paste curl. `make run` starts it.
package main

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/distq/distq/internal/alisim"
	"github.com/distq/distq/internal/devstack"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "devstack:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context) error {
	simCfg, err := alisim.ConfigFromEnv(os.Getenv)
	if err != nil {
		return err
	}
	if os.Getenv("ALISIM_ACCOUNTS") == "" {
		simCfg.Accounts = nil // the stack's dev account
	}
	level := slog.LevelInfo
	if os.Getenv("DISTQ_DEV_QUIET") != "" {
		level = slog.LevelWarn
	}
	st, err := devstack.Start(ctx, devstack.Options{
		RedisURL:    os.Getenv("DISTQ_REDIS_URL"),
		APIAddr:     cmp.Or(os.Getenv("DISTQ_HTTP_ADDR"), "127.0.0.1:8080"),
		SimAddr:     cmp.Or(os.Getenv("ALISIM_ADDR"), "127.0.0.1:8081"),
		MetricsAddr: cmp.Or(os.Getenv("DISTQ_METRICS_ADDR"), "127.0.0.1:9090"),
		Sim:         simCfg,
		Log:         slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: level})),
	})
	if err != nil {
		return err
	}
	defer st.Stop()
	redis := st.RedisURL + " (embedded; set DISTQ_REDIS_URL to use your own)"
	if os.Getenv("DISTQ_REDIS_URL") != "" {
		redis = st.RedisURL
	}
	fmt.Printf(`
distq dev stack is up
  api:        %[1]s   (openapi: %[1]s/openapi.yaml)
  simulator:  %[2]s   (audit: %[2]s/_alisim/audit)
  metrics:    %[1]s/metrics  %[3]s/metrics
  redis:      %[4]s
  dev token:  %[5]s
  job time:   %[6]v per remote job

Submit a distribution:
  curl -s -X POST %[1]s/v1/distributions -H 'Authorization: Bearer %[5]s' -H 'Content-Type: application/json' -d '{"product_key":"a1demoProduct","source_instance_id":"iotx-oxssharez200","target_instance_id":"iot-cn-6ja0000demo"}'
Then follow it (replace ID):
  curl -s '%[1]s/v1/distributions/ID?wait=30s&state=queued' -H 'Authorization: Bearer %[5]s'

Ctrl-C stops everything.
`, st.APIURL, st.SimURL, st.MetricsURLs[0], redis, st.Token, cmp.Or(simCfg.JobDuration, 5*time.Second))
	select {
	case <-ctx.Done():
	case err := <-st.Errors():
		return err
	}
	fmt.Println("stopping…")
	return nil
}
