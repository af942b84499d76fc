package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/distq/distq/internal/devices"
	"github.com/distq/distq/internal/distribution"
	"github.com/distq/distq/internal/redistest"
	"github.com/distq/distq/internal/webhook"
)

func newDevices(team string, sizes ...int) (*devices.Record, [][]string) {
	now := time.Now().UTC()
	r := &devices.Record{ID: devices.NewID(now), Team: team, Account: "a", UID: "1", ProductKey: "pk",
		SourceInstanceID: "iotx-src", TargetInstanceIDs: []string{"iotx-dst"}, Strategy: devices.StrategySingle,
		CreatedAt: now, UpdatedAt: now}
	var names [][]string
	for n, size := range sizes {
		var ns []string
		for i := range size {
			ns = append(ns, fmt.Sprintf("dev-%d-%05d", n, i))
		}
		names = append(names, ns)
		r.Jobs = append(r.Jobs, devices.Job{Devices: size})
		r.Devices += size
	}
	r.Accepted(now)
	return r, names
}

// TestDevicesLife writes a device distribution, runs its job to the end
// with per-device outcomes, pages them, and retries its failed devices:
// the expiry follows the state.
func TestDevicesLife(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := redistest.New(t)
	s := NewRedis(db.Client, time.Hour)
	r, names := newDevices("t", 2500)
	if err := s.InsertDevices(ctx, r, names); err != nil {
		t.Fatal(err)
	}
	got, err := s.DeviceNames(ctx, r.ID, 0)
	if err != nil || !cmp.Equal(got, names[0]) {
		t.Fatalf("names: %d, %v", len(got), err)
	}
	if ids, _ := s.OpenDevices(ctx, time.Now().Add(time.Second), 10); !cmp.Equal(ids, []string{r.ID}) {
		t.Errorf("open = %v", ids)
	}
	now := time.Now()
	if _, err := s.UpdateDevices(ctx, r.ID, func(r *devices.Record) error { return r.StartCreate(0, now) }); err != nil {
		t.Fatal(err)
	}
	if _, err := s.UpdateDevices(ctx, r.ID, func(r *devices.Record) error { return r.StartCreate(0, now) }); !errors.As(err, new(*distribution.TransitionError)) {
		t.Errorf("second start: %v", err)
	}
	_, _ = s.UpdateDevices(ctx, r.ID, func(r *devices.Record) error { return r.Started(0, now, "J", nil) })
	var results []devices.Result
	for i, n := range names[0] {
		code := devices.CodeOK
		if i%100 == 7 {
			code = "iot.device.X"
		}
		results = append(results, devices.Result{DeviceName: n, Job: 0, Code: code, Message: "m\tx"})
	}
	if err := s.PutDeviceResults(ctx, r.ID, 0, results); err != nil {
		t.Fatal(err)
	}
	if err := s.PutDeviceResults(ctx, r.ID, 0, results); err != nil { // a repeat replaces
		t.Fatal(err)
	}
	page, total, err := s.DeviceResults(ctx, r.ID, 0, true, 10, 5)
	if err != nil || total != 25 || len(page) != 5 || page[0].DeviceName != names[0][1007] || page[0].Code != "iot.device.X" || page[0].Message != "m x" {
		t.Errorf("failed page = %+v of %d, %v", page, total, err)
	}
	if _, total, _ := s.DeviceResults(ctx, r.ID, 0, false, 0, 0); total != 2500 {
		t.Errorf("all = %d", total)
	}
	end, err := s.UpdateDevices(ctx, r.ID, func(r *devices.Record) error {
		return r.Ended(0, now, 2, devices.DetailsComplete, 2475, 25, nil)
	})
	if err != nil || end.State != devices.StateSucceeded {
		t.Fatalf("end: %v %v", end, err)
	}
	for _, k := range []string{keyDev(r.ID), keyDevNames(r.ID, 0), keyDevResults(r.ID, 0), keyDevFailed(r.ID, 0)} {
		if ttl := db.Client.TTL(ctx, k).Val(); ttl <= 0 || ttl > time.Hour {
			t.Errorf("TTL of %s = %v after the end", k, ttl)
		}
	}
	if ids, _ := s.OpenDevices(ctx, time.Now().Add(time.Second), 10); len(ids) != 0 {
		t.Errorf("open after the end = %v", ids)
	}
	if err := s.PutDeviceNames(ctx, r.ID, 1, [][]string{names[0][7:8]}); err != nil {
		t.Fatal(err)
	}
	re, err := s.UpdateDevices(ctx, r.ID, func(r *devices.Record) error {
		_, err := r.Retry(now, []int{0}, []int{25})
		return err
	})
	if err != nil || re.State != devices.StateRunning || len(re.Jobs) != 2 {
		t.Fatalf("retry: %+v %v", re, err)
	}
	if ttl := db.Client.TTL(ctx, keyDevNames(r.ID, 1)).Val(); ttl != -1 {
		t.Errorf("TTL of the retry's names = %v", ttl)
	}
	if ttl := db.Client.TTL(ctx, keyDev(r.ID)).Val(); ttl != -1 {
		t.Errorf("TTL of a retried record = %v", ttl)
	}
}

