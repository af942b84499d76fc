package queue

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hibiken/asynq"

	"github.com/distq/distq/internal/alibaba"
	"github.com/distq/distq/internal/config"
	"github.com/distq/distq/internal/devices"
	"github.com/distq/distq/internal/distribution"
	"github.com/distq/distq/internal/metrics"
	"github.com/distq/distq/internal/quota"
	"github.com/distq/distq/internal/store"
)

// Account is one account as the worker sees it: its settings and client.
type Account struct {
	config.Account
	Client *alibaba.Client
}

// Options tune the worker. Zero values select the defaults.
type Options struct {
	// SlotLease is how long a job slot is held without renewal (default 2m):
	// a crashed worker's slots free after it.
	SlotLease time.Duration
	// PollInterval is the time between two Query calls of one job around
	// its expected end (default 1s); see pollDelay.
	PollInterval time.Duration
	// MaxPollGap is the longest time between two Query calls of one job
	// (default 1m).
	MaxPollGap time.Duration
	// MaxRateWait is the longest a task sleeps for a rate grant before it
	// hands itself back to the queue (default 10s).
	MaxRateWait time.Duration
	// MaxBatchRateWait is MaxRateWait for batch items (default 4s).
	MaxBatchRateWait time.Duration
	// SlotRecheck is how long a distribution waiting for a slot stays
	// scheduled before it looks again; a freed slot wakes it sooner (default 10s).
	SlotRecheck time.Duration
	// MaxAttempts bounds Create attempts that failed for a transient reason
	// (default 8). Waits and throttling never count.
	MaxAttempts int
	// OrphanAge is how old an open distribution must be before the
	// reconciler checks that its task exists (default 1m).
	OrphanAge time.Duration
	// ThrottlePause is the first shared back-off after a Throttling answer
	// (default 1s), doubled per repeat up to 30s.
	ThrottlePause time.Duration
	// CallTimeout is the client's bound on one remote call (default 10s):
	// a Create's job, if any, was made within it.
	CallTimeout time.Duration
	// RemoteVisibility bounds how long after its creation a job may take to
	// show in ListDeviceDistributeJob (default 2m). After an ambiguous
	// Create, distq looks the job up until CreateSentAt + CallTimeout +
	// RemoteVisibility before it concludes that none was made (Q5).
	RemoteVisibility time.Duration
	// LookupInterval is the time between two lookups of an ambiguous
	// Create's job (default 2s).
	LookupInterval time.Duration
	// NotFoundMinAge is how old a job must be before a Query NotFound,
	// confirmed by the List, fails its distribution (default 30s).
	NotFoundMinAge time.Duration
	// FairLookahead is about how much of an account's Create rate is
	// admitted ahead from the fair queue (default 500ms: one item at 2/s):
	// the most a newcomer team waits behind another team's backlog.
	FairLookahead time.Duration
	// FairAdmission is how long an admission lasts unless its run renews it
	// (default 1m): an admitted item whose run died goes back in its place.
	FairAdmission time.Duration
	// FairFallback is how long a batch item not admitted sleeps before its
	// task looks again (default 30m); its admission wakes it sooner. Only
	// a lost fair-queue entry makes it matter.
	FairFallback time.Duration
	// PausedRecheck is how often a paused single submission looks again
	// (default 5s).
	PausedRecheck time.Duration
	// InlineSlotWaits bounds the handlers of this worker that wait in place
	// for a slot handoff instead of going back to the queue (default 2);
	// each holds one of the worker's asynq concurrency meanwhile.
	InlineSlotWaits int
	// PollLease is how long a claimed poll is a worker's unless its run
	// renews it (every PollLease/3 while it lasts: a grant wait, the
	// Query, a Delete with its retries, a device job's result file): a
	// worker killed mid-poll delays that job's next Query by at most this
	// (default 15s).
	PollLease time.Duration
	// PollConcurrency bounds the polls one worker runs at once (default 16).
	PollConcurrency int
	// PollIdleCheck is the longest the poll loop sleeps without looking at
	// the schedule (default 5s): it finds the polls of a worker that died,
	// once their lease ended, or that another worker scheduled sooner than
	// anything it knew of.
	PollIdleCheck time.Duration
	// ReplicaWait bounds the WAIT for replicas after the Create marker is
	// written (default 1s); when replicas do not acknowledge, the Create is
	// not sent (fail closed).
	ReplicaWait time.Duration
}

