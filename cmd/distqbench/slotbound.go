package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/distq/distq/client"
)

// idealSchedule is the exact best schedule of n Creates under a rate of qps
// Creates in any second and slots jobs at once, each job lasting jobDur and
// its end seen at once: Create i goes at the latest of one second after
// Create i-qps (the sliding window) and the end of the job of Create
// i-slots (its slot). It returns the last Create's time and the last end,
// both from the first Create.
func idealSchedule(n, qps, slots int, jobDur time.Duration) (lastCreate, done time.Duration) {
	t := make([]time.Duration, n)
	for i := range t {
		if i >= qps {
			t[i] = max(t[i], t[i-qps]+time.Second)
		}
		if i >= slots {
			t[i] = max(t[i], t[i-slots]+jobDur)
		}
		if i > 0 {
			t[i] = max(t[i], t[i-1])
		}
		done = max(done, t[i]+jobDur)
	}
	if n > 0 {
		lastCreate = t[n-1]
	}
	return lastCreate, done
}

// runSlotBound runs the slot-bound scenario (n products, jobs of jobDur,
// K workers, 2 Creates/s, 10 slots) runs times and prints the measured
// last Create and end of all beside the ideal schedule's.
func (e env) runSlotBound(ctx context.Context, runs, n, workers int, jobDur time.Duration, warm int) error {
	const qps, slots = 2, 10
	idealLast, idealDone := idealSchedule(n, qps, slots, jobDur)
	state := "cold: the account's job duration unknown at the start"
	if warm > 0 {
		state = fmt.Sprintf("warm: %d jobs ran first, so the account's job duration and Create latency are known", warm)
	}
	fmt.Printf("slot-bound: %d products, %v jobs, %d workers, %d Creates/s, %d slots; %s\n", n, jobDur, workers, qps, slots, state)
	fmt.Printf("ideal (instant detection): last Create %.1fs after the first, all done %.1fs after it\n\n", idealLast.Seconds(), idealDone.Seconds())
	fmt.Println("| run | last Create after the first | ÷ ideal | all done after the first Create | ÷ ideal | max Creates in any 1 s | peak jobs | Queries (per distribution) | max Queries in any 1 s (limit 10) |")
	fmt.Println("|---|---|---|---|---|---|---|---|---|")
	for i := range runs {
		r, err := e.slotBoundOnce(ctx, n, workers, qps, slots, jobDur, warm)
		if err != nil {
			return err
		}
		fmt.Printf("| %d | %.2fs | %.3f | %.2fs | %.3f | %d | %d | %d (%.1f) | %d |\n", i+1, r.last.Seconds(), r.last.Seconds()/idealLast.Seconds(),
			r.done.Seconds(), r.done.Seconds()/idealDone.Seconds(), r.burst, r.peak, r.queries, float64(r.queries)/float64(n), r.queryBurst)
	}
	return nil
}

// slotBoundRun is what one slot-bound run measured.
type slotBoundRun struct {
	last, done  time.Duration // last Create, and all done, after the first Create
	peak, burst int           // most jobs at once; most Creates in any 1 s
	queries     int           // QueryDeviceDistributeJob calls
	queryBurst  int           // most of them in any 1 s
}

