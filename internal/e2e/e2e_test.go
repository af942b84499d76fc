// Package e2e tests distq end to end: the api and workers started as in
// production (app.RunAPI / app.RunWorker), a real Redis over TCP, real HTTP
// between the parts, and the official SDK's signed requests against the
// simulator.
package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/distq/distq/internal/alisim"
	"github.com/distq/distq/internal/devstack"
	"github.com/distq/distq/internal/distribution"
	"github.com/distq/distq/internal/redistest"
)

// fastSim is a simulator with short jobs.
func fastSim() alisim.Config { return alisim.Config{JobDuration: 300 * time.Millisecond} }

func startStack(t *testing.T, o devstack.Options) *devstack.Stack {
	t.Helper()
	db := redistest.New(t)
	o.RedisURL = db.URL()
	if o.Worker.Quota.MinMargin == 0 {
		// These tests check behaviour, not how fully the rate is used: a
		// generous margin keeps a CPU stall of the busy test machine (the
		// whole suite runs in parallel) from turning into a throttled call.
		// distqbench measures the rate with the real margin.
		o.Worker.Quota.MinMargin = 100 * time.Millisecond
	}
	st, err := devstack.Start(context.Background(), o)
	if err != nil {
		t.Fatalf("start stack: %v", err)
	}
	t.Cleanup(st.Stop)
	return st
}

type client struct {
	t     *testing.T
	base  string
	token string
}

func (c *client) do(method, path string, body any, out any) int {
	c.t.Helper()
	var rd io.Reader
	if body != nil {
		raw, _ := json.Marshal(body)
		rd = bytes.NewReader(raw)
	}
	req, _ := http.NewRequest(method, c.base+path, rd)
	req.Header.Set("Authorization", "Bearer "+c.token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			c.t.Fatalf("%s %s: decode %q: %v", method, path, raw, err)
		}
	}
	return resp.StatusCode
}

func (c *client) submit(req distribution.Request) distribution.Distribution {
	c.t.Helper()
	var d distribution.Distribution
	if code := c.do("POST", "/v1/distributions", req, &d); code != http.StatusAccepted {
		c.t.Fatalf("submit: status %d", code)
	}
	return d
}

// waitFinal long-polls a distribution until it is final, within limit.
func (c *client) waitFinal(id string, limit time.Duration) distribution.Distribution {
	c.t.Helper()
	deadline := time.Now().Add(limit)
	var d distribution.Distribution
	state := distribution.StateQueued
	for time.Now().Before(deadline) {
		if code := c.do("GET", fmt.Sprintf("/v1/distributions/%s?wait=5s&state=%s", id, state), nil, &d); code != http.StatusOK {
			c.t.Fatalf("get %s: status %d", id, code)
		}
		if d.State.Terminal() {
			return d
		}
		state = d.State
	}
	c.t.Fatalf("distribution %s not final after %v: %+v", id, limit, d)
	return d
}

func req(pk string) distribution.Request {
	return distribution.Request{ProductKey: pk, SourceInstanceID: "iotx-oxssharez200", TargetInstanceID: "iot-cn-6ja0000e2e"}
}

