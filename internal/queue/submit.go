package queue

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/hibiken/asynq"

	"github.com/distq/distq/internal/alibaba"
	"github.com/distq/distq/internal/distribution"
	"github.com/distq/distq/internal/quota"
	"github.com/distq/distq/internal/store"
)

// maxThrottleLoops bounds how often one run of a submit task goes back to
// the rate after Throttling answers before it hands itself back.
const maxThrottleLoops = 5

// errStaleGrant holds a Create back whose grant went stale.
var errStaleGrant = errors.New("rate grant stale before the create went out")

// createLead is how long before its grant a Create is prepared (marker,
// replicas, pin): that work then overlaps the wait instead of delaying the
// send, up to this long. The pin reads the pause epoch; a pause that starts
// between the pin and the grant (at most this long) holds back the grants
// after it, not this one, unless its call is overdue.
const createLead = 150 * time.Millisecond

// maxGrantMoves bounds how often one grant moves (quota.MoveGrant) because
// its Create was still overdue after the last move.
const maxGrantMoves = 3

// maxStaleGrants bounds how often one run takes a new grant because the
// last one went stale before its Create could go out.
const maxStaleGrants = 3

// HandleSubmit takes a queued distribution to a remote job: a slot, a rate
// grant, then CreateProductDistributeJob; or, after a Create of unknown
// outcome, lookups in ListDeviceDistributeJob until the job shows or the
// remote visibility bound has passed (Q5).
func (w *Worker) HandleSubmit(ctx context.Context, t *asynq.Task) error {
	id, err := payloadID(t)
	if err != nil {
		return err
	}
	r, err := w.store.Get(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		w.log.Warn("submit task without record", "distribution_id", id)
		return nil
	}
	if err != nil {
		return err
	}
	a, err := w.account(r)
	if err != nil {
		if r.State.Terminal() {
			return nil
		}
		return err
	}
	if r.State.Terminal() {
		w.dropTurn(ctx, a, r)
		return nil
	}
	if r.JobID != "" {
		w.dropTurn(ctx, a, r)
		return w.ensurePoll(ctx, r.ID)
	}
	token := runToken(ctx, id)
	if r.CreateSentAt != nil {
		w.dropTurn(ctx, a, r)
		adopted, err := w.lookup(ctx, a, r, token)
		if err != nil {
			return w.lookupFailed(err)
		}
		if adopted {
			return nil
		}
		// Not (yet) in the list. Until the job could still show, the Create
		// may have made it: keep the marker and the pinned slot, look again.
		deadline := r.CreateSentAt.Add(w.opts.CallTimeout + w.opts.RemoteVisibility)
		if left := deadline.Sub(w.now()); left > 0 {
			return &WaitError{Delay: min(w.opts.LookupInterval, left+10*time.Millisecond), Reason: distribution.WaitBackoff}
		}
		w.log.Info("create of unknown outcome made no job; sending again", "distribution_id", id, "account", a.Name,
			"create_sent_at", r.CreateSentAt)
		if r, _, err = w.apply(ctx, id, func(r *store.Record) error { return r.ForgetCreate(w.now()) }); err != nil {
			return err
		}
		if r.JobID != "" || r.State.Terminal() {
			return nil
		}
	}
	return w.submit(ctx, a, r, token)
}

func (w *Worker) lookupFailed(err error) error {
	var tl *quota.TooLongError
	if errors.As(err, &tl) {
		return &WaitError{Delay: tl.Wait, Reason: distribution.WaitRateLimit}
	}
	if alibaba.AsAPIError(err) != nil {
		// The List failed: try again later; the marker stays.
		return &WaitError{Delay: 2 * time.Second, Reason: distribution.WaitBackoff}
	}
	return err
}

