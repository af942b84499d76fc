package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/distq/distq/internal/app"
	"github.com/distq/distq/internal/devstack"
	"github.com/distq/distq/internal/distribution"
	"github.com/distq/distq/internal/notify"
	"github.com/distq/distq/internal/redistest"
	"github.com/distq/distq/internal/webhook"
)

const hookSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

// delivery is one request a receiver got, verified with the library.
type delivery struct {
	ID     string
	Body   map[string]any
	Status int // what the receiver answered
}

// hookReceiver is an HTTP receiver of the test's own, on loopback, that
// verifies every request with the Standard Webhooks library and answers
// what answer says for the n-th request (1-based).
type hookReceiver struct {
	t      *testing.T
	addr   string
	answer func(n int) int

	mu   sync.Mutex
	got  []delivery
	bad  []error
	srv  *http.Server
	wake chan struct{}
}

// newHookReceiver reserves a loopback address; start serves on it.
func newHookReceiver(t *testing.T, answer func(n int) int) *hookReceiver {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &hookReceiver{t: t, addr: ln.Addr().String(), answer: answer, wake: make(chan struct{}, 1)}
	ln.Close()
	return r
}

func (r *hookReceiver) url() string { return "http://" + r.addr + "/distq-events" }

func (r *hookReceiver) start() {
	r.t.Helper()
	var ln net.Listener
	var err error
	deadline := time.Now().Add(10 * time.Second)
	for ln, err = net.Listen("tcp", r.addr); err != nil && time.Now().Before(deadline); ln, err = net.Listen("tcp", r.addr) {
		time.Sleep(50 * time.Millisecond) // the port was just released; retry binding it
	}
	if err != nil {
		r.t.Fatalf("receiver listen %s: %v", r.addr, err)
	}
	wh, _ := standardwebhooks.NewWebhook(hookSecret)
	r.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		defer r.mu.Unlock()
		if err := wh.Verify(body, req.Header); err != nil {
			r.bad = append(r.bad, err)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		d := delivery{ID: req.Header.Get("webhook-id")}
		if err := json.Unmarshal(body, &d.Body); err != nil {
			r.bad = append(r.bad, err)
		}
		d.Status = r.answer(len(r.got) + 1)
		r.got = append(r.got, d)
		w.WriteHeader(d.Status)
		select {
		case r.wake <- struct{}{}:
		default:
		}
	})}
	go r.srv.Serve(ln)
	r.t.Cleanup(func() { r.srv.Close() })
}

func (r *hookReceiver) deliveries() []delivery {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.bad) > 0 {
		r.t.Errorf("requests that did not verify: %v", r.bad)
	}
	return append([]delivery(nil), r.got...)
}

