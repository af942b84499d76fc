package quota

import (
	"context"
	"errors"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/redis/go-redis/v9"

	"github.com/distq/distq/internal/redistest"
)

func TestReserveArithmetic(t *testing.T) {
	t.Parallel()
	const margin = 10 * time.Millisecond
	db := redistest.New(t)
	l := New(db.Client, fixedMargin(margin))
	ctx := context.Background()
	const (
		long = time.Minute // max wait large enough for any grant here
		span = time.Second + margin
	)
	// Each step reserves with maxWait; when exact, its grant must be exactly
	// after later than step ref's, else at least that much later. Every step
	// runs well within 1 s of the first, so "now" never decides a later grant.
	type step struct {
		maxWait time.Duration
		ok      bool
		ref     int
		after   time.Duration
		exact   bool
	}
	tests := []struct {
		name  string
		n     int
		steps []step
	}{
		{"third in the same instant waits 1s+margin after the first", 2, []step{
			{long, true, 0, 0, false},
			{long, true, 0, 0, false},
			{long, true, 0, span, true},
		}},
		{"grants chain on the oldest of the last N", 2, []step{
			{long, true, 0, 0, false},
			{long, true, 0, 0, false},
			{long, true, 0, span, true},
			{long, true, 1, span, true},
			{long, true, 2, span, true},
		}},
		{"over max wait reserves nothing", 1, []step{
			{long, true, 0, 0, false},
			{100 * time.Millisecond, false, 0, span, true},
			{span - 200*time.Millisecond, false, 0, span, true}, // robust to a slow machine: the steps may be ~100ms apart
			{long, true, 0, span, true},
			{long, true, 3, span, true},
		}},
		{"max wait zero takes only immediate grants", 3, []step{
			{0, true, 0, 0, false},
			{0, true, 0, 0, false},
			{0, true, 0, 0, false},
			{0, false, 0, span, true},
		}},
		{"rate 10", 10, append(slices.Repeat([]step{{0, true, 0, 0, false}}, 10),
			step{long, true, 0, span, true},
			step{long, true, 1, span, true}),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			uid := newUID()
			var got []Reservation
			for i, s := range tt.steps {
				r, err := l.Reserve(ctx, uid, "Create", tt.n, s.maxWait)
				if err != nil {
					t.Fatalf("step %d: %v", i, err)
				}
				got = append(got, r)
				if r.OK != s.ok {
					t.Fatalf("step %d: OK = %v, want %v (%+v)", i, r.OK, s.ok, r)
				}
				if !r.OK && r.Wait <= s.maxWait {
					t.Errorf("step %d: refused with Wait %v <= max wait %v", i, r.Wait, s.maxWait)
				}
				if r.Wait < 0 {
					t.Errorf("step %d: negative Wait %v", i, r.Wait)
				}
				d := r.At.Sub(got[s.ref].At)
				if s.exact && d != s.after || !s.exact && d < s.after {
					t.Errorf("step %d: grant %v after step %d's, want %v (exact %v)", i, d, s.ref, s.after, s.exact)
				}
			}
		})
	}
}