// markSent marks the Create as sent (Q5) through StartSubmit: state
// submitting, CreateSentAt now, one more attempt. canceled reports a record
// no longer waiting for a Create (canceled, finished, or given a job by
// another run); pending one whose marker another run set (its Create may
// be out: only a lookup may follow).
func (w *Worker) markSent(ctx context.Context, id string) (r *store.Record, canceled, pending bool, err error) {
	now := w.now()
	r, started, err := w.apply(ctx, id, func(r *store.Record) error { return r.StartSubmit(now) })
	if err != nil || started {
		return r, false, false, err
	}
	if r.CreateSentAt != nil && r.JobID == "" && !r.State.Terminal() {
		return r, false, true, nil
	}
	return r, true, false, nil
}

func (w *Worker) submit(ctx context.Context, a *Account, r *store.Record, token string) (err error) {
	id := r.ID
	if w.settings(ctx).Paused(a.Name, r.Team) {
		return w.pausedWait(ctx, a, r)
	}
	// A batch item goes on only when admitted by the fair share between
	// teams; single submissions go first (Q7).
	var t *turn
	if r.Queue == QueueBatch {
		if t, err = w.takeTurn(ctx, a, r); err != nil {
			return err
		}
		defer func() { w.leaveTurn(ctx, t, err) }()
	}
	stales := 0
	for loop := 0; ; loop++ {
		maxJobs := w.maxJobs(ctx, a)
		ok, inUse, err := w.limiter.AcquireSlotToken(ctx, a.UID, id, token, maxJobs, w.opts.SlotLease)
		if err != nil {
			return err
		}
		w.metrics.SlotsInUse.WithLabelValues(a.Name).Set(float64(inUse))
		if !ok {
			// Registered for a handoff before it becomes a waiter, so that
			// a slot handed from then on is seen (handoff.go).
			h := w.expectHandoff(id)
			handed, err := w.awaitSlot(ctx, a, r, token, maxJobs, h)
			h.done()
			if err != nil {
				return err
			}
			if !handed {
				return &WaitError{Delay: w.opts.SlotRecheck, Reason: distribution.WaitJobSlots}
			}
			r.WaitReason = distribution.WaitJobSlots
		}
		if r.WaitReason == distribution.WaitJobSlots {
			w.metrics.QuotaWait.WithLabelValues(a.Name, "slot").Observe(time.Since(r.UpdatedAt).Seconds())
		}
		// The grant is reserved first and the Create prepared (marker,
		// replicas, pin) while it comes, so that only the SDK's signing is
		// left between the grant and the send: the margin then covers
		// little more than the spread after the send (Q1, Q6; see
		// quota.ReserveGrant).
		reserved := time.Now()
		qps := w.createQPS(ctx, a)
		g, err := w.limiter.ReserveGrant(ctx, a.UID, alibaba.ActionCreate, qps, w.maxCreateWait(r))
		if err != nil {
			w.releaseSlotToken(ctx, a, id, token)
			var tl *quota.TooLongError
			if errors.As(err, &tl) {
				w.setWaiting(ctx, id, distribution.WaitRateLimit)
				// Come back while the grants reserved meanwhile still cover
				// the gap, so the rate never idles for want of a taker (Q6).
				delay := max(tl.Wait-w.maxCreateWait(r)/2, 100*time.Millisecond)
				return &WaitError{Delay: delay, Reason: distribution.WaitRateLimit}
			}
			return err
		}
		if err := g.Sleep(ctx, createLead); err != nil {
			// The grant stays reserved and unused: it costs capacity, not safety.
			w.releaseSlotToken(ctx, a, id, token)
			return fmt.Errorf("wait for create grant: %w", err)
		}
		// Mark the Create as sent before sending it: a crash from here on
		// leaves a marker that makes the next run look before creating (Q5).
		var canceled, pending bool
		r, canceled, pending, err = w.markSent(ctx, id)
		if pending {
			// Another run of this distribution sent a Create meanwhile (a
			// duplicate or stale task run): its slot is its own; look later.
			return &WaitError{Delay: w.opts.LookupInterval, Reason: distribution.WaitBackoff}
		}
		if err != nil || canceled {
			w.releaseSlotToken(ctx, a, id, token)
			return err
		}
		// notSent undoes the marker of a Create that did not go out.
		notSent := func(reason distribution.WaitReason) error {
			err := w.requeue(ctx, id, reason, nil)
			w.releaseSlotToken(ctx, a, id, token)
			return err
		}
		// With replicas, the marker must be on them before the Create goes
		// out: a failover must not lose it (fail closed).
		if err := w.store.WaitReplicas(ctx, w.opts.ReplicaWait); err != nil {
			w.log.Warn("create marker not replicated; create not sent", "distribution_id", id, "err", err)
			if uerr := notSent(distribution.WaitBackoff); uerr != nil {
				return uerr
			}
			return &WaitError{Delay: 2 * time.Second, Reason: distribution.WaitBackoff}
		}
		// From the send on the job may exist: its slot is pinned, no lease
		// lapse frees it (Q2). The pin reads the pause epoch in the same step.
		_, epoch, err := w.limiter.PinSlot(ctx, a.UID, id, token)
		if err != nil {
			if uerr := notSent(distribution.WaitBackoff); uerr != nil {
				return errors.Join(err, uerr)
			}
			return err
		}
		if err := g.Sleep(ctx, 0); err != nil {
			return errors.Join(err, notSent(distribution.WaitBackoff))
		}
		w.metrics.QuotaWait.WithLabelValues(a.Name, "rate").Observe(time.Since(reserved).Seconds())
		// The handler must still own the task (asynq cancels its context
		// when the lease is lost), and the grant must not be overdue: a
		// stall since the grant, or a pause, would bunch this call with
		// others (Q1, Q4).
		if err := ctx.Err(); err != nil {
			return errors.Join(err, notSent(distribution.WaitBackoff))
		}
		// stale gives back a grant that went stale before the Create left:
		// the marker is taken back and a new grant reserved, a few times.
		stale := func() (retry bool, err error) {
			w.metrics.Reconciled.WithLabelValues(a.Name, "stale_grant").Inc()
			// The Create never left: its grant costs no capacity.
			if err := w.limiter.CancelGrant(ctx, a.UID, alibaba.ActionCreate, g); err != nil {
				w.log.Warn("cancel stale grant", "distribution_id", id, "err", err)
			}
			if err := w.requeue(ctx, id, distribution.WaitRateLimit, nil); err != nil {
				w.releaseSlotToken(ctx, a, id, token)
				return false, err
			}
			if stales++; stales < maxStaleGrants {
				return true, nil
			}
			w.releaseSlotToken(ctx, a, id, token)
			return false, &WaitError{Delay: 100 * time.Millisecond, Reason: distribution.WaitRateLimit}
		}
		// onTime reports whether the Create may leave now: no later than its
		// grant's allowance after the grant (the margin leaves room for no
		// more), moving an overdue grant to now while no later grant counts
		// on it, so that a stall costs the rate its length, not the call's
		// place. The first delay seen is what the allowance learns from.
		observed := false
		onTime := func() (bool, error) {
			for moves := 0; ; moves++ {
				over, late := g.Overdue(epoch)
				if !observed {
					observed = true
					w.limiter.ObserveSend(a.UID, alibaba.ActionCreate, late)
				}
				if !over {
					return true, nil
				}
				if epoch != g.Epoch || moves == maxGrantMoves {
					return false, nil
				}
				moved, ok, err := w.limiter.MoveGrant(ctx, a.UID, alibaba.ActionCreate, qps, g)
				if err != nil || !ok {
					return false, err
				}
				w.metrics.Reconciled.WithLabelValues(a.Name, "moved_grant").Inc()
				g = moved
				if err := g.Sleep(ctx, 0); err != nil {
					return false, err
				}
			}
		}
		if ok, err := onTime(); err != nil {
			return errors.Join(err, notSent(distribution.WaitBackoff))
		} else if !ok {
			if retry, err := stale(); !retry {
				return err
			}
			continue
		}
		// The Create is going out: the next admitted item takes the next
		// grant, in fair order. Not before: a grant reserved after this one
		// keeps it movable (no grant counts on it yet).
		w.createGoingOut(t)
		// The last check runs right before the request is written, after the
		// SDK built and signed it.
		sendCtx := alibaba.WithSendCheck(ctx, func() error {
			if err := ctx.Err(); err != nil {
				return err
			}
			if ok, err := onTime(); err != nil || !ok {
				return cmp.Or(err, errStaleGrant)
			}
			return nil
		})
		var jobID, requestID string
		// The latency the margin's spread is taken from runs from here: the
		// delay before the send is reported by onTime (ObserveSend).
		err = w.do(ctx, a, alibaba.ActionCreate, func() error {
			var err error
			jobID, requestID, err = a.Client.CreateContext(sendCtx, alibaba.CreateRequest{
				ProductKey: r.ProductKey, SourceInstanceID: r.SourceInstanceID, TargetInstanceID: r.TargetInstanceID,
				TargetUID: r.TargetUID, TargetAliyunID: r.TargetAliyunID,
			})
			return err
		})
		if e := alibaba.AsAPIError(err); e == nil || e.Code != alibaba.CodeNotSent {
			w.countCreate(a, r.Team)
		}
		if err == nil {
			return w.started(ctx, a, id, jobID, requestID, nil)
		}
		if e := alibaba.AsAPIError(err); e != nil && e.Code == alibaba.CodeNotSent {
			if ctx.Err() != nil {
				return errors.Join(ctx.Err(), notSent(distribution.WaitBackoff))
			}
			if retry, err := stale(); !retry {
				return err
			}
			continue
		}
		apiErr := alibaba.AsAPIError(err)
		switch apiErr.Class {
		case alibaba.Throttled:
			// Not executed, not a failure (Q4): the account pauses, then this
			// run goes back to the rate with its slot.
			if err := w.requeue(ctx, id, distribution.WaitBackoff, nil); err != nil {
				return err
			}
			if loop < maxThrottleLoops {
				continue
			}
			w.releaseSlotToken(ctx, a, id, token)
			return &WaitError{Delay: 2 * time.Second, Reason: distribution.WaitBackoff}
		case alibaba.QuotaExceeded:
			// The remote is fuller than the slots know: jobs made outside
			// distq, or finished jobs it still counts. The reconciler counts
			// them (and deletes distq's own finished jobs); wait for a slot.
			if err := w.requeue(ctx, id, distribution.WaitJobSlots, nil); err != nil {
				return err
			}
			if _, err := w.limiter.ReleaseSlotToken(ctx, a.UID, id, token); err != nil {
				w.log.Warn("release slot", "distribution_id", id, "err", err)
			}
			if err := w.addWaiter(ctx, a, r); err != nil {
				return err
			}
			w.quotaRefused(a)
			return &WaitError{Delay: w.opts.SlotRecheck, Reason: distribution.WaitJobSlots}
		case alibaba.Ambiguous:
			// The job may exist: keep the marker and the pinned slot; the
			// next runs look it up before any new Create.
			w.log.Warn("create outcome unknown", "distribution_id", id, "account", a.Name, "err", err)
			return &WaitError{Delay: time.Second, Reason: distribution.WaitBackoff}
		case alibaba.Permanent, alibaba.NotFound:
			w.releaseSlotToken(ctx, a, id, token)
			return w.finish(ctx, a, r, distribution.StateFailed, apiErrorOf(apiErr), nil)
		default: // Transient: the request provably never left
			w.releaseSlotToken(ctx, a, id, token)
			if r.RunAttempts() >= w.opts.MaxAttempts {
				e := apiErrorOf(apiErr)
				e.Message = fmt.Sprintf("gave up after %d attempts: %s", r.RunAttempts(), e.Message)
				return w.finish(ctx, a, r, distribution.StateFailed, e, nil)
			}
			if err := w.requeue(ctx, id, distribution.WaitBackoff, apiErrorOf(apiErr)); err != nil {
				return err
			}
			return err
		}
	}
}

