package service_test

import (
	"context"
	"io"
	"log/slog"
	"math"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/distq/distq/internal/distribution"
	"github.com/distq/distq/internal/metrics"
	"github.com/distq/distq/internal/redistest"
	"github.com/distq/distq/internal/service"
	"github.com/distq/distq/internal/store"
)

// slots reports fixed slot holders.
type slots struct {
	ids []string
	ext int
}

func (s slots) SlotHolders(context.Context, string) ([]string, int, error) { return s.ids, s.ext, nil }

// The account view: Creates per minute over the hour (counted by the
// store whenever a transition marks a Create as sent), each team's share
// of the last 60 s, backlog and slots, other teams by name only.
func TestAccountFigures(t *testing.T) {
	t.Parallel()
	st := store.NewRedis(redistest.New(t).Client, time.Hour)
	// The store dates Creates by its own clock; the view is asked 30 s into
	// the minute after theirs, so that half of that minute counts.
	var now, at time.Time
	sl := &slots{}
	svc := service.New(service.Deps{
		Store: st, Idempotency: st, Enqueuer: &enqueuer{}, Changes: noChanges{}, Figures: st, Slots: sl,
		Accounts: []service.Account{{Name: "main", UID: uid, CreateQPS: 2, MaxJobs: 10, Default: true}},
		Metrics:  metrics.New(prometheus.NewRegistry()),
		Log:      slog.New(slog.NewTextHandler(io.Discard, nil)),
		Now: func() time.Time {
			if at.IsZero() {
				return time.Now().UTC()
			}
			return at
		},
	})
	ctx := t.Context()
	submit := func(team string, pks ...string) []string {
		br := service.BatchRequest{Defaults: distribution.Request{SourceInstanceID: "iotx-a", TargetInstanceID: "iotx-b"}}
		for _, pk := range pks {
			br.Items = append(br.Items, service.BatchItem{Request: distribution.Request{ProductKey: pk}})
		}
		res, err := svc.SubmitBatch(ctx, team, br)
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, r := range res.Results {
			ids = append(ids, r.ID)
		}
		return ids
	}
	a := submit("team-a", "a1A1", "a1A2", "a1A3", "a1A4")
	b := submit("team-b", "a1B1", "a1B2")
	// Team A sends 3 Creates (one of them twice, after a throttle), team B 1.
	var minutes []time.Time
	send := func(id string) {
		r, err := st.Update(ctx, id, func(r *distribution.Record) error { return r.StartSubmit(time.Now()) })
		if err != nil {
			t.Fatal(err)
		}
		minutes = append(minutes, r.UpdatedAt.Truncate(time.Minute))
	}
	send(a[0])
	if _, err := st.Update(ctx, a[0], func(r *distribution.Record) error { return r.Requeue(time.Now(), distribution.WaitRateLimit, nil) }); err != nil {
		t.Fatal(err)
	}
	send(a[0])
	send(a[1])
	send(b[0])
	sl.ids, sl.ext = []string{a[0], a[1], b[0]}, 1
	if !minutes[0].Equal(minutes[len(minutes)-1]) {
		t.Skip("the Creates straddled a minute boundary (a few ms in 60 s): run again")
	}
	now, at = minutes[0], minutes[0].Add(90*time.Second)

	v, err := svc.Account(ctx, "team-a", "")
	if err != nil {
		t.Fatal(err)
	}
	if v.Name != "main" || v.CreateQPS != 2 || v.MaxJobs != 10 || len(v.Minutes) != 60 || v.CreatesLastHour != 4 || v.SlotsInUse != 3 || v.External != 1 {
		t.Fatalf("view %+v", v)
	}
	if last := v.Minutes[58]; last.Count != 4 || !last.Start.Equal(now.Truncate(time.Minute)) {
		t.Errorf("the minute of the Creates: %+v, want 4 at %v", last, now.Truncate(time.Minute))
	}
	if len(v.Teams) != 2 {
		t.Fatalf("teams %+v", v.Teams)
	}
	ta, tb := v.Teams[0], v.Teams[1]
	// Half of the previous minute counts: A 1.5 of 2 Creates, B 0.5.
	if ta.Team != "team-a" || !ta.Self || ta.Backlog != 4 || ta.Slots != 2 || math.Abs(ta.CreatesLastMinute-1.5) > 1e-9 || math.Abs(ta.Share-0.75) > 1e-9 {
		t.Errorf("team A %+v, want self, backlog 4, 2 slots, 1.5 Creates, share 0.75", ta)
	}
	if tb.Team != "team-b" || tb.Self || tb.Backlog != 2 || tb.Slots != 1 || math.Abs(tb.Share-0.25) > 1e-9 {
		t.Errorf("team B %+v, want backlog 2, 1 slot, share 0.25", tb)
	}
}

// A dry run validates as a submission would, flags a repeat within the
// batch, estimates, and writes nothing.
func TestDryRunBatch(t *testing.T) {
	t.Parallel()
	svc, st, enq := newService(t)
	ctx := t.Context()
	br := service.BatchRequest{Defaults: distribution.Request{SourceInstanceID: "iotx-a", TargetInstanceID: "iotx-b"}, Items: []service.BatchItem{
		{Request: distribution.Request{ProductKey: "a1One"}},
		{Request: distribution.Request{ProductKey: "a1One"}},
		{Request: distribution.Request{ProductKey: "a1One", TargetInstanceID: "iotx-c"}},
		{Request: distribution.Request{ProductKey: "no good"}},
	}}
	d, err := svc.DryRunBatch(ctx, team, br)
	if err != nil {
		t.Fatal(err)
	}
	if d.Valid != 2 || d.Rejected != 2 || d.ETA == nil || d.Results[0].Err != nil || d.Results[2].Err != nil ||
		!service.IsCode(d.Results[1].Err, service.CodeDuplicate) || !service.IsCode(d.Results[3].Err, service.CodeInvalid) {
		t.Fatalf("dry run %+v", d)
	}
	if recs, _, _ := st.List(ctx, distribution.Filter{Team: team}); len(recs) != 0 || len(enq.ids) != 0 {
		t.Fatalf("a dry run wrote %d records, enqueued %d", len(recs), len(enq.ids))
	}
	if _, err := svc.DryRunBatch(ctx, team, service.BatchRequest{}); !service.IsCode(err, service.CodeInvalid) {
		t.Fatalf("empty dry run: %v", err)
	}
}