func TestListDevices(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := NewRedis(redistest.New(t).Client, time.Hour)
	var ids []string
	for range 7 {
		r, names := newDevices("t", 1)
		if err := s.InsertDevices(ctx, r, names); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, r.ID)
		o, names := newDevices("other", 1)
		_ = s.InsertDevices(ctx, o, names)
		time.Sleep(2 * time.Millisecond) // ids sort by creation
	}
	var got []string
	cursor := ""
	for {
		page, next, err := s.ListDevices(ctx, "t", cursor, 3)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range page {
			got = append(got, r.ID)
		}
		if next == "" {
			break
		}
		cursor = next
	}
	if !cmp.Equal(got, ids) {
		t.Errorf("listed %v, want %v", got, ids)
	}
}

// A device distribution with a notify_url writes its
// device_distribution.finished event in the transaction that ends it, once
// per end (a retry that ends again writes a new one); without a notify_url
// it writes none.
func TestDevicesFinishedEvent(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := NewRedis(redistest.New(t).Client, time.Hour)
	now := time.Now()

	plain, names := newDevices("t", 3)
	if err := s.InsertDevices(ctx, plain, names); err != nil {
		t.Fatal(err)
	}
	if _, err := s.UpdateDevices(ctx, plain.ID, func(r *devices.Record) error { _, err := r.Cancel(now); return err }); err != nil {
		t.Fatal(err)
	}
	if ev, err := s.DeviceEvent(ctx, plain.ID); err != nil || ev != nil || len(outbox(t, s)) != 0 {
		t.Fatalf("without notify_url: event %+v, %v, outbox %v", ev, err, outbox(t, s))
	}

	r, names := newDevices("t", 4, 2)
	r.NotifyURL = "https://hooks.example.com/dev"
	if err := s.InsertDevices(ctx, r, names); err != nil {
		t.Fatal(err)
	}
	step := func(fn func(r *devices.Record) error) {
		t.Helper()
		if _, err := s.UpdateDevices(ctx, r.ID, fn); err != nil {
			t.Fatal(err)
		}
	}
	for n := range 2 {
		step(func(r *devices.Record) error { return r.StartCreate(n, now) })
		step(func(r *devices.Record) error { return r.Started(n, now, fmt.Sprintf("J%d", n), nil) })
	}
	step(func(r *devices.Record) error { return r.Ended(0, now, 2, devices.DetailsComplete, 3, 1, nil) })
	if ev, _ := s.DeviceEvent(ctx, r.ID); ev != nil || len(outbox(t, s)) != 0 {
		t.Fatalf("event before the end: %+v", ev)
	}
	step(func(r *devices.Record) error { return r.Ended(1, now, 2, devices.DetailsComplete, 2, 0, nil) })
	ev, err := s.DeviceEvent(ctx, r.ID)
	if err != nil || ev == nil {
		t.Fatalf("no event after the end: %v", err)
	}
	if ev.Type != webhook.TypeDeviceDistributionFinished || ev.Subject != r.ID || ev.Team != "t" || ev.URL != r.NotifyURL ||
		ev.State != webhook.StatePending || !cmp.Equal(outbox(t, s), []string{ev.ID}) {
		t.Fatalf("event %+v, outbox %v", ev, outbox(t, s))
	}
	var body struct {
		Type string            `json:"type"`
		Data devices.EventData `json:"data"`
	}
	if err := json.Unmarshal(ev.Body, &body); err != nil {
		t.Fatal(err)
	}
	d := body.Data
	if body.Type != webhook.TypeDeviceDistributionFinished || d.ID != r.ID || d.State != devices.StateSucceeded ||
		d.Counts.Distributed != 5 || d.Counts.Failed != 1 || len(d.Jobs) != 2 || d.Jobs[1].JobID != "J1" ||
		d.Jobs[0].Failed != 1 || !d.DistributesProduct || d.FinishedAt == nil {
		t.Fatalf("body %s", ev.Body)
	}
	// A repeat of the end (a task run again) is no change: no second event.
	if _, err := s.UpdateDevices(ctx, r.ID, func(r *devices.Record) error {
		if r.State.Terminal() {
			return ErrNoChange
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(outbox(t, s)) != 1 {
		t.Fatalf("outbox after a repeat: %v", outbox(t, s))
	}

	// A retry that ends again announces again, with a new event.
	if err := s.PutDeviceNames(ctx, r.ID, 2, [][]string{names[0][:1]}); err != nil {
		t.Fatal(err)
	}
	step(func(r *devices.Record) error { _, err := r.Retry(now, []int{0}, []int{1}); return err })
	step(func(r *devices.Record) error { return r.StartCreate(2, now) })
	step(func(r *devices.Record) error { return r.Started(2, now, "J2", nil) })
	step(func(r *devices.Record) error { return r.Ended(2, now, 2, devices.DetailsComplete, 1, 0, nil) })
	again, err := s.DeviceEvent(ctx, r.ID)
	if err != nil || again == nil || again.ID == ev.ID || len(outbox(t, s)) != 2 {
		t.Fatalf("event after the retry: %+v, %v, outbox %v", again, err, outbox(t, s))
	}
	if err := json.Unmarshal(again.Body, &body); err != nil || body.Data.Counts.Distributed != 6 || body.Data.Counts.Failed != 0 {
		t.Fatalf("body after the retry %s, %v", again.Body, err)
	}
}