func (o Options) withDefaults() Options {
	orDefault(&o.SlotLease, 2*time.Minute)
	orDefault(&o.PollInterval, time.Second)
	orDefault(&o.MaxPollGap, time.Minute)
	orDefault(&o.MaxRateWait, 10*time.Second)
	orDefault(&o.MaxBatchRateWait, 4*time.Second)
	orDefault(&o.SlotRecheck, 10*time.Second)
	orDefault(&o.MaxAttempts, 8)
	orDefault(&o.OrphanAge, time.Minute)
	orDefault(&o.ThrottlePause, time.Second)
	orDefault(&o.CallTimeout, 10*time.Second)
	orDefault(&o.RemoteVisibility, 2*time.Minute)
	orDefault(&o.LookupInterval, 2*time.Second)
	orDefault(&o.NotFoundMinAge, 30*time.Second)
	orDefault(&o.FairLookahead, 500*time.Millisecond)
	orDefault(&o.FairAdmission, time.Minute)
	orDefault(&o.FairFallback, 30*time.Minute)
	orDefault(&o.PausedRecheck, 5*time.Second)
	orDefault(&o.ReplicaWait, time.Second)
	orDefault(&o.PollConcurrency, 16)
	orDefault(&o.PollLease, 15*time.Second)
	orDefault(&o.InlineSlotWaits, 2)
	orDefault(&o.PollIdleCheck, 5*time.Second)
	return o
}

// orDefault sets *v to d when it is not positive (a zero or negative
// option selects the default).
func orDefault[T int | time.Duration](v *T, d T) {
	if *v <= 0 {
		*v = d
	}
}

// Worker handles distq's tasks. It is safe for concurrent use.
type Worker struct {
	store     *store.Redis
	limiter   *quota.Limiter
	accounts  map[string]*Account // by name
	metrics   *metrics.Metrics
	inspector *asynq.Inspector
	client    *asynq.Client
	log       *slog.Logger
	opts      Options
	now       func() time.Time
	kick      chan struct{}
	passes    atomic.Int64

	durations durations                                           // the accounts' recent job durations, cached
	wakes     wakes                                               // in-process wakes of waiting tasks
	polls     pollLoop                                            // the poll schedule's loop
	slotWaits slotWaits                                           // handlers waiting in place for a slot
	pollFunc  func(ctx context.Context, id string, run int) error // tests: replaces the polls' work
	gaugeMu   sync.Mutex

	controls Controls // nil: the configuration's settings
	// quiet, if set, reports the worker's quiet mode (no task runnable or
	// running anywhere: see UseQuiet); wakeUp ends it.
	quiet  func() bool
	wakeUp func()

	teamsMu sync.Mutex
	teams   map[[2]string]bool // (account, team) named in the metrics

	refusedMu sync.Mutex
	refused   map[string]bool // UIDs whose Create the remote refused for the job count
}

// NewWorker returns a Worker.
func NewWorker(st *store.Redis, lim *quota.Limiter, accounts []*Account, m *metrics.Metrics,
	insp *asynq.Inspector, client *asynq.Client, log *slog.Logger, opts Options) *Worker {
	w := &Worker{store: st, limiter: lim, accounts: map[string]*Account{}, metrics: m,
		inspector: insp, client: client, log: log, opts: opts.withDefaults(),
		now: func() time.Time { return time.Now().UTC() }, kick: make(chan struct{}, 1),
		polls: pollLoop{kick: make(chan struct{}, 1), runs: map[string]int{}, fails: map[string]int{}, running: map[string]time.Time{}}}
	for _, a := range accounts {
		w.accounts[a.Name] = a
	}
	return w
}

