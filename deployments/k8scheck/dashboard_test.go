package k8scheck

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

const (
	dashboardsDir = "../grafana/dashboards"
	alertsFile    = "../prometheus/alerts.yml"
	alertTests    = "../prometheus/alerts_test.yml"
)

// prometheusOwn are series Prometheus makes itself, not the binaries.
var prometheusOwn = map[string]bool{"up": true, "scrape_duration_seconds": true}

// promqlWords are PromQL's keywords, aggregations and functions: names
// that stand where a metric name could, but are not one.
var promqlWords = map[string]bool{}

func init() {
	for _, w := range strings.Fields(`and or unless by without on ignoring group_left group_right bool offset atan2
		sum min max avg group stddev stdvar count count_values bottomk topk quantile limitk limit_ratio
		abs absent absent_over_time ceil changes clamp clamp_max clamp_min day_of_month day_of_week day_of_year
		days_in_month delta deriv exp floor histogram_avg histogram_count histogram_fraction histogram_quantile
		histogram_stddev histogram_stdvar histogram_sum holt_winters double_exponential_smoothing hour idelta
		increase irate label_join label_replace ln log2 log10 minute month predict_linear rate resets round
		scalar sgn sort sort_desc sort_by_label sort_by_label_desc sqrt time timestamp vector year
		avg_over_time min_over_time max_over_time sum_over_time count_over_time quantile_over_time
		stddev_over_time stdvar_over_time last_over_time present_over_time mad_over_time
		acos acosh asin asinh atan atanh cos cosh sin sinh tan tanh deg rad pi inf nan
		label_values label_names query_result metrics`) {
		promqlWords[w] = true
	}
}

var (
	reString      = regexp.MustCompile(`"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|` + "`[^`]*`")
	reMatchers    = regexp.MustCompile(`\{[^{}]*\}`)
	reRange       = regexp.MustCompile(`\[[^\[\]]*\]`)
	reGrouping    = regexp.MustCompile(`\b(by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)`)
	reGrafana     = regexp.MustCompile(`\$\{?[A-Za-z_][A-Za-z0-9_]*(:[a-z]+)?\}?`)
	reNumber      = regexp.MustCompile(`\b\d+(\.\d+)?([eE][+-]?\d+)?[smhdwy]?\b`)
	reIdent       = regexp.MustCompile(`[A-Za-z_:][A-Za-z0-9_:]*`)
	reLabelValues = regexp.MustCompile(`label_values\(\s*([^,()]*(?:\{[^{}]*\})?)\s*,\s*[A-Za-z_][A-Za-z0-9_]*\s*\)`)
	reMetricIn    = regexp.MustCompile(`__name__\s*=~?\s*"([^"]+)"`)
)

// metricNames returns the metric names a PromQL expression (possibly with
// Grafana variables) selects: what remains once strings, label matchers,
// ranges, grouping clauses, numbers, keywords and functions are removed.
func metricNames(expr string) []string {
	var names []string
	for _, m := range reMetricIn.FindAllStringSubmatch(expr, -1) {
		names = append(names, m[1])
	}
	// Grafana's label_values(metric, label): only the first argument selects.
	e := reLabelValues.ReplaceAllString(expr, "$1")
	e = reGrafana.ReplaceAllString(e, " ")
	e = reString.ReplaceAllString(e, `""`)
	e = reMatchers.ReplaceAllString(e, " ")
	e = reRange.ReplaceAllString(e, " ")
	e = reGrouping.ReplaceAllString(e, " ")
	e = reNumber.ReplaceAllString(e, " ")
	for _, loc := range reIdent.FindAllStringIndex(e, -1) {
		w := e[loc[0]:loc[1]]
		if promqlWords[w] {
			continue
		}
		if rest := strings.TrimLeft(e[loc[1]:], " \t\n"); strings.HasPrefix(rest, "(") {
			continue // a function call
		}
		names = append(names, w)
	}
	return names
}

func TestMetricNamesExtraction(t *testing.T) {
	cases := map[string][]string{
		`sum by (account, action) (increase(distq_alibaba_throttled_total{account=~"$account"}[$__rate_interval])) > 0`: {"distq_alibaba_throttled_total"},
		`histogram_quantile(0.95, sum by (le) (rate(distq_distribution_duration_seconds_bucket[5m])))`:                  {"distq_distribution_duration_seconds_bucket"},
		`max by (account) (a_in_use) >= on (account) group_left(x) max by (account) (a_limit)`:                          {"a_in_use", "a_limit"},
		`absent(up{job="distq-worker"} == 1)`:                             {"up"},
		`label_values(distq_job_slots_limit, account)`:                    {"distq_job_slots_limit"},
		`rate(x_total{code!="OK", a="sum(b)"}[1m]) / 2e3 and y offset 5m`: {"x_total", "y"},
		`{__name__="distq_reconciled_total"}`:                             {"distq_reconciled_total"},
	}
	for expr, want := range cases {
		got := metricNames(expr)
		sort.Strings(got)
		sort.Strings(want)
		if !slices.Equal(got, want) {
			t.Errorf("metricNames(%q) = %v, want %v", expr, got, want)
		}
	}
}

