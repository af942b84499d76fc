package service

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/distq/distq/internal/distribution"
	"github.com/distq/distq/internal/webhook"
)

// Webhooks is what the use cases need of completion events. Its zero value
// refuses every notify_url.
type Webhooks struct {
	// Teams lists the teams with a signing secret: only they may set a
	// notify_url.
	Teams map[string]bool
	// Allowed is where events may go (DISTQ_WEBHOOK_ALLOWED_HOSTS).
	Allowed *webhook.Allowlist
	// Events reads and re-sends events (internal/notify's Outbox).
	Events Events
}

// Events reads a batch's or a device distribution's event and sends one
// again.
type Events interface {
	// BatchEvent returns the latest batch.finished event of a batch, or nil.
	BatchEvent(ctx context.Context, batchID string) (*webhook.Event, error)
	// DeviceEvent returns the latest device_distribution.finished event of
	// a device distribution, or nil.
	DeviceEvent(ctx context.Context, id string) (*webhook.Event, error)
	// Resend delivers event id again, with the same webhook-id and a new
	// window of retries.
	Resend(ctx context.Context, eventID string) error
}

// checkNotify refuses a notify_url that team may not use: a team without
// a signing secret, a host not allowed, a literal address that is not
// public unless named exactly.
func (s *Service) checkNotify(team, url string) error {
	if url == "" {
		return nil
	}
	if !s.d.Webhooks.Teams[team] {
		return invalidField("notify_url", fmt.Sprintf("team %q has no webhook secret (DISTQ_WEBHOOK_SECRETS): it cannot receive events", team))
	}
	if _, err := s.d.Webhooks.Allowed.CheckURL(url); err != nil {
		return invalidField("notify_url", err.Error())
	}
	return nil
}

func invalidField(field, msg string) error {
	return domainError(&distribution.ValidationError{Fields: []distribution.FieldError{{Field: field, Message: msg}}})
}

// errItemNotify refuses a notify_url on a batch item.
var errItemNotify = invalidField("notify_url", "set notify_url on the batch, not on an item: the batch's event covers its items")

// Notification is a batch's latest completion event, or nil.
func (s *Service) notification(ctx context.Context, b *distribution.Batch) (*webhook.Event, error) {
	if b.NotifyURL == "" || s.d.Webhooks.Events == nil {
		return nil, nil
	}
	return s.d.Webhooks.Events.BatchEvent(ctx, b.ID)
}

// Notify sends team's batch id's batch.finished event again (same
// webhook-id, new window of retries) and returns the batch. It refuses with
// CodeNotFound, or CodeInvalidState when the batch has no notify_url or is
// not finished (its event is sent when it is).
func (s *Service) Notify(ctx context.Context, team, id string) (*BatchView, error) {
	b, err := s.loadBatch(ctx, team, id)
	if err != nil {
		return nil, err
	}
	if b.NotifyURL == "" {
		return nil, errorf(CodeInvalidState, "batch %s has no notify_url", b.ID)
	}
	ev, err := s.notification(ctx, &b.Batch)
	if err != nil {
		return nil, err
	}
	if ev == nil {
		return nil, errorf(CodeInvalidState, "batch %s is not finished: its event is sent when it is", b.ID)
	}
	if err := s.d.Webhooks.Events.Resend(ctx, ev.ID); err != nil {
		if errors.Is(err, distribution.ErrNotFound) {
			return nil, errorf(CodeInvalidState, "the event of batch %s expired", b.ID)
		}
		return nil, err
	}
	return s.Batch(ctx, team, id)
}

// Revision identifies a batch's counts: it changes when any count does.
func (v *BatchView) Revision() string {
	var sb strings.Builder
	for i, st := range distribution.States {
		if i > 0 {
			sb.WriteByte('-')
		}
		fmt.Fprint(&sb, v.Counts[st])
	}
	return sb.String()
}

// AwaitBatch returns team's batch id once its Revision differs from since,
// or as it is after wait. Without since (a caller that has seen no
// revision yet) it answers at once: any answer is news to it. Run must be
// running for changes to wake it sooner: every change of an item's state
// is published under the batch's id too.
func (s *Service) AwaitBatch(ctx context.Context, team, id, since string, wait time.Duration) (*BatchView, error) {
	v, err := s.Batch(ctx, team, id)
	if err != nil || wait == 0 || since == "" || v.Revision() != since {
		return v, err
	}
	changed, stop := s.d.Changes.Watch(v.ID)
	defer stop()
	timer := time.NewTimer(wait)
	defer timer.Stop()
	for {
		if v, err = s.Batch(ctx, team, id); err != nil {
			return nil, err
		}
		if v.Revision() != since {
			return v, nil
		}
		select {
		case <-changed:
		case <-timer.C:
			return v, nil
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}
