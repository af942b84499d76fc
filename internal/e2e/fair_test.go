package e2e

import (
	"context"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/distq/distq/internal/alisim"
	"github.com/distq/distq/internal/app"
	"github.com/distq/distq/internal/devstack"
	"github.com/distq/distq/internal/queue"
)

// Fair share between teams: team A's batch is queued first, team B's
// smaller batch a moment later; while both have a backlog the Creates
// alternate (weights 1:1), B does not wait behind A's backlog, and a single
// submission of a third team still goes before both. (distqbench -fair
// measures the same with the real margin and strict figures.)
func TestTeamsShareTheAccount(t *testing.T) {
	t.Parallel()
	st := startStack(t, devstack.Options{
		Sim: alisim.Config{JobDuration: 300 * time.Millisecond,
			QPS: map[string]float64{alisim.ActionCreateProductDistributeJob: 10}},
		Worker: app.WorkerOptions{Queue: queue.Options{PollInterval: 100 * time.Millisecond}},
		Env: map[string]string{
			"DISTQ_API_TOKENS": "teama:token-aaaaaaaa,teamb:token-bbbbbbbb,teamc:token-cccccccc",
			"DISTQ_CREATE_QPS": "10",
			"DISTQ_MAX_JOBS":   "10",
		},
	})
	batch := func(token, prefix string, n int) time.Time {
		items := make([]map[string]string, n)
		for i := range items {
			items[i] = map[string]string{"product_key": fmt.Sprintf("%s%03d", prefix, i)}
		}
		c := newAPI(t, st.APIURL, token)
		if code := c.do("POST", "/v1/batches", map[string]any{
			"source_instance_id": "iotx-oxssharez200", "target_instance_id": "iot-cn-6ja0000e2e", "items": items,
		}, nil); code != http.StatusAccepted {
			t.Fatalf("batch %s: status %d", prefix, code)
		}
		return time.Now()
	}
	batch("token-aaaaaaaa", "fairaa", 120)
	time.Sleep(1500 * time.Millisecond)
	bAt := batch("token-bbbbbbbb", "fairbb", 20)
	time.Sleep(500 * time.Millisecond)
	c := newAPI(t, st.APIURL, "token-cccccccc")
	single := c.submit(req("fairccsingle"))
	if got := c.waitFinal(single.ID, 60*time.Second); got.State != "succeeded" {
		t.Fatalf("single: %+v", got)
	}
	deadline := time.Now().Add(90 * time.Second)
	for len(st.Sim.Jobs()) < 141 && time.Now().Before(deadline) {
		time.Sleep(200 * time.Millisecond)
	}
	jobs := st.Sim.Jobs()
	sort.Slice(jobs, func(i, j int) bool { return jobs[i].Created.Before(jobs[j].Created) })
	var order []string
	var tl []string
	for _, j := range jobs {
		order = append(order, j.ProductKey[:6])
		tl = append(tl, fmt.Sprintf("%s@%.2f", j.ProductKey[4:6], j.Created.Sub(jobs[0].Created).Seconds()))
	}
	t.Logf("timeline (B accepted at %.2f): %s", bAt.Sub(jobs[0].Created).Seconds(), strings.Join(tl, " "))
	if len(order) != 141 {
		t.Fatalf("%d remote jobs, want 141", len(order))
	}
	firstB, lastB := -1, -1
	for i, p := range order {
		if p == "fairbb" {
			if firstB < 0 {
				firstB = i
			}
			lastB = i
		}
	}
	a := 0
	for _, p := range order[firstB : lastB+1] {
		if p == "fairaa" {
			a++
		}
	}
	// 20 of B's Creates; with 1:1, about as many of A's in between.
	if share := 20 / float64(20+a); share < 0.4 || share > 0.65 {
		t.Errorf("B's share while both waited: %.2f (A sent %d between B's first and last), want ~0.5: %s",
			share, a, strings.Join(order, " "))
	}
	var firstBAt time.Time
	for _, j := range jobs {
		if strings.HasPrefix(j.ProductKey, "fairbb") {
			firstBAt = j.Created
			break
		}
	}
	// The newcomer goes within about one admission round, not after A's
	// backlog (which is ~10 s of Creates at this rate).
	if wait := firstBAt.Sub(bAt); wait > 2*time.Second {
		t.Errorf("B's first Create came %v after its batch was accepted", wait)
	}
	// The single submission went before the batch items queued with it:
	// at most a few admitted items were already granted.
	for i, p := range order {
		if p == "faircc" && i > firstB+10 {
			t.Errorf("the single submission was Create %d, B's first was %d", i, firstB)
		}
	}
}

