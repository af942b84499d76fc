package service

import (
	"errors"
	"fmt"
	"time"

	"github.com/distq/distq/internal/distribution"
)

// Code says what kind of refusal an *Error is. The values are stable: the
// REST API sends them as its error codes.
type Code string

// Codes of the use cases' errors.
const (
	// CodeInvalid: the request is not valid (Fields says why; for a batch
	// whose every item failed, Items).
	CodeInvalid Code = "validation_failed"
	// CodeNotFound: no such distribution or batch for this team.
	CodeNotFound Code = "not_found"
	// CodeDuplicate: an active distribution of the same product to the same
	// target exists: the team's own (ExistingID), or another team's
	// (OtherTeamSince, and no id).
	CodeDuplicate Code = "duplicate_active"
	// CodeInvalidState: the distribution (or no item of the batch) is in a
	// state the operation applies to.
	CodeInvalidState Code = "invalid_state"
	// CodeTooManyItems: a batch larger than MaxBatchItems.
	CodeTooManyItems Code = "too_many_items"
	// CodeBadIdempotencyKey: an Idempotency-Key that is not 1 to 255
	// printable ASCII characters.
	CodeBadIdempotencyKey Code = "bad_idempotency_key"
	// CodeIdempotencyKeyReused: the key was used with another request.
	CodeIdempotencyKeyReused Code = "idempotency_key_reused"
	// CodeIdempotencyInProgress: the first request with the key still runs.
	CodeIdempotencyInProgress Code = "idempotency_in_progress"
	// CodeBadCursor: a list cursor the API did not give for this listing
	// (another filter, another team, or made up).
	CodeBadCursor Code = "bad_cursor"
	// CodeUnavailable: the queue could not take the work; nothing was
	// accepted and the caller may try again.
	CodeUnavailable Code = "unavailable"
	// CodeBadValue: an operator's change names a value out of its bounds
	// or an unknown setting (Fields says which).
	CodeBadValue Code = "bad_value"
)

// Error is a use case's refusal. Message is for the caller; Error() adds
// the cause, for logs.
type Error struct {
	Code    Code
	Message string
	// ExistingID names the active distribution of a CodeDuplicate when it
	// is the caller's team's own.
	ExistingID string
	// OtherTeamSince is set on a CodeDuplicate whose active distribution is
	// another team's: when that one was created. Its id is never told.
	OtherTeamSince *time.Time
	// Fields lists what is wrong with a request (CodeInvalid).
	Fields []distribution.FieldError
	// Items holds every item's outcome when no item of a batch was valid.
	Items []ItemResult
	// Err is the cause, if any.
	Err error
}

func (e *Error) Error() string {
	if e.Err != nil && e.Err.Error() != e.Message {
		return e.Message + ": " + e.Err.Error()
	}
	return e.Message
}
func (e *Error) Unwrap() error { return e.Err }

func errorf(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

func notFound(what, id string) *Error {
	return &Error{Code: CodeNotFound, Message: fmt.Sprintf("no %s with id %q", what, id), Err: distribution.ErrNotFound}
}

// domainError turns the domain's refusals into *Error and leaves any other
// error (the store's, the queue's) as it is.
func domainError(err error) error {
	var ve *distribution.ValidationError
	if errors.As(err, &ve) {
		return &Error{Code: CodeInvalid, Message: ve.Error(), Fields: ve.Fields, Err: err}
	}
	var te *distribution.TransitionError
	if errors.As(err, &te) {
		return &Error{Code: CodeInvalidState, Message: te.Error(), Err: err}
	}
	return err
}

// AsError returns err as an *Error: the use cases' own, or the domain's
// refusals (a *distribution.ValidationError, a *distribution.TransitionError)
// given their code. It reports false for any other error.
func AsError(err error) (*Error, bool) {
	var e *Error
	if errors.As(err, &e) {
		return e, true
	}
	if errors.As(domainError(err), &e) {
		return e, true
	}
	return nil, false
}

// IsCode reports whether err is an *Error of code.
func IsCode(err error, code Code) bool {
	e, ok := AsError(err)
	return ok && e.Code == code
}
