package httpapi_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/google/go-cmp/cmp"

	"github.com/distq/distq/client"
	"github.com/distq/distq/internal/distribution"
)

// clientSchemas pairs each schema of openapi.yaml with the client type that
// carries it on the wire.
var clientSchemas = map[string]reflect.Type{
	"Distribution":        reflect.TypeFor[client.Distribution](),
	"DistributionError":   reflect.TypeFor[client.DistributionError](),
	"Attempt":             reflect.TypeFor[client.Attempt](),
	"DistributionRequest": reflect.TypeFor[client.DistributionRequest](),
	"BatchRequest":        reflect.TypeFor[client.BatchRequest](),
	"BatchItem":           reflect.TypeFor[client.BatchItem](),
	"BatchView":           reflect.TypeFor[client.Batch](),
	"Share":               reflect.TypeFor[client.Share](),
	"ItemResult":          reflect.TypeFor[client.ItemResult](),
	"BatchCreated":        reflect.TypeFor[client.BatchCreated](),
	"BatchActionResult":   reflect.TypeFor[client.BatchActionResult](),
	"Page":                reflect.TypeFor[client.Page](),
	"FieldProblem":        reflect.TypeFor[client.FieldError](),
	"ExistingRef":         reflect.TypeFor[client.ExistingRef](),
	"OtherTeamRef":        reflect.TypeFor[client.OtherTeamRef](),
	"Error":               reflect.TypeFor[client.Error](),
	"Setting":             reflect.TypeFor[client.Setting](),
	"Pause":               reflect.TypeFor[client.Pause](),
	"AdminAccount":        reflect.TypeFor[client.AdminAccount](),
	"AdminTeam":           reflect.TypeFor[client.AdminTeam](),
	"AdminAccountList":    reflect.TypeFor[client.AdminAccountList](),
	"TeamWeight":          reflect.TypeFor[client.TeamWeight](),
	"TeamWeightList":      reflect.TypeFor[client.TeamWeightList](),
	"LimitsRequest":       reflect.TypeFor[client.LimitsChange](),
	"WeightRequest":       reflect.TypeFor[client.WeightRequest](),

	"DeviceDistributionRequest": reflect.TypeFor[client.DeviceDistributionRequest](),
	"DeviceDistribution":        reflect.TypeFor[client.DeviceDistribution](),
	"DeviceJob":                 reflect.TypeFor[client.DeviceJob](),
	"DeviceCounts":              reflect.TypeFor[client.DeviceCounts](),
	"DevicePage":                reflect.TypeFor[client.DevicePage](),
	"DeviceResult":              reflect.TypeFor[client.DeviceResult](),
	"DeviceResultPage":          reflect.TypeFor[client.DeviceResultPage](),
}

// jsonField is one JSON field of a Go struct.
type jsonField struct {
	typ       reflect.Type
	omitempty bool
}

