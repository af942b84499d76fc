package httpapi_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/distq/distq/client"
)

// listPage decodes a list answer, failing t unless it is want.
func (a *testAPI) listPage(t *testing.T, token, path string, want int) (ids []string, next string, body []byte) {
	t.Helper()
	resp, err := a.do(t.Context(), request{method: http.MethodGet, path: path, token: token})
	if err != nil {
		t.Fatal(err)
	}
	if resp.status != want {
		t.Fatalf("GET %s: %d %s, want %d", path, resp.status, resp.body, want)
	}
	if want != http.StatusOK {
		return nil, "", resp.body
	}
	var p struct {
		Items []struct {
			ID string `json:"id"`
		} `json:"items"`
		NextCursor *string `json:"next_cursor"`
	}
	if err := json.Unmarshal(resp.body, &p); err != nil {
		t.Fatal(err)
	}
	for _, x := range p.Items {
		ids = append(ids, x.ID)
	}
	if p.NextCursor != nil {
		if *p.NextCursor == "" {
			t.Fatalf("GET %s: next_cursor present but empty: %s", path, resp.body)
		}
		next = *p.NextCursor
	}
	return ids, next, resp.body
}

// A cursor is good only for the listing that gave it: a cursor of another
// filter, another team, a plain id (known or not) or an edited cursor is
// 400 bad_cursor, never a page from the start.
func TestCursorIsBoundToItsListing(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	a := newAPI(t, apiOptions{})
	c := client.New(a.URL, tokenA)
	req := func(pks ...string) client.BatchRequest {
		r := client.BatchRequest{SourceInstanceID: "iotx-oxssharez200", TargetInstanceID: "iot-cn-6ja1a2b3c4d"}
		for _, pk := range pks {
			r.Items = append(r.Items, client.BatchItem{ProductKey: pk})
		}
		return r
	}
	b1, _, err := c.SubmitBatch(ctx, req("a1cur1", "a1cur2", "a1cur3"), "")
	if err != nil {
		t.Fatal(err)
	}
	b2, _, err := c.SubmitBatch(ctx, req("a1cur4", "a1cur5", "a1cur6"), "")
	if err != nil {
		t.Fatal(err)
	}
	outside := b2.Results[0].ID

	// The cursor the API gives works for its own listing, by either route.
	ids, next, _ := a.listPage(t, tokenA, "/v1/distributions?limit=1&batch_id="+b1.Batch.ID, 200)
	if len(ids) != 1 || next == "" {
		t.Fatalf("first page %v next %q", ids, next)
	}
	ids2, _, _ := a.listPage(t, tokenA, "/v1/distributions?limit=1&batch_id="+b1.Batch.ID+"&cursor="+url.QueryEscape(next), 200)
	ids3, _, _ := a.listPage(t, tokenA, "/v1/batches/"+b1.Batch.ID+"/distributions?limit=1&cursor="+url.QueryEscape(next), 200)
	if len(ids2) != 1 || ids2[0] != b1.Results[1].ID || len(ids3) != 1 || ids3[0] != b1.Results[1].ID {
		t.Fatalf("second page %v / %v, want [%s]", ids2, ids3, b1.Results[1].ID)
	}

	for name, path := range map[string]string{
		"an id outside the batch":             "/v1/distributions?batch_id=" + b1.Batch.ID + "&cursor=" + outside,
		"an id inside the batch":              "/v1/distributions?batch_id=" + b1.Batch.ID + "&cursor=" + b1.Results[0].ID,
		"an unknown id of the right shape":    "/v1/distributions?cursor=d_01a2199a12d5_3ca3c69047",
		"the cursor under another batch":      "/v1/distributions?limit=1&batch_id=" + b2.Batch.ID + "&cursor=" + url.QueryEscape(next),
		"the cursor without its batch":        "/v1/distributions?limit=1&cursor=" + url.QueryEscape(next),
		"the cursor with another state":       "/v1/distributions?limit=1&state=failed&batch_id=" + b1.Batch.ID + "&cursor=" + url.QueryEscape(next),
		"the cursor with a product filter":    "/v1/distributions?limit=1&product_key=a1cur1&batch_id=" + b1.Batch.ID + "&cursor=" + url.QueryEscape(next),
		"the cursor edited":                   "/v1/distributions?limit=1&batch_id=" + b1.Batch.ID + "&cursor=" + url.QueryEscape(next[:len(next)-2]+"AA"),
		"the cursor on the other batch route": "/v1/batches/" + b2.Batch.ID + "/distributions?cursor=" + url.QueryEscape(next),
	} {
		_, _, body := a.listPage(t, tokenA, path, http.StatusBadRequest)
		var e struct {
			Error struct{ Code string } `json:"error"`
		}
		if err := json.Unmarshal(body, &e); err != nil || e.Error.Code != "bad_cursor" {
			t.Errorf("%s: %s, want bad_cursor", name, body)
		}
	}
	// Another team cannot use team A's cursor on its own listing.
	_, _, body := a.listPage(t, tokenB, "/v1/distributions?limit=1&cursor="+url.QueryEscape(next), http.StatusBadRequest)
	if !json.Valid(body) {
		t.Fatalf("team B: %s", body)
	}
}

