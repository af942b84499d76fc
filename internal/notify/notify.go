// Package notify delivers distq's completion events (webhooks) through
// asynq, on a queue and an asynq server of their own so that deliveries
// never share, delay or wait behind the Alibaba quota's queues. The store
// writes each event into an outbox in the same transaction that makes it
// true (internal/store/webhooks.go); the pump of every worker moves due
// outbox entries onto the webhooks queue (TaskID = event id, so repeats
// are harmless) and looks at them again until they are delivered or given
// up, so a crash anywhere loses no event. Each attempt is signed per the
// Standard Webhooks specification with the same webhook-id; failures are
// retried with exponential back-off and jitter for up to 24 h.
package notify

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/url"
	"time"

	"github.com/hibiken/asynq"

	"github.com/distq/distq/internal/metrics"
	"github.com/distq/distq/internal/store"
	"github.com/distq/distq/internal/webhook"
)

// TypeDeliver is the task type of one event's delivery. Stable name.
const TypeDeliver = "webhook:deliver"

// Queue is the asynq queue of deliveries, served only by the webhooks
// server (Queues).
const Queue = "webhooks"

// Queues is the webhooks server's queue configuration.
var Queues = map[string]int{Queue: 1}

type payload struct {
	ID string `json:"id"`
}

// Enqueue puts the delivery of event id on the webhooks queue; a delivery
// already queued or scheduled is not an error.
func Enqueue(ctx context.Context, c *asynq.Client, id string) error {
	raw, _ := json.Marshal(payload{ID: id})
	_, err := c.EnqueueContext(ctx, asynq.NewTask(TypeDeliver, raw),
		asynq.TaskID(id), asynq.Queue(Queue), asynq.MaxRetry(math.MaxInt32))
	if err != nil && !errors.Is(err, asynq.ErrTaskIDConflict) {
		return fmt.Errorf("enqueue event %s: %w", id, err)
	}
	return err
}

// Outbox is the api's side: it reads batches' and device distributions'
// events and re-sends them.
type Outbox struct {
	st     *store.Redis
	client *asynq.Client
	insp   *asynq.Inspector
}

// NewOutbox returns the api's Outbox.
func NewOutbox(st *store.Redis, c *asynq.Client, insp *asynq.Inspector) *Outbox {
	return &Outbox{st: st, client: c, insp: insp}
}

// BatchEvent returns a batch's latest event, or nil.
func (o *Outbox) BatchEvent(ctx context.Context, batchID string) (*webhook.Event, error) {
	return o.st.BatchEvent(ctx, batchID)
}

// DeviceEvent returns a device distribution's latest event, or nil.
func (o *Outbox) DeviceEvent(ctx context.Context, id string) (*webhook.Event, error) {
	return o.st.DeviceEvent(ctx, id)
}

// Resend makes the event pending again and queues its delivery now (a
// delivery waiting for its next retry is run at once).
func (o *Outbox) Resend(ctx context.Context, id string) error {
	if err := o.st.Resend(ctx, id); err != nil {
		return err
	}
	if err := Enqueue(ctx, o.client, id); errors.Is(err, asynq.ErrTaskIDConflict) {
		_ = o.insp.RunTask(Queue, id) // best effort: the outbox queues it anyway
	}
	return nil
}

// Options tune delivery. Zero values select the defaults.
type Options struct {
	// FirstRetry is the wait after the first failure (default 5s), doubled
	// per failure up to MaxBackoff (default 1h), with jitter.
	FirstRetry, MaxBackoff time.Duration
	// MaxAge is how long attempts go on (default 24h).
	MaxAge time.Duration
	// PumpInterval is how often the outbox is read (default 1s; the
	// webhooks queue's own check adds up to 3 s more).
	PumpInterval time.Duration
	// Recheck is how long after it is due an outbox entry is queued again
	// if its delivery has not ended by then (default 1m).
	Recheck time.Duration
	// Sender tunes the sender (tests give it a resolver without DNS).
	Sender webhook.SenderOptions
	// Disabled runs no pump and no deliveries (tests of a worker that
	// dies before it delivers).
	Disabled bool
}

func (o Options) withDefaults() Options {
	if o.FirstRetry <= 0 {
		o.FirstRetry = webhook.DefaultFirstRetry
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = webhook.DefaultMaxBackoff
	}
	if o.MaxAge <= 0 {
		o.MaxAge = webhook.DefaultMaxAge
	}
	if o.PumpInterval <= 0 {
		o.PumpInterval = time.Second
	}
	if o.Recheck <= 0 {
		o.Recheck = time.Minute
	}
	return o
}

// Deliverer is the worker's side: the pump and the delivery handler.
type Deliverer struct {
	st      *store.Redis
	sender  *webhook.Sender
	client  *asynq.Client
	metrics *metrics.Metrics
	log     *slog.Logger
	opts    Options
	now     func() time.Time
}

