package queue

import (
	"context"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// Slot handoffs without a queue hop. A task that finds no free job slot
// registers as a waiter (HandSlot gives a freed slot to the first waiter
// in the same step) and then, instead of going back to asynq at once, waits
// in its handler for a while: the worker that frees a slot signals the
// waiter it handed it to, in-process when the waiter is its own, else over
// Redis Pub/Sub (handoffChannel), which every worker follows. The waiter
// then takes its Create grant at once, where a woken asynq task would first
// wait for an idle worker's next queue check (up to 1.5 × the
// TaskCheckInterval). Few tasks wait this way: only admitted batch items
// (the fair share admits about one Create interval ahead) and singles, at
// most Options.InlineSlotWaits per worker (a quarter of its concurrency:
// the rest stays free for singles and grants); the others, and a waiter whose
// handoff does not come within inlineSlotWait, go back to asynq as before
// and are woken by RunTask when handed a slot.

// handoffChannel carries the id of each slot holder just handed a slot.
const handoffChannel = "distq:handoff"

// inlineSlotWait is how long a handler waits in place for a slot.
const inlineSlotWait = 5 * time.Second

// slotWaits are the handlers of this worker waiting in place for a slot.
type slotWaits struct {
	mu sync.Mutex
	m  map[string]chan struct{}
}

// handoffWait is a handler's registration for a slot handoff.
type handoffWait struct {
	w  *Worker
	id string
	ch chan struct{}
}

// expectHandoff registers holder id's handler for a handoff, before it
// becomes a waiter (a slot handed from then on is seen). It returns nil
// when this worker has Options.InlineSlotWaits registered already, or id is.
func (w *Worker) expectHandoff(id string) *handoffWait {
	s := &w.slotWaits
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		s.m = map[string]chan struct{}{}
	}
	if _, dup := s.m[id]; dup || len(s.m) >= w.opts.InlineSlotWaits {
		return nil
	}
	h := &handoffWait{w: w, id: id, ch: make(chan struct{}, 1)}
	s.m[id] = h.ch
	return h
}

// wait waits up to d for the handoff and reports whether it came. A nil
// h answers false at once.
func (h *handoffWait) wait(ctx context.Context, d time.Duration) bool {
	if h == nil {
		return false
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-h.ch:
		return true
	case <-t.C:
	case <-ctx.Done():
	}
	return false
}

// done ends the registration (nil-safe).
func (h *handoffWait) done() {
	if h == nil {
		return
	}
	s := &h.w.slotWaits
	s.mu.Lock()
	if s.m[h.id] == h.ch {
		delete(s.m, h.id)
	}
	s.mu.Unlock()
}

// awaitHandoff registers holder id and waits up to d for its handoff (a
// registration and its wait in one, for tests).
func (w *Worker) awaitHandoff(ctx context.Context, id string, d time.Duration) bool {
	h := w.expectHandoff(id)
	defer h.done()
	return h.wait(ctx, d)
}

// signalHandoff tells holder id's handler, if it waits in this worker,
// that it was handed a slot, and reports whether it did.
func (w *Worker) signalHandoff(id string) bool {
	s := &w.slotWaits
	s.mu.Lock()
	defer s.mu.Unlock()
	ch, ok := s.m[id]
	if ok {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
	return ok
}

// RunHandoffs follows the handoffs of other workers (handoffChannel) until
// ctx ends, signalling the handlers of this one they name.
func (w *Worker) RunHandoffs(ctx context.Context) {
	Listen(ctx, w.store.Client(), handoffChannel, func(id string) { w.signalHandoff(id) })
}

// SubscriptionHealthCheck is how often an idle subscription of a worker
// pings Redis to find a dead connection (go-redis's default, 3 s, would be
// a fair part of what an idle worker costs Redis).
const SubscriptionHealthCheck = 15 * time.Second

// Listen calls on with the payload of every message on channel until ctx
// ends, subscribing again a second after the subscription breaks.
func Listen(ctx context.Context, rdb redis.UniversalClient, channel string, on func(payload string)) {
	for ctx.Err() == nil {
		sub := rdb.Subscribe(ctx, channel)
		ch := sub.Channel(redis.WithChannelHealthCheckInterval(SubscriptionHealthCheck))
	loop:
		for {
			select {
			case <-ctx.Done():
				break loop
			case m, ok := <-ch:
				if !ok {
					break loop
				}
				on(m.Payload)
			}
		}
		sub.Close()
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
}

// announceHandoff tells the other workers that holder id was handed a slot.
func (w *Worker) announceHandoff(ctx context.Context, id string) {
	if err := w.store.Client().Publish(ctx, handoffChannel, id).Err(); err != nil {
		w.log.Warn("announce slot handoff", "holder", id, "err", err)
	}
}