// next_cursor is absent on the last page, an exactly full one included, and
// present on every page before it.
func TestNoCursorOnAnExactlyFullLastPage(t *testing.T) {
	t.Parallel()
	a := newAPI(t, apiOptions{})
	for i := range 4 {
		a.createDistribution(t.Context(), t, tokenA, "a1full"+string(rune('a'+i)))
	}
	ids, next, _ := a.listPage(t, tokenA, "/v1/distributions?limit=4", 200)
	if len(ids) != 4 || next != "" {
		t.Fatalf("limit=4 of 4: %d items, next_cursor %q; want 4 and none", len(ids), next)
	}
	ids, next, _ = a.listPage(t, tokenA, "/v1/distributions?limit=2", 200)
	if len(ids) != 2 || next == "" {
		t.Fatalf("limit=2 of 4, first page: %d items, next_cursor %q", len(ids), next)
	}
	ids, next, _ = a.listPage(t, tokenA, "/v1/distributions?limit=2&cursor="+url.QueryEscape(next), 200)
	if len(ids) != 2 || next != "" {
		t.Fatalf("limit=2 of 4, last page: %d items, next_cursor %q; want 2 and none", len(ids), next)
	}
	// Filters apply to the look-ahead too: one more record that does not
	// match the filter does not make a cursor.
	a.fail(t.Context(), t, ids[1])
	a.createDistribution(t.Context(), t, tokenA, "a1fullz")
	ids, next, _ = a.listPage(t, tokenA, "/v1/distributions?limit=1&state=failed", 200)
	if len(ids) != 1 || next != "" {
		t.Fatalf("state=failed limit=1 with one failed: %d items, next_cursor %q", len(ids), next)
	}
}

// /healthz and /readyz answer HEAD as they answer GET, without a body.
func TestHealthAnswersHEAD(t *testing.T) {
	t.Parallel()
	a := newAPI(t, apiOptions{})
	for _, path := range []string{"/healthz", "/readyz"} {
		resp, err := a.do(t.Context(), request{method: http.MethodHead, path: path})
		if err != nil {
			t.Fatal(err)
		}
		if resp.status != http.StatusOK || len(resp.body) != 0 {
			t.Errorf("HEAD %s: %d %q, want 200 without a body", path, resp.status, resp.body)
		}
	}
}

// A 429's message names the same wait as its Retry-After header, in whole
// seconds rounded up.
func TestRateLimitMessageAgreesWithRetryAfter(t *testing.T) {
	t.Parallel()
	for _, rps := range []float64{1, 0.25} {
		a := newAPI(t, apiOptions{teamRate: rps, teamBurst: 1})
		var resp *response
		for range 3 {
			r, err := a.do(t.Context(), request{method: http.MethodGet, path: "/v1/distributions", token: tokenA})
			if err != nil {
				t.Fatal(err)
			}
			if r.status == http.StatusTooManyRequests {
				resp = r
				break
			}
		}
		if resp == nil {
			t.Fatalf("rps %v: no 429 in 3 requests at burst 1", rps)
		}
		var e struct {
			Error struct{ Message string } `json:"error"`
		}
		if err := json.Unmarshal(resp.body, &e); err != nil {
			t.Fatal(err)
		}
		after := resp.header.Get("Retry-After")
		if after == "" || after == "0" || !strings.Contains(e.Error.Message, "retry after "+after+"s") {
			t.Errorf("rps %v: Retry-After %q, message %q: want them to agree on a wait of at least 1 s", rps, after, e.Error.Message)
		}
	}
}

