package alisim

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	iot "github.com/alibabacloud-go/iot-20180120/v6/client"
	"github.com/alibabacloud-go/tea/tea"
	"github.com/google/go-cmp/cmp"
)

// deviceReq is a CreateDeviceDistributeJob request of acctA1 for names.
func deviceReq(pk string, names []string, strategy int32, targets ...string) *iot.CreateDeviceDistributeJobRequest {
	r := &iot.CreateDeviceDistributeJobRequest{
		ProductKey: tea.String(pk), SourceInstanceId: tea.String("iotx-oxssharez200"),
		Strategy: tea.Int32(strategy), TargetUid: tea.String(acctA1.UID),
	}
	for _, n := range names {
		r.DeviceName = append(r.DeviceName, tea.String(n))
	}
	for _, t := range targets {
		r.TargetInstanceConfig = append(r.TargetInstanceConfig, &iot.CreateDeviceDistributeJobRequestTargetInstanceConfig{TargetInstanceId: tea.String(t)})
	}
	return r
}

// createDevices creates a device job through the SDK and returns the body.
func createDevices(t *testing.T, c *iot.Client, req *iot.CreateDeviceDistributeJobRequest) *iot.CreateDeviceDistributeJobResponseBody {
	t.Helper()
	resp, err := c.CreateDeviceDistributeJob(req)
	if err != nil {
		t.Fatalf("create device job: %v", err)
	}
	return resp.Body
}

func mustCreateDevices(t *testing.T, c *iot.Client, req *iot.CreateDeviceDistributeJobRequest) string {
	t.Helper()
	b := createDevices(t, c, req)
	if !tea.BoolValue(b.Success) || tea.StringValue(b.JobId) == "" {
		t.Fatalf("create device job: %s", b)
	}
	return tea.StringValue(b.JobId)
}

