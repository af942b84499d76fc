package alisim

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// getJSON fetches path from h and decodes the JSON answer into v.
func (h *harness) adminJSON(t *testing.T, method, path, body string, wantStatus int, v any) {
	t.Helper()
	req, err := http.NewRequest(method, h.srv.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := h.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != wantStatus {
		t.Fatalf("%s %s: status %d, want %d", method, path, resp.StatusCode, wantStatus)
	}
	if v != nil {
		if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
	}
}

func TestAdminHealthz(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Config{})
	var got map[string]string
	h.adminJSON(t, http.MethodGet, "/healthz", "", 200, &got)
	if got["status"] != "ok" {
		t.Errorf("healthz = %v", got)
	}
	if n := len(h.sim.Audit()); n != 0 {
		t.Errorf("admin calls audited: %d", n)
	}
}

func TestAdminJobs(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Config{})
	var added map[string]string
	h.adminJSON(t, http.MethodPost, "/_alisim/jobs", `{"uid":"`+acctB.UID+`","product_key":"ext"}`, 201, &added)
	h.adminJSON(t, http.MethodPost, "/_alisim/jobs", `{"product_key":"ext2"}`, 201, nil) // first account
	h.adminJSON(t, http.MethodPost, "/_alisim/jobs", `{"uid":"x"}`, 400, nil)
	h.adminJSON(t, http.MethodPost, "/_alisim/jobs", `{`, 400, nil)

	var all struct{ Jobs []Job }
	h.adminJSON(t, http.MethodGet, "/_alisim/jobs", "", 200, &all)
	if len(all.Jobs) != 2 || all.Jobs[0].JobID != added["job_id"] || all.Jobs[1].UID != acctA1.UID || !all.Jobs[0].External {
		t.Errorf("jobs = %+v", all.Jobs)
	}
	var raw map[string][]map[string]any
	h.adminJSON(t, http.MethodGet, "/_alisim/jobs?uid="+acctB.UID, "", 200, &raw)
	if len(raw["jobs"]) != 1 {
		t.Fatalf("jobs of B = %v", raw)
	}
	created, _ := raw["jobs"][0]["created"].(string)
	if _, err := time.Parse(time.RFC3339Nano, created); err != nil {
		t.Errorf("created %q is not RFC 3339: %v", created, err)
	}
}

func TestAdminFaults(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Config{})
	var got faultsJSON
	h.adminJSON(t, http.MethodPost, "/_alisim/faults",
		`{"latency_min":"1ms","latency_max":"2ms","server_error_ratio":0.25,"timeout_after_create_ratio":0.5,"hold_timeout":"5s","throttle_for":"1m"}`, 200, &got)
	want := Faults{LatencyMin: time.Millisecond, LatencyMax: 2 * time.Millisecond, ServerErrorRatio: 0.25,
		TimeoutAfterCreateRatio: 0.5, HoldTimeout: 5 * time.Second, ThrottleUntil: h.clock.Now().Add(time.Minute)}
	if f := h.sim.CurrentFaults(); !f.ThrottleUntil.Equal(want.ThrottleUntil) || f.LatencyMax != want.LatencyMax ||
		f.ServerErrorRatio != want.ServerErrorRatio || f.HoldTimeout != want.HoldTimeout {
		t.Errorf("faults = %+v, want %+v", f, want)
	}
	if got.LatencyMax != "2ms" || got.HoldTimeout != "5s" {
		t.Errorf("echo = %+v", got)
	}
	until := h.clock.Now().Add(time.Hour).Format(time.RFC3339Nano)
	h.adminJSON(t, http.MethodPost, "/_alisim/faults", `{"throttle_until":"`+until+`"}`, 200, nil)
	h.adminJSON(t, http.MethodGet, "/_alisim/faults", "", 200, &got)
	if got.ThrottleUntil.Format(time.RFC3339Nano) != until || got.ServerErrorRatio != 0 {
		t.Errorf("faults after replace = %+v", got)
	}
	for _, bad := range []string{`{"server_error_ratio":2}`, `{"latency_min":"soon"}`, `{"unknown":1}`, `[]`} {
		h.adminJSON(t, http.MethodPost, "/_alisim/faults", bad, 400, nil)
	}
}

func TestAdminAudit(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Config{})
	h.do(t, rawCall{acct: acctA1, action: ActionQueryDeviceDistributeJob, query: url.Values{"JobId": {"j1"}}})
	h.do(t, rawCall{acct: acctA1, v1: true, action: ActionListDeviceDistributeJob, query: url.Values{"PageSize": {"1"}}})
	h.do(t, rawCall{acct: acctB, action: ActionQueryDeviceDistributeJob, query: url.Values{"JobId": {"j2"}}})

	var all struct{ Calls []Call }
	h.adminJSON(t, http.MethodGet, "/_alisim/audit", "", 200, &all)
	if len(all.Calls) != 3 {
		t.Fatalf("calls = %+v", all.Calls)
	}
	for i, c := range all.Calls {
		if c.Seq != i+1 || c.RequestID == "" || c.Arrived.IsZero() {
			t.Errorf("call %d = %+v", i, c)
		}
	}
	first := all.Calls[0]
	if first.UID != acctA1.UID || first.AccessKeyID != acctA1.AccessKeyID || first.JobID != "j1" ||
		first.Code != DefaultJobNotFoundCode || first.HTTPStatus != 200 || first.Outcome != OutcomeError ||
		first.SignatureMethod != AlgorithmV3 {
		t.Errorf("first call = %+v", first)
	}
	if all.Calls[1].Outcome != OutcomeOK || all.Calls[1].SignatureMethod != AlgorithmV1 {
		t.Errorf("second call = %+v", all.Calls[1])
	}

	var some struct{ Calls []Call }
	h.adminJSON(t, http.MethodGet, "/_alisim/audit?action="+ActionQueryDeviceDistributeJob+"&since=1", "", 200, &some)
	if len(some.Calls) != 1 || some.Calls[0].Seq != 3 {
		t.Errorf("filtered calls = %+v", some.Calls)
	}
	h.adminJSON(t, http.MethodGet, "/_alisim/audit?since=x", "", 400, nil)

	var raw map[string][]map[string]any
	h.adminJSON(t, http.MethodGet, "/_alisim/audit?since=2", "", 200, &raw)
	if s, _ := raw["calls"][0]["arrived"].(string); !strings.Contains(s, "T") {
		t.Errorf("arrived = %q", s)
	} else if _, err := time.Parse(time.RFC3339Nano, s); err != nil {
		t.Errorf("arrived %q: %v", s, err)
	}
}
