package alisim

import (
	"context"
	"fmt"
	"net/url"
	"testing"
	"time"

	iot "github.com/alibabacloud-go/iot-20180120/v6/client"
	"github.com/alibabacloud-go/tea/tea"
)

func TestServerErrorFault(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Config{Faults: Faults{ServerErrorRatio: 1}})
	c := h.sdk(t, acctA1, false)
	seen := map[string]bool{}
	for range 20 {
		h.clock.Advance(time.Second) // stay clear of the QPS
		_, err := c.CreateProductDistributeJob(createReq("pk"))
		se := sdkError(t, err)
		code, status := tea.StringValue(se.Code), tea.IntValue(se.StatusCode)
		if !(code == "ServiceUnavailable" && status == 503) && !(code == "InternalError" && status == 500) {
			t.Fatalf("got %d %s", status, code)
		}
		seen[code] = true
	}
	if !seen["ServiceUnavailable"] || !seen["InternalError"] {
		t.Errorf("codes seen %v, want both", seen)
	}
	if n := len(h.sim.Jobs()); n != 0 {
		t.Errorf("%d jobs created by failed calls", n)
	}
	for _, call := range h.sim.Audit() {
		if call.Outcome != OutcomeError || call.Action != ActionCreateProductDistributeJob || call.AccessKeyID != acctA1.AccessKeyID {
			t.Errorf("audit %+v", call)
		}
	}

	if err := h.sim.SetFaults(Faults{}); err != nil {
		t.Fatal(err)
	}
	h.mustCreate(t, c, acctA1, "pk")
}

func TestThrottleBurstFault(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Config{})
	if err := h.sim.SetFaults(Faults{ThrottleUntil: h.clock.Now().Add(time.Minute)}); err != nil {
		t.Fatal(err)
	}
	c := h.sdk(t, acctA1, true)
	_, err := c.CreateProductDistributeJob(createReq("pk"))
	if se := sdkError(t, err); tea.StringValue(se.Code) != "Throttling.User" {
		t.Errorf("during the burst: %s", tea.StringValue(se.Code))
	}
	h.clock.Advance(time.Minute)
	h.mustCreate(t, c, acctA1, "pk")
	calls := h.sim.Audit()
	if calls[0].Outcome != OutcomeThrottled || calls[1].Outcome != OutcomeOK {
		t.Errorf("audit %+v", calls)
	}
}

// TestTimeoutAfterCreateFault checks that the job is created and that the
// connection is dropped, both when the hold times out and when the client
// gives up first.
func TestTimeoutAfterCreateFault(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name        string
		hold        time.Duration
		clientLimit time.Duration
	}{{"hold times out", 10 * time.Millisecond, time.Hour}, {"client gives up", time.Hour, 50 * time.Millisecond}} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, Config{Faults: Faults{TimeoutAfterCreateRatio: 1, HoldTimeout: tt.hold}})
			ctx, cancel := context.WithTimeout(context.Background(), tt.clientLimit)
			defer cancel()
			rc := rawCall{acct: acctA1, action: ActionCreateProductDistributeJob, date: h.clock.Now(), nonce: "n",
				query: url.Values{"ProductKey": {"pk"}, "SourceInstanceId": {"s"}, "TargetInstanceId": {"d"}, "TargetUid": {acctA1.UID}}}
			resp, err := h.srv.Client().Do(rc.request(t, h.srv.URL).WithContext(ctx))
			if err == nil {
				resp.Body.Close()
				t.Fatalf("got an answer %d, want a dropped connection", resp.StatusCode)
			}
			jobs := h.sim.Jobs()
			calls := h.sim.Audit()
			if len(jobs) != 1 || len(calls) != 1 || calls[0].Outcome != OutcomeTimeout || calls[0].JobID != jobs[0].JobID {
				t.Errorf("jobs %+v, audit %+v", jobs, calls)
			}
		})
	}
}

// TestErrorAfterCreateFault checks that the job is created and that the
// answer is nevertheless a 503 or 500: a lost answer.
func TestErrorAfterCreateFault(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Config{Faults: Faults{ErrorAfterCreateRatio: 1}})
	codes := map[string]bool{}
	for i := range 8 {
		h.clock.Advance(time.Second) // within the Create rate
		r := h.do(t, rawCall{acct: acctA1, action: ActionCreateProductDistributeJob, date: h.clock.Now(), nonce: fmt.Sprint("n", i),
			query: url.Values{"ProductKey": {fmt.Sprint("pk", i)}, "SourceInstanceId": {"s"}, "TargetInstanceId": {"d"}, "TargetUid": {acctA1.UID}}})
		if r.Status != 503 && r.Status != 500 {
			t.Fatalf("create %d answered %d %s, want 503 or 500", i, r.Status, r.Code)
		}
		codes[r.Code] = true
	}
	jobs, calls := h.sim.Jobs(), h.sim.Audit()
	if len(jobs) != 8 || len(calls) != 8 {
		t.Fatalf("%d jobs, %d calls; want 8 of each", len(jobs), len(calls))
	}
	for i, c := range calls {
		if c.Outcome != OutcomeError || c.JobID == "" {
			t.Errorf("call %d: %+v, want an error outcome naming the job made", i, c)
		}
	}
	if !codes["ServiceUnavailable"] && !codes["InternalError"] {
		t.Errorf("codes %v", codes)
	}
}

// TestLatencyFault checks that the delay comes before arrival: the audit's
// arrival time is taken after it (on the real clock here).
func TestLatencyFault(t *testing.T) {
	t.Parallel()
	delay := 30 * time.Millisecond
	h := newHarness(t, Config{Now: time.Now, Faults: Faults{LatencyMin: delay, LatencyMax: delay}})
	sent := time.Now()
	r := h.do(t, rawCall{acct: acctA1, action: ActionQueryDeviceDistributeJob, query: url.Values{"JobId": {"x"}}, date: sent})
	if r.Code != DefaultJobNotFoundCode {
		t.Fatalf("got %d %s", r.Status, r.Code)
	}
	if got := h.sim.Audit()[0].Arrived.Sub(sent); got < delay {
		t.Errorf("arrived %v after sending, want at least %v", got, delay)
	}
}

func TestSetFaultsValidates(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Config{})
	for _, f := range []Faults{
		{ServerErrorRatio: 1.5},
		{TimeoutAfterCreateRatio: -0.1},
		{LatencyMin: time.Second, LatencyMax: time.Millisecond},
		{HoldTimeout: -time.Second},
		{DeviceFailRatio: 2},
	} {
		if err := h.sim.SetFaults(f); err == nil {
			t.Errorf("SetFaults(%+v) accepted", f)
		}
	}
	if got := h.sim.CurrentFaults(); got != (Faults{HoldTimeout: 30 * time.Second, DeviceFailCode: DefaultDeviceFailCode}) {
		t.Errorf("faults changed to %+v", got)
	}
}

func TestNewPanicsOnInvalidConfig(t *testing.T) {
	t.Parallel()
	defer func() {
		if recover() == nil {
			t.Error("New accepted QuotaMode \"sometimes\"")
		}
	}()
	New(Config{QuotaMode: "sometimes"})
}

func createReq(pk string) *iot.CreateProductDistributeJobRequest {
	return &iot.CreateProductDistributeJobRequest{
		ProductKey: tea.String(pk), SourceInstanceId: tea.String("s"),
		TargetInstanceId: tea.String("d"), TargetUid: tea.String(acctA1.UID),
	}
}
