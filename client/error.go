package client

import (
	"encoding/json"
	"fmt"
	"net/http"
	"time"
)

// Error is an error answer of the API, whose body is
// {"error": {"code": "...", "message": "...", "details": [...]}}.
// Every method of Client returns it (as error) for a 4xx or 5xx answer;
// use errors.As to read it. It is also the error of a batch item
// (ItemResult.Error), where Status, RetryAfter and RequestID are zero.
type Error struct {
	// Status is the HTTP status of the answer.
	Status int `json:"-"`
	// Code is stable and machine-readable: malformed_json, unknown_field,
	// validation_failed, not_found, duplicate_active, invalid_state,
	// rate_limited, unavailable, … An answer that is not distq's error
	// shape (a proxy's, say) gets the code "http_<status>".
	Code string `json:"code"`
	// Message says what went wrong, for people.
	Message string `json:"message"`
	// Details are per-field problems (FieldErrors), the team's own active
	// distribution of a duplicate (ExistingID), when another team's was
	// created (OtherTeamSince), or for a batch with no valid item every
	// item's result (ItemResults), as sent: always a JSON list, [] when
	// there is nothing to add.
	Details json.RawMessage `json:"details"`
	// RetryAfter is the answer's Retry-After (a 429 carries one).
	RetryAfter time.Duration `json:"-"`
	// RequestID is the answer's X-Request-Id, also in the api's logs.
	RequestID string `json:"-"`
}

func (e *Error) Error() string {
	msg := fmt.Sprintf("%s (HTTP %d): %s", e.Code, e.Status, e.Message)
	if e.RequestID != "" {
		msg += " [request " + e.RequestID + "]"
	}
	return msg
}

// Unavailable reports whether the answer says the service cannot serve
// now (502, 503, 504): trying again later may succeed.
func (e *Error) Unavailable() bool {
	return e.Status == http.StatusBadGateway || e.Status == http.StatusServiceUnavailable || e.Status == http.StatusGatewayTimeout
}

// ExistingID is the active distribution named by a duplicate_active
// error's details, or "".
func (e *Error) ExistingID() string {
	for _, d := range details[map[string]any](e.Details) {
		if id, ok := d["existing_id"].(string); ok {
			return id
		}
	}
	return ""
}

// OtherTeamSince reports, for a duplicate_active error whose active
// distribution is another team's (whose id is never told), when that one
// was created.
func (e *Error) OtherTeamSince() (time.Time, bool) {
	for _, d := range details[OtherTeamRef](e.Details) {
		if d.OtherTeam {
			return d.Since, true
		}
	}
	return time.Time{}, false
}

// FieldErrors are the per-field problems of a validation_failed or
// malformed_json error.
func (e *Error) FieldErrors() []FieldError {
	var out []FieldError
	for _, f := range details[FieldError](e.Details) {
		if f.Field != "" {
			out = append(out, f)
		}
	}
	return out
}

// ItemResults are the item results of a batch none of whose items was
// valid (validation_failed); nil when the details are not item results.
func (e *Error) ItemResults() []ItemResult {
	var rs []ItemResult
	if json.Unmarshal(e.Details, &rs) != nil {
		return nil
	}
	return rs
}

// TransportError is a request that got no HTTP answer: the server is
// unreachable, or the connection broke.
type TransportError struct {
	// URL is the client's base URL.
	URL string
	Err error
}

func (e *TransportError) Error() string { return fmt.Sprintf("cannot reach %s: %v", e.URL, e.Err) }

func (e *TransportError) Unwrap() error { return e.Err }
