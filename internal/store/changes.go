package store

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// Changes fans the store's change notifications out to long polls: one
// Redis subscription per api process, however many requests wait. It is
// safe for concurrent use; Run must run for Watch to see changes.
type Changes struct {
	rdb redis.UniversalClient
	log *slog.Logger

	mu      sync.Mutex
	waiters map[string]map[chan struct{}]struct{}
}

// NewChanges returns the change feed of the store on rdb.
func NewChanges(rdb redis.UniversalClient, log *slog.Logger) *Changes {
	return &Changes{rdb: rdb, log: log, waiters: map[string]map[chan struct{}]struct{}{}}
}

// Watch returns a channel that receives when the record of id changes, and
// a function to stop watching.
func (h *Changes) Watch(id string) (<-chan struct{}, func()) {
	ch := make(chan struct{}, 1)
	h.mu.Lock()
	if h.waiters[id] == nil {
		h.waiters[id] = map[chan struct{}]struct{}{}
	}
	h.waiters[id][ch] = struct{}{}
	h.mu.Unlock()
	return ch, func() {
		h.mu.Lock()
		delete(h.waiters[id], ch)
		if len(h.waiters[id]) == 0 {
			delete(h.waiters, id)
		}
		h.mu.Unlock()
	}
}

func (h *Changes) notify(id string) {
	h.mu.Lock()
	for ch := range h.waiters[id] {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
	h.mu.Unlock()
}

// notifyAll wakes every waiter, after the subscription was lost and
// messages may have been missed: each re-reads its record.
func (h *Changes) notifyAll() {
	h.mu.Lock()
	for _, set := range h.waiters {
		for ch := range set {
			select {
			case ch <- struct{}{}:
			default:
			}
		}
	}
	h.mu.Unlock()
}

// Run keeps the subscription until ctx ends, re-subscribing after errors.
// After a lost subscription it wakes every watcher, which re-reads.
func (h *Changes) Run(ctx context.Context) {
	for ctx.Err() == nil {
		sub := h.rdb.Subscribe(ctx, ChangesChannel)
		if _, err := sub.Receive(ctx); err != nil {
			sub.Close()
			select {
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
			continue
		}
		h.notifyAll()
		// go-redis does not interrupt a blocked read when ctx ends: closing
		// the subscription does.
		stop := context.AfterFunc(ctx, func() { _ = sub.Close() })
		for {
			msg, err := sub.ReceiveMessage(ctx)
			if err != nil {
				break
			}
			h.notify(msg.Payload)
		}
		stop()
		sub.Close()
		h.notifyAll()
	}
}
