// Package control keeps the operators' run-time overrides of distq's
// configuration in Redis: an account's limits (create_qps, max_jobs), a
// team's weight in the fair share of an account, and pauses of a whole
// account or of one team in one account.
//
// Every override lives in one Redis hash (Key) beside a version that every
// write bumps in the same transaction, so a reader learns whether anything
// changed with one HGET. The api writes through a Store (the admin routes);
// each worker reads through a View, a snapshot refreshed at most every
// 500 ms, so an override is in force on every worker within about a second
// without the hot path paying more than one cheap read per refresh.
//
// The quota is per account UID (docs/QUOTA.md): accounts that share a UID
// share one budget and one queue, so an override of one applies to every
// account of its UID. Values not overridden come from the configuration
// (Base); every value a Snapshot gives says where it came from (Origin).
package control

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Key is the Redis hash of every override. Its fields:
//
//	version                  bumped by every write
//	limit:<uid>:<limit>      {"value":N,"by":…,"at":…}
//	weight:<team>            {"value":N,"by":…,"at":…}
//	pause:<uid>              {"by":…,"at":…}: the whole account
//	pause:<uid>:<team>       {"by":…,"at":…}: one team of it
const Key = "distq:control"

const fieldVersion = "version"

// Limit names an account limit an operator may override.
type Limit string

// The limits an operator may override, and their bounds: a live change
// within what the remote allows (2 Creates per second and 10 jobs per
// account by default), with room for accounts granted more.
const (
	CreateQPS Limit = "create_qps"
	MaxJobs   Limit = "max_jobs"

	MinLimit = 1
	MaxLimit = 100
)

// Limits lists every Limit.
var Limits = []Limit{CreateQPS, MaxJobs}

// The bounds of a team's weight, and the weight of a team neither the
// configuration nor an operator gave one.
const (
	MinWeight     = 1
	MaxWeight     = 1000
	DefaultWeight = 1
)

// Origin says where a value in force comes from.
type Origin string

// Origins of a value.
const (
	// OriginConfig: the configuration (the accounts, DISTQ_TEAM_WEIGHTS),
	// or the default weight of a team it does not name.
	OriginConfig Origin = "config"
	// OriginOverride: an operator's override, kept in Redis.
	OriginOverride Origin = "override"
)

// Errors of the writes; each is wrapped with the details.
var (
	// ErrUnknownAccount: no configured account has the name.
	ErrUnknownAccount = errors.New("control: unknown account")
	// ErrInvalid: a value outside its bounds, an unknown limit, or a team
	// name that is not 1 to 64 characters of [A-Za-z0-9._-].
	ErrInvalid = errors.New("control: invalid value")
)

// Account is what the overrides need of a configured account.
type Account struct {
	Name string
	UID  string
	// CreateQPS and MaxJobs are the configured limits.
	CreateQPS int
	MaxJobs   int
}

// Base is the configuration the overrides apply to.
type Base struct {
	Accounts []Account
	// Weights are the configured weights of teams (DISTQ_TEAM_WEIGHTS).
	Weights map[string]int
}

// Store reads and writes the overrides. It is safe for concurrent use.
type Store struct {
	rdb  redis.UniversalClient
	base *base
	now  func() time.Time
}

// NewStore returns a Store on rdb for the configuration b.
func NewStore(rdb redis.UniversalClient, b Base) *Store {
	return &Store{rdb: rdb, base: newBase(b), now: func() time.Time { return time.Now().UTC() }}
}

// entry is the stored value of an override.
type entry struct {
	Value int       `json:"value,omitempty"`
	By    string    `json:"by"`
	At    time.Time `json:"at"`
}

// Change is one change of an account limit: Value sets the override, 0
// clears it (the configured value is in force again).
type Change struct {
	Limit Limit
	Value int
}

// SetLimits applies changes to the account's limits at once (one version),
// for every account of its UID. by names the operator.
func (s *Store) SetLimits(ctx context.Context, account, by string, changes ...Change) error {
	a, ok := s.base.byName[account]
	if !ok {
		return fmt.Errorf("%w %q", ErrUnknownAccount, account)
	}
	if len(changes) == 0 {
		return fmt.Errorf("%w: no limit to change", ErrInvalid)
	}
	for _, c := range changes {
		if err := CheckLimit(c.Limit, c.Value); err != nil {
			return err
		}
	}
	return s.write(ctx, func(p redis.Pipeliner) error {
		for _, c := range changes {
			f := limitField(a.UID, c.Limit)
			if c.Value == 0 {
				p.HDel(ctx, Key, f)
				continue
			}
			if err := s.set(ctx, p, f, entry{Value: c.Value, By: by}); err != nil {
				return err
			}
		}
		return nil
	})
}

