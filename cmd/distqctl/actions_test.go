package main

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
)

// retry (and cancel) of several ids tries and reports each: a malformed id
// among good ones is reported and the others are still done.
func TestActionTriesEveryID(t *testing.T) {
	t.Parallel()
	const (
		d = "d_018f3a2b4c5d_0a1b2c3d4e"
		b = "b_018f3a2b4c5d_0a1b2c3d4f"
	)
	var (
		mu   sync.Mutex
		seen []string
	)
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, r.Method+" "+r.URL.Path)
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		switch r.URL.Path {
		case "/v1/distributions/" + d + "/retry":
			w.WriteHeader(http.StatusAccepted)
			json.NewEncoder(w).Encode(map[string]any{"id": d, "state": "queued"})
		case "/v1/batches/" + b + "/retry":
			json.NewEncoder(w).Encode(map[string]any{"batch_id": b, "changed": 2, "skipped": 0, "affected": []string{}})
		default:
			w.WriteHeader(http.StatusNotFound)
			w.Write([]byte(`{"error":{"code":"not_found","message":"no such route","details":[]}}`))
		}
	}))
	defer api.Close()
	c := newCLI(t, nil)
	c.env["DISTQ_URL"], c.env["DISTQ_TOKEN"] = api.URL, "test-token-123"
	r := c.run("retry", d, "d_nope", b)
	mu.Lock()
	got := slices.Clone(seen)
	mu.Unlock()
	want := []string{"POST /v1/distributions/" + d + "/retry", "POST /v1/batches/" + b + "/retry"}
	if !slices.Equal(got, want) {
		t.Fatalf("requests %v, want %v (the malformed id skipped, the others tried)", got, want)
	}
	if !strings.Contains(r.stdout, "distribution "+d) || !strings.Contains(r.stdout, "batch "+b+": 2 queued again") {
		t.Errorf("stdout %q: want a line for each good id", r.stdout)
	}
	if !strings.Contains(r.stderr, "retry d_nope") || r.code != ExitUsage {
		t.Errorf("exit %d, stderr %q: want the bad id reported and exit %d", r.code, r.stderr, ExitUsage)
	}
}