// addWaiter queues a distribution for a slot: single submissions ahead of
// batch items (Q7).
func (w *Worker) addWaiter(ctx context.Context, a *Account, r *store.Record) error {
	if r.Queue == QueueSingle {
		return w.limiter.AddPriorityWaiter(ctx, a.UID, r.ID)
	}
	return w.limiter.AddWaiter(ctx, a.UID, r.ID)
}

// maxCreateWait is how far ahead a distribution may reserve a Create
// grant. Batch items reserve only a little ahead, so that a single
// submission arriving later finds few grants taken before it (Q7).
func (w *Worker) maxCreateWait(r *store.Record) time.Duration {
	if r.Queue == QueueSingle {
		return w.opts.MaxRateWait
	}
	return w.opts.MaxBatchRateWait
}

// requeue puts a submitting distribution back to queued, clearing the
// Create marker (its outcome is known: not executed). failure, the error
// that ended the attempt, stays in the record's history; nil takes back the
// attempt when the refusal was not the distribution's failure.
func (w *Worker) requeue(ctx context.Context, id string, reason distribution.WaitReason, failure *distribution.Error) error {
	now := w.now()
	_, _, err := w.apply(ctx, id, func(r *store.Record) error { return r.Requeue(now, reason, failure) })
	return err
}