// NewDeliverer returns a Deliverer sending with sender.
func NewDeliverer(st *store.Redis, sender *webhook.Sender, c *asynq.Client, m *metrics.Metrics, log *slog.Logger, o Options) *Deliverer {
	return &Deliverer{st: st, sender: sender, client: c, metrics: m, log: log, opts: o.withDefaults(),
		now: func() time.Time { return time.Now().UTC() }}
}

// Register adds the delivery handler to mux.
func (d *Deliverer) Register(mux *asynq.ServeMux) { mux.HandleFunc(TypeDeliver, d.Handle) }

// RunPump moves due outbox entries onto the webhooks queue until ctx ends.
func (d *Deliverer) RunPump(ctx context.Context) {
	t := time.NewTicker(d.opts.PumpInterval)
	defer t.Stop()
	for {
		ids, err := d.st.DueEvents(ctx, d.now(), d.opts.Recheck, 200)
		if err != nil && ctx.Err() == nil {
			d.log.Warn("read webhook outbox", "err", err)
		}
		for _, id := range ids {
			if err := Enqueue(ctx, d.client, id); err != nil && !errors.Is(err, asynq.ErrTaskIDConflict) && ctx.Err() == nil {
				d.log.Warn("enqueue webhook delivery", "event_id", id, "err", err)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// retryError hands a delivery back to asynq for Delay (the back-off the
// event's state already shows as next_retry_at).
type retryError struct {
	Delay time.Duration
	Err   error
}

func (e *retryError) Error() string { return fmt.Sprintf("retry in %v: %v", e.Delay, e.Err) }

// RetryDelay is the webhooks server's RetryDelayFunc.
func RetryDelay(n int, err error, _ *asynq.Task) time.Duration {
	var r *retryError
	if errors.As(err, &r) {
		return r.Delay
	}
	return webhook.Backoff(n+1, webhook.DefaultFirstRetry, webhook.DefaultMaxBackoff)
}

// Handle makes one delivery attempt of the task's event and records it.
func (d *Deliverer) Handle(ctx context.Context, t *asynq.Task) error {
	var p payload
	if err := json.Unmarshal(t.Payload(), &p); err != nil || p.ID == "" {
		return fmt.Errorf("bad payload %q: %w", t.Payload(), asynq.SkipRetry)
	}
	ev, err := d.st.Event(ctx, p.ID)
	if errors.Is(err, store.ErrNotFound) {
		return d.st.DropEvent(ctx, p.ID) // expired
	}
	if err != nil {
		return err
	}
	if ev.State != webhook.StatePending {
		return nil // delivered or given up already: a repeat of the task
	}
	now := d.now()
	res := d.sender.Send(ctx, ev, now)
	d.metrics.WebhookDuration.Observe(res.Duration.Seconds())
	ev.Attempts++
	ev.LastAttemptAt, ev.LastStatus, ev.LastError, ev.NextRetryAt = &now, res.Status, "", nil
	host := hostOf(ev.URL)
	if res.Err == nil {
		d.metrics.WebhookDeliveries.WithLabelValues("delivered").Inc()
		ev.State, ev.DeliveredAt = webhook.StateDelivered, &now
		d.log.Info("webhook delivered", "event_id", ev.ID, "type", ev.Type, "subject", ev.Subject, "host", host, "status", res.Status, "attempts", ev.Attempts)
		return d.save(ctx, ev, now)
	}
	ev.LastError = describe(res.Err)
	switch {
	case res.Refused():
		d.metrics.WebhookDeliveries.WithLabelValues("refused").Inc()
	case res.Status != 0:
		d.metrics.WebhookDeliveries.WithLabelValues("http_error").Inc()
	default:
		d.metrics.WebhookDeliveries.WithLabelValues("network_error").Inc()
	}
	delay := webhook.Backoff(ev.Attempts, d.opts.FirstRetry, d.opts.MaxBackoff)
	next := now.Add(delay)
	if next.After(ev.WindowStart.Add(d.opts.MaxAge)) {
		d.metrics.WebhookDeliveries.WithLabelValues("given_up").Inc()
		ev.State = webhook.StateFailed
		d.log.Warn("webhook given up", "event_id", ev.ID, "type", ev.Type, "subject", ev.Subject, "host", host, "attempts", ev.Attempts, "err", ev.LastError)
		return d.save(ctx, ev, now)
	}
	ev.NextRetryAt = &next
	d.log.Info("webhook attempt failed", "event_id", ev.ID, "host", host, "status", res.Status, "attempts", ev.Attempts, "retry_in", delay.String(), "err", ev.LastError)
	if err := d.st.SaveDelivery(ctx, ev.ID, ev.Delivery, next.Add(d.opts.Recheck)); err != nil {
		return err
	}
	return &retryError{Delay: delay, Err: res.Err}
}

func (d *Deliverer) save(ctx context.Context, ev *webhook.Event, now time.Time) error {
	return d.st.SaveDelivery(ctx, ev.ID, ev.Delivery, now)
}

// describe is an attempt's error without the URL (it may hold a token).
func describe(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	s := err.Error()
	if len(s) > 300 {
		s = s[:300]
	}
	return s
}

func hostOf(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return ""
	}
	return u.Host
}
