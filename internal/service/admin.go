package service

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/distq/distq/internal/distribution"
)

// The operators' use cases (the admin API): read where every account and
// team stands, change an account's limits and a team's weight at run time,
// pause and resume an account or one team in it. Every change is kept by
// Controls, in force on every worker within about a second, and logged
// with the operator's name.

// Controls keeps the operators' overrides of the configuration
// (internal/control's Store, adapted by internal/app).
type Controls interface {
	// Current reads the settings in force now, afresh.
	Current(ctx context.Context) (Settings, error)
	// SetLimits sets (Value > 0) or clears (Value 0) overrides of the
	// account's limits, at once, for every account of its UID.
	SetLimits(ctx context.Context, account, by string, changes []LimitChange) error
	// SetWeight sets (weight > 0) or clears (0) the override of a team's
	// weight.
	SetWeight(ctx context.Context, team, by string, weight int) error
	// SetPaused pauses or resumes an account (team "") or one team in it.
	SetPaused(ctx context.Context, account, team, by string, paused bool) error
}

// Settings are the settings in force: the configuration with the
// overrides applied, each value with its origin.
type Settings interface {
	// Limit is the account's limit (LimitCreateQPS, LimitMaxJobs).
	Limit(account, limit string) Setting
	// Weight is the team's weight.
	Weight(team string) Setting
	// AccountPause is the pause of the whole account.
	AccountPause(account string) Pause
	// TeamPause is the pause of one team in the account (apart from the
	// account's).
	TeamPause(account, team string) Pause
	// PausedTeams lists the teams paused on their own in the account.
	PausedTeams(account string) []string
	// WeightedTeams lists the teams the configuration or an override
	// gives a weight.
	WeightedTeams() []string
}

// Backlogs tells how many distributions of each team wait in an account's
// queue (the fair queue between its teams).
type Backlogs interface {
	Backlogs(ctx context.Context, uid string) (map[string]int, error)
}

// The limits an operator may override, and the bounds of an override
// (internal/control applies the same; a test in internal/app keeps them
// in step).
const (
	LimitCreateQPS = "create_qps"
	LimitMaxJobs   = "max_jobs"

	MinLimit  = 1
	MaxLimit  = 100
	MinWeight = 1
	MaxWeight = 1000
)

// Origins of a Setting.
const (
	OriginConfig   = "config"
	OriginOverride = "override"
)

// Setting is a value in force and where it comes from: OriginConfig, or
// OriginOverride with the operator who set it and when.
type Setting struct {
	Value  int
	Origin string
	By     string
	At     time.Time
}

// Pause says whether something is paused, by whom, since when.
type Pause struct {
	Paused bool
	By     string
	At     time.Time
}

// LimitChange sets one limit's override (Value 1 to 100) or clears it
// (Value 0).
type LimitChange struct {
	Limit string
	Value int
}

// AdminAccount is an account as an operator sees it: its limits and pause
// in force with their origin, its job slots and Creates, and every team.
type AdminAccount struct {
	Name string
	UID  string
	// SharedWith names the other accounts of the same UID: they share the
	// budget, and every override of this one.
	SharedWith []string
	CreateQPS  Setting
	MaxJobs    Setting
	Pause      Pause
	// SlotsInUse counts the job slots distq's distributions hold, External
	// the remote jobs made outside distq.
	SlotsInUse, External int
	// CreatesLastMinute counts the Creates sent over the last 60 s.
	CreatesLastMinute float64
	// Teams lists, by name, every team known to the api (tokens and
	// weights) and any other with work in the account.
	Teams []AdminTeam
}

// AdminTeam is one team in an account.
type AdminTeam struct {
	Team   string
	Weight Setting
	// Pause is the team's own pause in the account; Paused is true when
	// that or the account's pause holds its work.
	Pause  Pause
	Paused bool
	// Backlog counts its distributions waiting in the account's queue;
	// HasBacklog is false when that is not known (no Backlogs).
	Backlog    int
	HasBacklog bool
	// Slots counts the account's job slots its distributions hold;
	// Holders names those distributions, sorted.
	Slots   int
	Holders []string
	// CreatesLastMinute counts its Creates over the last 60 s, and Share
	// is their fraction of the account's (0 when nobody sent one).
	CreatesLastMinute float64
	Share             float64
}

// TeamWeight is a team's weight in force.
type TeamWeight struct {
	Team   string
	Weight Setting
}

// AdminAccounts returns every account as AdminAccount does, in the order
// of the configuration.
func (s *Service) AdminAccounts(ctx context.Context) ([]AdminAccount, error) {
	set, err := s.settings(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]AdminAccount, 0, len(s.d.Accounts))
	for _, a := range s.d.Accounts {
		v, err := s.adminAccount(ctx, a, set)
		if err != nil {
			return nil, err
		}
		out = append(out, *v)
	}
	return out, nil
}

