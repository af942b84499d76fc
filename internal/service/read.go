package service

import (
	"context"
	"errors"
	"math"
	"time"

	"github.com/distq/distq/internal/distribution"
	"github.com/distq/distq/internal/webhook"
)

// load returns team's record of id; another team's id is not found.
func (s *Service) load(ctx context.Context, team, id string) (*distribution.Record, error) {
	if !distribution.ValidID(distribution.KindDistribution, id) {
		return nil, notFound("distribution", id)
	}
	r, err := s.d.Store.Get(ctx, id)
	if errors.Is(err, distribution.ErrNotFound) || err == nil && r.Team != team {
		return nil, notFound("distribution", id)
	}
	return r, err
}

// Get returns team's distribution id, or CodeNotFound.
func (s *Service) Get(ctx context.Context, team, id string) (*distribution.Distribution, error) {
	r, err := s.load(ctx, team, id)
	if err != nil {
		return nil, err
	}
	return s.shown(ctx, r), nil
}

// shown is r as a team sees it: a queued distribution of a paused account
// or team waits for the resume (wait_reason paused), whatever its record,
// written before the pause, says.
func (s *Service) shown(ctx context.Context, r *distribution.Record) *distribution.Distribution {
	d := r.Distribution
	if d.State != distribution.StateQueued {
		return &d
	}
	switch {
	case s.d.Paused != nil && s.d.Paused(ctx, d.Account, d.Team):
		d.WaitReason = distribution.WaitPaused
	case d.WaitReason == distribution.WaitNone && r.Queue == distribution.QueueBatch && s.d.FairQueue != nil:
		// Not run yet: it waits in the account's fair queue for its
		// team's turn (its record is written only when it runs).
		d.WaitReason = distribution.WaitFairShare
	}
	return &d
}

