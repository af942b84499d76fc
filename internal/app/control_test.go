package app

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/distq/distq/internal/alibaba"
	"github.com/distq/distq/internal/config"
	"github.com/distq/distq/internal/control"
	"github.com/distq/distq/internal/metrics"
	"github.com/distq/distq/internal/redistest"
	"github.com/distq/distq/internal/service"
)

// The use cases check an operator's values before internal/control does,
// and the configuration checks the configured weights: all three must
// agree on the names and the bounds.
func TestOverrideBoundsAgree(t *testing.T) {
	t.Parallel()
	if service.LimitCreateQPS != string(control.CreateQPS) || service.LimitMaxJobs != string(control.MaxJobs) {
		t.Errorf("limit names: service %q %q, control %q %q", service.LimitCreateQPS, service.LimitMaxJobs, control.CreateQPS, control.MaxJobs)
	}
	if service.MinLimit != control.MinLimit || service.MaxLimit != control.MaxLimit {
		t.Errorf("limit bounds: service %d–%d, control %d–%d", service.MinLimit, service.MaxLimit, control.MinLimit, control.MaxLimit)
	}
	if service.MinWeight != control.MinWeight || service.MaxWeight != control.MaxWeight ||
		config.MinTeamWeight != control.MinWeight || config.MaxTeamWeight != control.MaxWeight {
		t.Errorf("weight bounds: service %d–%d, control %d–%d, config %d–%d", service.MinWeight, service.MaxWeight,
			control.MinWeight, control.MaxWeight, config.MinTeamWeight, config.MaxTeamWeight)
	}
	if service.OriginConfig != string(control.OriginConfig) || service.OriginOverride != string(control.OriginOverride) {
		t.Errorf("origins differ")
	}
}

// The limit gauges follow an override within a refresh, and come back to
// the configuration when it is cleared.
func TestLimitGaugesFollowOverrides(t *testing.T) {
	t.Parallel()
	db := redistest.New(t)
	cfg, err := config.ForWorker(func(k string) string {
		return map[string]string{"DISTQ_ALIBABA_UID": "111", "DISTQ_CREATE_QPS": "2", "DISTQ_MAX_JOBS": "10"}[k]
	})
	if err != nil {
		t.Fatal(err)
	}
	m := metrics.New(prometheus.NewRegistry())
	ctx, cancel := context.WithCancel(t.Context())
	st := control.NewStore(db.Client, controlBase(cfg))
	view := control.NewView(st, control.ViewOptions{Refresh: 50 * time.Millisecond})
	done := make(chan struct{})
	go func() { defer close(done); exportLimits(ctx, view, cfg, m, 50*time.Millisecond) }()
	defer func() { cancel(); <-done }()
	gauges := func() (float64, float64) {
		return testutil.ToFloat64(m.RateLimit.WithLabelValues("default", alibaba.ActionCreate)), testutil.ToFloat64(m.SlotsLimit.WithLabelValues("default"))
	}
	waitGauges := func(rate, slots float64) {
		t.Helper()
		deadline := time.Now().Add(3 * time.Second)
		for {
			r, s := gauges()
			if r == rate && s == slots {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("gauges %v %v, want %v %v", r, s, rate, slots)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	waitGauges(2, 10)
	if err := st.SetLimits(ctx, "default", "ops", control.Change{Limit: control.CreateQPS, Value: 1}, control.Change{Limit: control.MaxJobs, Value: 4}); err != nil {
		t.Fatal(err)
	}
	waitGauges(1, 4)
	if err := st.SetLimits(ctx, "default", "ops", control.Change{Limit: control.CreateQPS}, control.Change{Limit: control.MaxJobs}); err != nil {
		t.Fatal(err)
	}
	waitGauges(2, 10)
}
