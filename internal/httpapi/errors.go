package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/redis/go-redis/v9"

	"github.com/distq/distq/internal/distribution"
	"github.com/distq/distq/internal/service"
)

// Error is the body of every error answer:
// {"error": {"code": "...", "message": "...", "details": [...]}}, with
// details always a list, [] when there is nothing to add.
type Error struct {
	Status  int    `json:"-"`
	Code    string `json:"code"`
	Message string `json:"message"`
	Details []any  `json:"details"`
	// RetryAfter, in seconds, is sent as a Retry-After header when set.
	RetryAfter int `json:"-"`
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

// MarshalJSON encodes e with details as a list, never null: one shape for
// every error answer and every batch item's error.
func (e *Error) MarshalJSON() ([]byte, error) {
	type wire Error
	w := wire(*e)
	if w.Details == nil {
		w.Details = []any{}
	}
	return json.Marshal(w)
}

// otherTeamRef is the detail of a duplicate whose active distribution is
// another team's: when it was created, never its id.
type otherTeamRef struct {
	OtherTeam bool      `json:"other_team"`
	Since     time.Time `json:"since"`
}

type errorBody struct {
	Error *Error `json:"error"`
}

func errorf(status int, code, format string, args ...any) *Error {
	return &Error{Status: status, Code: code, Message: fmt.Sprintf(format, args...)}
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

// toError maps every error once to a status and a code: the API's own
// errors as they are, Echo's, the use cases' by their code (statusOf), and
// storage failures to 503, never 500.
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
	if se, ok := service.AsError(err); ok {
		return serviceError(se)
	}
	switch {
	case errors.Is(err, distribution.ErrConflict):
		return errorf(http.StatusServiceUnavailable, codeConcurrentUpdate, "the record was changed by others too many times in a row; try again")
	case isUnavailable(err):
		return errorf(http.StatusServiceUnavailable, "unavailable", "the queue's storage (Redis) is unreachable; try again shortly")
	}
	return errorf(http.StatusInternalServerError, "internal", "internal error")
}

// codeConcurrentUpdate is the code of a compare-and-set update that lost to
// other writers too many times in a row (distribution.ErrConflict): busy,
// not down, and worth a retry.
const codeConcurrentUpdate = "concurrent_update"

// statusOf is the status of each use-case error code.
var statusOf = map[service.Code]int{
	service.CodeInvalid:               http.StatusUnprocessableEntity,
	service.CodeNotFound:              http.StatusNotFound,
	service.CodeDuplicate:             http.StatusConflict,
	service.CodeInvalidState:          http.StatusConflict,
	service.CodeTooManyItems:          http.StatusRequestEntityTooLarge,
	service.CodeBadIdempotencyKey:     http.StatusBadRequest,
	service.CodeIdempotencyKeyReused:  http.StatusUnprocessableEntity,
	service.CodeIdempotencyInProgress: http.StatusConflict,
	service.CodeUnavailable:           http.StatusServiceUnavailable,
	service.CodeBadCursor:             http.StatusBadRequest,
	service.CodeBadValue:              http.StatusBadRequest,
}

// serviceError renders a use case's refusal, with its details: the fields
// of an invalid request, the existing id of the team's own duplicate (or,
// for another team's, only when it was created), every item's result of a
// batch without a valid item.
func serviceError(se *service.Error) *Error {
	status, ok := statusOf[se.Code]
	if !ok {
		return errorf(http.StatusInternalServerError, "internal", "internal error")
	}
	e := &Error{Status: status, Code: string(se.Code), Message: se.Message}
	for _, f := range se.Fields {
		e.Details = append(e.Details, f)
	}
	if se.ExistingID != "" {
		e.Details = append(e.Details, map[string]string{"existing_id": se.ExistingID})
	}
	if se.OtherTeamSince != nil {
		e.Details = append(e.Details, otherTeamRef{OtherTeam: true, Since: *se.OtherTeamSince})
	}
	for _, r := range itemResults(se.Items) {
		e.Details = append(e.Details, r)
	}
	return e
}

// isUnavailable reports whether err is Redis being away or unable to take
// writes, by the error's type: a network error or timeout, a dropped
// connection, a closed client or an exhausted pool, or a reply that says
// the server is loading, read-only, without its master, out of memory or
// busy. The caller may retry all of these.
func isUnavailable(err error) bool {
	var netErr net.Error
	return errors.As(err, &netErr) || // dial, DNS, reset, broken pipe, i/o timeout (*net.OpError is one)
		errors.Is(err, context.DeadlineExceeded) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || // the server closed the connection
		errors.Is(err, redis.ErrClosed) ||
		errors.Is(err, redis.ErrPoolTimeout) || errors.Is(err, redis.ErrPoolExhausted) ||
		redis.IsLoadingError(err) ||
		redis.IsReadOnlyError(err) ||
		redis.IsMasterDownError(err) ||
		redis.IsOOMError(err) ||
		redis.IsTryAgainError(err) ||
		redis.IsClusterDownError(err) ||
		redis.IsMaxClientsError(err)
}
