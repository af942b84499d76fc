// Package e2e tests distq end to end: the api and workers started as in
// production (app.RunAPI / app.RunWorker), a real Redis over TCP, real HTTP
// between the parts, and the official SDK's signed requests against the
// simulator.
package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/distq/distq/client"
	"github.com/distq/distq/internal/alisim"
	"github.com/distq/distq/internal/devstack"
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

// api is a test's client of the api: the public typed client, and raw
// requests for what it does not model (bad input, /metrics, /readyz).
type api struct {
	*client.Client
	t     *testing.T
	base  string
	token string
}

func newAPI(t *testing.T, base, token string) *api {
	return &api{Client: client.New(base, token), t: t, base: base, token: token}
}

// apiError returns err as the API's error answer, failing the test when
// it is something else.
func apiError(t *testing.T, err error) *client.Error {
	t.Helper()
	var e *client.Error
	if !errors.As(err, &e) {
		t.Fatalf("got %v, want an error answer of the API", err)
	}
	return e
}

func (c *api) do(method, path string, body any, out any) int {
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

func (c *api) submit(req client.DistributionRequest) client.Distribution {
	c.t.Helper()
	d, replayed, err := c.Submit(c.t.Context(), req, "")
	if err != nil || replayed {
		c.t.Fatalf("submit: %v (replayed %t)", err, replayed)
	}
	return *d
}

// waitFinal long-polls a distribution until it is final, within limit.
func (c *api) waitFinal(id string, limit time.Duration) client.Distribution {
	c.t.Helper()
	deadline := time.Now().Add(limit)
	d := &client.Distribution{State: client.StateQueued}
	for time.Now().Before(deadline) {
		var err error
		if d, err = c.Poll(c.t.Context(), id, d.State, 5*time.Second); err != nil {
			c.t.Fatalf("get %s: %v", id, err)
		}
		if d.State.Terminal() {
			return *d
		}
	}
	c.t.Fatalf("distribution %s not final after %v: %+v", id, limit, d)
	return *d
}

func req(pk string) client.DistributionRequest {
	return client.DistributionRequest{ProductKey: pk, SourceInstanceID: "iotx-oxssharez200", TargetInstanceID: "iot-cn-6ja0000e2e"}
}

func TestSubmitToSucceeded(t *testing.T) {
	t.Parallel()
	st := startStack(t, devstack.Options{Sim: fastSim()})
	c := newAPI(t, st.APIURL, st.Token)
	d := c.submit(req("a1e2eOk"))
	if d.State != client.StateQueued || d.TargetUID != devstack.DevUID {
		t.Fatalf("accepted %+v: want queued with target_uid %s", d, devstack.DevUID)
	}
	// The long poll sees it running with a job id, then succeeded.
	running, err := c.Poll(t.Context(), d.ID, client.StateQueued, 10*time.Second)
	if err == nil && running.State == client.StateSubmitting {
		running, err = c.Poll(t.Context(), d.ID, client.StateSubmitting, 10*time.Second)
	}
	if err != nil || running.State != client.StateRunning && running.State != client.StateSucceeded || running.JobID == "" {
		t.Fatalf("after submit: %+v (%v), want running with a job_id", running, err)
	}
	final := c.waitFinal(d.ID, 20*time.Second)
	if final.State != client.StateSucceeded || final.RemoteStatus == nil || *final.RemoteStatus != 2 || final.FinishedAt == nil {
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
	other := newAPI(t, st.APIURL, "not-a-token")
	_, err = other.Get(t.Context(), d.ID)
	if e := apiError(t, err); e.Status != http.StatusUnauthorized {
		t.Fatalf("bad token: status %d, want 401", e.Status)
	}
}

func TestFailures(t *testing.T) {
	t.Parallel()
	sim := fastSim()
	sim.MissingProducts = []string{"a1missing"}
	st := startStack(t, devstack.Options{Sim: sim})
	c := newAPI(t, st.APIURL, st.Token)

	missing := c.submit(req("a1missing"))
	got := c.waitFinal(missing.ID, 20*time.Second)
	if got.State != client.StateFailed || got.Error == nil || got.Error.Code != "iot.prod.NotExistedProduct" || got.Error.Message == "" || got.Error.RequestID == "" {
		t.Fatalf("missing product: %+v (error %+v), want failed with iot.prod.NotExistedProduct, its message and request id", got, got.Error)
	}
	if got.Attempts != 1 {
		t.Fatalf("missing product: %d attempts, want 1 (permanent errors are not retried)", got.Attempts)
	}
	// Retried, it fails again: both attempts count, and the first one's
	// error stays in the history beside the second's, each with its
	// RequestId.
	if _, err := c.Retry(t.Context(), missing.ID); err != nil {
		t.Fatal(err)
	}
	again := c.waitFinal(missing.ID, 20*time.Second)
	if again.State != client.StateFailed || again.Attempts != 2 || len(again.History) != 2 {
		t.Fatalf("retried missing product: %+v, want failed after 2 attempts, both in the history", again)
	}
	for i, at := range again.History {
		if at.Number != i+1 || at.Outcome != client.OutcomeFailed || at.FinishedAt == nil || at.Error == nil ||
			at.Error.Code != "iot.prod.NotExistedProduct" || at.Error.RequestID == "" {
			t.Errorf("attempt %d: %+v (error %+v), want failed with the remote's code and RequestId", i+1, at, at.Error)
		}
	}
	if again.History[0].Error.RequestID != got.Error.RequestID || again.History[1].Error.RequestID != again.Error.RequestID {
		t.Errorf("history's RequestIds %s, %s; want the first failure's %s and the last's %s",
			again.History[0].Error.RequestID, again.History[1].Error.RequestID, got.Error.RequestID, again.Error.RequestID)
	}

	// Cross-account distribution is refused at the API.
	r := req("a1cross")
	r.TargetUID = "999"
	_, _, err := c.Submit(t.Context(), r, "")
	if e := apiError(t, err); e.Status != http.StatusUnprocessableEntity || e.Code != "validation_failed" {
		t.Fatalf("cross-account: %v, want 422 validation_failed", e)
	}
}

func TestInterruptedJobFails(t *testing.T) {
	t.Parallel()
	sim := fastSim()
	sim.FailRatio = 1
	st := startStack(t, devstack.Options{Sim: sim})
	c := newAPI(t, st.APIURL, st.Token)
	d := c.submit(req("a1interrupted"))
	got := c.waitFinal(d.ID, 20*time.Second)
	if got.State != client.StateFailed || got.JobID == "" || got.RemoteStatus == nil || *got.RemoteStatus != 3 || got.Error == nil || got.Error.Code != "JobInterrupted" {
		t.Fatalf("status 3: %+v (error %+v), want failed, remote_status 3, JobInterrupted", got, got.Error)
	}
}

func TestWrongSecretFailsClearly(t *testing.T) {
	t.Parallel()
	st := startStack(t, devstack.Options{Sim: fastSim(), Env: map[string]string{"ALIBABA_CLOUD_ACCESS_KEY_SECRET": "not-the-secret"}})
	c := newAPI(t, st.APIURL, st.Token)
	d := c.submit(req("a1badsecret"))
	got := c.waitFinal(d.ID, 20*time.Second)
	if got.State != client.StateFailed || got.Error == nil || got.Error.Code != "SignatureDoesNotMatch" {
		t.Fatalf("wrong secret: %+v (error %+v), want failed with SignatureDoesNotMatch", got, got.Error)
	}
	for _, call := range st.Sim.Audit() {
		if call.Action == alisim.ActionCreateProductDistributeJob && call.Outcome == alisim.OutcomeOK {
			t.Fatalf("a Create with a wrong secret was accepted: %+v", call)
		}
	}
}
