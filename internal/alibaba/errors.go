package alibaba

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"

	"github.com/alibabacloud-go/tea/tea"
)

// Class is what a caller should do about an error.
type Class int

// The classes of an error from the endpoint.
const (
	// Transient: nothing happened remotely; try again after a back-off.
	Transient Class = iota
	// Throttled: the remote refused for flow control; every caller of the
	// account should back off together, and it is not a failure.
	Throttled
	// Permanent: the remote refused the request itself; trying again gives
	// the same answer. The remote Code and Message are kept verbatim.
	Permanent
	// Ambiguous: the request may have been carried out (a timeout or a
	// broken connection after sending); look before trying again.
	Ambiguous
	// QuotaExceeded: the account's job quota is full; wait for a job slot.
	QuotaExceeded
	// NotFound: the job named does not exist (or no longer).
	NotFound
)

func (c Class) String() string {
	switch c {
	case Transient:
		return "transient"
	case Throttled:
		return "throttled"
	case Permanent:
		return "permanent"
	case Ambiguous:
		return "ambiguous"
	case QuotaExceeded:
		return "quota_exceeded"
	case NotFound:
		return "not_found"
	}
	return fmt.Sprintf("class(%d)", int(c))
}

// Codes distq gives to failures that carry no remote code.
const (
	CodeTimeout      = "Timeout"
	CodeNetworkError = "NetworkError"
	CodeBadResponse  = "BadResponse"
)

// APIError is every failed call to the endpoint, classified once, here.
type APIError struct {
	Action     string
	Code       string // remote Code verbatim, or one of distq's Code* values
	Message    string // remote Message / ErrorMessage verbatim
	RequestID  string
	HTTPStatus int // 0 when no answer came
	Class      Class
	err        error
}

func (e *APIError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %s", e.Action, e.Code)
	if e.HTTPStatus != 0 {
		fmt.Fprintf(&b, " (HTTP %d)", e.HTTPStatus)
	}
	if e.Message != "" {
		fmt.Fprintf(&b, ": %s", e.Message)
	}
	if e.RequestID != "" {
		fmt.Fprintf(&b, " [request %s]", e.RequestID)
	}
	return b.String()
}

func (e *APIError) Unwrap() error { return e.err }

func classOf(err error) (Class, bool) {
	var e *APIError
	if errors.As(err, &e) {
		return e.Class, true
	}
	return Transient, false
}

// IsThrottled reports whether err is a remote flow-control refusal.
func IsThrottled(err error) bool { c, ok := classOf(err); return ok && c == Throttled }

// IsPermanent reports whether trying err's request again cannot succeed.
func IsPermanent(err error) bool { c, ok := classOf(err); return ok && c == Permanent }

// IsAmbiguous reports whether err's request may have been carried out.
func IsAmbiguous(err error) bool { c, ok := classOf(err); return ok && c == Ambiguous }

// IsQuotaExceeded reports whether err says the account's job quota is full.
func IsQuotaExceeded(err error) bool { c, ok := classOf(err); return ok && c == QuotaExceeded }

// IsNotFound reports whether err says the job does not exist.
func IsNotFound(err error) bool { c, ok := classOf(err); return ok && c == NotFound }

// Codes configures the remote codes no public source names.
type Codes struct {
	QuotaExceeded []string // the account's job quota is full
	JobNotFound   []string // no such job
}

// DefaultCodes are the codes the simulator answers with by default; the real
// endpoint's codes are not documented, so they are configurable.
var DefaultCodes = Codes{
	QuotaExceeded: []string{"iot.distribute.JobQuotaExceeded", "iot.job.QuotaExceeded"},
	JobNotFound:   []string{"iot.distribute.JobNotExist", "iot.distribute.JobNotFound"},
}

var (
	transientCodes = []string{"ServiceUnavailable", "InternalError", "SignatureNonceUsed",
		"iot.system.SystemException", "iot.common.SystemException", "ServiceTimeout"}
)

// classifyCode classifies a remote code.
func (c Codes) classifyCode(code string, status int) Class {
	switch {
	case strings.HasPrefix(code, "Throttling"):
		return Throttled
	case slices.Contains(c.QuotaExceeded, code):
		return QuotaExceeded
	case slices.Contains(c.JobNotFound, code):
		return NotFound
	case slices.Contains(transientCodes, code):
		return Transient
	case status >= 500:
		return Transient
	}
	return Permanent
}