// Await returns team's distribution id once its state differs from state
// (its current state when state is ""), or as it is after wait. Run must
// be running for changes to wake it sooner than wait. It returns ctx's
// error when ctx ends first.
func (s *Service) Await(ctx context.Context, team, id string, state distribution.State, wait time.Duration) (*distribution.Distribution, error) {
	r, err := s.load(ctx, team, id)
	if err != nil || wait == 0 {
		if err != nil {
			return nil, err
		}
		return s.shown(ctx, r), nil
	}
	if state == "" {
		state = r.State
	}
	// Watch first, then re-read: a change between the two is not missed.
	changed, stop := s.d.Changes.Watch(r.ID)
	defer stop()
	timer := time.NewTimer(wait)
	defer timer.Stop()
	for {
		if r, err = s.load(ctx, team, id); err != nil {
			return nil, err
		}
		if r.State != state {
			return s.shown(ctx, r), nil
		}
		select {
		case <-changed:
		case <-timer.C:
			return s.shown(ctx, r), nil
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// List returns one page of team's distributions in creation order that
// match f (its Team is set to team: another team's records never show),
// and the cursor of the next page ("" at the end).
func (s *Service) List(ctx context.Context, team string, f distribution.Filter) ([]distribution.Distribution, string, error) {
	f.Team = team
	recs, next, err := s.d.Store.List(ctx, f)
	if err != nil {
		return nil, "", err
	}
	out := make([]distribution.Distribution, len(recs))
	for i, r := range recs {
		out[i] = *s.shown(ctx, r)
	}
	return out, next, nil
}

// ListPage is List for a caller outside the process: it takes the cursor
// of the previous page as the API gave it ("" for the first page) and
// returns the next page's cursor in the same opaque form ("" at the end).
// A cursor that was not given for this team and filter is CodeBadCursor.
func (s *Service) ListPage(ctx context.Context, team string, f distribution.Filter, cursor string) ([]distribution.Distribution, string, error) {
	f.After = ""
	if cursor != "" {
		after, err := decodeCursor(team, f, cursor)
		if err != nil {
			return nil, "", err
		}
		f.After = after
	}
	items, next, err := s.List(ctx, team, f)
	if err != nil {
		return nil, "", err
	}
	return items, encodeCursor(team, f, next), nil
}

// FindBatch returns team's batch id, or CodeNotFound. Listing its items
// is List with Filter.BatchID set.
func (s *Service) FindBatch(ctx context.Context, team, id string) (*distribution.Batch, error) {
	b, err := s.loadBatch(ctx, team, id)
	if err != nil {
		return nil, err
	}
	return &b.Batch, nil
}

// BatchView is a batch with its counts per state, whether it is done, and
// when it should be.
type BatchView struct {
	distribution.Batch
	Counts map[distribution.State]int
	Done   bool
	// ETA is when the batch should be done, from the backlog ahead of it,
	// the account's rate and its job slots; nil when done.
	ETA *time.Time
	// Paused: an operator paused the account or the team; no ETA then.
	Paused bool
	// Share is the team's share of the account while the batch waits; nil
	// when done or without a fair queue.
	Share *Share
	// Notification is the batch's latest batch.finished event and its
	// delivery state (also while retried items run again); nil without a
	// notify_url or before the batch first finished.
	Notification *webhook.Event
}

func (s *Service) loadBatch(ctx context.Context, team, id string) (*distribution.BatchStatus, error) {
	if !distribution.ValidID(distribution.KindBatch, id) {
		return nil, notFound("batch", id)
	}
	b, err := s.d.Store.GetBatch(ctx, id)
	if errors.Is(err, distribution.ErrNotFound) || err == nil && b.Team != team {
		return nil, notFound("batch", id)
	}
	return b, err
}

// Batch returns team's batch id with its counts and ETA, or CodeNotFound.
func (s *Service) Batch(ctx context.Context, team, id string) (*BatchView, error) {
	b, err := s.loadBatch(ctx, team, id)
	if err != nil {
		return nil, err
	}
	return s.view(ctx, b)
}

func (s *Service) batchView(ctx context.Context, id string) (*BatchView, error) {
	b, err := s.d.Store.GetBatch(ctx, id)
	if err != nil {
		return nil, err
	}
	return s.view(ctx, b)
}

// view computes a batch's done flag and ETA: the distributions ahead of
// and in the batch, at the account's Create rate, or through its job slots
// at the recent job duration, whichever is slower.
func (s *Service) view(ctx context.Context, b *distribution.BatchStatus) (*BatchView, error) {
	v := &BatchView{Batch: b.Batch, Counts: b.Counts}
	size, open := 0, 0
	for st, n := range b.Counts {
		size += n
		if !st.Terminal() {
			open += n
		}
	}
	v.Size = size
	v.Done = open == 0
	ev, err := s.notification(ctx, &b.Batch)
	if err != nil {
		return nil, err
	}
	v.Notification = ev
	if v.Done {
		return v, nil
	}
	if s.d.Paused != nil && s.d.Paused(ctx, b.Account, b.Team) {
		v.Paused = true // no ETA: nothing of it is created until the resume
		return v, nil
	}
	acct, _ := s.account(b.Account)
	eta, backlogs, err := s.eta(ctx, acct, b.Team, b.CreatedAt, open)
	if err != nil {
		return nil, err
	}
	v.ETA = &eta
	if backlogs != nil {
		if v.Share, err = s.share(ctx, acct, b.Team, backlogs); err != nil {
			return nil, err
		}
	}
	return v, nil
}

// eta is when open more distributions of team on acct would be done. The
// account serves at its Create rate, or through its job slots at the
// recent job duration (JobDurationHint until one is observed), whichever
// is slower. With a fair queue, the team's own earlier items come first
// and the other teams' backlogs share the account by weight (see
// servedUntilDone); backlogs is then the fair queue's, for the team's
// share. Without one, every open distribution accepted before `before`
// is ahead.
func (s *Service) eta(ctx context.Context, acct Account, team string, before time.Time, open int) (time.Time, map[string]int, error) {
	jobDur, err := s.d.Store.JobDuration(ctx, acct.UID)
	if err != nil {
		return time.Time{}, nil, err
	}
	if jobDur <= 0 {
		jobDur = s.d.JobDurationHint
	}
	rate := float64(max(acct.CreateQPS, 1))
	if s.d.Limits != nil {
		qps, maxJobs := s.d.Limits(ctx, acct.Name)
		rate, acct.MaxJobs = float64(max(qps, 1)), maxJobs
	}
	if acct.MaxJobs > 0 && jobDur > 0 {
		rate = math.Min(rate, float64(acct.MaxJobs)/jobDur.Seconds())
	}
	if eta, backlogs, ok, err := s.sharedETA(ctx, acct, team, before, open, rate); err != nil || ok {
		return eta, backlogs, err
	}
	ahead, err := s.d.Store.CountOpenBefore(ctx, before)
	if err != nil {
		return time.Time{}, nil, err
	}
	secs := (float64(ahead) + float64(open)) / rate
	return s.d.Now().Add(time.Duration(secs * float64(time.Second))).Truncate(time.Second), nil, nil
}

// Timeline returns team's distribution id with its timeline, oldest step
// first, or CodeNotFound. Records written before distq kept timelines
// have none.
func (s *Service) Timeline(ctx context.Context, team, id string) (*distribution.Distribution, []distribution.Step, error) {
	r, err := s.load(ctx, team, id)
	if err != nil {
		return nil, nil, err
	}
	return &r.Distribution, r.Timeline, nil
}
