package queue

import (
	"context"
	"errors"
	"math"
	"time"

	"github.com/hibiken/asynq"

	"github.com/distq/distq/internal/devices"
	"github.com/distq/distq/internal/distribution"
	"github.com/distq/distq/internal/quota"
	"github.com/distq/distq/internal/store"
)

// Settings are the run-time settings the worker obeys: the configuration's,
// as operators changed them (internal/control). Implementations are
// snapshots, safe for concurrent use.
type Settings interface {
	// CreateQPS and MaxJobs are the account's Create rate and job limit.
	CreateQPS(account string) int
	MaxJobs(account string) int
	// Weight is the team's weight in its accounts' fair share (>= 1).
	Weight(team string) int
	// Paused reports whether nothing of team may be created on the account
	// now; team "" asks about the whole account.
	Paused(account, team string) bool
	// Revision changes whenever the settings do (operators' overrides).
	Revision() int64
}

// Controls give the current Settings. Get must be cheap (cached): the
// worker asks before every Create.
type Controls interface {
	Get(ctx context.Context) Settings
}

// configSettings are the configuration's settings, without operators.
type configSettings map[string]*Account

func (c configSettings) CreateQPS(account string) int {
	if a := c[account]; a != nil {
		return a.CreateQPS
	}
	return 1
}

func (c configSettings) MaxJobs(account string) int {
	if a := c[account]; a != nil {
		return a.MaxJobs
	}
	return 1
}

func (configSettings) Weight(string) int { return 1 }

func (configSettings) Paused(string, string) bool { return false }

func (configSettings) Revision() int64 { return 0 }

func (w *Worker) settings(ctx context.Context) Settings {
	if w.controls == nil {
		return configSettings(w.accounts)
	}
	return w.controls.Get(ctx)
}

// createQPS and maxJobs are the account's limits now (operators may change
// them at run time).
func (w *Worker) createQPS(ctx context.Context, a *Account) int {
	return max(w.settings(ctx).CreateQPS(a.Name), 1)
}

func (w *Worker) maxJobs(ctx context.Context, a *Account) int {
	return max(w.settings(ctx).MaxJobs(a.Name), 1)
}

// fairItem is r's entry in its account's fair queue: its team, in the
// order of creation (a batch's items share it and sort by id, which
// follows item order).
func fairItem(r *store.Record) quota.FairItem {
	return quota.FairItem{Team: r.Team, Order: r.CreatedAt, ID: r.ID}
}

// fairK is how many batch items of the account may be admitted at once:
// about FairLookahead of Creates, so that a newcomer team waits at most
// that much behind another team's backlog.
func (w *Worker) fairK(ctx context.Context, a *Account) int {
	return max(1, int(math.Ceil(float64(w.createQPS(ctx, a))*w.opts.FairLookahead.Seconds())))
}

// turn is a batch item's admission in the fair queue, held by one run.
type turn struct {
	a    *Account
	item quota.FairItem
	sent bool
}

// takeTurn queues a batch item in its account's fair queue, or finds it
// admitted. Not admitted, the run hands its task back for the fallback
// delay: the admission that comes wakes it (Q3: a wait, not a failure).
//
// An item that waits for a job slot was admitted already: its Create was
// refused for the job count, or it waits with its admission. It goes on
// (as a slot waiter it is served in its order), without a new turn.
func (w *Worker) takeTurn(ctx context.Context, a *Account, r *store.Record) (*turn, error) {
	return w.turnFor(ctx, a, fairItem(r), r.WaitReason == distribution.WaitJobSlots,
		func() { w.setWaiting(ctx, r.ID, distribution.WaitFairShare) })
}