// AdminAccount returns the named account as an operator sees it, or
// CodeNotFound.
func (s *Service) AdminAccount(ctx context.Context, name string) (*AdminAccount, error) {
	a, err := s.namedAccount(name)
	if err != nil {
		return nil, err
	}
	set, err := s.settings(ctx)
	if err != nil {
		return nil, err
	}
	return s.adminAccount(ctx, a, set)
}

// SetLimits applies an operator's changes of the named account's limits
// (for every account of its UID) and returns the account as it is then.
// A value outside 1 to 100 is CodeBadValue, an unknown account
// CodeNotFound.
func (s *Service) SetLimits(ctx context.Context, admin, name string, changes []LimitChange) (*AdminAccount, error) {
	a, err := s.namedAccount(name)
	if err != nil {
		return nil, err
	}
	var bad []distribution.FieldError
	for _, c := range changes {
		if c.Limit != LimitCreateQPS && c.Limit != LimitMaxJobs {
			bad = append(bad, distribution.FieldError{Field: c.Limit, Message: "unknown limit"})
		} else if c.Value != 0 && (c.Value < MinLimit || c.Value > MaxLimit) {
			bad = append(bad, distribution.FieldError{Field: c.Limit, Message: fmt.Sprintf("want a whole number from %d to %d, or null for the configured value", MinLimit, MaxLimit)})
		}
	}
	if len(changes) == 0 {
		bad = append(bad, distribution.FieldError{Field: "(body)", Message: "name create_qps or max_jobs (a number sets it, null restores the configured value)"})
	}
	if len(bad) > 0 {
		return nil, badValue(bad)
	}
	ctl, err := s.controls()
	if err != nil {
		return nil, err
	}
	if err := ctl.SetLimits(ctx, a.Name, admin, changes); err != nil {
		return nil, err
	}
	attrs := []any{"admin", admin, "account", a.Name, "uid", a.UID, "shared_with", s.sharedWith(a)}
	for _, c := range changes {
		if c.Value == 0 {
			attrs = append(attrs, c.Limit, "config")
		} else {
			attrs = append(attrs, c.Limit, c.Value)
		}
	}
	s.d.Log.Info("admin: account limits changed", attrs...)
	return s.AdminAccount(ctx, a.Name)
}

// SetPaused pauses (paused true) or resumes the named account, or with a
// team, that team in it, for an operator, and returns the account as it
// is then. Paused work stays queued. An unknown account or team is
// CodeNotFound.
func (s *Service) SetPaused(ctx context.Context, admin, name, team string, paused bool) (*AdminAccount, error) {
	a, err := s.namedAccount(name)
	if err != nil {
		return nil, err
	}
	ctl, err := s.controls()
	if err != nil {
		return nil, err
	}
	if team != "" {
		if err := s.knownTeam(ctx, team); err != nil {
			return nil, err
		}
	}
	if err := ctl.SetPaused(ctx, a.Name, team, admin, paused); err != nil {
		return nil, err
	}
	what := "admin: account resumed"
	if paused {
		what = "admin: account paused"
	}
	if team != "" {
		what = "admin: team resumed"
		if paused {
			what = "admin: team paused"
		}
	}
	s.d.Log.Info(what, "admin", admin, "account", a.Name, "uid", a.UID, "team", team, "shared_with", s.sharedWith(a))
	return s.AdminAccount(ctx, a.Name)
}

// SetWeight sets (weight 1 to 1000) or clears (weight 0) an operator's
// override of a team's weight, in every account, and returns the weight in
// force then. A weight out of bounds is CodeBadValue, an unknown team
// CodeNotFound.
func (s *Service) SetWeight(ctx context.Context, admin, team string, weight int) (*TeamWeight, error) {
	if weight != 0 && (weight < MinWeight || weight > MaxWeight) {
		return nil, badValue([]distribution.FieldError{{Field: "weight", Message: fmt.Sprintf("want a whole number from %d to %d", MinWeight, MaxWeight)}})
	}
	ctl, err := s.controls()
	if err != nil {
		return nil, err
	}
	if err := s.knownTeam(ctx, team); err != nil {
		return nil, err
	}
	if err := ctl.SetWeight(ctx, team, admin, weight); err != nil {
		return nil, err
	}
	if weight == 0 {
		s.d.Log.Info("admin: team weight restored to the configured one", "admin", admin, "team", team)
	} else {
		s.d.Log.Info("admin: team weight changed", "admin", admin, "team", team, "weight", weight)
	}
	set, err := ctl.Current(ctx)
	if err != nil {
		return nil, err
	}
	return &TeamWeight{Team: team, Weight: set.Weight(team)}, nil
}

