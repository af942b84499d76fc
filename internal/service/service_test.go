package service_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/distq/distq/internal/distribution"
	"github.com/distq/distq/internal/metrics"
	"github.com/distq/distq/internal/redistest"
	"github.com/distq/distq/internal/service"
	"github.com/distq/distq/internal/store"
)

const (
	team = "team-a"
	uid  = "1234567890123456"
)

// enqueuer records what it was given, or fails with err.
type enqueuer struct {
	mu  sync.Mutex
	ids []string
	err error
}

func (e *enqueuer) Submit(_ context.Context, recs []*distribution.Record) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.err != nil {
		return e.err
	}
	for _, r := range recs {
		e.ids = append(e.ids, r.ID)
	}
	return nil
}

// noChanges is a change feed that never reports: these tests do not long-poll.
type noChanges struct{}

func (noChanges) Watch(string) (<-chan struct{}, func()) { return nil, func() {} }
func (noChanges) Run(context.Context)                    {}

func newService(t *testing.T) (*service.Service, *store.Redis, *enqueuer) {
	t.Helper()
	return newServiceAt(t, nil)
}

// newServiceAt is newService on the clock now (nil: the real one).
func newServiceAt(t *testing.T, now func() time.Time) (*service.Service, *store.Redis, *enqueuer) {
	t.Helper()
	st := store.NewRedis(redistest.New(t).Client, time.Hour)
	enq := &enqueuer{}
	return service.New(service.Deps{
		Store: st, Idempotency: st, Enqueuer: enq, Changes: noChanges{},
		Accounts: []service.Account{{Name: "main", UID: uid, CreateQPS: 2, MaxJobs: 10, Default: true}},
		Metrics:  metrics.New(prometheus.NewRegistry()),
		Log:      slog.New(slog.NewTextHandler(io.Discard, nil)),
		Now:      now,
	}), st, enq
}

