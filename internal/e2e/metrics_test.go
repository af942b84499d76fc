package e2e

import (
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/distq/distq/client"
	"github.com/distq/distq/internal/devstack"
)

// scrape reads a /metrics page into families.
func scrape(t *testing.T, url string) map[string]*familyValues {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("scrape %s: %v", url, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(strings.NewReader(string(raw)))
	if err != nil {
		t.Fatalf("parse %s: %v", url, err)
	}
	out := map[string]*familyValues{}
	for name, f := range fams {
		fv := &familyValues{}
		for _, m := range f.Metric {
			labels := map[string]string{}
			for _, l := range m.Label {
				labels[l.GetName()] = l.GetValue()
			}
			v := 0.0
			switch {
			case m.Counter != nil:
				v = m.Counter.GetValue()
			case m.Gauge != nil:
				v = m.Gauge.GetValue()
			case m.Histogram != nil:
				v = float64(m.Histogram.GetSampleCount())
			case m.Untyped != nil:
				v = m.Untyped.GetValue()
			}
			fv.samples = append(fv.samples, sample{labels, v})
		}
		out[name] = fv
	}
	return out
}

type sample struct {
	labels map[string]string
	value  float64
}

type familyValues struct{ samples []sample }

// sum adds the samples whose labels include every pair of match.
func (f *familyValues) sum(match map[string]string) float64 {
	if f == nil {
		return 0
	}
	total := 0.0
	for _, s := range f.samples {
		ok := true
		for k, v := range match {
			if s.labels[k] != v {
				ok = false
			}
		}
		if ok {
			total += s.value
		}
	}
	return total
}

// Both binaries export the design's metrics, and the values match a run.
func TestMetricsMatchARun(t *testing.T) {
	t.Parallel()
	st := startStack(t, devstack.Options{Sim: fastSim()})
	c := newAPI(t, st.APIURL, st.Token)
	var ids []string
	for _, pk := range []string{"a1met1", "a1met2", "a1met3"} {
		ids = append(ids, c.submit(req(pk)).ID)
	}
	for _, id := range ids {
		if d := c.waitFinal(id, 30*time.Second); d.State != client.StateSucceeded {
			t.Fatalf("%s: %+v", id, d)
		}
	}
	api := scrape(t, st.APIURL+"/metrics")
	worker := scrape(t, st.MetricsURLs[0]+"/metrics")
	for _, name := range []string{"distq_distributions_submitted_total", "distq_distributions_finished_total",
		"distq_alibaba_requests_total", "distq_alibaba_throttled_total", "distq_quota_wait_seconds",
		"distq_job_slots_in_use", "distq_job_slots_limit", "distq_distribution_duration_seconds",
		"distq_alibaba_request_duration_seconds", "distq_rate_limit_per_second", "distq_http_requests_total",
		"go_goroutines", "process_cpu_seconds_total"} {
		if api[name] == nil {
			t.Errorf("api does not export %s", name)
		}
	}
	for _, name := range []string{"distq_distributions_finished_total", "distq_alibaba_requests_total",
		"distq_alibaba_throttled_total", "distq_quota_wait_seconds", "distq_job_slots_in_use", "distq_job_slots_limit",
		"distq_distribution_duration_seconds", "asynq_queue_size", "asynq_tasks_processed_total"} {
		if worker[name] == nil {
			t.Errorf("worker does not export %s", name)
		}
	}
	acct := map[string]string{"account": "default"}
	checks := []struct {
		what string
		got  float64
		want float64
	}{
		{"submitted (api)", api["distq_distributions_submitted_total"].sum(acct), 3},
		{"succeeded (worker)", worker["distq_distributions_finished_total"].sum(map[string]string{"account": "default", "outcome": "succeeded"}), 3},
		{"failed (worker)", worker["distq_distributions_finished_total"].sum(map[string]string{"outcome": "failed"}), 0},
		{"creates OK", worker["distq_alibaba_requests_total"].sum(map[string]string{"action": "CreateProductDistributeJob", "code": "OK"}), 3},
		{"throttled", worker["distq_alibaba_throttled_total"].sum(nil), 0},
		{"durations observed", worker["distq_distribution_duration_seconds"].sum(acct), 3},
		{"slots limit", worker["distq_job_slots_limit"].sum(acct), 10},
		{"slots in use at the end", worker["distq_job_slots_in_use"].sum(acct), 0},
	}
	for _, ch := range checks {
		if ch.got != ch.want {
			t.Errorf("%s = %v, want %v", ch.what, ch.got, ch.want)
		}
	}
	// No id or product key ever becomes a label value.
	for name, f := range worker {
		for _, s := range f.samples {
			for _, v := range s.labels {
				if strings.HasPrefix(v, "a1met") || strings.HasPrefix(v, "d_") {
					t.Errorf("%s has an unbounded label value %q", name, v)
				}
			}
		}
	}
}

// Every metric the dashboard and the alert rules use (listed in
// deployments/k8scheck/metrics_known.txt, which the deployments check keeps
// in step with them) is exported by the api or the worker, and both pages
// pass `promtool check metrics` where promtool is installed.
func TestExportsWhatDeploymentsUse(t *testing.T) {
	t.Parallel()
	raw, err := os.ReadFile("../../deployments/k8scheck/metrics_known.txt")
	if err != nil {
		t.Skipf("no metrics list: %v", err)
	}
	st := startStack(t, devstack.Options{Sim: fastSim()})
	c := newAPI(t, st.APIURL, st.Token)
	// Queues exist (and asynq reports them) once a task went through.
	if d := c.waitFinal(c.submit(req("a1dash")).ID, 30*time.Second); d.State != client.StateSucceeded {
		t.Fatalf("%+v", d)
	}
	if _, err := c.Get(t.Context(), "nope"); apiError(t, err).Status != http.StatusNotFound {
		t.Fatalf("get nope: %v, want 404", err)
	}
	pages := map[string]string{"api": st.APIURL + "/metrics", "worker": st.MetricsURLs[0] + "/metrics"}
	exported := map[string]bool{}
	for _, url := range pages {
		for name := range scrape(t, url) {
			exported[name] = true
		}
	}
	for _, line := range strings.Split(string(raw), "\n") {
		name := strings.TrimSpace(line)
		if name == "" || strings.HasPrefix(name, "#") {
			continue
		}
		if !exported[name] {
			t.Errorf("%s is used by the deployments but exported by neither binary", name)
		}
	}
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Log("promtool not installed: skipping `promtool check metrics`")
		return
	}
	for what, url := range pages {
		resp, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		cmd := exec.Command(promtool, "check", "metrics")
		cmd.Stdin = strings.NewReader(string(body))
		out, err := cmd.CombinedOutput()
		if err == nil {
			continue
		}
		// asynq's collector names two gauges with _total
		// (asynq_queue_paused_total, asynq_tasks_enqueued_total): not ours.
		for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
			if line != "" && !strings.HasPrefix(line, "asynq_") {
				t.Errorf("promtool check metrics on the %s: %v\n%s", what, err, out)
				break
			}
		}
	}
}
