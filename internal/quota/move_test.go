package quota

import (
	"context"
	"testing"
	"time"

	"github.com/distq/distq/internal/redistest"
)

// A call that is overdue (its process stalled between the grant and the
// send) moves its grant to now while no later grant counts on it, so the
// next grants keep 1 s + margin from where it really went; once a later
// grant was reserved against it, or a pause came, it cannot move.
func TestMoveGrant(t *testing.T) {
	t.Parallel()
	db := redistest.New(t)
	ctx := context.Background()
	l := New(newClient(t, db), Options{InitialMargin: 10 * ms})
	const n = 2
	uid := newUID()
	reserve := func() Grant {
		t.Helper()
		g, err := l.ReserveGrant(ctx, uid, "Create", n, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		return g
	}
	g1, g2 := reserve(), reserve()
	if err := g2.Sleep(ctx, 0); err != nil {
		t.Fatal(err)
	}
	time.Sleep(30 * ms) // a stall: both are overdue
	if over, late := g2.Overdue(g2.Epoch); !over || late < 30*ms {
		t.Fatalf("after a 30ms stall: overdue %v, %v; want overdue", over, late)
	}
	m2, ok, err := l.MoveGrant(ctx, uid, "Create", n, g2)
	if err != nil || !ok {
		t.Fatalf("move the newest grant: %v, %v", ok, err)
	}
	if !m2.At.After(g2.At.Add(29*ms)) || m2.Margin != 10*ms {
		t.Fatalf("moved to %v (was %v), margin %v", m2.At, g2.At, m2.Margin)
	}
	if over, late := m2.Overdue(m2.Epoch); over {
		t.Fatalf("moved grant overdue by %v at once", late)
	}
	// The third grant counts on the first (the 2nd newest): it is 1 s +
	// margin after it, and the moved grant is still among the 2 newest.
	g3 := reserve()
	if d := g3.At.Sub(g1.At); d != time.Second+10*ms {
		t.Fatalf("third grant %v after the first, want 1.01s", d)
	}
	// Now the moved grant counts for the fourth: the fourth is 1 s + margin
	// after where the second really went.
	m2b, ok, err := l.MoveGrant(ctx, uid, "Create", n, m2)
	if err != nil || !ok {
		t.Fatalf("move again while among the 2 newest: %v, %v", ok, err)
	}
	g4 := reserve()
	if d := g4.At.Sub(m2b.At); d != time.Second+10*ms {
		t.Fatalf("fourth grant %v after the moved second, want 1.01s", d)
	}
	// The first is no longer among the 2 newest: the third was reserved
	// against it, so it cannot move.
	if _, ok, err := l.MoveGrant(ctx, uid, "Create", n, g1); err != nil || ok {
		t.Fatalf("moved a grant a later one counts on: %v, %v", ok, err)
	}
	// No move across a pause.
	if err := l.Pause(ctx, uid, time.Millisecond); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * ms)
	if _, ok, err := l.MoveGrant(ctx, uid, "Create", n, g4); err != nil || ok {
		t.Fatalf("moved across a pause: %v, %v", ok, err)
	}
}

