package client_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/distq/distq/client"
)

// fake serves handler and returns a client of it.
func fake(t *testing.T, handler http.HandlerFunc, opts ...client.Option) *client.Client {
	t.Helper()
	srv := httptest.NewServer(handler)
	t.Cleanup(srv.Close)
	return client.New(srv.URL+"/", "tok", opts...)
}

func TestRequestShape(t *testing.T) {
	t.Parallel()
	var got *http.Request
	var body []byte
	c := fake(t, func(w http.ResponseWriter, r *http.Request) {
		got, body = r, must(io.ReadAll(r.Body))
		w.WriteHeader(http.StatusAccepted)
		io.WriteString(w, `{"id":"d_1","state":"queued","created_at":"2026-01-02T03:04:05Z","updated_at":"2026-01-02T03:04:05Z","attempts":0}`)
	}, client.WithUserAgent("test-agent"))
	d, replayed, err := c.Submit(t.Context(), client.DistributionRequest{ProductKey: "a1", SourceInstanceID: "s", TargetInstanceID: "t"}, "key-1")
	if err != nil || replayed || d.ID != "d_1" || d.State != client.StateQueued {
		t.Fatalf("submit: %+v %t %v", d, replayed, err)
	}
	want := map[string]string{"Authorization": "Bearer tok", "Content-Type": "application/json", "Idempotency-Key": "key-1", "User-Agent": "test-agent"}
	for k, v := range want {
		if got.Header.Get(k) != v {
			t.Errorf("header %s: %q, want %q", k, got.Header.Get(k), v)
		}
	}
	if got.Method != http.MethodPost || got.URL.Path != "/v1/distributions" {
		t.Errorf("request %s %s", got.Method, got.URL.Path)
	}
	if string(body) != `{"product_key":"a1","source_instance_id":"s","target_instance_id":"t"}` {
		t.Errorf("body %s", body)
	}
}

func TestQueries(t *testing.T) {
	t.Parallel()
	var urls []string
	c := fake(t, func(w http.ResponseWriter, r *http.Request) {
		urls = append(urls, r.Method+" "+r.URL.RequestURI())
		switch {
		case strings.Contains(r.URL.Path, "/batches/") && r.Method == http.MethodPost:
			io.WriteString(w, `{"batch_id":"b_1","changed":1,"skipped":0,"affected":["d_1"]}`)
		case strings.HasSuffix(r.URL.Path, "/distributions") || r.URL.Path == "/v1/distributions":
			io.WriteString(w, `{"items":[]}`)
		default:
			io.WriteString(w, `{"id":"x","state":"running"}`)
		}
	})
	ctx := t.Context()
	steps := []func() error{
		func() error { _, err := c.Poll(ctx, "d_1", client.StateQueued, 30*time.Second); return err },
		func() error { _, err := c.Poll(ctx, "d_1", "", 500*time.Millisecond); return err },
		func() error {
			_, err := c.List(ctx, client.ListOptions{State: client.StateFailed, BatchID: "b_1", ProductKey: "p", Limit: 7, Cursor: "d_9"})
			return err
		},
		func() error {
			_, err := c.BatchDistributions(ctx, "b_1", client.ListOptions{BatchID: "ignored", Limit: 3})
			return err
		},
		func() error { _, err := c.Cancel(ctx, "d_1"); return err },
		func() error { _, err := c.Retry(ctx, "d_1"); return err },
		func() error { _, err := c.GetBatch(ctx, "b_1"); return err },
		func() error { _, err := c.CancelBatch(ctx, "b_1"); return err },
		func() error { _, err := c.RetryBatch(ctx, "b_1"); return err },
	}
	for i, step := range steps {
		if err := step(); err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
	}
	want := []string{
		"GET /v1/distributions/d_1?state=queued&wait=30s",
		"GET /v1/distributions/d_1?wait=500ms",
		"GET /v1/distributions?batch_id=b_1&cursor=d_9&limit=7&product_key=p&state=failed",
		"GET /v1/batches/b_1/distributions?limit=3",
		"POST /v1/distributions/d_1/cancel",
		"POST /v1/distributions/d_1/retry",
		"GET /v1/batches/b_1",
		"POST /v1/batches/b_1/cancel",
		"POST /v1/batches/b_1/retry",
	}
	if strings.Join(urls, "\n") != strings.Join(want, "\n") {
		t.Fatalf("requests:\n%s\nwant:\n%s", strings.Join(urls, "\n"), strings.Join(want, "\n"))
	}
}

