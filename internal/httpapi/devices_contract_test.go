package httpapi_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/distq/distq/client"
	"github.com/distq/distq/internal/devices"
)

// devReq is a device distribution request for names.
func devReq(pk string, names ...string) client.DeviceDistributionRequest {
	return client.DeviceDistributionRequest{ProductKey: pk, SourceInstanceID: "iotx-oxssharez200",
		TargetInstanceID: "iot-cn-6ja1a2b3c4d", DeviceNames: names}
}

func devNames(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s-%06d", prefix, i)
	}
	return out
}

// deviceRoutes are the device distribution routes, for the passes of
// TestOpenAPIContract over every route (no token, rate limited, Redis down).
func deviceRoutes(t *testing.T) []request {
	id := "v_000000000000_0000000000"
	return []request{
		{method: http.MethodPost, path: "/v1/device-distributions", body: mustJSON(t, devReq("a1DevEverywhere", "dev-0001"))},
		{method: http.MethodGet, path: "/v1/device-distributions"},
		{method: http.MethodGet, path: "/v1/device-distributions/" + id},
		{method: http.MethodGet, path: "/v1/device-distributions/" + id + "/results"},
		{method: http.MethodPost, path: "/v1/device-distributions/" + id + "/cancel"},
		{method: http.MethodPost, path: "/v1/device-distributions/" + id + "/retry"},
	}
}

// endJob plays the worker for job n of device distribution id: created,
// then ended (remote Status 2) with the devices of failed failing.
func endJob(ctx context.Context, t *testing.T, a *testAPI, id string, n int, failed ...string) {
	t.Helper()
	now := time.Now()
	names, err := a.Store.DeviceNames(ctx, id, n)
	if err != nil {
		t.Fatal(err)
	}
	var results []devices.Result
	bad := 0
	for _, name := range names {
		code := devices.CodeOK
		if slices.Contains(failed, name) {
			code, bad = "iot.device.NotExistedDevice", bad+1
		}
		results = append(results, devices.Result{DeviceName: name, Job: n, Code: code, Message: "m"})
	}
	if err := a.Store.PutDeviceResults(ctx, id, n, results); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Store.UpdateDevices(ctx, id, func(r *devices.Record) error {
		if err := r.StartCreate(n, now); err != nil {
			return err
		}
		if err := r.Started(n, now, fmt.Sprintf("JOB%s%d", id[len(id)-4:], n), nil); err != nil {
			return err
		}
		return r.Ended(n, now, 2, devices.DetailsComplete, len(names)-bad, bad, nil)
	}); err != nil {
		t.Fatal(err)
	}
}

