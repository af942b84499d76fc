package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/distq/distq/internal/distribution"
	"github.com/distq/distq/internal/redistest"
	"github.com/distq/distq/internal/webhook"
)

func outbox(t *testing.T, s *Redis) []string {
	t.Helper()
	ids, err := s.rdb.ZRange(context.Background(), keyOutbox, 0, -1).Result()
	if err != nil {
		t.Fatal(err)
	}
	return ids
}

// The items of a batch finishing at once, from many workers, make exactly
// one batch.finished event, written by the transaction of the last one; a
// repeat of a finish (a task run again after a crash) makes none.
func TestBatchFinishedIsWrittenOnceWithTheLastState(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := NewRedis(redistest.New(t).Client, time.Hour)
	now := time.Now().UTC()
	b := &distribution.Batch{ID: distribution.NewBatchID(now), Team: "t", Account: "a", CreatedAt: now, NotifyURL: "https://hooks.example.com/x"}
	var recs []*Record
	for i := range 40 {
		r := newRecord("t", fmt.Sprintf("pk%02d", i), now)
		r.BatchID, r.Queue = b.ID, distribution.QueueBatch
		recs = append(recs, r)
	}
	if _, err := s.Insert(ctx, b, recs); err != nil {
		t.Fatal(err)
	}
	finish := func(r *Record) error {
		_, err := s.Update(ctx, r.ID, func(r *Record) error {
			err := r.Finish(time.Now(), distribution.StateSucceeded, nil, nil)
			var te *distribution.TransitionError
			if errors.As(err, &te) {
				return ErrNoChange
			}
			return err
		})
		return err
	}
	// All but the last: no event yet.
	var wg sync.WaitGroup
	for _, r := range recs[:39] {
		wg.Add(1)
		go func() { defer wg.Done(); _ = finish(r) }()
	}
	wg.Wait()
	if ev, err := s.BatchEvent(ctx, b.ID); err != nil || ev != nil || len(outbox(t, s)) != 0 {
		t.Fatalf("39 of 40 final: event %+v (%v), outbox %v; want none", ev, err, outbox(t, s))
	}
	// The last one, twice at once, then again.
	for range 2 {
		wg.Add(1)
		go func() { defer wg.Done(); _ = finish(recs[39]) }()
	}
	wg.Wait()
	if err := finish(recs[39]); err != nil {
		t.Fatal(err)
	}
	ids := outbox(t, s)
	ev, err := s.BatchEvent(ctx, b.ID)
	if err != nil || ev == nil || len(ids) != 1 || ids[0] != ev.ID {
		t.Fatalf("event %+v (%v), outbox %v: want one event in the outbox", ev, err, ids)
	}
	var body struct {
		Type      string    `json:"type"`
		Timestamp time.Time `json:"timestamp"`
		Data      struct {
			ID        string         `json:"id"`
			Size      int            `json:"size"`
			Done      bool           `json:"done"`
			Counts    map[string]int `json:"counts"`
			NotifyURL string         `json:"notify_url"`
		} `json:"data"`
	}
	if err := json.Unmarshal(ev.Body, &body); err != nil {
		t.Fatalf("body %s: %v", ev.Body, err)
	}
	if ev.Type != webhook.TypeBatchFinished || ev.Subject != b.ID || ev.Team != "t" || ev.URL != b.NotifyURL || ev.State != webhook.StatePending ||
		body.Type != webhook.TypeBatchFinished || body.Timestamp.IsZero() || body.Data.ID != b.ID || body.Data.Size != 40 || !body.Data.Done ||
		body.Data.Counts["succeeded"] != 40 || body.Data.Counts["queued"] != 0 || len(body.Data.Counts) != 6 {
		t.Fatalf("event %+v, body %s", ev, ev.Body)
	}

	// Retried and finished again: a second completion, a second event.
	if _, err := s.Update(ctx, recs[0].ID, func(r *Record) error {
		r.State, r.FinishedAt = distribution.StateFailed, nil
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Update(ctx, recs[0].ID, func(r *Record) error { return r.Retry() }); err != nil {
		t.Fatal(err)
	}
	if err := finish(recs[0]); err != nil {
		t.Fatal(err)
	}
	again, _ := s.BatchEvent(ctx, b.ID)
	if again == nil || again.ID == ev.ID || len(outbox(t, s)) != 2 {
		t.Fatalf("after a retry finished: event %+v, outbox %v; want a new event", again, outbox(t, s))
	}

	// Delivery state round trip; delivered leaves the outbox.
	at := time.Now().UTC().Truncate(time.Millisecond)
	d := webhook.Delivery{State: webhook.StateDelivered, Attempts: 2, LastAttemptAt: &at, LastStatus: 204, DeliveredAt: &at}
	if err := s.SaveDelivery(ctx, ev.ID, d, at); err != nil {
		t.Fatal(err)
	}
	got, err := s.Event(ctx, ev.ID)
	if err != nil || got.State != webhook.StateDelivered || got.Attempts != 2 || got.LastStatus != 204 || !got.DeliveredAt.Equal(at) || got.NextRetryAt != nil {
		t.Fatalf("saved delivery: %+v (%v)", got, err)
	}
	if ids := outbox(t, s); len(ids) != 1 || ids[0] != again.ID {
		t.Fatalf("outbox %v: want only %s", ids, again.ID)
	}
	// Resend: pending again, due now, the same id.
	if err := s.Resend(ctx, ev.ID); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.Event(ctx, ev.ID); got.State != webhook.StatePending || got.Attempts != 0 || len(outbox(t, s)) != 2 {
		t.Fatalf("resent: %+v, outbox %v", got, outbox(t, s))
	}
	due, err := s.DueEvents(ctx, time.Now().Add(time.Second), time.Minute, 10)
	if err != nil || len(due) != 2 {
		t.Fatalf("due %v (%v): want both", due, err)
	}
	if due, _ := s.DueEvents(ctx, time.Now().Add(time.Second), time.Minute, 10); len(due) != 0 {
		t.Fatalf("due again at once: %v; want none until the recheck", due)
	}
	if err := s.Resend(ctx, "msg_gone"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("resend of an unknown event: %v", err)
	}
}

// A single distribution with a notify_url announces its end; one without,
// or a batch without a notify_url, announces nothing.
func TestDistributionFinishedEvent(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := NewRedis(redistest.New(t).Client, time.Hour)
	now := time.Now().UTC()
	with := newRecord("t", "pkWith", now)
	with.NotifyURL = "https://hooks.example.com/d"
	without := newRecord("t", "pkWithout", now)
	b := &distribution.Batch{ID: distribution.NewBatchID(now), Team: "t", Account: "a", CreatedAt: now}
	item := newRecord("t", "pkItem", now)
	item.BatchID = b.ID
	for _, ins := range []struct {
		b *distribution.Batch
		r *Record
	}{{nil, with}, {nil, without}, {b, item}} {
		if _, err := s.Insert(ctx, ins.b, []*Record{ins.r}); err != nil {
			t.Fatal(err)
		}
	}
	for _, r := range []*Record{with, without, item} {
		if _, err := s.Update(ctx, r.ID, func(r *Record) error { return r.Cancel(time.Now()) }); err != nil {
			t.Fatal(err)
		}
	}
	ids := outbox(t, s)
	if len(ids) != 1 {
		t.Fatalf("outbox %v: want one event", ids)
	}
	ev, err := s.Event(ctx, ids[0])
	if err != nil || ev.Type != webhook.TypeDistributionFinished || ev.Subject != with.ID || ev.URL != with.NotifyURL {
		t.Fatalf("event %+v (%v)", ev, err)
	}
	var body struct {
		Type string                    `json:"type"`
		Data distribution.Distribution `json:"data"`
	}
	if err := json.Unmarshal(ev.Body, &body); err != nil || body.Type != webhook.TypeDistributionFinished || body.Data.ID != with.ID || body.Data.State != distribution.StateCanceled {
		t.Fatalf("body %s (%v)", ev.Body, err)
	}
}

// A batch with a notify_url whose every item was refused is done as it is
// written: its event is written with it.
func TestEmptyBatchIsAnnouncedAtOnce(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := NewRedis(redistest.New(t).Client, time.Hour)
	now := time.Now().UTC()
	b := &distribution.Batch{ID: distribution.NewBatchID(now), Team: "t", Account: "a", CreatedAt: now, NotifyURL: "https://hooks.example.com/x"}
	if _, err := s.Insert(ctx, b, nil); err != nil {
		t.Fatal(err)
	}
	ev, err := s.BatchEvent(ctx, b.ID)
	if err != nil || ev == nil || len(outbox(t, s)) != 1 {
		t.Fatalf("event %+v (%v): want one", ev, err)
	}
}