// turnFor is takeTurn for any item of the fair queue: a batch item, or a
// job of a device distribution (its slot is of the same counter, so its
// team's turn counts too). forSlot says the item waits for a job slot;
// waiting shows that it waits for its turn.
func (w *Worker) turnFor(ctx context.Context, a *Account, it quota.FairItem, forSlot bool, waiting func()) (*turn, error) {
	if forSlot {
		admitted, err := w.limiter.FairAdmitted(ctx, a.UID, it)
		if err != nil {
			return nil, err
		}
		if !admitted {
			return nil, nil
		}
	}
	admitted, err := w.limiter.FairEnqueue(ctx, a.UID, it, w.opts.FairAdmission)
	if err != nil {
		return nil, err
	}
	if !admitted {
		admitted = w.admit(ctx, a, it.ID)
	}
	if !admitted {
		waiting()
		return nil, &WaitError{Delay: w.opts.FairFallback, Reason: distribution.WaitFairShare}
	}
	return &turn{a: a, item: it}, nil
}

// createGoingOut ends the admission of a batch item whose Create is about
// to go, and admits the next item at once, so that it takes the next rate
// grant (the fair order decides who sends next).
func (w *Worker) createGoingOut(t *turn) {
	if t == nil || t.sent {
		return
	}
	t.sent = true
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if _, err := w.limiter.FairDone(ctx, t.a.UID, t.item); err != nil {
			w.log.Warn("end fair admission", "distribution_id", t.item.ID, "err", err)
			return
		}
		w.admit(ctx, t.a, "")
	}()
}

// leaveTurn is the end of a run that held an admission. A run that waits
// for a job slot keeps it (it is next for the slot, in fair order); any
// other run that did not send gives it up, and its task's next run queues
// it again in its place.
func (w *Worker) leaveTurn(ctx context.Context, t *turn, err error) {
	if t == nil || t.sent {
		return
	}
	var we *WaitError
	if errors.As(err, &we) && we.Reason == distribution.WaitJobSlots {
		return
	}
	ctx = context.WithoutCancel(ctx)
	if _, err := w.limiter.FairDone(ctx, t.a.UID, t.item); err != nil {
		w.log.Warn("end fair admission", "distribution_id", t.item.ID, "err", err)
		return
	}
	w.admit(ctx, t.a, "")
}

// pausedWait holds back a distribution of a paused account or team: a batch
// item's admission goes back to the queue in its place (another team's item
// takes it), and the item waits there for the resume.
func (w *Worker) pausedWait(ctx context.Context, a *Account, r *store.Record) error {
	w.setWaiting(ctx, r.ID, distribution.WaitPaused)
	// No Create is out (the submit path has no marker): a slot it waits
	// for or was handed goes to the next waiter.
	if err := w.limiter.RemoveWaiter(ctx, a.UID, r.ID); err != nil {
		return err
	}
	w.releaseSlotToken(ctx, a, r.ID, "")
	if r.Queue != QueueBatch {
		return &WaitError{Delay: w.opts.PausedRecheck, Reason: distribution.WaitPaused}
	}
	it := fairItem(r)
	was, err := w.limiter.FairReturn(ctx, a.UID, it)
	if err != nil {
		return err
	}
	if !was {
		if _, err := w.limiter.FairEnqueue(ctx, a.UID, it, w.opts.FairAdmission); err != nil {
			return err
		}
	} else {
		w.admit(ctx, a, "")
	}
	return &WaitError{Delay: w.opts.FairFallback, Reason: distribution.WaitPaused}
}

// maxAdmitRounds bounds the admission rounds of one admit call: a round
// repeats only when admitted items turned out gone.
const maxAdmitRounds = 4

// fairRestTicks is how many fair ticks apart an account with every
// admission taken is looked at (RunFairTick).
const fairRestTicks = 5

// admit admits the account's next batch items in fair order (weights and
// pauses from the settings) and wakes their tasks. It reports whether the
// item self, whose run is asking, was admitted (its task is not woken: it
// runs). Errors are logged: the fair tick admits again.
func (w *Worker) admit(ctx context.Context, a *Account, self string) bool {
	return w.admitFrom(ctx, a, self, nil)
}

