package e2e

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/distq/distq/client"
	"github.com/distq/distq/internal/alisim"
	"github.com/distq/distq/internal/app"
	"github.com/distq/distq/internal/devstack"
	"github.com/distq/distq/internal/queue"
)

// jobsOf returns the simulator's jobs (deleted ones included) per product.
func jobsOf(sim *alisim.Server) map[string][]alisim.Job {
	out := map[string][]alisim.Job{}
	for _, j := range sim.Jobs() {
		out[j.ProductKey] = append(out[j.ProductKey], j)
	}
	return out
}

// submitAll submits one distribution per product and waits until each is
// final; it fails the test unless all succeeded with exactly one remote job.
func submitAll(t *testing.T, st *devstack.Stack, pks []string, limit time.Duration) {
	t.Helper()
	c := newAPI(t, st.APIURL, st.Token)
	ids := make([]string, len(pks))
	for i, pk := range pks {
		ids[i] = c.submit(req(pk)).ID
	}
	deadline := time.Now().Add(limit)
	for i, id := range ids {
		got := c.waitFinal(id, time.Until(deadline))
		if got.State != client.StateSucceeded {
			t.Fatalf("%s (%s): %+v (error %+v), want succeeded", id, pks[i], got, got.Error)
		}
		jobs := jobsOf(st.Sim)[pks[i]]
		if len(jobs) != 1 || jobs[0].JobID != got.JobID {
			t.Fatalf("%s: remote jobs %+v; want exactly one, %s", pks[i], jobs, got.JobID)
		}
	}
}

// Q5: a Create that makes its job and is then answered 503
// ServiceUnavailable or 500 InternalError (a lost answer) is ambiguous, not
// transient: the job is looked up and adopted, never created twice.
func TestErrorAfterCreateMakesOneJob(t *testing.T) {
	t.Parallel()
	sim := fastSim()
	sim.QPS = map[string]float64{alisim.ActionCreateProductDistributeJob: 10}
	sim.Faults = alisim.Faults{ErrorAfterCreateRatio: 1}
	st := startStack(t, devstack.Options{Sim: sim, Env: map[string]string{"DISTQ_CREATE_QPS": "10"},
		Worker: app.WorkerOptions{Queue: queue.Options{LookupInterval: 100 * time.Millisecond}}})
	var pks []string
	for i := range 6 {
		pks = append(pks, fmt.Sprintf("a1lost%d", i))
	}
	submitAll(t, st, pks, 60*time.Second)
}

// Q5: a job that shows in the List only some time after the ambiguous
// Create is still found: distq keeps looking until CreateSentAt + call
// timeout + the remote visibility bound, and only then sends a new Create.
func TestLateListedJobIsAdopted(t *testing.T) {
	t.Parallel()
	sim := fastSim()
	sim.JobDuration = 3 * time.Second
	sim.ListLag = 1500 * time.Millisecond
	sim.Faults = alisim.Faults{ErrorAfterCreateRatio: 1}
	st := startStack(t, devstack.Options{Sim: sim, Worker: app.WorkerOptions{Queue: queue.Options{
		LookupInterval: 200 * time.Millisecond, RemoteVisibility: 5 * time.Second, CallTimeout: time.Second}}})
	submitAll(t, st, []string{"a1late1", "a1late2"}, 60*time.Second)
}

// Q2: the slot of a job that exists remotely is pinned. Here the lease is
// far shorter than the time between two polls (as when asynq takes 60-120 s
// to recover a crashed worker's poll task): a lease would lapse and let a
// second job in; a pin does not.
func TestSlotOfRunningJobOutlivesLease(t *testing.T) {
	t.Parallel()
	sim := alisim.Config{JobDuration: 1500 * time.Millisecond, MaxJobs: 10,
		QPS: map[string]float64{alisim.ActionCreateProductDistributeJob: 10}}
	st := startStack(t, devstack.Options{
		Sim: sim,
		Env: map[string]string{"DISTQ_MAX_JOBS": "1", "DISTQ_CREATE_QPS": "10"},
		Worker: app.WorkerOptions{Queue: queue.Options{
			SlotLease: 200 * time.Millisecond, PollInterval: time.Second, SlotRecheck: 100 * time.Millisecond}},
	})
	submitAll(t, st, []string{"a1pin1", "a1pin2", "a1pin3"}, 60*time.Second)
	if peak := peakJobs(st.Sim.Jobs()); peak > 1 {
		t.Fatalf("peak unfinished remote jobs %d, want <= 1 (max_jobs 1)", peak)
	}
}

