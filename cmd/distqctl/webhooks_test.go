package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/distq/distq/internal/alisim"
	"github.com/distq/distq/internal/devstack"
	"github.com/distq/distq/internal/redistest"
)

// submit --notify-url reaches the receiver with the batch's event, and
// --wait follows the batch by long poll (GET /v1/batches/{id}?wait=…).
func TestSubmitNotifyURLAndLongPollWatch(t *testing.T) {
	t.Parallel()
	var (
		mu     sync.Mutex
		events []map[string]any
	)
	rcv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var ev map[string]any
		raw, _ := io.ReadAll(r.Body)
		if json.Unmarshal(raw, &ev) == nil && r.Header.Get("webhook-signature") != "" {
			mu.Lock()
			events = append(events, ev)
			mu.Unlock()
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	defer rcv.Close()
	st, err := devstack.Start(context.Background(), devstack.Options{
		RedisURL: redistest.New(t).URL(),
		Sim:      alisim.Config{JobDuration: 300 * time.Millisecond},
		Env: map[string]string{
			"DISTQ_WEBHOOK_SECRETS":       devstack.DevTeam + ":whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
			"DISTQ_WEBHOOK_ALLOWED_HOSTS": strings.TrimPrefix(rcv.URL, "http://"),
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.Stop)
	// A proxy in front of the api counts the batch long polls.
	api, _ := url.Parse(st.APIURL)
	var longPolls atomic.Int64
	proxy := httputil.NewSingleHostReverseProxy(api)
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/v1/batches/") && r.URL.Query().Get("wait") != "" && r.Header.Get("If-None-Match") != "" {
			longPolls.Add(1)
		}
		proxy.ServeHTTP(w, r)
	}))
	defer front.Close()
	c := newCLI(t, st)
	c.env["DISTQ_URL"] = front.URL
	file := writeFile(t, "products.txt", "a1hook1\na1hook2\na1hook3\n")
	r := c.run("submit", "-f", file, "--source", testSource, "--target", testTarget, "--notify-url", rcv.URL+"/events",
		"--wait", "--progress", "none")
	if r.code != 0 || !strings.Contains(r.stdout, "succeeded 3") {
		t.Fatalf("submit --wait: exit %d", r.code)
	}
	if longPolls.Load() == 0 {
		t.Errorf("watch never long-polled the batch")
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		mu.Lock()
		n := len(events)
		mu.Unlock()
		if n > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no event reached the receiver")
		}
		time.Sleep(50 * time.Millisecond) // poll with a deadline
	}
	mu.Lock()
	defer mu.Unlock()
	if events[0]["type"] != "batch.finished" {
		t.Fatalf("event %+v, want batch.finished", events[0])
	}
	// A notify_url the server does not allow is refused with its reason.
	r = c.run("submit", "-p", "a1hook9", "--source", testSource, "--target", testTarget, "--notify-url", "http://169.254.169.254/x")
	if r.code == 0 || !strings.Contains(r.stderr+r.stdout, "notify_url") {
		t.Errorf("metadata notify_url: exit %d", r.code)
	}
}
