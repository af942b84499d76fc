package e2e

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/distq/distq/client"
	"github.com/distq/distq/internal/app"
	"github.com/distq/distq/internal/devstack"
	"github.com/distq/distq/internal/distribution"
	"github.com/distq/distq/internal/queue"
	"github.com/distq/distq/internal/redistest"
	"github.com/distq/distq/internal/store"
)

// An api that crashed between writing a record and enqueueing its task
// leaves a queued record without a task: the reconciler enqueues it.
func TestReconcilerEnqueuesOrphans(t *testing.T) {
	t.Parallel()
	db := redistest.New(t)
	ctx := context.Background()
	now := time.Now().UTC()
	rec := &store.Record{
		Distribution: distribution.Distribution{
			ID: distribution.NewID(now), Team: devstack.DevTeam, Account: "default", ProductKey: "a1orphan",
			SourceInstanceID: "iotx-oxssharez200", TargetInstanceID: "iot-cn-6ja0000e2e", TargetUID: devstack.DevUID,
			State: distribution.StateQueued, CreatedAt: now, UpdatedAt: now,
		},
		UID: devstack.DevUID, Queue: queue.QueueSingle,
	}
	if _, err := store.NewRedis(redis.NewClient(db.Options()), time.Hour).Insert(ctx, nil, []*store.Record{rec}); err != nil {
		t.Fatal(err)
	}
	st, err := devstack.Start(ctx, devstack.Options{RedisURL: db.URL(), Sim: fastSim(),
		Worker: app.WorkerOptions{ReconcileInterval: 200 * time.Millisecond, Queue: queue.Options{OrphanAge: 100 * time.Millisecond}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.Stop)
	c := newAPI(t, st.APIURL, st.Token)
	if d := c.waitFinal(rec.ID, 30*time.Second); d.State != client.StateSucceeded {
		t.Fatalf("orphan: %+v", d)
	}
}

// syncBuffer is a log sink safe for concurrent writers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

// Secrets (the AccessKey secret, API tokens) never appear in logs, metrics,
// errors or responses — also when the endpoint refuses the signature.
func TestSecretsNeverLeak(t *testing.T) {
	t.Parallel()
	const secret = "wrong-secret-0123456789"
	logs := &syncBuffer{}
	st := startStack(t, devstack.Options{
		Sim: fastSim(),
		Env: map[string]string{"ALIBABA_CLOUD_ACCESS_KEY_SECRET": secret},
		Log: slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	})
	c := newAPI(t, st.APIURL, st.Token)
	d := c.submit(req("a1secret"))
	got := c.waitFinal(d.ID, 20*time.Second)
	if got.State != client.StateFailed {
		t.Fatalf("%+v", got)
	}
	var bodies strings.Builder
	for _, path := range []string{"/v1/distributions/" + d.ID, "/v1/distributions", "/metrics", "/openapi.yaml", "/readyz"} {
		_, raw, _ := c.raw("GET", path, nil, nil)
		bodies.Write(raw)
	}
	_, raw, _ := c.raw("GET", "/metrics", nil, nil)
	bodies.Write(raw)
	for _, u := range st.MetricsURLs {
		_, raw, _ := newAPI(t, u, "").raw("GET", "/metrics", nil, nil)
		bodies.Write(raw)
	}
	_, raw, _ = newAPI(t, st.APIURL, "wrong-token-xyz").raw("GET", "/v1/distributions", nil, nil)
	bodies.Write(raw)
	for what, text := range map[string]string{"logs": logs.String(), "responses": bodies.String()} {
		for _, s := range []string{secret, st.Token, "wrong-token-xyz"} {
			if strings.Contains(text, s) {
				t.Errorf("%s contain a secret (%q)", what, s[:6]+"…")
			}
		}
	}
	if !strings.Contains(logs.String(), "SignatureDoesNotMatch") {
		t.Error("the logs do not say why the distribution failed")
	}
}

// A token from DISTQ_API_TOKENS_FILE, which holds only its SHA-256, signs
// in as its team, and sees only that team's work.
func TestHashedTokenFile(t *testing.T) {
	t.Parallel()
	const token = "file-token-0123456789"
	sum := sha256.Sum256([]byte(token))
	path := filepath.Join(t.TempDir(), "tokens")
	os.WriteFile(path, []byte("# team sha256\nops "+hex.EncodeToString(sum[:])+"\n"), 0o600)
	st := startStack(t, devstack.Options{Sim: fastSim(), Env: map[string]string{"DISTQ_API_TOKENS_FILE": path}})
	dev := newAPI(t, st.APIURL, st.Token)
	ops := newAPI(t, st.APIURL, token)
	d := dev.submit(req("a1hashed"))
	if p, err := ops.List(t.Context(), client.ListOptions{}); err != nil || len(p.Items) != 0 {
		t.Fatalf("ops list: %v %+v, want 200 and none of dev's", err, p)
	}
	_, err := ops.Get(t.Context(), d.ID)
	if e := apiError(t, err); e.Status != http.StatusNotFound {
		t.Fatalf("ops reading dev's distribution: %v, want 404", e)
	}
	_, err = newAPI(t, st.APIURL, hex.EncodeToString(sum[:])).List(t.Context(), client.ListOptions{})
	if e := apiError(t, err); e.Status != http.StatusUnauthorized {
		t.Fatalf("the hash itself as a token: %v, want 401", e)
	}
}