// SetWeight sets a team's weight in every account (0 clears the override:
// the configured weight, or 1, is in force again). by names the operator.
func (s *Store) SetWeight(ctx context.Context, team, by string, weight int) error {
	if err := CheckTeam(team); err != nil {
		return err
	}
	if weight != 0 && (weight < MinWeight || weight > MaxWeight) {
		return fmt.Errorf("%w: weight %d: want %d to %d", ErrInvalid, weight, MinWeight, MaxWeight)
	}
	return s.write(ctx, func(p redis.Pipeliner) error {
		if weight == 0 {
			p.HDel(ctx, Key, weightField(team))
			return nil
		}
		return s.set(ctx, p, weightField(team), entry{Value: weight, By: by})
	})
}

// SetPaused pauses (paused true) or resumes an account's UID, or, with a
// team, that team in it. An account's pause and its teams' pauses are
// separate: resuming the account leaves a team paused on its own still
// paused. by names the operator.
func (s *Store) SetPaused(ctx context.Context, account, team, by string, paused bool) error {
	a, ok := s.base.byName[account]
	if !ok {
		return fmt.Errorf("%w %q", ErrUnknownAccount, account)
	}
	if team != "" {
		if err := CheckTeam(team); err != nil {
			return err
		}
	}
	f := pauseField(a.UID, team)
	return s.write(ctx, func(p redis.Pipeliner) error {
		if !paused {
			p.HDel(ctx, Key, f)
			return nil
		}
		return s.set(ctx, p, f, entry{By: by})
	})
}

// Snapshot reads every override afresh.
func (s *Store) Snapshot(ctx context.Context) (Snapshot, error) {
	all, err := s.rdb.HGetAll(ctx, Key).Result()
	if err != nil {
		return Snapshot{}, fmt.Errorf("control: read overrides: %w", err)
	}
	return s.base.snapshot(all), nil
}

// Version returns the version of the overrides: 0 before the first write.
func (s *Store) Version(ctx context.Context) (int64, error) {
	v, err := s.rdb.HGet(ctx, Key, fieldVersion).Int64()
	if errors.Is(err, redis.Nil) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("control: read version: %w", err)
	}
	return v, nil
}

// Base returns the configuration-only snapshot: no override.
func (s *Store) Base() Snapshot { return s.base.snapshot(nil) }

// write runs fn's commands and bumps the version, in one transaction.
func (s *Store) write(ctx context.Context, fn func(p redis.Pipeliner) error) error {
	_, err := s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		if err := fn(p); err != nil {
			return err
		}
		p.HIncrBy(ctx, Key, fieldVersion, 1)
		return nil
	})
	if err != nil {
		return fmt.Errorf("control: write overrides: %w", err)
	}
	return nil
}

func (s *Store) set(ctx context.Context, p redis.Pipeliner, field string, e entry) error {
	e.At = s.now()
	raw, err := json.Marshal(e)
	if err != nil {
		return err
	}
	p.HSet(ctx, Key, field, raw)
	return nil
}

// CheckLimit refuses an unknown limit or a value outside MinLimit to
// MaxLimit other than 0 (which clears an override).
func CheckLimit(l Limit, value int) error {
	if l != CreateQPS && l != MaxJobs {
		return fmt.Errorf("%w: unknown limit %q", ErrInvalid, l)
	}
	if value != 0 && (value < MinLimit || value > MaxLimit) {
		return fmt.Errorf("%w: %s %d: want %d to %d", ErrInvalid, l, value, MinLimit, MaxLimit)
	}
	return nil
}

// CheckTeam refuses a team name that is not 1 to 64 characters of
// [A-Za-z0-9._-], the rule of the configuration's team names: a ':' would
// make two fields of Key collide.
func CheckTeam(team string) error {
	ok := team != "" && len(team) <= 64
	for i := 0; ok && i < len(team); i++ {
		b := team[i]
		ok = 'a' <= b && b <= 'z' || 'A' <= b && b <= 'Z' || '0' <= b && b <= '9' || b == '.' || b == '_' || b == '-'
	}
	if !ok {
		return fmt.Errorf("%w: team %q: want 1 to 64 characters of A-Z a-z 0-9 . _ -", ErrInvalid, team)
	}
	return nil
}

func limitField(uid string, l Limit) string { return "limit:" + uid + ":" + string(l) }
func weightField(team string) string        { return "weight:" + team }
func pauseField(uid, team string) string {
	if team == "" {
		return "pause:" + uid
	}
	return "pause:" + uid + ":" + team
}

// parseVersion reads the version field of a hash read whole ("" is 0).
func parseVersion(s string) int64 {
	n, _ := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
	return n
}
