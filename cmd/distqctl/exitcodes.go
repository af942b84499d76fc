package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/distq/distq/client"
)

// Exit codes of distqctl. They are part of its contract (docs/CLI.md).
const (
	// ExitOK: everything asked for was done; with --wait, every item succeeded.
	ExitOK = 0
	// ExitUsage: bad flags or arguments, a missing or invalid token (or a
	// team's token on an admin command), an unreadable config or input file.
	ExitUsage = 1
	// ExitItems: some items did not succeed: bad lines in the file,
	// items the API rejected (e.g. duplicate_active), or, with --wait,
	// distributions that failed or were canceled.
	ExitItems = 2
	// ExitInterrupted: interrupted (Ctrl-C, SIGTERM) before the end; what
	// was submitted keeps running on the server.
	ExitInterrupted = 3
	// ExitUnreachable: the server could not be reached, or answered that
	// it is unavailable (502, 503, 504).
	ExitUnreachable = 4
	// ExitAPI: the API refused the request (not found, invalid state,
	// idempotency key reused, …).
	ExitAPI = 5
)

// unreachableError is a request that got no HTTP answer.
type unreachableError struct {
	URL string
	Err error
}

func (e *unreachableError) Error() string {
	return fmt.Sprintf("cannot reach distq at %s (check --url or DISTQ_URL): %v", e.URL, e.Err)
}

func (e *unreachableError) Unwrap() error { return e.Err }

// apiError gives a client error distqctl's words: a request that got no
// answer says which flag or variable names the server.
func apiError(err error) error {
	var te *client.TransportError
	if errors.As(err, &te) {
		return &unreachableError{URL: te.URL, Err: te.Err}
	}
	return err
}

// usageError is a mistake of the caller's: flags, config, input file.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return &usageError{msg: fmt.Sprintf(format, args...)} }

// errItems reports that some items did not succeed; the details were
// already printed.
var errItems = errors.New("some items did not succeed")

// interruptedError is a command stopped by a signal; Hint says how to go on.
type interruptedError struct{ Hint string }

func (e *interruptedError) Error() string {
	if e.Hint == "" {
		return "interrupted"
	}
	return "interrupted; " + e.Hint
}

// exitCode maps the error a command returned to the process's exit code.
func exitCode(ctx context.Context, err error) int {
	var (
		ue *usageError
		ie *interruptedError
		ne *unreachableError
		ae *client.Error
	)
	switch {
	case err == nil:
		return ExitOK
	case errors.Is(err, errItems):
		return ExitItems
	case errors.As(err, &ie), ctx.Err() != nil && errors.Is(err, context.Canceled):
		return ExitInterrupted
	case errors.As(err, &ue):
		return ExitUsage
	case errors.As(err, &ne):
		return ExitUnreachable
	case errors.As(err, &ae):
		switch {
		case ae.Status == http.StatusUnauthorized, ae.Status == http.StatusForbidden:
			return ExitUsage // a wrong token (or a team's on an admin route) is a configuration error
		case ae.Unavailable():
			return ExitUnreachable
		}
		return ExitAPI
	}
	return ExitUsage // cobra's unknown commands, unreadable files, …
}
