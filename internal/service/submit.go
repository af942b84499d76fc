package service

import (
	"context"
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
	if req.TargetAliyunID != "" && req.TargetAliyunID != acct.AliyunID {
		// The remote takes a logon name as the target account: any other
		// account's would be a cross-account distribution.
		msg := "must be the logon name of account " + strconv.Quote(acct.Name) + " (cross-account distribution is not allowed); use target_uid"
		if acct.AliyunID == "" {
			msg = "is not accepted: account " + strconv.Quote(acct.Name) + " has no logon name configured (aliyun_id); use target_uid"
		}
		return nil, domainError(&distribution.ValidationError{Fields: []distribution.FieldError{{Field: "target_aliyun_id", Message: msg}}})
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
	if err := s.checkNotify(team, req.NotifyURL); err != nil {
		return nil, err
	}
	rec.NotifyURL = req.NotifyURL
	claims, err := s.d.Store.Insert(ctx, nil, []*distribution.Record{rec})
	if err != nil {
		return nil, err
	}
	if claims[0].Existing != "" {
		if err := s.resolveOwners(ctx, claims); err != nil {
			return nil, err
		}
		return nil, duplicate(team, claims[0], rec.ProductKey, rec.TargetInstanceID)
	}
	if err := s.d.Enqueuer.Submit(ctx, []*distribution.Record{rec}); err != nil {
		// No half-written record: undo, and tell the caller to retry. The
		// undo is a compare-and-set: a worker may already run the record
		// (the task was written, the answer lost); such a record is kept.
		if _, derr := s.d.Store.DeleteIfUntouched(context.WithoutCancel(ctx), []*distribution.Record{rec}); derr != nil {
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
	// same target that made this item a duplicate (nothing was created),
	// when it is the team's own; another team's is never named.
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
		e := errorf(CodeInvalid, "items: want at least one item")
		e.Fields = []distribution.FieldError{{Field: "items", Message: "want at least one item"}}
		return e
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
	if err := s.checkNotify(team, req.Defaults.NotifyURL); err != nil {
		return nil, err
	}
	b := &distribution.Batch{ID: distribution.NewBatchID(now), Team: team, Account: acct.Name, CreatedAt: now, NotifyURL: req.Defaults.NotifyURL}
	results := make([]ItemResult, len(req.Items))
	var recs []*distribution.Record
	var idx []int
	for i, item := range req.Items {
		results[i].Index = i
		if item.Err != nil {
			results[i].Err = item.Err
			continue
		}
		if item.Request.NotifyURL != "" {
			results[i].Err = errItemNotify
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
	// The items' ids sort in item order: a batch lists in the order of its
	// items (the file's order, for distqctl).
	for j, id := range distribution.NewIDs(now, len(recs)) {
		recs[j].ID = id
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
			continue // a duplicate: answered below, once the batch is queued
		}
		results[i].ID = cl.Record.ID
		accepted = append(accepted, cl.Record)
	}
	if err := s.d.Enqueuer.Submit(ctx, accepted); err != nil {
		undo := context.WithoutCancel(ctx)
		// Compare-and-set per record, as for one submission; the batch
		// record goes only when none of its items is kept.
		kept, derr := s.d.Store.DeleteIfUntouched(undo, accepted)
		if derr == nil && len(kept) == 0 {
			derr = s.d.Store.DeleteBatch(undo, b)
		}
		if derr != nil {
			s.d.Log.Error("undo batch after failed enqueue", "batch_id", b.ID, "err", derr)
		}
		return nil, unavailable(err)
	}
	if err := s.resolveOwners(ctx, claims); err != nil {
		// Whose the active ones are is unknown: none is named.
		s.d.Log.Warn("read the active distributions of a batch's duplicates", "batch_id", b.ID, "err", err)
	}
	for j, cl := range claims {
		if cl.Record == nil {
			e := duplicate(team, cl, recs[j].ProductKey, recs[j].TargetInstanceID)
			results[idx[j]].ExistingID, results[idx[j]].Err = e.ExistingID, e
		}
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