// download fetches a result-file URL and returns its status and body.
func download(t *testing.T, h *harness, file string) (int, string) {
	t.Helper()
	resp, err := h.srv.Client().Get(file)
	if err != nil {
		t.Fatalf("download %s: %v", file, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

// detailFile calls QueryDeviceDistributeDetail and returns the File URL.
func detailFile(t *testing.T, c *iot.Client, id string) string {
	t.Helper()
	resp, err := c.QueryDeviceDistributeDetail(&iot.QueryDeviceDistributeDetailRequest{JobId: tea.String(id)})
	if err != nil || !tea.BoolValue(resp.Body.Success) {
		t.Fatalf("detail of %s: %v %v", id, err, resp)
	}
	return tea.StringValue(resp.Body.File)
}

// parseLines decodes a JSON-lines result file.
func parseLines(t *testing.T, body string) []DeviceResult {
	t.Helper()
	var out []DeviceResult
	dec := json.NewDecoder(strings.NewReader(body))
	for dec.More() {
		var r DeviceResult
		if err := dec.Decode(&r); err != nil {
			t.Fatalf("result line: %v in %q", err, body)
		}
		out = append(out, r)
	}
	return out
}

// TestSDKDeviceJob creates a device job through the official SDK in both
// signature modes, with names using every special character the remote
// allows, and follows it through Query, List, the detail file and
// ListDistributedProduct.
func TestSDKDeviceJob(t *testing.T) {
	t.Parallel()
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, Config{JobDuration: 10 * time.Second, DevicePace: time.Second, MissingDevices: []string{"gone-1"}})
			c := h.sdk(t, acctA1, m.v1)
			names := []string{"dev-1", "dev_2@home", "dev.3:x", "gone-1", "x"}
			id := mustCreateDevices(t, c, deviceReq("pk", names, 0, "iot-cn-target"))

			if got := h.sim.DeviceNames(id); !cmp.Equal(got, names) {
				t.Errorf("names the simulator got = %q, want %q", got, names)
			}
			calls := h.sim.Audit()
			if last := calls[len(calls)-1]; last.Action != ActionCreateDeviceDistributeJob || last.Devices != 5 || last.JobID != id {
				t.Errorf("audit = %+v", last)
			}
			q, err := c.QueryDeviceDistributeJob(&iot.QueryDeviceDistributeJobRequest{JobId: tea.String(id)})
			if err != nil || !tea.BoolValue(q.Body.Success) {
				t.Fatalf("query: %v %v", err, q)
			}
			d := q.Body.Data
			if tea.Int32Value(d.Total) != 5 || tea.Int32Value(d.Strategy) != 0 || tea.Int32Value(d.Status) != StatusInitializing ||
				tea.StringValue(d.ProductKey) != "pk" || len(d.TargetInstanceConfigs.TargetInstanceConfigs) != 1 {
				t.Errorf("query data = %s", d)
			}
			l, err := c.ListDeviceDistributeJob(&iot.ListDeviceDistributeJobRequest{PageSize: tea.Int32(10)})
			if err != nil || tea.Int32Value(l.Body.Data.Total) != 1 {
				t.Fatalf("list: %v %v", err, l)
			}
			if it := l.Body.Data.JobInfo.Items[0]; tea.Int32Value(it.Total) != 5 || tea.StringValue(it.JobId) != id ||
				tea.StringValue(it.TargetInstanceConfigs.TargetInstanceConfigs[0].TargetRegion) != "cn-shanghai" {
				t.Errorf("list item = %s", it)
			}

			// Before its end the file lists no device.
			file := detailFile(t, c, id)
			if !strings.HasPrefix(file, h.srv.URL+"/_alisim/detail/"+id+".jsonl?") {
				t.Errorf("File = %q, want a URL on the simulator", file)
			}
			if st, body := download(t, h, file); st != 200 || body != "" {
				t.Errorf("file before the end: %d %q", st, body)
			}

			// 10 s + 5 devices × 1 s.
			h.clock.Advance(15*time.Second - time.Millisecond)
			if got := queryStatus(t, c, id); got != StatusRunning {
				t.Errorf("Status just before 15 s = %d", got)
			}
			h.clock.Advance(time.Millisecond)
			if got := queryStatus(t, c, id); got != StatusCompleted {
				t.Errorf("Status at 15 s = %d", got)
			}
			file = detailFile(t, c, id)
			st, body := download(t, h, file)
			if st != 200 {
				t.Fatalf("file: %d %s", st, body)
			}
			var got []string
			for _, r := range parseLines(t, body) {
				got = append(got, r.DeviceName+"="+r.Code)
				if r.ProductKey != "pk" || r.TargetInstanceID != "iot-cn-target" || r.SourceInstanceID != "iotx-oxssharez200" {
					t.Errorf("line %+v", r)
				}
			}
			want := []string{"dev-1=200", "dev_2@home=200", "dev.3:x=200", "gone-1=" + DeviceMissingCode, "x=" + DeviceBadNameCode}
			if !cmp.Equal(got, want) {
				t.Errorf("results = %q, want %q", got, want)
			}

			// The product went along with the devices.
			lp, err := c.ListDistributedProduct(&iot.ListDistributedProductRequest{CurrentPage: tea.Int32(1), PageSize: tea.Int32(10)})
			if err != nil || tea.Int32Value(lp.Body.Data.Total) != 1 || tea.StringValue(lp.Body.Data.Info.Items[0].TargetInstanceId) != "iot-cn-target" {
				t.Errorf("list distributed: %v %v", err, lp)
			}

			// The URL lasts 10 minutes.
			h.clock.Advance(10*time.Minute - time.Second)
			if st, _ := download(t, h, file); st != 200 {
				t.Errorf("file within 10 minutes: %d", st)
			}
			h.clock.Advance(time.Second)
			if st, body := download(t, h, file); st != http.StatusForbidden || !strings.Contains(body, "<Code>AccessDenied</Code>") {
				t.Errorf("file after 10 minutes: %d %s", st, body)
			}
		})
	}
}

