package httpapi

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/labstack/echo/v4"

	"github.com/distq/distq/internal/config"
	"github.com/distq/distq/internal/distribution"
	"github.com/distq/distq/internal/queue"
	"github.com/distq/distq/internal/store"
)

// newRecord validates a request for a team and builds its record.
func (s *server) newRecord(team string, req distribution.Request, batchID, q string, now time.Time) (*store.Record, error) {
	acct, ok := s.Config.Account(req.Account)
	if !ok {
		return nil, &distribution.ValidationError{Fields: []distribution.FieldError{{Field: "account", Message: "unknown account " + strconv.Quote(req.Account)}}}
	}
	if err := req.Validate(acct.UID); err != nil {
		return nil, err
	}
	return &store.Record{
		Distribution: distribution.Distribution{
			ID: store.NewDistributionID(now), Team: team, Account: acct.Name, BatchID: batchID,
			ProductKey: req.ProductKey, SourceInstanceID: req.SourceInstanceID, TargetInstanceID: req.TargetInstanceID,
			TargetUID: req.TargetUID, TargetAliyunID: req.TargetAliyunID,
			State: distribution.StateQueued, CreatedAt: now, UpdatedAt: now,
		},
		UID:   acct.UID,
		Queue: q,
	}, nil
}

func (s *server) accountOf(name string) config.Account {
	a, _ := s.Config.Account(name)
	return a
}

func (s *server) createDistribution(c echo.Context) error {
	var req distribution.Request
	raw, err := readJSON(c, &req)
	if err != nil {
		return err
	}
	return s.idempotent(c, raw, func() (int, any, error) {
		team := teamOf(c)
		rec, err := s.newRecord(team, req, "", queue.QueueSingle, s.now())
		if err != nil {
			var ve *distribution.ValidationError
			if errors.As(err, &ve) {
				return 0, nil, validationError(ve)
			}
			return 0, nil, err
		}
		ctx := c.Request().Context()
		claims, err := s.Store.Insert(ctx, nil, []*store.Record{rec})
		if err != nil {
			return 0, nil, err
		}
		if id := claims[0].Existing; id != "" {
			e := errorf(http.StatusConflict, "duplicate_active",
				"distribution %s of product %s to instance %s is still active; this one was not created", id, rec.ProductKey, rec.TargetInstanceID)
			e.Details = []any{map[string]string{"existing_id": id}}
			c.Response().Header().Set(echo.HeaderLocation, "/v1/distributions/"+id)
			return 0, nil, e
		}
		if err := s.Enqueuer.Submit(ctx, []*store.Record{rec}); err != nil {
			// No half-written record: undo, and tell the caller to retry.
			if _, derr := s.Store.DeleteIfUntouched(context.WithoutCancel(ctx), []*store.Record{rec}); derr != nil {
				s.Log.Error("undo record after failed enqueue", "distribution_id", rec.ID, "err", derr)
			}
			return 0, nil, errorf(http.StatusServiceUnavailable, "unavailable", "the queue is unreachable; nothing was accepted, try again")
		}
		s.Metrics.Submitted.WithLabelValues(rec.Account).Inc()
		c.Response().Header().Set(echo.HeaderLocation, "/v1/distributions/"+rec.ID)
		return http.StatusAccepted, rec.Distribution, nil
	})
}

