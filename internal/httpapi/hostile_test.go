package httpapi_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/distq/distq/internal/httpapi"
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
