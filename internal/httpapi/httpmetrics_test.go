package httpapi_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/labstack/echo/v4"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// scrapeHTTP returns distq_http_requests_total by "code method url" and
// the number of label sets of every distq_http_* family.
func scrapeHTTP(t *testing.T, a *testAPI) (map[string]float64, int) {
	t.Helper()
	rec := httptest.NewRecorder()
	a.Echo.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(rec.Body)
	if err != nil {
		t.Fatal(err)
	}
	counts := map[string]float64{}
	series := 0
	for name, f := range fams {
		if !strings.HasPrefix(name, "distq_http_") {
			continue
		}
		series += len(f.GetMetric())
		if name != "distq_http_requests_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			counts[labelsOf(m, "code", "method", "url")] += m.GetCounter().GetValue()
		}
	}
	return counts, series
}

func labelsOf(m *dto.Metric, names ...string) string {
	var out []string
	for _, n := range names {
		for _, l := range m.GetLabel() {
			if l.GetName() == n {
				out = append(out, l.GetValue())
			}
		}
	}
	return strings.Join(out, " ")
}

// The HTTP metrics count the status each client received, by route
// template: distq's own errors, the team limiter's 429, the body limit's
// 413 and a panic's 500 are counted as such, not as 500.
func TestHTTPMetricsCountTheStatusSent(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	a := newAPI(t, apiOptions{teamRate: 0.001, teamBurst: 8})
	a.Echo.GET("/panic", func(echo.Context) error { panic("boom") })
	type call struct {
		r    request
		n    int
		want string // code method url
	}
	big := append([]byte(`{"product_key":"`), bytes.Repeat([]byte("a"), 70<<10)...)
	calls := []call{
		{request{method: "GET", path: "/healthz"}, 3, "200 GET /healthz"},
		{request{method: "GET", path: "/v1/distributions"}, 4, "401 GET /v1/distributions"},
		{request{method: "GET", path: "/v1/distributions/nope", token: tokenA}, 2, "404 GET /v1/distributions/:id"},
		{request{method: "POST", path: "/v1/distributions", token: tokenA, body: []byte(`{"product_key":""}`)}, 2, "422 POST /v1/distributions"},
		{request{method: "POST", path: "/v1/distributions", token: tokenA, body: big}, 1, "413 POST /v1/distributions"},
		{request{method: "POST", path: "/v1/distributions", token: tokenA, body: mustJSON(t, dreq("a1metrics"))}, 1, "202 POST /v1/distributions"},
		{request{method: "POST", path: "/v1/distributions", token: tokenA, body: mustJSON(t, dreq("a1metrics"))}, 1, "409 POST /v1/distributions"},
		{request{method: "GET", path: "/v1/distributions", token: tokenB}, 8, "200 GET /v1/distributions"},
		{request{method: "GET", path: "/v1/distributions", token: tokenB}, 5, "429 GET /v1/distributions"},
		{request{method: "GET", path: "/no/such/route"}, 2, "404 GET unmatched"},
		{request{method: "GET", path: "/panic"}, 1, "500 GET unmatched"},
	}
	want := map[string]float64{}
	for _, c := range calls {
		for range c.n {
			resp, err := a.do(ctx, c.r)
			if err != nil {
				t.Fatal(err)
			}
			if got := fmt.Sprint(resp.status); !strings.HasPrefix(c.want, got+" ") {
				t.Fatalf("%s %s: status %d %s, want %s", c.r.method, c.r.path, resp.status, resp.body, c.want)
			}
		}
		want[c.want] += float64(c.n)
	}
	got, _ := scrapeHTTP(t, a)
	for k, v := range want {
		if got[k] != v {
			t.Errorf("distq_http_requests_total{%s} = %v, want %v", k, got[k], v)
		}
	}
	for k, v := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("unexpected series distq_http_requests_total{%s} = %v", k, v)
		}
	}
}

// Requests that match no route, with any method and Host, add no label
// set: 10,000 distinct paths leave /metrics as it was.
func TestHTTPMetricsLabelsAreClosed(t *testing.T) {
	t.Parallel()
	a := newAPI(t, apiOptions{})
	send := func(method, path, host string) {
		req := httptest.NewRequest(method, path, nil)
		req.Host = host
		a.Echo.ServeHTTP(httptest.NewRecorder(), req)
	}
	for _, m := range []string{"GET", "POST", "BREW"} {
		send(m, "/warm-up", "api")
		send(m, "/v1/warm-up", "api")
	}
	_, before := scrapeHTTP(t, a)
	for i := range 10000 {
		method := []string{"GET", "POST", "BREW", fmt.Sprintf("M%d", i)}[i%4]
		send(method, fmt.Sprintf("/x/%d/%s", i, strings.Repeat("p", i%50)), fmt.Sprintf("h%d.example", i))
		send(method, fmt.Sprintf("/v1/y%d", i), "api")
	}
	counts, after := scrapeHTTP(t, a)
	t.Logf("distq_http_* series: %d before, %d after 20,000 unmatched requests", before, after)
	if after != before {
		t.Fatalf("distq_http_* label sets: %d before, %d after 20,000 unmatched requests; want constant", before, after)
	}
	var unmatched float64
	for k, v := range counts {
		if strings.HasSuffix(k, " unmatched") {
			unmatched += v
		}
	}
	if unmatched != 20006 {
		t.Fatalf("unmatched requests counted %v, want 20006", unmatched)
	}
}
