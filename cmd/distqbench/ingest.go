package main

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hibiken/asynq"

	"github.com/distq/distq/client"
)

// runIngest compares distq's intake with bare asynq enqueues on the same
// Redis: a 5,000-item batch against 5,000 sequential Enqueue calls, and
// single POSTs at a fixed concurrency against Enqueue at that concurrency.
func (e env) runIngest(ctx context.Context, items, conc int, dur time.Duration) error {
	rdb, err := e.emptyDB(ctx)
	if err != nil {
		return err
	}
	defer rdb.Close()
	var p procs
	defer p.stop()
	// No worker runs: the endpoint is never called.
	api, err := e.startAPI(ctx, &p, "ingest", e.distqEnv("http://127.0.0.1:1", "DISTQ_TEAM_RPS=1000000"))
	if err != nil {
		return err
	}
	aq := asynq.NewClientFromRedisClient(rdb)
	defer aq.Close()

	// 1. Bare sequential enqueue of `items` tasks.
	start := time.Now()
	for i := range items {
		t := asynq.NewTask("bench:bare", []byte(fmt.Sprintf(`{"id":"bare-%d"}`, i)))
		if _, err := aq.EnqueueContext(ctx, t, asynq.Queue("bare"), asynq.TaskID(fmt.Sprintf("bare-%d", i))); err != nil {
			return err
		}
	}
	bare := time.Since(start)

	// 2. One batch of `items` items through the api.
	body := benchBatch("iot-cn-bench", "a1ingest%05d", items)
	c := apiClient(api)
	start = time.Now()
	created, _, err := c.SubmitBatch(ctx, body, "")
	if err != nil {
		return err
	}
	batch := time.Since(start)
	if created.Accepted != items {
		return fmt.Errorf("batch accepted %d of %d", created.Accepted, items)
	}

	// 3. Single POSTs at a fixed concurrency, against bare Enqueue at it.
	var seq atomic.Int64
	posts, perr := loop(ctx, conc, dur, func() error {
		n := seq.Add(1)
		_, _, err := c.Submit(ctx, client.DistributionRequest{ProductKey: fmt.Sprintf("a1single%07d", n),
			SourceInstanceID: "iotx-oxssharez200", TargetInstanceID: "iot-cn-bench"}, "")
		return err
	})
	if perr != nil {
		return perr
	}
	enq, eerr := loop(ctx, conc, dur, func() error {
		n := seq.Add(1)
		t := asynq.NewTask("bench:bare", []byte(fmt.Sprintf(`{"id":"c-%d"}`, n)))
		_, err := aq.EnqueueContext(ctx, t, asynq.Queue("bare"), asynq.TaskID(fmt.Sprintf("c-%d", n)))
		return err
	})
	if eerr != nil {
		return eerr
	}
	fmt.Printf("| ingest | value |\n|---|---|\n")
	fmt.Printf("| bare asynq Enqueue, %d sequential | %v (%.0f/s) |\n", items, bare.Round(time.Millisecond), float64(items)/bare.Seconds())
	fmt.Printf("| POST /v1/batches with %d items | %v (%.0f items/s) |\n", items, batch.Round(time.Millisecond), float64(items)/batch.Seconds())
	fmt.Printf("| batch ÷ bare sequential enqueue | **%.2f** |\n", batch.Seconds()/bare.Seconds())
	fmt.Printf("| single POST /v1/distributions, %d concurrent, %v | %.0f/s |\n", conc, dur, posts)
	fmt.Printf("| bare asynq Enqueue, %d concurrent, %v | %.0f/s |\n", conc, dur, enq)
	fmt.Printf("| single POST ÷ bare Enqueue at the same concurrency | **%.2f** |\n", posts/enq)
	return nil
}

// loop runs fn from conc goroutines for d and returns calls per second.
func loop(ctx context.Context, conc int, d time.Duration, fn func() error) (float64, error) {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	var n atomic.Int64
	var first error
	var once sync.Once
	var wg sync.WaitGroup
	start := time.Now()
	for range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				if err := fn(); err != nil {
					if ctx.Err() == nil {
						once.Do(func() { first = err; cancel() })
					}
					return
				}
				n.Add(1)
			}
		}()
	}
	wg.Wait()
	return float64(n.Load()) / time.Since(start).Seconds(), first
}
