package e2e

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/distq/distq/client"
	"github.com/distq/distq/internal/alisim"
	"github.com/distq/distq/internal/devstack"
)

// Two accounts in one process: each is limited on its own, and two entries
// with one UID (two AccessKeys of one account) share one budget.
func TestAccountsAreLimitedByUID(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "accounts.yaml")
	os.WriteFile(path, []byte(`
- name: shop
  uid: "1111"
  access_key_id: shop-key
  access_key_secret: shop-secret
  max_jobs: 3
  default: true
- name: shop-ci
  uid: "1111"
  access_key_id: shop-ci-key
  access_key_secret: shop-ci-secret
  max_jobs: 3
- name: lab
  uid: "2222"
  access_key_id: lab-key
  access_key_secret: lab-secret
  max_jobs: 3
`), 0o600)
	sim := alisim.Config{
		JobDuration: 400 * time.Millisecond, MaxJobs: 3,
		Accounts: []alisim.Account{
			{UID: "1111", AccessKeyID: "shop-key", AccessKeySecret: "shop-secret"},
			{UID: "1111", AccessKeyID: "shop-ci-key", AccessKeySecret: "shop-ci-secret"},
			{UID: "2222", AccessKeyID: "lab-key", AccessKeySecret: "lab-secret"},
		},
	}
	st := startStack(t, devstack.Options{Sim: sim, Workers: 2, Env: map[string]string{"DISTQ_ACCOUNTS_FILE": path}})
	c := newAPI(t, st.APIURL, st.Token)
	var ids []string
	for i := range 6 {
		for _, acct := range []string{"shop", "shop-ci", "lab"} {
			r := req(fmt.Sprintf("a1%s%d", strings.ReplaceAll(acct, "-", ""), i))
			r.Account = acct
			ids = append(ids, c.submit(r).ID)
		}
	}
	for _, id := range ids {
		if d := c.waitFinal(id, 60*time.Second); d.State != client.StateSucceeded {
			t.Fatalf("%s: %+v (error %+v)", id, d, d.Error)
		}
	}
	perUID := map[string][]time.Time{}
	throttled := 0
	for _, call := range st.Sim.Audit() {
		if call.Action != alisim.ActionCreateProductDistributeJob {
			continue
		}
		if call.Outcome == alisim.OutcomeThrottled {
			throttled++
		}
		perUID[call.UID] = append(perUID[call.UID], call.Arrived)
	}
	if throttled != 0 {
		t.Fatalf("%d throttled Creates, want 0", throttled)
	}
	if len(perUID["1111"]) != 12 || len(perUID["2222"]) != 6 {
		t.Fatalf("creates per uid: 1111=%d 2222=%d, want 12 and 6", len(perUID["1111"]), len(perUID["2222"]))
	}
	for uid, ts := range perUID {
		if n := maxPerSecond(ts); n > 2 {
			t.Fatalf("uid %s: %d Creates in one second, want <= 2 (shared by its keys)", uid, n)
		}
	}
	// Each UID's jobs stay within its own 3.
	byUID := map[string][]alisim.Job{}
	for _, j := range st.Sim.Jobs() {
		byUID[j.UID] = append(byUID[j.UID], j)
	}
	for uid, jobs := range byUID {
		if p := peakJobs(jobs); p > 3 {
			t.Fatalf("uid %s: %d unfinished jobs at once, want <= 3", uid, p)
		}
	}
	_, _, err := c.Submit(t.Context(), client.DistributionRequest{Account: "nope", ProductKey: "a1x", SourceInstanceID: "iotx-a", TargetInstanceID: "iotx-b"}, "")
	if e := apiError(t, err); e.Status != http.StatusUnprocessableEntity {
		t.Fatalf("unknown account: %v, want 422", e)
	}
}

func maxPerSecond(ts []time.Time) int {
	best := 0
	for i := range ts {
		n := 0
		for j := range ts {
			if d := ts[j].Sub(ts[i]); d >= 0 && d < time.Second {
				n++
			}
		}
		best = max(best, n)
	}
	return best
}
