package httpapi_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/legacy"
	"github.com/google/go-cmp/cmp"
	"github.com/labstack/echo/v4"

	"github.com/distq/distq/internal/distribution"
	"github.com/distq/distq/internal/httpapi"
)

// loadSpec parses and validates the embedded OpenAPI document.
func loadSpec(ctx context.Context, t *testing.T) (*openapi3.T, routers.Router) {
	t.Helper()
	loader := openapi3.NewLoader()
	loader.Context = ctx
	doc, err := loader.LoadFromData(httpapi.OpenAPI())
	if err != nil {
		t.Fatalf("load openapi.yaml: %v", err)
	}
	if err := doc.Validate(ctx); err != nil {
		t.Fatalf("openapi.yaml is not a valid OpenAPI 3 document: %v", err)
	}
	router, err := legacy.NewRouter(doc)
	if err != nil {
		t.Fatalf("router of openapi.yaml: %v", err)
	}
	return doc, router
}

// echoPathRE matches an Echo path parameter (":id").
var echoPathRE = regexp.MustCompile(`:([A-Za-z_]+)`)

func TestOpenAPIDocumentsEveryRoute(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	doc, _ := loadSpec(ctx, t)
	a := newAPI(t, apiOptions{})

	routed := map[string]bool{}
	for _, r := range a.Echo.Routes() {
		if r.Method == echo.RouteNotFound { // the /v1 group's catch-all for its middleware
			continue
		}
		path := echoPathRE.ReplaceAllString(r.Path, "{$1}")
		routed[r.Method+" "+path] = true
		item := doc.Paths.Find(path)
		if item == nil || item.GetOperation(r.Method) == nil {
			t.Errorf("route %s %s is not in openapi.yaml", r.Method, path)
		}
	}
	for path, item := range doc.Paths.Map() {
		for method := range item.Operations() {
			if !routed[method+" "+path] {
				t.Errorf("openapi.yaml documents %s %s, which the api does not route", method, path)
			}
		}
	}
	if len(routed) < 14 {
		t.Errorf("only %d routes: %v", len(routed), routed)
	}
}

// exchange is one request of the contract scenario and the answer it must get.
type exchange struct {
	name string
	request
	want int
	// invalid says the document itself rejects the request (a missing token,
	// a value outside a documented pattern or range), so only its answer is
	// checked against the document.
	invalid bool
	// knownBug, when set, names a bug of the api that answers 500 here; the
	// exchange is skipped while the bug is there.
	knownBug string
	// check inspects the answer further.
	check func(t *testing.T, r *response)
}

// contract validates exchanges against the document and records which
// documented statuses were seen.
type contract struct {
	doc    *openapi3.T
	router routers.Router

	mu   sync.Mutex
	seen map[string]map[int]bool // "METHOD /path/{id}" -> status
}

func (c *contract) options() *openapi3filter.Options {
	return &openapi3filter.Options{
		IncludeResponseStatus: true,
		MultiError:            true,
		// The scheme is bearer: the document can check that a token is
		// sent, not that it is known.
		AuthenticationFunc: func(_ context.Context, in *openapi3filter.AuthenticationInput) error {
			token, ok := strings.CutPrefix(in.RequestValidationInput.Request.Header.Get("Authorization"), "Bearer ")
			if !ok || token == "" {
				return fmt.Errorf("no bearer token")
			}
			return nil
		},
	}
}

// validate checks that the request (unless x.invalid) and the response of x
// conform to the document, and records the status.
func (c *contract) validate(ctx context.Context, t *testing.T, a *testAPI, x exchange, resp *response) {
	t.Helper()
	req, err := x.request.httpRequest(ctx, a.URL)
	if err != nil {
		t.Fatal(err)
	}
	route, params, err := c.router.FindRoute(req)
	if err != nil {
		t.Fatalf("%s %s: not in the document: %v", x.method, x.path, err)
	}
	in := &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route, Options: c.options()}
	reqErr := openapi3filter.ValidateRequest(ctx, in)
	switch {
	case !x.invalid && reqErr != nil:
		t.Errorf("request does not conform to openapi.yaml: %v", reqErr)
	case x.invalid && reqErr == nil:
		t.Errorf("openapi.yaml accepts this request, which the test calls invalid")
	}
	out := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: in,
		Status:                 resp.status,
		Header:                 resp.header,
		Options:                c.options(),
	}
	out.SetBodyBytes(resp.body)
	if err := openapi3filter.ValidateResponse(ctx, out); err != nil {
		t.Errorf("response %d %s does not conform to openapi.yaml: %v", resp.status, trim(resp.body), err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	op := route.Method + " " + route.Path
	if c.seen[op] == nil {
		c.seen[op] = map[int]bool{}
	}
	c.seen[op][resp.status] = true
}

// run sends x as a subtest, checks its status and validates the exchange.
func (c *contract) run(t *testing.T, a *testAPI, x exchange) *response {
	t.Helper()
	var got *response
	t.Run(x.name, func(t *testing.T) {
		ctx := t.Context()
		resp, err := a.do(ctx, x.request)
		if err != nil {
			t.Fatal(err)
		}
		got = resp
		c.verify(ctx, t, a, x, resp)
	})
	return got
}

func (c *contract) verify(ctx context.Context, t *testing.T, a *testAPI, x exchange, resp *response) {
	t.Helper()
	if x.knownBug != "" && resp.status == http.StatusInternalServerError && x.want != http.StatusInternalServerError {
		t.Skipf("known bug (%s): got 500 %s, want %d", x.knownBug, trim(resp.body), x.want)
	}
	if resp.status != x.want {
		t.Fatalf("status %d %s, want %d", resp.status, trim(resp.body), x.want)
	}
	if resp.header.Get(echo.HeaderXRequestID) == "" {
		t.Errorf("no X-Request-Id header")
	}
	c.validate(ctx, t, a, x, resp)
	if x.check != nil {
		x.check(t, resp)
	}
}

// bodyHash is the hash the api keeps under an Idempotency-Key for a
// request to route ("POST /v1/batches") with body.
func bodyHash(route string, body []byte) string {
	sum := sha256.Sum256(append([]byte(route+"\n"), body...))
	return hex.EncodeToString(sum[:])
}

func trim(b []byte) string {
	if len(b) > 300 {
		return string(b[:300]) + "..."
	}
	return string(b)
}

func decode[T any](t *testing.T, raw []byte) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatalf("decode %s: %v", trim(raw), err)
	}
	return v
}

