package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/distq/distq/internal/httpapi"
	"github.com/distq/distq/internal/redistest"
)

// A batch body of 8 MiB of tiny items (`{"items":[0,0,…]}`, about four
// million) is refused with a 413 after item 10,001, without decoding the
// rest: the memory the request allocates stays within a small multiple of
// the body. (Decoding it whole took 300–500 MB.) Not parallel, so that
// TotalAlloc counts this request alone.
func TestBatchOfMillionsOfTinyItemsIsRefusedInBoundedMemory(t *testing.T) {
	a := newAPI(t, apiOptions{})
	var body bytes.Buffer
	body.WriteString(`{"items":[`)
	for body.Len() < httpapi.MaxBatchBody-4 {
		body.WriteString("0,")
	}
	body.Truncate(body.Len() - 1)
	body.WriteString("]}")
	items := strings.Count(body.String(), "0")
	raw := body.Bytes()
	send := func() *httptest.ResponseRecorder {
		req := httptest.NewRequest(http.MethodPost, "/v1/batches", bytes.NewReader(raw))
		req.Header.Set("Authorization", "Bearer "+tokenA)
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		a.Echo.ServeHTTP(rec, req)
		return rec
	}
	send() // warm up: pools, the route, the limiter
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	start := time.Now()
	rec := send()
	took := time.Since(start)
	runtime.ReadMemStats(&after)
	if rec.Code != http.StatusRequestEntityTooLarge {
		t.Fatalf("status %d %s, want 413", rec.Code, rec.Body)
	}
	var eb struct{ Error struct{ Code string } }
	if err := json.Unmarshal(rec.Body.Bytes(), &eb); err != nil || eb.Error.Code != "too_many_items" {
		t.Fatalf("body %s, want code too_many_items", rec.Body)
	}
	alloc := after.TotalAlloc - before.TotalAlloc
	t.Logf("%d-byte body of %d items: 413 in %v, %.1f MiB allocated", len(raw), items, took, float64(alloc)/(1<<20))
	const bound = 64 << 20
	if alloc > bound {
		t.Fatalf("the request allocated %.1f MiB, want at most %d MiB", float64(alloc)/(1<<20), bound>>20)
	}
}

