package queue

// Device distributions through asynq: each remote job of a device
// distribution (internal/devices) is a submit task and then a poll task of
// its own, and holds one job slot of the account — the same counter as
// product distributions — under the holder id devices.Holder(id, n)
// ("dev:<id>:<n>"), which never collides with a distribution id. The rules
// are the product Creates' (docs/QUOTA.md): a slot before the Create, a
// rate grant of CreateDeviceDistributeJob's own budget, the Create marker
// written (and replicated) before the Create is sent, the slot pinned from
// the send on, and after an answer of unknown outcome, lookups in
// ListDeviceDistributeJob — of unclaimed device jobs of the same product,
// source, targets and device count, made in the Create's window — before
// any new Create. A job is claimed in the job index (owner: its holder id)
// before it is recorded, so no job is ever adopted twice, by a device job
// or a product distribution.

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"time"

	"github.com/hibiken/asynq"

	"github.com/distq/distq/internal/alibaba"
	"github.com/distq/distq/internal/devices"
	"github.com/distq/distq/internal/distribution"
	"github.com/distq/distq/internal/quota"
	"github.com/distq/distq/internal/store"
)

// Task types of device distributions. Stable names: never rename one in place.
const (
	TypeDeviceSubmit = "devices:submit"
	TypeDevicePoll   = "devices:poll"
)

// Rates of the device actions. CreateDeviceDistributeJob has a budget of
// its own, documented as 2/s like CreateProductDistributeJob's: it takes
// the account's create_qps as operators set it (Worker.createQPS).
// QueryDeviceDistributeDetail is documented at 5/s. Queries of device jobs
// share QueryDeviceDistributeJob's budget with the product polls.
const detailQPS = 5

// Tries at a job's result file before its details are declared unavailable.
const maxDetailAttempts = 5

// DevicePayload is the payload of a device task: one job of one device
// distribution.
type DevicePayload struct {
	ID  string `json:"id"`
	Job int    `json:"job"`
}

// deviceTaskID is the asynq TaskID of job n's submit task; devicePollID its
// poll task's.
func deviceTaskID(id string, n int) string { return devices.Holder(id, n) }
func devicePollID(id string, n int) string { return devicePollPrefix + id + ":" + strconv.Itoa(n) }

const devicePollPrefix = "devpoll:"

func deviceSubmitTask(id string, n int) (*asynq.Task, []asynq.Option) {
	raw, _ := json.Marshal(DevicePayload{ID: id, Job: n})
	return asynq.NewTask(TypeDeviceSubmit, raw), []asynq.Option{
		asynq.TaskID(deviceTaskID(id, n)), asynq.Queue(QueueBatch), asynq.MaxRetry(math.MaxInt32),
	}
}

// SubmitDeviceJobs enqueues the submit task of each job of device
// distribution id (a repeat is harmless: the TaskID is the job's).
func (e *Enqueuer) SubmitDeviceJobs(ctx context.Context, id string, jobs []int) error {
	defer e.wakeWorkers(ctx)
	for _, n := range jobs {
		t, opts := deviceSubmitTask(id, n)
		if _, err := e.client.EnqueueContext(ctx, t, opts...); err != nil && !errors.Is(err, asynq.ErrTaskIDConflict) {
			return fmt.Errorf("enqueue %s job %d: %w", id, n, err)
		}
	}
	return nil
}

// RegisterDevices adds the device handlers to mux.
func (w *Worker) RegisterDevices(mux *asynq.ServeMux) {
	mux.HandleFunc(TypeDeviceSubmit, w.HandleDeviceSubmit)
}

func devicePayload(t *asynq.Task) (DevicePayload, error) {
	var p DevicePayload
	if err := json.Unmarshal(t.Payload(), &p); err != nil || p.ID == "" || p.Job < 0 {
		return p, fmt.Errorf("bad payload %q: %w", t.Payload(), asynq.SkipRetry)
	}
	return p, nil
}

// applyDevices runs a transition on device distribution id under the
// store's compare-and-set; a refused transition is no error (applied false).
func (w *Worker) applyDevices(ctx context.Context, id string, op func(r *devices.Record) error) (r *devices.Record, applied bool, err error) {
	r, err = w.store.UpdateDevices(ctx, id, func(r *devices.Record) error {
		applied = false
		err := op(r)
		var refused *distribution.TransitionError
		if errors.As(err, &refused) {
			return store.ErrNoChange
		}
		applied = err == nil
		return err
	})
	return r, applied && err == nil, err
}

