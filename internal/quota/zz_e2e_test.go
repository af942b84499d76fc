package quota

import (
	"context"
	"fmt"
	"net/http/httptest"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/distq/distq/internal/alibaba"
	"github.com/distq/distq/internal/alisim"
	"github.com/distq/distq/internal/redistest"
)

func TestZZE2E(t *testing.T) {
	jit := os.Getenv("JIT") != ""
	db := redistest.New(t)
	sim := alisim.New(alisim.Config{
		Accounts:    []alisim.Account{{UID: "1234567890", AccessKeyID: "ak", AccessKeySecret: "sk"}},
		JobDuration: 100 * time.Millisecond,
	})
	if jit {
		sim.SetFaults(alisim.Faults{LatencyMin: 0, LatencyMax: 50 * time.Millisecond})
	}
	srv := httptest.NewServer(sim)
	defer srv.Close()
	cl, err := alibaba.NewClient(alibaba.Config{Endpoint: srv.URL, AccessKeyID: "ak", AccessKeySecret: "sk"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	var ls []*Limiter
	for p := range 3 {
		l := New(newClient(t, db), Options{})
		ls = append(ls, l)
		for g := range 4 {
			wg.Go(func() {
				for i := 0; ; i++ {
					if _, err := l.Wait(ctx, "1234567890", "CreateProductDistributeJob", 2, time.Minute); err != nil {
						return
					}
					t0 := time.Now()
					_, _, err := cl.Create(alibaba.CreateRequest{ProductKey: fmt.Sprintf("pk%d%d%d", p, g, i), SourceInstanceID: "iot-a", TargetInstanceID: "iot-b", TargetUID: "1234567890"})
					l.ObserveLatency(context.Background(), "1234567890", "CreateProductDistributeJob", time.Since(t0))
					if err != nil {
						t.Logf("create: %v", err)
					}
				}
			})
		}
	}
	wg.Wait()
	var ok, thr int
	var first, last time.Time
	for _, c := range sim.Audit() {
		if c.Action != "CreateProductDistributeJob" {
			continue
		}
		if c.HTTPStatus == 200 {
			ok++
			if first.IsZero() {
				first = c.Arrived
			}
			last = c.Arrived
		} else {
			thr++
		}
	}
	m, _ := ls[0].Margin(context.Background(), "1234567890", "CreateProductDistributeJob")
	t.Logf("jitter=%v ok=%d refused=%d utilization=%.1f%% margin=%v", jit, ok, thr, 100*float64(ok-1)/(last.Sub(first).Seconds()*2), m)
}
