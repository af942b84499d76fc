package store

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/distq/distq/internal/devices"
	"github.com/distq/distq/internal/distribution"
	"github.com/distq/distq/internal/redistest"
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
