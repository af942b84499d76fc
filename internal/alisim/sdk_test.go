package alisim

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"

	iot "github.com/alibabacloud-go/iot-20180120/v6/client"
	"github.com/alibabacloud-go/tea/tea"
	"github.com/google/go-cmp/cmp"
)

// modes are the two signature algorithms the official SDK can use.
var modes = []struct {
	name string
	v1   bool
}{{"ACS3-HMAC-SHA256", false}, {"HMAC-SHA1", true}}

// awkward holds values with every character the encodings treat specially.
const awkward = "a b*c~d@e+f/g&h=i%j é中文"

// TestSDKSignsAwkwardValues sends values with spaces, '*', '~', '@', '+',
// '/' and non-ASCII through the official SDK, in the query
// (CreateProductDistributeJob, the ListDeviceDistributeJob filters) and in
// the form body (ListDeviceDistributeJob's JobId), in both modes.
func TestSDKSignsAwkwardValues(t *testing.T) {
	t.Parallel()
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, Config{})
			c := h.sdk(t, acctA1, m.v1)
			resp, err := c.CreateProductDistributeJob(&iot.CreateProductDistributeJobRequest{
				ProductKey:       tea.String(awkward),
				SourceInstanceId: tea.String("src " + awkward),
				TargetInstanceId: tea.String("dst " + awkward),
				TargetUid:        tea.String(acctA1.UID),
			})
			if err != nil {
				t.Fatalf("create: %v", err)
			}
			id := tea.StringValue(resp.Body.JobId)
			if !tea.BoolValue(resp.Body.Success) || id == "" {
				t.Fatalf("create: %s", resp.Body)
			}

			q, err := c.QueryDeviceDistributeJob(&iot.QueryDeviceDistributeJobRequest{JobId: tea.String(id)})
			if err != nil {
				t.Fatalf("query: %v", err)
			}
			d := q.Body.Data
			if got := tea.StringValue(d.ProductKey); got != awkward {
				t.Errorf("ProductKey = %q, want %q", got, awkward)
			}
			if got := tea.StringValue(d.TargetInstanceConfigs.TargetInstanceConfigs[0].TargetInstanceId); got != "dst "+awkward {
				t.Errorf("TargetInstanceId = %q", got)
			}

			list := func(jobID string) int32 {
				t.Helper()
				l, err := c.ListDeviceDistributeJob(&iot.ListDeviceDistributeJobRequest{
					PageSize: tea.Int32(10), ProductKey: tea.String(awkward), JobId: tea.String(jobID),
				})
				if err != nil {
					t.Fatalf("list: %v", err)
				}
				if !tea.BoolValue(l.Body.Success) {
					t.Fatalf("list: %s", l.Body)
				}
				return tea.Int32Value(l.Body.Data.Total)
			}
			if n := list(id); n != 1 {
				t.Errorf("list by JobId %s: Total = %d, want 1", id, n)
			}
			if n := list(awkward); n != 0 {
				t.Errorf("list by JobId %q: Total = %d, want 0", awkward, n)
			}

			for _, call := range h.sim.Audit() {
				if want := m.name; call.SignatureMethod != want {
					t.Errorf("call %d signed with %q, want %q", call.Seq, call.SignatureMethod, want)
				}
			}
		})
	}
}

