package httpapi

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/distq/distq/internal/distribution"
	"github.com/distq/distq/internal/store"
)

// Error is the body of every error answer:
// {"error": {"code": "...", "message": "...", "details": [...]}}.
type Error struct {
	Status  int    `json:"-"`
	Code    string `json:"code"`
	Message string `json:"message"`
	Details []any  `json:"details,omitempty"`
	// RetryAfter, in seconds, is sent as a Retry-After header when set.
	RetryAfter int `json:"-"`
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

type errorBody struct {
	Error *Error `json:"error"`
}

func errorf(status int, code, format string, args ...any) *Error {
	return &Error{Status: status, Code: code, Message: fmt.Sprintf(format, args...)}
}

func notFound(what, id string) *Error {
	return errorf(http.StatusNotFound, "not_found", "no %s with id %q", what, id)
}

func validationError(err *distribution.ValidationError) *Error {
	e := errorf(http.StatusUnprocessableEntity, "validation_failed", "%s", err.Error())
	for _, f := range err.Fields {
		e.Details = append(e.Details, f)
	}
	return e
}

// errorHandler maps every error once to a status and the JSON body, and
// logs server-side failures (only there: handlers return errors, they do
// not log them).
func errorHandler(log *slog.Logger) echo.HTTPErrorHandler {
	return func(err error, c echo.Context) {
		if c.Response().Committed {
			return
		}
		e := toError(err)
		if e.Status >= 500 {
			log.Error("request failed", "request_id", c.Response().Header().Get(echo.HeaderXRequestID),
				"method", c.Request().Method, "path", c.Path(), "status", e.Status, "err", err)
		}
		if e.RetryAfter > 0 {
			c.Response().Header().Set("Retry-After", strconv.Itoa(e.RetryAfter))
		}
		if c.Request().Method == http.MethodHead {
			_ = c.NoContent(e.Status)
			return
		}
		_ = c.JSON(e.Status, errorBody{Error: e})
	}
}

func toError(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	var he *echo.HTTPError
	if errors.As(err, &he) {
		msg := fmt.Sprint(he.Message)
		switch he.Code {
		case http.StatusNotFound:
			return errorf(he.Code, "not_found", "no such route")
		case http.StatusMethodNotAllowed:
			return errorf(he.Code, "method_not_allowed", "method not allowed on this route")
		case http.StatusRequestEntityTooLarge:
			return errorf(he.Code, "too_large", "request body is larger than this route accepts")
		case http.StatusUnauthorized:
			return errorf(he.Code, "unauthorized", "%s", msg)
		case http.StatusServiceUnavailable:
			return errorf(he.Code, "unavailable", "%s", msg)
		}
		if he.Code >= 400 && he.Code < 500 {
			return errorf(he.Code, "bad_request", "%s", msg)
		}
	}
	if isUnavailable(err) {
		return errorf(http.StatusServiceUnavailable, "unavailable", "the queue's storage (Redis) is unreachable; try again shortly")
	}
	return errorf(http.StatusInternalServerError, "internal", "internal error")
}

// isUnavailable reports whether err is Redis being away: a network error,
// a timeout, or a closed or busy connection pool.
func isUnavailable(err error) bool {
	var netErr net.Error
	var opErr *net.OpError
	if errors.As(err, &netErr) || errors.As(err, &opErr) || errors.Is(err, context.DeadlineExceeded) ||
		errors.Is(err, store.ErrConflict) {
		return true
	}
	s := err.Error()
	for _, sub := range []string{"connection refused", "i/o timeout", "redis: client is closed", "connection pool timeout",
		"LOADING", "EOF", "broken pipe", "connection reset", "no such host", "READONLY", "MASTERDOWN"} {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}