// TestDeviceJobNearest checks Strategy 1 with several targets: Query and
// List show every target, each device goes to one of them, and the
// product is distributed to each.
func TestDeviceJobNearest(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Config{JobDuration: time.Second, DevicePace: -1, DetailFormat: DetailCSV})
	c := h.sdk(t, acctA1, false)
	targets := []string{"iotx-oxssharez300", "iotx-oxssharez400", "iot-cn-third"}
	names := make([]string, 50)
	for i := range names {
		names[i] = fmt.Sprintf("device-%03d", i)
	}
	id := mustCreateDevices(t, c, deviceReq("pk", names, 1, targets...))
	h.clock.Advance(time.Second)
	q, err := c.QueryDeviceDistributeJob(&iot.QueryDeviceDistributeJobRequest{JobId: tea.String(id)})
	if err != nil {
		t.Fatal(err)
	}
	var gotTargets []string
	for _, ti := range q.Body.Data.TargetInstanceConfigs.TargetInstanceConfigs {
		gotTargets = append(gotTargets, tea.StringValue(ti.TargetInstanceId))
	}
	if !cmp.Equal(gotTargets, targets) || tea.Int32Value(q.Body.Data.Strategy) != 1 || tea.Int32Value(q.Body.Data.Status) != StatusCompleted {
		t.Errorf("query = %s", q.Body.Data)
	}
	st, body := download(t, h, detailFile(t, c, id))
	if st != 200 {
		t.Fatalf("file: %d %s", st, body)
	}
	rows, err := csv.NewReader(strings.NewReader(body)).ReadAll()
	if err != nil {
		t.Fatalf("csv: %v", err)
	}
	if want := []string{"DeviceName", "ProductKey", "SourceInstanceId", "TargetInstanceId", "Code", "Message"}; !cmp.Equal(rows[0], want) {
		t.Errorf("header = %q", rows[0])
	}
	used := map[string]int{}
	for i, row := range rows[1:] {
		if row[0] != names[i] || row[4] != DeviceOK {
			t.Errorf("row %d = %q", i, row)
		}
		used[row[3]]++
	}
	if len(used) != 3 {
		t.Errorf("targets used = %v, want all three", used)
	}
	lp, err := c.ListDistributedProduct(&iot.ListDistributedProductRequest{CurrentPage: tea.Int32(1), PageSize: tea.Int32(10)})
	if err != nil || tea.Int32Value(lp.Body.Data.Total) != 3 {
		t.Errorf("list distributed: %v %v", err, lp)
	}
}

// TestDeviceJobSharesTheQuota checks that product and device jobs count
// against one MaxJobs, and that each kind of Create has its own rate.
func TestDeviceJobSharesTheQuota(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Config{MaxJobs: 4})
	c := h.sdk(t, acctA1, false)
	// Two Creates of each kind in one second: each within its own rate.
	h.mustCreate(t, c, acctA1, "p1")
	h.mustCreate(t, c, acctA1, "p2")
	mustCreateDevices(t, c, deviceReq("p3", []string{"dev-1"}, 0, "iot-cn-target"))
	mustCreateDevices(t, c, deviceReq("p4", []string{"dev-1"}, 0, "iot-cn-target"))
	_, err := c.CreateDeviceDistributeJob(deviceReq("p5", []string{"dev-1"}, 0, "iot-cn-target"))
	if se := sdkError(t, err); tea.StringValue(se.Code) != "Throttling.User" {
		t.Errorf("third device create in a second: %s", tea.StringValue(se.Code))
	}
	h.clock.Advance(time.Second)
	// Four jobs of two kinds fill the four slots.
	if b := createDevices(t, c, deviceReq("p5", []string{"dev-1"}, 0, "iot-cn-target")); tea.StringValue(b.Code) != DefaultQuotaExceededCode {
		t.Errorf("fifth job (device): %s", b)
	}
	if b := h.create(t, c, acctA1, "p6"); tea.StringValue(b.Code) != DefaultQuotaExceededCode {
		t.Errorf("fifth job (product): %s", b)
	}
	// A device job's end frees its slot like a product job's: 5 s + 1 ms.
	h.clock.Advance(5 * time.Second)
	mustCreateDevices(t, c, deviceReq("p7", []string{"dev-1"}, 0, "iot-cn-target"))
	var kinds []string
	for _, j := range h.sim.Jobs() {
		kinds = append(kinds, j.Kind)
	}
	if want := []string{KindProduct, KindProduct, KindDevice, KindDevice, KindDevice}; !cmp.Equal(kinds, want) {
		t.Errorf("kinds = %q, want %q", kinds, want)
	}
}

