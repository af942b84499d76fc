package queue

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/distq/distq/internal/config"
	"github.com/distq/distq/internal/distribution"
	"github.com/distq/distq/internal/metrics"
	"github.com/distq/distq/internal/quota"
	"github.com/distq/distq/internal/redistest"
	"github.com/distq/distq/internal/store"
)

// revisedSettings are the configuration's settings with a revision the
// test changes, as an operator's override would.
type revisedSettings struct {
	configSettings
	rev int64
}

func (s revisedSettings) Revision() int64 { return s.rev }

type revisedControls struct{ s *revisedSettings }

func (c revisedControls) Get(context.Context) Settings { return *c.s }

// The fair tick rests while every admission of an account is taken by an
// item waiting for a job slot: a tick that admits nothing then makes the
// account's next fairRestTicks-1 ticks skip it (an admission that frees
// meanwhile waits for the look, or for the Create that frees it, which
// admits at once); admissions held by runs are looked at every tick; and
// a change of the operators' settings makes the next tick look at once.
func TestFairTickRestsWhileAdmissionsAreTaken(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := redistest.New(t)
	st := store.NewRedis(db.Client, time.Hour)
	lim := quota.New(db.Client, quota.Options{})
	a := &Account{Account: config.Account{Name: "acct", UID: "1234567890123456", CreateQPS: 2, MaxJobs: 10}}
	w := NewWorker(st, lim, []*Account{a}, metrics.New(prometheus.NewRegistry()),
		asynq.NewInspectorFromRedisClient(db.Client), asynq.NewClientFromRedisClient(db.Client),
		slog.New(slog.DiscardHandler), Options{})
	set := &revisedSettings{configSettings: configSettings{a.Name: a}, rev: 1}
	w.UseControls(revisedControls{set})
	now := time.Now().UTC().Truncate(time.Millisecond)
	item := func(team, pk string) quota.FairItem {
		t.Helper()
		r := &store.Record{Distribution: distribution.Distribution{
			ID: distribution.NewID(now), Team: team, Account: a.Name, ProductKey: pk,
			SourceInstanceID: "iotx-src", TargetInstanceID: "iotx-dst", State: distribution.StateQueued,
			CreatedAt: now, UpdatedAt: now,
		}, UID: a.UID, Queue: QueueBatch}
		if _, err := st.Insert(ctx, nil, []*store.Record{r}); err != nil {
			t.Fatal(err)
		}
		return fairItem(r)
	}
	admitted := func(it quota.FairItem) bool {
		t.Helper()
		ok, err := lim.FairAdmitted(ctx, a.UID, it)
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}
	// K is 1 at 2 Creates/s: a1 takes the admission, b1 waits.
	a1, b1 := item("ta", "pk1"), item("tb", "pk2")
	for _, it := range []quota.FairItem{a1, b1} {
		if _, err := lim.FairEnqueue(ctx, a.UID, it, time.Minute); err != nil {
			t.Fatal(err)
		}
		w.admit(ctx, a, it.ID)
	}
	if !admitted(a1) || admitted(b1) {
		t.Fatalf("a1 admitted %v, b1 %v; want a1 only", admitted(a1), admitted(b1))
	}
	tick := newFairTickState()
	// a1's run holds its admission (not a slot waiter): the tick keeps
	// looking every tick, so an admission freed without its admit (a run
	// of a worker that died) goes on at the next tick.
	w.fairTick(ctx, tick)
	if tick.rest[a.Name] != 0 {
		t.Fatalf("resting %d ticks while the admission is held by a run, want 0", tick.rest[a.Name])
	}
	// a1 waits for a job slot with its admission: the tick rests.
	if err := lim.AddWaiter(ctx, a.UID, a1.ID); err != nil {
		t.Fatal(err)
	}
	w.fairTick(ctx, tick) // admits nothing: every admission taken by a slot waiter
	// a1's admission ends without its run admitting the next (as after a
	// lost wake): the resting tick finds it on its fifth tick, not before.
	if _, err := lim.FairDone(ctx, a.UID, a1); err != nil {
		t.Fatal(err)
	}
	for i := 1; i < fairRestTicks; i++ {
		w.fairTick(ctx, tick)
		if admitted(b1) {
			t.Fatalf("b1 admitted at resting tick %d", i)
		}
	}
	w.fairTick(ctx, tick)
	if !admitted(b1) {
		t.Fatalf("b1 not admitted at the tick after %d resting ones", fairRestTicks-1)
	}
	// Resting again behind b1; an operator's change makes the next tick
	// look at once.
	c1 := item("tc", "pk3")
	if _, err := lim.FairEnqueue(ctx, a.UID, c1, time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := lim.AddWaiter(ctx, a.UID, b1.ID); err != nil {
		t.Fatal(err)
	}
	w.fairTick(ctx, tick)
	if tick.rest[a.Name] == 0 {
		t.Fatal("not resting while b1 waits for a slot with its admission")
	}
	if _, err := lim.FairDone(ctx, a.UID, b1); err != nil {
		t.Fatal(err)
	}
	set.rev++
	w.fairTick(ctx, tick)
	if !admitted(c1) {
		t.Fatal("c1 not admitted at the first tick after the settings changed")
	}
}
