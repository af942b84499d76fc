package quota

import (
	"context"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/distq/distq/internal/redistest"
)

const ms = time.Millisecond

func TestEstimate(t *testing.T) {
	t.Parallel()
	l := New(nil, Options{})
	tests := []struct {
		name      string
		lat, late []time.Duration
		want      estimate
	}{
		{"no samples", nil, nil, estimate{}},
		{"one sample", []time.Duration{3 * ms}, nil, estimate{lo: 3 * ms, hi: 3 * ms, n: 1}},
		{"constant", []time.Duration{ms, ms, ms, ms}, nil, estimate{lo: ms, hi: ms, n: 4}},
		{"small sample: the maximum", []time.Duration{30 * ms, 10 * ms, 20 * ms}, nil, estimate{lo: 10 * ms, hi: 30 * ms, n: 3}},
		{"lateness", []time.Duration{30 * ms, 10 * ms, 20 * ms}, []time.Duration{2 * ms, ms}, estimate{lo: 10 * ms, hi: 30 * ms, late: 2 * ms, n: 3}},
		// One stall of the process while an answer came back, among 0-50 ms:
		// fenced off (beyond twice the 0.9-quantile's distance from the
		// minimum); two in 13 samples are the spread, and count.
		{"one stall fenced off", append(ramp13(), 111*ms), nil, estimate{lo: 2 * ms, hi: 50 * ms, n: 14}},
		{"two stalls count", append(ramp13(), 111*ms, 120*ms), nil, estimate{lo: 2 * ms, hi: 120 * ms, n: 15}},
		// 200 samples 1..200 ms: the 0.99 quantile is the 198th.
		{"large sample: the quantile", ramp(200), nil, estimate{lo: ms, hi: 198 * ms, n: 200}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			now := time.Now()
			s := &series{}
			for _, d := range tt.lat {
				s.lat = append(s.lat, sample{now, d})
			}
			for _, d := range tt.late {
				s.late = append(s.late, sample{now, d})
			}
			if diff := cmp.Diff(tt.want, l.estimate(s, now), cmp.AllowUnexported(estimate{})); diff != "" {
				t.Errorf("estimate (-want +got):\n%s", diff)
			}
		})
	}
}

// ramp13 returns 13 samples spread over 2–50 ms.
func ramp13() []time.Duration {
	var ds []time.Duration
	for i := range 13 {
		ds = append(ds, 2*ms+time.Duration(i)*4*ms)
	}
	return ds
}

// ramp returns 1 ms, 2 ms, ... n ms.
func ramp(n int) []time.Duration {
	var ds []time.Duration
	for i := range n {
		ds = append(ds, time.Duration(i+1)*ms)
	}
	return ds
}

func TestEstimateWindow(t *testing.T) {
	t.Parallel()
	l := New(nil, Options{LatencyWindow: 4, LatencyMaxAge: time.Minute})
	now := time.Now()
	s := &series{}
	// An old burst of jitter, then calm: the old samples age out.
	for i := range 10 {
		s.lat = l.push(s.lat, sample{now.Add(-2 * time.Minute), time.Duration(i) * 10 * ms}, now.Add(-2*time.Minute))
	}
	for range 3 {
		s.lat = l.push(s.lat, sample{now, 2 * ms}, now)
	}
	want := estimate{lo: 2 * ms, hi: 2 * ms, n: 3}
	if diff := cmp.Diff(want, l.estimate(s, now), cmp.AllowUnexported(estimate{})); diff != "" {
		t.Errorf("estimate after calm (-want +got):\n%s", diff)
	}
	if len(s.lat) != 3 {
		t.Errorf("kept %d samples, want 3", len(s.lat))
	}
}

