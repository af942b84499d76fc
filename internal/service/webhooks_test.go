package service_test

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/distq/distq/internal/devices"
	"github.com/distq/distq/internal/distribution"
	"github.com/distq/distq/internal/metrics"
	"github.com/distq/distq/internal/redistest"
	"github.com/distq/distq/internal/service"
	"github.com/distq/distq/internal/store"
	"github.com/distq/distq/internal/webhook"
)

func newHookService(t *testing.T) (*service.Service, *store.Redis) {
	t.Helper()
	st := store.NewRedis(redistest.New(t).Client, time.Hour)
	allowed, err := webhook.ParseAllowlist("hooks.example.com,10.9.8.7")
	if err != nil {
		t.Fatal(err)
	}
	return service.New(service.Deps{
		Store: st, Idempotency: st, Enqueuer: &enqueuer{}, Changes: noChanges{},
		Accounts: []service.Account{{Name: "main", UID: uid, CreateQPS: 2, MaxJobs: 10, Default: true}},
		Webhooks: service.Webhooks{Teams: map[string]bool{team: true}, Allowed: allowed, Events: st},
		Metrics:  metrics.New(prometheus.NewRegistry()),
		Log:      slog.New(slog.NewTextHandler(io.Discard, nil)),
	}), st
}

func wantInvalidField(t *testing.T, err error, field string) {
	t.Helper()
	e, ok := service.AsError(err)
	if !ok || e.Code != service.CodeInvalid || len(e.Fields) != 1 || e.Fields[0].Field != field {
		t.Fatalf("error %v, want %s on %s", err, service.CodeInvalid, field)
	}
}