// UseControls makes the worker obey c (operators' run-time settings)
// instead of the configuration alone. Call it before the worker runs.
func (w *Worker) UseControls(c Controls) { w.controls = c }

// UseQuiet gives the worker its quiet mode (see app's quietServer): quiet
// reports it, wake ends it. A quiet worker looks for runnable tasks
// seldom, so every task this worker makes runnable (an enqueue, a RunTask
// of a waiting task) wakes it: its busy server then runs the task at once.
// While quiet, the fair tick looks only every fairRestTicks (or at once
// when operators change a setting): no Create is going out to admit after.
func (w *Worker) UseQuiet(quiet func() bool, wake func()) { w.quiet, w.wakeUp = quiet, wake }

// runTask is Inspector.RunTask that wakes a quiet worker when it made the
// task runnable.
func (w *Worker) runTask(queue, id string) error {
	err := w.inspector.RunTask(queue, id)
	if err == nil && w.wakeUp != nil {
		w.wakeUp()
	}
	return err
}

// enqueue is Client.EnqueueContext that wakes a quiet worker when the task
// is runnable now.
func (w *Worker) enqueue(ctx context.Context, t *asynq.Task, opts ...asynq.Option) (*asynq.TaskInfo, error) {
	info, err := w.client.EnqueueContext(ctx, t, opts...)
	if err == nil && w.wakeUp != nil && info.State == asynq.TaskStatePending {
		w.wakeUp()
	}
	return info, err
}

// Register adds the worker's handlers to mux.
func (w *Worker) Register(mux *asynq.ServeMux) {
	mux.HandleFunc(TypeSubmit, w.HandleSubmit)
	w.RegisterDevices(mux)
}

// WaitError hands a task back to the queue for Delay without counting a
// failure: waiting for a token, a slot or a back-off is not failing (Q3).
type WaitError struct {
	Delay  time.Duration
	Reason distribution.WaitReason

	// ranAt, for a poll, is when its Query found the job running (the
	// poll schedule keeps it for the worker that sees the end).
	ranAt time.Time
}

func (e *WaitError) Error() string { return fmt.Sprintf("waiting (%s) for %v", e.Reason, e.Delay) }

// IsFailure tells asynq which handler errors are failures: waits are not.
func IsFailure(err error) bool {
	var w *WaitError
	return !errors.As(err, &w)
}

// RetryDelay is asynq's RetryDelayFunc: a wait's own delay, else an
// exponential back-off with jitter.
func RetryDelay(n int, err error, _ *asynq.Task) time.Duration {
	var w *WaitError
	if errors.As(err, &w) {
		return w.Delay
	}
	d := time.Duration(1<<min(n, 6)) * time.Second
	return d + rand.N(d/2+1)
}

func payloadID(t *asynq.Task) (string, error) {
	var p Payload
	if err := json.Unmarshal(t.Payload(), &p); err != nil || p.ID == "" {
		return "", fmt.Errorf("bad payload %q: %w", t.Payload(), asynq.SkipRetry)
	}
	return p.ID, nil
}

func (w *Worker) account(r *store.Record) (*Account, error) {
	a, ok := w.accounts[r.Account]
	if !ok {
		return nil, fmt.Errorf("distribution %s names account %q, unknown to this worker", r.ID, r.Account)
	}
	return a, nil
}

// grant waits for a shared rate grant of action for the account (Q1). A
// grant further away than maxWait returns a *quota.TooLongError at once.
func (w *Worker) grant(ctx context.Context, a *Account, action string, maxWait time.Duration) error {
	_, err := w.grantOf(ctx, a, action, maxWait)
	return err
}