// An Idempotency-Key header sent empty is 400 bad_idempotency_key on both
// POSTs, and creates nothing.
func TestEmptyIdempotencyKeyIsRefused(t *testing.T) {
	t.Parallel()
	a := newAPI(t, apiOptions{})
	bodies := map[string][]byte{
		"/v1/distributions": mustJSON(t, dreq("a1emptykey")),
		"/v1/batches":       []byte(`{"source_instance_id":"iotx-oxssharez200","target_instance_id":"iot-cn-6ja1a2b3c4d","items":[{"product_key":"a1emptykey2"}]}`),
	}
	for path, body := range bodies {
		resp, err := a.do(t.Context(), request{method: http.MethodPost, path: path, token: tokenA, body: body, header: map[string]string{"Idempotency-Key": ""}})
		if err != nil {
			t.Fatal(err)
		}
		if resp.status != http.StatusBadRequest || !strings.Contains(string(resp.body), `"bad_idempotency_key"`) {
			t.Errorf("POST %s with an empty key: %d %s, want 400 bad_idempotency_key", path, resp.status, resp.body)
		}
	}
	ids, _, _ := a.listPage(t, tokenA, "/v1/distributions", 200)
	if len(ids) != 0 {
		t.Fatalf("created %v despite the refusals", ids)
	}
}

// The same JSON re-serialised — pretty-printed, keys reordered, a string
// escaped differently — with the same Idempotency-Key is a repeat (200,
// replayed, the same id), on both POSTs; a different value is still 422.
func TestIdempotencyComparesTheJSONValue(t *testing.T) {
	t.Parallel()
	a := newAPI(t, apiOptions{})
	cases := []struct {
		path, first, same, other string
	}{
		{
			path:  "/v1/distributions",
			first: `{"product_key":"a1canon","source_instance_id":"iotx-oxssharez200","target_instance_id":"iot-cn-6ja1a2b3c4d"}`,
			same: `{
  "target_instance_id": "iot-cn-6ja1a2b3c4d",
  "source_instance_id" : "iotx-oxssharez200",
  "product_key": "a1c\u0061non"
}`,
			other: `{"product_key":"a1canon2","source_instance_id":"iotx-oxssharez200","target_instance_id":"iot-cn-6ja1a2b3c4d"}`,
		},
		{
			path:  "/v1/batches",
			first: `{"source_instance_id":"iotx-oxssharez200","target_instance_id":"iot-cn-6ja1a2b3c4d","items":[{"product_key":"a1canonB1"},{"product_key":"a1canonB2"}]}`,
			same:  "{\"items\": [ {\"product_key\": \"a1canonB1\"},\n {\"product_key\": \"a1canonB2\"} ],\n\t\"target_instance_id\": \"iot-cn-6ja1a2b3c4d\", \"source_instance_id\": \"iotx-oxssharez200\"}",
			// The items' order matters.
			other: `{"source_instance_id":"iotx-oxssharez200","target_instance_id":"iot-cn-6ja1a2b3c4d","items":[{"product_key":"a1canonB2"},{"product_key":"a1canonB1"}]}`,
		},
	}
	for _, tc := range cases {
		key := map[string]string{"Idempotency-Key": "canon-" + tc.path}
		first, err := a.do(t.Context(), request{method: http.MethodPost, path: tc.path, token: tokenA, body: []byte(tc.first), header: key})
		if err != nil {
			t.Fatal(err)
		}
		if first.status != http.StatusAccepted {
			t.Fatalf("POST %s: %d %s", tc.path, first.status, first.body)
		}
		again, err := a.do(t.Context(), request{method: http.MethodPost, path: tc.path, token: tokenA, body: []byte(tc.same), header: key})
		if err != nil {
			t.Fatal(err)
		}
		if again.status != http.StatusOK || again.header.Get("Idempotent-Replayed") != "true" || string(again.body) != string(first.body) {
			t.Errorf("POST %s re-serialised: %d %s, want 200 replaying %s", tc.path, again.status, again.body, first.body)
		}
		other, err := a.do(t.Context(), request{method: http.MethodPost, path: tc.path, token: tokenA, body: []byte(tc.other), header: key})
		if err != nil {
			t.Fatal(err)
		}
		if other.status != http.StatusUnprocessableEntity || !strings.Contains(string(other.body), "idempotency_key_reused") {
			t.Errorf("POST %s with another value: %d %s, want 422 idempotency_key_reused", tc.path, other.status, other.body)
		}
	}
}

