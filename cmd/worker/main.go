// Command worker processes distq's queue: it submits distributions to the
// Alibaba endpoint within the account quotas and polls their jobs. Run as
// many replicas as you like; they share the quotas through Redis.
package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/distq/distq/internal/app"
	"github.com/distq/distq/internal/config"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Getenv); err != nil {
		fmt.Fprintln(os.Stderr, "worker:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, getenv func(string) string) error {
	cfg, err := config.ForWorker(getenv)
	if err != nil {
		return err
	}
	return app.RunWorker(ctx, cfg, app.Logger(slog.LevelInfo), app.WorkerOptions{}, nil)
}