// TestMargin feeds latencies through ObserveLatency and reads the margin
// back from Redis, as every Reserve sees it.
func TestMargin(t *testing.T) {
	t.Parallel()
	db := redistest.New(t)
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(1, 2))
	uniform := func(lo, hi time.Duration) func() time.Duration {
		return func() time.Duration { return lo + time.Duration(rng.Int64N(int64(hi-lo))) }
	}
	constant := func(d time.Duration) func() time.Duration { return func() time.Duration { return d } }
	tests := []struct {
		name     string
		samples  int
		next     func() time.Duration
		min, max time.Duration
	}{
		{"no observation: initial margin", 0, nil, 50 * ms, 50 * ms},
		{"one observation: initial margin", 1, constant(ms), 50 * ms, 50 * ms},
		{"loopback, constant 1ms: floor", 200, constant(ms), 5 * ms, 5 * ms},
		{"loopback, 0.5-2ms", 200, uniform(ms/2, 2*ms), 5 * ms, 5 * ms},
		{"jitter 0-50ms", 200, uniform(0, 50*ms), 47 * ms, 53 * ms},
		{"jitter 0-50ms, few samples: wider", 20, uniform(0, 50*ms), 47 * ms, 60 * ms},
		{"steady 300ms plus 0-10ms", 200, uniform(300*ms, 310*ms), 9 * ms, 11 * ms},
		{"jitter 0-1s: ceiling", 200, uniform(0, time.Second), 200 * ms, 200 * ms},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			uid := newUID()
			l := New(db.Client, Options{})
			for range tt.samples {
				l.ObserveLatency(ctx, uid, "Create", tt.next())
			}
			got, err := l.Margin(ctx, uid, "Create")
			if err != nil {
				t.Fatal(err)
			}
			if got < tt.min || got > tt.max {
				t.Errorf("Margin = %v, want in [%v, %v]", got, tt.min, tt.max)
			}
			t.Logf("margin %v: %.1f%% of the rate", got, 100/(1+got.Seconds()))
		})
	}
}