// TestDeviceJobRefusals checks the answers to bad device Creates.
func TestDeviceJobRefusals(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Config{MissingProducts: []string{"gone"}, QPS: map[string]float64{ActionCreateDeviceDistributeJob: 1000}})
	c := h.sdk(t, acctA1, false)
	tooMany := make([]string, MaxDevicesPerJob+1)
	for i := range tooMany {
		tooMany[i] = fmt.Sprint("d", i)
	}
	gateway := []struct {
		name string
		req  *iot.CreateDeviceDistributeJobRequest
		code string
	}{
		{"no names", deviceReq("pk", nil, 0, "t"), "MissingDeviceName"},
		{"no target", deviceReq("pk", []string{"dev-1"}, 0), "MissingTargetInstanceConfig"},
		{"no strategy", func() *iot.CreateDeviceDistributeJobRequest {
			r := deviceReq("pk", []string{"dev-1"}, 0, "t")
			r.Strategy = nil
			return r
		}(), "MissingStrategy"},
		{"no target account", func() *iot.CreateDeviceDistributeJobRequest {
			r := deviceReq("pk", []string{"dev-1"}, 0, "t")
			r.TargetUid = nil
			return r
		}(), "MissingTargetUid"},
	}
	for _, tt := range gateway {
		_, err := c.CreateDeviceDistributeJob(tt.req)
		if se := sdkError(t, err); tea.StringValue(se.Code) != tt.code || tea.IntValue(se.StatusCode) != 400 {
			t.Errorf("%s: %d %s, want 400 %s", tt.name, tea.IntValue(se.StatusCode), tea.StringValue(se.Code), tt.code)
		}
	}
	business := []struct {
		name string
		req  *iot.CreateDeviceDistributeJobRequest
		code string
	}{
		{"too many names", deviceReq("pk", tooMany, 0, "t"), "iot.check.InvalidFormattedParameter"},
		{"strategy 0, two targets", deviceReq("pk", []string{"dev-1"}, 0, "t1", "t2"), "iot.check.InvalidFormattedParameter"},
		{"strategy 2", deviceReq("pk", []string{"dev-1"}, 2, "t"), "iot.check.InvalidFormattedParameter"},
		{"source is a target", deviceReq("pk", []string{"dev-1"}, 1, "t", "iotx-oxssharez200"), "iot.system.InstanceIdSame"},
		{"missing product", deviceReq("gone", []string{"dev-1"}, 0, "t"), "iot.prod.NotExistedProduct"},
		{"cross account", func() *iot.CreateDeviceDistributeJobRequest {
			r := deviceReq("pk", []string{"dev-1"}, 0, "t")
			r.TargetUid = tea.String(acctB.UID)
			return r
		}(), DefaultCrossAccountCode},
	}
	for _, tt := range business {
		if b := createDevices(t, c, tt.req); tea.BoolValue(b.Success) || tea.StringValue(b.Code) != tt.code {
			t.Errorf("%s: %s, want %s", tt.name, b, tt.code)
		}
	}
	if n := len(h.sim.Jobs()); n != 0 {
		t.Errorf("%d jobs made by refused creates", n)
	}
}

