// Command api serves distq's REST API. Configuration comes from the
// environment (see the README); a bad setting stops it with one line
// naming the variable.
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
		fmt.Fprintln(os.Stderr, "api:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, getenv func(string) string) error {
	cfg, err := config.ForAPI(getenv)
	if err != nil {
		return err
	}
	return app.RunAPI(ctx, cfg, app.Logger(slog.LevelInfo), nil)
}
