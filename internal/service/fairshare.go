package service

import (
	"context"
	"math"
	"time"
)

// FairQueue is the accounts' fair queues between teams (internal/quota):
// batch items wait there until their team's turn. ETAs and shares are
// computed from it.
type FairQueue interface {
	// Backlogs returns each team's batch items waiting for the account of
	// uid, queued or admitted.
	Backlogs(ctx context.Context, uid string) (map[string]int, error)
	// Ahead counts team's items queued for the account of uid in an order
	// before `before` (its earlier batches).
	Ahead(ctx context.Context, uid, team string, before time.Time) (int, error)
}

// Share is a team's share of an account while it has a backlog.
type Share struct {
	// Weight is the team's weight.
	Weight int
	// Entitled is the fraction of the account's Creates the team gets
	// while every team that has a backlog now keeps one: its weight over
	// the weights of those teams (1 when alone).
	Entitled float64
	// Recent is the fraction of the account's Creates the team sent over
	// the last minute (0 when none was sent).
	Recent float64
}

func (s *Service) weight(ctx context.Context, team string) int {
	if s.d.Weight == nil {
		return 1
	}
	return max(s.d.Weight(ctx, team), 1)
}

// share computes team's Share of acct from the fair queue's backlogs and
// the Creates of the last minute.
func (s *Service) share(ctx context.Context, acct Account, team string, backlogs map[string]int) (*Share, error) {
	sh := &Share{Weight: s.weight(ctx, team)}
	total := float64(sh.Weight)
	for t, n := range backlogs {
		if t != team && n > 0 {
			total += float64(s.weight(ctx, t))
		}
	}
	sh.Entitled = float64(sh.Weight) / total
	if s.d.Figures != nil {
		mins, err := s.d.Figures.CreatesPerMinute(ctx, acct.UID, s.d.Now(), 1)
		if err != nil {
			return nil, err
		}
		all, own := 0, 0
		for _, m := range mins {
			for t, n := range m {
				all += n
				if t == team {
					own += n
				}
			}
		}
		if all > 0 {
			sh.Recent = float64(own) / float64(all)
		}
	}
	return sh, nil
}

// demand is a team's items still to be served, and its weight.
type demand struct {
	items  float64
	weight float64
}

// servedUntilDone is how many items the account serves, all teams
// together, until own's items are all served, when every team with
// items is served in proportion to its weight and a team that runs out
// gives its share to the others (work-conserving fair share, in the
// fluid limit).
func servedUntilDone(own demand, others []demand) float64 {
	if own.items <= 0 {
		return 0
	}
	active := append([]demand{own}, others...)
	served := 0.0
	for len(active) > 0 {
		w, step := 0.0, math.Inf(1)
		for _, d := range active {
			w += d.weight
			step = math.Min(step, d.items/d.weight)
		}
		served += step * w
		next := active[:0]
		for i, d := range active {
			d.items -= step * d.weight
			if d.items > 1e-9 {
				next = append(next, d)
			} else if i == 0 {
				return served // own is done
			}
		}
		active = next
	}
	return served
}

// sharedETA is when team's n more items on acct would be done: its own
// earlier items are served first, and the others' backlogs share the
// account by weight. ok is false without a fair queue.
func (s *Service) sharedETA(ctx context.Context, acct Account, team string, before time.Time, n int, rate float64) (eta time.Time, backlogs map[string]int, ok bool, err error) {
	if s.d.FairQueue == nil {
		return time.Time{}, nil, false, nil
	}
	backlogs, err = s.d.FairQueue.Backlogs(ctx, acct.UID)
	if err != nil {
		return time.Time{}, nil, false, err
	}
	ahead, err := s.d.FairQueue.Ahead(ctx, acct.UID, team, before)
	if err != nil {
		return time.Time{}, nil, false, err
	}
	own := demand{items: float64(ahead + n), weight: float64(s.weight(ctx, team))}
	var others []demand
	for t, k := range backlogs {
		if t != team && k > 0 {
			others = append(others, demand{items: float64(k), weight: float64(s.weight(ctx, t))})
		}
	}
	secs := servedUntilDone(own, others) / rate
	return s.d.Now().Add(time.Duration(secs * float64(time.Second))).Truncate(time.Second), backlogs, true, nil
}
