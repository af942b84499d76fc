package httpapi

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"syscall"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/distq/distq/internal/distribution"
	"github.com/distq/distq/internal/service"
)

// One table maps every error to a status and a code; storage failures are
// 503, whatever their wrapping, and only the unknown is a 500.
func TestToError(t *testing.T) {
	t.Parallel()
	wrap := func(err error) error { return fmt.Errorf("get d_1: %w", err) }
	tests := []struct {
		name   string
		err    error
		status int
		code   string
	}{
		{"connection refused", wrap(&net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}), 503, "unavailable"},
		{"connection reset", wrap(&net.OpError{Op: "read", Net: "tcp", Err: os.NewSyscallError("read", syscall.ECONNRESET)}), 503, "unavailable"},
		{"no such host", wrap(&net.DNSError{Err: "no such host", Name: "redis", IsNotFound: true}), 503, "unavailable"},
		{"deadline", wrap(context.DeadlineExceeded), 503, "unavailable"},
		{"server closed the connection", wrap(io.EOF), 503, "unavailable"},
		{"client closed", wrap(redis.ErrClosed), 503, "unavailable"},
		{"pool timeout", wrap(redis.ErrPoolTimeout), 503, "unavailable"},
		{"pool exhausted", wrap(redis.ErrPoolExhausted), 503, "unavailable"},
		{"update lost to other writers", fmt.Errorf("update d_1: %w", distribution.ErrConflict), 503, "concurrent_update"},
		{"queue refused the work", &service.Error{Code: service.CodeUnavailable, Message: "m", Err: errors.New("x")}, 503, "unavailable"},
		{"not found", &service.Error{Code: service.CodeNotFound, Message: "m"}, 404, "not_found"},
		{"duplicate", &service.Error{Code: service.CodeDuplicate, Message: "m", ExistingID: "d_1"}, 409, "duplicate_active"},
		{"invalid state", &service.Error{Code: service.CodeInvalidState, Message: "m"}, 409, "invalid_state"},
		{"transition refused, unwrapped", &distribution.TransitionError{ID: "d_1", Op: "canceled", From: distribution.StateRunning, Allowed: "a queued distribution"}, 409, "invalid_state"},
		{"validation, unwrapped", &distribution.ValidationError{Fields: []distribution.FieldError{{Field: "product_key", Message: "is required"}}}, 422, "validation_failed"},
		{"too many items", &service.Error{Code: service.CodeTooManyItems, Message: "m"}, 413, "too_many_items"},
		{"bad idempotency key", &service.Error{Code: service.CodeBadIdempotencyKey, Message: "m"}, 400, "bad_idempotency_key"},
		{"idempotency key reused", &service.Error{Code: service.CodeIdempotencyKeyReused, Message: "m"}, 422, "idempotency_key_reused"},
		{"idempotency in progress", &service.Error{Code: service.CodeIdempotencyInProgress, Message: "m"}, 409, "idempotency_in_progress"},
		{"a code without a status", &service.Error{Code: "new_code", Message: "m"}, 500, "internal"},
		{"anything else", errors.New("decode d_1: unexpected end of JSON input"), 500, "internal"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := toError(tt.err)
			if e.Status != tt.status || e.Code != tt.code {
				t.Errorf("toError(%v) = %d %s, want %d %s", tt.err, e.Status, e.Code, tt.status, tt.code)
			}
		})
	}
}

// Every use-case code has a status: a code added without one would answer
// 500.
func TestEveryCodeHasAStatus(t *testing.T) {
	t.Parallel()
	for _, c := range []service.Code{service.CodeInvalid, service.CodeNotFound, service.CodeDuplicate,
		service.CodeInvalidState, service.CodeTooManyItems, service.CodeBadIdempotencyKey,
		service.CodeIdempotencyKeyReused, service.CodeIdempotencyInProgress, service.CodeUnavailable} {
		if s := statusOf[c]; s < 400 {
			t.Errorf("code %s: status %d", c, s)
		}
	}
	if got := toError(&service.Error{Code: service.CodeDuplicate, ExistingID: "d_1"}).Details; len(got) != 1 {
		t.Errorf("duplicate details %v, want the existing id", got)
	}
}
