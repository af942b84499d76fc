package alibaba

import (
	"errors"
	"fmt"
	"net"
	"testing"

	"github.com/alibabacloud-go/tea/tea"
)

func TestClassifyCode(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		code   string
		status int
		want   Class
	}{
		{"Throttling.User", 400, Throttled},
		{"Throttling.Api", 400, Throttled},
		{"Throttling", 400, Throttled},
		{"Throttling.User", 429, Throttled},
		{"iot.distribute.JobQuotaExceeded", 200, QuotaExceeded},
		{"iot.distribute.JobNotExist", 200, NotFound},
		{"ServiceUnavailable", 503, Transient},
		{"InternalError", 500, Transient},
		{"SignatureNonceUsed", 400, Transient},
		{"iot.system.SystemException", 200, Transient},
		{"SomethingNew", 502, Transient},
		{"SignatureDoesNotMatch", 400, Permanent},
		{"InvalidAccessKeyId.NotFound", 404, Permanent},
		{"MissingProductKey", 400, Permanent},
		{"iot.prod.NotExistedProduct", 200, Permanent},
		{"iot.system.InstanceIdSame", 200, Permanent},
		{"iot.common.RamActionPermissionDeny", 200, Permanent},
	} {
		if got := DefaultCodes.classifyCode(tc.code, tc.status); got != tc.want {
			t.Errorf("classify(%s, %d) = %v, want %v", tc.code, tc.status, got, tc.want)
		}
	}
}

func TestFromSDK(t *testing.T) {
	t.Parallel()
	data := `{"RequestId":"R1","Code":"SignatureDoesNotMatch","Message":"Specified signature is not matched with our calculation."}`
	sdkErr := &tea.SDKError{Code: tea.String("SignatureDoesNotMatch"), StatusCode: tea.Int(400), Data: tea.String(data), Message: tea.String("code: 400, ...")}
	e := DefaultCodes.fromSDK(ActionCreate, fmt.Errorf("wrapped: %w", sdkErr))
	if e.Code != "SignatureDoesNotMatch" || e.HTTPStatus != 400 || e.RequestID != "R1" ||
		e.Message != "Specified signature is not matched with our calculation." || !IsPermanent(e) {
		t.Fatalf("fromSDK = %+v", e)
	}
	refused := &net.OpError{Op: "dial", Err: errors.New("connection refused")}
	if e := DefaultCodes.fromSDK(ActionCreate, refused); e.Class != Transient || e.Code != CodeNetworkError {
		t.Fatalf("dial refused = %+v, want transient NetworkError: the request never left", e)
	}
	timeout := &net.OpError{Op: "read", Err: timeoutErr{}}
	if e := DefaultCodes.fromSDK(ActionCreate, timeout); e.Class != Ambiguous || e.Code != CodeTimeout || !IsAmbiguous(e) {
		t.Fatalf("read timeout = %+v, want ambiguous Timeout", e)
	}
	biz := DefaultCodes.businessError(ActionCreate, "iot.prod.NotExistedProduct", "product does not exist", "R2")
	if biz.HTTPStatus != 200 || !IsPermanent(biz) || biz.RequestID != "R2" {
		t.Fatalf("business error = %+v", biz)
	}
}

// A Create is not idempotent: whatever may have reached the backend is
// ambiguous (the job may exist), only failures before the request left
// are transient.
func TestCreateClassification(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		code   string
		status int
		want   Class
	}{
		{"ServiceUnavailable", 503, Ambiguous},
		{"InternalError", 500, Ambiguous},
		{"SomethingNew", 502, Ambiguous},
		{"ServiceTimeout", 504, Ambiguous},
		{"iot.system.SystemException", 200, Ambiguous},
		{"iot.common.SystemException", 200, Ambiguous},
		{"SignatureNonceUsed", 400, Transient},
		{"Throttling.User", 400, Throttled},
		{"iot.distribute.JobQuotaExceeded", 200, QuotaExceeded},
		{"iot.prod.NotExistedProduct", 200, Permanent},
	} {
		e := forCreate(&APIError{Action: ActionCreate, Code: tc.code, HTTPStatus: tc.status, Class: DefaultCodes.classifyCode(tc.code, tc.status)})
		if e.Class != tc.want {
			t.Errorf("create %s (HTTP %d) = %v, want %v", tc.code, tc.status, e.Class, tc.want)
		}
	}
	refused := forCreate(DefaultCodes.fromSDK(ActionCreate, &net.OpError{Op: "dial", Err: errors.New("connection refused")}))
	if refused.Class != Transient {
		t.Errorf("create dial refused = %v, want transient", refused.Class)
	}
	dns := forCreate(DefaultCodes.fromSDK(ActionCreate, &net.DNSError{Err: "no such host", Name: "x"}))
	if dns.Class != Transient {
		t.Errorf("create DNS failure = %v, want transient", dns.Class)
	}
	reset := forCreate(DefaultCodes.fromSDK(ActionCreate, &net.OpError{Op: "read", Err: errors.New("connection reset by peer")}))
	if reset.Class != Ambiguous {
		t.Errorf("create reset after write = %v, want ambiguous", reset.Class)
	}
	timeout := forCreate(DefaultCodes.fromSDK(ActionCreate, &net.OpError{Op: "read", Err: timeoutErr{}}))
	if timeout.Class != Ambiguous {
		t.Errorf("create timeout = %v, want ambiguous", timeout.Class)
	}
}

type timeoutErr struct{}

func (timeoutErr) Error() string   { return "i/o timeout" }
func (timeoutErr) Timeout() bool   { return true }
func (timeoutErr) Temporary() bool { return true }

func TestValidateEndpoint(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in string
		ok bool
	}{
		{"https://iot.cn-shanghai.aliyuncs.com", true},
		{"http://127.0.0.1:8081", true},
		{"http://alisim:8081", true},
		{"https://iot.cn-beijing.aliyuncs.com", false},
		{"https://ecs.aliyuncs.com", false},
		{"iot.cn-shanghai.aliyuncs.com", false},
		{"ftp://127.0.0.1", false},
		{"http://127.0.0.1:8081/path", false},
	} {
		_, err := ValidateEndpoint(tc.in)
		if (err == nil) != tc.ok {
			t.Errorf("ValidateEndpoint(%q) = %v, want ok=%v", tc.in, err, tc.ok)
		}
	}
}
