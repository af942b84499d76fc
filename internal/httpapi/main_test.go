package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"go.uber.org/goleak"

	"github.com/distq/distq/internal/app"
	"github.com/distq/distq/internal/control"
	"github.com/distq/distq/internal/distribution"
	"github.com/distq/distq/internal/httpapi"
	"github.com/distq/distq/internal/metrics"
	"github.com/distq/distq/internal/notify"
	"github.com/distq/distq/internal/queue"
	"github.com/distq/distq/internal/quota"
	"github.com/distq/distq/internal/redistest"
	"github.com/distq/distq/internal/service"
	"github.com/distq/distq/internal/store"
	"github.com/distq/distq/internal/webhook"
)

// The api starts goroutines (the long-poll hub, the HTTP server's
// connections, redistest's lease renewal): every test must stop them.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// Two teams and one account, as the tests configure the api.
const (
	tokenA     = "token-team-a-0123456789"
	tokenB     = "token-team-b-9876543210"
	teamA      = "team-a"
	teamB      = "team-b"
	accountUID = "1234567890123456"
	// An operator's token, for the admin routes.
	tokenAdmin = "token-admin-ops-0123456789"
	adminName  = "ops"
)

// hooksAllowed is where team A's events may go (team B has no webhook
// secret).
var hooksAllowed, _ = webhook.ParseAllowlist("hooks.example.com")

// apiOptions changes what newAPI builds.
type apiOptions struct {
	// redis, when set, names the database to use instead of leasing a new one.
	redis *redis.Options
	// down makes every Redis command fail as when Redis is unreachable.
	down bool
	// TeamRate and TeamBurst of the api (0: its defaults).
	teamRate  float64
	teamBurst int
	// requestTimeout and maxLongPolls of the api (0: its defaults).
	requestTimeout time.Duration
	maxLongPolls   int
	bodyTimeout    time.Duration
	// accounts replace the one account "main" (UID accountUID).
	accounts []service.Account
	// log receives the api's logs (default: discarded).
	log *slog.Logger
	// slots tells which distributions hold job slots (default: none).
	slots service.Slots
}

// testAPI is the api served over real HTTP on a real Redis database.
type testAPI struct {
	URL   string
	Echo  *echo.Echo
	Redis *redis.Client
	// RedisOptions names the database, for another api on it.
	RedisOptions *redis.Options
	Store        *store.Redis
	Client       *http.Client
}

// newAPI serves the api of httpapi.New on Redis and stops it, with its
// long-poll hub, when t ends.
func newAPI(t *testing.T, o apiOptions) *testAPI {
	t.Helper()
	opts := o.redis
	if opts == nil {
		opts = redistest.New(t).Options()
	}
	// A client of its own: closing it is what ends the hub's subscription
	// (see the cleanup below).
	rdb := redis.NewClient(opts)
	if o.down {
		if err := rdb.Close(); err != nil {
			t.Fatal(err)
		}
	}
	st := store.NewRedis(rdb, time.Hour)
	insp := asynq.NewInspectorFromRedisClient(rdb)
	reg := prometheus.NewRegistry()
	log := o.log
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	m := metrics.New(reg)
	accounts := o.accounts
	if accounts == nil {
		accounts = []service.Account{{Name: "main", UID: accountUID, AliyunID: "ops@example.com", CreateQPS: 2, MaxJobs: 10, Default: true}}
	}
	base := control.Base{Weights: map[string]int{teamA: 2}}
	for _, a := range accounts {
		base.Accounts = append(base.Accounts, control.Account{Name: a.Name, UID: a.UID, CreateQPS: a.CreateQPS, MaxJobs: a.MaxJobs})
	}
	svc := service.New(service.Deps{
		Store:       st,
		Idempotency: st,
		Enqueuer:    queue.NewEnqueuer(asynq.NewClientFromRedisClient(rdb), quota.New(rdb, quota.Options{}), 0),
		Devices:     service.DeviceDeps{Store: st, Enqueuer: queue.NewEnqueuer(asynq.NewClientFromRedisClient(rdb), quota.New(rdb, quota.Options{}), 0)},
		Changes:     store.NewChanges(rdb, log),
		Canceler:    func(_ context.Context, r *distribution.Record) error { return insp.DeleteTask(r.Queue, r.ID) },
		Accounts:    accounts,
		Figures:     st,
		Slots:       o.slots,
		Controls:    app.ServiceControls(control.NewStore(rdb, base)),
		Teams:       []string{teamA, teamB},
		Webhooks:    service.Webhooks{Teams: map[string]bool{teamA: true}, Allowed: hooksAllowed, Events: notify.NewOutbox(st, asynq.NewClientFromRedisClient(rdb), insp)},
		Metrics:     m,
		Log:         log,
	})
	e, background := httpapi.New(httpapi.Deps{
		Service:   svc,
		Metrics:   m,
		Tokens:    map[string]string{tokenA: teamA, tokenB: teamB},
		Registry:  reg,
		Log:       log,
		Ready:     func(ctx context.Context) error { return rdb.Ping(ctx).Err() },
		TeamRate:  o.teamRate,
		TeamBurst: o.teamBurst,

		RequestTimeout: o.requestTimeout,
		MaxLongPolls:   o.maxLongPolls,
		BodyTimeout:    o.bodyTimeout,

		AdminTokens: map[string]string{tokenAdmin: adminName},
	})
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		background(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		// The hub blocks in a read of its subscription that ctx does not
		// interrupt; closing the client closes that connection.
		if !o.down {
			if err := rdb.Close(); err != nil {
				t.Errorf("close redis: %v", err)
			}
		}
		<-stopped
	})
	srv := httptest.NewServer(e)
	client := &http.Client{Transport: &http.Transport{}, Timeout: time.Minute}
	t.Cleanup(func() {
		client.CloseIdleConnections()
		srv.Close()
	})
	return &testAPI{URL: srv.URL, Echo: e, Redis: rdb, RedisOptions: opts, Store: st, Client: client}
}

