package distribution

import (
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// Every transition, from every state: allowed ones change the record as
// the life of a distribution says; the others leave it untouched and
// return a *TransitionError naming the operation and the state.
func TestTransitions(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	now := t0.Add(time.Minute)
	two, one := 2, 1
	rec := func(st State, f ...func(r *Record)) Record {
		r := Record{Distribution: Distribution{ID: "d_1", State: st, CreatedAt: t0, UpdatedAt: t0}, UID: "1", Queue: QueueSingle}
		for _, fn := range f {
			fn(&r)
		}
		return r
	}
	sent := func(r *Record) {
		r.CreateSentAt = &t0
		r.Attempts = 1
		r.History = []Attempt{{Number: 1, StartedAt: t0, Outcome: OutcomeInProgress}}
	}
	// attempt is the first attempt as it ended at now.
	attempt := func(outcome Outcome, job string, e *Error) []Attempt {
		return []Attempt{{Number: 1, StartedAt: t0, FinishedAt: &now, Outcome: outcome, JobID: job, Error: e}}
	}
	withJob := func(r *Record) { r.JobID = "job1"; r.SubmittedAt = &t0 }
	failedOnce := func(r *Record) {
		r.Error, r.FinishedAt, r.JobID, r.RemoteStatus, r.SubmittedAt, r.Attempts = &Error{Code: "X"}, &t0, "job1", &one, &t0, 3
	}
	type op struct {
		name string
		do   func(r *Record) error
	}
	var (
		cancel      = op{"Cancel", func(r *Record) error { return r.Cancel(now) }}
		retry       = op{"Retry", func(r *Record) error { return r.Retry() }}
		startSubmit = op{"StartSubmit", func(r *Record) error { return r.StartSubmit(now) }}
		started     = op{"Started", func(r *Record) error { return r.Started(now, "job9", &one) }}
		requeue     = op{"Requeue", func(r *Record) error { return r.Requeue(now, WaitBackoff, nil) }}
		requeueErr  = op{"Requeue(error)", func(r *Record) error { return r.Requeue(now, WaitBackoff, &Error{Code: "T", RequestID: "R1"}) }}
		forget      = op{"ForgetCreate", func(r *Record) error { return r.ForgetCreate(now) }}
		wait        = op{"Wait", func(r *Record) error { return r.Wait(WaitJobSlots) }}
		observe     = op{"ObserveRemote", func(r *Record) error { return r.ObserveRemote(2) }}
		succeed     = op{"Finish(succeeded)", func(r *Record) error { return r.Finish(now, StateSucceeded, nil, &two) }}
		fail        = op{"Finish(failed)", func(r *Record) error { return r.Finish(now, StateFailed, &Error{Code: "E"}, nil) }}
	)
	tests := []struct {
		op   op
		from Record
		// want is the record after an allowed transition; nil when refused.
		want *Record
	}{
		{cancel, rec(StateQueued, func(r *Record) { r.WaitReason = WaitRateLimit }),
			new(rec(StateCanceled, func(r *Record) { r.FinishedAt = &now }))},
		// A retry keeps the count and the failed attempt (here of a record
		// from before History: it is added) and starts a new run.
		{retry, rec(StateFailed, failedOnce), new(rec(StateQueued, func(r *Record) {
			r.Attempts, r.RetryBase = 3, 3
			r.History = []Attempt{{Number: 3, StartedAt: t0, FinishedAt: &t0, Outcome: OutcomeFailed, JobID: "job1", Error: &Error{Code: "X"}}}
		}))},
		{retry, rec(StateFailed, func(r *Record) {
			r.Error, r.FinishedAt, r.Attempts, r.History = &Error{Code: "X"}, &now, 1, attempt(OutcomeFailed, "", &Error{Code: "X"})
		}), new(rec(StateQueued, func(r *Record) {
			r.Attempts, r.RetryBase, r.History = 1, 1, attempt(OutcomeFailed, "", &Error{Code: "X"})
		}))},
		{startSubmit, rec(StateQueued, func(r *Record) { r.WaitReason = WaitJobSlots }),
			new(rec(StateSubmitting, func(r *Record) {
				r.CreateSentAt, r.Attempts = &now, 1
				r.History = []Attempt{{Number: 1, StartedAt: now, Outcome: OutcomeInProgress}}
			}))},
		// A Create refused in the same run is requeued first: the next
		// StartSubmit counts a second attempt.
		{startSubmit, rec(StateQueued, func(r *Record) {
			r.Attempts, r.History = 1, attempt(OutcomeRequeued, "", &Error{Code: "T"})
		}), new(rec(StateSubmitting, func(r *Record) {
			r.CreateSentAt, r.Attempts = &now, 2
			r.History = append(attempt(OutcomeRequeued, "", &Error{Code: "T"}), Attempt{Number: 2, StartedAt: now, Outcome: OutcomeInProgress})
		}))},
		{started, rec(StateSubmitting, sent),
			new(rec(StateRunning, func(r *Record) {
				r.JobID, r.SubmittedAt, r.RemoteStatus, r.Attempts = "job9", &now, &one, 1
				r.History = []Attempt{{Number: 1, StartedAt: t0, Outcome: OutcomeInProgress, JobID: "job9"}}
			}))},
		{started, rec(StateQueued, func(r *Record) { r.CreateSentAt = &t0 }), // adopted after a lookup
			new(rec(StateRunning, func(r *Record) { r.JobID, r.SubmittedAt, r.RemoteStatus = "job9", &now, &one }))},
		{requeue, rec(StateSubmitting, sent), new(rec(StateQueued, func(r *Record) { r.WaitReason = WaitBackoff }))},
		{requeueErr, rec(StateSubmitting, sent), new(rec(StateQueued, func(r *Record) {
			r.WaitReason, r.Attempts, r.History = WaitBackoff, 1, attempt(OutcomeRequeued, "", &Error{Code: "T", RequestID: "R1"})
		}))},
		{forget, rec(StateSubmitting, sent), new(rec(StateQueued, func(r *Record) {
			r.Attempts = 1
			r.History = attempt(OutcomeRequeued, "", &Error{Code: CodeCreateLost,
				Message: "the Create's answer was lost and the remote shows no job made by it; a new Create follows"})
		}))},
		{wait, rec(StateQueued), new(rec(StateQueued, func(r *Record) { r.WaitReason = WaitJobSlots }))},
		{observe, rec(StateRunning, withJob), new(rec(StateRunning, withJob, func(r *Record) { r.RemoteStatus = new(2) }))},
		{succeed, rec(StateRunning, withJob),
			new(rec(StateSucceeded, withJob, func(r *Record) { r.FinishedAt, r.RemoteStatus = &now, &two }))},
		{fail, rec(StateSubmitting, sent),
			new(rec(StateFailed, func(r *Record) {
				r.FinishedAt, r.Error, r.Attempts, r.History = &now, &Error{Code: "E"}, 1, attempt(OutcomeFailed, "", &Error{Code: "E"})
			}))},
		{succeed, rec(StateRunning, sent, withJob, func(r *Record) { r.CreateSentAt = nil; r.History[0].JobID = "job1" }),
			new(rec(StateSucceeded, withJob, func(r *Record) {
				r.FinishedAt, r.RemoteStatus, r.Attempts, r.History = &now, &two, 1, attempt(OutcomeSucceeded, "job1", nil)
			}))},

		{cancel, rec(StateSubmitting, sent), nil},
		{cancel, rec(StateRunning, withJob), nil},
		{cancel, rec(StateCanceled), nil},
		{retry, rec(StateQueued), nil},
		{retry, rec(StateSucceeded, withJob), nil},
		{retry, rec(StateCanceled), nil},
		{startSubmit, rec(StateCanceled), nil}, // a cancel won the race: no Create
		{startSubmit, rec(StateSubmitting, sent, withJob), nil},
		// Another run's Create may be out: its mark is never overwritten (Q5).
		{startSubmit, rec(StateSubmitting, sent), nil},
		{startSubmit, rec(StateQueued, func(r *Record) { r.CreateSentAt = &t0 }), nil},
		{startSubmit, rec(StateRunning, withJob), nil},
		{started, rec(StateRunning, withJob), nil},
		{started, rec(StateCanceled), nil},
		{requeue, rec(StateQueued), nil},
		{requeue, rec(StateRunning, withJob), nil},
		{forget, rec(StateRunning, withJob), nil},
		{forget, rec(StateFailed), nil},
		{wait, rec(StateSubmitting, sent), nil},
		{wait, rec(StateCanceled), nil},
		{observe, rec(StateSucceeded, withJob), nil},
		{succeed, rec(StateSucceeded, withJob), nil},
		{fail, rec(StateCanceled), nil},
	}
	for _, tt := range tests {
		t.Run(tt.op.name+" from "+string(tt.from.State), func(t *testing.T) {
			got := tt.from
			err := tt.op.do(&got)
			if tt.want != nil {
				if err != nil {
					t.Fatalf("%s: %v, want it allowed", tt.op.name, err)
				}
				// The timeline is checked in TestTimeline.
				if diff := cmp.Diff(*tt.want, got, cmpopts.IgnoreFields(Record{}, "Timeline")); diff != "" {
					t.Errorf("record after %s (-want +got):\n%s", tt.op.name, diff)
				}
				return
			}
			var te *TransitionError
			if !errors.As(err, &te) || te.From != tt.from.State || te.ID != tt.from.ID {
				t.Fatalf("%s: %v, want a *TransitionError from %s", tt.op.name, err, tt.from.State)
			}
			if diff := cmp.Diff(tt.from, got); diff != "" {
				t.Errorf("a refused %s changed the record (-before +after):\n%s", tt.op.name, diff)
			}
		})
	}
}

// Wait on a record that already says so is no change (no write); Finish
// takes only an outcome.
func TestTransitionEdges(t *testing.T) {
	t.Parallel()
	r := Record{Distribution: Distribution{ID: "d_1", State: StateQueued, WaitReason: WaitRateLimit}}
	if err := r.Wait(WaitRateLimit); !errors.Is(err, ErrNoChange) {
		t.Errorf("Wait(same reason) = %v, want ErrNoChange", err)
	}
	r = Record{Distribution: Distribution{ID: "d_1", State: StateRunning}}
	if err := r.Finish(time.Now(), StateCanceled, nil, nil); err == nil || r.State != StateRunning {
		t.Errorf("Finish(canceled) = %v, state %s: want an error and no change", err, r.State)
	}
}

// The messages of refused cancels and retries are the API's.
func TestTransitionErrorMessages(t *testing.T) {
	t.Parallel()
	r := Record{Distribution: Distribution{ID: "d_1", State: StateRunning}}
	if got, want := r.Cancel(time.Now()).Error(), "distribution d_1 is running; only a queued distribution can be canceled"; got != want {
		t.Errorf("Cancel: %q, want %q", got, want)
	}
	if got, want := r.Retry().Error(), "distribution d_1 is running; only a failed distribution can be retried"; got != want {
		t.Errorf("Retry: %q, want %q", got, want)
	}
}

// A distribution failed, retried and failed again keeps both errors, with
// their RequestIds, and counts both attempts; the history keeps the last
// MaxHistory attempts while Attempts counts them all.
func TestHistoryAcrossRetries(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	r := Record{Distribution: Distribution{ID: "d_1", State: StateQueued}}
	at := func(i int) time.Time { return t0.Add(time.Duration(i) * time.Minute) }
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(r.StartSubmit(at(0)))
	must(r.Requeue(at(1), WaitBackoff, nil)) // throttled: not an attempt
	must(r.StartSubmit(at(2)))
	must(r.Requeue(at(3), WaitBackoff, &Error{Code: "ServiceUnavailable", RequestID: "R-1"}))
	must(r.StartSubmit(at(4)))
	must(r.Finish(at(5), StateFailed, &Error{Code: "iot.prod.NotExistedProduct", Message: "no product", RequestID: "R-2"}, nil))
	must(r.Retry())
	if r.Error != nil || r.Attempts != 2 || r.RunAttempts() != 0 {
		t.Fatalf("after retry: error %v attempts %d run %d, want no error, 2 attempts, a new run", r.Error, r.Attempts, r.RunAttempts())
	}
	must(r.StartSubmit(at(6)))
	must(r.Started(at(7), "job-3", nil))
	must(r.Finish(at(8), StateFailed, &Error{Code: "job_interrupted", RequestID: "R-3"}, nil))
	want := []Attempt{
		{Number: 1, StartedAt: at(2), FinishedAt: new(at(3)), Outcome: OutcomeRequeued, Error: &Error{Code: "ServiceUnavailable", RequestID: "R-1"}},
		{Number: 2, StartedAt: at(4), FinishedAt: new(at(5)), Outcome: OutcomeFailed, Error: &Error{Code: "iot.prod.NotExistedProduct", Message: "no product", RequestID: "R-2"}},
		{Number: 3, StartedAt: at(6), FinishedAt: new(at(8)), Outcome: OutcomeFailed, JobID: "job-3", Error: &Error{Code: "job_interrupted", RequestID: "R-3"}},
	}
	if diff := cmp.Diff(want, r.History); diff != "" || r.Attempts != 3 || r.RunAttempts() != 1 {
		t.Fatalf("attempts %d (run %d), history (-want +got):\n%s", r.Attempts, r.RunAttempts(), diff)
	}
	for i := range MaxHistory + 5 {
		must(r.Retry())
		must(r.StartSubmit(at(10 + i)))
		must(r.Finish(at(10+i), StateFailed, &Error{Code: "E"}, nil))
	}
	if n := len(r.History); n != MaxHistory || r.Attempts != 3+MaxHistory+5 || r.History[n-1].Number != r.Attempts || r.History[0].Number != r.Attempts-MaxHistory+1 {
		t.Fatalf("after %d attempts: %d kept, numbers %d…%d", r.Attempts, n, r.History[0].Number, r.History[n-1].Number)
	}
}

// Each transition adds a step to the timeline, in the state it moved to;
// a remote status is a step only when it changes; Touch dates the steps of
// transitions that are not given the time; the timeline keeps its first
// step and the latest ones.
func TestTimeline(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	r := Record{Distribution: Distribution{ID: "d_1", State: StateQueued, CreatedAt: t0}}
	r.Accepted()
	one, two := 1, 2
	steps := []func() error{
		func() error { return r.StartSubmit(at(1)) },
		func() error { return r.Requeue(at(2), WaitRateLimit, nil) },
		func() error { return r.StartSubmit(at(3)) },
		func() error { return r.Started(at(4), "job1", nil) },
		func() error { return r.ObserveRemote(one) },
		func() error { return r.ObserveRemote(one) },
		func() error { return r.Finish(at(7), StateSucceeded, nil, &two) },
	}
	for i, step := range steps {
		if err := step(); err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		r.Touch(at(i + 1))
	}
	type s struct {
		At      time.Time
		State   State
		What    string
		JobID   string
		Remote  int
		Attempt int
		Wait    WaitReason
	}
	var got []s
	for _, h := range r.Timeline {
		x := s{At: h.At, State: h.State, What: h.What, JobID: h.JobID, Attempt: h.Attempt, Wait: h.WaitReason, Remote: -1}
		if h.RemoteStatus != nil {
			x.Remote = *h.RemoteStatus
		}
		got = append(got, x)
	}
	want := []s{
		{At: t0, State: StateQueued, What: "accepted", Remote: -1},
		{At: at(1), State: StateSubmitting, What: "create_sent", Attempt: 1, Remote: -1},
		{At: at(2), State: StateQueued, What: "requeued", Wait: WaitRateLimit, Remote: -1},
		{At: at(3), State: StateSubmitting, What: "create_sent", Attempt: 1, Remote: -1},
		{At: at(4), State: StateRunning, What: "started", JobID: "job1", Remote: -1},
		{At: at(5), State: StateRunning, What: "remote_status", JobID: "job1", Remote: 1},
		{At: at(7), State: StateSucceeded, What: "finished", JobID: "job1", Remote: 2},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("timeline (-want +got):\n%s", diff)
	}

	// A long life keeps the first step and the latest ones.
	long := Record{Distribution: Distribution{ID: "d_2", State: StateQueued, CreatedAt: t0}}
	long.Accepted()
	for i := range MaxTimeline {
		// Each Create's outcome was settled (as a Requeue or ForgetCreate
		// would, here without their steps), so the next may be sent.
		long.CreateSentAt = nil
		if err := long.StartSubmit(at(i)); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(long.Timeline); n != MaxTimeline || long.Timeline[0].What != "accepted" || long.Timeline[n-1].Attempt != MaxTimeline || long.Timeline[1].Attempt != 2 {
		t.Fatalf("a long timeline: %d steps, first %q, attempts %d…%d", n, long.Timeline[0].What, long.Timeline[1].Attempt, long.Timeline[n-1].Attempt)
	}
}