// TeamWeights returns the weight in force of every team known to the api,
// by name.
func (s *Service) TeamWeights(ctx context.Context) ([]TeamWeight, error) {
	set, err := s.settings(ctx)
	if err != nil {
		return nil, err
	}
	teams := s.teams(set)
	out := make([]TeamWeight, 0, len(teams))
	for _, t := range teams {
		out = append(out, TeamWeight{Team: t, Weight: set.Weight(t)})
	}
	return out, nil
}

// adminAccount reads the figures of account a under the settings set.
func (s *Service) adminAccount(ctx context.Context, a Account, set Settings) (*AdminAccount, error) {
	v := &AdminAccount{Name: a.Name, UID: a.UID, SharedWith: s.sharedWith(a),
		CreateQPS: set.Limit(a.Name, LimitCreateQPS), MaxJobs: set.Limit(a.Name, LimitMaxJobs), Pause: set.AccountPause(a.Name)}
	teams := map[string]*AdminTeam{}
	get := func(t string) *AdminTeam {
		if teams[t] == nil {
			teams[t] = &AdminTeam{Team: t}
		}
		return teams[t]
	}
	for _, t := range s.teams(set) {
		get(t)
	}
	for _, t := range set.PausedTeams(a.Name) {
		get(t)
	}
	now := s.d.Now()
	total := 0.0
	if s.d.Figures != nil {
		per, err := s.d.Figures.CreatesPerMinute(ctx, a.UID, now, 2)
		if err != nil {
			return nil, err
		}
		var last map[string]float64
		last, total = lastMinute(per, now)
		for t, c := range last {
			get(t).CreatesLastMinute = c
		}
	}
	v.CreatesLastMinute = total
	slots, err := s.slotsPerTeam(ctx, a.UID)
	if err != nil {
		return nil, err
	}
	if slots != nil {
		v.SlotsInUse, v.External = slots.inUse, slots.external
		for t, n := range slots.teams {
			get(t).Slots = n
			get(t).Holders = slices.Sorted(slices.Values(slots.holders[t]))
		}
	}
	var backlog map[string]int
	if s.d.Backlogs != nil {
		if backlog, err = s.d.Backlogs.Backlogs(ctx, a.UID); err != nil {
			return nil, err
		}
		for t := range backlog {
			get(t)
		}
	}
	for _, name := range slices.Sorted(maps.Keys(teams)) {
		t := teams[name]
		t.Weight = set.Weight(name)
		t.Pause = set.TeamPause(a.Name, name)
		t.Paused = v.Pause.Paused || t.Pause.Paused
		if backlog != nil {
			t.Backlog, t.HasBacklog = backlog[name], true
		}
		if total > 0 {
			t.Share = t.CreatesLastMinute / total
		}
		v.Teams = append(v.Teams, *t)
	}
	return v, nil
}

// namedAccount returns the account of name (never the default one for
// ""), or CodeNotFound.
func (s *Service) namedAccount(name string) (Account, error) {
	for _, a := range s.d.Accounts {
		if a.Name == name && name != "" {
			return a, nil
		}
	}
	return Account{}, notFound("account", name)
}

// sharedWith names the other accounts of a's UID.
func (s *Service) sharedWith(a Account) []string {
	var out []string
	for _, b := range s.d.Accounts {
		if b.UID == a.UID && b.Name != a.Name {
			out = append(out, b.Name)
		}
	}
	return out
}

// teams lists, sorted, the teams known to the api: those of its tokens
// (Deps.Teams) and those given a weight.
func (s *Service) teams(set Settings) []string {
	out := slices.Clone(s.d.Teams)
	out = append(out, set.WeightedTeams()...)
	slices.Sort(out)
	return slices.Compact(out)
}

// knownTeam returns CodeNotFound for a team the api does not know.
func (s *Service) knownTeam(ctx context.Context, team string) error {
	set, err := s.settings(ctx)
	if err != nil {
		return err
	}
	if _, ok := slices.BinarySearch(s.teams(set), team); !ok {
		return &Error{Code: CodeNotFound, Message: fmt.Sprintf("no team %q: the teams are those of the API tokens and of DISTQ_TEAM_WEIGHTS", team), Err: distribution.ErrNotFound}
	}
	return nil
}

func (s *Service) controls() (Controls, error) {
	if s.d.Controls == nil {
		return nil, errorf(CodeUnavailable, "operator controls are not configured on this api")
	}
	return s.d.Controls, nil
}

func (s *Service) settings(ctx context.Context) (Settings, error) {
	ctl, err := s.controls()
	if err != nil {
		return nil, err
	}
	return ctl.Current(ctx)
}

func badValue(fields []distribution.FieldError) *Error {
	msg := fields[0].Field + ": " + fields[0].Message
	if len(fields) > 1 {
		msg += fmt.Sprintf(" (and %d more)", len(fields)-1)
	}
	return &Error{Code: CodeBadValue, Message: msg, Fields: fields}
}
