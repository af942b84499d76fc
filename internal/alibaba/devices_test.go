package alibaba

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/distq/distq/internal/alisim"
)

const simUID = "1111111111111111"

// simClient starts a simulator on cfg (its clock is the test's) and returns
// a Client of its one account.
func simClient(t *testing.T, cfg alisim.Config) (*Client, *alisim.Server) {
	t.Helper()
	cfg.Accounts = []alisim.Account{{UID: simUID, AccessKeyID: "ak", AccessKeySecret: "sk"}}
	cfg.Rand = rand.New(rand.NewPCG(1, 2))
	sim := alisim.New(cfg)
	srv := httptest.NewServer(sim)
	t.Cleanup(srv.Close)
	c, err := NewClient(Config{Endpoint: srv.URL, AccessKeyID: "ak", AccessKeySecret: "sk", Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return c, sim
}

// fakeClock is a clock moved by the test.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time { return c.t }

func names(n int, prefix string) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s-%05d", prefix, i)
	}
	return out
}

// TestDeviceJobThroughTheSimulator creates a device job, finds it through
// Query and List as a device job, and reads its result file, in both of
// the simulator's file formats.
func TestDeviceJobThroughTheSimulator(t *testing.T) {
	t.Parallel()
	for _, format := range []string{alisim.DetailJSONLines, alisim.DetailCSV} {
		t.Run(format, func(t *testing.T) {
			t.Parallel()
			clock := &fakeClock{t: time.Now()}
			c, sim := simClient(t, alisim.Config{Now: clock.now, DetailFormat: format, JobDuration: time.Second,
				DevicePace: -1, MissingDevices: []string{"dev-00003"}})
			ctx := context.Background()
			devs := names(5, "dev")
			id, rid, err := c.CreateDevicesContext(ctx, DeviceCreateRequest{ProductKey: "pk", SourceInstanceID: "iotx-oxssharez200",
				TargetInstanceIDs: []string{"iotx-oxssharez300", "iotx-oxssharez400"}, Strategy: StrategyNearest,
				DeviceNames: devs, TargetUID: simUID})
			if err != nil || id == "" || rid == "" {
				t.Fatalf("create: %q %q %v", id, rid, err)
			}
			if got := sim.DeviceNames(id); !cmp.Equal(got, devs) {
				t.Errorf("sent %q, want %q", got, devs)
			}
			j, err := c.QueryContext(ctx, id)
			if err != nil || !IsDeviceJob(j) || j.Total != 5 || j.Strategy != StrategyNearest ||
				!cmp.Equal(j.TargetInstanceIDs, []string{"iotx-oxssharez300", "iotx-oxssharez400"}) {
				t.Errorf("query = %+v, %v", j, err)
			}
			if _, _, err := c.Create(CreateRequest{ProductKey: "pk2", SourceInstanceID: "iotx-oxssharez200", TargetInstanceID: "t", TargetUID: simUID}); err != nil {
				t.Fatal(err)
			}
			jobs, _, err := c.ListContext(ctx, ListFilter{})
			if err != nil || len(jobs) != 2 || IsDeviceJob(jobs[0]) || !IsDeviceJob(jobs[1]) || jobs[1].Total != 5 {
				t.Errorf("list = %+v, %v", jobs, err)
			}
			clock.t = clock.t.Add(time.Second)
			file, err := c.DetailContext(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			got, err := c.Download(ctx, file)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != 5 {
				t.Fatalf("results = %+v", got)
			}
			for i, r := range got {
				if r.DeviceName != devs[i] || r.Distributed() != (i != 3) || r.TargetInstanceID == "" {
					t.Errorf("result %d = %+v", i, r)
				}
			}
			if got[3].Code != alisim.DeviceMissingCode || got[3].Message == "" {
				t.Errorf("missing device = %+v", got[3])
			}
			clock.t = clock.t.Add(10 * time.Minute)
			_, err = c.Download(ctx, file)
			var de *DownloadError
			if !errors.As(err, &de) || !de.Expired || de.Status != 403 {
				t.Errorf("download after 10 minutes = %v, want an expired *DownloadError", err)
			}
		})
	}
}

// TestDeviceCreateClassification checks that device Creates are classified
// as product Creates are: refusals permanent, the job quota QuotaExceeded,
// flow control Throttled, and a lost answer ambiguous.
func TestDeviceCreateClassification(t *testing.T) {
	t.Parallel()
	c, sim := simClient(t, alisim.Config{MissingProducts: []string{"gone"}, MaxJobs: 1,
		QPS: map[string]float64{alisim.ActionCreateDeviceDistributeJob: 100}})
	ctx := context.Background()
	req := func(pk string) DeviceCreateRequest {
		return DeviceCreateRequest{ProductKey: pk, SourceInstanceID: "iotx-oxssharez200", TargetInstanceIDs: []string{"t"},
			DeviceNames: []string{"dev-1"}, TargetUID: simUID}
	}
	class := func(err error) Class {
		t.Helper()
		e := AsAPIError(err)
		if e == nil {
			t.Fatalf("error %v is not an *APIError", err)
		}
		return e.Class
	}
	if _, _, err := c.CreateDevicesContext(ctx, req("gone")); class(err) != Permanent || AsAPIError(err).Code != "iot.prod.NotExistedProduct" {
		t.Errorf("missing product: %v", err)
	}
	if _, _, err := c.CreateDevicesContext(ctx, DeviceCreateRequest{ProductKey: "pk"}); class(err) != Permanent {
		t.Errorf("no names: %v", err)
	}
	if err := sim.SetFaults(alisim.Faults{ErrorAfterCreateRatio: 1}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.CreateDevicesContext(ctx, req("pk")); class(err) != Ambiguous {
		t.Errorf("lost answer: %v", err)
	}
	if err := sim.SetFaults(alisim.Faults{}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.CreateDevicesContext(ctx, req("pk")); class(err) != QuotaExceeded {
		t.Errorf("quota: %v", err)
	}
	if err := sim.SetFaults(alisim.Faults{ThrottleUntil: time.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.CreateDevicesContext(ctx, req("pk")); class(err) != Throttled {
		t.Errorf("throttled: %v", err)
	}
	if _, err := c.DetailContext(ctx, "nope"); class(err) != Throttled {
		t.Errorf("detail throttled: %v", err)
	}
	if err := sim.SetFaults(alisim.Faults{}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.DetailContext(ctx, "nope"); class(err) != NotFound {
		t.Errorf("detail of an unknown job: %v", err)
	}
}

func TestParseDeviceResults(t *testing.T) {
	t.Parallel()
	two := []DeviceResult{{DeviceName: "dev-1", Code: "200"}, {DeviceName: "dev-2", Code: "iot.device.X", Message: "no"}}
	tests := []struct {
		name string
		in   string
		want []DeviceResult
	}{
		{"empty", "", nil},
		{"blank", " \n\n", nil},
		{"JSON lines", `{"DeviceName":"dev-1","Code":"200","Extra":[1]}` + "\n" + `{"DeviceName":"dev-2","Code":"iot.device.X","Message":"no"}` + "\n", two},
		{"JSON lines, numeric codes, other key styles", `{"device_name":"dev-1","code":200}` + "\n" + `{"deviceName":"dev-2","ErrorCode":"iot.device.X","errorMessage":"no","more":{"a":1}}`, two},
		{"JSON array", `[{"DeviceName":"dev-1","Code":200},{"DeviceName":"dev-2","Code":"iot.device.X","Msg":"no"}]`, two},
		{"wrapped", `{"Total":2,"Data":{"items":[{"DeviceName":"dev-1","Code":200},{"DeviceName":"dev-2","Code":"iot.device.X","Message":"no"}]}}`, two},
		{"success flags", `{"DeviceName":"dev-1","Success":true}` + "\n" + `{"DeviceName":"dev-2","Success":false}`,
			[]DeviceResult{{DeviceName: "dev-1", Code: "200"}, {DeviceName: "dev-2", Code: "Failed"}}},
		{"CSV with unknown columns", "ProductKey,DeviceName,Region,Code,Message\npk,dev-1,sh,200,\npk,dev-2,sh,iot.device.X,no\n", two},
		{"CSV with a BOM, CRLF and quotes", "\xef\xbb\xbfdevice_name,result_code,error_message\r\n\"dev-1\",200,\r\ndev-2,iot.device.X,\"no\"\r\n", two},
		{"semicolons", "DeviceName;Code;Message\ndev-1;200;\ndev-2;iot.device.X;no\n", two},
		{"tabs", "DeviceName\tCode\tMessage\ndev-1\t200\t\ndev-2\tiot.device.X\tno\n", two},
		{"target column", "DeviceName,TargetInstanceId,Code\ndev-1,iot-t,200\n", []DeviceResult{{DeviceName: "dev-1", Code: "200", TargetInstanceID: "iot-t"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := ParseDeviceResults([]byte(tt.in))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
	for _, bad := range []string{
		"<html><body>Access Denied</body></html>",
		"Name,Region\nx,y\n",
		`{"DeviceName":"dev-1"}`,
		`{"DeviceName":"dev-1","Code":200}` + "\n{broken",
		"DeviceName,Code\n\"dev-1,200\n",
		"\xff\xfe\x00d\x00e\x00v",
		`"just a string"`,
	} {
		if got, err := ParseDeviceResults([]byte(bad)); !errors.Is(err, ErrUnreadable) {
			t.Errorf("ParseDeviceResults(%q) = %+v, %v; want ErrUnreadable", bad, got, err)
		}
	}
}
