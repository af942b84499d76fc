package httpapi_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

// Every error answer has one shape, {"error":{"code","message","details"}}
// with details always a JSON list ([] when there is nothing to add): 400
// (malformed JSON, an unknown field), 401, 404 (route and id), a wrong
// method, 413, 415, 422, 409, 429 and 503.
func TestErrorShapeEverywhere(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	a := newAPI(t, apiOptions{})
	limited := newAPI(t, apiOptions{redis: a.RedisOptions, teamRate: 0.001, teamBurst: 1})
	down := newAPI(t, apiOptions{down: true})
	d := a.createDistribution(ctx, t, tokenA, "a1shape")
	tests := []struct {
		name string
		api  *testAPI
		req  request
		// status is the answer's; 0 accepts any 4xx (a wrong method).
		status  int
		code    string
		details int // the number of details
	}{
		{"malformed JSON", a, request{method: http.MethodPost, path: "/v1/distributions", token: tokenA, body: []byte(`{"product_key":`)}, 400, "malformed_json", 0},
		{"unknown field", a, request{method: http.MethodPost, path: "/v1/distributions", token: tokenA, body: []byte(`{"product_key":"a1x","colour":"red"}`)}, 400, "unknown_field", 1},
		{"bad parameter", a, request{method: http.MethodGet, path: "/v1/distributions?limit=0", token: tokenA}, 400, "bad_parameter", 0},
		{"no token", a, request{method: http.MethodGet, path: "/v1/distributions"}, 401, "unauthorized", 0},
		{"unknown route", a, request{method: http.MethodGet, path: "/v1/nothing", token: tokenA}, 404, "not_found", 0},
		{"unknown id", a, request{method: http.MethodGet, path: "/v1/distributions/d_000000000000_0000000000", token: tokenA}, 404, "not_found", 0},
		{"wrong method", a, request{method: http.MethodDelete, path: "/v1/distributions", token: tokenA}, 0, "", 0},
		{"too large", a, request{method: http.MethodPost, path: "/v1/distributions", token: tokenA, body: bytes.Repeat([]byte(" "), 1<<20)}, 413, "too_large", 0},
		{"wrong media type", a, request{method: http.MethodPost, path: "/v1/distributions", token: tokenA, contentType: "text/plain", body: []byte(`{}`)}, 415, "unsupported_media_type", 0},
		{"invalid", a, request{method: http.MethodPost, path: "/v1/distributions", token: tokenA, body: []byte(`{"product_key":"a1x"}`)}, 422, "validation_failed", 2},
		{"duplicate", a, request{method: http.MethodPost, path: "/v1/distributions", token: tokenA, body: mustJSON(t, dreq("a1shape"))}, 409, "duplicate_active", 1},
		{"not queued", a, request{method: http.MethodPost, path: "/v1/distributions/" + d.ID + "/retry", token: tokenA}, 409, "invalid_state", 0},
		{"first of the limit", limited, request{method: http.MethodGet, path: "/v1/distributions", token: tokenA}, 200, "", 0},
		{"rate limited", limited, request{method: http.MethodGet, path: "/v1/distributions", token: tokenA}, 429, "rate_limited", 0},
		{"redis down", down, request{method: http.MethodGet, path: "/v1/distributions", token: tokenA}, 503, "unavailable", 0},
	}
	for _, tt := range tests {
		resp, err := tt.api.do(ctx, tt.req)
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		switch {
		case tt.status == 200:
			if resp.status != 200 {
				t.Fatalf("%s: status %d %s", tt.name, resp.status, resp.body)
			}
			continue
		case tt.status == 0 && (resp.status < 400 || resp.status > 499), tt.status != 0 && resp.status != tt.status:
			t.Errorf("%s: status %d %s, want %d", tt.name, resp.status, trim(resp.body), tt.status)
			continue
		}
		var body map[string]map[string]json.RawMessage
		if err := json.Unmarshal(resp.body, &body); err != nil || len(body) != 1 || body["error"] == nil {
			t.Errorf("%s: body %s is not {\"error\":{…}}", tt.name, trim(resp.body))
			continue
		}
		e := body["error"]
		var code, msg string
		var details []json.RawMessage
		if json.Unmarshal(e["code"], &code) != nil || code == "" || json.Unmarshal(e["message"], &msg) != nil || msg == "" {
			t.Errorf("%s: code or message missing: %s", tt.name, resp.body)
		}
		if !strings.HasPrefix(string(e["details"]), "[") || json.Unmarshal(e["details"], &details) != nil {
			t.Errorf("%s: details %q, want a JSON list: %s", tt.name, e["details"], resp.body)
		}
		if len(e) != 3 || tt.code != "" && code != tt.code || len(details) != tt.details {
			t.Errorf("%s: %s, want code %q with %d details and nothing else", tt.name, resp.body, tt.code, tt.details)
		}
	}
}
