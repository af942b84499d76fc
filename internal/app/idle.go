package app

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/hibiken/asynq"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/distq/distq/internal/queue"
)

// quietServer runs the worker's asynq server in one of two modes. asynq
// 0.26 has no blocking dequeue: a worker looks for runnable tasks every
// TaskCheckInterval while its queues are empty, three Redis commands per
// queue each time, whether or not anything is coming. So:
//
//   - busy: the server looks every busyCheck (DISTQ_TASK_CHECK_INTERVAL),
//     so that a batch item the fair share admits, or a single, is picked up
//     promptly;
//   - quiet: after idleAfter with no task runnable or running anywhere
//     (nothingToDo), the server is replaced by one that looks every
//     idleCheck. A submission wakes the worker at once: the api publishes
//     on queue.WorkChannel after it queues tasks, a worker that makes a
//     waiting task runnable wakes itself, and a fresh busy server looks
//     for tasks as soon as it starts. A task found by the quiet
//     server (one the api queued without a wake reaching this worker)
//     wakes it too.
//
// An asynq.Server cannot be restarted, so a switch starts a new server and
// shuts the old one down in the background (it stops taking tasks at
// once; it has none running, as the worker was quiet, or a task the quiet
// server took runs to its end).
type quietServer struct {
	newServer func(taskCheck time.Duration) *asynq.Server
	handler   asynq.Handler
	busyCheck time.Duration
	idleCheck time.Duration
	idleAfter time.Duration // 0: never quiet
	// quiet reports whether no task is runnable or running, in any
	// worker.
	quiet  func(context.Context) (bool, error)
	onMode func(quiet bool) // told of every switch (metrics); may be nil
	log    *slog.Logger

	mu     sync.Mutex
	cur    *asynq.Server
	idle   bool
	active int       // tasks running here
	last   time.Time // when a task last started or ended here
	closed bool
	old    sync.WaitGroup // servers shutting down
}

// Start starts the busy server.
func (s *quietServer) Start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cur = s.newServer(s.busyCheck)
	s.last = time.Now()
	if s.onMode != nil {
		s.onMode(false)
	}
	return s.cur.Start(s)
}

// ProcessTask runs a task through the handler, noting the activity; a
// task taken by the quiet server wakes the worker.
func (s *quietServer) ProcessTask(ctx context.Context, t *asynq.Task) error {
	s.mu.Lock()
	s.active++
	s.last = time.Now()
	wake := s.idle
	s.mu.Unlock()
	if wake {
		go s.Wake()
	}
	defer func() {
		s.mu.Lock()
		s.active--
		s.last = time.Now()
		s.mu.Unlock()
	}()
	return s.handler.ProcessTask(ctx, t)
}

// Wake makes a quiet worker busy.
func (s *quietServer) Wake() { s.switchTo(false) }

// Quiet reports whether the worker is in quiet mode.
func (s *quietServer) Quiet() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.idle
}

func (s *quietServer) switchTo(idle bool) {
	s.mu.Lock()
	if s.closed || s.idle == idle {
		s.mu.Unlock()
		return
	}
	check := s.busyCheck
	if idle {
		check = s.idleCheck
	}
	next := s.newServer(check)
	if err := next.Start(s); err != nil {
		s.mu.Unlock()
		s.log.Error("start the worker's asynq server", "quiet", idle, "err", err)
		return
	}
	old := s.cur
	s.cur, s.idle = next, idle
	s.last = time.Now()
	s.old.Add(1)
	s.mu.Unlock()
	if s.onMode != nil {
		s.onMode(idle)
	}
	s.log.Debug("worker mode", "quiet", idle)
	go func() {
		defer s.old.Done()
		old.Shutdown()
	}()
}

// Run switches to quiet mode when nothing has happened for idleAfter, and
// wakes on queue.WorkChannel, until ctx ends.
func (s *quietServer) Run(ctx context.Context, rdb redis.UniversalClient) {
	if s.idleAfter <= 0 {
		return
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		s.listen(ctx, rdb)
	}()
	defer wg.Wait()
	t := time.NewTicker(max(s.idleAfter/4, 250*time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		s.mu.Lock()
		calm := !s.idle && s.active == 0 && time.Since(s.last) >= s.idleAfter
		s.mu.Unlock()
		if !calm {
			continue
		}
		q, err := s.quiet(ctx)
		if err != nil {
			if ctx.Err() == nil {
				s.log.Warn("look whether the worker may go quiet", "err", err)
			}
			continue
		}
		if q {
			s.switchTo(true)
		} else {
			s.mu.Lock()
			s.last = time.Now() // work elsewhere: look again after idleAfter
			s.mu.Unlock()
		}
	}
}

// listen wakes the worker on every message on queue.WorkChannel.
func (s *quietServer) listen(ctx context.Context, rdb redis.UniversalClient) {
	queue.Listen(ctx, rdb, queue.WorkChannel, func(string) { s.Wake() })
}

// Shutdown shuts the current server down (draining its tasks) and waits
// for the servers shutting down since a switch.
func (s *quietServer) Shutdown() {
	s.mu.Lock()
	s.closed = true
	cur := s.cur
	s.mu.Unlock()
	if cur != nil {
		cur.Shutdown()
	}
	s.old.Wait()
}

// quietGauge registers distq_worker_quiet on reg and returns its setter.
func quietGauge(reg prometheus.Registerer) func(bool) {
	g := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "distq_worker_quiet",
		Help: "1 while the worker is quiet: nothing to do anywhere for DISTQ_IDLE_AFTER, it looks for tasks every DISTQ_IDLE_TASK_CHECK_INTERVAL until a submission wakes it.",
	})
	reg.MustRegister(g)
	return func(quiet bool) {
		if quiet {
			g.Set(1)
		} else {
			g.Set(0)
		}
	}
}

// asynqQueueKeys are the keys asynq 0.26 keeps a queue's tasks in, by
// state (its internal/base naming; TestAsynqQueueKeys checks them).
func asynqQueueKeys(q string) (pending, active, scheduled string) {
	p := "asynq:{" + q + "}:"
	return p + "pending", p + "active", p + "scheduled"
}

// nothingToDo reports whether no distq task is runnable (pending) or
// running (active) in any queue: the test a worker makes before it goes
// quiet. Tasks waiting (scheduled, or handed back with a wait) do not
// count: what makes one runnable is a RunTask by a worker, which wakes that
// worker (queue.Worker.UseQuiet), an api enqueue, which publishes the
// wake, or, as the fallback for a worker that died, asynq's forwarder,
// whose task the quiet server finds within 1.5 of its checks. Nor do
// remote jobs being polled: polls run outside asynq. So ten long jobs
// running, and the items waiting for their slots, cost Redis their polls,
// not a busy worker's look for tasks four times a second. One pipeline of
// 4 commands.
func nothingToDo(rdb redis.UniversalClient) func(context.Context) (bool, error) {
	return func(ctx context.Context) (bool, error) {
		pipe := rdb.Pipeline()
		var counts []*redis.IntCmd
		for q := range queue.Queues {
			pending, active, _ := asynqQueueKeys(q)
			counts = append(counts, pipe.LLen(ctx, pending), pipe.LLen(ctx, active))
		}
		if _, err := pipe.Exec(ctx); err != nil {
			return false, err
		}
		for _, c := range counts {
			if c.Val() > 0 {
				return false, nil
			}
		}
		return true, nil
	}
}