// waitFor waits until cond holds for the deliveries so far.
func (r *hookReceiver) waitFor(limit time.Duration, what string, cond func([]delivery) bool) []delivery {
	r.t.Helper()
	deadline := time.Now().Add(limit)
	for {
		got := r.deliveries()
		if cond(got) {
			return got
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("after %v: %s; deliveries: %+v", limit, what, got)
		}
		select {
		case <-r.wake:
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func always(status int) func(int) int { return func(int) int { return status } }

// fastHooks retries deliveries quickly.
func fastHooks() notify.Options {
	return notify.Options{FirstRetry: 200 * time.Millisecond, MaxBackoff: 400 * time.Millisecond, PumpInterval: 50 * time.Millisecond}
}

func hookEnv(allowed string) map[string]string {
	return map[string]string{"DISTQ_WEBHOOK_SECRETS": devstack.DevTeam + ":" + hookSecret, "DISTQ_WEBHOOK_ALLOWED_HOSTS": allowed}
}

type batchWithNotification struct {
	ID           string                     `json:"id"`
	Done         bool                       `json:"done"`
	Counts       map[distribution.State]int `json:"counts"`
	NotifyURL    string                     `json:"notify_url"`
	Notification *struct {
		EventID       string     `json:"event_id"`
		Type          string     `json:"type"`
		State         string     `json:"state"`
		Attempts      int        `json:"attempts"`
		LastStatus    int        `json:"last_status"`
		LastError     string     `json:"last_error"`
		LastAttemptAt *time.Time `json:"last_attempt_at"`
		NextRetryAt   *time.Time `json:"next_retry_at"`
		DeliveredAt   *time.Time `json:"delivered_at"`
	} `json:"notification"`
}

func (c *api) submitBatch(notifyURL string, pks ...string) string {
	c.t.Helper()
	items := make([]map[string]string, len(pks))
	for i, pk := range pks {
		items[i] = map[string]string{"product_key": pk}
	}
	var out struct {
		Batch struct{ ID string } `json:"batch"`
	}
	body := map[string]any{"source_instance_id": "iotx-oxssharez200", "target_instance_id": "iot-cn-6ja0000e2e", "items": items}
	if notifyURL != "" {
		body["notify_url"] = notifyURL
	}
	if code := c.do("POST", "/v1/batches", body, &out); code != http.StatusAccepted {
		c.t.Fatalf("submit batch: status %d", code)
	}
	return out.Batch.ID
}

// batchUntil long-polls the batch until cond holds.
func (c *api) batchUntil(id string, limit time.Duration, what string, cond func(b batchWithNotification) bool) batchWithNotification {
	c.t.Helper()
	deadline := time.Now().Add(limit)
	var b batchWithNotification
	for {
		if code := c.do("GET", "/v1/batches/"+id, nil, &b); code != http.StatusOK {
			c.t.Fatalf("get batch %s: %d", id, code)
		}
		if cond(b) {
			return b
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("batch %s after %v: %s; got %+v (notification %+v)", id, limit, what, b, b.Notification)
		}
		time.Sleep(50 * time.Millisecond) // the batch's state is the outcome of other processes: poll with a deadline
	}
}

// A signed batch.finished that verifies with the library's verifier; a
// receiver that answers 500 and then 200 gets the same webhook-id twice;
// the delivery state shows in the batch; a single distribution with a
// notify_url gets distribution.finished.
func TestBatchFinishedWebhook(t *testing.T) {
	t.Parallel()
	rcv := newHookReceiver(t, func(n int) int {
		if n == 1 {
			return http.StatusInternalServerError
		}
		return http.StatusOK
	})
	rcv.start()
	st := startStack(t, devstack.Options{Sim: fastSim(), Env: hookEnv(rcv.addr), Worker: app.WorkerOptions{Webhooks: fastHooks()}})
	c := newAPI(t, st.APIURL, st.Token)
	id := c.submitBatch(rcv.url(), "a1Hook1", "a1Hook2", "a1Hook3")

	got := rcv.waitFor(30*time.Second, "want two deliveries", func(d []delivery) bool { return len(d) >= 2 })
	if got[0].ID == "" || got[0].ID != got[1].ID || got[0].Status != 500 || got[1].Status != 200 {
		t.Fatalf("deliveries %+v: want the same webhook-id answered 500 then 200", got)
	}
	body := got[1].Body
	data, _ := body["data"].(map[string]any)
	counts, _ := data["counts"].(map[string]any)
	if body["type"] != "batch.finished" || body["timestamp"] == nil || data["id"] != id || data["done"] != true ||
		counts["succeeded"] != float64(3) || data["size"] != float64(3) {
		t.Fatalf("event body %+v: want batch.finished of %s with 3 succeeded", body, id)
	}
	b := c.batchUntil(id, 10*time.Second, "want the notification delivered", func(b batchWithNotification) bool {
		return b.Notification != nil && b.Notification.State == webhook.StateDelivered
	})
	n := b.Notification
	if n.EventID != got[0].ID || n.Attempts != 2 || n.LastStatus != 200 || n.DeliveredAt == nil || n.LastAttemptAt == nil || n.NextRetryAt != nil {
		t.Fatalf("notification %+v: want delivered in 2 attempts, last status 200", n)
	}

	// Re-send: the same webhook-id once more.
	if code := c.do("POST", "/v1/batches/"+id+"/notify", nil, nil); code != http.StatusAccepted {
		t.Fatalf("notify: status %d", code)
	}
	got = rcv.waitFor(20*time.Second, "want the re-sent event", func(d []delivery) bool { return len(d) >= 3 })
	if got[2].ID != got[0].ID {
		t.Fatalf("re-sent %s, want %s", got[2].ID, got[0].ID)
	}

	// A single distribution with a notify_url.
	r := req("a1HookSingle")
	r.NotifyURL = rcv.url()
	d := c.submit(r)
	got = rcv.waitFor(30*time.Second, "want distribution.finished", func(d []delivery) bool { return len(d) >= 4 })
	data, _ = got[3].Body["data"].(map[string]any)
	if got[3].Body["type"] != "distribution.finished" || data["id"] != d.ID || data["state"] != "succeeded" || got[3].ID == got[0].ID {
		t.Fatalf("single event %+v: want distribution.finished of %s, succeeded, with its own id", got[3], d.ID)
	}
	{
		m := scrape(t, st.MetricsURLs[0]+"/metrics")
		if f := m["distq_webhook_deliveries_total"]; f == nil || f.sum(map[string]string{"outcome": "delivered"}) < 3 || f.sum(map[string]string{"outcome": "http_error"}) != 1 {
			t.Errorf("distq_webhook_deliveries_total: %+v, want 3 delivered and 1 http_error", f)
		}
		if m["distq_webhook_delivery_duration_seconds"] == nil {
			t.Errorf("no distq_webhook_delivery_duration_seconds")
		}
	}
	// No item of a batch was announced alone.
	for _, g := range got {
		if g.Body["type"] == "distribution.finished" && g.Body["data"].(map[string]any)["batch_id"] != nil {
			t.Errorf("a batch item was announced alone: %+v", g)
		}
	}
}

// A receiver that is down for a while gets the event when it comes back.
func TestWebhookReceiverDownThenBack(t *testing.T) {
	t.Parallel()
	rcv := newHookReceiver(t, always(http.StatusNoContent)) // not started: connections are refused
	st := startStack(t, devstack.Options{Sim: fastSim(), Env: hookEnv(rcv.addr), Worker: app.WorkerOptions{Webhooks: fastHooks()}})
	c := newAPI(t, st.APIURL, st.Token)
	id := c.submitBatch(rcv.url(), "a1Down1", "a1Down2")
	b := c.batchUntil(id, 30*time.Second, "want failed attempts while the receiver is down", func(b batchWithNotification) bool {
		return b.Notification != nil && b.Notification.Attempts >= 3
	})
	if n := b.Notification; n.State != webhook.StatePending || n.LastStatus != 0 || n.LastError == "" || n.NextRetryAt == nil {
		t.Fatalf("while down: %+v, want pending with an error and a next retry", n)
	}
	if strings.Contains(b.Notification.LastError, "distq-events") {
		t.Errorf("last_error shows the URL: %q", b.Notification.LastError)
	}
	rcv.start()
	got := rcv.waitFor(30*time.Second, "want the event once the receiver is back", func(d []delivery) bool { return len(d) >= 1 })
	if got[0].ID != b.Notification.EventID || got[0].Body["type"] != "batch.finished" {
		t.Fatalf("delivered %+v, want event %s", got[0], b.Notification.EventID)
	}
	c.batchUntil(id, 10*time.Second, "want delivered", func(b batchWithNotification) bool {
		return b.Notification.State == webhook.StateDelivered && b.Notification.LastStatus == http.StatusNoContent
	})
}

// A worker that dies as the batch finishes, before any delivery: the
// event was written with the batch's last state, and the next worker
// delivers exactly that one event.
func TestWebhookSurvivesWorkerDeathAtTheEnd(t *testing.T) {
	t.Parallel()
	rcv := newHookReceiver(t, always(http.StatusOK))
	rcv.start()
	db := redistest.New(t)
	env := hookEnv(rcv.addr)
	ctx := context.Background()
	// First stack: its worker finishes the batch but never delivers (as if
	// killed right after the last item's final state was written).
	first, err := devstack.Start(ctx, devstack.Options{RedisURL: db.URL(), Sim: fastSim(), Env: env,
		Worker: app.WorkerOptions{Webhooks: notify.Options{Disabled: true}}})
	if err != nil {
		t.Fatal(err)
	}
	c := newAPI(t, first.APIURL, first.Token)
	id := c.submitBatch(rcv.url(), "a1Crash1", "a1Crash2", "a1Crash3")
	b := c.batchUntil(id, 30*time.Second, "want done with an event", func(b batchWithNotification) bool { return b.Done && b.Notification != nil })
	if b.Notification.State != webhook.StatePending || b.Notification.Attempts != 0 || len(rcv.deliveries()) != 0 {
		t.Fatalf("before any delivery: %+v, deliveries %+v", b.Notification, rcv.deliveries())
	}
	first.Stop()

	// Two new workers (and an api) on the same Redis.
	second, err := devstack.Start(ctx, devstack.Options{RedisURL: db.URL(), Sim: fastSim(), Env: env, Workers: 2,
		Worker: app.WorkerOptions{Webhooks: fastHooks()}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(second.Stop)
	c = newAPI(t, second.APIURL, second.Token)
	c.batchUntil(id, 30*time.Second, "want delivered", func(b batchWithNotification) bool {
		return b.Notification != nil && b.Notification.State == webhook.StateDelivered
	})
	// Once the outbox and the webhooks queue are empty, nothing more can
	// be sent: count what was.
	rdb := redis.NewClient(db.Options())
	defer rdb.Close()
	insp := asynq.NewInspectorFromRedisClient(rdb)
	deadline := time.Now().Add(20 * time.Second)
	for {
		outbox, err := rdb.ZCard(ctx, "distq:wh:outbox").Result()
		q, qerr := insp.GetQueueInfo(notify.Queue)
		if err == nil && qerr == nil && outbox == 0 && q.Pending+q.Active+q.Scheduled+q.Retry == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("outbox %d (%v), queue %+v (%v): not drained", outbox, err, q, qerr)
		}
		time.Sleep(50 * time.Millisecond) // poll with a deadline
	}
	got := rcv.deliveries()
	ids := map[string]bool{}
	for _, d := range got {
		ids[d.ID] = true
	}
	if len(ids) != 1 || !ids[b.Notification.EventID] {
		t.Fatalf("deliveries %+v: want one logical event, %s", got, b.Notification.EventID)
	}
}

// notify_url to the metadata address or an unlisted host is refused at
// submission; a listed name that resolves to a private address is refused
// at delivery, and no traffic leaves.
func TestWebhookDestinationsRefused(t *testing.T) {
	t.Parallel()
	hooks := fastHooks()
	hooks.Sender.Lookup = func(_ context.Context, host string) ([]netip.Addr, error) {
		if host == "hooks.corp.test" {
			return []netip.Addr{netip.MustParseAddr("10.0.0.1")}, nil
		}
		return nil, errors.New("no such host")
	}
	st := startStack(t, devstack.Options{Sim: fastSim(), Env: hookEnv("*.corp.test"), Worker: app.WorkerOptions{Webhooks: hooks}})
	c := newAPI(t, st.APIURL, st.Token)
	for _, u := range []string{"http://169.254.169.254/latest/meta-data/", "https://hooks.elsewhere.test/x", "http://127.0.0.1:1/x", "ftp://hooks.corp.test/x"} {
		var e struct {
			Error struct {
				Code    string `json:"code"`
				Details []struct{ Field, Message string }
			} `json:"error"`
		}
		r := req("a1Refused")
		r.NotifyURL = u
		if code := c.do("POST", "/v1/distributions", r, &e); code != http.StatusUnprocessableEntity || e.Error.Code != "validation_failed" {
			t.Errorf("notify_url %s: status %d %+v, want 422", u, code, e)
		}
		body := map[string]any{"source_instance_id": "iotx-oxssharez200", "target_instance_id": "iot-cn-6ja0000e2e", "notify_url": u, "items": []map[string]string{{"product_key": "a1Refused"}}}
		if code := c.do("POST", "/v1/batches", body, nil); code != http.StatusUnprocessableEntity {
			t.Errorf("batch notify_url %s: status %d, want 422", u, code)
		}
	}
	id := c.submitBatch("http://hooks.corp.test:8080/x", "a1Private")
	b := c.batchUntil(id, 30*time.Second, "want a refused attempt", func(b batchWithNotification) bool {
		return b.Notification != nil && b.Notification.Attempts >= 1
	})
	if n := b.Notification; n.State != webhook.StatePending || n.LastStatus != 0 || !strings.Contains(n.LastError, "not public") {
		t.Fatalf("notification %+v: want pending, refused as not public", n)
	}
	m := scrape(t, st.MetricsURLs[0]+"/metrics")
	if f := m["distq_webhook_deliveries_total"]; f == nil || f.sum(map[string]string{"outcome": "refused"}) < 1 {
		t.Errorf("distq_webhook_deliveries_total: want refused ≥ 1")
	}
}

// Deliveries have their own asynq server and queue: a single
// distribution's event is delivered while a batch backlog, accepted
// before it, still waits on the Alibaba quota in a worker of one
// concurrent task.
func TestWebhookNotDelayedByTheQuotaBacklog(t *testing.T) {
	t.Parallel()
	rcv := newHookReceiver(t, always(http.StatusOK))
	rcv.start()
	env := hookEnv(rcv.addr)
	env["DISTQ_WORKER_CONCURRENCY"] = "1"
	st := startStack(t, devstack.Options{Sim: fastSim(), Env: env, Worker: app.WorkerOptions{Webhooks: fastHooks()}})
	c := newAPI(t, st.APIURL, st.Token)
	pks := make([]string, 40)
	for i := range pks {
		pks[i] = fmt.Sprintf("a1Backlog%02d", i)
	}
	backlog := c.submitBatch("", pks...)
	r := req("a1Urgent")
	r.NotifyURL = rcv.url()
	d := c.submit(r)
	got := rcv.waitFor(30*time.Second, "want the single distribution's event", func(d []delivery) bool { return len(d) >= 1 })
	var b batchWithNotification
	c.do("GET", "/v1/batches/"+backlog, nil, &b)
	if data, _ := got[0].Body["data"].(map[string]any); data["id"] != d.ID {
		t.Fatalf("event %+v, want %s's", got[0], d.ID)
	}
	if b.Done || b.Counts[distribution.StateQueued] < 10 {
		t.Fatalf("the backlog is nearly through (%+v) by the time the event came: the test shows nothing", b.Counts)
	}
}
