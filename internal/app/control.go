package app

import (
	"context"
	"log/slog"
	"slices"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/distq/distq/internal/alibaba"
	"github.com/distq/distq/internal/config"
	"github.com/distq/distq/internal/control"
	"github.com/distq/distq/internal/metrics"
	"github.com/distq/distq/internal/queue"
	"github.com/distq/distq/internal/service"
)

// The operators' overrides (internal/control): the api writes them through
// the admin use cases, every binary reads them through a View.

// controlBase is the configuration the overrides apply to.
func controlBase(cfg *config.Config) control.Base {
	b := control.Base{Weights: cfg.TeamWeights}
	for _, a := range cfg.Accounts {
		b.Accounts = append(b.Accounts, control.Account{Name: a.Name, UID: a.UID, CreateQPS: a.CreateQPS, MaxJobs: a.MaxJobs})
	}
	return b
}

// newControlView is a binary's View of the overrides, refreshed every
// refresh (0: control's default, 500 ms).
func newControlView(cfg *config.Config, rdb redis.UniversalClient, log *slog.Logger, refresh time.Duration) *control.View {
	return control.NewView(control.NewStore(rdb, controlBase(cfg)), control.ViewOptions{Refresh: refresh, Log: log.With("component", "control")})
}

// exportLimits keeps each account's limit gauges (distq_rate_limit_per_second
// of CreateProductDistributeJob, distq_job_slots_limit) at the values in
// force, read from view every 10 refreshes (at least 1 s), until ctx ends.
func exportLimits(ctx context.Context, view *control.View, cfg *config.Config, m *metrics.Metrics, refresh time.Duration) {
	// The gauges need no faster than a scrape; the hot path's reads of the
	// view refresh it on their own.
	tick := time.NewTicker(max(10*refresh, time.Second))
	defer tick.Stop()
	version := int64(-1)
	for {
		if s := view.Get(ctx); s.Version != version {
			version = s.Version
			for _, a := range cfg.Accounts {
				m.RateLimit.WithLabelValues(a.Name, alibaba.ActionCreate).Set(float64(s.CreateQPS(a.Name)))
				m.SlotsLimit.WithLabelValues(a.Name).Set(float64(s.MaxJobs(a.Name)))
				m.SetAccountLimits(a.Name, float64(s.CreateQPS(a.Name)), s.MaxJobs(a.Name))
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// ServiceControls gives the admin use cases the overrides of s.
func ServiceControls(s *control.Store) service.Controls { return serviceControls{s} }

type serviceControls struct{ s *control.Store }

func (c serviceControls) Current(ctx context.Context) (service.Settings, error) {
	snap, err := c.s.Snapshot(ctx)
	if err != nil {
		return nil, err
	}
	return settings{snap}, nil
}

func (c serviceControls) SetLimits(ctx context.Context, account, by string, changes []service.LimitChange) error {
	cs := make([]control.Change, len(changes))
	for i, ch := range changes {
		cs[i] = control.Change{Limit: control.Limit(ch.Limit), Value: ch.Value}
	}
	return c.s.SetLimits(ctx, account, by, cs...)
}

func (c serviceControls) SetWeight(ctx context.Context, team, by string, weight int) error {
	return c.s.SetWeight(ctx, team, by, weight)
}

func (c serviceControls) SetPaused(ctx context.Context, account, team, by string, paused bool) error {
	return c.s.SetPaused(ctx, account, team, by, paused)
}

// settings is a control.Snapshot as the use cases read it.
type settings struct{ s control.Snapshot }

func (s settings) Limit(account, limit string) service.Setting {
	return serviceSetting(s.s.Limit(account, control.Limit(limit)))
}
func (s settings) Weight(team string) service.Setting { return serviceSetting(s.s.TeamWeight(team)) }
func (s settings) AccountPause(account string) service.Pause {
	return service.Pause(s.s.AccountPause(account))
}
func (s settings) TeamPause(account, team string) service.Pause {
	return service.Pause(s.s.TeamPause(account, team))
}
func (s settings) PausedTeams(account string) []string { return s.s.PausedTeams(account) }
func (s settings) WeightedTeams() []string             { return s.s.WeightedTeams() }

func serviceSetting(s control.Setting) service.Setting {
	return service.Setting{Value: s.Value, Origin: string(s.Origin), By: s.By, At: s.At}
}

// serviceTeams names the teams of the api's tokens, sorted.
func serviceTeams(cfg *config.Config) []string {
	var out []string
	for _, team := range cfg.Tokens {
		out = append(out, team)
	}
	for _, team := range cfg.TokenHashes {
		out = append(out, team)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// workerControls gives the worker the settings in force (queue.Controls).
type workerControls struct{ v *control.View }

func (c workerControls) Get(ctx context.Context) queue.Settings { return c.v.Get(ctx) }

// useView makes the service's ETAs, shares and wait reasons follow the
// settings in force, read through a cached view.
func useView(d *service.Deps, v *control.View) {
	d.Weight = func(ctx context.Context, team string) int { return v.Get(ctx).Weight(team) }
	d.Limits = func(ctx context.Context, account string) (int, int) {
		s := v.Get(ctx)
		return s.CreateQPS(account), s.MaxJobs(account)
	}
	d.Paused = func(ctx context.Context, account, team string) bool { return v.Get(ctx).Paused(account, team) }
}
