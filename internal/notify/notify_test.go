package notify

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/distq/distq/internal/distribution"
	"github.com/distq/distq/internal/metrics"
	"github.com/distq/distq/internal/redistest"
	"github.com/distq/distq/internal/store"
	"github.com/distq/distq/internal/webhook"
)

const secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

// finishedEvent makes a distribution with notify_url end, and returns the
// id of the event its end wrote.
func finishedEvent(t *testing.T, st *store.Redis, url string) string {
	t.Helper()
	ctx := context.Background()
	now := time.Now().UTC()
	r := &store.Record{Distribution: distribution.Distribution{ID: distribution.NewID(now), Team: "t", Account: "a",
		ProductKey: "a1N", SourceInstanceID: "iotx-a", TargetInstanceID: "iotx-b", State: distribution.StateQueued,
		CreatedAt: now, UpdatedAt: now, NotifyURL: url}, UID: "1", Queue: distribution.QueueSingle}
	if _, err := st.Insert(ctx, nil, []*store.Record{r}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Update(ctx, r.ID, func(r *store.Record) error { return r.Cancel(now) }); err != nil {
		t.Fatal(err)
	}
	ids, err := st.DueEvents(ctx, time.Now().Add(time.Second), time.Minute, 10)
	if err != nil || len(ids) != 1 {
		t.Fatalf("due events %v (%v)", ids, err)
	}
	return ids[0]
}

func task(id string) *asynq.Task {
	raw, _ := json.Marshal(payload{ID: id})
	return asynq.NewTask(TypeDeliver, raw)
}

// A failing receiver is retried with growing delays, the state showing
// each attempt; once the next retry would fall outside MaxAge the event is
// given up, leaves the outbox and is not retried.
func TestRetriesThenGivesUp(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := redistest.New(t)
	st := store.NewRedis(db.Client, time.Hour)
	rcv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusBadGateway) }))
	defer rcv.Close()
	allow, _ := webhook.ParseAllowlist(strings.TrimPrefix(rcv.URL, "http://"))
	m := metrics.New(prometheus.NewRegistry())
	d := NewDeliverer(st, webhook.NewSender(allow, map[string]string{"t": secret}, webhook.SenderOptions{}),
		asynq.NewClientFromRedisClient(db.Client), m, slog.New(slog.NewTextHandler(io.Discard, nil)),
		Options{FirstRetry: time.Second, MaxBackoff: 4 * time.Second, MaxAge: 6 * time.Second})
	id := finishedEvent(t, st, rcv.URL+"/hook")
	clock := time.Now().UTC()
	d.now = func() time.Time { return clock }
	var delays []time.Duration
	for attempt := 1; ; attempt++ {
		err := d.Handle(ctx, task(id))
		ev, gerr := st.Event(ctx, id)
		if gerr != nil {
			t.Fatal(gerr)
		}
		if ev.Attempts != attempt || ev.LastStatus != http.StatusBadGateway || ev.LastError == "" {
			t.Fatalf("attempt %d: %+v", attempt, ev.Delivery)
		}
		var re *retryError
		if !errors.As(err, &re) {
			if err != nil || ev.State != webhook.StateFailed || ev.NextRetryAt != nil {
				t.Fatalf("attempt %d: %v, %+v; want given up", attempt, err, ev.Delivery)
			}
			break
		}
		if ev.State != webhook.StatePending || ev.NextRetryAt == nil || !ev.NextRetryAt.Equal(clock.Add(re.Delay).Truncate(time.Millisecond)) ||
			RetryDelay(attempt, err, nil) != re.Delay {
			t.Fatalf("attempt %d: %+v, delay %v", attempt, ev.Delivery, re.Delay)
		}
		delays = append(delays, re.Delay)
		clock = clock.Add(re.Delay)
		if attempt > 10 {
			t.Fatal("never given up")
		}
	}
	if len(delays) < 2 || delays[0] > time.Second || delays[len(delays)-1] <= delays[0]/2 {
		t.Errorf("delays %v: want growing from at most 1s", delays)
	}
	if n := testutil.ToFloat64(m.WebhookDeliveries.WithLabelValues("given_up")); n != 1 {
		t.Errorf("given_up = %v", n)
	}
	if n := testutil.ToFloat64(m.WebhookDeliveries.WithLabelValues("http_error")); n != float64(len(delays)+1) {
		t.Errorf("http_error = %v, want %d", n, len(delays)+1)
	}
	if due, _ := st.DueEvents(ctx, clock.Add(time.Hour), time.Minute, 10); len(due) != 0 {
		t.Errorf("a given-up event is still in the outbox: %v", due)
	}
	// A repeat of the task does nothing.
	if err := d.Handle(ctx, task(id)); err != nil {
		t.Fatal(err)
	}
	if ev, _ := st.Event(ctx, id); ev.Attempts != len(delays)+1 {
		t.Errorf("a repeat of a given-up event's task sent it again: %+v", ev.Delivery)
	}
}

// A refused connection counts as a network error; an unknown event's task
// is dropped.
func TestNetworkErrorAndUnknownEvent(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := redistest.New(t)
	st := store.NewRedis(db.Client, time.Hour)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	allow, _ := webhook.ParseAllowlist(addr)
	m := metrics.New(prometheus.NewRegistry())
	d := NewDeliverer(st, webhook.NewSender(allow, map[string]string{"t": secret}, webhook.SenderOptions{}),
		asynq.NewClientFromRedisClient(db.Client), m, slog.New(slog.NewTextHandler(io.Discard, nil)), Options{})
	id := finishedEvent(t, st, "http://"+addr+"/x")
	var re *retryError
	if err := d.Handle(ctx, task(id)); !errors.As(err, &re) || re.Delay > webhook.DefaultFirstRetry {
		t.Fatalf("refused connection: %v", err)
	}
	if n := testutil.ToFloat64(m.WebhookDeliveries.WithLabelValues("network_error")); n != 1 {
		t.Errorf("network_error = %v", n)
	}
	if err := d.Handle(ctx, task("msg_unknown")); err != nil {
		t.Errorf("unknown event: %v", err)
	}
}