func TestNotifyURLIsChecked(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	svc, _ := newHookService(t)
	req := func(pk, url string) distribution.Request {
		return distribution.Request{ProductKey: pk, SourceInstanceID: "iotx-src", TargetInstanceID: "iotx-dst", NotifyURL: url}
	}
	for _, url := range []string{"https://evil.example.org/x", "http://169.254.169.254/", "http://10.0.0.1/x", "gopher://hooks.example.com/"} {
		_, err := svc.Submit(ctx, team, req("a1Bad", url))
		wantInvalidField(t, err, "notify_url")
	}
	_, err := svc.Submit(ctx, "team-without-secret", req("a1NoSecret", "https://hooks.example.com/x"))
	wantInvalidField(t, err, "notify_url")
	d, err := svc.Submit(ctx, team, req("a1Good", "https://hooks.example.com/x"))
	if err != nil || d.NotifyURL != "https://hooks.example.com/x" {
		t.Fatalf("submit: %+v, %v", d, err)
	}
	// A private address named exactly is allowed.
	if _, err := svc.Submit(ctx, team, req("a1Named", "http://10.9.8.7:8080/x")); err != nil {
		t.Fatal(err)
	}

	// A batch: its notify_url is the batch's; an item may not set one.
	res, err := svc.SubmitBatch(ctx, team, service.BatchRequest{
		Defaults: req("", "https://hooks.example.com/batch"),
		Items:    []service.BatchItem{{Request: distribution.Request{ProductKey: "a1B1"}}, {Request: distribution.Request{ProductKey: "a1B2", NotifyURL: "https://hooks.example.com/item"}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Batch.NotifyURL != "https://hooks.example.com/batch" || res.Accepted != 1 || res.Results[1].Err == nil {
		t.Fatalf("batch %+v, results %+v", res.Batch, res.Results)
	}
	wantInvalidField(t, res.Results[1].Err, "notify_url")
	_, err = svc.SubmitBatch(ctx, team, service.BatchRequest{Defaults: req("", "http://127.0.0.1/x"), Items: []service.BatchItem{{Request: distribution.Request{ProductKey: "a1B3"}}}})
	wantInvalidField(t, err, "notify_url")

	// Not finished: no event, and nothing to re-send.
	if _, err := svc.Notify(ctx, team, res.Batch.ID); !service.IsCode(err, service.CodeInvalidState) {
		t.Fatalf("notify before done: %v", err)
	}
	// Finished by a cancel: the view shows the event, a re-send keeps its id.
	if _, err := svc.CancelBatch(ctx, team, res.Batch.ID); err != nil {
		t.Fatal(err)
	}
	v, err := svc.Batch(ctx, team, res.Batch.ID)
	if err != nil || !v.Done || v.Notification == nil || v.Notification.Type != webhook.TypeBatchFinished || v.Notification.State != webhook.StatePending {
		t.Fatalf("done batch %+v (%v)", v, err)
	}
	again, err := svc.Notify(ctx, team, res.Batch.ID)
	if err != nil || again.Notification == nil || again.Notification.ID != v.Notification.ID {
		t.Fatalf("re-send: %+v (%v), want event %s", again, err, v.Notification.ID)
	}
	if _, err := svc.Notify(ctx, "team-b", res.Batch.ID); !service.IsCode(err, service.CodeNotFound) {
		t.Fatalf("another team's batch: %v", err)
	}
}

func TestAwaitBatchReturnsAtOnceWhenTheCountsDiffer(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	svc, _ := newHookService(t)
	res, err := svc.SubmitBatch(ctx, team, service.BatchRequest{
		Defaults: distribution.Request{SourceInstanceID: "iotx-src", TargetInstanceID: "iotx-dst"},
		Items:    []service.BatchItem{{Request: distribution.Request{ProductKey: "a1W1"}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	v, err := svc.AwaitBatch(ctx, team, res.Batch.ID, "0-0-0-0-0-0", 30*time.Second)
	if err != nil || v.Revision() != "1-0-0-0-0-0" || time.Since(start) > 10*time.Second {
		t.Fatalf("await with other counts: %+v (%v) after %v", v, err, time.Since(start))
	}
	// No revision to compare with: at once, however long the wait (the
	// context would end the call first if it waited).
	quick, cancelQuick := context.WithTimeout(ctx, 5*time.Second)
	defer cancelQuick()
	if v, err := svc.AwaitBatch(quick, team, res.Batch.ID, "", 30*time.Second); err != nil || v.Revision() != "1-0-0-0-0-0" {
		t.Fatalf("await without a revision: %+v (%v), want the batch at once", v, err)
	}
	// The same counts and no change: the wait runs out.
	short, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	v, err = svc.AwaitBatch(short, team, res.Batch.ID, v.Revision(), 200*time.Millisecond)
	if err != nil || v.Revision() != "1-0-0-0-0-0" {
		t.Fatalf("await unchanged: %+v (%v)", v, err)
	}
}

type deviceEnqueuer struct{ jobs []int }

func (e *deviceEnqueuer) SubmitDeviceJobs(_ context.Context, _ string, jobs []int) error {
	e.jobs = append(e.jobs, jobs...)
	return nil
}

// A device distribution's notify_url is checked like a distribution's and
// kept; GetDevices shows its event's delivery state once it has one.
func TestDeviceNotifyURL(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := store.NewRedis(redistest.New(t).Client, time.Hour)
	allowed, err := webhook.ParseAllowlist("hooks.example.com")
	if err != nil {
		t.Fatal(err)
	}
	svc := service.New(service.Deps{
		Store: st, Idempotency: st, Enqueuer: &enqueuer{}, Changes: noChanges{},
		Accounts: []service.Account{{Name: "main", UID: uid, CreateQPS: 2, MaxJobs: 10, Default: true}},
		Webhooks: service.Webhooks{Teams: map[string]bool{team: true}, Allowed: allowed, Events: st},
		Devices:  service.DeviceDeps{Store: st, Enqueuer: &deviceEnqueuer{}},
		Metrics:  metrics.New(prometheus.NewRegistry()),
		Log:      slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	req := func(url string) devices.Request {
		return devices.Request{ProductKey: "a1Dev", SourceInstanceID: "iotx-src", TargetInstanceID: "iotx-dst",
			DeviceNames: []string{"dev-0001", "dev-0002"}, NotifyURL: url}
	}
	for _, url := range []string{"https://evil.example.org/x", "http://169.254.169.254/", "ftp://hooks.example.com/"} {
		_, err := svc.SubmitDevices(ctx, team, req(url))
		wantInvalidField(t, err, "notify_url")
	}
	_, err = svc.SubmitDevices(ctx, "team-without-secret", req("https://hooks.example.com/x"))
	wantInvalidField(t, err, "notify_url")

	v, err := svc.SubmitDevices(ctx, team, req("https://hooks.example.com/dev"))
	if err != nil || v.NotifyURL != "https://hooks.example.com/dev" {
		t.Fatalf("submit: %+v, %v", v, err)
	}
	if got, err := svc.GetDevices(ctx, team, v.ID); err != nil || got.NotifyURL != v.NotifyURL || got.Notification != nil {
		t.Fatalf("get before the end: %+v, %v", got, err)
	}
	if _, err := svc.CancelDevices(ctx, team, v.ID); err != nil {
		t.Fatal(err)
	}
	got, err := svc.GetDevices(ctx, team, v.ID)
	if err != nil || got.Notification == nil || got.Notification.Type != webhook.TypeDeviceDistributionFinished ||
		got.Notification.State != webhook.StatePending || got.Notification.EventID == "" {
		t.Fatalf("get after the end: %+v, %v", got, err)
	}
}
