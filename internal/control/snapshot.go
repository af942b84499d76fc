package control

import (
	"encoding/json"
	"maps"
	"slices"
	"strings"
	"time"
)

// Setting is a value in force and where it comes from.
type Setting struct {
	Value  int
	Origin Origin
	// By and At say which operator set an override and when (zero for
	// OriginConfig).
	By string
	At time.Time
}

// Pause is whether something is paused, and by whom since when.
type Pause struct {
	Paused bool
	By     string
	At     time.Time
}

// base indexes the configuration.
type base struct {
	byName  map[string]Account
	weights map[string]int
}

func newBase(b Base) *base {
	out := &base{byName: map[string]Account{}, weights: map[string]int{}}
	for _, a := range b.Accounts {
		out.byName[a.Name] = a
	}
	for team, w := range b.Weights {
		out.weights[team] = w
	}
	return out
}

// snapshot builds the snapshot of the hash's fields (nil: no override).
// A field it cannot read is left out: its value is the configured one.
func (b *base) snapshot(fields map[string]string) Snapshot {
	s := Snapshot{Version: parseVersion(fields[fieldVersion]), base: b,
		limits: map[string]entry{}, weights: map[string]entry{}, pauses: map[string]entry{}}
	for f, raw := range fields {
		kind, rest, ok := strings.Cut(f, ":")
		if !ok {
			continue
		}
		var e entry
		if json.Unmarshal([]byte(raw), &e) != nil {
			continue
		}
		switch kind {
		case "limit":
			uid, l, _ := strings.Cut(rest, ":")
			if CheckLimit(Limit(l), e.Value) == nil && e.Value > 0 {
				s.limits[uid+":"+l] = e
			}
		case "weight":
			if e.Value >= MinWeight && e.Value <= MaxWeight {
				s.weights[rest] = e
			}
		case "pause":
			s.pauses[rest] = e
		}
	}
	return s
}

// Snapshot is the settings in force at one moment: the configuration with
// the operators' overrides applied. It is read-only and safe to share. The
// zero Snapshot knows no account (limits 0, nothing paused, every weight
// DefaultWeight).
type Snapshot struct {
	// Version is the overrides' version it was read at (0: none was
	// ever written).
	Version int64

	base    *base
	limits  map[string]entry // "<uid>:<limit>"
	weights map[string]entry // team
	pauses  map[string]entry // "<uid>" or "<uid>:<team>"
}

// Revision is the overrides' version: it changes whenever they do.
func (s Snapshot) Revision() int64 { return s.Version }

// CreateQPS returns the account's Create rate in force (Creates per
// second); 0 for an account the configuration does not name.
func (s Snapshot) CreateQPS(account string) int { return s.Limit(account, CreateQPS).Value }

// MaxJobs returns the account's job slots in force; 0 for an account the
// configuration does not name.
func (s Snapshot) MaxJobs(account string) int { return s.Limit(account, MaxJobs).Value }

// Limit returns the account's limit l in force and its origin; a zero
// Setting for an account the configuration does not name.
func (s Snapshot) Limit(account string, l Limit) Setting {
	a, ok := s.account(account)
	if !ok {
		return Setting{}
	}
	if e, ok := s.limits[a.UID+":"+string(l)]; ok {
		return Setting{Value: e.Value, Origin: OriginOverride, By: e.By, At: e.At}
	}
	switch l {
	case CreateQPS:
		return Setting{Value: a.CreateQPS, Origin: OriginConfig}
	case MaxJobs:
		return Setting{Value: a.MaxJobs, Origin: OriginConfig}
	}
	return Setting{}
}

// Weight returns the team's weight in force in every account's fair share
// (DefaultWeight unless configured or overridden).
func (s Snapshot) Weight(team string) int { return s.TeamWeight(team).Value }

// TeamWeight returns the team's weight in force and its origin.
func (s Snapshot) TeamWeight(team string) Setting {
	if e, ok := s.weights[team]; ok {
		return Setting{Value: e.Value, Origin: OriginOverride, By: e.By, At: e.At}
	}
	if s.base != nil {
		if w, ok := s.base.weights[team]; ok {
			return Setting{Value: w, Origin: OriginConfig}
		}
	}
	return Setting{Value: DefaultWeight, Origin: OriginConfig}
}

// Paused reports whether the team's work in the account waits for an
// operator: the account (its UID) is paused, or that team in it is.
func (s Snapshot) Paused(account, team string) bool {
	return s.AccountPause(account).Paused || s.TeamPause(account, team).Paused
}

// AccountPause returns the pause of the whole account (its UID).
func (s Snapshot) AccountPause(account string) Pause {
	a, ok := s.account(account)
	if !ok {
		return Pause{}
	}
	return pauseOf(s.pauses, a.UID)
}

// TeamPause returns the pause of one team in the account (its UID), apart
// from the account's own pause.
func (s Snapshot) TeamPause(account, team string) Pause {
	a, ok := s.account(account)
	if !ok || team == "" {
		return Pause{}
	}
	return pauseOf(s.pauses, a.UID+":"+team)
}

// PausedTeams lists, sorted, the teams paused on their own in the account.
func (s Snapshot) PausedTeams(account string) []string {
	a, ok := s.account(account)
	if !ok {
		return nil
	}
	var out []string
	for k := range s.pauses {
		if team, ok := strings.CutPrefix(k, a.UID+":"); ok {
			out = append(out, team)
		}
	}
	slices.Sort(out)
	return out
}

// WeightedTeams lists, sorted, the teams the configuration or an override
// gives a weight.
func (s Snapshot) WeightedTeams() []string {
	seen := map[string]bool{}
	for t := range s.weights {
		seen[t] = true
	}
	if s.base != nil {
		for t := range s.base.weights {
			seen[t] = true
		}
	}
	return slices.Sorted(maps.Keys(seen))
}

// Overrides counts the overrides in force.
func (s Snapshot) Overrides() int { return len(s.limits) + len(s.weights) + len(s.pauses) }

func (s Snapshot) account(name string) (Account, bool) {
	if s.base == nil {
		return Account{}, false
	}
	a, ok := s.base.byName[name]
	return a, ok
}

func pauseOf(m map[string]entry, k string) Pause {
	e, ok := m[k]
	if !ok {
		return Pause{}
	}
	return Pause{Paused: true, By: e.By, At: e.At}
}
