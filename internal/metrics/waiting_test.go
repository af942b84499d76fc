package metrics_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/distq/distq/internal/distribution"
	"github.com/distq/distq/internal/metrics"
	"github.com/distq/distq/internal/redistest"
	"github.com/distq/distq/internal/store"
)

// distq_distributions_waiting is shared state: two workers scraped at any
// time export the same value, equal to the queued distributions that wait,
// and it follows each change at once (no refresh interval).
func TestWaitingGaugeIsTheSameOnEveryWorker(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := redistest.New(t)
	st := store.NewRedis(db.Client, time.Hour)
	accounts := []string{"main", "other"}
	reasons := []distribution.WaitReason{distribution.WaitRateLimit, distribution.WaitJobSlots, distribution.WaitBackoff}
	read := func(ctx context.Context) (map[[2]string]int64, error) { return st.Waiting(ctx, accounts, reasons) }
	workers := []*prometheus.Registry{prometheus.NewRegistry(), prometheus.NewRegistry()}
	for _, reg := range workers {
		reg.MustRegister(metrics.NewWaitingCollector(accounts, read))
	}
	var recs []*store.Record
	for i := range 12 {
		now := time.Now()
		r := &store.Record{Distribution: distribution.Distribution{
			ID: distribution.NewID(now), Team: "t", Account: accounts[i%2], ProductKey: fmt.Sprintf("pk%d", i),
			SourceInstanceID: "iotx-a", TargetInstanceID: "iotx-b", State: distribution.StateQueued, CreatedAt: now, UpdatedAt: now,
		}, UID: "1", Queue: "single"}
		recs = append(recs, r)
	}
	if _, err := st.Insert(ctx, nil, recs); err != nil {
		t.Fatal(err)
	}
	set := func(r *store.Record, state distribution.State, reason distribution.WaitReason) {
		t.Helper()
		if _, err := st.Update(ctx, r.ID, func(x *store.Record) error {
			x.State, x.WaitReason = state, reason
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	want := map[[2]string]float64{}
	check := func(when string) {
		t.Helper()
		for i, reg := range workers {
			for _, a := range accounts {
				for _, r := range metrics.WaitReasons {
					g, err := reg.Gather()
					if err != nil {
						t.Fatal(err)
					}
					got := gaugeValue(g, a, r)
					if got != want[[2]string{a, r}] {
						t.Errorf("%s: worker %d: waiting{account=%s,reason=%s} = %v, want %v", when, i, a, r, got, want[[2]string{a, r}])
					}
				}
			}
		}
	}
	check("nothing waits")
	// 0-3 wait for the rate, 4-5 for slots, 6 backs off; 7 queued without reason.
	for i, r := range recs[:7] {
		reason := distribution.WaitRateLimit
		switch {
		case i >= 6:
			reason = distribution.WaitBackoff
		case i >= 4:
			reason = distribution.WaitJobSlots
		}
		set(r, distribution.StateQueued, reason)
		want[[2]string{r.Account, string(reason)}]++
	}
	check("after the waits")
	// 0 is submitted, 4 now waits for the rate, 6 fails: each leaves at once.
	set(recs[0], distribution.StateSubmitting, "")
	want[[2]string{recs[0].Account, "rate_limit"}]--
	set(recs[4], distribution.StateQueued, distribution.WaitRateLimit)
	want[[2]string{recs[4].Account, "job_slots"}]--
	want[[2]string{recs[4].Account, "rate_limit"}]++
	set(recs[6], distribution.StateFailed, "")
	want[[2]string{recs[6].Account, "backoff"}]--
	check("after the changes")
	fams, err := workers[0].Gather()
	if err != nil || len(fams) != 1 || len(fams[0].GetMetric()) != len(accounts)*len(metrics.WaitReasons) {
		t.Fatalf("gathered %v, %v; want one family of %d series", fams, err, len(accounts)*len(metrics.WaitReasons))
	}
}

func gaugeValue(fams []*dto.MetricFamily, account, reason string) float64 {
	for _, f := range fams {
		if f.GetName() != "distq_distributions_waiting" {
			continue
		}
		for _, m := range f.GetMetric() {
			ls := map[string]string{}
			for _, l := range m.GetLabel() {
				ls[l.GetName()] = l.GetValue()
			}
			if ls["account"] == account && ls["reason"] == reason {
				return m.GetGauge().GetValue()
			}
		}
	}
	return -1
}