// jsonFields lists the JSON fields of struct type t as encoding/json sees
// them, embedded structs inlined.
func jsonFields(t reflect.Type) map[string]jsonField {
	out := map[string]jsonField{}
	for f := range t.Fields() {
		tag := f.Tag.Get("json")
		if tag == "-" || !f.IsExported() {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		if f.Anonymous && name == "" && f.Type.Kind() == reflect.Struct {
			for k, v := range jsonFields(f.Type) {
				out[k] = v
			}
			continue
		}
		if name == "" {
			name = f.Name
		}
		out[name] = jsonField{typ: f.Type, omitempty: slices.Contains(strings.Split(opts, ","), "omitempty")}
	}
	return out
}

// schemaMatches reports how the Go type t differs from schema s: the JSON
// type, and for a $ref to a paired schema, the paired type.
func schemaMatches(ref *openapi3.SchemaRef, t reflect.Type) error {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if name, ok := strings.CutPrefix(ref.Ref, "#/components/schemas/"); ok {
		if want, paired := clientSchemas[name]; paired && want != t {
			return fmt.Errorf("is %v, want %v (schema %s)", t, want, name)
		}
	}
	s := ref.Value
	switch {
	case s.Type.Is("string") && s.Format == "date-time":
		if t != reflect.TypeFor[time.Time]() {
			return fmt.Errorf("is %v, want time.Time", t)
		}
	case s.Type.Is("string"):
		if t.Kind() != reflect.String {
			return fmt.Errorf("is %v, want a string", t)
		}
	case s.Type.Is("integer"):
		if t.Kind() != reflect.Int {
			return fmt.Errorf("is %v, want an int", t)
		}
	case s.Type.Is("number"):
		if t.Kind() != reflect.Float64 {
			return fmt.Errorf("is %v, want a float64", t)
		}
	case s.Type.Is("boolean"):
		if t.Kind() != reflect.Bool {
			return fmt.Errorf("is %v, want a bool", t)
		}
	case s.Type.Is("array"):
		if t == reflect.TypeFor[json.RawMessage]() {
			return nil // kept as sent: Error.Details
		}
		if t.Kind() != reflect.Slice {
			return fmt.Errorf("is %v, want a slice", t)
		}
		return schemaMatches(s.Items, t.Elem())
	case s.Type.Is("object"):
		if t.Kind() != reflect.Struct && t.Kind() != reflect.Map {
			return fmt.Errorf("is %v, want a struct or map", t)
		}
	default:
		return fmt.Errorf("schema type %v is not checked", s.Type)
	}
	return nil
}

// The client's wire types are the document's schemas: every property is a
// JSON field of the paired type and every field a property, of the same
// JSON type; a required property is never left out (no omitempty). The
// state enum and the counts are the client's States.
func TestClientTypesMatchOpenAPI(t *testing.T) {
	t.Parallel()
	doc, _ := loadSpec(t.Context(), t)
	for name, typ := range clientSchemas {
		t.Run(name, func(t *testing.T) {
			ref := doc.Components.Schemas[name]
			if ref == nil {
				t.Fatalf("openapi.yaml has no schema %s", name)
			}
			fields := jsonFields(typ)
			for prop, ps := range ref.Value.Properties {
				f, ok := fields[prop]
				if !ok {
					t.Errorf("property %s is not a JSON field of %v", prop, typ)
					continue
				}
				if err := schemaMatches(ps, f.typ); err != nil {
					t.Errorf("%v field %s %v", typ, prop, err)
				}
			}
			for field := range fields {
				if _, ok := ref.Value.Properties[field]; !ok {
					t.Errorf("%v has JSON field %s, which schema %s does not have", typ, field, name)
				}
			}
			for _, req := range ref.Value.Required {
				if f, ok := fields[req]; ok && f.omitempty {
					t.Errorf("%v field %s is omitempty, but schema %s requires it", typ, req, name)
				}
			}
		})
	}
	var enum []client.State
	for _, v := range doc.Components.Schemas["State"].Value.Enum {
		enum = append(enum, client.State(v.(string)))
	}
	if diff := cmp.Diff(enum, client.States); diff != "" {
		t.Errorf("State enum vs client.States (-doc +client):\n%s", diff)
	}
	counts := doc.Components.Schemas["Counts"].Value
	var props, required []client.State
	for p := range counts.Properties {
		props = append(props, client.State(p))
	}
	for _, r := range counts.Required {
		required = append(required, client.State(r))
	}
	for _, got := range [][]client.State{props, required} {
		slices.Sort(got)
		if want := slices.Sorted(slices.Values(client.States)); !slices.Equal(got, want) {
			t.Errorf("Counts lists %v, want every client state %v", got, want)
		}
	}
}

// exchangeRecorder is an http.RoundTripper that keeps the last request and
// answer, so a test can check what the typed client sent and decoded.
type exchangeRecorder struct {
	transport *http.Transport
	mu        sync.Mutex
	req       *http.Request
	reqBody   []byte
	resp      *response
}

func (r *exchangeRecorder) RoundTrip(req *http.Request) (*http.Response, error) {
	var reqBody []byte
	if req.Body != nil {
		var err error
		if reqBody, err = io.ReadAll(req.Body); err != nil {
			return nil, err
		}
		req.Body = io.NopCloser(bytes.NewReader(reqBody))
	}
	resp, err := r.transport.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	r.mu.Lock()
	defer r.mu.Unlock()
	r.req, r.reqBody = req, reqBody
	r.resp = &response{status: resp.StatusCode, header: resp.Header, body: body}
	return resp, nil
}

// clientCheck drives the typed client against the api.
type clientCheck struct {
	doc    *openapi3.T
	router routers.Router
	rec    *exchangeRecorder
}

// exchange checks the client's last exchange: it answered status, request
// and answer conform to openapi.yaml (a 400 or 401 answers a request the
// document refuses), and what the client returned (got, or the
// *client.Error in err) encodes back to the answer's JSON exactly: nothing
// was lost in decoding. With neither got nor err, the value is not in hand
// and only the status and the document are checked.
func (c *clientCheck) exchange(t *testing.T, status int, got any, err error) {
	t.Helper()
	c.rec.mu.Lock()
	req, reqBody, resp := c.rec.req, c.rec.reqBody, c.rec.resp
	c.rec.mu.Unlock()
	if resp == nil {
		t.Fatalf("no exchange (%v)", err)
	}
	if resp.status != status {
		t.Fatalf("%s %s: status %d %s, want %d", req.Method, req.URL.Path, resp.status, trim(resp.body), status)
	}
	ctx := t.Context()
	vreq := req.Clone(ctx)
	vreq.Body = io.NopCloser(bytes.NewReader(reqBody))
	route, params, ferr := c.router.FindRoute(vreq)
	if ferr != nil {
		t.Fatalf("%s %s: not in openapi.yaml: %v", req.Method, req.URL.Path, ferr)
	}
	opts := (&contract{}).options()
	in := &openapi3filter.RequestValidationInput{Request: vreq, PathParams: params, Route: route, Options: opts}
	if verr := openapi3filter.ValidateRequest(ctx, in); verr != nil && resp.status != http.StatusBadRequest && resp.status != http.StatusUnauthorized {
		t.Errorf("the client's request %s %s does not conform to openapi.yaml: %v", req.Method, req.URL, verr)
	}
	out := &openapi3filter.ResponseValidationInput{RequestValidationInput: in, Status: resp.status, Header: resp.header, Options: opts}
	out.SetBodyBytes(resp.body)
	if verr := openapi3filter.ValidateResponse(ctx, out); verr != nil {
		t.Errorf("answer %d %s does not conform to openapi.yaml: %v", resp.status, trim(resp.body), verr)
	}

	if got == nil && err == nil {
		return
	}
	if err != nil {
		var e *client.Error
		if !errors.As(err, &e) {
			t.Fatalf("%s %s: %v, want a *client.Error", req.Method, req.URL.Path, err)
		}
		if e.Status != resp.status || e.RequestID == "" || e.RequestID != resp.header.Get("X-Request-Id") {
			t.Errorf("error status %d request id %q, want %d and %q", e.Status, e.RequestID, resp.status, resp.header.Get("X-Request-Id"))
		}
		got = struct {
			Error *client.Error `json:"error"`
		}{e}
	}
	re, merr := json.Marshal(got)
	if merr != nil {
		t.Fatal(merr)
	}
	var want, have any
	if err := json.Unmarshal(resp.body, &want); err != nil {
		t.Fatalf("answer is not JSON: %s", trim(resp.body))
	}
	if err := json.Unmarshal(re, &have); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, have); diff != "" {
		t.Errorf("%s %s: the client's value does not encode back to the answer (-answer +client):\n%s", req.Method, req.URL.Path, diff)
		return
	}
	// Byte for byte, field order included: distqctl prints the client's
	// values where it used to print the api's answers.
	var compact bytes.Buffer
	if err := json.Compact(&compact, resp.body); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(compact.Bytes(), re) {
		t.Errorf("%s %s: the client's value encodes as\n%s\nthe answer is\n%s", req.Method, req.URL.Path, re, compact.Bytes())
	}
}