func TestErrors(t *testing.T) {
	t.Parallel()
	c := fake(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Request-Id", "req-1")
		switch r.URL.Path {
		case "/v1/distributions/d_dup":
			w.WriteHeader(http.StatusConflict)
			io.WriteString(w, `{"error":{"code":"duplicate_active","message":"still active","details":[{"existing_id":"d_old"}]}}`)
		case "/v1/distributions/d_bad":
			w.WriteHeader(http.StatusUnprocessableEntity)
			io.WriteString(w, `{"error":{"code":"validation_failed","message":"bad","details":[{"field":"product_key","message":"is required"}]}}`)
		case "/v1/distributions/d_limit":
			w.Header().Set("Retry-After", "3")
			w.WriteHeader(http.StatusTooManyRequests)
			io.WriteString(w, `{"error":{"code":"rate_limited","message":"slow down"}}`)
		default:
			w.WriteHeader(http.StatusBadGateway)
			io.WriteString(w, "<html>bad gateway</html>")
		}
	})
	ctx := t.Context()
	apiErr := func(err error) *client.Error {
		t.Helper()
		var e *client.Error
		if !errors.As(err, &e) {
			t.Fatalf("%v: not a *client.Error", err)
		}
		return e
	}
	_, err := c.Get(ctx, "d_dup")
	if e := apiErr(err); e.Status != 409 || e.Code != "duplicate_active" || e.ExistingID() != "d_old" || e.RequestID != "req-1" ||
		e.Error() != "duplicate_active (HTTP 409): still active [request req-1]" {
		t.Errorf("duplicate: %+v (%q)", e, e.Error())
	}
	_, err = c.Get(ctx, "d_bad")
	if fe := apiErr(err).FieldErrors(); len(fe) != 1 || fe[0] != (client.FieldError{Field: "product_key", Message: "is required"}) {
		t.Errorf("validation: %+v", fe)
	}
	_, err = c.Get(ctx, "d_limit")
	if e := apiErr(err); e.RetryAfter != 3*time.Second || e.Unavailable() {
		t.Errorf("rate limited: %+v", e)
	}
	_, err = c.Get(ctx, "d_proxy")
	if e := apiErr(err); e.Code != "http_502" || e.Message != "<html>bad gateway</html>" || !e.Unavailable() {
		t.Errorf("proxy: %+v", e)
	}
}

func TestRetries(t *testing.T) {
	t.Parallel()
	var calls atomic.Int32
	c := fake(t, func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) < 3 {
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(http.StatusTooManyRequests)
			io.WriteString(w, `{"error":{"code":"rate_limited","message":"slow down"}}`)
			return
		}
		io.WriteString(w, `{"id":"b_1","counts":{"queued":1},"done":false}`)
	}, client.WithRetries(2))
	b, err := c.GetBatch(t.Context(), "b_1")
	if err != nil || b.Counts[client.StateQueued] != 1 || calls.Load() != 3 {
		t.Fatalf("after two 429s: %+v %v, %d calls, want the batch after 3", b, err, calls.Load())
	}
	// Without retries the first 429 is the answer.
	calls.Store(0)
	none := fake(t, func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		w.WriteHeader(http.StatusTooManyRequests)
		io.WriteString(w, `{"error":{"code":"rate_limited","message":"slow down"}}`)
	})
	if _, err := none.GetBatch(t.Context(), "b_1"); err == nil || calls.Load() != 1 {
		t.Fatalf("no retries: %v after %d calls", err, calls.Load())
	}
}