// deviceScenario is TestOpenAPIContract's part for device distributions:
// every documented status of their routes but 401, 429 and 503 (the
// passes over every route answer those).
func deviceScenario(ctx context.Context, t *testing.T, c *contract, a *testAPI, A, B func(request) request) {
	post := func(path string, body []byte) request {
		return request{method: http.MethodPost, path: path, body: body}
	}
	get := func(path string) request { return request{method: http.MethodGet, path: path} }
	names := devNames("meter", 12000)

	var d1 client.DeviceDistribution
	r := c.run(t, a, exchange{name: "create", request: A(post("/v1/device-distributions", mustJSON(t, devReq("a1Dev1", names...)))), want: 202})
	d1 = decode[client.DeviceDistribution](t, r.body)
	if got, want := r.header.Get("Location"), "/v1/device-distributions/"+d1.ID; got != want {
		t.Errorf("Location %q, want %q", got, want)
	}
	if d1.State != client.DevicesQueued || !d1.DistributesProduct || d1.Devices != 12000 || len(d1.Jobs) != 2 ||
		d1.Jobs[0].Devices != 10000 || d1.Jobs[1].Devices != 2000 || d1.Counts.Pending != 12000 || d1.Strategy != "single" {
		t.Errorf("created %+v", d1)
	}
	withKey := A(post("/v1/device-distributions", mustJSON(t, devReq("a1Dev2", "dev-0001", "dev-0002"))))
	withKey.header = map[string]string{"Idempotency-Key": "device-key"}
	first := c.run(t, a, exchange{name: "with Idempotency-Key", request: withKey, want: 202})
	c.run(t, a, exchange{name: "replay", request: withKey, want: 200, check: func(t *testing.T, r *response) {
		if !bytes.Equal(r.body, first.body) || r.header.Get("Idempotent-Replayed") != "true" {
			t.Errorf("replay %s, want %s", trim(r.body), trim(first.body))
		}
	}})
	c.run(t, a, exchange{name: "malformed", request: A(post("/v1/device-distributions", []byte(`{"device_names":[`))), want: 400, invalid: true, check: wantCode("malformed_json")})
	text := A(post("/v1/device-distributions", mustJSON(t, devReq("a1Dev3", "dev-0001"))))
	text.contentType = "text/plain"
	c.run(t, a, exchange{name: "wrong media type", request: text, want: 415, invalid: true})
	c.run(t, a, exchange{name: "too many names", request: A(post("/v1/device-distributions", mustJSON(t, devReq("a1Dev3", devNames("x", devices.MaxDevices+1)...)))),
		want: 413, invalid: true, check: wantCode("too_many_items")})
	c.run(t, a, exchange{name: "bad and repeated names", request: A(post("/v1/device-distributions", mustJSON(t, devReq("a1Dev3", "dev-0001", "no", "dev-0001")))),
		want: 422, invalid: true, check: func(t *testing.T, r *response) {
			wantCode("validation_failed")(t, r)
			if !bytes.Contains(r.body, []byte(`"device_names[1]"`)) || !bytes.Contains(r.body, []byte(`"device_names[2]"`)) {
				t.Errorf("details do not name each bad device: %s", r.body)
			}
		}})
	cross := devReq("a1Dev3", "dev-0001")
	cross.TargetUID = "999999"
	c.run(t, a, exchange{name: "cross-account", request: A(post("/v1/device-distributions", mustJSON(t, cross))), want: 422, check: wantCode("validation_failed")})
	nearest := devReq("a1Dev4", "dev-0001")
	nearest.TargetInstanceID, nearest.TargetInstanceIDs, nearest.Strategy = "", []string{"iotx-oxssharez300", "iotx-oxssharez400"}, "nearest"
	c.run(t, a, exchange{name: "nearest", request: A(post("/v1/device-distributions", mustJSON(t, nearest))), want: 202, check: func(t *testing.T, r *response) {
		if d := decode[client.DeviceDistribution](t, r.body); d.Strategy != "nearest" || len(d.TargetInstanceIDs) != 2 {
			t.Errorf("nearest %+v", d)
		}
	}})

	c.run(t, a, exchange{name: "get", request: A(get("/v1/device-distributions/" + d1.ID)), want: 200})
	c.run(t, a, exchange{name: "another team's", request: B(get("/v1/device-distributions/" + d1.ID)), want: 404, check: wantCode("not_found")})
	c.run(t, a, exchange{name: "not an id", request: A(get("/v1/device-distributions/d_000000000000_0000000000")), want: 404, invalid: true})

	r = c.run(t, a, exchange{name: "list", request: A(get("/v1/device-distributions?limit=2")), want: 200})
	p := decode[client.DevicePage](t, r.body)
	all := []string{}
	for {
		for _, d := range p.Items {
			all = append(all, d.ID)
		}
		if p.NextCursor == "" {
			break
		}
		r = c.run(t, a, exchange{name: "list next", request: A(get("/v1/device-distributions?limit=2&cursor=" + p.NextCursor)), want: 200})
		p = decode[client.DevicePage](t, r.body)
	}
	if len(all) != 3 || all[0] != d1.ID || !slices.IsSorted(all) {
		t.Errorf("listed %v", all)
	}
	c.run(t, a, exchange{name: "list, another team sees none", request: B(get("/v1/device-distributions")), want: 200, check: func(t *testing.T, r *response) {
		if p := decode[client.DevicePage](t, r.body); len(p.Items) != 0 {
			t.Errorf("team B sees %v", p.Items)
		}
	}})
	c.run(t, a, exchange{name: "list, bad cursor", request: A(get("/v1/device-distributions?cursor=abc")), want: 400, check: wantCode("bad_cursor")})
	c.run(t, a, exchange{name: "list, bad limit", request: A(get("/v1/device-distributions?limit=0")), want: 400, invalid: true})

	c.run(t, a, exchange{name: "results before any job ended", request: A(get("/v1/device-distributions/" + d1.ID + "/results")), want: 200, check: func(t *testing.T, r *response) {
		if p := decode[client.DeviceResultPage](t, r.body); len(p.Items) != 0 {
			t.Errorf("results %+v", p)
		}
	}})
	endJob(ctx, t, a, d1.ID, 0, names[5], names[9999])
	endJob(ctx, t, a, d1.ID, 1, names[10001])
	r = c.run(t, a, exchange{name: "failed results, paged", request: A(get("/v1/device-distributions/" + d1.ID + "/results?limit=2")), want: 200})
	rp := decode[client.DeviceResultPage](t, r.body)
	if len(rp.Items) != 2 || rp.Items[0].DeviceName != names[5] || rp.Items[1].DeviceName != names[9999] || rp.NextCursor == "" {
		t.Fatalf("first page %+v", rp)
	}
	c.run(t, a, exchange{name: "failed results, last page", request: A(get("/v1/device-distributions/" + d1.ID + "/results?limit=2&cursor=" + rp.NextCursor)), want: 200, check: func(t *testing.T, r *response) {
		p := decode[client.DeviceResultPage](t, r.body)
		if len(p.Items) != 1 || p.Items[0].DeviceName != names[10001] || p.Items[0].Job != 1 || p.Items[0].Code != "iot.device.NotExistedDevice" || p.NextCursor != "" {
			t.Errorf("last page %+v", p)
		}
	}})
	c.run(t, a, exchange{name: "cursor of another listing", request: A(get("/v1/device-distributions/" + d1.ID + "/results?outcome=all&cursor=" + rp.NextCursor)), want: 400, check: wantCode("bad_cursor")})
	c.run(t, a, exchange{name: "all results as CSV", request: A(get("/v1/device-distributions/" + d1.ID + "/results?outcome=all&format=csv")), want: 200, check: func(t *testing.T, r *response) {
		rows, err := csv.NewReader(bytes.NewReader(r.body)).ReadAll()
		if err != nil || len(rows) != 12001 || strings.Join(rows[0], ",") != "device_name,job,code,message,target_instance_id" ||
			rows[6][0] != names[5] || rows[6][2] != "iot.device.NotExistedDevice" || rows[12000][1] != "1" {
			t.Errorf("CSV: %d rows, %v", len(rows), err)
		}
		if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "text/csv") {
			t.Errorf("Content-Type %q", ct)
		}
	}})
	c.run(t, a, exchange{name: "results, bad outcome", request: A(get("/v1/device-distributions/" + d1.ID + "/results?outcome=some")), want: 400, invalid: true, check: wantCode("bad_parameter")})
	c.run(t, a, exchange{name: "results of another team's", request: B(get("/v1/device-distributions/" + d1.ID + "/results")), want: 404})
	c.run(t, a, exchange{name: "get, finished", request: A(get("/v1/device-distributions/" + d1.ID)), want: 200, check: func(t *testing.T, r *response) {
		d := decode[client.DeviceDistribution](t, r.body)
		if d.State != client.DevicesSucceeded || d.Details != "complete" || d.Counts != (client.DeviceCounts{Distributed: 11997, Failed: 3}) {
			t.Errorf("finished %+v (counts %+v)", d, d.Counts)
		}
	}})

	c.run(t, a, exchange{name: "retry", request: A(post("/v1/device-distributions/"+d1.ID+"/retry", nil)), want: 202, check: func(t *testing.T, r *response) {
		d := decode[client.DeviceDistribution](t, r.body)
		if len(d.Jobs) != 3 || d.Jobs[2].Devices != 3 || !slices.Equal(d.Jobs[2].RetryOf, []int{0, 1}) || d.Counts.Pending != 3 || d.Counts.Failed != 0 {
			t.Errorf("retried %+v", d)
		}
	}})
	if got, _ := a.Store.DeviceNames(ctx, d1.ID, 2); !slices.Equal(got, []string{names[5], names[9999], names[10001]}) {
		t.Errorf("the retry's job carries %v", got)
	}
	c.run(t, a, exchange{name: "retry, still running", request: A(post("/v1/device-distributions/"+d1.ID+"/retry", nil)), want: 409, check: wantCode("invalid_state")})
	c.run(t, a, exchange{name: "retry another team's", request: B(post("/v1/device-distributions/"+d1.ID+"/retry", nil)), want: 404})

	d2 := decode[client.DeviceDistribution](t, first.body)
	c.run(t, a, exchange{name: "cancel", request: A(post("/v1/device-distributions/"+d2.ID+"/cancel", nil)), want: 200, check: func(t *testing.T, r *response) {
		if d := decode[client.DeviceDistribution](t, r.body); d.State != client.DevicesCanceled || d.Counts.Canceled != 2 || d.FinishedAt == nil {
			t.Errorf("canceled %+v", d)
		}
	}})
	c.run(t, a, exchange{name: "cancel again", request: A(post("/v1/device-distributions/"+d2.ID+"/cancel", nil)), want: 409, check: wantCode("invalid_state")})
	c.run(t, a, exchange{name: "cancel another team's", request: B(post("/v1/device-distributions/"+d2.ID+"/cancel", nil)), want: 404})
}