// The typed client, driven against the api over every /v1 route, sends
// requests the document accepts and decodes every answer, errors included,
// without losing a field.
func TestClientAgainstAPI(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	doc, router := loadSpec(ctx, t)
	a := newAPI(t, apiOptions{})
	rec := &exchangeRecorder{transport: &http.Transport{}}
	t.Cleanup(rec.transport.CloseIdleConnections)
	c := client.New(a.URL, tokenA, client.WithHTTPClient(&http.Client{Transport: rec, Timeout: time.Minute}))
	chk := &clientCheck{doc: doc, router: router, rec: rec}
	req := func(pk string) client.DistributionRequest {
		return client.DistributionRequest{ProductKey: pk, SourceInstanceID: "iotx-oxssharez200", TargetInstanceID: "iot-cn-6ja1a2b3c4d"}
	}

	// Single submissions, with and without Idempotency-Key.
	d1, replayed, err := c.Submit(ctx, req("a1client1"), "")
	chk.exchange(t, http.StatusAccepted, d1, err)
	if replayed || d1.State != client.StateQueued || d1.ID == "" {
		t.Fatalf("submit: %+v replayed %t, want a new queued distribution", d1, replayed)
	}
	d2, replayed, err := c.Submit(ctx, req("a1client2"), "key-client-2")
	chk.exchange(t, http.StatusAccepted, d2, err)
	again, replayed2, err := c.Submit(ctx, req("a1client2"), "key-client-2")
	chk.exchange(t, http.StatusOK, again, err)
	if replayed || !replayed2 || again.ID != d2.ID {
		t.Fatalf("idempotent submit: replayed %t then %t, ids %s and %s; want false, true and one id", replayed, replayed2, d2.ID, again.ID)
	}
	_, _, err = c.Submit(ctx, req("a1other"), "key-client-2")
	chk.exchange(t, http.StatusUnprocessableEntity, nil, err)
	_, _, err = c.Submit(ctx, req("a1client1"), "")
	chk.exchange(t, http.StatusConflict, nil, err)
	var dup *client.Error
	if !errors.As(err, &dup) || dup.Code != "duplicate_active" || dup.ExistingID() != d1.ID {
		t.Fatalf("duplicate: %v, want duplicate_active naming %s", err, d1.ID)
	}
	bad := req("a1bad")
	bad.TargetUID = "42"
	_, _, err = c.Submit(ctx, bad, "")
	chk.exchange(t, http.StatusUnprocessableEntity, nil, err)
	var invalid *client.Error
	if !errors.As(err, &invalid) || len(invalid.FieldErrors()) != 1 || invalid.FieldErrors()[0].Field != "target_uid" {
		t.Fatalf("cross-account: %v, want validation_failed on target_uid", err)
	}

	// Reads.
	got, err := c.Get(ctx, d1.ID)
	chk.exchange(t, http.StatusOK, got, err)
	_, err = c.Get(ctx, "d_000000000000_0000000000")
	chk.exchange(t, http.StatusNotFound, nil, err)
	polled, err := c.Poll(ctx, d1.ID, client.StateQueued, 50*time.Millisecond)
	chk.exchange(t, http.StatusOK, polled, err)
	if polled.State != client.StateQueued {
		t.Fatalf("poll: %+v, want still queued", polled)
	}

	// Batches: one item refused (cross-account), then a batch of none valid.
	batch := func(items ...client.BatchItem) client.BatchRequest {
		return client.BatchRequest{Items: items, SourceInstanceID: "iotx-oxssharez200", TargetInstanceID: "iot-cn-6ja1a2b3c4d"}
	}
	crossAccount := client.BatchItem{ProductKey: "a1cross", TargetUID: "42"}
	b, replayed, err := c.SubmitBatch(ctx, batch(client.BatchItem{ProductKey: "a1batch1"}, client.BatchItem{ProductKey: "a1batch2"},
		client.BatchItem{ProductKey: "a1batch3"}, crossAccount), "key-batch")
	chk.exchange(t, http.StatusAccepted, b, err)
	if replayed || b.Accepted != 3 || b.Rejected != 1 || b.Results[3].Error == nil || b.Results[3].Error.Code != "validation_failed" {
		t.Fatalf("batch: %+v replayed %t, want 3 accepted and item 3 refused", b, replayed)
	}
	_, _, err = c.SubmitBatch(ctx, batch(crossAccount), "")
	chk.exchange(t, http.StatusUnprocessableEntity, nil, err)
	var none *client.Error
	if !errors.As(err, &none) || len(none.ItemResults()) != 1 || none.ItemResults()[0].Error == nil {
		t.Fatalf("batch of no valid item: %v, want every item's result in the details", err)
	}
	view, err := c.GetBatch(ctx, b.Batch.ID)
	chk.exchange(t, http.StatusOK, view, err)
	if view.Size != 3 || view.Done || view.ETA == nil || view.Counts[client.StateQueued] != 3 {
		t.Fatalf("batch view %+v, want 3 queued with an eta", view)
	}
	page, err := c.BatchDistributions(ctx, b.Batch.ID, client.ListOptions{Limit: 2})
	chk.exchange(t, http.StatusOK, page, err)
	if len(page.Items) != 2 || page.NextCursor == "" {
		t.Fatalf("batch page %+v, want 2 items and a cursor", page)
	}

	// Lists: one page, filters, and All following the cursors.
	page, err = c.List(ctx, client.ListOptions{State: client.StateQueued, ProductKey: "a1client1"})
	chk.exchange(t, http.StatusOK, page, err)
	if len(page.Items) != 1 || page.Items[0].ID != d1.ID || page.NextCursor != "" {
		t.Fatalf("filtered page %+v, want only %s", page, d1.ID)
	}
	var all []string
	for d, err := range c.All(ctx, client.ListOptions{Limit: 2}) {
		chk.exchange(t, http.StatusOK, nil, err) // status and document only: the page is not in hand
		if err != nil {
			break
		}
		all = append(all, d.ID)
	}
	// The same as one page of everything, in the same order.
	one, err := c.List(ctx, client.ListOptions{Limit: 1000})
	chk.exchange(t, http.StatusOK, one, err)
	var wantAll []string
	for _, d := range one.Items {
		wantAll = append(wantAll, d.ID)
	}
	if len(all) != 5 || !slices.Equal(all, wantAll) {
		t.Fatalf("All, 2 a page: %v, want the 5 of one page %v", all, wantAll)
	}
	for d, err := range c.All(ctx, client.ListOptions{BatchID: b.Batch.ID, Limit: 1}) {
		if err != nil || d.BatchID != b.Batch.ID {
			t.Fatalf("All of a batch: %+v %v", d, err)
		}
		break // stops without fetching the next page
	}
	_, err = c.List(ctx, client.ListOptions{Cursor: "nope"})
	chk.exchange(t, http.StatusBadRequest, nil, err)

	// Cancel and retry, one and per batch.
	canceled, err := c.Cancel(ctx, d2.ID)
	chk.exchange(t, http.StatusOK, canceled, err)
	_, err = c.Cancel(ctx, d2.ID)
	chk.exchange(t, http.StatusConflict, nil, err)
	a.fail(ctx, t, d1.ID)
	retried, err := c.Retry(ctx, d1.ID)
	chk.exchange(t, http.StatusAccepted, retried, err)
	if retried.State != client.StateQueued || retried.Attempts != 1 || len(retried.History) != 1 ||
		retried.History[0].Outcome != client.OutcomeFailed || retried.History[0].Error.RequestID != "E2A1B3C4" {
		t.Fatalf("retried %+v, want queued with the failed attempt in its history", retried)
	}
	got, err = c.Get(ctx, d1.ID)
	chk.exchange(t, http.StatusOK, got, err)
	a.fail(ctx, t, b.Results[0].ID)
	rb, err := c.RetryBatch(ctx, b.Batch.ID)
	chk.exchange(t, http.StatusOK, rb, err)
	cb, err := c.CancelBatch(ctx, b.Batch.ID)
	chk.exchange(t, http.StatusOK, cb, err)
	if rb.Changed != 1 || cb.Changed != 3 || !slices.Contains(cb.Affected, b.Results[0].ID) {
		t.Fatalf("retry batch %+v then cancel batch %+v, want 1 retried and all 3 canceled", rb, cb)
	}
	_, err = c.CancelBatch(ctx, b.Batch.ID)
	chk.exchange(t, http.StatusConflict, nil, err)

	// Auth and the inbound limit.
	_, err = client.New(a.URL, "not-a-token", client.WithHTTPClient(&http.Client{Transport: rec})).Get(ctx, d1.ID)
	chk.exchange(t, http.StatusUnauthorized, nil, err)
	limited := newAPI(t, apiOptions{redis: a.RedisOptions, teamRate: 0.001, teamBurst: 1})
	lc := client.New(limited.URL, tokenA, client.WithHTTPClient(&http.Client{Transport: rec}))
	_, err = lc.Get(ctx, d1.ID)
	chk.exchange(t, http.StatusOK, nil, err)
	_, err = lc.Get(ctx, d1.ID)
	chk.exchange(t, http.StatusTooManyRequests, nil, err)
	var limitedErr *client.Error
	if !errors.As(err, &limitedErr) || limitedErr.RetryAfter < time.Second {
		t.Fatalf("rate limited: %v, want Retry-After of at least 1s", err)
	}
}

