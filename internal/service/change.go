package service

import (
	"context"
	"errors"

	"github.com/distq/distq/internal/distribution"
)

// Cancel cancels team's queued distribution id. It refuses with
// CodeNotFound, or CodeInvalidState when the distribution is not queued:
// the cancel and the worker's move to submitting are one compare-and-set,
// so a canceled distribution never has a Create sent.
func (s *Service) Cancel(ctx context.Context, team, id string) (*distribution.Distribution, error) {
	r, err := s.load(ctx, team, id)
	if err != nil {
		return nil, err
	}
	if r, err = s.cancel(ctx, r.ID); err != nil {
		return nil, err
	}
	return &r.Distribution, nil
}

func (s *Service) cancel(ctx context.Context, id string) (*distribution.Record, error) {
	now := s.d.Now()
	r, err := s.d.Store.Update(ctx, id, func(r *distribution.Record) error { return r.Cancel(now) })
	if err != nil {
		return nil, s.updateError(err, id)
	}
	s.d.Metrics.Finished.WithLabelValues(r.Account, string(distribution.StateCanceled)).Inc()
	if s.d.Canceler != nil {
		_ = s.d.Canceler(ctx, r) // best effort: the worker skips a canceled record anyway
	}
	return r, nil
}

// updateError turns the domain's refusals of an update into *Error.
func (s *Service) updateError(err error, id string) error {
	if errors.Is(err, distribution.ErrNotFound) {
		return notFound("distribution", id)
	}
	return domainError(err)
}

// Retry puts team's failed distribution id back in the queue as new. It
// refuses with CodeNotFound, CodeInvalidState when it is not failed, or
// CodeDuplicate when another distribution of the same product to the same
// target is active (named only when it is the team's own).
func (s *Service) Retry(ctx context.Context, team, id string) (*distribution.Distribution, error) {
	r, err := s.load(ctx, team, id)
	if err != nil {
		return nil, err
	}
	if r, err = s.retry(ctx, r); err != nil {
		return nil, err
	}
	return &r.Distribution, nil
}

func (s *Service) retry(ctx context.Context, r *distribution.Record) (*distribution.Record, error) {
	if owner, err := s.d.Store.ActiveOwner(ctx, r.UID, r.ProductKey, r.TargetInstanceID); err != nil {
		return nil, err
	} else if owner != "" && owner != r.ID {
		claims := []distribution.Claim{{Existing: owner}}
		if err := s.resolveOwners(ctx, claims); err != nil {
			return nil, err
		}
		return nil, duplicate(r.Team, claims[0], r.ProductKey, r.TargetInstanceID)
	}
	id := r.ID
	r, err := s.d.Store.Update(ctx, id, func(r *distribution.Record) error { return r.Retry() })
	if err != nil {
		return nil, s.updateError(err, id)
	}
	if err := s.d.Enqueuer.Submit(ctx, []*distribution.Record{r}); err != nil {
		return nil, err // the reconciler enqueues it later: it is open
	}
	return r, nil
}

// BatchActionResult is the outcome of a batch cancel or retry.
type BatchActionResult struct {
	BatchID string
	// Changed counts the items changed, Affected lists their ids.
	Changed  int
	Affected []string
	// Skipped counts the items that were in the state but changed, expired
	// or met an active duplicate before the operation reached them.
	Skipped int
}

// CancelBatch cancels every queued item of team's batch id. It refuses
// with CodeNotFound, or CodeInvalidState when no item is queued.
func (s *Service) CancelBatch(ctx context.Context, team, id string) (*BatchActionResult, error) {
	return s.batchAction(ctx, team, id, distribution.StateQueued, func(ctx context.Context, r *distribution.Record) error {
		_, err := s.cancel(ctx, r.ID)
		return err
	})
}

// RetryBatch retries every failed item of team's batch id. It refuses with
// CodeNotFound, or CodeInvalidState when no item failed.
func (s *Service) RetryBatch(ctx context.Context, team, id string) (*BatchActionResult, error) {
	return s.batchAction(ctx, team, id, distribution.StateFailed, func(ctx context.Context, r *distribution.Record) error {
		_, err := s.retry(ctx, r)
		return err
	})
}

// batchAction applies fn to every item of a batch in state from. An item
// that fn refuses because of its state, an active duplicate or because it
// expired (it changed meanwhile) is skipped; any other error stops the action.
func (s *Service) batchAction(ctx context.Context, team, id string, from distribution.State, fn func(context.Context, *distribution.Record) error) (*BatchActionResult, error) {
	b, err := s.loadBatch(ctx, team, id)
	if err != nil {
		return nil, err
	}
	ids, err := s.d.Store.BatchItemIDs(ctx, b.ID)
	if err != nil {
		return nil, err
	}
	res := &BatchActionResult{BatchID: b.ID, Affected: []string{}}
	for start := 0; start < len(ids); start += 500 {
		recs, err := s.d.Store.GetMany(ctx, ids[start:min(start+500, len(ids))])
		if err != nil {
			return nil, err
		}
		for _, r := range recs {
			if r.State != from {
				continue
			}
			if err := fn(ctx, r); err != nil {
				if IsCode(err, CodeInvalidState) || IsCode(err, CodeDuplicate) || IsCode(err, CodeNotFound) {
					res.Skipped++
					continue
				}
				return nil, err
			}
			res.Changed++
			res.Affected = append(res.Affected, r.ID)
		}
	}
	if res.Changed == 0 {
		return nil, errorf(CodeInvalidState, "no distribution of batch %s is %s", b.ID, from)
	}
	return res, nil
}