type errorBody struct {
	Error struct {
		Code    string            `json:"code"`
		Message string            `json:"message"`
		Details []json.RawMessage `json:"details"`
	} `json:"error"`
}

// wantCode checks the error code of an error answer.
func wantCode(code string) func(t *testing.T, r *response) {
	return func(t *testing.T, r *response) {
		t.Helper()
		if got := decode[errorBody](t, r.body).Error.Code; got != code {
			t.Errorf("error code %q, want %q", got, code)
		}
	}
}

type itemResult struct {
	Index      int    `json:"index"`
	ID         string `json:"id"`
	ExistingID string `json:"existing_id"`
	Error      *struct {
		Code string `json:"code"`
	} `json:"error"`
}

type batchView struct {
	ID     string                     `json:"id"`
	Size   int                        `json:"size"`
	Counts map[distribution.State]int `json:"counts"`
	Done   bool                       `json:"done"`
	ETA    *time.Time                 `json:"eta"`
}

type batchAction struct {
	BatchID  string   `json:"batch_id"`
	Changed  int      `json:"changed"`
	Skipped  int      `json:"skipped"`
	Affected []string `json:"affected"`
}

type batchCreated struct {
	Batch    batchView    `json:"batch"`
	Accepted int          `json:"accepted"`
	Rejected int          `json:"rejected"`
	Results  []itemResult `json:"results"`
}

type page struct {
	Items      []distribution.Distribution `json:"items"`
	NextCursor string                      `json:"next_cursor"`
}

// v1Routes is one request per /v1 route (ids of records that exist).
func v1Routes(t *testing.T, did, bid string) []request {
	return append([]request{
		{method: http.MethodPost, path: "/v1/distributions", body: mustJSON(t, dreq("a1Everywhere"))},
		{method: http.MethodGet, path: "/v1/distributions"},
		{method: http.MethodGet, path: "/v1/distributions/" + did},
		{method: http.MethodPost, path: "/v1/distributions/" + did + "/cancel"},
		{method: http.MethodPost, path: "/v1/distributions/" + did + "/retry"},
		{method: http.MethodPost, path: "/v1/batches", body: []byte(`{"source_instance_id":"iotx-a","target_instance_id":"iotx-b","items":[{"product_key":"a1Everywhere2"}]}`)},
		{method: http.MethodGet, path: "/v1/batches/" + bid},
		{method: http.MethodGet, path: "/v1/batches/" + bid + "/distributions"},
		{method: http.MethodPost, path: "/v1/batches/" + bid + "/cancel"},
		{method: http.MethodPost, path: "/v1/batches/" + bid + "/retry"},
		{method: http.MethodPost, path: "/v1/batches/" + bid + "/notify"},
	}, deviceRoutes(t)...)
}

// adminRouteList is one request per admin route, on the account "main" and
// team A.
func adminRouteList() []request {
	return []request{
		{method: http.MethodGet, path: "/v1/admin/accounts"},
		{method: http.MethodGet, path: "/v1/admin/accounts/main"},
		{method: http.MethodPut, path: "/v1/admin/accounts/main/limits", body: []byte(`{"create_qps":1}`)},
		{method: http.MethodPost, path: "/v1/admin/accounts/main/pause"},
		{method: http.MethodPost, path: "/v1/admin/accounts/main/resume"},
		{method: http.MethodPost, path: "/v1/admin/accounts/main/teams/" + teamA + "/pause"},
		{method: http.MethodPost, path: "/v1/admin/accounts/main/teams/" + teamA + "/resume"},
		{method: http.MethodGet, path: "/v1/admin/teams"},
		{method: http.MethodPut, path: "/v1/admin/teams/" + teamA + "/weight", body: []byte(`{"weight":3}`)},
		{method: http.MethodDelete, path: "/v1/admin/teams/" + teamA + "/weight"},
	}
}

