// Package webhook holds what distq's completion events are, independent of
// how they are stored or queued: the events and their delivery state, the
// policy of where events may go (DISTQ_WEBHOOK_ALLOWED_HOSTS and the
// address ranges refused at delivery), the back-off of retries, and the
// Sender that signs an event per the Standard Webhooks specification and
// posts it through a dialer that refuses private addresses. It imports no
// distq adapter: the use cases check notify URLs with it, the store keeps
// its events, internal/notify delivers them.
package webhook

import (
	"encoding/base64"
	"math/rand/v2"
	"time"
)

// Event types.
const (
	TypeBatchFinished        = "batch.finished"
	TypeDistributionFinished = "distribution.finished"
	// TypeDeviceDistributionFinished: a device distribution with a
	// notify_url reached a final state.
	TypeDeviceDistributionFinished = "device_distribution.finished"
)

// Delivery states of an event.
const (
	// StatePending: not yet delivered; an attempt is due or scheduled.
	StatePending = "pending"
	// StateDelivered: a receiver answered 2xx.
	StateDelivered = "delivered"
	// StateFailed: no attempt succeeded within MaxAge; POST
	// /v1/batches/{id}/notify sends it again.
	StateFailed = "failed"
)

// Event is one completion event and its delivery state. ID is the
// webhook-id of every attempt; Body, fixed when the event is made, is
// {"type","timestamp","data"}.
type Event struct {
	ID        string
	Type      string
	Subject   string // the batch, distribution or device distribution id
	Team      string
	URL       string
	CreatedAt time.Time
	Body      []byte
	Delivery
}

// Delivery is the delivery state of an event, as GET /v1/batches/{id}
// shows it.
type Delivery struct {
	State         string
	Attempts      int
	LastAttemptAt *time.Time
	// LastStatus is the HTTP status of the last attempt, 0 when it got none.
	LastStatus int
	// LastError says why the last attempt failed (never a secret).
	LastError   string
	NextRetryAt *time.Time
	DeliveredAt *time.Time
	// WindowStart is when the current series of attempts began (the event's
	// creation, or its last re-send): retries stop MaxAge after it.
	WindowStart time.Time
}

// Retry policy defaults.
const (
	DefaultFirstRetry = 5 * time.Second
	DefaultMaxBackoff = time.Hour
	DefaultMaxAge     = 24 * time.Hour
)

// Backoff returns the wait before the attempt after failure n (1 for the
// first failure): first doubled per failure up to max, with jitter (half
// fixed, half random), so that receivers coming back are not hit by every
// sender at once.
func Backoff(n int, first, max time.Duration) time.Duration {
	d := first
	for i := 1; i < n && d < max; i++ {
		d *= 2
	}
	if d > max {
		d = max
	}
	return d/2 + rand.N(d/2+1)
}

func base64Len(s string) (int, error) {
	b, err := base64.StdEncoding.DecodeString(s)
	return len(b), err
}
