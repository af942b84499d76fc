package app

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"time"

	"github.com/hibiken/asynq"

	"github.com/distq/distq/internal/config"
	"github.com/distq/distq/internal/httpapi"
	"github.com/distq/distq/internal/metrics"
	"github.com/distq/distq/internal/queue"
	"github.com/distq/distq/internal/store"
)

// RunAPI serves the REST API on cfg.HTTPAddr until ctx ends, then stops
// taking requests, lets those in flight finish, and closes Redis. ready, if
// not nil, is called with the listening address.
func RunAPI(ctx context.Context, cfg *config.Config, log *slog.Logger, ready func(addr string)) error {
	if len(cfg.Tokens) == 0 && len(cfg.TokenHashes) == 0 {
		return errors.New("DISTQ_API_TOKENS: required: at least one team:token (or DISTQ_API_TOKENS_FILE)")
	}
	rdb, err := Redis(cfg, forAPI)
	if err != nil {
		return err
	}
	defer rdb.Close()
	client := asynq.NewClientFromRedisClient(rdb)
	insp := asynq.NewInspectorFromRedisClient(rdb)
	reg := newRegistry()
	m := metrics.New(reg)
	initMetrics(m, cfg)
	e, background := httpapi.New(httpapi.Deps{
		Config:   cfg,
		Store:    store.NewRedis(rdb, cfg.Retention),
		Enqueuer: queue.NewEnqueuer(client),
		Canceler: func(_ context.Context, q, id string) error { return insp.DeleteTask(q, id) },
		Metrics:  m,
		Registry: reg,
		Log:      log,
		Ready:    pinger(rdb),
		TeamRate: float64(cfg.TeamRPS),
	})
	bg, stopBG := context.WithCancel(ctx)
	defer stopBG()
	go background(bg)
	ln, err := listen(cfg.HTTPAddr)
	if err != nil {
		return err
	}
	ln = limitListener(ln, maxAPIConns)
	log.Info("api listening", "addr", ln.Addr().String(), "accounts", len(cfg.Accounts), "teams", len(cfg.Tokens))
	if ready != nil {
		ready(ln.Addr().String())
	}
	// No server-wide ReadTimeout: the api bounds each body's reading itself
	// (10 s, 60 s for a batch upload), which long polls would not survive.
	// Headers: the api answers a JSON 431 past httpapi.MaxHeaderBytes;
	// net/http's text/plain one only past 1 MiB.
	srv := &http.Server{Handler: e, ReadHeaderTimeout: 5 * time.Second, IdleTimeout: 2 * time.Minute, MaxHeaderBytes: 1 << 20}
	err = serve(ctx, srv, ln, 75*time.Second)
	log.Info("api stopped")
	return err
}
