package service

import (
	"context"
	"errors"
	"strconv"
	"time"

	"github.com/distq/distq/internal/distribution"
)

// MaxBatchItems bounds the items of one batch.
const MaxBatchItems = 10000

// newRecord validates a request for a team and builds its queued record.
func (s *Service) newRecord(team string, req distribution.Request, batchID, queue string, now time.Time) (*distribution.Record, error) {
	acct, ok := s.account(req.Account)
	if !ok {
		return nil, domainError(&distribution.ValidationError{Fields: []distribution.FieldError{{Field: "account", Message: "unknown account " + strconv.Quote(req.Account)}}})
	}
	if err := req.Validate(acct.UID); err != nil {
		return nil, domainError(err)
	}
	r := &distribution.Record{
		Distribution: distribution.Distribution{
			ID: distribution.NewID(now), Team: team, Account: acct.Name, BatchID: batchID,
			ProductKey: req.ProductKey, SourceInstanceID: req.SourceInstanceID, TargetInstanceID: req.TargetInstanceID,
			TargetUID: req.TargetUID, TargetAliyunID: req.TargetAliyunID,
			State: distribution.StateQueued, CreatedAt: now, UpdatedAt: now,
		},
		UID:   acct.UID,
		Queue: queue,
	}
	r.Accepted()
	return r, nil
}

// Submit accepts one distribution for team: validated, written queued and
// enqueued, or not written at all. It refuses with CodeInvalid,
// CodeDuplicate (naming the active distribution of the same product to the
// same target) or CodeUnavailable (the queue did not take it).
func (s *Service) Submit(ctx context.Context, team string, req distribution.Request) (*distribution.Distribution, error) {
	rec, err := s.newRecord(team, req, "", distribution.QueueSingle, s.d.Now())
	if err != nil {
		return nil, err
	}
	claims, err := s.d.Store.Insert(ctx, nil, []*distribution.Record{rec})
	if err != nil {
		return nil, err
	}
	if id := claims[0].Existing; id != "" {
		e := errorf(CodeDuplicate, "distribution %s of product %s to instance %s is still active; this one was not created", id, rec.ProductKey, rec.TargetInstanceID)
		e.ExistingID = id
		return nil, e
	}
	if err := s.d.Enqueuer.Submit(ctx, []*distribution.Record{rec}); err != nil {
		// No half-written record: undo, and tell the caller to retry.
		if derr := s.d.Store.Delete(context.WithoutCancel(ctx), []*distribution.Record{rec}); derr != nil {
			s.d.Log.Error("undo record after failed enqueue", "distribution_id", rec.ID, "err", derr)
		}
		return nil, unavailable(err)
	}
	s.d.Metrics.Submitted.WithLabelValues(rec.Account).Inc()
	return &rec.Distribution, nil
}

func unavailable(err error) *Error {
	return &Error{Code: CodeUnavailable, Message: "the queue is unreachable; nothing was accepted, try again", Err: err}
}

// BatchRequest is a batch: items, and defaults that fill what an item
// leaves out.
type BatchRequest struct {
	Defaults distribution.Request
	Items    []BatchItem
}

// BatchItem is one item of a batch as the front door read it.
type BatchItem struct {
	Request distribution.Request
	// Err, when set, is why the front door could not read the item (its
	// JSON, say); the item is rejected with it.
	Err error
}

// ItemResult is the outcome of one batch item: an ID, or an Err for that
// item alone.
type ItemResult struct {
	Index int
	// ID is the new distribution's id.
	ID string
	// ExistingID names the active distribution of the same product to the
	// same target that made this item a duplicate (nothing was created).
	ExistingID string
	Err        error
}

// BatchSubmitted is the answer to a batch.
type BatchSubmitted struct {
	Batch              BatchView
	Accepted, Rejected int
	Results            []ItemResult
}

// CheckBatchSize refuses a batch of n items that is empty (CodeInvalid) or
// larger than MaxBatchItems (CodeTooManyItems).
func CheckBatchSize(n int) error {
	switch {
	case n == 0:
		return errorf(CodeInvalid, "items: want at least one item")
	case n > MaxBatchItems:
		return errorf(CodeTooManyItems, "a batch holds at most %d items, got %d: split it", MaxBatchItems, n)
	}
	return nil
}

// SubmitBatch accepts the valid items of a batch for team, each validated
// and checked for duplicates on its own, and enqueues them all, or accepts
// nothing when the queue does not take them (CodeUnavailable). A batch
// without any valid item is refused with CodeInvalid and every item's
// result.
func (s *Service) SubmitBatch(ctx context.Context, team string, req BatchRequest) (*BatchSubmitted, error) {
	if err := CheckBatchSize(len(req.Items)); err != nil {
		return nil, err
	}
	now := s.d.Now()
	acct, ok := s.account(req.Defaults.Account)
	if !ok {
		return nil, domainError(&distribution.ValidationError{Fields: []distribution.FieldError{{Field: "account", Message: "unknown account"}}})
	}
	b := &distribution.Batch{ID: distribution.NewBatchID(now), Team: team, Account: acct.Name, CreatedAt: now}
	results := make([]ItemResult, len(req.Items))
	var recs []*distribution.Record
	var idx []int
	for i, item := range req.Items {
		results[i].Index = i
		if item.Err != nil {
			results[i].Err = item.Err
			continue
		}
		r := item.Request
		r.FillFrom(req.Defaults)
		rec, err := s.newRecord(team, r, b.ID, distribution.QueueBatch, now)
		if err != nil {
			results[i].Err = err
			continue
		}
		recs = append(recs, rec)
		idx = append(idx, i)
	}
	if len(recs) == 0 {
		e := errorf(CodeInvalid, "no item of the batch is valid; nothing was created")
		e.Items = results
		return nil, e
	}
	claims, err := s.d.Store.Insert(ctx, b, recs)
	if err != nil {
		return nil, err
	}
	var accepted []*distribution.Record
	for j, cl := range claims {
		i := idx[j]
		if cl.Record == nil {
			results[i].ExistingID = cl.Existing
			results[i].Err = &Error{Code: CodeDuplicate, ExistingID: cl.Existing,
				Message: "distribution " + cl.Existing + " of the same product to the same instance is still active"}
			continue
		}
		results[i].ID = cl.Record.ID
		accepted = append(accepted, cl.Record)
	}
	if err := s.d.Enqueuer.Submit(ctx, accepted); err != nil {
		undo := context.WithoutCancel(ctx)
		if derr := errors.Join(s.d.Store.Delete(undo, accepted), s.d.Store.DeleteBatch(undo, b)); derr != nil {
			s.d.Log.Error("undo batch after failed enqueue", "batch_id", b.ID, "err", derr)
		}
		return nil, unavailable(err)
	}
	s.d.Metrics.Submitted.WithLabelValues(acct.Name).Add(float64(len(accepted)))
	// The batch record was written with Size 0; its size is what the
	// counts say, so the view derives it.
	view, err := s.batchView(ctx, b.ID)
	if err != nil {
		return nil, err
	}
	return &BatchSubmitted{Batch: *view, Accepted: len(accepted), Rejected: len(req.Items) - len(accepted), Results: results}, nil
}