// idempotent runs fn once per Idempotency-Key (same key and same body:
// the stored answer again, 200; same key, other body: 422).
func (s *server) idempotent(c echo.Context, body []byte, fn func() (int, any, error)) error {
	key := c.Request().Header.Get("Idempotency-Key")
	if key == "" {
		status, v, err := fn()
		if err != nil {
			return err
		}
		return c.JSON(status, v)
	}
	if len(key) > 255 || strings.IndexFunc(key, func(r rune) bool { return r > unicode.MaxASCII || unicode.IsControl(r) }) >= 0 {
		return errorf(http.StatusBadRequest, "bad_idempotency_key", "Idempotency-Key must be 1 to 255 printable ASCII characters")
	}
	sum := sha256.Sum256(append([]byte(c.Request().Method+" "+c.Path()+"\n"), body...))
	hash := hex.EncodeToString(sum[:])
	ctx := c.Request().Context()
	team := teamOf(c)
	deadline := time.Now().Add(10 * time.Second)
	for {
		prev, err := s.Store.ClaimIdempotency(ctx, team, key, hash)
		switch {
		case errors.Is(err, store.ErrIdempotencyInFlight):
			if time.Now().After(deadline) {
				return errorf(http.StatusConflict, "idempotency_in_progress", "a request with this Idempotency-Key is still being processed; retry shortly")
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(20 * time.Millisecond):
			}
			continue
		case err != nil:
			return err
		case prev != nil && prev.BodyHash != hash:
			return errorf(http.StatusUnprocessableEntity, "idempotency_key_reused", "Idempotency-Key was used with a different request body")
		case prev != nil:
			c.Response().Header().Set("Idempotent-Replayed", "true")
			return c.JSONBlob(http.StatusOK, prev.Response)
		}
		break
	}
	status, v, err := fn()
	if err != nil {
		if aerr := s.Store.AbandonIdempotency(context.WithoutCancel(ctx), team, key); aerr != nil {
			s.Log.Warn("abandon idempotency key", "err", aerr)
		}
		return err
	}
	raw, err := json.Marshal(v)
	if err != nil {
		return err
	}
	if err := s.Store.CompleteIdempotency(context.WithoutCancel(ctx), team, key, hash, status, raw); err != nil {
		s.Log.Warn("store idempotency answer", "err", err)
	}
	return c.JSONBlob(status, raw)
}

// load returns the team's record of id; another team's id is not found.
func (s *server) load(c echo.Context) (*store.Record, error) {
	id := c.Param("id")
	if !store.ValidID('d', id) {
		return nil, notFound("distribution", id)
	}
	r, err := s.Store.Get(c.Request().Context(), id)
	if errors.Is(err, store.ErrNotFound) || err == nil && r.Team != teamOf(c) {
		return nil, notFound("distribution", id)
	}
	return r, err
}

func (s *server) getDistribution(c echo.Context) error {
	wait, state, err := longPollParams(c, s.MaxWait)
	if err != nil {
		return err
	}
	r, err := s.load(c)
	if err != nil || wait == 0 {
		if err != nil {
			return err
		}
		return c.JSON(http.StatusOK, r.Distribution)
	}
	if state == "" {
		state = r.State
	}
	// Watch first, then re-read: a change between the two is not missed.
	changed, stop := s.hub.watch(r.ID)
	defer stop()
	ctx := c.Request().Context()
	timer := time.NewTimer(wait)
	defer timer.Stop()
	for {
		if r, err = s.load(c); err != nil {
			return err
		}
		if r.State != state {
			return c.JSON(http.StatusOK, r.Distribution)
		}
		select {
		case <-changed:
		case <-timer.C:
			return c.JSON(http.StatusOK, r.Distribution)
		case <-ctx.Done():
			return nil
		}
	}
}

func longPollParams(c echo.Context, maxWait time.Duration) (time.Duration, distribution.State, error) {
	var wait time.Duration
	if w := c.QueryParam("wait"); w != "" {
		d, err := time.ParseDuration(w)
		if err != nil {
			if n, nerr := strconv.Atoi(w); nerr == nil && n >= 0 && n <= int(maxWait/time.Second) {
				d, err = time.Duration(n)*time.Second, nil
			}
		}
		if err != nil || d < 0 || d > maxWait {
			return 0, "", errorf(http.StatusBadRequest, "bad_parameter", "wait must be a duration from 0s to %v (e.g. 30s), got %q", maxWait, w)
		}
		wait = d
	}
	state := distribution.State(c.QueryParam("state"))
	if state != "" && !state.Valid() {
		return 0, "", errorf(http.StatusBadRequest, "bad_parameter", "state must be one of %v, got %q", distribution.States, state)
	}
	return wait, state, nil
}

func (s *server) cancelDistribution(c echo.Context) error {
	r, err := s.load(c)
	if err != nil {
		return err
	}
	r, err = s.cancel(c.Request().Context(), r.ID)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, r.Distribution)
}

var errNotQueued = errors.New("not queued")