// loadDeviceJob reads job n of id; ok is false when there is nothing to do
// (no record, no such job).
func (w *Worker) loadDeviceJob(ctx context.Context, p DevicePayload) (r *devices.Record, a *Account, ok bool, err error) {
	r, err = w.store.GetDevices(ctx, p.ID)
	if errors.Is(err, store.ErrNotFound) {
		w.log.Warn("device task without record", "device_distribution_id", p.ID)
		return nil, nil, false, nil
	}
	if err != nil {
		return nil, nil, false, err
	}
	if p.Job >= len(r.Jobs) {
		w.log.Warn("device task of an unknown job", "device_distribution_id", p.ID, "job", p.Job)
		return nil, nil, false, nil
	}
	a, known := w.accounts[r.Account]
	if !known {
		return nil, nil, false, fmt.Errorf("device distribution %s names account %q, unknown to this worker", r.ID, r.Account)
	}
	return r, a, true, nil
}

// HandleDeviceSubmit takes a pending job of a device distribution to a
// remote job: a slot, a grant of the device Create rate, then
// CreateDeviceDistributeJob; or, after a Create of unknown outcome, lookups
// until the job shows or the visibility bound has passed (Q5).
func (w *Worker) HandleDeviceSubmit(ctx context.Context, t *asynq.Task) error {
	p, err := devicePayload(t)
	if err != nil {
		return err
	}
	r, a, ok, err := w.loadDeviceJob(ctx, p)
	if !ok || err != nil {
		return err
	}
	j := r.Jobs[p.Job]
	if j.State.Final() {
		w.dropDeviceTurn(ctx, a, r, p.Job)
		return nil
	}
	if j.JobID != "" {
		w.dropDeviceTurn(ctx, a, r, p.Job)
		return w.ensureDevicePoll(ctx, p.ID, p.Job, w.opts.PollInterval)
	}
	holder := devices.Holder(p.ID, p.Job)
	token := runToken(ctx, holder)
	if j.CreateSentAt != nil {
		w.dropDeviceTurn(ctx, a, r, p.Job)
		adopted, err := w.lookupDevices(ctx, a, r, p.Job, token)
		if err != nil {
			return w.lookupFailed(err)
		}
		if adopted {
			return nil
		}
		deadline := j.CreateSentAt.Add(w.opts.CallTimeout + w.opts.RemoteVisibility)
		if left := deadline.Sub(w.now()); left > 0 {
			return &WaitError{Delay: min(w.opts.LookupInterval, left+10*time.Millisecond), Reason: distribution.WaitBackoff}
		}
		w.log.Info("device create of unknown outcome made no job; sending again", "device_distribution_id", p.ID,
			"job", p.Job, "account", a.Name, "create_sent_at", j.CreateSentAt)
		now := w.now()
		if r, _, err = w.applyDevices(ctx, p.ID, func(r *devices.Record) error { return r.ForgetCreate(p.Job, now) }); err != nil {
			return err
		}
		if j := r.Jobs[p.Job]; j.JobID != "" || j.State.Final() {
			return nil
		}
	}
	return w.submitDevices(ctx, a, r, p.Job, token)
}