// admitFrom is admit for a caller that has just read the account's active
// teams (the fair tick): the first round does not read them again.
func (w *Worker) admitFrom(ctx context.Context, a *Account, self string, teams []string) bool {
	got, _ := w.admitN(ctx, a, self, teams)
	return got
}

// admissionsWaitForSlots reports whether the account has at least as many
// job slot waiters as admissions (fairK): then every admission is, most
// likely, held by an item waiting for a slot.
func (w *Worker) admissionsWaitForSlots(ctx context.Context, a *Account) bool {
	n, err := w.limiter.Waiters(ctx, a.UID)
	return err == nil && n >= w.fairK(ctx, a)
}

// admitCount is admitFrom for the fair tick: how many items it admitted.
func (w *Worker) admitCount(ctx context.Context, a *Account, self string, teams []string) int {
	_, n := w.admitN(ctx, a, self, teams)
	return n
}

// admitN is admitFrom that also counts the items admitted.
func (w *Worker) admitN(ctx context.Context, a *Account, self string, teams []string) (got bool, admitted int) {
	set := w.settings(ctx)
	if set.Paused(a.Name, "") {
		return false, 0
	}
	for round := range maxAdmitRounds {
		if round > 0 || teams == nil {
			var err error
			if teams, err = w.limiter.FairTeams(ctx, a.UID); err != nil {
				w.log.Warn("fair admit", "account", a.Name, "err", err)
				return got, admitted
			}
		}
		if len(teams) == 0 {
			return got, admitted
		}
		weights := make(map[string]int, len(teams))
		var paused []string
		for _, t := range teams {
			weights[t] = set.Weight(t)
			if set.Paused(a.Name, t) {
				paused = append(paused, t)
			}
		}
		items, err := w.limiter.FairAdmit(ctx, a.UID, w.fairK(ctx, a), w.opts.FairAdmission, weights, paused)
		if err != nil {
			w.log.Warn("fair admit", "account", a.Name, "err", err)
			return got, admitted
		}
		admitted += len(items)
		again := false
		for _, it := range items {
			if it.ID == self {
				got = true
				continue
			}
			if !w.wakeAdmitted(ctx, a, it) {
				again = true
			}
		}
		if !again {
			return got, admitted
		}
	}
	return got, admitted
}

// wakeAdmitted runs an admitted item's task now. An item that is gone or
// final leaves the queue (false: its admission is free again); an open one
// whose task is missing gets its task back.
func (w *Worker) wakeAdmitted(ctx context.Context, a *Account, it quota.FairItem) bool {
	err := w.runTask(QueueBatch, it.ID)
	if err == nil {
		return true
	}
	if !errors.Is(err, asynq.ErrTaskNotFound) {
		// Running (its handler is still returning): wake it once it has.
		w.wakeIn(QueueBatch, it.ID, 50*time.Millisecond)
		return true
	}
	if devices.IsHolder(it.ID) {
		return w.wakeAdmittedDevice(ctx, a, it)
	}
	r, gerr := w.store.Get(ctx, it.ID)
	if errors.Is(gerr, store.ErrNotFound) || gerr == nil && !needsTurn(r) {
		if _, err := w.limiter.FairDone(ctx, a.UID, it); err != nil {
			w.log.Warn("drop finished item from the fair queue", "distribution_id", it.ID, "err", err)
			return true
		}
		return false
	}
	if gerr != nil {
		return true // the admission lapses, or its run comes first
	}
	task, opts := submitTask(r)
	if _, err := w.enqueue(ctx, task, opts...); err != nil && !errors.Is(err, asynq.ErrTaskIDConflict) {
		w.log.Warn("enqueue admitted item", "distribution_id", it.ID, "err", err)
	} else if err != nil {
		w.wakeIn(QueueBatch, it.ID, 50*time.Millisecond)
	}
	return true
}