// ReserveGrant's local instants bracket the grant: the sleep never ends
// before it, and once the round trips are known the bracket is tight, so an
// on-time call is not taken for a late one.
func TestReserveGrantLocalInstants(t *testing.T) {
	t.Parallel()
	db := redistest.New(t)
	ctx := context.Background()
	l := New(newClient(t, db), Options{InitialMargin: 10 * ms})
	uid := newUID()
	for range 20 {
		g, err := l.ReserveGrant(ctx, uid, "Create", 50, time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if g.wake.Before(g.Due) {
			t.Fatalf("wake %v before due %v", g.wake, g.Due)
		}
		if err := g.Sleep(ctx, 0); err != nil {
			t.Fatal(err)
		}
		// The server clock is this machine's: the grant has passed.
		if now := time.Now(); now.Before(g.At.Add(-time.Millisecond)) {
			t.Fatalf("woke %v before the grant", g.At.Sub(now))
		}
	}
	g, err := l.ReserveGrant(ctx, uid, "Create", 50, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if b := g.wake.Sub(g.Due); b > 2*ms {
		t.Errorf("bracket %v after 20 round trips, want under 2ms", b)
	}
}

// The offset of the server's clock is bounded by the fastest recent round
// trip: a slow one (the process stalled while the answer came back) does
// not widen it, and a clock that was set is followed at once.
func TestOffsetKeepsTheFastestBound(t *testing.T) {
	t.Parallel()
	l := New(nil, Options{})
	t0 := l.base.Add(time.Second)
	// Server clock = local + 1000 s (in µs), round trips of 200 µs.
	server := func(local time.Time) int64 { return local.Sub(l.base).Microseconds() + 1_000_000_000 }
	lo, hi := l.offset("u", t0, t0.Add(200*time.Microsecond), server(t0.Add(100*time.Microsecond)))
	if hi-lo != 200 {
		t.Fatalf("one round trip: bracket %d µs, want 200", hi-lo)
	}
	// A slow round trip (30 ms) later: the bracket stays the fast one's.
	t1 := t0.Add(time.Second)
	lo, hi = l.offset("u", t1, t1.Add(30*time.Millisecond), server(t1.Add(time.Millisecond)))
	if hi-lo != 200 || lo > 1_000_000_000 || hi < 1_000_000_000 {
		t.Fatalf("after a slow round trip: [%d, %d], want the fast 200 µs bracket around 1e9", lo, hi)
	}
	// The server's clock was set 50 ms ahead: the old bounds disagree with
	// the new round trip, which alone counts.
	t2 := t1.Add(time.Second)
	lo, hi = l.offset("u", t2, t2.Add(time.Millisecond), server(t2)+50_000)
	if lo < 1_000_049_000 || hi > 1_000_051_000 {
		t.Fatalf("after the clock was set: [%d, %d], want around 1e9 + 50000", lo, hi)
	}
	// Samples older than the window no longer bound it.
	t3 := t2.Add(clockWindow + time.Second)
	lo, hi = l.offset("u", t3, t3.Add(10*time.Millisecond), server(t3)+50_000)
	if hi-lo != 10_000 {
		t.Fatalf("after the window: bracket %d µs, want the new round trip's 10000", hi-lo)
	}
}

// For calls reported with ObserveSend, the margin is the spread after the
// send plus the send allowance (the median delay from grant to send, at
// least MinMargin, 5 ms), and Reserve hands the allowance out: the stalls of a few
// calls do not widen every window.
func TestSendAllowance(t *testing.T) {
	t.Parallel()
	db := redistest.New(t)
	ctx := context.Background()
	l := New(newClient(t, db), Options{})
	uid := newUID()
	for i := range 40 {
		s := 500 * time.Microsecond
		if i%10 == 0 {
			s = 40 * ms // a stalled wake-up now and then
		}
		l.ObserveSend(uid, "Create", s)
		l.ObserveLatency(ctx, uid, "Create", time.Duration(10+i)*ms) // spread 39 ms
	}
	r, err := l.Reserve(ctx, uid, "Create", 2, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	spread := time.Duration(float64(39*ms) * 41 / 39)
	if r.Allow != 5*ms || r.Margin < spread+5*ms-ms/10 || r.Margin > spread+5*ms+ms/10 {
		t.Fatalf("margin %v, allowance %v; want %v + 5ms and 5ms", r.Margin, r.Allow, spread)
	}
	// Without ObserveSend (WaitGrant's lateness), the late term is the
	// LatencyQuantile of the samples: the stalls count.
	uid2 := newUID()
	for i := range 40 {
		late := 500 * time.Microsecond
		if i%10 == 0 {
			late = 40 * ms
		}
		l.observeLateness(uid2, "Create", late)
		l.ObserveLatency(ctx, uid2, "Create", time.Duration(10+i)*ms)
	}
	r2, err := l.Reserve(ctx, uid2, "Create", 2, time.Second)
	if err != nil || r2.Margin < spread+40*ms-ms/10 {
		t.Fatalf("with lateness: margin %v, %v; want %v + 40ms", r2.Margin, err, spread)
	}
}