// TestSDKGatewayErrors checks the gateway errors the SDK turns into a
// *tea.SDKError, in both modes.
func TestSDKGatewayErrors(t *testing.T) {
	t.Parallel()
	validCreate := func() *iot.CreateProductDistributeJobRequest {
		return &iot.CreateProductDistributeJobRequest{
			ProductKey: tea.String("pk"), SourceInstanceId: tea.String("s"),
			TargetInstanceId: tea.String("d"), TargetUid: tea.String(acctA1.UID),
		}
	}
	tests := []struct {
		name    string
		acct    Account
		req     func() *iot.CreateProductDistributeJobRequest
		status  int
		code    string
		message string
	}{
		{"wrong secret", Account{AccessKeyID: acctA1.AccessKeyID, AccessKeySecret: "wrong"}, validCreate,
			400, "SignatureDoesNotMatch", "Specified signature is not matched with our calculation. server string to sign is:"},
		{"unknown key", Account{AccessKeyID: "nobody", AccessKeySecret: "x"}, validCreate,
			404, "InvalidAccessKeyId.NotFound", "Specified access key is not found."},
		{"missing ProductKey", acctA1, func() *iot.CreateProductDistributeJobRequest {
			r := validCreate()
			r.ProductKey = nil
			return r
		}, 400, "MissingProductKey", "ProductKey is mandatory for this action."},
		{"missing TargetInstanceId", acctA1, func() *iot.CreateProductDistributeJobRequest {
			r := validCreate()
			r.TargetInstanceId = nil
			return r
		}, 400, "MissingTargetInstanceId", "TargetInstanceId is mandatory for this action."},
		{"missing target", acctA1, func() *iot.CreateProductDistributeJobRequest {
			r := validCreate()
			r.TargetUid = nil
			return r
		}, 400, "MissingTargetUid", "TargetUid is mandatory for this action."},
	}
	for _, m := range modes {
		for _, tt := range tests {
			t.Run(m.name+"/"+tt.name, func(t *testing.T) {
				t.Parallel()
				h := newHarness(t, Config{})
				_, err := h.sdk(t, tt.acct, m.v1).CreateProductDistributeJob(tt.req())
				se := sdkError(t, err)
				if got := tea.IntValue(se.StatusCode); got != tt.status {
					t.Errorf("StatusCode = %d, want %d", got, tt.status)
				}
				if got := tea.StringValue(se.Code); got != tt.code {
					t.Errorf("Code = %q, want %q", got, tt.code)
				}
				if !strings.Contains(tea.StringValue(se.Message), tt.message) {
					t.Errorf("Message = %q, want it to contain %q", tea.StringValue(se.Message), tt.message)
				}
				var data map[string]any
				if err := json.Unmarshal([]byte(tea.StringValue(se.Data)), &data); err != nil {
					t.Fatalf("error data %q: %v", tea.StringValue(se.Data), err)
				}
				if diff := cmp.Diff([]string{"Code", "HostId", "Message", "Recommend", "RequestId"}, slices.Sorted(maps.Keys(data))); diff != "" {
					t.Errorf("body keys (-want +got):\n%s", diff)
				}
				if calls := h.sim.Audit(); len(calls) != 1 || calls[0].Code != tt.code || calls[0].Outcome != OutcomeError {
					t.Errorf("audit = %+v, want one %s error", calls, tt.code)
				}
			})
		}
	}
}

// TestSDKBusinessErrors checks HTTP 200 Success:false answers: the SDK
// returns no error, so the body carries the code.
func TestSDKBusinessErrors(t *testing.T) {
	t.Parallel()
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, Config{MissingProducts: []string{"gone"}, MaxJobs: 1,
				QPS: map[string]float64{ActionCreateProductDistributeJob: 100}})
			c := h.sdk(t, acctA1, m.v1)
			create := func(pk, src, dst, uid string) *iot.CreateProductDistributeJobResponseBody {
				t.Helper()
				resp, err := c.CreateProductDistributeJob(&iot.CreateProductDistributeJobRequest{
					ProductKey: tea.String(pk), SourceInstanceId: tea.String(src),
					TargetInstanceId: tea.String(dst), TargetUid: tea.String(uid),
				})
				if err != nil {
					t.Fatalf("create: %v", err)
				}
				return resp.Body
			}
			wantCode := func(what string, success *bool, code *string, want string) {
				t.Helper()
				if tea.BoolValue(success) || tea.StringValue(code) != want {
					t.Errorf("%s: Success %v Code %q, want false %q", what, tea.BoolValue(success), tea.StringValue(code), want)
				}
			}
			b := create("pk", "same", "same", acctA1.UID)
			wantCode("same instance", b.Success, b.Code, "iot.system.InstanceIdSame")
			b = create("gone", "s", "d", acctA1.UID)
			wantCode("missing product", b.Success, b.Code, "iot.prod.NotExistedProduct")
			b = create("pk", "s", "d", acctB.UID)
			wantCode("cross account", b.Success, b.Code, DefaultCrossAccountCode)
			if b := create("pk", "s", "d", acctA1.UID); !tea.BoolValue(b.Success) {
				t.Fatalf("first job: %s", b)
			}
			b = create("pk2", "s", "d", acctA1.UID)
			wantCode("quota", b.Success, b.Code, DefaultQuotaExceededCode)
			if tea.StringValue(b.ErrorMessage) == "" || tea.StringValue(b.RequestId) == "" {
				t.Errorf("quota body lacks ErrorMessage or RequestId: %s", b)
			}

			q, err := c.QueryDeviceDistributeJob(&iot.QueryDeviceDistributeJobRequest{JobId: tea.String("nope")})
			if err != nil {
				t.Fatalf("query: %v", err)
			}
			wantCode("query unknown", q.Body.Success, q.Body.Code, DefaultJobNotFoundCode)
			d, err := c.DeleteDeviceDistributeJob(&iot.DeleteDeviceDistributeJobRequest{JobId: tea.String("nope")})
			if err != nil {
				t.Fatalf("delete: %v", err)
			}
			wantCode("delete unknown", d.Body.Success, d.Body.Code, DefaultJobNotFoundCode)
			l, err := c.ListDeviceDistributeJob(&iot.ListDeviceDistributeJobRequest{PageSize: tea.Int32(201)})
			if err != nil {
				t.Fatalf("list: %v", err)
			}
			wantCode("page size 201", l.Body.Success, l.Body.Code, "iot.check.InvalidFormattedParameter")
		})
	}
}