// submitDevices is submit (submit.go) for job n of device distribution r.
//
// A job takes its team's turn in the account's fair queue first, like a
// batch item: its slot is one of the same counter, so slots go to the
// teams by weight whatever kind of job they wait for.
func (w *Worker) submitDevices(ctx context.Context, a *Account, r *devices.Record, n int, token string) (err error) {
	id, holder := r.ID, devices.Holder(r.ID, n)
	var t *turn
	if !w.settings(ctx).Paused(a.Name, r.Team) { // a paused job waits below, out of the queue
		t, err = w.turnFor(ctx, a, deviceItem(r, n), r.Jobs[n].WaitReason == distribution.WaitJobSlots,
			func() { w.setDeviceWaiting(ctx, id, n, distribution.WaitFairShare) })
		if err != nil {
			return err
		}
		defer func() { w.leaveTurn(ctx, t, err) }()
	}
	names, err := w.store.DeviceNames(ctx, id, n)
	if err != nil {
		return err
	}
	req := alibaba.DeviceCreateRequest{ProductKey: r.ProductKey, SourceInstanceID: r.SourceInstanceID,
		TargetInstanceIDs: r.TargetInstanceIDs, Strategy: r.Strategy.Remote(), DeviceNames: names,
		TargetUID: r.TargetUID, TargetAliyunID: r.TargetAliyunID}
	stales := 0
	for loop := 0; ; loop++ {
		if w.settings(ctx).Paused(a.Name, r.Team) {
			// An operator paused the account or the team: no Create is out
			// (no marker yet), so a slot it waits for or holds goes on.
			w.setDeviceWaiting(ctx, id, n, distribution.WaitPaused)
			if err := w.limiter.RemoveWaiter(ctx, a.UID, holder); err != nil {
				return err
			}
			w.releaseSlotToken(ctx, a, holder, token)
			return &WaitError{Delay: w.opts.PausedRecheck, Reason: distribution.WaitPaused}
		}
		maxJobs := w.maxJobs(ctx, a)
		ok, inUse, err := w.limiter.AcquireSlotToken(ctx, a.UID, holder, token, maxJobs, w.opts.SlotLease)
		if err != nil {
			return err
		}
		w.metrics.SlotsInUse.WithLabelValues(a.Name).Set(float64(inUse))
		if !ok {
			if err := w.limiter.AddWaiter(ctx, a.UID, holder); err != nil {
				return err
			}
			// A slot freed between the acquire and the AddWaiter went to
			// nobody waiting: look once more, now as a waiter.
			if ok, _, err = w.limiter.AcquireSlotToken(ctx, a.UID, holder, token, maxJobs, w.opts.SlotLease); err != nil {
				return err
			}
		}
		if !ok {
			w.setDeviceWaiting(ctx, id, n, distribution.WaitJobSlots)
			return &WaitError{Delay: w.opts.SlotRecheck, Reason: distribution.WaitJobSlots}
		}
		// The marker before the send (Q5).
		now := w.now()
		cur, started, err := w.applyDevices(ctx, id, func(r *devices.Record) error { return r.StartCreate(n, now) })
		if err != nil {
			w.releaseSlotToken(ctx, a, holder, token)
			return err
		}
		if started {
			// The Create is going out: the next item in fair order is admitted.
			w.createGoingOut(t)
		}
		if !started {
			if j := cur.Jobs[n]; j.State == devices.JobSubmitting && j.JobID == "" {
				// Another run sent a Create meanwhile: its slot is its own.
				return &WaitError{Delay: w.opts.LookupInterval, Reason: distribution.WaitBackoff}
			}
			w.releaseSlotToken(ctx, a, holder, token) // canceled, or started by another run
			return nil
		}
		notSent := func(reason distribution.WaitReason, failure *devices.Error) error {
			_, _, err := w.applyDevices(ctx, id, func(r *devices.Record) error { return r.Requeue(n, w.now(), reason, failure) })
			w.releaseSlotToken(ctx, a, holder, token)
			return err
		}
		if err := w.store.WaitReplicas(ctx, w.opts.ReplicaWait); err != nil {
			w.log.Warn("device create marker not replicated; create not sent", "device_distribution_id", id, "job", n, "err", err)
			if uerr := notSent(distribution.WaitBackoff, nil); uerr != nil {
				return uerr
			}
			return &WaitError{Delay: 2 * time.Second, Reason: distribution.WaitBackoff}
		}
		if _, _, err := w.limiter.PinSlot(ctx, a.UID, holder, token); err != nil {
			return errors.Join(err, notSent(distribution.WaitBackoff, nil))
		}
		// The SDK builds and signs a Create of 10,000 names in tens of
		// milliseconds (hundreds under the race detector): longer than a
		// grant may wait for its call (its margin). So the grant is taken
		// in the send check, once the request is built and signed, right
		// before it is written: the call arrives at its grant whatever its
		// size (Q1). A pause since the grant, read in the pin's script,
		// makes it stale.
		var g quota.Grant
		granted := false
		sendCtx := alibaba.WithSendCheck(ctx, func() error {
			if err := ctx.Err(); err != nil {
				return err
			}
			var err error
			if g, err = w.limiter.WaitGrant(ctx, a.UID, alibaba.ActionCreateDevices, w.createQPS(ctx, a), w.opts.MaxBatchRateWait); err != nil {
				return err
			}
			granted = true
			_, epoch, err := w.limiter.PinSlot(ctx, a.UID, holder, token)
			if err != nil {
				return err
			}
			if err := ctx.Err(); err != nil {
				return err
			}
			if g.Stale(epoch) {
				return errStaleGrant
			}
			return nil
		})
		var jobID, requestID string
		err = w.doDeviceCreate(ctx, a, &g, &granted, func() error {
			var err error
			jobID, requestID, err = a.Client.CreateDevicesContext(sendCtx, req)
			return err
		})
		if e := alibaba.AsAPIError(err); e == nil || e.Code != alibaba.CodeNotSent {
			w.countCreate(a, r.Team)
		}
		if err == nil {
			return w.deviceStarted(ctx, a, id, n, jobID, requestID, nil)
		}
		apiErr := alibaba.AsAPIError(err)
		if apiErr != nil && apiErr.Code == alibaba.CodeNotSent {
			if granted {
				// The Create never left: its grant costs no capacity.
				if err := w.limiter.CancelGrant(ctx, a.UID, alibaba.ActionCreateDevices, g); err != nil {
					w.log.Warn("cancel unused grant", "device_distribution_id", id, "err", err)
				}
			}
			var tl *quota.TooLongError
			switch {
			case ctx.Err() != nil:
				return errors.Join(ctx.Err(), notSent(distribution.WaitBackoff, nil))
			case errors.As(err, &tl):
				if err := notSent(distribution.WaitRateLimit, nil); err != nil {
					return err
				}
				delay := max(tl.Wait-w.opts.MaxBatchRateWait/2, 100*time.Millisecond)
				return &WaitError{Delay: delay, Reason: distribution.WaitRateLimit}
			case errors.Is(err, errStaleGrant):
				w.metrics.Reconciled.WithLabelValues(a.Name, "stale_grant").Inc()
				if _, _, err := w.applyDevices(ctx, id, func(r *devices.Record) error {
					return r.Requeue(n, w.now(), distribution.WaitRateLimit, nil)
				}); err != nil {
					w.releaseSlotToken(ctx, a, holder, token)
					return err
				}
				if stales++; stales < maxStaleGrants {
					continue
				}
				w.releaseSlotToken(ctx, a, holder, token)
				return &WaitError{Delay: 100 * time.Millisecond, Reason: distribution.WaitRateLimit}
			default: // Redis failed in the check: nothing went out
				return errors.Join(err, notSent(distribution.WaitBackoff, nil))
			}
		}
		if apiErr == nil {
			return errors.Join(err, notSent(distribution.WaitBackoff, nil))
		}
		switch apiErr.Class {
		case alibaba.Throttled:
			if _, _, err := w.applyDevices(ctx, id, func(r *devices.Record) error {
				return r.Requeue(n, w.now(), distribution.WaitBackoff, nil)
			}); err != nil {
				return err
			}
			if loop < maxThrottleLoops {
				continue
			}
			w.releaseSlotToken(ctx, a, holder, token)
			return &WaitError{Delay: 2 * time.Second, Reason: distribution.WaitBackoff}
		case alibaba.QuotaExceeded:
			if err := notSent(distribution.WaitJobSlots, nil); err != nil {
				return err
			}
			if err := w.limiter.AddWaiter(ctx, a.UID, holder); err != nil {
				return err
			}
			w.quotaRefused(a)
			return &WaitError{Delay: w.opts.SlotRecheck, Reason: distribution.WaitJobSlots}
		case alibaba.Ambiguous:
			// The job may exist: the marker and the pinned slot stay; the
			// next runs look it up before any new Create.
			w.log.Warn("device create outcome unknown", "device_distribution_id", id, "job", n, "account", a.Name, "err", err)
			return &WaitError{Delay: time.Second, Reason: distribution.WaitBackoff}
		case alibaba.Permanent, alibaba.NotFound:
			w.releaseSlotToken(ctx, a, holder, token)
			return w.failDeviceJob(ctx, a, id, n, names, apiErrorOf(apiErr))
		default: // Transient: the request provably never left
			j := cur.Jobs[n]
			if j.Attempts >= w.opts.MaxAttempts {
				w.releaseSlotToken(ctx, a, holder, token)
				e := apiErrorOf(apiErr)
				e.Message = fmt.Sprintf("gave up after %d attempts: %s", j.Attempts, e.Message)
				return w.failDeviceJob(ctx, a, id, n, names, e)
			}
			if uerr := notSent(distribution.WaitBackoff, apiErrorOf(apiErr)); uerr != nil {
				return uerr
			}
			return err
		}
	}
}

