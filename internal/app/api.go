package app

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/hibiken/asynq"
	"github.com/labstack/echo/v4"

	"github.com/distq/distq/internal/config"
	"github.com/distq/distq/internal/console"
	"github.com/distq/distq/internal/control"
	"github.com/distq/distq/internal/distribution"
	"github.com/distq/distq/internal/httpapi"
	"github.com/distq/distq/internal/metrics"
	"github.com/distq/distq/internal/notify"
	"github.com/distq/distq/internal/queue"
	"github.com/distq/distq/internal/quota"
	"github.com/distq/distq/internal/service"
	"github.com/distq/distq/internal/store"
)

// RunAPI serves the REST API on cfg.HTTPAddr until ctx ends, then stops
// taking requests, lets those in flight finish, and closes Redis. ready, if
// not nil, is called with the listening address.
func RunAPI(ctx context.Context, cfg *config.Config, log *slog.Logger, ready func(addr string)) error {
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
	st := store.NewRedis(rdb, cfg.Retention)
	lim := quota.New(rdb, quota.Options{})
	ctl := control.NewStore(rdb, controlBase(cfg))
	enq := queue.NewEnqueuer(client, lim, 0)
	enq.WakeWorkers(rdb)
	deps := service.Deps{
		Store:       st,
		Idempotency: st,
		Enqueuer:    enq,
		Devices:     service.DeviceDeps{Store: st, Enqueuer: enq},
		Changes:     store.NewChanges(rdb, log),
		Figures:     st,
		Slots:       slotHolders{lim},
		FairQueue:   fairQueue{lim},
		Controls:    ServiceControls(ctl),
		Backlogs:    fairQueue{lim},
		Teams:       serviceTeams(cfg),
		Canceler:    func(ctx context.Context, r *distribution.Record) error { return enq.Cancel(ctx, insp, r) },
		Accounts:    serviceAccounts(cfg),
		Webhooks:    serviceWebhooks(cfg, notify.NewOutbox(st, client, insp)),
		Metrics:     m,
		Log:         log,

		JobDurationHint: cfg.JobDurationHint,
	}
	useView(&deps, control.NewView(ctl, control.ViewOptions{Log: log.With("component", "control")}))
	svc := service.New(deps)
	e, background := httpapi.New(httpapi.Deps{
		Service:     svc,
		Tokens:      cfg.Tokens,
		TokenHashes: cfg.TokenHashes,
		Registry:    reg,
		Log:         log,
		Metrics:     m,
		Ready:       pinger(rdb),
		TeamRate:    float64(cfg.TeamRPS),

		AdminTokens:      cfg.AdminTokens,
		AdminTokenHashes: cfg.AdminTokenHashes,
	})
	// The team console, a second front door of the same service.
	con := echo.WrapHandler(console.New(console.Deps{
		Service: svc, Sessions: st, Tokens: cfg.Tokens, TokenHashes: cfg.TokenHashes, Log: log,
	}))
	e.Any(console.Prefix, con)
	e.Any(console.Prefix+"/*", con)
	bg, stopBG := context.WithCancel(ctx)
	defer stopBG()
	go background(bg)
	// The limit gauges follow the operators' overrides.
	limitsDone := make(chan struct{})
	defer func() { stopBG(); <-limitsDone }()
	go func() {
		defer close(limitsDone)
		exportLimits(bg, control.NewView(ctl, control.ViewOptions{Log: log.With("component", "control")}), cfg, m, time.Second)
	}()
	ln, err := listen(cfg.HTTPAddr)
	if err != nil {
		return err
	}
	ln = limitListener(ln, maxAPIConns)
	log.Info("api listening", "addr", ln.Addr().String(), "accounts", len(cfg.Accounts), "teams", len(serviceTeams(cfg)),
		"admins", len(cfg.AdminTokens)+len(cfg.AdminTokenHashes))
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

// serviceAccounts is what the use cases need of each configured account.
func serviceAccounts(cfg *config.Config) []service.Account {
	out := make([]service.Account, len(cfg.Accounts))
	for i, a := range cfg.Accounts {
		out[i] = service.Account{Name: a.Name, UID: a.UID, AliyunID: a.AliyunID, CreateQPS: a.CreateQPS, MaxJobs: a.MaxJobs, Default: a.Default}
	}
	return out
}

// serviceWebhooks is what the use cases need of the webhook settings: the
// teams with a secret (never the secrets) and the allowed hosts.
func serviceWebhooks(cfg *config.Config, events service.Events) service.Webhooks {
	teams := map[string]bool{}
	for team := range cfg.Webhooks.Secrets {
		teams[team] = true
	}
	return service.Webhooks{Teams: teams, Allowed: cfg.Webhooks.Allowed, Events: events}
}

// slotHolders tells the service which distributions hold an account's job
// slots, from the quota's leases.
type slotHolders struct{ l *quota.Limiter }

func (h slotHolders) SlotHolders(ctx context.Context, uid string) ([]string, int, error) {
	leases, err := h.l.Holders(ctx, uid)
	if err != nil {
		return nil, 0, err
	}
	ext, err := h.l.External(ctx, uid)
	if err != nil {
		return nil, 0, err
	}
	ids := make([]string, 0, len(leases))
	for id := range leases {
		ids = append(ids, id)
	}
	return ids, ext, nil
}

// fairQueue gives the service the accounts' fair queues (internal/quota).
type fairQueue struct{ l *quota.Limiter }

func (f fairQueue) Backlogs(ctx context.Context, uid string) (map[string]int, error) {
	st, err := f.l.FairState(ctx, uid)
	if err != nil {
		return nil, err
	}
	out := make(map[string]int, len(st))
	for team, s := range st {
		out[team] = s.Queued + s.Admitted
	}
	return out, nil
}

func (f fairQueue) Ahead(ctx context.Context, uid, team string, before time.Time) (int, error) {
	return f.l.FairAhead(ctx, uid, team, before)
}