func (e env) slotBoundOnce(ctx context.Context, n, workers, qps, slots int, jobDur time.Duration, warm int) (slotBoundRun, error) {
	rdb, err := e.emptyDB(ctx)
	if err != nil {
		return slotBoundRun{}, err
	}
	defer rdb.Close()
	var p procs
	defer p.stop()
	name := "slot-bound"
	simURL, err := e.startSim(ctx, &p, name, "ALISIM_JOB_DURATION="+jobDur.String(), fmt.Sprintf("ALISIM_MAX_JOBS=%d", slots))
	if err != nil {
		return slotBoundRun{}, err
	}
	distqEnv := e.distqEnv(simURL, fmt.Sprintf("DISTQ_CREATE_QPS=%d", qps), fmt.Sprintf("DISTQ_MAX_JOBS=%d", slots))
	for i := range workers {
		if err := e.startWorker(&p, name, i, distqEnv); err != nil {
			return slotBoundRun{}, err
		}
	}
	api, err := e.startAPI(ctx, &p, name, distqEnv)
	if err != nil {
		return slotBoundRun{}, err
	}
	c := apiClient(api)
	if warm > 0 {
		// Jobs first, so that the account's job duration and its Create
		// latency samples (the quota's margin) are known, as in a
		// deployment that has run before; they are left out of the figures.
		if _, err := submitAndWait(ctx, c, "a1warm%05d", warm, jobDur); err != nil {
			return slotBoundRun{}, fmt.Errorf("warm-up: %w", err)
		}
	}
	doneAt, err := submitAndWait(ctx, c, "a1slot%05d", n, jobDur)
	if err != nil {
		return slotBoundRun{}, err
	}
	var audit struct{ Calls []call }
	var jobs struct{ Jobs []job }
	var rawAudit, rawJobs json.RawMessage
	if err := getJSON(simURL+"/_alisim/audit", &rawAudit); err != nil {
		return slotBoundRun{}, err
	}
	if err := getJSON(simURL+"/_alisim/jobs", &rawJobs); err != nil {
		return slotBoundRun{}, err
	}
	// Kept beside the processes' logs, to study a run afterwards.
	for name, raw := range map[string]json.RawMessage{"audit": rawAudit, "jobs": rawJobs} {
		if err := os.WriteFile(filepath.Join(e.logs, fmt.Sprintf("slot-bound-%s-%s.json", jobDur, name)), raw, 0o644); err != nil {
			return slotBoundRun{}, err
		}
	}
	if err := json.Unmarshal(rawAudit, &audit); err != nil {
		return slotBoundRun{}, err
	}
	if err := json.Unmarshal(rawJobs, &jobs); err != nil {
		return slotBoundRun{}, err
	}
	var creates, queries []time.Time
	for _, cl := range audit.Calls {
		if !strings.HasPrefix(cl.ProductKey, "a1slot") {
			continue // the warm-up's
		}
		if cl.Action == "CreateProductDistributeJob" && cl.Outcome == "ok" {
			creates = append(creates, cl.Arrived)
		}
		if cl.Action == "QueryDeviceDistributeJob" {
			queries = append(queries, cl.Arrived)
		}
	}
	if len(creates) == 0 {
		return slotBoundRun{}, fmt.Errorf("no Create")
	}
	sort.Slice(creates, func(i, j int) bool { return creates[i].Before(creates[j]) })
	sort.Slice(queries, func(i, j int) bool { return queries[i].Before(queries[j]) })
	first := creates[0]
	measured := slices.DeleteFunc(jobs.Jobs, func(j job) bool { return !strings.HasPrefix(j.ProductKey, "a1slot") })
	return slotBoundRun{last: creates[len(creates)-1].Sub(first), done: doneAt.Sub(first), peak: peakOverlap(measured),
		burst: maxInWindow(creates, time.Second), queries: len(queries), queryBurst: maxInWindow(queries, time.Second)}, nil
}

// submitAndWait submits a batch of n products named by format and waits
// until every item succeeded; it returns when it saw the batch done.
func submitAndWait(ctx context.Context, c *client.Client, format string, n int, jobDur time.Duration) (time.Time, error) {
	created, _, err := c.SubmitBatch(ctx, benchBatch("iot-cn-slots", format, n), "")
	if err != nil {
		return time.Time{}, err
	}
	limit := time.Now().Add(time.Duration(n)*jobDur + time.Minute)
	for {
		if time.Now().After(limit) {
			return time.Time{}, fmt.Errorf("batch not done in time")
		}
		b, err := c.GetBatch(ctx, created.Batch.ID)
		if err != nil {
			return time.Time{}, err
		}
		if b.Done {
			if b.Counts[client.StateSucceeded] != n {
				return time.Time{}, fmt.Errorf("batch done with counts %v", b.Counts)
			}
			return time.Now(), nil
		}
		if err := sleepCtx(ctx, 50*time.Millisecond); err != nil {
			return time.Time{}, err
		}
	}
}