// setDeviceWaiting shows why a pending job waits (Q3).
func (w *Worker) setDeviceWaiting(ctx context.Context, id string, n int, reason distribution.WaitReason) {
	if _, _, err := w.applyDevices(ctx, id, func(r *devices.Record) error { return r.Wait(n, reason) }); err != nil {
		w.log.Warn("set wait reason", "device_distribution_id", id, "job", n, "err", err)
	}
}

// failDeviceJob ends job n without a remote job: every device of it failed
// with e (kept as its per-device outcome).
func (w *Worker) failDeviceJob(ctx context.Context, a *Account, id string, n int, names []string, e *devices.Error) error {
	e = w.forTeams(a, id, e)
	results := make([]devices.Result, len(names))
	for i, name := range names {
		results[i] = devices.Result{DeviceName: name, Job: n, Code: e.Code, Message: e.Message}
	}
	if err := w.store.PutDeviceResults(ctx, id, n, results); err != nil {
		return err
	}
	now := w.now()
	r, applied, err := w.applyDevices(ctx, id, func(r *devices.Record) error { return r.Fail(n, now, e) })
	if err != nil {
		return err
	}
	if applied {
		w.log.Info("device job failed", "device_distribution_id", id, "job", n, "account", a.Name, "code", e.Code,
			"remote_request_id", e.RequestID, "state", r.State)
	}
	return nil
}