// grantOf is grant, returning the Grant (see quota.Grant.Stale).
func (w *Worker) grantOf(ctx context.Context, a *Account, action string, maxWait time.Duration) (quota.Grant, error) {
	qps := a.QPS(action)
	if action == alibaba.ActionCreate {
		qps = w.createQPS(ctx, a)
	}
	g, err := w.limiter.WaitGrant(ctx, a.UID, action, qps, maxWait)
	if err != nil {
		return g, err
	}
	w.metrics.QuotaWait.WithLabelValues(a.Name, "rate").Observe(g.Waited.Seconds())
	return g, nil
}

// runToken names one run of a distribution's task, as the holder token of
// its slot: the distribution id, asynq's retry count, and a random part
// (two runs can share a retry count after a crash recovery).
func runToken(ctx context.Context, id string) string {
	n, _ := asynq.GetRetryCount(ctx)
	return fmt.Sprintf("%s/%d/%08x", id, n, rand.Uint32())
}

// alarm reports what must never happen (a second remote job for one
// distribution): an error log and the distq_reconciled_total{reason} metric.
func (w *Worker) alarm(a *Account, reason, msg string, attrs ...any) {
	w.metrics.Reconciled.WithLabelValues(a.Name, reason).Inc()
	w.log.Error(msg, append([]any{"alarm", reason, "account", a.Name}, attrs...)...)
}

// do runs one remote call, granted before, and records its metrics and
// latency; a Throttling answer pauses the whole account.
func (w *Worker) do(ctx context.Context, a *Account, action string, fn func() error) error {
	return w.doSince(ctx, a, action, time.Now(), fn)
}

// doSince is do for a call whose grant came at granted: the work between
// the grant and the call is part of the delay the rate margin must cover.
func (w *Worker) doSince(ctx context.Context, a *Account, action string, granted time.Time, fn func() error) error {
	start := time.Now()
	err := fn()
	d := time.Since(granted)
	e := alibaba.AsAPIError(err)
	if e == nil || e.HTTPStatus != 0 {
		// Only calls that reached the endpoint tell the spread of delays
		// between grant and arrival that the rate margin must cover.
		w.limiter.ObserveLatency(ctx, a.UID, action, d)
	}
	w.metrics.RequestDuration.WithLabelValues(action).Observe(time.Since(start).Seconds())
	code := "OK"
	if e != nil {
		code = e.Code
		if e.Class == alibaba.Throttled {
			w.metrics.Throttled.WithLabelValues(a.Name, action).Inc()
			w.pause(ctx, a)
		}
	}
	w.metrics.Requests.WithLabelValues(a.Name, action, code).Inc()
	return err
}

// pause makes every worker of the account back off together (Q4).
func (w *Worker) pause(ctx context.Context, a *Account) {
	if err := w.limiter.Pause(ctx, a.UID, w.opts.ThrottlePause+rand.N(w.opts.ThrottlePause/2+1)); err != nil {
		w.log.Warn("pause after throttling", "account", a.Name, "err", err)
	}
}

// releaseSlot frees a distribution's slot, whatever run holds it, and
// wakes the next waiter: only for a distribution known final (its record
// says so, or is gone).
func (w *Worker) releaseSlot(ctx context.Context, a *Account, id string) {
	w.releaseSlotToken(ctx, a, id, "")
}

// releaseSlotToken frees a distribution's slot if the run named token holds
// it (all runs when token is ""), and hands it in the same step to the next
// waiter (single submissions first, Q7), whose task is woken at once: a
// freed slot neither idles until a recheck nor goes to a task that did not
// wait.
func (w *Worker) releaseSlotToken(ctx context.Context, a *Account, id, token string) {
	next, handed, err := w.limiter.HandSlot(ctx, a.UID, id, token, w.maxJobs(ctx, a), w.opts.SlotLease)
	if err != nil {
		w.log.Warn("release slot", "account", a.Name, "distribution_id", id, "err", err)
		return
	}
	if next != "" {
		// A waiter handed the slot that waits in its handler, here or in
		// another worker, goes on at once; else its task is woken.
		if handed && w.signalHandoff(next) {
			w.refreshSlotGauge(ctx, a)
			return
		}
		if handed {
			w.announceHandoff(ctx, next)
		}
		w.wake(ctx, a, next, handed)
	}
	w.refreshSlotGauge(ctx, a)
}

