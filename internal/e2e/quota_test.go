package e2e

import (
	"sort"
	"testing"
	"time"

	"github.com/distq/distq/client"
	"github.com/distq/distq/internal/alibaba"
	"github.com/distq/distq/internal/alisim"
	"github.com/distq/distq/internal/app"
	"github.com/distq/distq/internal/config"
	"github.com/distq/distq/internal/devstack"
	"github.com/distq/distq/internal/queue"
)

// shortTimeouts makes the workers give up on a call after 500ms.
func shortTimeouts(_ config.Account, c *alibaba.Config) { c.Timeout = 500 * time.Millisecond }

// Q5: a Create whose answer never comes is looked up before any new Create,
// and the job it made is adopted: exactly one job in the end.
func TestTimeoutAfterCreateMakesOneJob(t *testing.T) {
	t.Parallel()
	sim := fastSim()
	sim.Faults = alisim.Faults{TimeoutAfterCreateRatio: 1, HoldTimeout: 2 * time.Second}
	st := startStack(t, devstack.Options{Sim: sim, Worker: app.WorkerOptions{Client: shortTimeouts}})
	c := newAPI(t, st.APIURL, st.Token)
	d := c.submit(req("a1timeout"))
	got := c.waitFinal(d.ID, 30*time.Second)
	if got.State != client.StateSucceeded {
		t.Fatalf("final %+v (error %+v), want succeeded", got, got.Error)
	}
	var jobs []alisim.Job
	for _, j := range st.Sim.Jobs() {
		if j.ProductKey == "a1timeout" {
			jobs = append(jobs, j)
		}
	}
	if len(jobs) != 1 || jobs[0].JobID != got.JobID {
		t.Fatalf("remote jobs for the product: %+v; want exactly one, %s", jobs, got.JobID)
	}
}

// Q2: jobs made outside distq count against the account's job quota, so
// distq never runs the remote into its limit.
func TestExternalJobsReduceCapacity(t *testing.T) {
	t.Parallel()
	sim := alisim.Config{JobDuration: 600 * time.Millisecond, MaxJobs: 3}
	st := startStack(t, devstack.Options{
		Sim:    sim,
		Env:    map[string]string{"DISTQ_MAX_JOBS": "3", "DISTQ_CREATE_QPS": "20"},
		Worker: app.WorkerOptions{ReconcileInterval: 200 * time.Millisecond, Queue: queue.Options{PollInterval: 100 * time.Millisecond}},
	})
	// Two jobs made elsewhere: the reconciler counts them against the slots.
	st.Sim.AddExternalJob(devstack.DevUID, "a1outside1")
	st.Sim.AddExternalJob(devstack.DevUID, "a1outside2")
	c := newAPI(t, st.APIURL, st.Token)
	var ids []string
	for _, pk := range []string{"a1ext1", "a1ext2", "a1ext3", "a1ext4"} {
		ids = append(ids, c.submit(req(pk)).ID)
	}
	for _, id := range ids {
		if got := c.waitFinal(id, 60*time.Second); got.State != client.StateSucceeded {
			t.Fatalf("%s: %+v (error %+v), want succeeded", id, got, got.Error)
		}
	}
	// From the outside: never more than 3 unfinished jobs, external included.
	if peak := peakJobs(st.Sim.Jobs()); peak > 3 {
		t.Fatalf("peak unfinished remote jobs %d, want <= 3", peak)
	}
}

func peakJobs(jobs []alisim.Job) int {
	type ev struct {
		t time.Time
		d int
	}
	var evs []ev
	for _, j := range jobs {
		evs = append(evs, ev{j.Created, 1}, ev{j.FinishesAt, -1})
	}
	sort.Slice(evs, func(i, k int) bool {
		if evs[i].t.Equal(evs[k].t) {
			return evs[i].d < evs[k].d
		}
		return evs[i].t.Before(evs[k].t)
	})
	cur, best := 0, 0
	for _, e := range evs {
		cur += e.d
		best = max(best, cur)
	}
	return best
}

// Q7: a single submission is not stuck behind a large batch: it overtakes
// the batch items still waiting.
func TestSingleOvertakesBatch(t *testing.T) {
	t.Parallel()
	st := startStack(t, devstack.Options{
		Sim:     alisim.Config{JobDuration: time.Second, QPS: map[string]float64{"CreateProductDistributeJob": 5}},
		Env:     map[string]string{"DISTQ_CREATE_QPS": "5"},
		Workers: 2,
	})
	c := newAPI(t, st.APIURL, st.Token)
	items := make([]client.BatchItem, 300)
	for i := range items {
		items[i] = client.BatchItem{ProductKey: "a1batch" + string(rune('a'+i%26)) + string(rune('a'+i/26))}
	}
	batch := client.BatchRequest{Items: items, SourceInstanceID: "iotx-oxssharez200", TargetInstanceID: "iot-cn-6ja0000e2e"}
	if _, replayed, err := c.SubmitBatch(t.Context(), batch, ""); err != nil || replayed {
		t.Fatalf("batch: %v (replayed %t)", err, replayed)
	}
	// Let the batch get going: wait for its tenth Create.
	deadline := time.Now().Add(30 * time.Second)
	for countCreates(st.Sim, "") < 10 {
		if time.Now().After(deadline) {
			t.Fatal("the batch did not start")
		}
		time.Sleep(20 * time.Millisecond)
	}
	before := countCreates(st.Sim, "")
	single := c.submit(req("a1single"))
	got := c.waitFinal(single.ID, 60*time.Second)
	if got.State != client.StateSucceeded {
		t.Fatalf("single: %+v", got)
	}
	overtakenBy := countCreates(st.Sim, "a1single") - before
	// The batch had ~290 items left; the single waited for at most the
	// grants already reserved and the slots already taken.
	if overtakenBy > 30 {
		t.Fatalf("%d batch Creates went before the single submission, want <= 30", overtakenBy)
	}
	t.Logf("single submission passed after %d batch creates", overtakenBy)
}

// countCreates counts accepted Creates, up to (not including) the one for
// product stop when stop is not empty.
func countCreates(sim *alisim.Server, stop string) int {
	n := 0
	for _, call := range sim.Audit() {
		if call.Action != alisim.ActionCreateProductDistributeJob || call.Outcome != alisim.OutcomeOK {
			continue
		}
		if stop != "" && call.ProductKey == stop {
			return n
		}
		n++
	}
	return n
}