// validationCases are requests for the client's Validate and the domain's.
var validationCases = []client.DistributionRequest{
	{},
	{ProductKey: "a1BwAGV1234", SourceInstanceID: "iotx-oxssharez200", TargetInstanceID: "iot-cn-6ja1a2b3c4d"},
	{ProductKey: "a1 X", SourceInstanceID: "-iotx", TargetInstanceID: "iotx-b\n"},
	{ProductKey: "a1\x00", SourceInstanceID: "iotx-a", TargetInstanceID: "iotx-a"},
	{ProductKey: "a1\xff", SourceInstanceID: strings.Repeat("s", 65), TargetInstanceID: strings.Repeat("t", 129)},
	{ProductKey: strings.Repeat("p", 65), SourceInstanceID: "iotx-a", TargetInstanceID: "iotx-b", TargetUID: "12ab"},
	{ProductKey: "p", SourceInstanceID: "s", TargetInstanceID: "t", TargetUID: "42", TargetAliyunID: strings.Repeat("x", 129)},
	{ProductKey: "p", SourceInstanceID: "s", TargetInstanceID: "t", TargetAliyunID: "ops\x7f", Account: "acme"},
}

// checkValidateAgrees fails t when the client's Validate and the domain's,
// before the account is known, disagree about r.
func checkValidateAgrees(t *testing.T, r client.DistributionRequest) {
	t.Helper()
	dr := distribution.Request{Account: r.Account, ProductKey: r.ProductKey, SourceInstanceID: r.SourceInstanceID,
		TargetInstanceID: r.TargetInstanceID, TargetUID: r.TargetUID, TargetAliyunID: r.TargetAliyunID}
	var want, got []client.FieldError
	dErr := dr.Validate("")
	if dErr != nil {
		var ve *distribution.ValidationError
		if !errors.As(dErr, &ve) {
			t.Fatalf("domain: %v", dErr)
		}
		for _, f := range ve.Fields {
			want = append(want, client.FieldError{Field: f.Field, Message: f.Message})
		}
	}
	if err := r.Validate(); err != nil {
		var ve *client.ValidationError
		if !errors.As(err, &ve) {
			t.Fatalf("client: %v", err)
		}
		got = ve.Fields
		if dErr == nil || dErr.Error() != err.Error() {
			t.Errorf("messages: client %q, domain %v", err, dErr)
		}
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("%+v: client.Validate differs from the domain's (-domain +client):\n%s", r, diff)
	}
}

// distqctl checks requests with the client's Validate before it sends
// them: it must say what the api would.
func TestClientValidateMatchesDomain(t *testing.T) {
	t.Parallel()
	for _, r := range validationCases {
		checkValidateAgrees(t, r)
	}
}

func FuzzClientValidateMatchesDomain(f *testing.F) {
	for _, r := range validationCases {
		f.Add(r.ProductKey, r.SourceInstanceID, r.TargetInstanceID, r.TargetUID, r.TargetAliyunID)
	}
	f.Fuzz(func(t *testing.T, pk, src, dst, uid, aliyunID string) {
		checkValidateAgrees(t, client.DistributionRequest{ProductKey: pk, SourceInstanceID: src, TargetInstanceID: dst, TargetUID: uid, TargetAliyunID: aliyunID})
	})
}