// Weights changed at run time by an operator take effect on the next
// admissions: at 3:1 team A gets about three Creates for each of B's.
func TestWeightsChangedMidRun(t *testing.T) {
	t.Parallel()
	st, admin := adminStack(t, map[string]string{"DISTQ_CREATE_QPS": "10"},
		alisim.Config{JobDuration: 200 * time.Millisecond, QPS: map[string]float64{alisim.ActionCreateProductDistributeJob: 10}})
	submitBatch(t, st, "token-aaaaaaaa", "weighta", 120)
	submitBatch(t, st, "token-bbbbbbbb", "weightb", 60)
	deadline := time.Now().Add(30 * time.Second)
	for len(jobsWithPrefix(st.Sim, "weight")) < 20 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if _, err := admin.SetTeamWeight(context.Background(), "teama", 3); err != nil {
		t.Fatalf("set weight: %v", err)
	}
	changed := time.Now().Add(time.Second) // the workers' views refresh every 500 ms
	deadline = time.Now().Add(60 * time.Second)
	for len(jobsWithPrefix(st.Sim, "weightb")) < 60 && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	a, b := 0, 0
	for _, j := range jobsWithPrefix(st.Sim, "weight") {
		if j.Created.Before(changed) {
			continue
		}
		if strings.HasPrefix(j.ProductKey, "weighta") {
			a++
		} else {
			b++
		}
		if a+b == 40 {
			break
		}
	}
	if share := float64(b) / float64(a+b); share < 0.15 || share > 0.35 {
		t.Fatalf("after weights 3:1, B got %d of %d Creates (%.2f), want ~0.25", b, a+b, share)
	}
}

// A canceled batch leaves the fair queue with it: its hundreds of entries
// neither count in the team's backlog (and so in ETAs and the admin view)
// nor each take a turn beside another team's items.
func TestCanceledBatchLeavesTheFairQueue(t *testing.T) {
	t.Parallel()
	st, admin := adminStack(t, nil, alisim.Config{JobDuration: 200 * time.Millisecond})
	a := newAPI(t, st.APIURL, "token-aaaaaaaa")
	items := make([]map[string]string, 400)
	for i := range items {
		items[i] = map[string]string{"product_key": fmt.Sprintf("cancelfair%03d", i)}
	}
	var created struct {
		Batch struct{ ID string } `json:"batch"`
	}
	if code := a.do("POST", "/v1/batches", map[string]any{
		"source_instance_id": "iotx-oxssharez200", "target_instance_id": "iot-cn-6ja0000e2e", "items": items,
	}, &created); code != http.StatusAccepted {
		t.Fatalf("batch: %d", code)
	}
	if code := a.do("POST", "/v1/batches/"+created.Batch.ID+"/cancel", nil, nil); code != http.StatusOK {
		t.Fatalf("cancel: %d", code)
	}
	acct, err := admin.AdminAccount(context.Background(), "default")
	if err != nil {
		t.Fatal(err)
	}
	for _, tm := range acct.Teams {
		if tm.Team == "teama" && tm.Backlog != nil && *tm.Backlog > 0 {
			t.Errorf("team a's backlog after its batch was canceled: %d, want 0", *tm.Backlog)
		}
	}
	submitBatch(t, st, "token-bbbbbbbb", "cancelfairb", 4)
	start := time.Now()
	for len(jobsWithPrefix(st.Sim, "cancelfairb")) < 4 && time.Since(start) < 20*time.Second {
		time.Sleep(100 * time.Millisecond)
	}
	if n := len(jobsWithPrefix(st.Sim, "cancelfairb")); n != 4 || time.Since(start) > 10*time.Second {
		t.Fatalf("team b: %d of 4 created in %v after team a's batch was canceled", n, time.Since(start))
	}
}
