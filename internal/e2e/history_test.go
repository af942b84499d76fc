package e2e

import (
	"testing"
	"time"

	"github.com/distq/distq/client"
	"github.com/distq/distq/internal/alisim"
	"github.com/distq/distq/internal/app"
	"github.com/distq/distq/internal/devstack"
	"github.com/distq/distq/internal/queue"
)

// An attempt that the remote's server errors end without a job stays in the
// distribution's history, with its error, after the distribution succeeds
// on a later attempt: the worker records each attempt through the domain's
// transitions.
func TestHistoryKeepsErroredAttempts(t *testing.T) {
	t.Parallel()
	sim := fastSim()
	sim.Faults = alisim.Faults{ServerErrorRatio: 1}
	// A Create answered 5xx is ambiguous (Q5): it is looked up until its
	// send + call timeout + visibility bound, kept short here.
	st := startStack(t, devstack.Options{Sim: sim, Worker: app.WorkerOptions{Queue: queue.Options{
		LookupInterval: 200 * time.Millisecond, RemoteVisibility: 2 * time.Second, CallTimeout: time.Second}}})
	c := newAPI(t, st.APIURL, st.Token)
	d := c.submit(req("a1flaky"))

	// Every call fails until the simulator has refused a Create.
	var refused alisim.Call
	state := client.StateQueued
	deadline := time.Now().Add(15 * time.Second)
	for refused.RequestID == "" {
		for _, call := range st.Sim.Audit() {
			if call.Action == alisim.ActionCreateProductDistributeJob && call.HTTPStatus >= 500 {
				refused = call
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("no Create refused after 15s")
		}
		got, err := c.Poll(t.Context(), d.ID, state, 100*time.Millisecond)
		if err != nil {
			t.Fatal(err)
		}
		state = got.State
	}
	if err := st.Sim.SetFaults(alisim.Faults{}); err != nil {
		t.Fatal(err)
	}
	final := c.waitFinal(d.ID, 30*time.Second)
	n := len(final.History)
	for _, a := range final.History {
		t.Logf("attempt %d: %s job %q error %+v", a.Number, a.Outcome, a.JobID, a.Error)
	}
	if final.State != client.StateSucceeded || final.Attempts < 2 || n != final.Attempts {
		t.Fatalf("%+v: want succeeded after at least 2 attempts, each in the history", final)
	}
	first, last := final.History[0], final.History[n-1]
	if first.Number != 1 || first.Outcome != client.OutcomeRequeued || first.Error == nil || first.Error.Code == "" || first.FinishedAt == nil || first.JobID != "" {
		t.Fatalf("first attempt %+v (error %+v): want requeued without a job, with the error that ended it", first, first.Error)
	}
	// A server error is either retried at once (the remote's code and
	// RequestId) or, when the Create's outcome is unknown, looked up and
	// found to have made no job (create_lost).
	if first.Error.Code != "create_lost" && (first.Error.Code != refused.Code || first.Error.RequestID != refused.RequestID) {
		t.Errorf("first attempt's error %+v, want the refused Create's code %s and RequestId %s", first.Error, refused.Code, refused.RequestID)
	}
	if last.Number != final.Attempts || last.Outcome != client.OutcomeSucceeded || last.JobID != final.JobID || last.Error != nil {
		t.Errorf("last attempt %+v: want attempt %d succeeded with job %s", last, final.Attempts, final.JobID)
	}
}
