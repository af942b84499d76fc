package quota

import (
	"context"
	"testing"
	"time"

	"github.com/distq/distq/internal/redistest"
)

// BenchmarkReserve measures one reservation round trip (one EVALSHA of
// reserve.lua): "granted" records a grant each time, "refused" is over the
// maximum wait (the account is paused) and records nothing; "parallel"
// shares one account between GOMAXPROCS goroutines.
func BenchmarkReserve(b *testing.B) {
	db := redistest.New(b)
	ctx := context.Background()
	l := New(db.Client, Options{})
	b.Run("granted", func(b *testing.B) {
		uid := newUID()
		for b.Loop() {
			// A high rate and a long wait: every call is granted, some ahead of now.
			if r, err := l.Reserve(ctx, uid, "Create", 1000, 24*time.Hour); err != nil || !r.OK {
				b.Fatalf("Reserve = %+v, %v", r, err)
			}
		}
	})
	b.Run("refused", func(b *testing.B) {
		uid := newUID()
		if err := l.Pause(ctx, uid, 24*time.Hour); err != nil {
			b.Fatal(err)
		}
		for b.Loop() {
			if r, err := l.Reserve(ctx, uid, "Create", 1, 0); err != nil || r.OK {
				b.Fatalf("Reserve = %+v, %v", r, err)
			}
		}
	})
	b.Run("parallel", func(b *testing.B) {
		uid := newUID()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := l.Reserve(ctx, uid, "Create", 1000, 24*time.Hour); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}