func TestSubmitToSucceeded(t *testing.T) {
	t.Parallel()
	st := startStack(t, devstack.Options{Sim: fastSim()})
	c := &client{t: t, base: st.APIURL, token: st.Token}
	d := c.submit(req("a1e2eOk"))
	if d.State != distribution.StateQueued || d.TargetUID != devstack.DevUID {
		t.Fatalf("accepted %+v: want queued with target_uid %s", d, devstack.DevUID)
	}
	// The long poll sees it running with a job id, then succeeded.
	var running distribution.Distribution
	c.do("GET", "/v1/distributions/"+d.ID+"?wait=10s&state=queued", nil, &running)
	if running.State == distribution.StateSubmitting {
		c.do("GET", "/v1/distributions/"+d.ID+"?wait=10s&state=submitting", nil, &running)
	}
	if running.State != distribution.StateRunning && running.State != distribution.StateSucceeded || running.JobID == "" {
		t.Fatalf("after submit: %+v, want running with a job_id", running)
	}
	final := c.waitFinal(d.ID, 20*time.Second)
	if final.State != distribution.StateSucceeded || final.RemoteStatus == nil || *final.RemoteStatus != 2 || final.FinishedAt == nil {
		t.Fatalf("final %+v, want succeeded with remote_status 2", final)
	}
	// From the outside: one Create, signed ACS3-HMAC-SHA256 by the SDK, and
	// the job the record names.
	var creates []alisim.Call
	for _, call := range st.Sim.Audit() {
		if call.Action == alisim.ActionCreateProductDistributeJob {
			creates = append(creates, call)
		}
	}
	if len(creates) != 1 || creates[0].Outcome != alisim.OutcomeOK || creates[0].JobID != final.JobID || creates[0].SignatureMethod != "ACS3-HMAC-SHA256" {
		t.Fatalf("creates seen by the simulator: %+v; want one ok ACS3 call for job %s", creates, final.JobID)
	}
	// Another team cannot see it.
	other := &client{t: t, base: st.APIURL, token: "not-a-token"}
	if code := other.do("GET", "/v1/distributions/"+d.ID, nil, nil); code != http.StatusUnauthorized {
		t.Fatalf("bad token: status %d, want 401", code)
	}
}

func TestFailures(t *testing.T) {
	t.Parallel()
	sim := fastSim()
	sim.MissingProducts = []string{"a1missing"}
	st := startStack(t, devstack.Options{Sim: sim})
	c := &client{t: t, base: st.APIURL, token: st.Token}

	missing := c.submit(req("a1missing"))
	got := c.waitFinal(missing.ID, 20*time.Second)
	if got.State != distribution.StateFailed || got.Error == nil || got.Error.Code != "iot.prod.NotExistedProduct" || got.Error.Message == "" || got.Error.RequestID == "" {
		t.Fatalf("missing product: %+v (error %+v), want failed with iot.prod.NotExistedProduct, its message and request id", got, got.Error)
	}
	if got.Attempts != 1 {
		t.Fatalf("missing product: %d attempts, want 1 (permanent errors are not retried)", got.Attempts)
	}

	// Cross-account distribution is refused at the API.
	var e struct {
		Error struct{ Code, Message string } `json:"error"`
	}
	r := req("a1cross")
	r.TargetUID = "999"
	if code := c.do("POST", "/v1/distributions", r, &e); code != http.StatusUnprocessableEntity || e.Error.Code != "validation_failed" {
		t.Fatalf("cross-account: status %d %+v, want 422 validation_failed", code, e)
	}
}

func TestInterruptedJobFails(t *testing.T) {
	t.Parallel()
	sim := fastSim()
	sim.FailRatio = 1
	st := startStack(t, devstack.Options{Sim: sim})
	c := &client{t: t, base: st.APIURL, token: st.Token}
	d := c.submit(req("a1interrupted"))
	got := c.waitFinal(d.ID, 20*time.Second)
	if got.State != distribution.StateFailed || got.JobID == "" || got.RemoteStatus == nil || *got.RemoteStatus != 3 || got.Error == nil || got.Error.Code != "JobInterrupted" {
		t.Fatalf("status 3: %+v (error %+v), want failed, remote_status 3, JobInterrupted", got, got.Error)
	}
}

func TestWrongSecretFailsClearly(t *testing.T) {
	t.Parallel()
	st := startStack(t, devstack.Options{Sim: fastSim(), Env: map[string]string{"ALIBABA_CLOUD_ACCESS_KEY_SECRET": "not-the-secret"}})
	c := &client{t: t, base: st.APIURL, token: st.Token}
	d := c.submit(req("a1badsecret"))
	got := c.waitFinal(d.ID, 20*time.Second)
	if got.State != distribution.StateFailed || got.Error == nil || got.Error.Code != "SignatureDoesNotMatch" {
		t.Fatalf("wrong secret: %+v (error %+v), want failed with SignatureDoesNotMatch", got, got.Error)
	}
	for _, call := range st.Sim.Audit() {
		if call.Action == alisim.ActionCreateProductDistributeJob && call.Outcome == alisim.OutcomeOK {
			t.Fatalf("a Create with a wrong secret was accepted: %+v", call)
		}
	}
}