// A batch's ETA is its open items at the account's Create rate, or
// through its job slots at the recent job duration, whichever is slower;
// a done batch has none.
func TestBatchETA(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	// An hour ago: nothing the store holds was accepted before the batch,
	// so only the batch's own 4 items count.
	at := time.Now().UTC().Add(-time.Hour).Truncate(time.Second)
	svc, st, _ := newServiceAt(t, func() time.Time { return at })
	items := make([]service.BatchItem, 4)
	for i := range items {
		items[i].Request.ProductKey = fmt.Sprintf("a1Eta%d", i)
	}
	res, err := svc.SubmitBatch(ctx, team, service.BatchRequest{
		Defaults: distribution.Request{SourceInstanceID: "iotx-src", TargetInstanceID: "iotx-dst"}, Items: items})
	if err != nil {
		t.Fatal(err)
	}
	// No job duration seen yet: the rate decides, 4 items at 2/s.
	if res.Batch.ETA == nil || !res.Batch.ETA.Equal(at.Add(2*time.Second)) || res.Batch.Done || res.Batch.Size != 4 {
		t.Fatalf("batch %+v: want 4 items, not done, ETA %v", res.Batch, at.Add(2*time.Second))
	}
	// Jobs take 30 s: 4 items through 10 slots take 12 s, longer than the rate's 2 s.
	if _, err := st.ObserveJobDuration(ctx, uid, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	v, err := svc.Batch(ctx, team, res.Batch.ID)
	if err != nil {
		t.Fatal(err)
	}
	if v.ETA == nil || !v.ETA.Equal(at.Add(12*time.Second)) {
		t.Fatalf("ETA %v, want %v", v.ETA, at.Add(12*time.Second))
	}
	if got, err := svc.CancelBatch(ctx, team, res.Batch.ID); err != nil || got.Changed != 4 {
		t.Fatalf("CancelBatch: %+v, %v", got, err)
	}
	v, err = svc.Batch(ctx, team, res.Batch.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !v.Done || v.ETA != nil || v.Counts[distribution.StateCanceled] != 4 {
		t.Fatalf("after cancel: %+v, want done, no ETA, 4 canceled", v)
	}
}

func request(pk string) distribution.Request {
	return distribution.Request{ProductKey: pk, SourceInstanceID: "iotx-src", TargetInstanceID: "iotx-dst"}
}

// A cancel and the worker's StartSubmit racing on one queued record: one
// of them wins, never both, so a canceled distribution never has a Create
// sent.
func TestCancelRacesStartSubmit(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	svc, st, _ := newService(t)
	canceled, submitted := 0, 0
	for i := range 40 {
		d, err := svc.Submit(ctx, team, request(fmt.Sprintf("a1Race%02d", i)))
		if err != nil {
			t.Fatal(err)
		}
		var cancelErr, startErr error
		var wg sync.WaitGroup
		start := make(chan struct{})
		wg.Add(2)
		go func() { defer wg.Done(); <-start; _, cancelErr = svc.Cancel(ctx, team, d.ID) }()
		go func() {
			defer wg.Done()
			<-start
			if _, startErr = st.Get(ctx, d.ID); startErr != nil { // the worker reads its record first too
				return
			}
			_, startErr = st.Update(ctx, d.ID, func(r *distribution.Record) error { return r.StartSubmit(time.Now()) })
		}()
		close(start)
		wg.Wait()
		got, err := st.Get(ctx, d.ID)
		if err != nil {
			t.Fatal(err)
		}
		var refused *distribution.TransitionError
		switch {
		case cancelErr == nil && errors.As(startErr, &refused) && got.State == distribution.StateCanceled && got.CreateSentAt == nil:
			canceled++
		case startErr == nil && service.IsCode(cancelErr, service.CodeInvalidState) && got.State == distribution.StateSubmitting:
			submitted++
		default:
			t.Fatalf("%s: cancel %v, start %v, state %s: want exactly one to win", d.ID, cancelErr, startErr, got.State)
		}
	}
	t.Logf("cancel won %d, submit won %d", canceled, submitted)
}

// When the queue does not take a submission, nothing stays behind: the
// record is gone and the same product can be submitted again.
func TestSubmitUndoneWhenQueueRefuses(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	svc, _, enq := newService(t)
	enq.err = errors.New("queue down")
	if _, err := svc.Submit(ctx, team, request("a1Undo")); !service.IsCode(err, service.CodeUnavailable) {
		t.Fatalf("Submit with the queue down: %v, want CodeUnavailable", err)
	}
	if items, _, err := svc.List(ctx, team, distribution.Filter{Limit: 10}); err != nil || len(items) != 0 {
		t.Fatalf("List after the undo: %v, %v; want nothing", items, err)
	}
	enq.err = nil
	d, err := svc.Submit(ctx, team, request("a1Undo"))
	if err != nil {
		t.Fatalf("Submit again: %v", err)
	}
	if _, err := svc.Submit(ctx, team, request("a1Undo")); !service.IsCode(err, service.CodeDuplicate) {
		t.Fatalf("a second active one: %v, want CodeDuplicate", err)
	} else if e, _ := service.AsError(err); e.ExistingID != d.ID {
		t.Fatalf("duplicate names %q, want %q", e.ExistingID, d.ID)
	}
}

// A batch retry changes the failed items it can and skips the one whose
// product has an active distribution again; with nothing failed it is
// refused.
func TestRetryBatchSkipsActiveDuplicates(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	svc, st, _ := newService(t)
	res, err := svc.SubmitBatch(ctx, team, service.BatchRequest{
		Defaults: distribution.Request{SourceInstanceID: "iotx-src", TargetInstanceID: "iotx-dst"},
		Items:    []service.BatchItem{{Request: distribution.Request{ProductKey: "a1One"}}, {Request: distribution.Request{ProductKey: "a1Two"}}},
	})
	if err != nil || res.Accepted != 2 {
		t.Fatalf("SubmitBatch: %+v, %v", res, err)
	}
	for _, r := range res.Results {
		now := time.Now()
		if _, err := st.Update(ctx, r.ID, func(r *distribution.Record) error { return r.StartSubmit(now) }); err != nil {
			t.Fatal(err)
		}
		if _, err := st.Update(ctx, r.ID, func(r *distribution.Record) error {
			return r.Finish(now, distribution.StateFailed, &distribution.Error{Code: "E"}, nil)
		}); err != nil {
			t.Fatal(err)
		}
	}
	single, err := svc.Submit(ctx, team, request("a1Two")) // active again, outside the batch
	if err != nil {
		t.Fatal(err)
	}
	got, err := svc.RetryBatch(ctx, team, res.Batch.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Changed != 1 || got.Skipped != 1 || len(got.Affected) != 1 || got.Affected[0] != res.Results[0].ID {
		t.Fatalf("RetryBatch: %+v; want %s changed and the duplicate of %s skipped", got, res.Results[0].ID, single.ID)
	}
	if _, err := svc.RetryBatch(ctx, team, res.Batch.ID); !service.IsCode(err, service.CodeInvalidState) {
		t.Fatalf("RetryBatch again: %v, want CodeInvalidState (the only failed item is a duplicate)", err)
	}
	if _, err := svc.RetryBatch(ctx, "team-b", res.Batch.ID); !service.IsCode(err, service.CodeNotFound) {
		t.Fatalf("another team's batch: %v, want CodeNotFound", err)
	}
}

// Once runs the first request with a key, gives its answer to repeats, refuses
// the key with another request, and forgets it when the first failed.
func TestOnce(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	svc, _, _ := newService(t)
	runs := 0
	do := func() (service.Answer, error) {
		runs++
		return service.Answer{Status: 202, Body: []byte(fmt.Sprintf(`{"run":%d}`, runs))}, nil
	}
	a, replayed, err := svc.Once(ctx, team, "k1", []byte("POST /v1/distributions\n{}"), do)
	if err != nil || replayed || string(a.Body) != `{"run":1}` {
		t.Fatalf("first: %+v %v %v", a, replayed, err)
	}
	a, replayed, err = svc.Once(ctx, team, "k1", []byte("POST /v1/distributions\n{}"), do)
	if err != nil || !replayed || string(a.Body) != `{"run":1}` || runs != 1 {
		t.Fatalf("repeat: %+v %v %v, runs %d; want the first answer again", a, replayed, err, runs)
	}
	if _, _, err := svc.Once(ctx, team, "k1", []byte("POST /v1/distributions\n{\"x\":1}"), do); !service.IsCode(err, service.CodeIdempotencyKeyReused) {
		t.Fatalf("other request: %v, want CodeIdempotencyKeyReused", err)
	}
	if _, _, err := svc.Once(ctx, "team-b", "k1", []byte("POST /v1/distributions\n{\"x\":1}"), do); err != nil || runs != 2 {
		t.Fatalf("another team's key: %v, runs %d; want its own run", err, runs)
	}
	failing := func() (service.Answer, error) { return service.Answer{}, errors.New("boom") }
	if _, _, err := svc.Once(ctx, team, "k2", []byte("r"), failing); err == nil {
		t.Fatal("a failing first request: want its error")
	}
	if _, replayed, err := svc.Once(ctx, team, "k2", []byte("r"), do); err != nil || replayed {
		t.Fatalf("after a failure: %v, replayed %v; want a fresh run", err, replayed)
	}
	if _, _, err := svc.Once(ctx, team, "bad\nkey", []byte("r"), do); !service.IsCode(err, service.CodeBadIdempotencyKey) {
		t.Fatalf("bad key: %v, want CodeBadIdempotencyKey", err)
	}
}

// A duplicate whose active distribution's record cannot be read (a claim
// whose record is still being written) is refused without naming any id:
// whose it is is unknown.
func TestDuplicateOfAnUnreadableOwner(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	svc, st, enq := newService(t)
	ghost := distribution.NewID(time.Now())
	if err := st.Client().Set(ctx, "distq:active:{"+uid+"}:a1ghost:iotx-dst", ghost, time.Minute).Err(); err != nil {
		t.Fatal(err)
	}
	_, err := svc.Submit(ctx, "team-b", distribution.Request{ProductKey: "a1ghost", SourceInstanceID: "iotx-src", TargetInstanceID: "iotx-dst"})
	var e *service.Error
	if !errors.As(err, &e) || e.Code != service.CodeDuplicate || e.ExistingID != "" || e.OtherTeamSince != nil ||
		e.Message != "another distribution of product a1ghost to instance iotx-dst is active; this one was not created" {
		t.Fatalf("Submit: %#v, want a duplicate naming nothing", err)
	}
	if len(enq.ids) != 0 {
		t.Errorf("enqueued %v", enq.ids)
	}
}

// Before any job duration is observed, a batch's ETA assumes the
// configured hint through the job slots: 30 items through 10 slots of
// 20 s jobs take 60 s, not the Create rate's 15 s.
func TestBatchETAUsesTheJobDurationHint(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	at := time.Now().UTC().Add(-time.Hour).Truncate(time.Second)
	st := store.NewRedis(redistest.New(t).Client, time.Hour)
	svc := service.New(service.Deps{
		Store: st, Idempotency: st, Enqueuer: &enqueuer{}, Changes: noChanges{},
		Accounts:        []service.Account{{Name: "main", UID: uid, CreateQPS: 2, MaxJobs: 10, Default: true}},
		Metrics:         metrics.New(prometheus.NewRegistry()),
		Log:             slog.New(slog.NewTextHandler(io.Discard, nil)),
		Now:             func() time.Time { return at },
		JobDurationHint: 20 * time.Second,
	})
	items := make([]service.BatchItem, 30)
	for i := range items {
		items[i].Request.ProductKey = fmt.Sprintf("a1Hint%d", i)
	}
	res, err := svc.SubmitBatch(ctx, team, service.BatchRequest{
		Defaults: distribution.Request{SourceInstanceID: "iotx-src", TargetInstanceID: "iotx-dst"}, Items: items})
	if err != nil {
		t.Fatal(err)
	}
	if res.Batch.ETA == nil || !res.Batch.ETA.Equal(at.Add(60*time.Second)) {
		t.Fatalf("ETA %v, want %v (30 items, 10 slots, 20 s hint)", res.Batch.ETA, at.Add(60*time.Second))
	}
	// An observed duration replaces the hint: 30 items of 4 s jobs through
	// 10 slots take 12 s, less than the rate's 15 s.
	if _, err := st.ObserveJobDuration(ctx, uid, 4*time.Second); err != nil {
		t.Fatal(err)
	}
	v, err := svc.Batch(ctx, team, res.Batch.ID)
	if err != nil {
		t.Fatal(err)
	}
	if v.ETA == nil || !v.ETA.Equal(at.Add(15*time.Second)) {
		t.Fatalf("ETA %v, want %v once 4 s jobs are observed", v.ETA, at.Add(15*time.Second))
	}
}