// TestMarginShared runs two Limiters (two processes) on one account.
func TestMarginShared(t *testing.T) {
	t.Parallel()
	db := redistest.New(t)
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(3, 4))

	t.Run("largest spread wins", func(t *testing.T) {
		uid := newUID()
		calm, jittery := New(newClient(t, db), Options{}), New(newClient(t, db), Options{})
		for range 200 {
			calm.ObserveLatency(ctx, uid, "Create", ms)
			jittery.ObserveLatency(ctx, uid, "Create", time.Duration(rng.Int64N(int64(50*ms))))
		}
		for name, l := range map[string]*Limiter{"calm": calm, "jittery": jittery} {
			got, err := l.Margin(ctx, uid, "Create")
			if err != nil || got < 47*ms || got > 53*ms {
				t.Errorf("%s process: Margin = %v, %v; want about 50ms", name, got, err)
			}
		}
	})

	t.Run("spread across processes counts", func(t *testing.T) {
		uid := newUID()
		near, far := New(newClient(t, db), Options{}), New(newClient(t, db), Options{})
		for range 50 {
			near.ObserveLatency(ctx, uid, "Create", ms)
			far.ObserveLatency(ctx, uid, "Create", 41*ms)
		}
		got, err := near.Margin(ctx, uid, "Create")
		// 40 ms widened by (100+1)/(100-1).
		if err != nil || got < 40*ms || got > 41*ms {
			t.Errorf("Margin = %v, %v; want about 40ms (one process steady at 1ms, one at 41ms)", got, err)
		}
	})

	t.Run("estimates of a silent process expire", func(t *testing.T) {
		uid := newUID()
		steady := New(newClient(t, db), Options{})
		slow := New(newClient(t, db), Options{MarginTTL: 300 * ms})
		for range 100 {
			slow.ObserveLatency(ctx, uid, "Create", time.Duration(rng.Int64N(int64(80*ms))))
			steady.ObserveLatency(ctx, uid, "Create", 2*ms)
		}
		if got, _ := steady.Margin(ctx, uid, "Create"); got < 70*ms {
			t.Fatalf("Margin while the slow process reports = %v, want its ~80ms", got)
		}
		deadline := time.Now().Add(10 * time.Second)
		for {
			got, err := steady.Margin(ctx, uid, "Create")
			if err != nil {
				t.Fatal(err)
			}
			if got == 5*ms {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("Margin still %v after the slow process went silent, want 5ms", got)
			}
			time.Sleep(50 * ms)
		}
		// Expired entries are pruned by the next write.
		steady.ObserveLatency(ctx, uid, "Create", 2*ms)
		if _, err := steady.Reserve(ctx, uid, "Create", 2, 0); err != nil {
			t.Fatal(err)
		}
		fields, err := db.Client.HKeys(ctx, key(uid, kindMargin, "Create")).Result()
		if diff := cmp.Diff([]string{steady.opts.ID}, fields); err != nil || diff != "" {
			t.Errorf("margin entries (-want +got):\n%s %v", diff, err)
		}
	})

	t.Run("reserve spaces grants by the shared margin", func(t *testing.T) {
		uid := newUID()
		a, b := New(newClient(t, db), Options{}), New(newClient(t, db), Options{})
		for range 50 {
			a.ObserveLatency(ctx, uid, "Create", 10*ms)
			a.ObserveLatency(ctx, uid, "Create", 22*ms)
		}
		want, err := b.Margin(ctx, uid, "Create")
		if err != nil || want < 12*ms || want > 13*ms {
			t.Fatalf("Margin = %v, %v; want 12ms widened by 101/99", want, err)
		}
		first, err := b.Reserve(ctx, uid, "Create", 1, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		second, err := b.Reserve(ctx, uid, "Create", 1, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		if d := second.At.Sub(first.At); d != time.Second+want {
			t.Errorf("grants %v apart, want 1s + margin %v", d, want)
		}
	})
}

// TestWaitLateness checks that Wait's own lateness reaches the estimate.
func TestWaitLateness(t *testing.T) {
	t.Parallel()
	db := redistest.New(t)
	ctx := context.Background()
	uid := newUID()
	l := New(db.Client, Options{MinMargin: time.Microsecond})
	for range 3 {
		if _, err := l.Wait(ctx, uid, "Create", 100, 0); err != nil {
			t.Fatal(err)
		}
	}
	l.mu.Lock()
	late := len(l.series[seriesKey{uid, "Create"}].late)
	l.mu.Unlock()
	if late != 3 {
		t.Fatalf("%d lateness samples after 3 Waits, want 3", late)
	}
	for range 10 {
		l.ObserveLatency(ctx, uid, "Create", ms)
	}
	// Latencies alone give a zero spread; the Redis round trips of Wait do not.
	if got, err := l.Margin(ctx, uid, "Create"); err != nil || got <= time.Microsecond {
		t.Errorf("Margin = %v, %v; want above the 1µs floor", got, err)
	}
}

// TestMarginFewSamplesKeepsInitial: two calls whose latencies happen to be
// close (53 and 50 ms of a 0–50 ms jitter, as measured under the CPU hog)
// say nothing of the spread; the margin stays at the initial one until
// MinSamples/2 samples are pooled, then at least a 99% bound on the spread
// until MinSamples (see TestMarginFloorBetweenHalfAndMinSamples).
func TestMarginFewSamplesKeepsInitial(t *testing.T) {
	t.Parallel()
	db := redistest.New(t)
	ctx := context.Background()
	uid := newUID()
	a, b := New(newClient(t, db), Options{}), New(newClient(t, db), Options{})
	a.ObserveLatency(ctx, uid, "Create", 53*ms)
	b.ObserveLatency(ctx, uid, "Create", 50*ms)
	got, err := a.Margin(ctx, uid, "Create")
	if err != nil || got != 50*ms {
		t.Fatalf("2 samples 3 ms apart: Margin = %v, %v; want the initial 50ms", got, err)
	}
	r, err := a.Reserve(ctx, uid, "Create", 2, time.Second)
	if err != nil || r.Margin != 50*ms {
		t.Fatalf("2 samples: Reserve's margin = %v, %v; want 50ms", r.Margin, err)
	}
	for range 8 {
		a.ObserveLatency(ctx, uid, "Create", 51*ms)
	}
	// 10 samples within 3 ms: a 99% bound on the spread (×1.96) is under
	// the initial margin, and is the floor until 20.
	got, err = a.Margin(ctx, uid, "Create")
	if err != nil || got < 5*ms || got > 7*ms {
		t.Fatalf("10 samples within 3 ms: Margin = %v, %v; want the 99%% bound, about 6ms", got, err)
	}
}

// Between MinSamples/2 and MinSamples samples, a spread measured small is
// used (a 99% bound on it is under the initial margin), a wide one is not
// trusted below the initial margin yet.
func TestMarginFloorBetweenHalfAndMinSamples(t *testing.T) {
	t.Parallel()
	db := redistest.New(t)
	ctx := context.Background()
	l := New(newClient(t, db), Options{})
	calm, wide := newUID(), newUID()
	for i := range 12 {
		l.ObserveLatency(ctx, calm, "Create", ms+time.Duration(i)*100*time.Microsecond) // 1.0–2.1 ms
		l.ObserveLatency(ctx, wide, "Create", time.Duration(i)*3*ms)                    // 0–33 ms: ~39 ms widened
	}
	if got, err := l.Margin(ctx, calm, "Create"); err != nil || got != 5*ms {
		t.Errorf("12 calm samples: Margin = %v, %v; want the 5ms floor", got, err)
	}
	if got, err := l.Margin(ctx, wide, "Create"); err != nil || got != 50*ms {
		t.Errorf("12 samples over 33 ms: Margin = %v, %v; want the initial 50ms", got, err)
	}
}
