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
	return &r.Distribution, nil
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
		return &r.Distribution, nil
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
			return &r.Distribution, nil
		}
		select {
		case <-changed:
		case <-timer.C:
			return &r.Distribution, nil
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
		out[i] = r.Distribution
	}
	return out, next, nil
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
	acct, _ := s.account(b.Account)
	eta, err := s.eta(ctx, acct, b.CreatedAt, open)
	if err != nil {
		return nil, err
	}
	v.ETA = &eta
	return v, nil
}

// eta is when open more distributions of acct would be done behind the
// backlog accepted before `before`: at the account's Create rate, or
// through its job slots at the recent job duration, whichever is slower.
func (s *Service) eta(ctx context.Context, acct Account, before time.Time, open int) (time.Time, error) {
	ahead, err := s.d.Store.CountOpenBefore(ctx, before)
	if err != nil {
		return time.Time{}, err
	}
	jobDur, err := s.d.Store.JobDuration(ctx, acct.UID)
	if err != nil {
		return time.Time{}, err
	}
	n := float64(ahead) + float64(open)
	secs := n / float64(max(acct.CreateQPS, 1))
	if acct.MaxJobs > 0 {
		secs = math.Max(secs, n*jobDur.Seconds()/float64(acct.MaxJobs))
	}
	return s.d.Now().Add(time.Duration(secs * float64(time.Second))).Truncate(time.Second), nil
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
