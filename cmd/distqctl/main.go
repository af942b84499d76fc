// Command distqctl is the command-line client of distq for teams: it
// submits one product or a file of hundreds of them as batches, follows a
// batch with a live progress bar, and gets, lists, cancels and retries
// distributions and batches over the REST API (v1). docs/CLI.md is its
// manual; the exit codes are listed there and in exitcodes.go.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], newApp(os.Stdin, os.Stdout, os.Stderr, os.Getenv))
	stop()
	os.Exit(code)
}