// JSON that encoding/json would take leniently is refused with a clear
// 4xx, on both create routes.
func TestLenientJSONIsRefused(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	a := newAPI(t, apiOptions{})
	const v = `"product_key":"a1X","source_instance_id":"iotx-a","target_instance_id":"iotx-b"`
	cases := []struct {
		name        string
		path, body  string
		contentType string
		header      map[string]string
		want        int
		code        string
	}{
		{name: "duplicate key", path: "/v1/distributions", body: `{` + v + `,"product_key":"a1Y"}`, want: 400, code: "malformed_json"},
		{name: "key in upper case", path: "/v1/distributions", body: `{"PRODUCT_KEY":"a1X","source_instance_id":"iotx-a","target_instance_id":"iotx-b"}`, want: 400, code: "unknown_field"},
		{name: "key in mixed case", path: "/v1/distributions", body: `{` + v + `,"Target_UID":"1"}`, want: 400, code: "unknown_field"},
		{name: "invalid UTF-8 in a free-text field", path: "/v1/distributions", body: "{" + v + ",\"target_aliyun_id\":\"ops\xff@example.com\"}", want: 422, code: "validation_failed"},
		{name: "charset utf-16", path: "/v1/distributions", body: `{` + v + `}`, contentType: "application/json; charset=utf-16", want: 415, code: "unsupported_media_type"},
		{name: "charset UTF-8 accepted", path: "/v1/distributions", body: `{` + v + `}`, contentType: "application/json; charset=UTF-8", want: 202},
		{name: "Content-Encoding gzip", path: "/v1/distributions", body: `{` + v + `}`, header: map[string]string{"Content-Encoding": "gzip"}, want: 415, code: "unsupported_media_type"},
		{name: "batch: duplicate items key", path: "/v1/batches", body: `{"items":[{` + v + `}],"items":[]}`, want: 400, code: "malformed_json"},
		{name: "batch: ITEMS", path: "/v1/batches", body: `{"ITEMS":[{` + v + `}]}`, want: 400, code: "unknown_field"},
		{name: "batch: top-level key in upper case", path: "/v1/batches", body: `{"Account":"main","items":[{` + v + `}]}`, want: 400, code: "unknown_field"},
		{name: "batch: Content-Encoding", path: "/v1/batches", body: `{"items":[{` + v + `}]}`, header: map[string]string{"Content-Encoding": "br"}, want: 415, code: "unsupported_media_type"},
		{name: "batch: trailing data", path: "/v1/batches", body: `{"items":[{` + v + `}]} {}`, want: 400, code: "malformed_json"},
		{name: "batch: items not an array", path: "/v1/batches", body: `{"items":{}}`, want: 400, code: "malformed_json"},
		{name: "batch: not an object", path: "/v1/batches", body: `[1]`, want: 400, code: "malformed_json"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			resp, err := a.do(ctx, request{method: http.MethodPost, path: c.path, token: tokenA, contentType: c.contentType, header: c.header, body: []byte(c.body)})
			if err != nil {
				t.Fatal(err)
			}
			if resp.status != c.want {
				t.Fatalf("status %d %s, want %d", resp.status, resp.body, c.want)
			}
			if c.code == "" {
				return
			}
			var eb struct {
				Error struct{ Code, Message string }
			}
			if err := json.Unmarshal(resp.body, &eb); err != nil || eb.Error.Code != c.code || eb.Error.Message == "" {
				t.Fatalf("body %s, want code %s with a message", resp.body, c.code)
			}
		})
	}
	// Items are checked one by one: a bad item is an item error, not a refusal.
	resp, err := a.do(ctx, request{method: http.MethodPost, path: "/v1/batches", token: tokenA,
		body: []byte(`{"source_instance_id":"iotx-a","target_instance_id":"iotx-b","items":[{"product_key":"a1Z"},{"PRODUCT_KEY":"a1W"},{"product_key":"a1V","product_key":"a1U"}]}`)})
	if err != nil {
		t.Fatal(err)
	}
	var created struct {
		Accepted, Rejected int
		Results            []struct {
			Error *struct{ Code string }
		}
	}
	if err := json.Unmarshal(resp.body, &created); err != nil || resp.status != 202 {
		t.Fatalf("status %d %s, want 202", resp.status, resp.body)
	}
	if created.Accepted != 1 || created.Rejected != 2 || created.Results[1].Error == nil || created.Results[1].Error.Code != "unknown_field" ||
		created.Results[2].Error == nil || created.Results[2].Error.Code != "malformed_json" {
		t.Fatalf("batch answer %s, want item 0 accepted, 1 unknown_field, 2 malformed_json", resp.body)
	}
}

// X-Request-Id from a client is kept only when it is a short safe token.
func TestRequestIDIsBoundedAndSafe(t *testing.T) {
	t.Parallel()
	a := newAPI(t, apiOptions{})
	for _, c := range []struct {
		sent string
		keep bool
	}{
		{"req-123.A_b", true},
		{strings.Repeat("r", 64), true},
		{strings.Repeat("r", 65), false},
		{strings.Repeat("x", 60<<10), false},
		{"a b", false},
		{`x" level=ERROR msg="forged`, false},
		{"ключ", false},
	} {
		resp, err := a.do(t.Context(), request{method: http.MethodGet, path: "/healthz", header: map[string]string{"X-Request-Id": c.sent}})
		if err != nil {
			t.Fatal(err)
		}
		got := resp.header.Get("X-Request-Id")
		switch {
		case c.keep && got != c.sent:
			t.Errorf("X-Request-Id %.20q answered %q, want it kept", c.sent, got)
		case !c.keep && (got == c.sent || got == "" || len(got) > 64 || strings.ContainsAny(got, " \"=")):
			t.Errorf("X-Request-Id %.20q answered %.80q, want a generated safe token", c.sent, got)
		}
	}
}