// TestDeviceJobFullSize sends 10,000 names of 32 characters, each with the
// characters that are percent-encoded in the form body, in both modes.
func TestDeviceJobFullSize(t *testing.T) {
	t.Parallel()
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, Config{})
			c := h.sdk(t, acctA1, m.v1)
			names := make([]string, MaxDevicesPerJob)
			for i := range names {
				names[i] = fmt.Sprintf("@:@:@:@:@:@:@:@:@:@:@:@:@%07d", i)
			}
			id := mustCreateDevices(t, c, deviceReq("pk", names, 0, "iot-cn-target"))
			if got := h.sim.DeviceNames(id); !cmp.Equal(got, names) {
				t.Errorf("the simulator got %d names, not the 10,000 sent in order", len(got))
			}
		})
	}
}

// TestDeviceFaults checks the device fault (a share of the devices fail
// with a code), the lost answer of a device Create (its job exists), an
// unreadable file, an interrupted job's file (the first half of its
// devices), and a tampered file URL.
func TestDeviceFaults(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Config{JobDuration: time.Second, DevicePace: -1,
		Faults: Faults{DeviceFailRatio: 0.5, DeviceFailCode: "iot.device.Busy"}})
	c := h.sdk(t, acctA1, false)
	names := make([]string, 200)
	for i := range names {
		names[i] = fmt.Sprintf("device-%03d", i)
	}
	id := mustCreateDevices(t, c, deviceReq("pk", names, 0, "iot-cn-target"))
	h.clock.Advance(time.Second)
	file := detailFile(t, c, id)
	_, body := download(t, h, file)
	codes := map[string]int{}
	for _, r := range parseLines(t, body) {
		codes[r.Code]++
	}
	if codes[DeviceOK] < 60 || codes["iot.device.Busy"] < 60 || codes[DeviceOK]+codes["iot.device.Busy"] != 200 {
		t.Errorf("codes = %v, want about half of 200 each", codes)
	}
	if !cmp.Equal(parseLines(t, body), h.sim.DeviceResults(id)) {
		t.Error("the file differs from DeviceResults")
	}
	u, _ := url.Parse(file)
	q := u.Query()
	q.Set("Expires", fmt.Sprint(h.clock.Now().Add(time.Hour).Unix()))
	u.RawQuery = q.Encode()
	if st, body := download(t, h, u.String()); st != http.StatusForbidden || !strings.Contains(body, "SignatureDoesNotMatch") {
		t.Errorf("tampered URL: %d %s", st, body)
	}
	if n := h.sim.Downloads(); n != 1 {
		t.Errorf("downloads = %d, want 1", n)
	}

	if err := h.sim.SetFaults(Faults{ErrorAfterCreateRatio: 1}); err != nil {
		t.Fatal(err)
	}
	h.clock.Advance(time.Second)
	_, err := c.CreateDeviceDistributeJob(deviceReq("pk", names[:3], 0, "iot-cn-target"))
	if se := sdkError(t, err); tea.IntValue(se.StatusCode) < 500 {
		t.Errorf("lost answer: %v", err)
	}
	if jobs := h.sim.Jobs(); len(jobs) != 2 || jobs[1].Devices != 3 {
		t.Errorf("jobs after a lost answer = %+v", jobs)
	}

	if err := h.sim.SetFaults(Faults{UnreadableDetails: true}); err != nil {
		t.Fatal(err)
	}
	if st, body := download(t, h, detailFile(t, c, id)); st != 200 || !strings.HasPrefix(body, "<html>") {
		t.Errorf("unreadable file: %d %q", st, body)
	}

	failing := newHarness(t, Config{JobDuration: time.Second, DevicePace: -1, FailRatio: 1})
	fc := failing.sdk(t, acctA1, false)
	id = mustCreateDevices(t, fc, deviceReq("pk", names[:10], 0, "iot-cn-target"))
	failing.clock.Advance(time.Second)
	if st := queryStatus(t, fc, id); st != StatusInterrupted {
		t.Errorf("Status = %d, want 3", st)
	}
	_, body = download(t, failing, detailFile(t, fc, id))
	if got := parseLines(t, body); len(got) != 5 || got[4].DeviceName != names[4] {
		t.Errorf("interrupted job's file = %+v, want its first 5 devices", got)
	}
}
