package main

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/distq/distq/client"
)

// runLoad drives single POSTs at a fixed concurrency for d against a full
// stack (simulator, api, 3 workers, limits raised so the workers keep up),
// records every latency and every accepted id, then waits until every
// accepted distribution is final and checks each one succeeded.
func (e env) runLoad(ctx context.Context, conc int, d time.Duration) error {
	rdb, err := e.emptyDB(ctx)
	if err != nil {
		return err
	}
	defer rdb.Close()
	var p procs
	defer p.stop()
	simURL, err := e.startSim(ctx, &p, "load", "ALISIM_JOB_DURATION=200ms", "ALISIM_MAX_JOBS=100000",
		"ALISIM_QPS=CreateProductDistributeJob=5000,QueryDeviceDistributeJob=10000,ListDeviceDistributeJob=1000")
	if err != nil {
		return err
	}
	distqEnv := e.distqEnv(simURL, "DISTQ_CREATE_QPS=5000", "DISTQ_QUERY_QPS=10000", "DISTQ_LIST_QPS=1000",
		"DISTQ_MAX_JOBS=100000", "DISTQ_TEAM_RPS=1000000", "DISTQ_WORKER_CONCURRENCY=50")
	for i := range 3 {
		if err := e.startWorker(&p, "load", i, distqEnv); err != nil {
			return err
		}
	}
	api, err := e.startAPI(ctx, &p, "load", distqEnv)
	if err != nil {
		return err
	}
	c := apiClient(api)
	var (
		mu        sync.Mutex
		latencies []time.Duration
		ids       []string
		errs      atomic.Int64
		seq       atomic.Int64
	)
	lctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	var wg sync.WaitGroup
	start := time.Now()
	for range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for lctx.Err() == nil {
				n := seq.Add(1)
				req := client.DistributionRequest{ProductKey: fmt.Sprintf("a1load%08d", n),
					SourceInstanceID: "iotx-oxssharez200", TargetInstanceID: "iot-cn-load"}
				t0 := time.Now()
				dist, _, err := c.Submit(ctx, req, "") // the load's deadline (lctx) cuts no request short
				lat := time.Since(t0)
				if err != nil {
					errs.Add(1)
					continue
				}
				mu.Lock()
				latencies = append(latencies, lat)
				ids = append(ids, dist.ID)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	sort.Slice(latencies, func(i, j int) bool { return latencies[i] < latencies[j] })
	pct := func(q float64) time.Duration {
		if len(latencies) == 0 {
			return 0
		}
		return latencies[int(q*float64(len(latencies)-1))]
	}
	// Drain: every accepted id must exist and end succeeded.
	drainStart := time.Now()
	for deadline := time.Now().Add(15 * time.Minute); ; time.Sleep(time.Second) {
		open, err := rdb.ZCard(ctx, "distq:open").Result()
		if err != nil {
			return err
		}
		if open == 0 {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d distributions still open after 15 min", open)
		}
	}
	drain := time.Since(drainStart)
	states := map[string]int{}
	missing := 0
	for i := 0; i < len(ids); i += 1000 {
		keys := make([]string, 0, 1000)
		for _, id := range ids[i:min(i+1000, len(ids))] {
			keys = append(keys, "distq:d:"+id)
		}
		vals, err := rdb.MGet(ctx, keys...).Result()
		if err != nil {
			return err
		}
		for _, v := range vals {
			s, ok := v.(string)
			if !ok {
				missing++
				continue
			}
			var r struct{ State string }
			json.Unmarshal([]byte(s), &r)
			states[r.State]++
		}
	}
	fmt.Printf("| load: single POST /v1/distributions | value |\n|---|---|\n")
	fmt.Printf("| concurrency, duration | %d, %v |\n", conc, elapsed.Round(time.Second))
	fmt.Printf("| accepted (202) | %d (%.0f/s) |\n", len(ids), float64(len(ids))/elapsed.Seconds())
	fmt.Printf("| errors (non-202 or transport) | %d |\n", errs.Load())
	fmt.Printf("| latency p50 / p99 / max | %v / %v / %v |\n", pct(0.5).Round(time.Microsecond*10), pct(0.99).Round(time.Microsecond*10), pct(1).Round(time.Microsecond*10))
	fmt.Printf("| accepted ids found afterwards | %d of %d |\n", len(ids)-missing, len(ids))
	fmt.Printf("| final states | %v (drained %v after the load) |\n", states, drain.Round(time.Second))
	if missing > 0 || states["succeeded"] != len(ids) || errs.Load() > 0 {
		return fmt.Errorf("load run lost or failed distributions (see the table)")
	}
	return nil
}
