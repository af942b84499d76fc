package alisim

import (
	"fmt"
	"net/url"
	"sync"
	"testing"
	"time"
)

func TestLimiter(t *testing.T) {
	t.Parallel()
	ms := time.Millisecond
	tests := []struct {
		name     string
		rate     float64
		arrivals []time.Duration
		want     []bool
	}{
		{"burst of 3 at 2/s", 2, []time.Duration{0, 0, 0}, []bool{true, true, false}},
		{"exact spacing holds", 2, []time.Duration{0, 500 * ms, 1000 * ms, 1500 * ms, 2000 * ms}, []bool{true, true, true, true, true}},
		{"window is strict", 2, []time.Duration{0, 500 * ms, 999 * ms, 1000 * ms}, []bool{true, true, false, true}},
		{"throttled calls do not count", 1, []time.Duration{0, 10 * ms, 20 * ms, 1000 * ms}, []bool{true, false, false, true}},
		{"10/s", 10, []time.Duration{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1000 * ms}, []bool{true, true, true, true, true, true, true, true, true, true, false, true}},
		{"out of order", 1, []time.Duration{500 * ms, 0, 1400 * ms, 1500 * ms}, []bool{true, false, false, true}},
		{"half a call per second", 0.5, []time.Duration{0, 1900 * ms, 2000 * ms}, []bool{true, false, true}},
		{"fractional rate", 2.5, []time.Duration{0, 0, 700 * ms, 800 * ms}, []bool{true, true, false, true}},
	}
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var l limiter
			for i, at := range tt.arrivals {
				if got := l.allow("uid", "A", tt.rate, t0.Add(at)); got != tt.want[i] {
					t.Errorf("call %d at +%v: allowed %v, want %v", i, at, got, tt.want[i])
				}
			}
		})
	}
}

// TestLimiterIsolation checks that limits are per UID and per action.
func TestLimiterIsolation(t *testing.T) {
	t.Parallel()
	var l limiter
	t0 := time.Now()
	for _, k := range []struct{ uid, action string }{{"u1", "A"}, {"u1", "B"}, {"u2", "A"}} {
		if !l.allow(k.uid, k.action, 1, t0) {
			t.Errorf("%s/%s refused", k.uid, k.action)
		}
	}
	if l.allow("u1", "A", 1, t0) {
		t.Error("second u1/A allowed")
	}
}

// TestThrottlingSharedByKeys checks through HTTP that two AccessKeys of one
// UID share one budget, that the audit records every throttled call, and
// that no 1-second window of accepted calls exceeds the limit under
// concurrent load.
func TestThrottlingSharedByKeys(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Config{QPS: map[string]float64{ActionQueryDeviceDistributeJob: 3}})
	var wg sync.WaitGroup
	for i := range 12 {
		wg.Go(func() {
			acct := acctA1
			if i%2 == 1 {
				acct = acctA2
			}
			h.do(t, rawCall{acct: acct, v1: i%3 == 0, action: ActionQueryDeviceDistributeJob,
				query: url.Values{"JobId": {fmt.Sprint("j", i)}}})
		})
	}
	wg.Wait()
	accepted, throttled := 0, 0
	for _, c := range h.sim.AuditSince(0, ActionQueryDeviceDistributeJob) {
		switch c.Outcome {
		case OutcomeThrottled:
			throttled++
			if c.Code != "Throttling.User" || c.HTTPStatus != 400 || c.UID != acctA1.UID {
				t.Errorf("throttled call recorded as %+v", c)
			}
		case OutcomeError: // accepted, then JobId not found
			accepted++
		default:
			t.Errorf("unexpected outcome %+v", c)
		}
	}
	if accepted != 3 || throttled != 9 {
		t.Errorf("accepted %d, throttled %d; want 3 and 9", accepted, throttled)
	}
	// Another UID is unaffected.
	if r := h.do(t, rawCall{acct: acctB, action: ActionQueryDeviceDistributeJob, query: url.Values{"JobId": {"x"}}}); r.Code != DefaultJobNotFoundCode {
		t.Errorf("other UID: %d %s", r.Status, r.Code)
	}
	// A second later the budget is back.
	h.clock.Advance(time.Second)
	if r := h.do(t, rawCall{acct: acctA2, action: ActionQueryDeviceDistributeJob, query: url.Values{"JobId": {"x"}}}); r.Code != DefaultJobNotFoundCode {
		t.Errorf("after a second: %d %s", r.Status, r.Code)
	}
}