// needsTurn reports whether r is a batch item still before its Create: a
// final one, or one whose Create went out (marker or job), has no use for
// an admission.
func needsTurn(r *store.Record) bool {
	return r.Queue == QueueBatch && !r.State.Terminal() && r.JobID == "" && r.CreateSentAt == nil
}

// dropTurn takes r out of its account's fair queue, admitted or queued,
// when its admission went to a run that has no use for it; the admission
// goes to the next item.
func (w *Worker) dropTurn(ctx context.Context, a *Account, r *store.Record) {
	if r.Queue != QueueBatch {
		return
	}
	was, err := w.limiter.FairDone(ctx, a.UID, fairItem(r))
	if err != nil {
		w.log.Warn("drop item from the fair queue", "distribution_id", r.ID, "err", err)
		return
	}
	if was {
		w.admit(ctx, a, "")
	}
}

// maxTeamLabels bounds the teams a worker names in its metrics. Teams
// come from records, which the api writes only for the teams of its
// configuration; a worker started without that list learns them as they
// come (the rest count under metrics.OtherTeam).
const maxTeamLabels = 256

// countCreate counts a Create sent for team on a (distq_team_creates_total).
func (w *Worker) countCreate(a *Account, team string) {
	w.knowTeams(a, []string{team})
	w.metrics.AddTeamCreate(a.Name, team)
}

func (w *Worker) knowTeams(a *Account, teams []string) {
	w.teamsMu.Lock()
	defer w.teamsMu.Unlock()
	if w.teams == nil {
		w.teams = map[[2]string]bool{}
	}
	for _, t := range teams {
		k := [2]string{a.Name, t}
		if !w.teams[k] && len(w.teams) < maxTeamLabels {
			w.teams[k] = true
			w.metrics.InitTeams(a.Name, []string{t})
		}
	}
}

// exportBacklogs sets distq_team_backlog of the account from its fair
// queue: batch items queued or admitted, per team.
func (w *Worker) exportBacklogs(ctx context.Context, a *Account) {
	st, err := w.limiter.FairState(ctx, a.UID)
	if err != nil {
		return
	}
	backlog := make(map[string]int64, len(st))
	teams := make([]string, 0, len(st))
	for t, s := range st {
		backlog[t] = int64(s.Queued + s.Admitted)
		teams = append(teams, t)
	}
	w.knowTeams(a, teams)
	w.metrics.SetTeamBacklog(a.Name, backlog)
	set := w.settings(ctx)
	w.metrics.SetTeamsPaused(a.Name, func(team string) bool { return set.Paused(a.Name, team) })
}

// wakeAdmittedDevice is wakeAdmitted for a device job whose task is
// missing: a job past its Create, final or gone leaves the queue (false);
// a job still before its Create gets its task back.
func (w *Worker) wakeAdmittedDevice(ctx context.Context, a *Account, it quota.FairItem) bool {
	id, n, _ := devices.ParseHolder(it.ID)
	r, err := w.store.GetDevices(ctx, id)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return true // the admission lapses, or its run comes first
	}
	if err != nil || n >= len(r.Jobs) || !deviceJobNeedsTurn(r.Jobs[n]) {
		if _, err := w.limiter.FairDone(ctx, a.UID, it); err != nil {
			w.log.Warn("drop device job from the fair queue", "holder", it.ID, "err", err)
			return true
		}
		return false
	}
	task, opts := deviceSubmitTask(id, n)
	if _, err := w.enqueue(ctx, task, opts...); err != nil && !errors.Is(err, asynq.ErrTaskIDConflict) {
		w.log.Warn("enqueue admitted device job", "holder", it.ID, "err", err)
	} else if err != nil {
		w.wakeIn(QueueBatch, it.ID, 50*time.Millisecond)
	}
	return true
}

// deviceJobNeedsTurn reports whether a device job is still before its
// Create (no marker, no job, not final).
func deviceJobNeedsTurn(j devices.Job) bool {
	return !j.State.Final() && j.JobID == "" && j.CreateSentAt == nil
}