// TestOpenAPIContract runs a scenario over every route against the api on
// real HTTP and Redis, and validates every request and answer with
// kin-openapi; then checks that every documented status was seen.
func TestOpenAPIContract(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	doc, router := loadSpec(ctx, t)
	c := &contract{doc: doc, router: router, seen: map[string]map[int]bool{}}
	a := newAPI(t, apiOptions{})
	A := func(r request) request { r.token = tokenA; return r }
	B := func(r request) request { r.token = tokenB; return r }
	post := func(path string, body []byte) request {
		return request{method: http.MethodPost, path: path, body: body}
	}
	get := func(path string) request { return request{method: http.MethodGet, path: path} }

	// An Idempotency-Key claimed by a request that never finishes: a batch
	// with that key waits for it (10 s) and answers 409. It runs meanwhile.
	// In canonical form (keys sorted, compact): what the api hashes.
	inFlightBody := []byte(`{"items":[{"product_key":"a1InFlight"}],"source_instance_id":"iotx-a","target_instance_id":"iotx-b"}`)
	inFlight := exchange{
		name:    "batch with an Idempotency-Key in flight",
		request: A(request{method: http.MethodPost, path: "/v1/batches", header: map[string]string{"Idempotency-Key": "in-flight"}, body: inFlightBody}),
		want:    http.StatusConflict, check: wantCode("idempotency_in_progress"),
	}
	// Claimed with the hash the api computes of this very request, so the
	// request sees its own earlier attempt still running.
	if _, err := a.Store.ClaimIdempotency(ctx, teamA, "in-flight", bodyHash("POST /v1/batches", inFlightBody)); err != nil {
		t.Fatal(err)
	}
	type result struct {
		resp *response
		err  error
	}
	inFlightDone := make(chan result, 1)
	go func() {
		resp, err := a.do(ctx, inFlight.request)
		inFlightDone <- result{resp, err}
	}()

	t.Run("operations", func(t *testing.T) {
		c.run(t, a, exchange{name: "healthz", request: get("/healthz"), want: 200})
		c.run(t, a, exchange{name: "readyz", request: get("/readyz"), want: 200})
		c.run(t, a, exchange{name: "healthz HEAD", request: request{method: http.MethodHead, path: "/healthz"}, want: 200})
		c.run(t, a, exchange{name: "readyz HEAD", request: request{method: http.MethodHead, path: "/readyz"}, want: 200})
		c.run(t, a, exchange{name: "metrics", request: get("/metrics"), want: 200})
		c.run(t, a, exchange{name: "openapi", request: get("/openapi.yaml"), want: 200, check: func(t *testing.T, r *response) {
			if !bytes.Equal(r.body, httpapi.OpenAPI()) {
				t.Errorf("/openapi.yaml is not the embedded document")
			}
		}})
	})

	var d1, d2 distribution.Distribution
	body1 := mustJSON(t, dreq("a1Contract1"))
	body2 := mustJSON(t, dreq("a1Contract2"))
	idem := map[string]string{"Idempotency-Key": "contract-key-1"}
	t.Run("create", func(t *testing.T) {
		r := c.run(t, a, exchange{name: "accepted", request: A(post("/v1/distributions", body1)), want: 202})
		d1 = decode[distribution.Distribution](t, r.body)
		if got, want := r.header.Get("Location"), "/v1/distributions/"+d1.ID; got != want {
			t.Errorf("Location %q, want %q", got, want)
		}
		if d1.State != distribution.StateQueued || d1.TargetUID != accountUID || d1.Team != teamA {
			t.Errorf("created %+v: want queued, target_uid %s, team %s", d1, accountUID, teamA)
		}
		withKey := A(post("/v1/distributions", body2))
		withKey.header = idem
		r = c.run(t, a, exchange{name: "with Idempotency-Key", request: withKey, want: 202})
		d2 = decode[distribution.Distribution](t, r.body)
		c.run(t, a, exchange{name: "replay", request: withKey, want: 200, check: func(t *testing.T, r *response) {
			if diff := cmp.Diff(d2, decode[distribution.Distribution](t, r.body)); diff != "" {
				t.Errorf("replay (-first +replay):\n%s", diff)
			}
			if r.header.Get("Idempotent-Replayed") != "true" {
				t.Errorf("no Idempotent-Replayed header")
			}
		}})
		other := A(post("/v1/distributions", mustJSON(t, dreq("a1Contract3"))))
		other.header = idem
		c.run(t, a, exchange{name: "key reused with another body", request: other, want: 422, check: wantCode("idempotency_key_reused")})
		c.run(t, a, exchange{name: "duplicate active", request: A(post("/v1/distributions", body1)), want: 409, check: func(t *testing.T, r *response) {
			wantCode("duplicate_active")(t, r)
			if got, want := r.header.Get("Location"), "/v1/distributions/"+d1.ID; got != want {
				t.Errorf("Location %q, want %q", got, want)
			}
		}})
		c.run(t, a, exchange{name: "malformed JSON", request: A(post("/v1/distributions", []byte(`{"product_key":`))), want: 400, invalid: true, check: wantCode("malformed_json")})
		c.run(t, a, exchange{name: "unknown field", request: A(post("/v1/distributions", []byte(`{"product_key":"a1X","source_instance_id":"iotx-a","target_instance_id":"iotx-b","devices":["d1"]}`))), want: 400, invalid: true, check: wantCode("unknown_field")})
		badKey := A(post("/v1/distributions", mustJSON(t, dreq("a1Contract4"))))
		badKey.header = map[string]string{"Idempotency-Key": strings.Repeat("k", 256)}
		c.run(t, a, exchange{name: "Idempotency-Key too long", request: badKey, want: 400, invalid: true, check: wantCode("bad_idempotency_key")})
		text := A(post("/v1/distributions", body1))
		text.contentType = "text/plain"
		c.run(t, a, exchange{name: "wrong media type", request: text, want: 415, invalid: true, check: wantCode("unsupported_media_type")})
		huge := dreq("a1Contract5")
		huge.TargetAliyunID = strings.Repeat("x", httpapi.MaxSingleBody)
		c.run(t, a, exchange{name: "body too large", request: A(post("/v1/distributions", mustJSON(t, huge))), want: 413, invalid: true, check: wantCode("too_large")})
		cross := dreq("a1Contract6")
		cross.TargetUID = "999999"
		c.run(t, a, exchange{name: "cross-account", request: A(post("/v1/distributions", mustJSON(t, cross))), want: 422, check: wantCode("validation_failed")})
		c.run(t, a, exchange{name: "missing fields", request: A(post("/v1/distributions", []byte(`{}`))), want: 422, invalid: true, check: wantCode("validation_failed")})
	})

	t.Run("get", func(t *testing.T) {
		c.run(t, a, exchange{name: "own", request: A(get("/v1/distributions/" + d1.ID)), want: 200, check: func(t *testing.T, r *response) {
			if diff := cmp.Diff(d1, decode[distribution.Distribution](t, r.body)); diff != "" {
				t.Errorf("get (-created +got):\n%s", diff)
			}
		}})
		c.run(t, a, exchange{name: "another team's", request: B(get("/v1/distributions/" + d1.ID)), want: 404, check: wantCode("not_found")})
		c.run(t, a, exchange{name: "unknown", request: A(get("/v1/distributions/d_000000000000_0000000000")), want: 404})
		c.run(t, a, exchange{name: "not an id", request: A(get("/v1/distributions/nope")), want: 404, invalid: true})
		c.run(t, a, exchange{name: "long poll, state already differs", request: A(get("/v1/distributions/" + d1.ID + "?wait=30s&state=running")), want: 200})
		c.run(t, a, exchange{name: "wait zero", request: A(get("/v1/distributions/" + d1.ID + "?wait=0")), want: 200})
		c.run(t, a, exchange{name: "bad wait", request: A(get("/v1/distributions/" + d1.ID + "?wait=soon")), want: 400, invalid: true, check: wantCode("bad_parameter")})
		c.run(t, a, exchange{name: "bad state", request: A(get("/v1/distributions/" + d1.ID + "?wait=1s&state=done")), want: 400, invalid: true, check: wantCode("bad_parameter")})
	})

	var b1 batchCreated
	t.Run("batch create", func(t *testing.T) {
		body := fmt.Appendf(nil, `{"source_instance_id":"iotx-src","target_instance_id":"iotx-dst","items":[
			{"product_key":"a1Batch1"},
			{"product_key":"a1Batch2","target_uid":"999"},
			{"product_key":"a1Contract1","source_instance_id":"iotx-oxssharez200","target_instance_id":"iot-cn-6ja1a2b3c4d"},
			{"product_key":"a1Batch3","target_aliyun_id":"ops@example.com"},
			{"product_key":"a1Batch4"}]}`)
		r := c.run(t, a, exchange{name: "mixed items", request: A(post("/v1/batches", body)), want: 202})
		b1 = decode[batchCreated](t, r.body)
		if got, want := r.header.Get("Location"), "/v1/batches/"+b1.Batch.ID; got != want {
			t.Errorf("Location %q, want %q", got, want)
		}
		if b1.Accepted != 3 || b1.Rejected != 2 || len(b1.Results) != 5 || b1.Batch.Size != 3 || b1.Batch.Done || b1.Batch.ETA == nil {
			t.Errorf("batch %+v: want 3 accepted, 2 rejected, 5 results, size 3, not done, an eta", b1)
		}
		if r := b1.Results[1]; r.ID != "" || r.Error == nil || r.Error.Code != "validation_failed" {
			t.Errorf("cross-account item: %+v", r)
		}
		if r := b1.Results[2]; r.ExistingID != d1.ID || r.Error == nil || r.Error.Code != "duplicate_active" {
			t.Errorf("duplicate item: %+v, want existing %s", r, d1.ID)
		}
		withKey := A(post("/v1/batches", []byte(`{"source_instance_id":"iotx-src","target_instance_id":"iotx-dst","items":[{"product_key":"a1Batch5"}]}`)))
		withKey.header = map[string]string{"Idempotency-Key": "batch-key"}
		first := c.run(t, a, exchange{name: "with Idempotency-Key", request: withKey, want: 202})
		c.run(t, a, exchange{name: "replay", request: withKey, want: 200, check: func(t *testing.T, r *response) {
			if !bytes.Equal(r.body, first.body) {
				t.Errorf("replay %s, want %s", trim(r.body), trim(first.body))
			}
		}})
		other := withKey
		other.body = []byte(`{"source_instance_id":"iotx-src","target_instance_id":"iotx-dst","items":[{"product_key":"a1Batch6"}]}`)
		c.run(t, a, exchange{name: "key reused", request: other, want: 422, check: wantCode("idempotency_key_reused")})
		c.run(t, a, exchange{name: "no item valid", request: A(post("/v1/batches", []byte(`{"items":[{"product_key":"a1X","source_instance_id":"iotx-a","target_instance_id":"iotx-a"}]}`))), want: 422, check: func(t *testing.T, r *response) {
			e := decode[errorBody](t, r.body)
			if e.Error.Code != "validation_failed" || len(e.Error.Details) != 1 {
				t.Errorf("error %+v: want validation_failed with one item result", e)
			}
		}})
		c.run(t, a, exchange{name: "no items", request: A(post("/v1/batches", []byte(`{"items":[]}`))), want: 422, invalid: true})
		c.run(t, a, exchange{name: "malformed", request: A(post("/v1/batches", []byte(`{"items":[}`))), want: 400, invalid: true})
		text := A(post("/v1/batches", []byte(`{"items":[{}]}`)))
		text.contentType = "application/x-www-form-urlencoded"
		c.run(t, a, exchange{name: "wrong media type", request: text, want: 415, invalid: true})
		many := []byte(`{"product_key":"a1Many","source_instance_id":"iotx-a","target_instance_id":"iotx-b","items":[{}` + strings.Repeat(`,{}`, httpapi.MaxBatchItems) + `]}`)
		c.run(t, a, exchange{name: "too many items", request: A(post("/v1/batches", many)), want: 413, invalid: true, check: wantCode("too_many_items")})
		// A dry run validates each item (a repeat within the batch too) and
		// estimates, writing nothing: the same items then submit for real.
		dry := []byte(`{"source_instance_id":"iotx-src","target_instance_id":"iotx-dst","items":[{"product_key":"a1Dry1"},{"product_key":"a1Dry1"},{"product_key":"bad key"},{"product_key":"a1Dry2"}]}`)
		c.run(t, a, exchange{name: "dry run", request: A(post("/v1/batches?dry_run=true", dry)), want: 200, invalid: true, check: func(t *testing.T, r *response) {
			d := decode[struct {
				DryRun             bool `json:"dry_run"`
				Accepted, Rejected int
				Results            []httpapi.ItemResult
				ETA                *time.Time
			}](t, r.body)
			if !d.DryRun || d.Accepted != 2 || d.Rejected != 2 || len(d.Results) != 4 || d.ETA == nil {
				t.Fatalf("dry run %+v: want 2 accepted, 2 rejected, 4 results, an eta", d)
			}
			if d.Results[0].Error != nil || d.Results[0].ID != "" || d.Results[1].Error == nil || d.Results[1].Error.Code != "duplicate_active" ||
				d.Results[2].Error == nil || d.Results[2].Error.Code != "validation_failed" {
				t.Errorf("dry run results %+v", d.Results)
			}
		}})
		c.run(t, a, exchange{name: "dry run, no item valid", request: A(post("/v1/batches?dry_run=true", []byte(`{"items":[{"product_key":"bad key"}]}`))), want: 200, invalid: true})
		c.run(t, a, exchange{name: "dry run, bad value", request: A(post("/v1/batches?dry_run=yes", dry)), want: 400, invalid: true, check: wantCode("bad_parameter")})
		c.run(t, a, exchange{name: "nothing written by the dry run", request: A(get("/v1/distributions?product_key=a1Dry1")), want: 200, check: func(t *testing.T, r *response) {
			if p := decode[page](t, r.body); len(p.Items) != 0 {
				t.Errorf("after a dry run: %+v, want no distribution", p.Items)
			}
		}})
	})

	t.Run("list", func(t *testing.T) {
		r := c.run(t, a, exchange{name: "first page", request: A(get("/v1/distributions?limit=2")), want: 200})
		p := decode[page](t, r.body)
		if len(p.Items) != 2 || p.NextCursor == "" {
			t.Fatalf("page %+v: want 2 items and a cursor", p)
		}
		all := []string{p.Items[0].ID, p.Items[1].ID}
		for cursor := p.NextCursor; cursor != ""; {
			r := c.run(t, a, exchange{name: "next page", request: A(get("/v1/distributions?limit=2&cursor=" + cursor)), want: 200})
			p := decode[page](t, r.body)
			for _, d := range p.Items {
				all = append(all, d.ID)
			}
			cursor = p.NextCursor
		}
		if !slices.IsSorted(all) || len(all) != 6 || len(slices.Compact(slices.Clone(all))) != len(all) {
			t.Errorf("listed %v: want the 6 distributions of team A, in order", all)
		}
		c.run(t, a, exchange{name: "filters", request: A(get("/v1/distributions?state=queued&product_key=a1Batch1&batch_id=" + b1.Batch.ID + "&limit=1000")), want: 200, check: func(t *testing.T, r *response) {
			if p := decode[page](t, r.body); len(p.Items) != 1 || p.Items[0].ProductKey != "a1Batch1" {
				t.Errorf("filtered page %+v: want a1Batch1 alone", p)
			}
		}})
		c.run(t, a, exchange{name: "another team sees none", request: B(get("/v1/distributions")), want: 200, check: func(t *testing.T, r *response) {
			if p := decode[page](t, r.body); len(p.Items) != 0 {
				t.Errorf("team B sees %d distributions of team A", len(p.Items))
			}
		}})
		c.run(t, a, exchange{name: "bad limit", request: A(get("/v1/distributions?limit=0")), want: 400, invalid: true, check: wantCode("bad_parameter")})
		c.run(t, a, exchange{name: "bad cursor", request: A(get("/v1/distributions?cursor=abc")), want: 400, invalid: true, check: wantCode("bad_cursor")})
		c.run(t, a, exchange{name: "bad batch_id", request: A(get("/v1/distributions?batch_id=" + d1.ID)), want: 400, invalid: true})
	})

	t.Run("batch", func(t *testing.T) {
		c.run(t, a, exchange{name: "get", request: A(get("/v1/batches/" + b1.Batch.ID)), want: 200, check: func(t *testing.T, r *response) {
			v := decode[batchView](t, r.body)
			if v.Counts[distribution.StateQueued] != 3 || v.Size != 3 || v.Done || v.ETA == nil {
				t.Errorf("batch %+v: want 3 queued, not done, an eta", v)
			}
		}})
		c.run(t, a, exchange{name: "another team's", request: B(get("/v1/batches/" + b1.Batch.ID)), want: 404})
		c.run(t, a, exchange{name: "not an id", request: A(get("/v1/batches/" + d1.ID)), want: 404, invalid: true})
		c.run(t, a, exchange{name: "items", request: A(get("/v1/batches/" + b1.Batch.ID + "/distributions?state=queued&limit=10")), want: 200, check: func(t *testing.T, r *response) {
			if p := decode[page](t, r.body); len(p.Items) != 3 {
				t.Errorf("%d items, want 3", len(p.Items))
			}
		}})
		c.run(t, a, exchange{name: "items of another team's", request: B(get("/v1/batches/" + b1.Batch.ID + "/distributions")), want: 404})
		c.run(t, a, exchange{name: "items, bad limit", request: A(get("/v1/batches/" + b1.Batch.ID + "/distributions?limit=x")), want: 400, invalid: true})
	})

	t.Run("cancel", func(t *testing.T) {
		// A long poll on d2 wakes when d2 is canceled.
		type result struct {
			resp *response
			err  error
		}
		poll := exchange{name: "long poll wakes on cancel", request: A(get("/v1/distributions/" + d2.ID + "?wait=50s&state=queued")), want: 200}
		done := make(chan result, 1)
		go func() {
			resp, err := a.do(ctx, poll.request)
			done <- result{resp, err}
		}()
		c.run(t, a, exchange{name: "queued", request: A(post("/v1/distributions/"+d2.ID+"/cancel", nil)), want: 200, check: func(t *testing.T, r *response) {
			if d := decode[distribution.Distribution](t, r.body); d.State != distribution.StateCanceled || d.FinishedAt == nil {
				t.Errorf("canceled %+v", d)
			}
		}})
		res := <-done
		if res.err != nil {
			t.Fatal(res.err)
		}
		t.Run(poll.name, func(t *testing.T) {
			c.verify(t.Context(), t, a, poll, res.resp)
			if d := decode[distribution.Distribution](t, res.resp.body); d.State != distribution.StateCanceled {
				t.Errorf("long poll answered %s, want canceled", d.State)
			}
		})
		c.run(t, a, exchange{name: "not queued", request: A(post("/v1/distributions/"+d2.ID+"/cancel", nil)), want: 409, check: wantCode("invalid_state")})
		c.run(t, a, exchange{name: "another team's", request: B(post("/v1/distributions/"+d1.ID+"/cancel", nil)), want: 404})
		c.run(t, a, exchange{name: "batch", request: A(post("/v1/batches/"+b1.Batch.ID+"/cancel", nil)), want: 200, check: func(t *testing.T, r *response) {
			if res := decode[batchAction](t, r.body); res.Changed != 3 || len(res.Affected) != 3 || res.BatchID != b1.Batch.ID {
				t.Errorf("batch cancel %+v: want 3 changed", res)
			}
		}})
		c.run(t, a, exchange{name: "batch again", request: A(post("/v1/batches/"+b1.Batch.ID+"/cancel", nil)), want: 409, check: wantCode("invalid_state")})
		c.run(t, a, exchange{name: "another team's batch", request: B(post("/v1/batches/"+b1.Batch.ID+"/cancel", nil)), want: 404})
	})

	t.Run("retry", func(t *testing.T) {
		d3 := a.createDistribution(ctx, t, tokenA, "a1Retry1")
		a.fail(ctx, t, d3.ID)
		c.run(t, a, exchange{name: "failed", request: A(post("/v1/distributions/"+d3.ID+"/retry", nil)), want: 202, check: func(t *testing.T, r *response) {
			// The attempt that failed stays counted and in the history.
			d := decode[distribution.Distribution](t, r.body)
			if d.State != distribution.StateQueued || d.Error != nil || d.Attempts != 1 || len(d.History) != 1 ||
				d.History[0].Outcome != distribution.OutcomeFailed || d.History[0].Error == nil || d.History[0].Error.RequestID != "E2A1B3C4" {
				t.Errorf("retried %+v: want queued, no error, 1 attempt whose error stays in the history", d)
			}
		}})
		c.run(t, a, exchange{name: "not failed", request: A(post("/v1/distributions/"+d2.ID+"/retry", nil)), want: 409, check: wantCode("invalid_state")})
		d4 := a.createDistribution(ctx, t, tokenA, "a1Retry2")
		a.fail(ctx, t, d4.ID)
		d5 := a.createDistribution(ctx, t, tokenA, "a1Retry2")
		c.run(t, a, exchange{name: "failed, but another is active", request: A(post("/v1/distributions/"+d4.ID+"/retry", nil)), want: 409, check: func(t *testing.T, r *response) {
			wantCode("duplicate_active")(t, r)
			if !bytes.Contains(r.body, []byte(d5.ID)) {
				t.Errorf("answer does not name %s: %s", d5.ID, r.body)
			}
		}})
		c.run(t, a, exchange{name: "another team's", request: B(post("/v1/distributions/"+d3.ID+"/retry", nil)), want: 404})

		r := c.run(t, a, exchange{name: "new batch", request: A(post("/v1/batches", []byte(`{"source_instance_id":"iotx-src","target_instance_id":"iotx-dst2","items":[{"product_key":"a1R1"},{"product_key":"a1R2"}]}`))), want: 202})
		b2 := decode[batchCreated](t, r.body)
		c.run(t, a, exchange{name: "batch without failed items", request: A(post("/v1/batches/"+b2.Batch.ID+"/retry", nil)), want: 409, check: wantCode("invalid_state")})
		a.fail(ctx, t, b2.Results[0].ID)
		c.run(t, a, exchange{name: "batch", request: A(post("/v1/batches/"+b2.Batch.ID+"/retry", nil)), want: 200, check: func(t *testing.T, r *response) {
			if !bytes.Contains(r.body, []byte(b2.Results[0].ID)) {
				t.Errorf("batch retry %s does not name %s", r.body, b2.Results[0].ID)
			}
		}})
		c.run(t, a, exchange{name: "another team's batch", request: B(post("/v1/batches/"+b2.Batch.ID+"/retry", nil)), want: 404})
		c.run(t, a, exchange{name: "unknown batch", request: A(post("/v1/batches/b_000000000000_0000000000/retry", nil)), want: 404})
	})

	t.Run("notify", func(t *testing.T) {
		hook := `"notify_url":"https://hooks.example.com/distq?batch=1"`
		c.run(t, a, exchange{name: "team without a webhook secret", request: B(post("/v1/batches", []byte(`{"source_instance_id":"iotx-src","target_instance_id":"iotx-dst3",`+hook+`,"items":[{"product_key":"a1N0"}]}`))), want: 422, check: wantCode("validation_failed")})
		c.run(t, a, exchange{name: "host not allowed", request: A(post("/v1/distributions", []byte(`{"product_key":"a1N0","source_instance_id":"iotx-src","target_instance_id":"iotx-dst3","notify_url":"https://evil.example.org/x"}`))), want: 422, check: wantCode("validation_failed")})
		c.run(t, a, exchange{name: "metadata address", request: A(post("/v1/distributions", []byte(`{"product_key":"a1N0","source_instance_id":"iotx-src","target_instance_id":"iotx-dst3","notify_url":"http://169.254.169.254/latest/meta-data"}`))), want: 422, check: wantCode("validation_failed")})
		r := c.run(t, a, exchange{name: "batch with notify_url", request: A(post("/v1/batches", []byte(`{"source_instance_id":"iotx-src","target_instance_id":"iotx-dst3",`+hook+`,"items":[{"product_key":"a1N1"},{"product_key":"a1N2"}]}`))), want: 202})
		b3 := decode[batchCreated](t, r.body)
		c.run(t, a, exchange{name: "notify before the batch is done", request: A(post("/v1/batches/"+b3.Batch.ID+"/notify", nil)), want: 409, check: wantCode("invalid_state")})
		c.run(t, a, exchange{name: "notify a batch without notify_url", request: A(post("/v1/batches/"+b1.Batch.ID+"/notify", nil)), want: 409, check: wantCode("invalid_state")})
		c.run(t, a, exchange{name: "notify another team's batch", request: B(post("/v1/batches/"+b3.Batch.ID+"/notify", nil)), want: 404})
		c.run(t, a, exchange{name: "batch long poll, bad wait", request: A(get("/v1/batches/" + b3.Batch.ID + "?wait=forever")), want: 400, invalid: true, check: wantCode("bad_parameter")})

		// A batch long poll with the ETag of its counts wakes when they change.
		first := c.run(t, a, exchange{name: "get with ETag", request: A(get("/v1/batches/" + b3.Batch.ID)), want: 200})
		etag := first.header.Get("ETag")
		if etag == "" {
			t.Fatal("no ETag")
		}
		poll := exchange{name: "batch long poll wakes on a change", request: A(get("/v1/batches/" + b3.Batch.ID + "?wait=50s")), want: 200}
		poll.header = map[string]string{"If-None-Match": etag}
		type result struct {
			resp *response
			err  error
		}
		done := make(chan result, 1)
		start := time.Now()
		go func() {
			resp, err := a.do(ctx, poll.request)
			done <- result{resp, err}
		}()
		c.run(t, a, exchange{name: "cancel the batch", request: A(post("/v1/batches/"+b3.Batch.ID+"/cancel", nil)), want: 200})
		res := <-done
		if res.err != nil {
			t.Fatal(res.err)
		}
		t.Run(poll.name, func(t *testing.T) {
			c.verify(t.Context(), t, a, poll, res.resp)
			if v := decode[batchView](t, res.resp.body); v.Counts[distribution.StateCanceled] == 0 || res.resp.header.Get("ETag") == etag {
				t.Errorf("long poll answered %+v (ETag %s), want a canceled item and a new ETag", v, res.resp.header.Get("ETag"))
			}
			if time.Since(start) > 40*time.Second {
				t.Errorf("long poll took %v: not woken by the change", time.Since(start))
			}
		})
		type withNotification struct {
			Done         bool `json:"done"`
			Notification *struct {
				EventID string `json:"event_id"`
				Type    string `json:"type"`
				State   string `json:"state"`
			} `json:"notification"`
		}
		var eventID string
		c.run(t, a, exchange{name: "done batch shows its event", request: A(get("/v1/batches/" + b3.Batch.ID)), want: 200, check: func(t *testing.T, r *response) {
			v := decode[withNotification](t, r.body)
			if !v.Done || v.Notification == nil || v.Notification.Type != "batch.finished" || v.Notification.State != "pending" || v.Notification.EventID == "" {
				t.Fatalf("batch %s: want done with a pending batch.finished notification", r.body)
			}
			eventID = v.Notification.EventID
		}})
		c.run(t, a, exchange{name: "notify again", request: A(post("/v1/batches/"+b3.Batch.ID+"/notify", nil)), want: 202, check: func(t *testing.T, r *response) {
			if v := decode[withNotification](t, r.body); v.Notification == nil || v.Notification.EventID != eventID {
				t.Errorf("re-send %s: want the same event %s", r.body, eventID)
			}
		}})
	})

	t.Run("device distributions", func(t *testing.T) { deviceScenario(ctx, t, c, a, A, B) })

	t.Run("admin", func(t *testing.T) {
		O := func(r request) request { r.token = tokenAdmin; return r }
		put := func(path, body string) request {
			return O(request{method: http.MethodPut, path: path, body: []byte(body)})
		}
		for _, r := range adminRouteList() {
			c.run(t, a, exchange{name: r.method + " " + r.path, request: O(r), want: 200})
			c.run(t, a, exchange{name: "team token " + r.method + " " + r.path, request: A(r), want: 403, check: wantCode("forbidden")})
		}
		for _, r := range adminRouteList()[1:7] {
			r.path = strings.Replace(r.path, "/accounts/main", "/accounts/nope", 1)
			c.run(t, a, exchange{name: "unknown account " + r.method + " " + r.path, request: O(r), want: 404, check: wantCode("not_found")})
		}
		for _, r := range adminRouteList()[5:] {
			if r.path != "/v1/admin/teams" {
				r.path = strings.Replace(r.path, "/"+teamA+"/", "/nobody/", 1)
				c.run(t, a, exchange{name: "unknown team " + r.method + " " + r.path, request: O(r), want: 404, check: wantCode("not_found")})
			}
		}
		const limits, weight = "/v1/admin/accounts/main/limits", "/v1/admin/teams/" + teamA + "/weight"
		c.run(t, a, exchange{name: "limits: both, one cleared", request: put(limits, `{"create_qps":null,"max_jobs":5}`), want: 200})
		for name, body := range map[string]string{
			"over 100": `{"max_jobs":101}`, "zero": `{"create_qps":0}`, "a fraction": `{"create_qps":1.5}`, "a string": `{"create_qps":"2"}`,
			"nothing": `{}`, "unknown limit": `{"query_qps":3}`,
		} {
			want := "bad_value"
			if name == "unknown limit" {
				want = "unknown_field"
			}
			c.run(t, a, exchange{name: "limits: " + name, request: put(limits, body), want: 400, invalid: true, check: wantCode(want)})
		}
		c.run(t, a, exchange{name: "weight: too heavy", request: put(weight, `{"weight":1001}`), want: 400, invalid: true, check: wantCode("bad_value")})
		c.run(t, a, exchange{name: "weight: none", request: put(weight, `{"weight":null}`), want: 400, invalid: true, check: wantCode("bad_value")})
		c.run(t, a, exchange{name: "weight: unknown team", request: put("/v1/admin/teams/nobody/weight", `{"weight":2}`), want: 404, check: wantCode("not_found")})
		for path, body := range map[string]string{limits: `{"max_jobs":2`, weight: `{"weight":2`} {
			text := put(path, body+"}")
			text.contentType = "text/plain"
			c.run(t, a, exchange{name: "wrong media type " + path, request: text, want: 415, invalid: true, check: wantCode("unsupported_media_type")})
			padded := put(path, body+strings.Repeat(" ", httpapi.MaxSingleBody)+"}")
			c.run(t, a, exchange{name: "body too large " + path, request: padded, want: 413, check: wantCode("too_large")})
		}
	})

	t.Run("unauthorized", func(t *testing.T) {
		// Another api for the admin routes: each allows an address 20
		// failed authentications in a burst.
		other := newAPI(t, apiOptions{redis: a.RedisOptions})
		for api, routes := range map[*testAPI][]request{a: v1Routes(t, d1.ID, b1.Batch.ID), other: adminRouteList()} {
			for _, r := range routes {
				c.run(t, api, exchange{name: "no token " + r.method + " " + r.path, request: r, want: 401, invalid: true, check: wantCode("unauthorized")})
				r.token = "not-a-token"
				c.run(t, api, exchange{name: "bad token " + r.method + " " + r.path, request: r, want: 401, check: wantCode("unauthorized")})
			}
		}
	})

	t.Run("rate limited", func(t *testing.T) {
		// The same Redis, with a team limit of one request and no refill to speak of.
		limited := newAPI(t, apiOptions{redis: a.RedisOptions, teamRate: 0.001, teamBurst: 1})
		c.run(t, limited, exchange{name: "first", request: A(get("/v1/distributions?limit=1")), want: 200})
		limitedCheck := func(t *testing.T, r *response) {
			wantCode("rate_limited")(t, r)
			if n, err := strconv.Atoi(r.header.Get("Retry-After")); err != nil || n < 1 {
				t.Errorf("Retry-After %q", r.header.Get("Retry-After"))
			}
		}
		for _, r := range v1Routes(t, d1.ID, b1.Batch.ID) {
			c.run(t, limited, exchange{name: r.method + " " + r.path, request: A(r), want: 429, check: limitedCheck})
		}
		// An operator has a budget of its own, apart from the teams'.
		c.run(t, limited, exchange{name: "first of the operator", request: request{method: http.MethodGet, path: "/v1/admin/teams", token: tokenAdmin}, want: 200})
		for _, r := range adminRouteList() {
			r.token = tokenAdmin
			c.run(t, limited, exchange{name: r.method + " " + r.path, request: r, want: 429, check: limitedCheck})
		}
	})

	t.Run("redis down", func(t *testing.T) {
		down := newAPI(t, apiOptions{redis: a.RedisOptions, down: true})
		c.run(t, down, exchange{name: "readyz", request: get("/readyz"), want: 503})
		c.run(t, down, exchange{name: "readyz HEAD", request: request{method: http.MethodHead, path: "/readyz"}, want: 503})
		for _, r := range v1Routes(t, d1.ID, b1.Batch.ID) {
			c.run(t, down, exchange{name: r.method + " " + r.path, request: A(r), want: 503, check: wantCode("unavailable")})
		}
		for _, r := range adminRouteList() {
			r.token = tokenAdmin
			c.run(t, down, exchange{name: r.method + " " + r.path, request: r, want: 503, check: wantCode("unavailable")})
		}
	})

	res := <-inFlightDone
	if res.err != nil {
		t.Fatal(res.err)
	}
	t.Run(inFlight.name, func(t *testing.T) { c.verify(t.Context(), t, a, inFlight, res.resp) })

	// Every status the document promises was answered and validated.
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			for code := range op.Responses.Map() {
				n, err := strconv.Atoi(code)
				if err != nil {
					t.Errorf("%s %s: response %q is not a status", method, path, code)
					continue
				}
				if !c.seen[method+" "+path][n] {
					t.Errorf("%s %s: documented status %d was never answered in the scenario", method, path, n)
				}
			}
		}
	}
}