// API answers are neither cached nor sniffed; a 401 closes the connection.
func TestAnswersCarrySafetyHeaders(t *testing.T) {
	t.Parallel()
	a := newAPI(t, apiOptions{})
	for _, r := range []request{
		{method: http.MethodGet, path: "/v1/distributions", token: tokenA},
		{method: http.MethodGet, path: "/v1/distributions/nope", token: tokenA},
		{method: http.MethodGet, path: "/v1/distributions"},
	} {
		resp, err := a.do(t.Context(), r)
		if err != nil {
			t.Fatal(err)
		}
		if resp.header.Get("Cache-Control") != "no-store" || resp.header.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("%s %s: headers %v, want Cache-Control: no-store and X-Content-Type-Options: nosniff", r.method, r.path, resp.header)
		}
	}
	// A 401 closes the connection (Go's client strips the header: ask the
	// handler directly).
	rec := httptest.NewRecorder()
	a.Echo.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/v1/distributions", nil))
	if rec.Code != http.StatusUnauthorized || rec.Header().Get("Connection") != "close" {
		t.Errorf("unauthenticated: %d %v, want 401 with Connection: close", rec.Code, rec.Header())
	}
}

// Malformed query strings and repeated one-value parameters are refused
// with a 400 naming the parameter, not read as defaults.
func TestMalformedQueryIsRefused(t *testing.T) {
	t.Parallel()
	a := newAPI(t, apiOptions{})
	d := a.createDistribution(t.Context(), t, tokenA, "a1query")
	for _, c := range []struct{ path, param string }{
		{"/v1/distributions?cursor=%%%", "cursor"},
		{"/v1/distributions/" + d.ID + "?wait=%%%", "wait"},
		{"/v1/distributions?state=queued&state=failed", "state"},
		{"/v1/distributions?limit=1&limit=2", "limit"},
		{"/v1/distributions?%zz=1", "%zz"},
	} {
		resp, err := a.do(t.Context(), request{method: http.MethodGet, path: c.path, token: tokenA})
		if err != nil {
			t.Fatal(err)
		}
		var eb struct {
			Error struct{ Code, Message string }
		}
		_ = json.Unmarshal(resp.body, &eb)
		if resp.status != 400 || eb.Error.Code != "bad_parameter" || !strings.Contains(eb.Error.Message, c.param) {
			t.Errorf("%s: %d %s, want 400 bad_parameter naming %s", c.path, resp.status, resp.body, c.param)
		}
	}
}