// wake moves a waiting distribution's task from retry to pending now. A
// waiter handed a slot that will not use it (final or gone meanwhile)
// passes the slot on.
func (w *Worker) wake(ctx context.Context, a *Account, id string, handed bool) {
	if devices.IsHolder(id) {
		w.wakeDevice(ctx, a, id, handed)
		return
	}
	r, err := w.store.Get(ctx, id)
	if errors.Is(err, store.ErrNotFound) || err == nil && r.State.Terminal() {
		if handed {
			w.releaseSlot(ctx, a, id)
		}
		return
	}
	if err != nil {
		return // its own recheck finds the slot it was handed
	}
	if err := w.runTask(r.Queue, r.ID); err != nil {
		// Its handler is still returning its wait: wake it once it has.
		w.wakeIn(r.Queue, r.ID, 50*time.Millisecond)
	}
}

func (w *Worker) refreshSlotGauge(ctx context.Context, a *Account) {
	// One refresh at a time: two releases' refreshes must not set the
	// gauge in the opposite order of their reads.
	w.gaugeMu.Lock()
	defer w.gaugeMu.Unlock()
	h, err := w.limiter.Holders(ctx, a.UID)
	if err != nil {
		return
	}
	ext, _ := w.limiter.External(ctx, a.UID)
	w.metrics.SlotsInUse.WithLabelValues(a.Name).Set(float64(len(h) + ext))
}

// forTeams returns the error a team sees of e: an account-level remote
// error (keys, signature, permissions) is logged in full for operators,
// counted, and replaced by a short message that keeps the code and the
// RequestId; anything else is e itself.
func (w *Worker) forTeams(a *Account, id string, e *distribution.Error) *distribution.Error {
	if e == nil || !alibaba.IsAccountLevel(e.Code) {
		return e
	}
	w.metrics.AccountErrors.WithLabelValues(a.Name, e.Code).Inc()
	w.log.Error("the remote refused the account itself: operators must act", "account", a.Name, "distribution_id", id,
		"code", e.Code, "remote_request_id", e.RequestID, "remote_message", e.Message)
	return &distribution.Error{Code: e.Code, Message: alibaba.TeamMessage, RequestID: e.RequestID}
}

// finish records a final state and its metrics.
func (w *Worker) finish(ctx context.Context, a *Account, r *store.Record, state distribution.State, e *distribution.Error, remoteStatus *int) error {
	now := w.now()
	e = w.forTeams(a, r.ID, e)
	r2, finished, err := w.apply(ctx, r.ID, func(r *store.Record) error { return r.Finish(now, state, e, remoteStatus) })
	if err != nil {
		return fmt.Errorf("finish %s: %w", r.ID, err)
	}
	if !finished { // it was finished already
		return nil
	}
	w.metrics.Finished.WithLabelValues(a.Name, string(state)).Inc()
	w.metrics.Duration.WithLabelValues(a.Name).Observe(now.Sub(r2.CreatedAt).Seconds())
	attrs := []any{"distribution_id", r.ID, "account", a.Name, "state", state, "job_id", r2.JobID}
	if e != nil {
		attrs = append(attrs, "code", e.Code, "remote_request_id", e.RequestID)
	}
	w.log.Info("distribution finished", attrs...)
	return nil
}

func apiErrorOf(e *alibaba.APIError) *distribution.Error {
	return &distribution.Error{Code: e.Code, Message: e.Message, RequestID: e.RequestID}
}
