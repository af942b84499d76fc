package alisim

import (
	"fmt"
	"net/http"
)

// gatewayError is an error of the API gateway: an HTTP 4xx/5xx answered with
// {"RequestId","HostId","Code","Message","Recommend"}.
type gatewayError struct {
	Status  int
	Code    string
	Message string
}

func (e *gatewayError) Error() string { return e.Code + ": " + e.Message }

// Gateway errors, with the codes, statuses and messages of the real endpoint.
func errSignatureDoesNotMatch(stringToSign string) *gatewayError {
	return &gatewayError{http.StatusBadRequest, "SignatureDoesNotMatch",
		"Specified signature is not matched with our calculation. server string to sign is:" + stringToSign}
}

func errIncompleteSignature() *gatewayError {
	return &gatewayError{http.StatusBadRequest, "IncompleteSignature",
		"The request signature does not conform to Aliyun standards."}
}

func errAccessKeyNotFound() *gatewayError {
	return &gatewayError{http.StatusNotFound, "InvalidAccessKeyId.NotFound",
		"Specified access key is not found."}
}

func errNonceUsed() *gatewayError {
	return &gatewayError{http.StatusBadRequest, "SignatureNonceUsed",
		"Specified signature nonce was used already."}
}

func errTimestampExpired() *gatewayError {
	return &gatewayError{http.StatusBadRequest, "InvalidTimeStamp.Expired",
		"Specified time stamp or date value is expired."}
}

func errTimestampFormat() *gatewayError {
	return &gatewayError{http.StatusBadRequest, "InvalidTimeStamp.Format",
		"Specified time stamp or date value is not well formatted."}
}

// errMissing is Missing<Param>, e.g. MissingProductKey.
func errMissing(param string) *gatewayError {
	return &gatewayError{http.StatusBadRequest, "Missing" + param,
		param + " is mandatory for this action."}
}

func errInvalidParam(param string) *gatewayError {
	return &gatewayError{http.StatusBadRequest, "InvalidParameter",
		fmt.Sprintf("The specified parameter %q is not valid.", param)}
}

func errThrottlingUser() *gatewayError {
	return &gatewayError{http.StatusBadRequest, "Throttling.User",
		"Request was denied due to user flow control."}
}

func errServiceUnavailable() *gatewayError {
	return &gatewayError{http.StatusServiceUnavailable, "ServiceUnavailable",
		"The request has failed due to a temporary failure of the server."}
}

func errInternal() *gatewayError {
	return &gatewayError{http.StatusInternalServerError, "InternalError",
		"The request processing has failed due to some unknown error."}
}

func errActionNotFound() *gatewayError {
	return &gatewayError{http.StatusNotFound, "InvalidAction.NotFound",
		"Specified api is not found, please check your url and method."}
}

func errInvalidVersion() *gatewayError {
	return &gatewayError{http.StatusBadRequest, "InvalidVersion",
		"Specified parameter Version is not valid."}
}

func errMethodNotAllowed() *gatewayError {
	return &gatewayError{http.StatusMethodNotAllowed, "UnsupportedHTTPMethod",
		"Specified HTTP method is not supported."}
}

func errBodyTooLarge() *gatewayError {
	return &gatewayError{http.StatusRequestEntityTooLarge, "RequestEntityTooLarge",
		"The request body is too large."}
}

// gatewayBody is the JSON body of a gateway error.
type gatewayBody struct {
	RequestID string `json:"RequestId"`
	HostID    string `json:"HostId"`
	Code      string `json:"Code"`
	Message   string `json:"Message"`
	Recommend string `json:"Recommend"`
}

// businessError is an IoT business error: HTTP 200 with Success false.
type businessError struct {
	Code    string
	Message string
}

// businessBody is the JSON body of a business error.
type businessBody struct {
	RequestID    string `json:"RequestId"`
	Success      bool   `json:"Success"`
	Code         string `json:"Code"`
	ErrorMessage string `json:"ErrorMessage"`
}

func recommend(code, requestID string) string {
	return "https://api.aliyun.com/troubleshoot?q=" + code + "&product=Iot&requestId=" + requestID
}