// request is one HTTP request to the api.
type request struct {
	method, path string
	// token is sent as a bearer token when not empty.
	token string
	// contentType defaults to application/json when body is set; "-"
	// sends none.
	contentType string
	header      map[string]string
	body        []byte
	// stream, when set, is sent instead of body, without Content-Length.
	stream io.Reader
}

// httpRequest builds the *http.Request of r against base.
func (r request) httpRequest(ctx context.Context, base string) (*http.Request, error) {
	var body io.Reader = http.NoBody
	switch {
	case r.stream != nil:
		body = r.stream
	case r.body != nil:
		body = bytes.NewReader(r.body)
	}
	req, err := http.NewRequestWithContext(ctx, r.method, base+r.path, body)
	if err != nil {
		return nil, err
	}
	if r.token != "" {
		req.Header.Set("Authorization", "Bearer "+r.token)
	}
	switch {
	case r.contentType == "-":
	case r.contentType != "":
		req.Header.Set("Content-Type", r.contentType)
	case r.body != nil || r.stream != nil:
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range r.header {
		req.Header.Set(k, v)
	}
	return req, nil
}

// response is what the api answered.
type response struct {
	status int
	header http.Header
	body   []byte
}

// do sends r; it returns an error instead of failing t so that it can run
// in a goroutine.
func (a *testAPI) do(ctx context.Context, r request) (*response, error) {
	req, err := r.httpRequest(ctx, a.URL)
	if err != nil {
		return nil, err
	}
	resp, err := a.Client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	return &response{status: resp.StatusCode, header: resp.Header, body: raw}, nil
}

// mustJSON encodes v, failing t on error.
func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	raw, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// dreq is a valid request body for product pk.
func dreq(pk string) distribution.Request {
	return distribution.Request{ProductKey: pk, SourceInstanceID: "iotx-oxssharez200", TargetInstanceID: "iot-cn-6ja1a2b3c4d"}
}

// createDistribution submits a valid distribution of pk for token and
// returns it.
func (a *testAPI) createDistribution(ctx context.Context, t *testing.T, token, pk string) distribution.Distribution {
	t.Helper()
	resp, err := a.do(ctx, request{method: http.MethodPost, path: "/v1/distributions", token: token, body: mustJSON(t, dreq(pk))})
	if err != nil {
		t.Fatal(err)
	}
	if resp.status != http.StatusAccepted {
		t.Fatalf("create %s: status %d %s, want 202", pk, resp.status, resp.body)
	}
	var d distribution.Distribution
	if err := json.Unmarshal(resp.body, &d); err != nil {
		t.Fatal(err)
	}
	return d
}

// fail marks the distribution id failed, as a worker would after the remote
// refused it.
func (a *testAPI) fail(ctx context.Context, t *testing.T, id string) {
	t.Helper()
	now := time.Now().UTC()
	_, err := a.Store.Update(ctx, id, func(r *store.Record) error {
		if err := r.StartSubmit(now); err != nil {
			return err
		}
		return r.Finish(now, distribution.StateFailed,
			&distribution.Error{Code: "iot.prod.NotExistedProduct", Message: "The product does not exist.", RequestID: "E2A1B3C4"}, nil)
	})
	if err != nil {
		t.Fatalf("fail %s: %v", id, err)
	}
}