// Poll end: the final state is recorded before the remote job is deleted,
// so a crash between the two never leaves a succeeded job's distribution to
// a Query that answers NotFound.
func TestFinalStateRecordedBeforeDelete(t *testing.T) {
	t.Parallel()
	st := startStack(t, devstack.Options{Sim: fastSim(), Env: map[string]string{"DISTQ_DELETE_FINISHED": "true"}})
	c := newAPI(t, st.APIURL, st.Token)
	d := c.submit(req("a1delorder"))
	got := c.waitFinal(d.ID, 30*time.Second)
	if got.State != client.StateSucceeded || got.FinishedAt == nil {
		t.Fatalf("final %+v", got)
	}
	// Wait for the Delete, then compare: both clocks are this process's.
	deadline := time.Now().Add(10 * time.Second)
	for {
		var del *alisim.Call
		for _, call := range st.Sim.Audit() {
			if call.Action == alisim.ActionDeleteDeviceDistributeJob && call.JobID == got.JobID {
				del = &call
			}
		}
		if del != nil {
			if del.Arrived.Before(*got.FinishedAt) {
				t.Fatalf("Delete arrived at %v, before the final state was recorded at %v", del.Arrived, *got.FinishedAt)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no Delete of the finished job")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// The remote's 10-job rule is uncertain: it may count finished jobs until
// they are deleted. With delete_finished auto (the default: off until the
// remote refuses for the job count), 50 distributions drain in both modes.
func TestDrainFiftyInBothQuotaModes(t *testing.T) {
	t.Parallel()
	for _, mode := range []string{alisim.QuotaUnfinished, alisim.QuotaUndeleted} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			sim := alisim.Config{JobDuration: 300 * time.Millisecond, QuotaMode: mode,
				QPS: map[string]float64{alisim.ActionCreateProductDistributeJob: 20, alisim.ActionDeleteDeviceDistributeJob: 20}}
			st := startStack(t, devstack.Options{
				Sim: sim,
				Env: map[string]string{"DISTQ_CREATE_QPS": "20", "DISTQ_DELETE_QPS": "20"},
				Worker: app.WorkerOptions{ReconcileInterval: 300 * time.Millisecond,
					Queue: queue.Options{PollInterval: 100 * time.Millisecond, SlotRecheck: 300 * time.Millisecond}},
			})
			items := make([]map[string]string, 50)
			for i := range items {
				items[i] = map[string]string{"product_key": fmt.Sprintf("a1drain%s%02d", mode[:2], i)}
			}
			c := newAPI(t, st.APIURL, st.Token)
			var created struct {
				Batch struct{ ID string } `json:"batch"`
			}
			if code := c.do("POST", "/v1/batches", map[string]any{
				"source_instance_id": "iotx-oxssharez200", "target_instance_id": "iot-cn-6ja0000e2e", "items": items,
			}, &created); code != http.StatusAccepted {
				t.Fatalf("batch: status %d", code)
			}
			deadline := time.Now().Add(90 * time.Second)
			for {
				var b struct {
					Counts map[string]int `json:"counts"`
				}
				c.do("GET", "/v1/batches/"+created.Batch.ID, nil, &b)
				if b.Counts["succeeded"] == 50 {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("batch not drained: counts %v", b.Counts)
				}
				time.Sleep(100 * time.Millisecond)
			}
			for pk, jobs := range jobsOf(st.Sim) {
				if len(jobs) != 1 {
					t.Fatalf("%s: %d remote jobs, want 1", pk, len(jobs))
				}
			}
		})
	}
}

// The lookup after an ambiguous Create never adopts another's job: not the
// job of an earlier distribution of the same product and target (the job
// index says it is owned), nor a job made outside distq for the same
// product and target before or after the Create.
func TestLookupAdoptsOnlyItsOwnJob(t *testing.T) {
	t.Parallel()
	sim := fastSim()
	sim.QPS = map[string]float64{alisim.ActionCreateProductDistributeJob: 10}
	st := startStack(t, devstack.Options{Sim: sim, Env: map[string]string{"DISTQ_CREATE_QPS": "10"},
		Worker: app.WorkerOptions{Queue: queue.Options{LookupInterval: 100 * time.Millisecond}}})
	c := newAPI(t, st.APIURL, st.Token)
	const pk, src, dst = "a1own", "iotx-oxssharez200", "iot-cn-6ja0000e2e"
	first := c.waitFinal(c.submit(req(pk)).ID, 30*time.Second)
	if first.State != client.StateSucceeded {
		t.Fatalf("first: %+v", first)
	}
	before := st.Sim.AddExternalJobTo(devstack.DevUID, pk, src, dst)
	// Jobs are told apart by their creation time only (the API has no
	// idempotency token): space the external ones from the Create's.
	time.Sleep(300 * time.Millisecond)
	if err := st.Sim.SetFaults(alisim.Faults{ErrorAfterCreateRatio: 1}); err != nil {
		t.Fatal(err)
	}
	second := c.submit(req(pk))
	// As soon as the second Create made its job, someone else makes one too.
	var made string
	deadline := time.Now().Add(20 * time.Second)
	for made == "" {
		for _, call := range st.Sim.Audit() {
			if call.Action == alisim.ActionCreateProductDistributeJob && call.ProductKey == pk && call.JobID != first.JobID && call.JobID != "" {
				made = call.JobID
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("the second Create never came")
		}
		time.Sleep(5 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond) // before the first lookup, 1 s after the answer
	after := st.Sim.AddExternalJobTo(devstack.DevUID, pk, src, dst)
	got := c.waitFinal(second.ID, 30*time.Second)
	if got.State != client.StateSucceeded || got.JobID != made {
		t.Fatalf("second: %+v adopted %s; want its own job %s (not %s of the first, nor external %s, %s)",
			got, got.JobID, made, first.JobID, before, after)
	}
}

// A Query NotFound is confirmed before it fails a distribution: a job that
// Query does not know yet (a lagging read) but the List shows, or that is
// younger than the minimum age, is polled again.
func TestQueryNotFoundIsConfirmed(t *testing.T) {
	t.Parallel()
	sim := alisim.Config{JobDuration: 2 * time.Second, QueryLag: 1500 * time.Millisecond}
	st := startStack(t, devstack.Options{Sim: sim,
		Worker: app.WorkerOptions{Queue: queue.Options{PollInterval: 100 * time.Millisecond}}})
	submitAll(t, st, []string{"a1qlag"}, 30*time.Second)
}

// The reconciler lists only unfinished remote jobs (Status 0 and 1): a long
// history of finished jobs costs it no List pages.
func TestReconcilerListsOnlyUnfinishedJobs(t *testing.T) {
	t.Parallel()
	sim := alisim.Config{JobDuration: time.Millisecond}
	st := startStack(t, devstack.Options{Sim: sim, Worker: app.WorkerOptions{ReconcileInterval: 200 * time.Millisecond}})
	for i := range 1000 { // five pages of 200, all finished at once
		st.Sim.AddExternalJob(devstack.DevUID, fmt.Sprintf("a1old%04d", i))
	}
	count := func() int {
		n := 0
		for _, c := range st.Sim.Audit() {
			if c.Action == alisim.ActionListDeviceDistributeJob {
				n++
			}
		}
		return n
	}
	start, before := time.Now(), count()
	time.Sleep(2200 * time.Millisecond) // a few passes (one per second at most: the lock)
	lists, passes := count()-before, int(time.Since(start)/time.Second)+2
	if lists > 2*passes {
		t.Fatalf("%d List calls in at most %d reconcile passes, want at most 2 per pass (one per unfinished status)", lists, passes)
	}
	if lists == 0 {
		t.Fatal("no List call: the reconciler did not run")
	}
}
