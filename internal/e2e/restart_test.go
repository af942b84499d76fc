package e2e

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/distq/distq/client"
	"github.com/distq/distq/internal/devstack"
)

// A Redis restart mid-run: while Redis is down the api answers 503 with a
// clear error, promptly; after it comes back (AOF, appendfsync always) the
// api and workers reconnect and every distribution accepted with a 202
// finishes.
func TestRedisRestart(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Skip("redis-server is not installed (.ci/run installs it)")
	}
	addr, port := freeAddr(t)
	dir := t.TempDir()
	conf := filepath.Join(dir, "redis.conf")
	os.WriteFile(conf, []byte(fmt.Sprintf("port %d\nbind 127.0.0.1\nsave \"\"\nappendonly yes\nappendfsync always\ndir %s\n", port, dir)), 0o600)
	start := func() *exec.Cmd {
		cmd := exec.Command("redis-server", conf)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		waitPing(t, addr)
		return cmd
	}
	redisProc := start()
	t.Cleanup(func() { redisProc.Process.Kill(); redisProc.Wait() })

	sim := fastSim()
	sim.JobDuration = 2 * time.Second
	st, err := devstack.Start(context.Background(), devstack.Options{RedisURL: "redis://" + addr + "/0", Sim: sim})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.Stop)
	c := newAPI(t, st.APIURL, st.Token)
	var ids []string
	for i := range 5 {
		ids = append(ids, c.submit(req(fmt.Sprintf("a1restart%d", i))).ID)
	}

	// Down: SIGKILL, as a crash would.
	redisProc.Process.Kill()
	redisProc.Wait()
	began := time.Now()
	_, _, err = c.Submit(t.Context(), req("a1whiledown"), "")
	if e := apiError(t, err); e.Status != http.StatusServiceUnavailable || e.Code != "unavailable" || e.Message == "" {
		t.Fatalf("while Redis is down: %v, want 503 unavailable", e)
	}
	if took := time.Since(began); took > 10*time.Second {
		t.Fatalf("the 503 took %v", took)
	}
	if code := c.do("GET", "/readyz", nil, nil); code != http.StatusServiceUnavailable {
		t.Fatalf("readyz while Redis is down: %d, want 503", code)
	}

	// Up again, from its AOF.
	redisProc = start()
	for i := range 5 {
		var d *client.Distribution
		for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(200 * time.Millisecond) {
			var err error
			if d, _, err = c.Submit(t.Context(), req(fmt.Sprintf("a1after%d", i)), ""); err == nil {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("the api did not recover")
			}
		}
		ids = append(ids, d.ID)
	}
	for _, id := range ids {
		if d := c.waitFinal(id, 90*time.Second); d.State != client.StateSucceeded {
			t.Fatalf("%s after the restart: %+v (error %+v)", id, d, d.Error)
		}
	}
	// No distribution got two jobs.
	per := map[string]int{}
	for _, j := range st.Sim.Jobs() {
		per[j.ProductKey]++
	}
	for pk, n := range per {
		if n != 1 {
			t.Fatalf("product %s has %d jobs", pk, n)
		}
	}
}