// setWaiting shows why a queued distribution waits (Q3), without a write
// when it already says so.
func (w *Worker) setWaiting(ctx context.Context, id string, reason distribution.WaitReason) {
	_, _, err := w.apply(ctx, id, func(r *store.Record) error { return r.Wait(reason) })
	if err != nil {
		w.log.Warn("set wait reason", "distribution_id", id, "err", err)
	}
}

// started records the remote job of a distribution and schedules its poll.
// The job is claimed in the job index first, so no lookup adopts it for
// another distribution. A second job for a record that has one already is
// an alarm: it must never happen.
func (w *Worker) started(ctx context.Context, a *Account, id, jobID, requestID string, status *int) error {
	owner, err := w.store.ClaimJob(ctx, jobID, id)
	if err != nil {
		// The marker stays: the next run adopts the job through the List.
		return fmt.Errorf("claim job %s of %s: %w", jobID, id, err)
	}
	if owner != id {
		w.alarm(a, "job_of_another", "remote job already owned by another distribution", "distribution_id", id, "job_id", jobID, "owner", owner)
		return nil
	}
	now := w.now()
	cur, _, err := w.apply(ctx, id, func(r *store.Record) error { return r.Started(now, jobID, status) })
	if err != nil {
		// The job exists but is not recorded: the marker stays, so the next
		// run adopts it through the List.
		return fmt.Errorf("record job %s of %s: %w", jobID, id, err)
	}
	if first := cur.JobID; first != "" && first != jobID {
		w.alarm(a, "second_job", "second remote job for one distribution", "distribution_id", id, "job_id", first, "second_job_id", jobID)
		return w.ensurePoll(ctx, id)
	}
	w.log.Info("distribution submitted", "distribution_id", id, "account", a.Name, "job_id", jobID, "remote_request_id", requestID)
	return w.ensurePollIn(ctx, id, w.nextPoll(ctx, a, nil))
}

