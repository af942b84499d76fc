package app

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/hibiken/asynq"
	asynqmetrics "github.com/hibiken/asynq/x/metrics"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/distq/distq/internal/alibaba"
	"github.com/distq/distq/internal/config"
	"github.com/distq/distq/internal/metrics"
	"github.com/distq/distq/internal/notify"
	"github.com/distq/distq/internal/queue"
	"github.com/distq/distq/internal/quota"
	"github.com/distq/distq/internal/store"
)

// WorkerOptions tune a worker beyond the environment (tests, benchmarks).
type WorkerOptions struct {
	Queue             queue.Options
	Quota             quota.Options
	ReconcileInterval time.Duration // default 30s (a refused Create asks for a pass at once)
	// Client overrides the Alibaba client settings of every account.
	Client func(a config.Account, c *alibaba.Config)
	// Webhooks tunes the delivery of completion events.
	Webhooks notify.Options
	// ControlRefresh is how often the worker re-reads the operators'
	// overrides (default 500ms).
	ControlRefresh time.Duration
}

// RunWorker processes distq's tasks until ctx ends, serving /metrics,
// /healthz and /readyz on cfg.MetricsAddr; then it stops taking tasks,
// lets those in flight finish, and closes Redis. ready, if not nil, is
// called with the metrics address once the worker runs.
func RunWorker(ctx context.Context, cfg *config.Config, log *slog.Logger, opts WorkerOptions, ready func(addr string)) error {
	rdb, err := Redis(cfg)
	if err != nil {
		return err
	}
	defer rdb.Close()
	accounts, err := alibabaClients(cfg, opts.Client)
	if err != nil {
		return err
	}
	reg := newRegistry()
	m := metrics.New(reg)
	initMetrics(m, cfg)
	insp := asynq.NewInspectorFromRedisClient(rdb)
	reg.MustRegister(asynqmetrics.NewQueueMetricsCollector(insp), waitingCollector(cfg, store.NewRedis(rdb, cfg.Retention)),
		metrics.NewPollsCollector(store.NewRedis(rdb, cfg.Retention).PollSchedule))
	client := asynq.NewClientFromRedisClient(rdb)
	if opts.Queue.SlotLease == 0 {
		opts.Queue.SlotLease = cfg.SlotLease
	}
	opts.Queue.CallTimeout = cmp.Or(opts.Queue.CallTimeout, cfg.AlibabaTimeout)
	taskCheck := cmp.Or(cfg.TaskCheckInterval, 250*time.Millisecond)
	// A quarter of the worker's concurrency may wait in place for a slot
	// handoff; the rest stays free for singles and rate waits (Q7).
	opts.Queue.InlineSlotWaits = cmp.Or(opts.Queue.InlineSlotWaits, max(1, cfg.WorkerConcurrency/4))
	// The fair share admits enough items ahead to cover an idle worker's
	// pickup of an admitted item (up to 1.5 task checks), else the rate
	// idles between them.
	opts.Queue.FairLookahead = cmp.Or(opts.Queue.FairLookahead, max(500*time.Millisecond, taskCheck*3/2))
	opts.Queue.RemoteVisibility = cmp.Or(opts.Queue.RemoteVisibility, cfg.RemoteVisibility)
	st := store.NewRedis(rdb, cfg.Retention)
	// The operators' overrides in force (limits, weights, pauses), re-read
	// at most every ControlRefresh: what the worker's hot path consults.
	ctl := newControlView(cfg, rdb, log, opts.ControlRefresh)
	w := queue.NewWorker(st, quota.New(rdb, opts.Quota), accounts, m, insp, client, log, opts.Queue)
	w.UseControls(workerControls{ctl})

	newServer := func(taskCheck time.Duration) *asynq.Server {
		return asynq.NewServerFromRedisClient(rdb, asynq.Config{
			Concurrency:    cfg.WorkerConcurrency,
			Queues:         queue.Queues,
			StrictPriority: true,
			IsFailure:      queue.IsFailure,
			RetryDelayFunc: queue.RetryDelay,
			// What an idle worker costs Redis: one dequeue script per queue per
			// TaskCheckInterval (only while every queue is empty: a busy worker
			// dequeues at once), two forward scripts per queue per
			// DelayedTaskCheckInterval. Waits end through the worker's
			// in-process wakes (queue.Worker.Waited), so the forwarder is only
			// the fallback for the waits of a worker that died. The task check
			// (DISTQ_TASK_CHECK_INTERVAL, 250 ms) is also about how long a new
			// submission, or a batch item the fair share admits, waits for a
			// worker with nothing to do: docs/QUOTA.md has both sides
			// measured. A worker with nothing to do for DISTQ_IDLE_AFTER
			// goes quiet (quietServer): it checks every
			// DISTQ_IDLE_TASK_CHECK_INTERVAL until a submission wakes it.
			DelayedTaskCheckInterval: 5 * time.Second,
			TaskCheckInterval:        taskCheck,
			ShutdownTimeout:          60 * time.Second,
			Logger:                   asynqLogger{log},
			LogLevel:                 asynq.WarnLevel,
			ErrorHandler: asynq.ErrorHandlerFunc(func(ctx context.Context, t *asynq.Task, err error) {
				w.Waited(ctx, err)
				if queue.IsFailure(err) {
					log.Warn("task failed", "type", t.Type(), "payload", string(t.Payload()), "err", err)
				}
			}),
		})
	}
	mux := asynq.NewServeMux()
	w.Register(mux)
	srv := &quietServer{
		newServer: newServer,
		handler:   mux,
		busyCheck: taskCheck,
		idleCheck: max(cfg.IdleTaskCheckInterval, taskCheck),
		idleAfter: cfg.IdleAfter,
		quiet:     nothingToDo(rdb),
		onMode:    quietGauge(reg),
		log:       log,
	}
	w.UseQuiet(srv.Quiet, srv.Wake)
	if err := srv.Start(); err != nil {
		return fmt.Errorf("start worker: %w", err)
	}
	// Webhooks have an asynq server and a queue of their own: the strict
	// priorities of the quota's queues neither starve them nor are delayed
	// by them.
	whSrv, err := startWebhooks(cfg, rdb, st, client, m, log, opts.Webhooks)
	if err != nil {
		srv.Shutdown()
		return err
	}
	rctx, stopReconcile := context.WithCancel(ctx)
	done := make(chan struct{})
	limitsDone := make(chan struct{})
	go func() {
		defer close(done)
		w.RunReconciler(rctx, cmp.Or(opts.ReconcileInterval, 30*time.Second))
	}()
	fairDone := make(chan struct{})
	go func() {
		defer close(fairDone)
		w.RunFairTick(rctx, time.Second)
	}()
	// Running jobs are polled from the poll schedule, not through asynq;
	// freed slots handed to waiters of this worker are signalled to them.
	pollsDone := make(chan struct{})
	go func() {
		defer close(pollsDone)
		w.RunPolls(rctx)
	}()
	quietDone := make(chan struct{})
	go func() {
		defer close(quietDone)
		srv.Run(rctx, rdb)
	}()
	handoffsDone := make(chan struct{})
	go func() {
		defer close(handoffsDone)
		w.RunHandoffs(rctx)
	}()
	go func() {
		defer close(limitsDone)
		exportLimits(rctx, ctl, cfg, m, cmp.Or(opts.ControlRefresh, 500*time.Millisecond))
	}()

	httpMux := http.NewServeMux()
	httpMux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	httpMux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintln(w, `{"status":"ok"}`)
	})
	ping := pinger(rdb)
	httpMux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		if err := ping(ctx); err != nil {
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprintf(w, "{\"status\":\"unavailable\",\"error\":%q}\n", err.Error())
			return
		}
		fmt.Fprintln(w, `{"status":"ready"}`)
	})
	ln, err := listen(cfg.MetricsAddr)
	if err != nil {
		stopReconcile()
		<-limitsDone
		<-pollsDone
		<-quietDone
		<-handoffsDone
		srv.Shutdown()
		whSrv.stop()
		return err
	}
	log.Info("worker running", "metrics_addr", ln.Addr().String(), "concurrency", cfg.WorkerConcurrency, "accounts", len(accounts))
	if ready != nil {
		ready(ln.Addr().String())
	}
	hsrv := &http.Server{Handler: httpMux, ReadHeaderTimeout: 10 * time.Second}
	herr := make(chan error, 1)
	go func() { herr <- serve(ctx, hsrv, ln, 5*time.Second) }()
	<-ctx.Done()
	// Stop intake, drain the tasks in flight, then the rest.
	stopReconcile()
	<-done
	<-fairDone
	<-limitsDone
	<-pollsDone
	<-quietDone
	<-handoffsDone
	srv.Shutdown()
	w.StopWakes()
	whSrv.stop()
	err = <-herr
	log.Info("worker stopped")
	return err
}

// asynqLogger sends asynq's logs to slog.
type asynqLogger struct{ log *slog.Logger }

func (l asynqLogger) Debug(args ...any) { l.log.Debug(fmt.Sprint(args...), "component", "asynq") }
func (l asynqLogger) Info(args ...any)  { l.log.Info(fmt.Sprint(args...), "component", "asynq") }
func (l asynqLogger) Warn(args ...any)  { l.log.Warn(fmt.Sprint(args...), "component", "asynq") }
func (l asynqLogger) Error(args ...any) { l.log.Error(fmt.Sprint(args...), "component", "asynq") }
func (l asynqLogger) Fatal(args ...any) { l.log.Error(fmt.Sprint(args...), "component", "asynq") }