// One team holds at most MaxLongPolls long polls; beyond, 429. Other
// teams are not affected.
func TestLongPollsAreCappedPerTeam(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	// No team rate limit to speak of: the holders retry at once while a
	// probe holds a slot, which is not what this test is about.
	a := newAPI(t, apiOptions{maxLongPolls: 2, teamRate: 1e6, teamBurst: 1e6})
	d := a.createDistribution(ctx, t, tokenA, "a1poll")
	other := a.createDistribution(ctx, t, tokenB, "a1pollb")
	held := make(chan error, 2)
	for range 2 {
		go func() {
			for { // a probe below may hold the slot a moment: try again
				resp, err := a.do(ctx, request{method: http.MethodGet, path: "/v1/distributions/" + d.ID + "?wait=30s", token: tokenA})
				if err != nil || resp.status != http.StatusTooManyRequests {
					held <- err
					return
				}
			}
		}()
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := a.do(ctx, request{method: http.MethodGet, path: "/v1/distributions/" + d.ID + "?wait=50ms", token: tokenA})
		if err != nil {
			t.Fatal(err)
		}
		if resp.status == http.StatusTooManyRequests {
			if !strings.Contains(string(resp.body), "too_many_long_polls") || resp.header.Get("Retry-After") == "" {
				t.Fatalf("429 %s %v, want too_many_long_polls with Retry-After", resp.body, resp.header)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("a third long poll of one team was never refused")
		}
	}
	resp, err := a.do(ctx, request{method: http.MethodGet, path: "/v1/distributions/" + other.ID + "?wait=50ms", token: tokenB})
	if err != nil || resp.status != http.StatusOK {
		t.Fatalf("other team's long poll: %v %v, want 200", resp, err)
	}
	// Without wait, the team is not limited.
	resp, err = a.do(ctx, request{method: http.MethodGet, path: "/v1/distributions/" + d.ID, token: tokenA})
	if err != nil || resp.status != http.StatusOK {
		t.Fatalf("plain GET while the polls are held: %v %v, want 200", resp, err)
	}
	cancel()
	for range 2 {
		<-held
	}
}

// A hung Redis (a proxy that stops forwarding) answers a prompt 503
// within the request timeout, not after the client's own timeout.
func TestHungRedisAnswersPrompt503(t *testing.T) {
	t.Parallel()
	db := redistest.New(t)
	proxy := redistest.NewProxy(t, db.Addr)
	opts := &redis.Options{Addr: proxy.Addr(), DB: db.Number, MaxRetries: 1, ContextTimeoutEnabled: true}
	a := newAPI(t, apiOptions{redis: opts, requestTimeout: 500 * time.Millisecond})
	d := a.createDistribution(t.Context(), t, tokenA, "a1hung")
	proxy.Stall()
	defer proxy.Resume()
	for _, r := range []request{
		{method: http.MethodGet, path: "/v1/distributions/" + d.ID, token: tokenA},
		{method: http.MethodGet, path: "/v1/distributions", token: tokenA},
		{method: http.MethodPost, path: "/v1/distributions", token: tokenA, body: mustJSON(t, dreq("a1hung2"))},
	} {
		start := time.Now()
		resp, err := a.do(t.Context(), r)
		took := time.Since(start)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%s %s on a hung Redis: %d in %v", r.method, r.path, resp.status, took.Round(time.Millisecond))
		if resp.status != http.StatusServiceUnavailable || took > 2*time.Second {
			t.Errorf("%s %s on a hung Redis: %d after %v, want 503 within 2 s", r.method, r.path, resp.status, took)
		}
	}
}

// The Bearer scheme is case-insensitive; two Authorization headers are
// refused; failed authentications are limited per client address.
func TestAuthenticationIsStrictAndThrottled(t *testing.T) {
	t.Parallel()
	a := newAPI(t, apiOptions{})
	send := func(addr string, auth ...string) int {
		req := httptest.NewRequest(http.MethodGet, "/v1/distributions", nil)
		req.RemoteAddr = addr
		for _, h := range auth {
			req.Header.Add("Authorization", h)
		}
		rec := httptest.NewRecorder()
		a.Echo.ServeHTTP(rec, req)
		return rec.Code
	}
	for _, h := range []string{"Bearer " + tokenA, "bearer " + tokenA, "BEARER " + tokenA, "Bearer  " + tokenA} {
		if got := send("192.0.2.1:1000", h); got != 200 {
			t.Errorf("Authorization %q: %d, want 200", strings.Replace(h, tokenA, "<token>", 1), got)
		}
	}
	if got := send("192.0.2.1:1000", "Bearer "+tokenA, "Bearer "+tokenB); got != 400 {
		t.Errorf("two Authorization headers: %d, want 400", got)
	}
	if got := send("192.0.2.1:1000", "Basic "+tokenA); got != 401 {
		t.Errorf("Basic scheme: %d, want 401", got)
	}
	// A guesser: a burst of failures is answered 401, then 429.
	codes := map[int]int{}
	for i := range 100 {
		codes[send("192.0.2.7:4000", fmt.Sprintf("Bearer guess-%04d-xxxxxxxx", i))]++
	}
	t.Logf("100 wrong tokens from one address: %v", codes)
	if codes[401] == 0 || codes[401] > 25 || codes[429] < 75 {
		t.Fatalf("100 wrong tokens from one address answered %v, want at most 25 401s then 429s", codes)
	}
	// The guesser's address is refused even with a valid token (no oracle);
	// other addresses are not affected.
	if got := send("192.0.2.7:4001", "Bearer "+tokenA); got != 429 {
		t.Errorf("valid token from the throttled address: %d, want 429", got)
	}
	if got := send("192.0.2.8:4000", "Bearer wrong-token-xxxx"); got != 401 {
		t.Errorf("wrong token from another address: %d, want 401", got)
	}
	if got := send("192.0.2.8:4000", "Bearer "+tokenA); got != 200 {
		t.Errorf("valid token from another address: %d, want 200", got)
	}
}

// A known path with a wrong method answers 405 with Allow.
func TestWrongMethodAnswers405WithAllow(t *testing.T) {
	t.Parallel()
	a := newAPI(t, apiOptions{})
	for _, c := range []struct{ method, path, allow string }{
		{http.MethodPut, "/v1/distributions", "GET"},
		{http.MethodDelete, "/v1/distributions/d_x", "GET"},
		{http.MethodGet, "/v1/batches/b_x/cancel", "POST"},
	} {
		req := httptest.NewRequest(c.method, c.path, nil)
		req.Header.Set("Authorization", "Bearer "+tokenA)
		rec := httptest.NewRecorder()
		a.Echo.ServeHTTP(rec, req)
		if rec.Code != 405 || !strings.Contains(rec.Header().Get("Allow"), c.allow) || !strings.Contains(rec.Body.String(), "method_not_allowed") {
			t.Errorf("%s %s: %d Allow %q %s, want 405 allowing %s", c.method, c.path, rec.Code, rec.Header().Get("Allow"), rec.Body, c.allow)
		}
	}
}

// Headers past MaxHeaderBytes answer a JSON 431, not net/http's text.
func TestOversizedHeadersAnswerJSON431(t *testing.T) {
	t.Parallel()
	a := newAPI(t, apiOptions{})
	resp, err := a.do(t.Context(), request{method: http.MethodGet, path: "/v1/distributions", token: tokenA,
		header: map[string]string{"X-Padding": strings.Repeat("p", httpapi.MaxHeaderBytes)}})
	if err != nil {
		t.Fatal(err)
	}
	var eb struct{ Error struct{ Code string } }
	if resp.status != http.StatusRequestHeaderFieldsTooLarge || json.Unmarshal(resp.body, &eb) != nil || eb.Error.Code != "headers_too_large" {
		t.Fatalf("%d %s %s, want a JSON 431 headers_too_large", resp.status, resp.header.Get("Content-Type"), resp.body)
	}
}

// A body that stops arriving is cut at the body timeout, not held for a
// minute; a request whose body arrived in time is not disturbed by it,
// even when answering takes longer than the timeout (a long poll has no
// body, a create reads its body first).
func TestSlowBodyIsCut(t *testing.T) {
	t.Parallel()
	a := newAPI(t, apiOptions{bodyTimeout: 300 * time.Millisecond})
	pr, pw := io.Pipe()
	defer pw.Close()
	go pw.Write([]byte(`{"product_key":"a1slow",`)) // and then nothing
	start := time.Now()
	resp, err := a.do(t.Context(), request{method: http.MethodPost, path: "/v1/distributions", token: tokenA, stream: pr})
	took := time.Since(start)
	t.Logf("stalled body: %d %s after %v", resp.status, resp.body, took.Round(time.Millisecond))
	if err == nil && resp.status != http.StatusRequestTimeout || took > 3*time.Second {
		t.Fatalf("stalled body: %v %v after %v, want refused within 3 s", resp, err, took)
	}
	// A body that arrived in time: the deadline is lifted, so a handler
	// that answers later than the body timeout (here: waiting 1 s for the
	// first request with its Idempotency-Key) is not cut off.
	body := mustJSON(t, dreq("a1fast"))
	if _, err := a.Store.ClaimIdempotency(t.Context(), teamA, "slow-key", bodyHash("POST /v1/distributions", body)); err != nil {
		t.Fatal(err)
	}
	time.AfterFunc(time.Second, func() {
		a.Store.CompleteIdempotency(context.Background(), teamA, "slow-key", bodyHash("POST /v1/distributions", body), 202, []byte(`{"id":"d_replayed"}`))
	})
	start = time.Now()
	resp, err = a.do(t.Context(), request{method: http.MethodPost, path: "/v1/distributions", token: tokenA, body: body, header: map[string]string{"Idempotency-Key": "slow-key"}})
	if err != nil || resp.status != 200 || !strings.Contains(string(resp.body), "d_replayed") {
		t.Fatalf("create answered after the body timeout: %v %v after %v, want the replayed 200", resp, err, time.Since(start))
	}
	// A long poll (no body) outlives the body timeout.
	d := a.createDistribution(t.Context(), t, tokenA, "a1fast2")
	start = time.Now()
	resp, err = a.do(t.Context(), request{method: http.MethodGet, path: "/v1/distributions/" + d.ID + "?wait=1s", token: tokenA})
	if err != nil || resp.status != 200 || time.Since(start) < 900*time.Millisecond {
		t.Fatalf("long poll: %v %v after %v, want 200 after its 1 s wait", resp, err, time.Since(start))
	}
}
