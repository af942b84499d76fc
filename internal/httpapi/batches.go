package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/distq/distq/client"
	"github.com/distq/distq/internal/distribution"
	"github.com/distq/distq/internal/service"
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
	// Paused: an operator paused the account or the team (no ETA then).
	Paused bool `json:"paused,omitempty"`
	// Share is the team's share of the account while the batch waits.
	Share *Share `json:"share,omitempty"`
	// Notification is the batch.finished event and its delivery state.
	Notification *Notification `json:"notification,omitempty"`
}

// Share is a team's share of an account: the public wire type.
type Share = client.Share

// Notification is a completion event's delivery state: the public wire type.
type Notification = client.Notification

func batchView(v *service.BatchView) BatchView {
	out := BatchView{Batch: v.Batch, Counts: v.Counts, Done: v.Done, ETA: v.ETA, Paused: v.Paused}
	if sh := v.Share; sh != nil {
		out.Share = &Share{Weight: sh.Weight, Entitled: sh.Entitled, Recent: sh.Recent}
	}
	if ev := v.Notification; ev != nil {
		out.Notification = &Notification{EventID: ev.ID, Type: ev.Type, State: ev.State, Attempts: ev.Attempts,
			CreatedAt: ev.CreatedAt, LastAttemptAt: ev.LastAttemptAt, LastStatus: ev.LastStatus, LastError: ev.LastError,
			NextRetryAt: ev.NextRetryAt, DeliveredAt: ev.DeliveredAt}
	}
	return out
}

type batchCreated struct {
	Batch    BatchView    `json:"batch"`
	Accepted int          `json:"accepted"`
	Rejected int          `json:"rejected"`
	Results  []ItemResult `json:"results"`
}

// batchDryRun is the answer of POST /v1/batches?dry_run=true: what the
// batch would be if submitted now; nothing was written.
type batchDryRun struct {
	DryRun   bool         `json:"dry_run"`
	Accepted int          `json:"accepted"`
	Rejected int          `json:"rejected"`
	Results  []ItemResult `json:"results"`
	// ETA is when the accepted items would be done; absent when none is.
	ETA *time.Time `json:"eta,omitempty"`
}

// itemResults renders the outcome of each item of a batch.
func itemResults(rs []service.ItemResult) []ItemResult {
	out := make([]ItemResult, len(rs))
	for i, r := range rs {
		out[i] = ItemResult{Index: r.Index, ID: r.ID, ExistingID: r.ExistingID}
		if r.Err != nil {
			// The same error, details included, as the item would get
			// alone: a duplicate names the team's own existing id in
			// details[0] (and on the result), another team's only since
			// when.
			out[i].Error = toError(r.Err)
		}
	}
	return out
}

func (s *server) createBatch(c echo.Context) error {
	body, err := readBatch(c)
	if err != nil {
		return err
	}
	if err := service.CheckBatchSize(len(body.Items)); err != nil {
		return err
	}
	decodeItems := func() service.BatchRequest {
		br := service.BatchRequest{Defaults: body.Defaults, Items: make([]service.BatchItem, len(body.Items))}
		for i, item := range body.Items {
			br.Items[i].Request = item
			if e := body.ItemErrors[i]; e != nil {
				br.Items[i].Err = e
			}
		}
		return br
	}
	switch dry := c.QueryParam("dry_run"); dry {
	case "true":
		res, err := s.Service.DryRunBatch(c.Request().Context(), teamOf(c), decodeItems())
		if err != nil {
			return err
		}
		c.Response().Header().Set("Idempotent-Replayed", "false")
		return c.JSON(http.StatusOK, batchDryRun{DryRun: true, Accepted: res.Valid, Rejected: res.Rejected, Results: itemResults(res.Results), ETA: res.ETA})
	case "", "false":
	default:
		return errorf(http.StatusBadRequest, "bad_parameter", "dry_run must be true or false, got %q", dry)
	}
	return s.idempotent(c, body.Raw, func() (int, any, error) {
		br := decodeItems()
		res, err := s.Service.SubmitBatch(c.Request().Context(), teamOf(c), br)
		if err != nil {
			return 0, nil, err
		}
		c.Response().Header().Set(echo.HeaderLocation, "/v1/batches/"+res.Batch.ID)
		return http.StatusAccepted, batchCreated{Batch: batchView(&res.Batch), Accepted: res.Accepted, Rejected: res.Rejected, Results: itemResults(res.Results)}, nil
	})
}

// getBatch answers a batch, at once or by long poll: with wait and
// If-None-Match (an ETag it sent), once its counts differ from those named;
// without If-None-Match, at once.
func (s *server) getBatch(c echo.Context) error {
	wait, _, err := longPollParams(c, s.MaxWait)
	if err != nil {
		return err
	}
	since := strings.Trim(strings.TrimPrefix(c.Request().Header.Get("If-None-Match"), "W/"), `"`)
	ctx := c.Request().Context()
	v, err := s.Service.AwaitBatch(ctx, teamOf(c), c.Param("id"), since, wait)
	if err != nil {
		if errors.Is(ctx.Err(), context.Canceled) {
			return nil // the caller left; a deadline (a slow Redis) is a 503
		}
		return err
	}
	c.Response().Header().Set("ETag", `"`+v.Revision()+`"`)
	return c.JSON(http.StatusOK, batchView(v))
}

// notifyBatch sends a finished batch's event again.
func (s *server) notifyBatch(c echo.Context) error {
	v, err := s.Service.Notify(c.Request().Context(), teamOf(c), c.Param("id"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusAccepted, batchView(v))
}

func (s *server) listBatchDistributions(c echo.Context) error {
	// The batch first: another team's batch is not found, whatever the
	// parameters say.
	b, err := s.Service.FindBatch(c.Request().Context(), teamOf(c), c.Param("id"))
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
	res, err := s.Service.CancelBatch(c.Request().Context(), teamOf(c), c.Param("id"))
	return s.batchActionAnswer(c, res, err)
}

func (s *server) retryBatch(c echo.Context) error {
	res, err := s.Service.RetryBatch(c.Request().Context(), teamOf(c), c.Param("id"))
	return s.batchActionAnswer(c, res, err)
}

func (s *server) batchActionAnswer(c echo.Context, res *service.BatchActionResult, err error) error {
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, batchActionResult{BatchID: res.BatchID, Changed: res.Changed, Skipped: res.Skipped, Affected: res.Affected})
}