func (w *Worker) ensurePoll(ctx context.Context, id string) error {
	return w.ensurePollIn(ctx, id, w.opts.PollInterval)
}

// ensurePollIn schedules the poll of id in delay, unless it is scheduled.
func (w *Worker) ensurePollIn(ctx context.Context, id string, delay time.Duration) error {
	return w.schedulePoll(ctx, pollTaskID(id), delay)
}

// awaitSlot makes r a slot waiter and, if no slot frees meanwhile, waits
// in place (h, when not nil) for one to be handed to it. It reports whether
// r holds a slot.
func (w *Worker) awaitSlot(ctx context.Context, a *Account, r *store.Record, token string, maxJobs int, h *handoffWait) (bool, error) {
	if err := w.addWaiter(ctx, a, r); err != nil {
		return false, err
	}
	// A slot freed between the acquire and the addWaiter was handed to
	// nobody waiting: look once more, now as a waiter.
	ok, _, err := w.limiter.AcquireSlotToken(ctx, a.UID, r.ID, token, maxJobs, w.opts.SlotLease)
	if err != nil || ok {
		return ok, err
	}
	w.setWaiting(ctx, r.ID, distribution.WaitJobSlots)
	if !h.wait(ctx, min(inlineSlotWait, w.opts.SlotRecheck)) {
		return false, nil
	}
	// Handed a slot: the acquire finds it leased to r, and takes it under
	// this run's token (a stale run's release then leaves it alone).
	ok, _, err = w.limiter.AcquireSlotToken(ctx, a.UID, r.ID, token, maxJobs, w.opts.SlotLease)
	return ok, err
}

