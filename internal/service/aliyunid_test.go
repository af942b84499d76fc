package service_test

import (
	"log/slog"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/distq/distq/internal/distribution"
	"github.com/distq/distq/internal/metrics"
	"github.com/distq/distq/internal/redistest"
	"github.com/distq/distq/internal/service"
	"github.com/distq/distq/internal/store"
)

// target_aliyun_id names the target account by its logon name: only the
// account's own (configured) logon name is accepted, so the field cannot
// carry a distribution to another account.
func TestTargetAliyunIDMustBeTheAccountsOwn(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name, configured, given string
		ok                      bool
	}{
		{name: "the account's own logon name", configured: "ops@example.com", given: "ops@example.com", ok: true},
		{name: "another account's logon name", configured: "ops@example.com", given: "someone@elsewhere.com"},
		{name: "no logon name configured", given: "ops@example.com"},
		{name: "none given", configured: "ops@example.com", ok: true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			st := store.NewRedis(redistest.New(t).Client, time.Hour)
			svc := service.New(service.Deps{
				Store: st, Idempotency: st, Enqueuer: &enqueuer{}, Changes: noChanges{},
				Accounts: []service.Account{{Name: "main", UID: uid, AliyunID: tt.configured, CreateQPS: 2, MaxJobs: 10, Default: true}},
				Metrics:  metrics.New(prometheus.NewRegistry()),
				Log:      slog.New(slog.DiscardHandler),
			})
			res, err := svc.DryRunBatch(t.Context(), "team-a", service.BatchRequest{Items: []service.BatchItem{{Request: distribution.Request{
				ProductKey: "a1Aliyun", SourceInstanceID: "iotx-oxssharez200", TargetInstanceID: "iot-cn-6ja0000demo", TargetAliyunID: tt.given}}}})
			if err != nil {
				t.Fatal(err)
			}
			if got := res.Results[0].Err == nil; got != tt.ok {
				t.Fatalf("accepted %t (%v), want %t", got, res.Results[0].Err, tt.ok)
			}
		})
	}
}
