package service_test

import (
	"context"
	"io"
	"log/slog"
	"math"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/distq/distq/internal/app"
	"github.com/distq/distq/internal/control"
	"github.com/distq/distq/internal/distribution"
	"github.com/distq/distq/internal/metrics"
	"github.com/distq/distq/internal/redistest"
	"github.com/distq/distq/internal/service"
	"github.com/distq/distq/internal/store"
)

// figures gives fixed Creates per minute (per's last entry is the current
// minute's, earlier minutes had none); the rest of service.Figures is the
// store's.
type figures struct {
	*store.Redis
	per []map[string]int
}

func (f figures) CreatesPerMinute(_ context.Context, _ string, _ time.Time, n int) ([]map[string]int, error) {
	out := make([]map[string]int, n)
	for i := range out {
		out[i] = map[string]int{}
	}
	copy(out[max(n-len(f.per), 0):], f.per[max(len(f.per)-n, 0):])
	return out, nil
}

type backlogs map[string]int

func (b backlogs) Backlogs(context.Context, string) (map[string]int, error) { return b, nil }

func newAdminService(t *testing.T, now time.Time, d service.Deps) (*service.Service, *store.Redis) {
	t.Helper()
	db := redistest.New(t)
	st := store.NewRedis(db.Client, time.Hour)
	d.Store, d.Idempotency, d.Enqueuer, d.Changes = st, st, &enqueuer{}, noChanges{}
	d.Accounts = []service.Account{{Name: "main", UID: uid, CreateQPS: 2, MaxJobs: 10, Default: true}, {Name: "lab", UID: "42", CreateQPS: 5, MaxJobs: 3}}
	d.Teams = []string{"team-a", "team-b"}
	d.Controls = app.ServiceControls(control.NewStore(db.Client, control.Base{
		Accounts: []control.Account{{Name: "main", UID: uid, CreateQPS: 2, MaxJobs: 10}, {Name: "lab", UID: "42", CreateQPS: 5, MaxJobs: 3}},
		Weights:  map[string]int{"team-b": 4},
	}))
	d.Metrics = metrics.New(prometheus.NewRegistry())
	d.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	d.Now = func() time.Time { return now }
	return service.New(d), st
}

