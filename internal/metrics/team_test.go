package metrics_test

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/distq/distq/internal/metrics"
)

// The team label takes only the configured teams and metrics.OtherTeam,
// whatever team a record names; configured teams exist at zero before
// their first event, and a backlog update zeroes the teams it omits.
func TestTeamLabelsAreClosed(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	m := metrics.New(reg)
	m.InitTeams("main", []string{"A", "B"})
	if n := testutil.CollectAndCount(m.TeamCreates); n != 2 {
		t.Fatalf("after InitTeams: %d distq_team_creates_total series, want 2 (A and B at 0)", n)
	}
	m.AddTeamCreate("main", "A")
	m.AddTeamCreate("main", "A")
	m.AddTeamCreate("main", "B")
	for i := range 50 {
		m.AddTeamCreate("main", "gone-"+string(rune('a'+i%26)))
	}
	m.AddTeamCreate("other-account", "A") // A is configured for main only
	for _, c := range []struct {
		account, team string
		want          float64
	}{{"main", "A", 2}, {"main", "B", 1}, {"main", metrics.OtherTeam, 50}, {"other-account", metrics.OtherTeam, 1}} {
		if got := testutil.ToFloat64(m.TeamCreates.WithLabelValues(c.account, c.team)); got != c.want {
			t.Errorf("creates{%s,%s} = %v, want %v", c.account, c.team, got, c.want)
		}
	}
	if n := testutil.CollectAndCount(m.TeamCreates); n != 4 {
		t.Errorf("%d distq_team_creates_total series, want 4", n)
	}

	m.SetTeamBacklog("main", map[string]int64{"A": 300, "B": 30, "x": 2, "y": 3})
	if got := testutil.ToFloat64(m.TeamBacklog.WithLabelValues("main", metrics.OtherTeam)); got != 5 {
		t.Errorf("backlog of unconfigured teams = %v, want 5 (2+3)", got)
	}
	m.SetTeamBacklog("main", map[string]int64{"A": 290})
	for team, want := range map[string]float64{"A": 290, "B": 0, metrics.OtherTeam: 0} {
		if got := testutil.ToFloat64(m.TeamBacklog.WithLabelValues("main", team)); got != want {
			t.Errorf("backlog{main,%s} = %v, want %v", team, got, want)
		}
	}
	if n := testutil.CollectAndCount(m.TeamBacklog); n != 3 {
		t.Errorf("%d distq_team_backlog series, want 3 (A, B, %s)", n, metrics.OtherTeam)
	}

	m.SetAccountLimits("main", 2, 10)
	m.SetAccountLimits("main", 1, 8) // an operator's override
	if q, j := testutil.ToFloat64(m.AccountCreateQPS.WithLabelValues("main")), testutil.ToFloat64(m.AccountMaxJobs.WithLabelValues("main")); q != 1 || j != 8 {
		t.Errorf("effective limits = %v/s, %v jobs; want 1/s, 8 jobs", q, j)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, mf := range mfs {
		got[mf.GetName()] = true
	}
	for _, name := range []string{"distq_team_backlog", "distq_team_creates_total", "distq_account_create_qps", "distq_account_max_jobs"} {
		if !got[name] {
			t.Errorf("the registry does not export %s", name)
		}
	}
}
