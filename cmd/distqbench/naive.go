package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"golang.org/x/time/rate"

	"github.com/distq/distq/internal/alibaba"
)

// The naive contrast: asynq's documented rate-limiting pattern, a
// golang.org/x/time/rate limiter per worker process, with refused calls
// returned as errors into asynq's retry back-off. No shared state.

const naiveQueue = "naive"
const naiveDone = "naive:done"

func (e env) runNaive(ctx context.Context, p *procs, sc scenario, simURL string, distqEnv []string, bound time.Duration) (time.Duration, error) {
	for i := range sc.workers {
		if err := p.start(e, fmt.Sprintf("%s naive %d", sc.name, i), append(distqEnv, "NAIVE_SIM="+simURL, fmt.Sprintf("NAIVE_DB=%d", e.db), "NAIVE_REDIS="+e.redis), e.self, "naive-worker"); err != nil {
			return 0, err
		}
	}
	rdb := redis.NewClient(&redis.Options{Addr: e.redis, DB: e.db})
	defer rdb.Close()
	client := asynq.NewClientFromRedisClient(rdb)
	start := time.Now()
	for i := range sc.n {
		t := asynq.NewTask("naive:create", []byte(fmt.Sprintf("a1bench%05d", i)))
		if _, err := client.EnqueueContext(ctx, t, asynq.Queue(naiveQueue), asynq.MaxRetry(100)); err != nil {
			return 0, err
		}
	}
	deadline := start.Add(8 * bound)
	for time.Now().Before(deadline) {
		n, _ := rdb.Get(ctx, naiveDone).Int()
		if n >= sc.n {
			return time.Since(start), nil
		}
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	return 0, nil
}

func naiveWorker() error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	qps, _ := strconv.Atoi(os.Getenv("DISTQ_CREATE_QPS"))
	qqps, _ := strconv.Atoi(os.Getenv("DISTQ_QUERY_QPS"))
	db, _ := strconv.Atoi(os.Getenv("NAIVE_DB"))
	c, err := alibaba.NewClient(alibaba.Config{Endpoint: os.Getenv("NAIVE_SIM"),
		AccessKeyID: os.Getenv("ALIBABA_CLOUD_ACCESS_KEY_ID"), AccessKeySecret: os.Getenv("ALIBABA_CLOUD_ACCESS_KEY_SECRET")})
	if err != nil {
		return err
	}
	rdb := redis.NewClient(&redis.Options{Addr: os.Getenv("NAIVE_REDIS"), DB: db})
	createLim := rate.NewLimiter(rate.Limit(qps), 1)
	queryLim := rate.NewLimiter(rate.Limit(qqps), 1)
	srv := asynq.NewServerFromRedisClient(rdb, asynq.Config{Concurrency: 10, Queues: map[string]int{naiveQueue: 1},
		Logger: quiet{}, LogLevel: asynq.FatalLevel})
	mux := asynq.NewServeMux()
	mux.HandleFunc("naive:create", func(ctx context.Context, t *asynq.Task) error {
		if err := createLim.Wait(ctx); err != nil {
			return err
		}
		tgt := os.Getenv("DISTQ_ALIBABA_UID")
		jobID, _, err := c.Create(alibaba.CreateRequest{ProductKey: string(t.Payload()), SourceInstanceID: "iotx-oxssharez200", TargetInstanceID: "iot-cn-bench", TargetUID: tgt})
		if err != nil {
			return err // throttled or quota full: asynq's retry back-off
		}
		for {
			if err := queryLim.Wait(ctx); err != nil {
				return err
			}
			j, err := c.Query(jobID)
			if err == nil && (j.Status == 2 || j.Status == 3) {
				return rdb.Incr(ctx, naiveDone).Err()
			}
			time.Sleep(time.Second)
		}
	})
	if err := srv.Start(mux); err != nil {
		return err
	}
	<-ctx.Done()
	srv.Shutdown()
	return nil
}

type quiet struct{}

func (quiet) Debug(...any) {}
func (quiet) Info(...any)  {}
func (quiet) Warn(...any)  {}
func (quiet) Error(...any) {}
func (quiet) Fatal(...any) {}