// An account as an operator sees it: limits and weights with their
// origin, each team's backlog (from Backlogs), slots (from the slot
// holders' records) and share of the last 60 s of Creates.
func TestAdminAccountFigures(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	now := time.Date(2026, 3, 1, 10, 0, 30, 0, time.UTC) // half of the previous minute counts
	sl := &slots{}
	// The previous minute: A 1; the current one: A 2, B 2.
	svc := newAdminServiceWithFigures(t, now, sl, backlogs{"team-a": 5, "team-c": 1}, []map[string]int{{"team-a": 1}, {"team-a": 2, "team-b": 2}})
	res, err := svc.SubmitBatch(ctx, "team-b", service.BatchRequest{
		Defaults: distribution.Request{SourceInstanceID: "iotx-a", TargetInstanceID: "iotx-b"},
		Items:    []service.BatchItem{{Request: distribution.Request{ProductKey: "a1B1"}}, {Request: distribution.Request{ProductKey: "a1B2"}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	sl.ids, sl.ext = []string{res.Results[0].ID, res.Results[1].ID}, 1

	if _, err := svc.SetWeight(ctx, "ops", "team-a", 7); err != nil {
		t.Fatal(err)
	}
	v, err := svc.AdminAccount(ctx, "main")
	if err != nil {
		t.Fatal(err)
	}
	if v.UID != uid || v.CreateQPS.Value != 2 || v.CreateQPS.Origin != service.OriginConfig || v.SlotsInUse != 2 || v.External != 1 ||
		math.Abs(v.CreatesLastMinute-4.5) > 1e-9 || len(v.Teams) != 3 || len(v.SharedWith) != 0 {
		t.Fatalf("account %+v", v)
	}
	ta, tb, tc := v.Teams[0], v.Teams[1], v.Teams[2]
	if ta.Team != "team-a" || ta.Weight.Value != 7 || ta.Weight.Origin != service.OriginOverride || ta.Weight.By != "ops" ||
		!ta.HasBacklog || ta.Backlog != 5 || ta.Slots != 0 || math.Abs(ta.CreatesLastMinute-2.5) > 1e-9 || math.Abs(ta.Share-2.5/4.5) > 1e-9 {
		t.Errorf("team A %+v", ta)
	}
	if tb.Team != "team-b" || tb.Weight != (service.Setting{Value: 4, Origin: service.OriginConfig}) || !tb.HasBacklog || tb.Backlog != 0 ||
		tb.Slots != 2 || len(tb.Holders) != 2 || tb.Holders[0] != min(res.Results[0].ID, res.Results[1].ID) || math.Abs(tb.Share-2/4.5) > 1e-9 {
		t.Errorf("team B %+v", tb)
	}
	if tc.Team != "team-c" || tc.Weight.Value != 1 || tc.Backlog != 1 || tc.Share != 0 {
		t.Errorf("team C (known only by its backlog) %+v", tc)
	}

	// The console's view of the account shows the limits in force.
	if _, err := svc.SetLimits(ctx, "ops", "main", []service.LimitChange{{Limit: service.LimitCreateQPS, Value: 1}}); err != nil {
		t.Fatal(err)
	}
	if cv, err := svc.Account(ctx, "team-a", "main"); err != nil || cv.CreateQPS != 1 || cv.MaxJobs != 10 {
		t.Errorf("console view %+v %v, want create_qps 1 in force", cv, err)
	}
}

// newAdminServiceWithFigures is newAdminService with the Creates per
// minute given.
func newAdminServiceWithFigures(t *testing.T, now time.Time, sl service.Slots, b service.Backlogs, per []map[string]int) *service.Service {
	t.Helper()
	f := &figures{per: per}
	svc, st := newAdminService(t, now, service.Deps{Slots: sl, Backlogs: b, Figures: f})
	f.Redis = st
	return svc
}

// Refusals name what is wrong: an unknown account or team is not found, a
// value out of bounds is bad_value with the field, and without Controls
// the admin use cases are unavailable.
func TestAdminRefusals(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	svc, _ := newAdminService(t, time.Now(), service.Deps{})
	for name, tc := range map[string]struct {
		err   error
		code  service.Code
		field string
	}{
		"unknown account":        {err2(svc.AdminAccount(ctx, "nope")), service.CodeNotFound, ""},
		"no account name":        {err2(svc.AdminAccount(ctx, "")), service.CodeNotFound, ""},
		"limits, unknown acct":   {err2(svc.SetLimits(ctx, "ops", "nope", []service.LimitChange{{Limit: "create_qps", Value: 1}})), service.CodeNotFound, ""},
		"create_qps 101":         {err2(svc.SetLimits(ctx, "ops", "main", []service.LimitChange{{Limit: "create_qps", Value: 101}})), service.CodeBadValue, "create_qps"},
		"max_jobs -1":            {err2(svc.SetLimits(ctx, "ops", "main", []service.LimitChange{{Limit: "max_jobs", Value: -1}})), service.CodeBadValue, "max_jobs"},
		"unknown limit":          {err2(svc.SetLimits(ctx, "ops", "main", []service.LimitChange{{Limit: "query_qps", Value: 1}})), service.CodeBadValue, "query_qps"},
		"no change":              {err2(svc.SetLimits(ctx, "ops", "main", nil)), service.CodeBadValue, "(body)"},
		"weight 1001":            {err2(svc.SetWeight(ctx, "ops", "team-a", 1001)), service.CodeBadValue, "weight"},
		"weight of unknown team": {err2(svc.SetWeight(ctx, "ops", "team-z", 2)), service.CodeNotFound, ""},
		"pause of unknown team":  {err2(svc.SetPaused(ctx, "ops", "main", "team-z", true)), service.CodeNotFound, ""},
		"pause of unknown acct":  {err2(svc.SetPaused(ctx, "ops", "nope", "", true)), service.CodeNotFound, ""},
	} {
		e, ok := service.AsError(tc.err)
		if !ok || e.Code != tc.code || tc.field != "" && (len(e.Fields) != 1 || e.Fields[0].Field != tc.field) {
			t.Errorf("%s: %v (%+v), want %s on %q", name, tc.err, e, tc.code, tc.field)
		}
	}
	bare := service.New(service.Deps{Accounts: []service.Account{{Name: "main", UID: uid}}, Log: slog.New(slog.DiscardHandler)})
	if _, err := bare.AdminAccounts(ctx); !service.IsCode(err, service.CodeUnavailable) {
		t.Errorf("without Controls: %v, want unavailable", err)
	}
}

func err2[T any](_ T, err error) error { return err }