// deviceItem is job n of device distribution r in its account's fair queue.
func deviceItem(r *devices.Record, n int) quota.FairItem {
	return quota.FairItem{Team: r.Team, Order: r.CreatedAt, ID: devices.Holder(r.ID, n)}
}

// dropDeviceTurn is dropTurn for a device job that has no use for a turn.
func (w *Worker) dropDeviceTurn(ctx context.Context, a *Account, r *devices.Record, n int) {
	was, err := w.limiter.FairDone(ctx, a.UID, deviceItem(r, n))
	if err != nil {
		w.log.Warn("drop device job from the fair queue", "device_distribution_id", r.ID, "job", n, "err", err)
		return
	}
	if was {
		w.admit(ctx, a, "")
	}
}

// backlogExportTicks is how many fair ticks apart the team backlog gauges
// are read while an account has a backlog.
const backlogExportTicks = 5

// RunFairTick admits batch items of every account every interval until ctx
// ends: admissions normally follow each Create, the tick covers a resume
// after a pause, lapsed admissions and lost wakes. It also exports the
// team backlogs.
func (w *Worker) RunFairTick(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	st := newFairTickState()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			w.fairTick(ctx, st)
		}
	}
}

// fairTickState is what the fair tick keeps from one tick to the next.
type fairTickState struct {
	idle     map[string]bool // account: no team with a backlog at its last look
	rest     map[string]int  // account: ticks its look waits yet
	exported map[string]int  // account: the tick of its last backlog export
	revision int64           // the settings' revision at the last tick
	ticks    int
}

func newFairTickState() *fairTickState {
	return &fairTickState{idle: map[string]bool{}, rest: map[string]int{}, exported: map[string]int{}, revision: -1}
}

// fairTick is one tick of RunFairTick.
func (w *Worker) fairTick(ctx context.Context, st *fairTickState) {
	st.ticks++
	// Operators changed something (a resume, a weight): look at every
	// account now.
	rev := w.settings(ctx).Revision()
	changed := rev != st.revision
	st.revision = rev
	if !changed && st.ticks%fairRestTicks != 0 && w.quiet != nil && w.quiet() {
		return // no task runs anywhere: no Create goes out to admit after
	}
	for _, a := range w.accounts {
		if !changed && st.rest[a.Name] > 0 {
			st.rest[a.Name]--
			continue
		}
		// An idle account costs one read a look.
		teams, err := w.limiter.FairTeams(ctx, a.UID)
		if err != nil || len(teams) == 0 && st.idle[a.Name] {
			continue
		}
		wasIdle := st.idle[a.Name]
		st.idle[a.Name] = len(teams) == 0
		if n := w.admitCount(ctx, a, "", teams); n == 0 && len(teams) > 0 && w.admissionsWaitForSlots(ctx, a) {
			// Every admission is taken by an item that waits for a job
			// slot: they free only as slots do, through the slot handoff
			// and the Create that follows (createGoingOut admits the next),
			// so the tick is only the fallback for lapsed admissions and
			// lost wakes, and looks every fairRestTicks. A backlog waiting
			// for slots then costs Redis a fifth of a look a second, not a
			// look. Admissions held otherwise (runs in flight, or of a
			// worker that died, whose admit after the Create never came)
			// are looked at every tick: resting there made crash
			// recovery slower (the chaos scenario's drain doubled).
			st.rest[a.Name] = fairRestTicks - 1
		}
		// The backlog gauges need no more than one read per
		// backlogExportTicks (a scrape is 15 s apart): the read is most of
		// what a tick costs Redis while work waits.
		if wasIdle || st.idle[a.Name] || st.ticks-st.exported[a.Name] >= backlogExportTicks {
			w.exportBacklogs(ctx, a)
			st.exported[a.Name] = st.ticks
		}
	}
}
