package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/distq/distq/internal/distribution"
	"github.com/distq/distq/internal/queue"
	"github.com/distq/distq/internal/store"
)

// batchRequest is a batch: items, and top-level fields that fill what an
// item leaves out.
type batchRequest struct {
	distribution.Request
	Items []json.RawMessage `json:"items"`
}

// ItemResult is the outcome of one batch item.
type ItemResult struct {
	Index int `json:"index"`
	// ID is the new distribution's id.
	ID string `json:"id,omitempty"`
	// ExistingID names the active distribution of the same product to the
	// same target that made this item a duplicate (nothing was created).
	ExistingID string `json:"existing_id,omitempty"`
	Error      *Error `json:"error,omitempty"`
}

// BatchView is a batch as the API shows it.
type BatchView struct {
	distribution.Batch
	Counts map[distribution.State]int `json:"counts"`
	Done   bool                       `json:"done"`
	// ETA is when the batch should be done, from the backlog ahead of it,
	// the account's rate and its job slots; absent when done.
	ETA *time.Time `json:"eta,omitempty"`
}

type batchCreated struct {
	Batch    BatchView    `json:"batch"`
	Accepted int          `json:"accepted"`
	Rejected int          `json:"rejected"`
	Results  []ItemResult `json:"results"`
}

func itemError(err error) *Error {
	var ve *distribution.ValidationError
	if errors.As(err, &ve) {
		return validationError(ve)
	}
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return errorf(http.StatusUnprocessableEntity, "invalid_item", "%v", err)
}

func (s *server) createBatch(c echo.Context) error {
	body, err := readBatch(c)
	if err != nil {
		return err
	}
	switch {
	case len(body.Items) == 0:
		return errorf(http.StatusUnprocessableEntity, "validation_failed", "items: want at least one item")
	case len(body.Items) > MaxBatchItems:
		return errorf(http.StatusRequestEntityTooLarge, "too_many_items", "a batch holds at most %d items, got %d: split it", MaxBatchItems, len(body.Items))
	}
	return s.idempotent(c, body.Raw, func() (int, any, error) {
		team := teamOf(c)
		now := s.now()
		acct, ok := s.Config.Account(body.Defaults.Account)
		if !ok {
			return 0, nil, validationError(&distribution.ValidationError{Fields: []distribution.FieldError{{Field: "account", Message: "unknown account"}}})
		}
		b := &distribution.Batch{ID: store.NewBatchID(now), Team: team, Account: acct.Name, CreatedAt: now}
		results := make([]ItemResult, len(body.Items))
		var recs []*store.Record
		var idx []int
		for i, item := range body.Items {
			results[i].Index = i
			if body.ItemErrors[i] != nil {
				results[i].Error = body.ItemErrors[i]
				continue
			}
			item.FillFrom(body.Defaults)
			rec, err := s.newRecord(team, item, b.ID, queue.QueueBatch, now)
			if err != nil {
				results[i].Error = itemError(err)
				continue
			}
			recs = append(recs, rec)
			idx = append(idx, i)
		}
		if len(recs) == 0 {
			e := errorf(http.StatusUnprocessableEntity, "validation_failed", "no item of the batch is valid; nothing was created")
			for _, r := range results {
				e.Details = append(e.Details, r)
			}
			return 0, nil, e
		}
		ctx := c.Request().Context()
		claims, err := s.Store.Insert(ctx, b, recs)
		if err != nil {
			return 0, nil, err
		}
		var accepted []*store.Record
		for j, cl := range claims {
			i := idx[j]
			if cl.Record == nil {
				results[i].ExistingID = cl.Existing
				results[i].Error = errorf(http.StatusConflict, "duplicate_active", "distribution %s of the same product to the same instance is still active", cl.Existing)
				continue
			}
			results[i].ID = cl.Record.ID
			accepted = append(accepted, cl.Record)
		}
		if err := s.Enqueuer.Submit(ctx, accepted); err != nil {
			undo := context.WithoutCancel(ctx)
			if derr := errors.Join(s.Store.Delete(undo, accepted), s.Store.DeleteBatch(undo, b)); derr != nil {
				s.Log.Error("undo batch after failed enqueue", "batch_id", b.ID, "err", derr)
			}
			return 0, nil, errorf(http.StatusServiceUnavailable, "unavailable", "the queue is unreachable; nothing was accepted, try again")
		}
		s.Metrics.Submitted.WithLabelValues(acct.Name).Add(float64(len(accepted)))
		b.Size = len(accepted)
		// The batch record was written with Size 0; its size is what the
		// counts say, so the view derives it.
		view, err := s.batchView(ctx, b.ID)
		if err != nil {
			return 0, nil, err
		}
		c.Response().Header().Set(echo.HeaderLocation, "/v1/batches/"+b.ID)
		return http.StatusAccepted, batchCreated{Batch: *view, Accepted: len(accepted), Rejected: len(body.Items) - len(accepted), Results: results}, nil
	})
}