// cancel moves a queued distribution to canceled. Compare-and-set against
// the worker's move to submitting: one of the two wins, so a canceled
// distribution never has a Create sent.
func (s *server) cancel(ctx context.Context, id string) (*store.Record, error) {
	now := s.now()
	var state distribution.State
	r, err := s.Store.Update(ctx, id, func(r *store.Record) error {
		state = r.State
		if r.State != distribution.StateQueued {
			return errNotQueued
		}
		r.State, r.WaitReason, r.FinishedAt = distribution.StateCanceled, "", &now
		return nil
	})
	if errors.Is(err, errNotQueued) {
		return nil, errorf(http.StatusConflict, "invalid_state", "distribution %s is %s; only a queued distribution can be canceled", id, state)
	}
	if err != nil {
		return nil, err
	}
	s.Metrics.Finished.WithLabelValues(r.Account, string(distribution.StateCanceled)).Inc()
	if s.Canceler != nil {
		_ = s.Canceler(ctx, r.Queue, r.ID) // best effort: the worker skips a canceled record anyway
	}
	return r, nil
}

func (s *server) retryDistribution(c echo.Context) error {
	r, err := s.load(c)
	if err != nil {
		return err
	}
	r, err = s.retry(c.Request().Context(), r)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusAccepted, r.Distribution)
}

var errNotFailed = errors.New("not failed")

// retry puts a failed distribution back in the queue as new.
func (s *server) retry(ctx context.Context, r *store.Record) (*store.Record, error) {
	if owner, err := s.Store.ActiveOwner(ctx, r.UID, r.ProductKey, r.TargetInstanceID); err != nil {
		return nil, err
	} else if owner != "" && owner != r.ID {
		e := errorf(http.StatusConflict, "duplicate_active", "distribution %s of the same product to the same instance is active", owner)
		e.Details = []any{map[string]string{"existing_id": owner}}
		return nil, e
	}
	var state distribution.State
	id := r.ID
	r, err := s.Store.Update(ctx, id, func(r *store.Record) error {
		state = r.State
		if r.State != distribution.StateFailed {
			return errNotFailed
		}
		r.State, r.WaitReason, r.Error = distribution.StateQueued, "", nil
		r.JobID, r.RemoteStatus, r.SubmittedAt, r.FinishedAt, r.CreateSentAt = "", nil, nil, nil, nil
		r.Attempts = 0
		return nil
	})
	if errors.Is(err, errNotFailed) {
		return nil, errorf(http.StatusConflict, "invalid_state", "distribution %s is %s; only a failed distribution can be retried", id, state)
	}
	if err != nil {
		return nil, err
	}
	if err := s.Enqueuer.Submit(ctx, []*store.Record{r}); err != nil {
		return nil, err // the reconciler enqueues it later: it is open
	}
	return r, nil
}

type listPage struct {
	Items      []distribution.Distribution `json:"items"`
	NextCursor string                      `json:"next_cursor,omitempty"`
}

func (s *server) listDistributions(c echo.Context) error {
	return s.list(c, c.QueryParam("batch_id"))
}

func (s *server) list(c echo.Context, batchID string) error {
	f := store.Filter{Team: teamOf(c), BatchID: batchID, ProductKey: c.QueryParam("product_key"), Limit: 100}
	if st := c.QueryParam("state"); st != "" {
		if !distribution.State(st).Valid() {
			return errorf(http.StatusBadRequest, "bad_parameter", "state must be one of %v, got %q", distribution.States, st)
		}
		f.State = distribution.State(st)
	}
	if batchID != "" && !store.ValidID('b', batchID) {
		return errorf(http.StatusBadRequest, "bad_parameter", "batch_id %q is not a batch id", batchID)
	}
	if len(f.ProductKey) > 64 {
		return errorf(http.StatusBadRequest, "bad_parameter", "product_key is longer than 64")
	}
	if l := c.QueryParam("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > 1000 {
			return errorf(http.StatusBadRequest, "bad_parameter", "limit must be a whole number from 1 to 1000, got %q", l)
		}
		f.Limit = n
	}
	if cur := c.QueryParam("cursor"); cur != "" {
		if !store.ValidID('d', cur) {
			return errorf(http.StatusBadRequest, "bad_cursor", "cursor %q is not one this API returned", cur)
		}
		f.After = cur
	}
	recs, next, err := s.Store.List(c.Request().Context(), f)
	if err != nil {
		return err
	}
	page := listPage{Items: make([]distribution.Distribution, len(recs)), NextCursor: next}
	for i, r := range recs {
		page.Items[i] = r.Distribution
	}
	return c.JSON(http.StatusOK, page)
}
