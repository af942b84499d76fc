package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os/exec"
	"syscall"
	"time"

	"github.com/distq/distq/client"
)

// runChaos submits n distributions to K workers and kills a random worker
// with SIGKILL every 1–3 s (then starts a new one) until the batch is done;
// the simulator also answers with faults. It then checks from the outside
// that every distribution succeeded with exactly one remote job, and that
// the job slots return to zero.
func (e env) runChaos(ctx context.Context, n, workers int, faults string) error {
	rdb, err := e.emptyDB(ctx)
	if err != nil {
		return err
	}
	defer rdb.Close()
	var p procs
	defer p.stop()
	simEnv := []string{"ALISIM_JOB_DURATION=1s", "ALISIM_MAX_JOBS=20",
		"ALISIM_QPS=CreateProductDistributeJob=10,QueryDeviceDistributeJob=50,ListDeviceDistributeJob=25"}
	switch faults {
	case "":
	case "lost":
		simEnv = append(simEnv, "ALISIM_ERROR_AFTER_CREATE_RATIO=0.3")
	default:
		simEnv = append(simEnv, "ALISIM_ERROR_RATIO=0.2", "ALISIM_TIMEOUT_RATIO=0.1", "ALISIM_LATENCY=0-2s")
	}
	simURL, err := e.startSim(ctx, &p, "chaos", simEnv...)
	if err != nil {
		return err
	}
	distqEnv := e.distqEnv(simURL, "DISTQ_CREATE_QPS=10", "DISTQ_QUERY_QPS=50", "DISTQ_LIST_QPS=25",
		"DISTQ_MAX_JOBS=20", "DISTQ_SLOT_LEASE=15s", "DISTQ_ALIBABA_TIMEOUT=3s",
		// The simulator lists a job as soon as it is made.
		"DISTQ_REMOTE_VISIBILITY=5s")
	startWorker := func(i int) (*exec.Cmd, error) {
		if err := e.startWorker(&p, "chaos", i, distqEnv); err != nil {
			return nil, err
		}
		return p.cmds[len(p.cmds)-1], nil
	}
	live := make([]*exec.Cmd, workers)
	for i := range live {
		c, err := startWorker(i)
		if err != nil {
			return err
		}
		live[i] = c
	}
	api, err := e.startAPI(ctx, &p, "chaos", distqEnv)
	if err != nil {
		return err
	}
	body := benchBatch("iot-cn-chaos", "a1chaos%04d", n)
	cl := apiClient(api)
	start := time.Now()
	created, _, err := cl.SubmitBatch(ctx, body, "")
	if err != nil {
		return err
	}
	kills, spawned := 0, workers
	next := time.Now().Add(time.Second)
	var counts map[client.State]int
	for deadline := time.Now().Add(10 * time.Minute); time.Now().Before(deadline); {
		b, err := cl.GetBatch(ctx, created.Batch.ID)
		if err != nil {
			return err
		}
		counts = b.Counts
		if b.Done {
			break
		}
		if time.Now().After(next) {
			i := rand.IntN(len(live))
			live[i].Process.Signal(syscall.SIGKILL)
			kills++
			c, err := startWorker(spawned)
			if err != nil {
				return err
			}
			spawned++
			live[i] = c
			next = time.Now().Add(time.Second + rand.N(2*time.Second))
		}
		time.Sleep(100 * time.Millisecond)
	}
	drain := time.Since(start)
	var jobs struct{ Jobs []job }
	if err := getJSON(simURL+"/_alisim/jobs", &jobs); err != nil {
		return err
	}
	perProduct := map[string]int{}
	for _, j := range jobs.Jobs {
		perProduct[j.ProductKey]++
	}
	missing, dups := 0, 0
	for _, it := range body.Items {
		switch c := perProduct[it.ProductKey]; {
		case c == 0:
			missing++
		case c > 1:
			dups += c - 1
		}
	}
	// Slots: every holder is released by the distribution's end or its lease.
	slotsKey := "distq:{" + uid + "}:slots"
	var slots int64
	for wait := time.Now().Add(30 * time.Second); time.Now().Before(wait); time.Sleep(500 * time.Millisecond) {
		nowMs := time.Now().UnixMicro()
		slots, _ = rdb.ZCount(ctx, slotsKey, fmt.Sprint(nowMs), "+inf").Result()
		if slots == 0 {
			break
		}
	}
	label := "SIGKILL only"
	switch faults {
	case "":
	case "lost":
		label = "SIGKILL + 30% of Creates answered 503/500 after making the job"
	default:
		label = "SIGKILL + 20% 5xx + 10% timeout-after-create + 0–2s latency"
	}
	fmt.Printf("| chaos (%s) | value |\n|---|---|\n", label)
	fmt.Printf("| distributions | %d, %d workers, %d SIGKILLs |\n", n, workers, kills)
	fmt.Printf("| final states | %v |\n", counts)
	fmt.Printf("| remote jobs per distribution | %d missing, %d duplicates (of %d jobs) |\n", missing, dups, len(jobs.Jobs))
	fmt.Printf("| slots held after the run | %d |\n", slots)
	fmt.Printf("| drain time | %v |\n", drain.Round(100*time.Millisecond))
	if counts[client.StateSucceeded] != n || dups != 0 || missing != 0 || slots != 0 {
		return fmt.Errorf("chaos run broke an invariant (see the table)")
	}
	return nil
}