func TestPause(t *testing.T) {
	t.Parallel()
	db := redistest.New(t)
	l := New(db.Client, fixedMargin(5*time.Millisecond))
	ctx := context.Background()
	uid, other := newUID(), newUID()

	if got, err := l.PausedUntil(ctx, uid); err != nil || !got.IsZero() {
		t.Fatalf("PausedUntil before any pause = %v, %v; want zero time", got, err)
	}
	before, err := l.Reserve(ctx, uid, "Create", 2, 0)
	if err != nil || !before.OK {
		t.Fatalf("Reserve = %+v, %v", before, err)
	}
	if err := l.Pause(ctx, uid, 2*time.Second); err != nil {
		t.Fatal(err)
	}
	until, err := l.PausedUntil(ctx, uid)
	if err != nil {
		t.Fatal(err)
	}
	if d := until.Sub(before.At); d < 2*time.Second || d > 3*time.Second {
		t.Fatalf("pause ends %v after the last grant, want about 2s", d)
	}

	// A shorter pause does not shorten it; a longer one extends it.
	if err := l.Pause(ctx, uid, 100*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if got, _ := l.PausedUntil(ctx, uid); !got.Equal(until) {
		t.Errorf("after a shorter pause PausedUntil = %v, want unchanged %v", got, until)
	}
	if err := l.Pause(ctx, uid, 0); err != nil {
		t.Fatal(err)
	}
	if err := l.Pause(ctx, uid, 4*time.Second); err != nil {
		t.Fatal(err)
	}
	extended, _ := l.PausedUntil(ctx, uid)
	if !extended.After(until) {
		t.Fatalf("after a longer pause PausedUntil = %v, want after %v", extended, until)
	}

	// Every action of the account waits; the grant is the pause end.
	for _, action := range []string{"Create", "Query"} {
		r, err := l.Reserve(ctx, uid, action, 10, time.Second)
		if err != nil || r.OK {
			t.Errorf("Reserve %s during the pause with max wait 1s = %+v, %v; want refused", action, r, err)
		}
		r, err = l.Reserve(ctx, uid, action, 10, time.Minute)
		if err != nil || !r.OK || !r.At.Equal(extended) {
			t.Errorf("Reserve %s = %+v, %v; want granted at the pause end %v", action, r, err, extended)
		}
	}
	// Other accounts do not wait.
	if r, err := l.Reserve(ctx, other, "Create", 2, 0); err != nil || !r.OK {
		t.Errorf("Reserve for another account = %+v, %v; want immediate", r, err)
	}

	// A pause ends on its own.
	if err := l.Pause(ctx, other, 50*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		until, err := l.PausedUntil(ctx, other)
		if err != nil {
			t.Fatal(err)
		}
		if until.IsZero() {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("PausedUntil still %v long after a 50ms pause", until)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestWait(t *testing.T) {
	t.Parallel()
	db := redistest.New(t)
	l := New(db.Client, fixedMargin(5*time.Millisecond))
	ctx := context.Background()
	uid := newUID()

	if _, err := l.Wait(ctx, uid, "Create", 1, 0); err != nil {
		t.Fatalf("first Wait: %v", err)
	}
	_, err := l.Wait(ctx, uid, "Create", 1, 100*time.Millisecond)
	var tooLong *TooLongError
	if !errors.As(err, &tooLong) || tooLong.Wait <= 100*time.Millisecond {
		t.Fatalf("Wait over max wait: err = %v, want *TooLongError with Wait > 100ms", err)
	}

	// A Wait whose context ends while sleeping returns the context's error.
	short, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	if _, err := l.Wait(short, uid, "Create", 1, time.Minute); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Wait with an ending context: err = %v, want context.DeadlineExceeded", err)
	}
}

// TestReserveConcurrent has 30 goroutines over 3 clients (3 processes) take
// grants at 10/s for about 3 s, sleeping until each grant like a worker, and
// proves from the grant times that no window of 1 s + MinMargin holds more
// than 10 of them.
func TestReserveConcurrent(t *testing.T) {
	t.Parallel()
	const (
		n       = 10
		workers = 30
		minimum = 5 * time.Millisecond
	)
	db := redistest.New(t)
	ctx := context.Background()
	uid := newUID()
	var limiters []*Limiter
	for range 3 {
		limiters = append(limiters, New(newClient(t, db), Options{MinMargin: minimum, MaxMargin: 20 * time.Millisecond}))
	}
	start := serverTime(t, db.Client)
	end := start.Add(3 * time.Second)

	var (
		mu     sync.Mutex
		grants []time.Time
		wg     sync.WaitGroup
	)
	for w := range workers {
		wg.Go(func() {
			l := limiters[w%len(limiters)]
			for {
				r, err := l.Reserve(ctx, uid, "Create", n, time.Second)
				if err != nil {
					t.Error(err)
					return
				}
				if !r.OK { // waiting is not failing: come back later
					time.Sleep(50 * time.Millisecond)
					continue
				}
				mu.Lock()
				grants = append(grants, r.At)
				mu.Unlock()
				if r.At.After(end) {
					return
				}
				time.Sleep(r.Wait)
				// Feed the margin estimator, so the margin moves while grants are taken.
				l.ObserveLatency(ctx, uid, "Create", time.Duration(rand.IntN(int(15*time.Millisecond))))
			}
		})
	}
	wg.Wait()
	checkWindows(t, grants, n, time.Second+minimum)
	if len(grants) < 2*n {
		t.Errorf("only %d grants", len(grants))
	}
}

// TestReserveBurst has goroutines over 3 clients reserve grants far ahead
// without sleeping while the shared margin changes under them.
func TestReserveBurst(t *testing.T) {
	t.Parallel()
	const (
		n       = 3
		minimum = time.Millisecond
	)
	db := redistest.New(t)
	ctx := context.Background()
	uid := newUID()
	var (
		mu     sync.Mutex
		grants []time.Time
		wg     sync.WaitGroup
	)
	for p := range 3 {
		l := New(newClient(t, db), Options{MinMargin: minimum, MaxMargin: 100 * time.Millisecond, LatencyWindow: 3})
		for range 8 {
			wg.Go(func() {
				for range 15 {
					// Latencies of this process swing between 0–90 ms and 30 ms flat.
					l.ObserveLatency(ctx, uid, "Create", time.Duration(rand.IntN(3*(p+1)))*10*time.Millisecond)
					r, err := l.Reserve(ctx, uid, "Create", n, time.Duration(rand.IntN(60))*time.Second)
					if err != nil {
						t.Error(err)
						return
					}
					if r.OK {
						mu.Lock()
						grants = append(grants, r.At)
						mu.Unlock()
					}
				}
			})
		}
	}
	wg.Wait()
	checkWindows(t, grants, n, time.Second+minimum)
}

// checkWindows fails t if any n+1 grants fall within span.
func checkWindows(t *testing.T, grants []time.Time, n int, span time.Duration) {
	t.Helper()
	slices.SortFunc(grants, func(a, b time.Time) int { return a.Compare(b) })
	for i := 0; i+n < len(grants); i++ {
		if d := grants[i+n].Sub(grants[i]); d < span {
			t.Errorf("grants %d..%d span %v < %v: %d grants in one window", i, i+n, d, span, n+1)
		}
	}
	t.Logf("%d grants, none more than %d in any %v", len(grants), n, span)
}

// serverTime returns the Redis server's clock.
func serverTime(t *testing.T, rdb *redis.Client) time.Time {
	t.Helper()
	now, err := rdb.Time(context.Background()).Result()
	if err != nil {
		t.Fatal(err)
	}
	return now
}

func TestReservationFields(t *testing.T) {
	t.Parallel()
	db := redistest.New(t)
	l := New(db.Client, fixedMargin(20*time.Millisecond))
	ctx := context.Background()
	uid := newUID()
	first, err := l.Reserve(ctx, uid, "Create", 1, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	second, err := l.Reserve(ctx, uid, "Create", 1, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	want := Reservation{OK: true, At: first.At.Add(time.Second + 20*time.Millisecond)}
	if diff := cmp.Diff(want, second, cmp.Comparer(func(a, b time.Duration) bool { return true })); diff != "" {
		t.Errorf("second reservation (-want +got):\n%s", diff)
	}
	if second.Wait <= time.Second || second.Wait > time.Second+20*time.Millisecond {
		t.Errorf("second Wait = %v, want in (1s, 1.02s]", second.Wait)
	}
	ttl, err := db.Client.PTTL(ctx, key(uid, kindRate, "Create")).Result()
	if err != nil || ttl <= 0 {
		t.Errorf("rate key PTTL = %v, %v; want an expiry", ttl, err)
	}
}