// deviceStarted records job n's remote job and schedules its poll; the
// job is claimed in the job index first (owner: the holder id).
func (w *Worker) deviceStarted(ctx context.Context, a *Account, id string, n int, jobID, requestID string, status *int) error {
	holder := devices.Holder(id, n)
	owner, err := w.store.ClaimJob(ctx, jobID, holder)
	if err != nil {
		return fmt.Errorf("claim job %s of %s: %w", jobID, holder, err)
	}
	if owner != holder {
		w.alarm(a, "job_of_another", "remote job already owned by another distribution", "device_distribution_id", id,
			"job", n, "job_id", jobID, "owner", owner)
		return nil
	}
	now := w.now()
	cur, _, err := w.applyDevices(ctx, id, func(r *devices.Record) error { return r.Started(n, now, jobID, status) })
	if err != nil {
		return fmt.Errorf("record job %s of %s: %w", jobID, holder, err)
	}
	if first := cur.Jobs[n].JobID; first != jobID {
		w.alarm(a, "second_job", "second remote job for one device job", "device_distribution_id", id, "job", n,
			"job_id", first, "second_job_id", jobID)
		return w.ensureDevicePoll(ctx, id, n, w.opts.PollInterval)
	}
	w.log.Info("device job submitted", "device_distribution_id", id, "job", n, "account", a.Name, "job_id", jobID,
		"devices", cur.Jobs[n].Devices, "remote_request_id", requestID)
	return w.ensureDevicePoll(ctx, id, n, w.opts.PollInterval)
}

// ensureDevicePoll schedules job n's poll in delay, unless it is scheduled.
func (w *Worker) ensureDevicePoll(ctx context.Context, id string, n int, delay time.Duration) error {
	return w.schedulePoll(ctx, devicePollID(id, n), delay)
}

// deviceJobMatches reports whether remote job j is what job n of r would
// make: a device job of the same product, source, targets and strategy,
// with as many devices.
func deviceJobMatches(j alibaba.Job, r *devices.Record, n int) bool {
	if !alibaba.IsDeviceJob(j) || j.Total != r.Jobs[n].Devices || j.ProductKey != r.ProductKey ||
		j.SourceInstanceID != r.SourceInstanceID || j.Strategy != r.Strategy.Remote() {
		return false
	}
	got, want := slices.Clone(j.TargetInstanceIDs), slices.Clone(r.TargetInstanceIDs)
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		return false
	}
	return j.TargetUID == "" || r.TargetUID == "" || j.TargetUID == r.TargetUID
}