// clockSkew is the tolerance between distq's clocks and the remote's
// GmtCreate when matching a job to a Create's time window.
const clockSkew = time.Minute

// maxLookupPages bounds the List pages of one lookup.
const maxLookupPages = 20

// lookup searches the remote job list for a job this distribution's earlier
// Create made, and adopts it. It reports whether it adopted one.
//
// A job matches when its product, source instance, target instance and
// target UID are the record's and it was created in the Create's window:
// from CreateSentAt - clockSkew to CreateSentAt + CallTimeout +
// RemoteVisibility + clockSkew. Jobs another distribution owns (the job
// index) are skipped, and a job is adopted only once it is claimed for this
// record, so two records never share a job. Of several candidates, the
// one made closest to the marker is adopted, and the alarm raised
// (docs/QUOTA.md says when two can exist).
func (w *Worker) lookup(ctx context.Context, a *Account, r *store.Record, token string) (bool, error) {
	since := r.CreateSentAt.Add(-clockSkew)
	until := r.CreateSentAt.Add(w.opts.CallTimeout + w.opts.RemoteVisibility + clockSkew)
	var found []alibaba.Job
	if _, err := w.listJobs(ctx, a, r, func(jobs []alibaba.Job) (bool, error) {
		for _, j := range jobs {
			if !jobMatches(j, r) || j.CreatedAt.Before(since) || j.CreatedAt.After(until) {
				continue
			}
			owner, err := w.store.JobOwner(ctx, j.JobID)
			if err != nil {
				return true, err
			}
			if owner != "" && owner != r.ID {
				continue // another distribution's job
			}
			found = append(found, j)
		}
		return false, nil
	}); err != nil {
		return false, err
	}
	// The closest to the marker first: the Create's job was made right after
	// it; a job further away in the skew window is more likely another's.
	sent := *r.CreateSentAt
	slices.SortFunc(found, func(x, y alibaba.Job) int {
		return cmp.Compare(absDur(x.CreatedAt.Sub(sent)), absDur(y.CreatedAt.Sub(sent)))
	})
	for i, j := range found {
		owner, err := w.store.ClaimJob(ctx, j.JobID, r.ID)
		if err != nil {
			return false, err
		}
		if owner != r.ID {
			continue // claimed by another distribution meanwhile
		}
		if len(found) > i+1 {
			w.alarm(a, "second_job", "several unowned remote jobs match one distribution; adopting the earliest",
				"distribution_id", r.ID, "job_id", j.JobID, "candidates", len(found)-i)
		}
		if _, _, err := w.limiter.PinSlot(ctx, a.UID, r.ID, token); err != nil {
			return false, err
		}
		st := j.Status
		w.metrics.Reconciled.WithLabelValues(a.Name, "adopted_job").Inc()
		w.log.Info("adopted job of an earlier create", "distribution_id", r.ID, "job_id", j.JobID)
		return true, w.started(ctx, a, r.ID, j.JobID, "", &st)
	}
	return false, nil
}

// jobMatches reports whether remote job j is what r's Create would make.
func jobMatches(j alibaba.Job, r *store.Record) bool {
	if j.ProductKey != r.ProductKey || j.SourceInstanceID != r.SourceInstanceID {
		return false
	}
	if !slices.Contains(j.TargetInstanceIDs, r.TargetInstanceID) {
		return false
	}
	return j.TargetUID == "" || r.TargetUID == "" || j.TargetUID == r.TargetUID
}

func absDur(d time.Duration) time.Duration {
	if d < 0 {
		return -d
	}
	return d
}