// A body that is JSON but not an object — null above all, which
// encoding/json decodes as "nothing" — is 400 malformed_json on both POSTs,
// not a 422 listing the required fields.
func TestNonObjectBodiesAreMalformed(t *testing.T) {
	t.Parallel()
	a := newAPI(t, apiOptions{})
	for _, path := range []string{"/v1/distributions", "/v1/batches"} {
		for _, body := range []string{`null`, ` null `, `[]`, `"x"`, `1`, `true`} {
			resp, err := a.do(t.Context(), request{method: http.MethodPost, path: path, token: tokenA, body: []byte(body)})
			if err != nil {
				t.Fatal(err)
			}
			if resp.status != http.StatusBadRequest || !strings.Contains(string(resp.body), `"malformed_json"`) {
				t.Errorf("POST %s %s: %d %s, want 400 malformed_json", path, body, resp.status, resp.body)
			}
		}
	}
}

// A batch without items is 422 with one detail naming the items field, for
// [] and for null alike.
func TestEmptyBatchNamesItems(t *testing.T) {
	t.Parallel()
	a := newAPI(t, apiOptions{})
	for _, items := range []string{`[]`, `null`} {
		body := `{"source_instance_id":"iotx-oxssharez200","target_instance_id":"iot-cn-6ja1a2b3c4d","items":` + items + `}`
		resp, err := a.do(t.Context(), request{method: http.MethodPost, path: "/v1/batches", token: tokenA, body: []byte(body)})
		if err != nil {
			t.Fatal(err)
		}
		var e struct {
			Error struct {
				Code    string
				Details []struct{ Field, Message string }
			} `json:"error"`
		}
		if err := json.Unmarshal(resp.body, &e); err != nil {
			t.Fatal(err)
		}
		if resp.status != http.StatusUnprocessableEntity || e.Error.Code != "validation_failed" ||
			len(e.Error.Details) != 1 || e.Error.Details[0].Field != "items" || e.Error.Details[0].Message == "" {
			t.Errorf("items %s: %d %s, want 422 with one detail for items", items, resp.status, resp.body)
		}
	}
}

// A duplicate_active batch item carries the error a single submission
// gets, details included, and existing_id on the result too.
func TestDuplicateItemHasTheSingleSubmitsDetails(t *testing.T) {
	t.Parallel()
	a := newAPI(t, apiOptions{})
	held := a.createDistribution(t.Context(), t, tokenA, "a1dupshape")
	single, err := a.do(t.Context(), request{method: http.MethodPost, path: "/v1/distributions", token: tokenA, body: mustJSON(t, dreq("a1dupshape"))})
	if err != nil {
		t.Fatal(err)
	}
	batch, err := a.do(t.Context(), request{method: http.MethodPost, path: "/v1/batches", token: tokenA,
		body: []byte(`{"source_instance_id":"iotx-oxssharez200","target_instance_id":"iot-cn-6ja1a2b3c4d","items":[{"product_key":"a1dupshape"},{"product_key":"a1dupother"}]}`)})
	if err != nil {
		t.Fatal(err)
	}
	var s struct {
		Error json.RawMessage `json:"error"`
	}
	var b struct {
		Results []struct {
			ExistingID string          `json:"existing_id"`
			Error      json.RawMessage `json:"error"`
		} `json:"results"`
	}
	if err := json.Unmarshal(single.body, &s); err != nil || single.status != http.StatusConflict {
		t.Fatalf("single: %d %s", single.status, single.body)
	}
	if err := json.Unmarshal(batch.body, &b); err != nil || batch.status != http.StatusAccepted || len(b.Results) != 2 {
		t.Fatalf("batch: %d %s", batch.status, batch.body)
	}
	type shape struct {
		Code    string              `json:"code"`
		Details []map[string]string `json:"details"`
	}
	var se, be shape
	if err := json.Unmarshal(s.Error, &se); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b.Results[0].Error, &be); err != nil {
		t.Fatal(err)
	}
	if be.Code != "duplicate_active" || len(be.Details) != 1 || be.Details[0]["existing_id"] != held.ID ||
		len(se.Details) != 1 || se.Details[0]["existing_id"] != held.ID || b.Results[0].ExistingID != held.ID {
		t.Fatalf("single error %s; batch item %s existing_id %q: want both details [{existing_id: %s}] and the item's existing_id",
			s.Error, b.Results[0].Error, b.Results[0].ExistingID, held.ID)
	}
}