// TestSDKThrottled checks Throttling.User through the SDK at the
// configured rate, with a frozen clock.
func TestSDKThrottled(t *testing.T) {
	t.Parallel()
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, Config{})
			c := h.sdk(t, acctA1, m.v1)
			for i := range 2 {
				h.mustCreate(t, c, acctA1, fmt.Sprint("pk", i))
			}
			_, err := c.CreateProductDistributeJob(&iot.CreateProductDistributeJobRequest{
				ProductKey: tea.String("pk3"), SourceInstanceId: tea.String("s"),
				TargetInstanceId: tea.String("d"), TargetUid: tea.String(acctA1.UID),
			})
			se := sdkError(t, err)
			if tea.StringValue(se.Code) != "Throttling.User" || tea.IntValue(se.StatusCode) != 400 ||
				!strings.Contains(tea.StringValue(se.Message), "Request was denied due to user flow control.") {
				t.Errorf("third create: %d %s %s", tea.IntValue(se.StatusCode), tea.StringValue(se.Code), tea.StringValue(se.Message))
			}
			calls := h.sim.Audit()
			if got := calls[len(calls)-1].Outcome; got != OutcomeThrottled {
				t.Errorf("audit outcome = %q, want throttled", got)
			}
		})
	}
}

// TestSDKListDistributedAndDetail covers the two read APIs distq uses
// least, through the SDK.
func TestSDKListDistributedAndDetail(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Config{})
	c := h.sdk(t, acctA1, false)
	id := h.mustCreate(t, c, acctA1, "pk")
	h.clock.Advance(h.sim.cfg.JobDuration)

	det, err := c.QueryDeviceDistributeDetail(&iot.QueryDeviceDistributeDetailRequest{JobId: tea.String(id)})
	if err != nil || !tea.BoolValue(det.Body.Success) || !strings.Contains(tea.StringValue(det.Body.File), id) {
		t.Errorf("detail: %v %s", err, det.Body)
	}
	lp, err := c.ListDistributedProduct(&iot.ListDistributedProductRequest{
		CurrentPage: tea.Int32(1), PageSize: tea.Int32(10), ProductKey: tea.String("pk"),
	})
	if err != nil {
		t.Fatalf("list distributed: %v", err)
	}
	if n := tea.Int32Value(lp.Body.Data.Total); n != 1 || len(lp.Body.Data.Info.Items) != 1 ||
		tea.StringValue(lp.Body.Data.Info.Items[0].TargetInstanceId) != "iot-cn-target" {
		t.Errorf("list distributed: %s", lp.Body)
	}
}