// fromSDK turns an error from the SDK into an *APIError. sent says whether
// the request may have reached the endpoint (for Create: whether a timeout is
// ambiguous).
func (c Codes) fromSDK(action string, err error) *APIError {
	var sdkErr *tea.SDKError
	if errors.As(err, &sdkErr) && tea.IntValue(sdkErr.StatusCode) != 0 {
		e := &APIError{Action: action, Code: tea.StringValue(sdkErr.Code), HTTPStatus: tea.IntValue(sdkErr.StatusCode), err: err}
		var data map[string]any
		if sdkErr.Data != nil && json.Unmarshal([]byte(*sdkErr.Data), &data) == nil {
			e.RequestID, _ = data["RequestId"].(string)
			e.Message, _ = data["Message"].(string)
			if e.Code == "" {
				e.Code, _ = data["Code"].(string)
			}
		}
		if e.Message == "" {
			e.Message = tea.StringValue(sdkErr.Message)
		}
		e.Class = c.classifyCode(e.Code, e.HTTPStatus)
		return e
	}
	return networkError(action, err)
}

// networkError classifies a failure with no HTTP answer. A request that
// never left (dial refused, DNS) is transient; anything after it may have
// been sent is ambiguous.
func networkError(action string, err error) *APIError {
	e := &APIError{Action: action, Code: CodeNetworkError, Message: err.Error(), Class: Ambiguous, err: err}
	var opErr *net.OpError
	var dnsErr *net.DNSError
	switch {
	case errors.As(err, &opErr) && opErr.Op == "dial", errors.As(err, &dnsErr):
		e.Class = Transient
	case strings.Contains(err.Error(), "connection refused"), strings.Contains(err.Error(), "no such host"):
		// The SDK flattens some transport errors to strings; a refused
		// connection never carried the request.
		e.Class = Transient
	}
	var netErr net.Error
	if errors.As(err, &netErr) && netErr.Timeout() || errors.Is(err, context.DeadlineExceeded) ||
		strings.Contains(strings.ToLower(err.Error()), "timeout") {
		e.Code = CodeTimeout
	}
	return e
}

// forCreate reclassifies an error of CreateProductDistributeJob. A Create
// is not idempotent, so every outcome that may have reached the backend is
// ambiguous: a 5xx, ServiceUnavailable, InternalError, a SystemException,
// a timeout, a connection broken after the request was written. Only what
// provably happened before the request left stays transient: a refused
// dial or a failed DNS lookup (networkError), or a gateway refusal that
// rejects the request itself before it is processed (SignatureNonceUsed).
func forCreate(e *APIError) *APIError {
	if e.Class == Transient && e.HTTPStatus != 0 && e.Code != "SignatureNonceUsed" {
		e.Class = Ambiguous
	}
	return e
}

// businessError builds the error of a Success:false body, which comes back
// with HTTP 200 and no Go error from the SDK.
func (c Codes) businessError(action, code, message, requestID string) *APIError {
	if code == "" {
		code = CodeBadResponse
	}
	return &APIError{Action: action, Code: code, Message: message, RequestID: requestID, HTTPStatus: 200,
		Class: c.classifyCode(code, 200)}
}

// AccountLevelCodes are the remote codes that say the account itself is
// refused (its keys, their signature, its permissions), not the request:
// nothing a team can fix, every distribution of the account fails alike, and
// the remote's message may quote the string to sign. Teams are told so in
// short (TeamMessage); operators get the full text in logs and
// distq_account_errors_total.
var AccountLevelCodes = []string{
	"SignatureDoesNotMatch", "IncompleteSignature", "InvalidAccessKeyId.NotFound", "InvalidAccessKeyId.Inactive",
	"InvalidAccessKeyId", "InvalidSecurityToken.Expired", "InvalidSecurityToken.Malformed", "InvalidSecurityToken.MismatchWithAccessKey",
	"InvalidTimeStamp.Expired", "Forbidden.RAM", "Forbidden.AccessKeyDisabled", "Forbidden.AccountDisabled",
	"iot.common.RamActionPermissionDeny", "iot.common.AuthActionPermissionDeny",
}

// IsAccountLevel reports whether a remote code refuses the account itself
// (see AccountLevelCodes).
func IsAccountLevel(code string) bool { return slices.Contains(AccountLevelCodes, code) }

// TeamMessage is what a team is told of an account-level error in place of
// the remote's message.
const TeamMessage = "the account's credentials or permissions were refused by Alibaba Cloud; operators have been alerted (the full remote message is in their logs)"