// lookupDevices searches the remote job list for a job that job n's
// earlier Create made, and adopts it (lookup, in submit.go, for device
// jobs). It reports whether it adopted one.
func (w *Worker) lookupDevices(ctx context.Context, a *Account, r *devices.Record, n int, token string) (bool, error) {
	sent := *r.Jobs[n].CreateSentAt
	since := sent.Add(-clockSkew)
	until := sent.Add(w.opts.CallTimeout + w.opts.RemoteVisibility + clockSkew)
	holder := devices.Holder(r.ID, n)
	var found []alibaba.Job
	if _, err := w.listDeviceJobs(ctx, a, r, func(jobs []alibaba.Job) (bool, error) {
		for _, j := range jobs {
			if !deviceJobMatches(j, r, n) || j.CreatedAt.Before(since) || j.CreatedAt.After(until) {
				continue
			}
			owner, err := w.store.JobOwner(ctx, j.JobID)
			if err != nil {
				return true, err
			}
			if owner != "" && owner != holder {
				continue // another job's
			}
			found = append(found, j)
		}
		return false, nil
	}); err != nil {
		return false, err
	}
	slices.SortFunc(found, func(x, y alibaba.Job) int {
		return cmp.Compare(absDur(x.CreatedAt.Sub(sent)), absDur(y.CreatedAt.Sub(sent)))
	})
	for i, j := range found {
		owner, err := w.store.ClaimJob(ctx, j.JobID, holder)
		if err != nil {
			return false, err
		}
		if owner != holder {
			continue
		}
		if len(found) > i+1 {
			w.alarm(a, "second_job", "several unowned remote jobs match one device job; adopting the closest",
				"device_distribution_id", r.ID, "job", n, "job_id", j.JobID, "candidates", len(found)-i)
		}
		if _, _, err := w.limiter.PinSlot(ctx, a.UID, holder, token); err != nil {
			return false, err
		}
		st := j.Status
		w.metrics.Reconciled.WithLabelValues(a.Name, "adopted_job").Inc()
		w.log.Info("adopted device job of an earlier create", "device_distribution_id", r.ID, "job", n, "job_id", j.JobID)
		return true, w.deviceStarted(ctx, a, r.ID, n, j.JobID, "", &st)
	}
	return false, nil
}

// listDeviceJobs pages through ListDeviceDistributeJob for r's product and
// target UID (listJobs, for device jobs), handing every page's device jobs
// to visit.
func (w *Worker) listDeviceJobs(ctx context.Context, a *Account, r *devices.Record, visit func([]alibaba.Job) (bool, error)) (complete bool, err error) {
	token := ""
	for range maxLookupPages {
		if err := w.grant(ctx, a, alibaba.ActionList, w.opts.MaxRateWait); err != nil {
			return false, err
		}
		var jobs []alibaba.Job
		var next string
		err := w.do(ctx, a, alibaba.ActionList, func() error {
			var err error
			jobs, next, err = a.Client.ListContext(ctx, alibaba.ListFilter{ProductKey: r.ProductKey, TargetUID: r.TargetUID, NextToken: token})
			return err
		})
		if err != nil {
			return false, err
		}
		jobs = slices.DeleteFunc(jobs, func(j alibaba.Job) bool { return !alibaba.IsDeviceJob(j) })
		if stop, err := visit(jobs); stop || err != nil {
			return false, err
		}
		if next == "" {
			return true, nil
		}
		token = next
	}
	return false, nil
}

// doDeviceCreate runs a CreateDeviceDistributeJob whose grant is taken in
// its send check (g, granted), with do's bookkeeping: the latency from
// the grant to the answer feeds the rate margin (only for calls that
// reached the endpoint), the metrics count the call, and a Throttling
// answer pauses the whole account.
func (w *Worker) doDeviceCreate(ctx context.Context, a *Account, g *quota.Grant, granted *bool, fn func() error) error {
	start := time.Now()
	err := fn()
	e := alibaba.AsAPIError(err)
	if *granted {
		w.metrics.QuotaWait.WithLabelValues(a.Name, "rate").Observe(g.Waited.Seconds())
		if e == nil || e.HTTPStatus != 0 {
			w.limiter.ObserveLatency(ctx, a.UID, alibaba.ActionCreateDevices, time.Since(g.Local))
		}
		start = g.Local
	}
	w.metrics.RequestDuration.WithLabelValues(alibaba.ActionCreateDevices).Observe(time.Since(start).Seconds())
	code := "OK"
	if e != nil {
		code = e.Code
		if e.Class == alibaba.Throttled {
			w.metrics.Throttled.WithLabelValues(a.Name, alibaba.ActionCreateDevices).Inc()
			w.pause(ctx, a)
		}
	}
	w.metrics.Requests.WithLabelValues(a.Name, alibaba.ActionCreateDevices, code).Inc()
	return err
}
