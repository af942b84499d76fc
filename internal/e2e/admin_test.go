package e2e

import (
	"context"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/distq/distq/client"
	"github.com/distq/distq/internal/alisim"
	"github.com/distq/distq/internal/app"
	"github.com/distq/distq/internal/devstack"
	"github.com/distq/distq/internal/queue"
)

const adminToken = "admin-token-e2e-0123"

func adminStack(t *testing.T, env map[string]string, sim alisim.Config) (*devstack.Stack, *client.Client) {
	t.Helper()
	e := map[string]string{
		"DISTQ_API_TOKENS":   "teama:token-aaaaaaaa,teamb:token-bbbbbbbb",
		"DISTQ_ADMIN_TOKENS": "ops:" + adminToken,
	}
	for k, v := range env {
		e[k] = v
	}
	st := startStack(t, devstack.Options{Sim: sim, Env: e,
		Worker: app.WorkerOptions{Queue: queue.Options{PollInterval: 100 * time.Millisecond}}})
	return st, client.New(st.APIURL, adminToken)
}

func submitBatch(t *testing.T, st *devstack.Stack, token, prefix string, n int) {
	t.Helper()
	items := make([]map[string]string, n)
	for i := range items {
		items[i] = map[string]string{"product_key": fmt.Sprintf("%s%03d", prefix, i)}
	}
	if code := newAPI(t, st.APIURL, token).do("POST", "/v1/batches", map[string]any{
		"source_instance_id": "iotx-oxssharez200", "target_instance_id": "iot-cn-6ja0000e2e", "items": items,
	}, nil); code != http.StatusAccepted {
		t.Fatalf("batch %s: status %d", prefix, code)
	}
}

func jobsWithPrefix(sim *alisim.Server, prefix string) []alisim.Job {
	var out []alisim.Job
	for _, j := range sim.Jobs() {
		if strings.HasPrefix(j.ProductKey, prefix) {
			out = append(out, j)
		}
	}
	sort.Slice(out, func(i, k int) bool { return out[i].Created.Before(out[k].Created) })
	return out
}

// An operator pauses one team: nothing of it is created (its single and
// its batch wait, saying paused) while the other team's work goes on; on
// resume everything of it is created.
func TestPausedTeamWaitsThenResumes(t *testing.T) {
	t.Parallel()
	st, admin := adminStack(t, nil, alisim.Config{JobDuration: 200 * time.Millisecond})
	ctx := context.Background()
	if _, err := admin.PauseTeam(ctx, "default", "teama"); err != nil {
		t.Fatalf("pause: %v", err)
	}
	pausedAt := time.Now()
	time.Sleep(700 * time.Millisecond) // the workers' views refresh every 500 ms
	submitBatch(t, st, "token-aaaaaaaa", "pausea", 4)
	a := newAPI(t, st.APIURL, "token-aaaaaaaa")
	single := a.submit(req("pauseasingle"))
	submitBatch(t, st, "token-bbbbbbbb", "pauseb", 4)
	deadline := time.Now().Add(30 * time.Second)
	for len(jobsWithPrefix(st.Sim, "pauseb")) < 4 && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	if n := len(jobsWithPrefix(st.Sim, "pauseb")); n != 4 {
		t.Fatalf("team b (not paused): %d of 4 created", n)
	}
	time.Sleep(time.Second)
	if jobs := jobsWithPrefix(st.Sim, "pausea"); len(jobs) != 0 {
		t.Fatalf("paused team a got %d remote jobs, %v after the pause: %+v", len(jobs), jobs[0].Created.Sub(pausedAt), jobs)
	}
	if got, err := a.Get(ctx, single.ID); err != nil || got.State != client.StateQueued || got.WaitReason != "paused" {
		t.Fatalf("paused single: %+v %v, want queued, paused", got, err)
	}
	if _, err := admin.ResumeTeam(ctx, "default", "teama"); err != nil {
		t.Fatalf("resume: %v", err)
	}
	if got := a.waitFinal(single.ID, 30*time.Second); got.State != client.StateSucceeded {
		t.Fatalf("single after resume: %+v", got)
	}
	deadline = time.Now().Add(30 * time.Second)
	for len(jobsWithPrefix(st.Sim, "pausea")) < 5 && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	if n := len(jobsWithPrefix(st.Sim, "pausea")); n != 5 {
		t.Fatalf("team a after resume: %d of 5 created", n)
	}
}

// An operator lowers the account's create_qps from 2 to 1 and back: the
// simulator sees the new rate within about a second each time.
func TestLiveCreateQPSChange(t *testing.T) {
	t.Parallel()
	st, admin := adminStack(t, map[string]string{"DISTQ_CREATE_QPS": "2"}, alisim.Config{JobDuration: 100 * time.Millisecond})
	ctx := context.Background()
	submitBatch(t, st, "token-aaaaaaaa", "liveqps", 24)
	// Let it run at 2/s for a while.
	deadline := time.Now().Add(30 * time.Second)
	for len(jobsWithPrefix(st.Sim, "liveqps")) < 4 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	one := 1
	if _, err := admin.SetLimits(ctx, "default", client.LimitsChange{CreateQPS: &one}); err != nil {
		t.Fatalf("set create_qps 1: %v", err)
	}
	lowered := time.Now()
	time.Sleep(6 * time.Second)
	if _, err := admin.SetLimits(ctx, "default", client.LimitsChange{ClearCreateQPS: true}); err != nil {
		t.Fatalf("clear create_qps: %v", err)
	}
	restored := time.Now()
	deadline = time.Now().Add(60 * time.Second)
	for len(jobsWithPrefix(st.Sim, "liveqps")) < 24 && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	jobs := jobsWithPrefix(st.Sim, "liveqps")
	if len(jobs) != 24 {
		t.Fatalf("%d of 24 created", len(jobs))
	}
	// From a second after the change to 1/s until it was restored, no two
	// Creates arrived closer than the 1/s rate allows (with slack for a
	// loaded machine); after the restore, some came at the 2/s spacing.
	var slowGaps, fastAfter int
	for i := 1; i < len(jobs); i++ {
		prev, cur := jobs[i-1].Created, jobs[i].Created
		gap := cur.Sub(prev)
		if prev.After(lowered.Add(time.Second)) && cur.Before(restored) {
			if gap < 800*time.Millisecond {
				t.Errorf("at 1/s two Creates arrived %v apart (%v, %v)", gap, prev, cur)
			}
			slowGaps++
		}
		if prev.After(restored.Add(time.Second)) && gap < 800*time.Millisecond {
			fastAfter++
		}
	}
	if slowGaps < 3 {
		t.Errorf("only %d Creates while at 1/s", slowGaps)
	}
	if fastAfter == 0 {
		t.Errorf("no Creates at the 2/s spacing after the restore")
	}
}