func (s *server) loadBatch(c echo.Context) (*store.BatchStatus, error) {
	id := c.Param("id")
	if !store.ValidID('b', id) {
		return nil, notFound("batch", id)
	}
	b, err := s.Store.GetBatch(c.Request().Context(), id)
	if errors.Is(err, store.ErrNotFound) || err == nil && b.Team != teamOf(c) {
		return nil, notFound("batch", id)
	}
	return b, err
}

func (s *server) batchView(ctx context.Context, id string) (*BatchView, error) {
	b, err := s.Store.GetBatch(ctx, id)
	if err != nil {
		return nil, err
	}
	return s.view(ctx, b)
}

// view computes a batch's done flag and ETA: the distributions ahead of
// and in the batch, at the account's Create rate, or through its job slots
// at the recent job duration, whichever is slower.
func (s *server) view(ctx context.Context, b *store.BatchStatus) (*BatchView, error) {
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
	if v.Done {
		return v, nil
	}
	ahead, err := s.Store.CountOpenBefore(ctx, b.CreatedAt)
	if err != nil {
		return nil, err
	}
	acct := s.accountOf(b.Account)
	jobDur, err := s.Store.JobDuration(ctx, acct.UID)
	if err != nil {
		return nil, err
	}
	n := float64(ahead) + float64(open)
	secs := n / float64(acct.CreateQPS)
	if acct.MaxJobs > 0 {
		secs = math.Max(secs, n*jobDur.Seconds()/float64(acct.MaxJobs))
	}
	eta := s.now().Add(time.Duration(secs * float64(time.Second))).Truncate(time.Second)
	v.ETA = &eta
	return v, nil
}

func (s *server) getBatch(c echo.Context) error {
	b, err := s.loadBatch(c)
	if err != nil {
		return err
	}
	v, err := s.view(c.Request().Context(), b)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, v)
}

func (s *server) listBatchDistributions(c echo.Context) error {
	b, err := s.loadBatch(c)
	if err != nil {
		return err
	}
	return s.list(c, b.ID)
}

// batchActionResult is the answer of a batch cancel or retry.
type batchActionResult struct {
	BatchID  string   `json:"batch_id"`
	Changed  int      `json:"changed"`
	Skipped  int      `json:"skipped"`
	Affected []string `json:"affected"`
}

func (s *server) cancelBatch(c echo.Context) error {
	return s.batchAction(c, distribution.StateQueued, func(ctx context.Context, r *store.Record) error {
		_, err := s.cancel(ctx, r.ID)
		return err
	})
}

func (s *server) retryBatch(c echo.Context) error {
	return s.batchAction(c, distribution.StateFailed, func(ctx context.Context, r *store.Record) error {
		_, err := s.retry(ctx, r)
		return err
	})
}

// batchAction applies fn to every item of a batch in state from; items that
// changed state meanwhile are skipped. It answers 409 when no item was in
// that state.
func (s *server) batchAction(c echo.Context, from distribution.State, fn func(context.Context, *store.Record) error) error {
	b, err := s.loadBatch(c)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	ids, err := s.Store.BatchItemIDs(ctx, b.ID)
	if err != nil {
		return err
	}
	res := batchActionResult{BatchID: b.ID, Affected: []string{}}
	for start := 0; start < len(ids); start += 500 {
		recs, err := s.Store.GetMany(ctx, ids[start:min(start+500, len(ids))])
		if err != nil {
			return err
		}
		for _, r := range recs {
			if r.State != from {
				continue
			}
			if err := fn(ctx, r); err != nil {
				var e *Error
				if errors.As(err, &e) && e.Status == http.StatusConflict {
					res.Skipped++
					continue
				}
				return err
			}
			res.Changed++
			res.Affected = append(res.Affected, r.ID)
		}
	}
	if res.Changed == 0 {
		return errorf(http.StatusConflict, "invalid_state", "no distribution of batch %s is %s", b.ID, from)
	}
	return c.JSON(http.StatusOK, res)
}
