package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"os/signal"
	"syscall"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/distq/distq/internal/alisim"
	"github.com/distq/distq/internal/app"
	"github.com/distq/distq/internal/config"
	"github.com/distq/distq/internal/devstack"
	"github.com/distq/distq/internal/notify"
	"github.com/distq/distq/internal/queue"
	"github.com/distq/distq/internal/redistest"
)

// workerChildEnv marks the test binary re-executed as a worker process.
const workerChildEnv = "DISTQ_E2E_WORKER_CHILD"

// TestHelperWorkerProcess is not a test: TestWebhookAfterWorkerSIGKILL
// re-executes the test binary with workerChildEnv set to run a worker in a
// process of its own, which it kills with SIGKILL.
func TestHelperWorkerProcess(t *testing.T) {
	if os.Getenv(workerChildEnv) != "1" {
		t.Skip("the worker process of TestWebhookAfterWorkerSIGKILL")
	}
	cfg, err := config.ForWorker(os.Getenv)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	err = app.RunWorker(ctx, cfg, app.Logger(slog.LevelWarn), app.WorkerOptions{
		Webhooks: fastHooks(), ReconcileInterval: 200 * time.Millisecond, Queue: queue.Options{OrphanAge: 200 * time.Millisecond},
	}, nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Exit(0)
}

// A worker SIGKILLed as the batch finishes (the moment the api shows it
// done) still leads to exactly one logical event: the next worker process
// delivers the event the finishing transaction wrote, with its id; if the
// killed one had already sent it, the receiver sees that id twice, never
// another.
func TestWebhookAfterWorkerSIGKILL(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("starts worker processes")
	}
	rcv := newHookReceiver(t, always(http.StatusOK))
	rcv.start()
	db := redistest.New(t)
	sim := httptest.NewServer(alisim.New(alisim.Config{JobDuration: 300 * time.Millisecond,
		Accounts: []alisim.Account{{UID: devstack.DevUID, AccessKeyID: devstack.DevKeyID, AccessKeySecret: devstack.DevSecret}}}))
	defer sim.Close()
	env := map[string]string{
		"DISTQ_REDIS_URL": db.URL(), "DISTQ_ALIBABA_UID": devstack.DevUID, "DISTQ_ALIBABA_ENDPOINT": sim.URL,
		"ALIBABA_CLOUD_ACCESS_KEY_ID": devstack.DevKeyID, "ALIBABA_CLOUD_ACCESS_KEY_SECRET": devstack.DevSecret,
		"DISTQ_API_TOKENS": devstack.DevTeam + ":" + devstack.DevToken, "DISTQ_HTTP_ADDR": "127.0.0.1:0", "DISTQ_METRICS_ADDR": "127.0.0.1:0",
		"DISTQ_WEBHOOK_SECRETS": devstack.DevTeam + ":" + hookSecret, "DISTQ_WEBHOOK_ALLOWED_HOSTS": rcv.addr,
	}
	// The api, in this process.
	apiCfg, err := config.ForAPI(func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	apiAddr := make(chan string, 1)
	apiDone := make(chan struct{})
	go func() {
		defer close(apiDone)
		_ = app.RunAPI(ctx, apiCfg, slog.New(slog.DiscardHandler), func(a string) { apiAddr <- a })
	}()
	t.Cleanup(func() { cancel(); <-apiDone })
	c := newAPI(t, "http://"+<-apiAddr, devstack.DevToken)

	startWorker := func() *exec.Cmd {
		cmd := exec.Command(os.Args[0], "-test.run=^TestHelperWorkerProcess$")
		cmd.Env = append(os.Environ(), workerChildEnv+"=1")
		for k, v := range env {
			cmd.Env = append(cmd.Env, k+"="+v)
		}
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
		return cmd
	}
	first := startWorker()
	id := c.submitBatch(rcv.url(), "a1Kill1", "a1Kill2", "a1Kill3", "a1Kill4")
	// Long-poll the batch until it is done, then kill its worker at once.
	var b batchWithNotification
	etag := ""
	deadline := time.Now().Add(60 * time.Second)
	for !b.Done {
		if time.Now().After(deadline) {
			t.Fatalf("batch %s not done: %+v", id, b)
		}
		code, raw, header := c.raw("GET", "/v1/batches/"+id+"?wait=20s", nil, map[string]string{"If-None-Match": etag})
		if code != http.StatusOK {
			t.Fatalf("get batch: %d %s", code, raw)
		}
		etag = header.Get("ETag")
		b = decodeBatch(t, raw)
	}
	if err := first.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	first.Wait()
	if b.Notification == nil || b.Notification.EventID == "" {
		t.Fatalf("done batch without its event: %+v", b)
	}
	eventID := b.Notification.EventID

	startWorker()
	// The event is delivered (an attempt cut by the kill is recovered by
	// asynq after its lease, up to ~90 s), and then nothing is left to send.
	c.batchUntil(id, 150*time.Second, "want delivered", func(b batchWithNotification) bool {
		return b.Notification != nil && b.Notification.State == "delivered"
	})
	rdb := redis.NewClient(db.Options())
	defer rdb.Close()
	insp := asynq.NewInspectorFromRedisClient(rdb)
	deadline = time.Now().Add(150 * time.Second)
	for {
		outbox, err := rdb.ZCard(context.Background(), "distq:wh:outbox").Result()
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
	if len(got) == 0 || len(got) > 2 {
		t.Fatalf("deliveries %+v: want the event once, or twice when the kill cut an attempt", got)
	}
	for _, d := range got {
		if d.ID != eventID || d.Body["type"] != "batch.finished" {
			t.Fatalf("delivery %+v: want event %s only", d, eventID)
		}
	}
	t.Logf("event %s delivered %d time(s) across the kill", eventID, len(got))
}

func decodeBatch(t *testing.T, raw []byte) batchWithNotification {
	t.Helper()
	var b batchWithNotification
	if err := json.Unmarshal(raw, &b); err != nil {
		t.Fatalf("decode batch %s: %v", raw, err)
	}
	return b
}
