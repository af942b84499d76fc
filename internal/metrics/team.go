package metrics

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// OtherTeam is the team label of work whose team is not among the teams
// given to InitTeams for its account (a team removed from the
// configuration whose work is still queued, or a process given no team
// list). It cannot be a team's name, which is made of A-Z a-z 0-9 . _ -
// only. With it the team label is a closed set bounded by configuration,
// whatever team a record names.
const OtherTeam = "(other)"

// HELP texts of the per-team metrics and of the account's effective limits.
const (
	TeamBacklogHelp = "Distributions of the team waiting for the account (queued, no Create sent yet), per account and team. " +
		"Shared state: every worker exports the same value, so aggregate with max(), never sum()."
	TeamCreatesHelp = "CreateProductDistributeJob calls sent for the team's distributions, per account and team (every answer code)."
	TeamPausedHelp  = "1 while an operator has paused the team on the account (or the whole account), else 0, per account and team. " +
		"Shared state: aggregate with max()."
	CreateQPSHelp = "The account's effective Create rate per second: DISTQ_CREATE_QPS, or an operator's override at run time."
	MaxJobsHelp   = "The account's effective limit of distribution jobs: DISTQ_MAX_JOBS, or an operator's override at run time."
)

// teamSets are the configured teams of each account, the only values of a
// team label besides OtherTeam.
type teamSets struct {
	mu    sync.RWMutex
	teams map[string]map[string]bool // account → team → configured
	other map[string]bool            // account → its OtherTeam backlog series exists
}

func (m *Metrics) newTeamMetrics() {
	m.TeamBacklog = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "distq_team_backlog", Help: TeamBacklogHelp,
	}, []string{"account", "team"})
	m.TeamCreates = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "distq_team_creates_total", Help: TeamCreatesHelp,
	}, []string{"account", "team"})
	m.TeamPaused = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "distq_team_paused", Help: TeamPausedHelp,
	}, []string{"account", "team"})
	m.AccountCreateQPS = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "distq_account_create_qps", Help: CreateQPSHelp,
	}, []string{"account"})
	m.AccountMaxJobs = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "distq_account_max_jobs", Help: MaxJobsHelp,
	}, []string{"account"})
	m.teamSets = &teamSets{teams: map[string]map[string]bool{}, other: map[string]bool{}}
}

// InitTeams records the configured teams of an account and creates their
// series at zero, so dashboards and alerts see every team before its first
// event (DistqTeamStarved compares a team's Creates with the account's).
// Call it at start-up for each account with the configuration's teams;
// calling it again adds teams.
func (m *Metrics) InitTeams(account string, teams []string) {
	s := m.teamSets
	s.mu.Lock()
	set := s.teams[account]
	if set == nil {
		set = map[string]bool{}
		s.teams[account] = set
	}
	for _, team := range teams {
		set[team] = true
	}
	s.mu.Unlock()
	for _, team := range teams {
		m.TeamBacklog.WithLabelValues(account, team)
		m.TeamCreates.WithLabelValues(account, team)
		m.TeamPaused.WithLabelValues(account, team)
	}
}

// SetTeamsPaused sets distq_team_paused of every configured team of
// account from paused (team → an operator paused it, or its account).
func (m *Metrics) SetTeamsPaused(account string, paused func(team string) bool) {
	s := m.teamSets
	s.mu.RLock()
	configured := make([]string, 0, len(s.teams[account]))
	for team := range s.teams[account] {
		configured = append(configured, team)
	}
	s.mu.RUnlock()
	for _, team := range configured {
		v := 0.0
		if paused(team) {
			v = 1
		}
		m.TeamPaused.WithLabelValues(account, team).Set(v)
	}
}

// TeamLabel is the team label of team's work on account: team itself when
// InitTeams named it for the account, OtherTeam otherwise.
func (m *Metrics) TeamLabel(account, team string) string {
	s := m.teamSets
	s.mu.RLock()
	ok := s.teams[account][team]
	s.mu.RUnlock()
	if ok {
		return team
	}
	return OtherTeam
}

// AddTeamCreate counts one CreateProductDistributeJob call sent for a
// distribution of team on account (distq_team_creates_total).
func (m *Metrics) AddTeamCreate(account, team string) {
	m.TeamCreates.WithLabelValues(account, m.TeamLabel(account, team)).Inc()
}

// SetTeamBacklog sets distq_team_backlog of every configured team of
// account from backlog (team → distributions waiting): a configured team
// missing from backlog is set to 0; teams not configured are added up
// under OtherTeam, whose series, once it exists, is set to 0 when none is
// left.
func (m *Metrics) SetTeamBacklog(account string, backlog map[string]int64) {
	s := m.teamSets
	s.mu.Lock()
	configured := make([]string, 0, len(s.teams[account]))
	for team := range s.teams[account] {
		configured = append(configured, team)
	}
	var other int64
	for team, n := range backlog {
		if !s.teams[account][team] {
			other += n
			s.other[account] = true
		}
	}
	setOther := s.other[account]
	s.mu.Unlock()
	for _, team := range configured {
		m.TeamBacklog.WithLabelValues(account, team).Set(float64(backlog[team]))
	}
	if setOther {
		m.TeamBacklog.WithLabelValues(account, OtherTeam).Set(float64(other))
	}
}

// SetAccountLimits sets the account's effective limits
// (distq_account_create_qps, distq_account_max_jobs): the configured ones
// at start-up, then each operator change.
func (m *Metrics) SetAccountLimits(account string, createQPS float64, maxJobs int) {
	m.AccountCreateQPS.WithLabelValues(account).Set(createQPS)
	m.AccountMaxJobs.WithLabelValues(account).Set(float64(maxJobs))
}