func TestTransportErrorAndContext(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "http://" + ln.Addr().String()
	ln.Close()
	_, err = client.New(dead, "tok").Get(t.Context(), "d_1")
	var te *client.TransportError
	if !errors.As(err, &te) || te.URL != dead || !strings.HasPrefix(err.Error(), "cannot reach "+dead+": ") {
		t.Fatalf("dead server: %v, want a *client.TransportError", err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	c := fake(t, func(w http.ResponseWriter, r *http.Request) {
		cancel()
		<-r.Context().Done()
	})
	if _, err := c.Poll(ctx, "d_1", "", time.Minute); !errors.Is(err, context.Canceled) {
		t.Fatalf("canceled long poll: %v, want context.Canceled", err)
	}
}

func TestAllFollowsCursors(t *testing.T) {
	t.Parallel()
	pages := map[string]string{
		"":    `{"items":[{"id":"d_1"},{"id":"d_2"}],"next_cursor":"d_2"}`,
		"d_2": `{"items":[{"id":"d_3"}],"next_cursor":"d_3"}`,
		"d_3": `{"items":[]}`,
	}
	var calls atomic.Int32
	c := fake(t, func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		if r.URL.Query().Get("limit") != "2" || r.URL.Query().Get("state") != "failed" {
			t.Errorf("query %s", r.URL.RawQuery)
		}
		io.WriteString(w, pages[r.URL.Query().Get("cursor")])
	})
	var ids []string
	for d, err := range c.All(t.Context(), client.ListOptions{State: client.StateFailed, Limit: 2}) {
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, d.ID)
	}
	if strings.Join(ids, ",") != "d_1,d_2,d_3" || calls.Load() != 3 {
		t.Fatalf("ids %v after %d pages", ids, calls.Load())
	}
	calls.Store(0)
	for range c.All(t.Context(), client.ListOptions{State: client.StateFailed, Limit: 2}) {
		break
	}
	if calls.Load() != 1 {
		t.Fatalf("a break after the first item fetched %d pages, want 1", calls.Load())
	}
	broken := fake(t, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, `{"items":`) })
	n := 0
	for _, err := range broken.All(t.Context(), client.ListOptions{}) {
		n++
		if err == nil || !strings.Contains(err.Error(), "decode the API's answer (HTTP 200)") {
			t.Fatalf("truncated page: %v", err)
		}
	}
	if n != 1 {
		t.Fatalf("the error was yielded %d times, want once", n)
	}
}

func TestValidateAndFillFrom(t *testing.T) {
	t.Parallel()
	r := client.DistributionRequest{ProductKey: "a1x"}
	r.FillFrom(client.DistributionRequest{ProductKey: "other", SourceInstanceID: "iotx-a", TargetInstanceID: "iotx-a", Account: "acme"})
	if r != (client.DistributionRequest{ProductKey: "a1x", SourceInstanceID: "iotx-a", TargetInstanceID: "iotx-a", Account: "acme"}) {
		t.Fatalf("filled %+v", r)
	}
	err := r.Validate()
	var ve *client.ValidationError
	if !errors.As(err, &ve) || len(ve.Fields) != 1 || ve.Fields[0].Field != "target_instance_id" ||
		err.Error() != "invalid request: target_instance_id: must differ from source_instance_id" {
		t.Fatalf("same source and target: %v", err)
	}
	r.TargetInstanceID = "iot-cn-b"
	if err := r.Validate(); err != nil {
		t.Fatalf("valid request: %v", err)
	}
}

func TestStates(t *testing.T) {
	t.Parallel()
	for _, s := range client.States {
		if !s.Valid() {
			t.Errorf("%s not valid", s)
		}
	}
	terminal := map[client.State]bool{client.StateSucceeded: true, client.StateFailed: true, client.StateCanceled: true}
	for _, s := range client.States {
		if s.Terminal() != terminal[s] {
			t.Errorf("%s: Terminal() = %t", s, s.Terminal())
		}
	}
	if client.State("lost").Valid() {
		t.Error("unknown state is valid")
	}
	raw, _ := json.Marshal(map[client.State]int{client.StateQueued: 1})
	if string(raw) != `{"queued":1}` {
		t.Errorf("counts encode as %s", raw)
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// Teams import this package into their own modules: it must pull in
// nothing but the standard library (no Echo, nothing of distq's internals).
func TestImportsOnlyStandardLibrary(t *testing.T) {
	t.Parallel()
	out, err := exec.Command("go", "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", ".").Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	if deps := strings.Fields(string(out)); len(deps) != 1 || deps[0] != "github.com/distq/distq/client" {
		t.Fatalf("non-standard dependencies: %v", deps)
	}
}
