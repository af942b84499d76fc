package quota

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/redis/go-redis/v9"
	"go.uber.org/goleak"

	"github.com/distq/distq/internal/redistest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

var uidSeq atomic.Int64

// newUID returns an account UID no other test of this run uses.
func newUID() string { return fmt.Sprintf("1%09d", uidSeq.Add(1)) }

// fixedMargin returns Options whose margin is always m.
func fixedMargin(m time.Duration) Options { return Options{MinMargin: m, MaxMargin: m} }

// newClient opens another connection pool on db, standing for another process.
func newClient(t *testing.T, db *redistest.DB) *redis.Client {
	t.Helper()
	c := redis.NewClient(db.Options())
	t.Cleanup(func() { c.Close() })
	return c
}

func TestKey(t *testing.T) {
	t.Parallel()
	tests := []struct {
		uid    string
		kind   kind
		action []string
		want   string
	}{
		{"1234567890", kindRate, []string{"CreateProductDistributeJob"}, "distq:{1234567890}:rate:CreateProductDistributeJob"},
		{"1234567890", kindMargin, []string{"QueryDeviceDistributeJob"}, "distq:{1234567890}:margin:QueryDeviceDistributeJob"},
		{"1234567890", kindPause, nil, "distq:{1234567890}:pause"},
		{"1234567890", kindSlots, nil, "distq:{1234567890}:slots"},
		{"1234567890", kindExternal, nil, "distq:{1234567890}:external"},
		{"1234567890", kindWaiters, nil, "distq:{1234567890}:waiters"},
	}
	for _, tt := range tests {
		if diff := cmp.Diff(tt.want, key(tt.uid, tt.kind, tt.action...)); diff != "" {
			t.Errorf("key(%q, %q, %q) (-want +got):\n%s", tt.uid, tt.kind, tt.action, diff)
		}
	}
}

func TestInvalidArguments(t *testing.T) {
	t.Parallel()
	// No call below reaches Redis: a nil-address client would fail them all otherwise.
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	t.Cleanup(func() { rdb.Close() })
	l := New(rdb, Options{})
	ctx := context.Background()
	calls := map[string]func() error{
		"empty uid":       func() error { _, err := l.Reserve(ctx, "", "A", 2, 0); return err },
		"brace uid":       func() error { _, err := l.Reserve(ctx, "1{2", "A", 2, 0); return err },
		"empty action":    func() error { _, err := l.Reserve(ctx, "1", "", 2, 0); return err },
		"zero rate":       func() error { _, err := l.Reserve(ctx, "1", "A", 0, 0); return err },
		"negative wait":   func() error { _, err := l.Wait(ctx, "1", "A", 2, -time.Second); return err },
		"margin uid":      func() error { _, err := l.Margin(ctx, "}", "A"); return err },
		"pause uid":       func() error { return l.Pause(ctx, "", time.Second) },
		"zero limit":      func() error { _, _, err := l.AcquireSlot(ctx, "1", "h", 0, time.Second); return err },
		"zero lease":      func() error { _, _, err := l.AcquireSlot(ctx, "1", "h", 1, 0); return err },
		"empty holder":    func() error { _, err := l.RenewSlot(ctx, "1", "", time.Second); return err },
		"release holder":  func() error { _, err := l.ReleaseSlot(ctx, "1", ""); return err },
		"negative extern": func() error { return l.SetExternal(ctx, "1", -1) },
		"empty waiter":    func() error { return l.AddWaiter(ctx, "1", "") },
	}
	for name, call := range calls {
		if err := call(); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: err = %v, want ErrInvalid", name, err)
		}
	}
}
