package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"syscall"
	"time"
)

// hog burns every core until it is signalled: a CPU hog on the cores the
// workers, the api and the simulator run on, so that the scheduler delays
// them at random (the stall between a grant and its call that the rate
// must survive).
func hog() {
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, os.Interrupt)
	for range runtime.NumCPU() {
		go func() {
			x := 0
			for {
				x++
				if x%(1<<20) == 0 {
					runtime.Gosched()
				}
			}
		}()
	}
	<-stop
}

// runChaosRuns runs the chaos scenario runs times and reports how many held
// every invariant (exactly one remote job per distribution).
func (e env) runChaosRuns(ctx context.Context, n, runs int, faults string) error {
	failed := 0
	for i := range runs {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		fmt.Printf("run %d of %d\n", i+1, runs)
		if err := e.runChaos(ctx, n, 3, faults); err != nil {
			fmt.Printf("run %d: %v\n", i+1, err)
			failed++
		}
		fmt.Println()
	}
	fmt.Printf("chaos: %d of %d runs held every invariant\n", runs-failed, runs)
	if failed > 0 {
		return fmt.Errorf("%d of %d chaos runs broke an invariant", failed, runs)
	}
	return nil
}

// runHog runs the 0–50 ms jitter scenario with a CPU hog, runs times.
func (e env) runHog(ctx context.Context, runs int) error {
	sc := scenario{name: "distq K=3 jitter 0-50ms + CPU hog", workers: 3, n: 40, qps: 2, slots: 10,
		jobDur: 2 * time.Second, latency: "0-50ms", hog: true}
	fmt.Println("| scenario | Create rate used | max Creates in any 1 s | throttled | peak jobs ÷ limit | duplicate Creates | drain ÷ bound |")
	fmt.Println("|---|---|---|---|---|---|---|")
	logs := e.logs
	for i := range runs {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		// Each run keeps its own logs and audit.
		e.logs = filepath.Join(logs, fmt.Sprintf("run-%d", i+1))
		if err := os.MkdirAll(e.logs, 0o755); err != nil {
			return err
		}
		res, err := e.runScenario(ctx, sc)
		if err != nil {
			return err
		}
		fmt.Println(res)
	}
	return nil
}
