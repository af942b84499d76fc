package app

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/distq/distq/internal/config"
	"github.com/distq/distq/internal/metrics"
	"github.com/distq/distq/internal/notify"
	"github.com/distq/distq/internal/store"
	"github.com/distq/distq/internal/webhook"
)

// webhookServer is the worker's delivery of completion events: an asynq
// server on the webhooks queue alone, and the outbox pump.
type webhookServer struct {
	srv       *asynq.Server
	stopPump  context.CancelFunc
	pumpEnded chan struct{}
}

// stop ends the pump, then lets deliveries in flight finish.
func (w *webhookServer) stop() {
	if w.srv == nil {
		return
	}
	w.stopPump()
	<-w.pumpEnded
	w.srv.Shutdown()
}

func startWebhooks(cfg *config.Config, rdb redis.UniversalClient, st *store.Redis, client *asynq.Client,
	m *metrics.Metrics, log *slog.Logger, o notify.Options) (*webhookServer, error) {
	if o.Disabled {
		return &webhookServer{}, nil
	}
	log = log.With("component", "webhooks")
	sender := webhook.NewSender(cfg.Webhooks.Allowed, cfg.Webhooks.Secrets, o.Sender)
	d := notify.NewDeliverer(st, sender, client, m, log, o)
	srv := asynq.NewServerFromRedisClient(rdb, asynq.Config{
		Concurrency:    max(cfg.Webhooks.Concurrency, 1),
		Queues:         notify.Queues,
		RetryDelayFunc: notify.RetryDelay,
		// A delivery may start a second or two late; an idle worker's
		// checks of this queue cost ~2 commands a second (see RunWorker).
		DelayedTaskCheckInterval: 5 * time.Second,
		TaskCheckInterval:        2 * time.Second,
		ShutdownTimeout:          2 * webhook.DefaultTimeout,
		Logger:                   asynqLogger{log},
		LogLevel:                 asynq.WarnLevel,
		// Failed attempts are logged and counted by the handler.
		ErrorHandler: asynq.ErrorHandlerFunc(func(context.Context, *asynq.Task, error) {}),
	})
	mux := asynq.NewServeMux()
	d.Register(mux)
	if err := srv.Start(mux); err != nil {
		return nil, fmt.Errorf("start webhook deliveries: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	w := &webhookServer{srv: srv, stopPump: cancel, pumpEnded: make(chan struct{})}
	go func() {
		defer close(w.pumpEnded)
		d.RunPump(ctx)
	}()
	return w, nil
}