func knownMetrics(t *testing.T) map[string]bool {
	t.Helper()
	f, err := os.Open("metrics_known.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	known := map[string]bool{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		known[line] = true
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if len(known) == 0 {
		t.Fatal("metrics_known.txt lists no metric")
	}
	return known
}

// isKnown accepts a listed name, a listed histogram's _bucket, _sum and
// _count series, and Prometheus' own series.
func isKnown(known map[string]bool, name string) bool {
	if known[name] || prometheusOwn[name] {
		return true
	}
	for _, suffix := range []string{"_bucket", "_sum", "_count"} {
		if base, ok := strings.CutSuffix(name, suffix); ok && known[base] {
			return true
		}
	}
	return false
}

// exprs collects every "expr" and templating "query" string of a Grafana
// dashboard, wherever it sits (rows nest panels).
func exprs(v any, out *[]string) {
	switch v := v.(type) {
	case map[string]any:
		for k, x := range v {
			switch s := x.(type) {
			case string:
				if k == "expr" || k == "definition" {
					*out = append(*out, s)
				}
			case map[string]any:
				if q, ok := s["query"].(string); ok && k == "query" {
					*out = append(*out, q)
				}
			}
			exprs(x, out)
		}
	case []any:
		for _, x := range v {
			exprs(x, out)
		}
	}
}

func TestDashboardsParseAndNameKnownMetrics(t *testing.T) {
	known := knownMetrics(t)
	files, err := filepath.Glob(filepath.Join(dashboardsDir, "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no dashboard in %s (%v)", dashboardsDir, err)
	}
	for _, path := range files {
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		var dash struct {
			UID    string           `json:"uid"`
			Title  string           `json:"title"`
			Panels []map[string]any `json:"panels"`
		}
		if err := json.Unmarshal(data, &dash); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if dash.UID == "" || dash.Title == "" || len(dash.Panels) == 0 {
			t.Errorf("%s: a dashboard needs a uid, a title and panels", path)
		}
		var all any
		if err := json.Unmarshal(data, &all); err != nil {
			t.Fatal(err)
		}
		var queries []string
		exprs(all, &queries)
		if len(queries) == 0 {
			t.Errorf("%s: no query", path)
		}
		for _, q := range queries {
			names := metricNames(q)
			if len(names) == 0 {
				t.Errorf("%s: query names no metric: %s", path, q)
			}
			for _, n := range names {
				if !isKnown(known, n) {
					t.Errorf("%s: query names %q, not in metrics_known.txt: %s", path, n, q)
				}
			}
		}
		ids := map[float64]bool{}
		for _, p := range dash.Panels {
			id, _ := p["id"].(float64)
			if ids[id] {
				t.Errorf("%s: panel id %v used twice", path, id)
			}
			ids[id] = true
			if p["type"] != "row" {
				if ds, _ := p["datasource"].(map[string]any); ds == nil || ds["uid"] != "prometheus" {
					t.Errorf("%s: panel %q does not use the provisioned datasource (uid prometheus)", path, p["title"])
				}
			}
		}
	}
}

type ruleFile struct {
	Groups []struct {
		Name  string `json:"name"`
		Rules []struct {
			Alert       string            `json:"alert"`
			Record      string            `json:"record"`
			Expr        string            `json:"expr"`
			For         string            `json:"for"`
			Labels      map[string]string `json:"labels"`
			Annotations map[string]string `json:"annotations"`
		} `json:"rules"`
	} `json:"groups"`
}

func TestAlertRulesNameKnownMetricsAndAreTested(t *testing.T) {
	known := knownMetrics(t)
	data, err := os.ReadFile(alertsFile)
	if err != nil {
		t.Fatal(err)
	}
	var rf ruleFile
	if err := yaml.UnmarshalStrict(data, &rf); err != nil {
		t.Fatalf("%s: %v", alertsFile, err)
	}
	tests, err := os.ReadFile(alertTests)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, g := range rf.Groups {
		for _, r := range g.Rules {
			n++
			names := metricNames(r.Expr)
			if len(names) == 0 {
				t.Errorf("rule %s%s names no metric", r.Alert, r.Record)
			}
			for _, m := range names {
				if !isKnown(known, m) {
					t.Errorf("rule %s%s names %q, not in metrics_known.txt", r.Alert, r.Record, m)
				}
			}
			if r.Alert == "" {
				continue
			}
			if r.Labels["severity"] == "" || r.Annotations["summary"] == "" {
				t.Errorf("alert %s: needs a severity label and a summary", r.Alert)
			}
			// One firing and one quiet case each in alerts_test.yml.
			if c := strings.Count(string(tests), "alertname: "+r.Alert+"\n"); c < 2 {
				t.Errorf("alert %s: %d cases in %s, want a firing and a not-firing one", r.Alert, c, alertTests)
			}
		}
	}
	if n == 0 {
		t.Fatal("no rule")
	}
}
