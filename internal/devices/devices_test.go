package devices

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/distq/distq/internal/distribution"
)

const uid = "1234567890123456"

func names(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("dev-%06d", i)
	}
	return out
}

func TestSplit(t *testing.T) {
	t.Parallel()
	all := names(25000)
	var sizes []int
	var joined []string
	for _, p := range Split(all) {
		sizes = append(sizes, len(p))
		joined = append(joined, p...)
	}
	if !cmp.Equal(sizes, []int{10000, 10000, 5000}) || !cmp.Equal(joined, all) {
		t.Errorf("sizes %v; every name once in order: %v", sizes, cmp.Equal(joined, all))
	}
	if got := Split(nil); len(got) != 0 {
		t.Errorf("Split(nil) = %v", got)
	}
}

func TestHolder(t *testing.T) {
	t.Parallel()
	id := NewID(time.Now())
	h := Holder(id, 12)
	gotID, n, ok := ParseHolder(h)
	if !ok || gotID != id || n != 12 || !IsHolder(h) {
		t.Errorf("ParseHolder(%q) = %q %d %v", h, gotID, n, ok)
	}
	for _, bad := range []string{"d_0000000000ab_0000000001", "dev:x:1", "dev:" + id, "dev:" + id + ":-1", "dev:" + id + ":a"} {
		if _, _, ok := ParseHolder(bad); ok {
			t.Errorf("ParseHolder(%q) accepted", bad)
		}
	}
	if !ValidID(id) || ValidID("d"+id[1:]) || IDFloor(time.Now().Add(-time.Hour)) >= id {
		t.Errorf("id %q: shape or order wrong", id)
	}
}

func fields(err error) []string {
	var ve *distribution.ValidationError
	if !errors.As(err, &ve) {
		return nil
	}
	var out []string
	for _, f := range ve.Fields {
		out = append(out, f.Field)
	}
	return out
}

func TestValidate(t *testing.T) {
	t.Parallel()
	ok := func() Request {
		return Request{ProductKey: "a1Prod", SourceInstanceID: "iotx-oxssharez200", TargetInstanceID: "iot-cn-target", DeviceNames: names(3)}
	}
	r := ok()
	if err := r.Validate(uid); err != nil {
		t.Fatal(err)
	}
	if r.Strategy != StrategySingle || !cmp.Equal(r.TargetInstanceIDs, []string{"iot-cn-target"}) || r.TargetInstanceID != "" || r.TargetUID != uid {
		t.Errorf("normalised = %+v", r)
	}
	n := Request{ProductKey: "a1Prod", SourceInstanceID: "iotx-oxssharez200", Strategy: StrategyNearest,
		TargetInstanceIDs: []string{"iotx-oxssharez300", "iotx-oxssharez400"}, DeviceNames: []string{"a@b.c:d-e_f"}}
	if err := n.Validate(uid); err != nil {
		t.Fatalf("nearest: %v", err)
	}
	tests := []struct {
		name string
		mod  func(*Request)
		want []string
	}{
		{"no names", func(r *Request) { r.DeviceNames = nil }, []string{"device_names"}},
		{"bad names", func(r *Request) {
			r.DeviceNames = []string{"abc", "ok-name", "with space", strings.Repeat("x", 33), "ok-name"}
		},
			[]string{"device_names[0]", "device_names[2]", "device_names[3]", "device_names[4]"}},
		{"no target", func(r *Request) { r.TargetInstanceID = "" }, []string{"target_instance_id"}},
		{"both target forms", func(r *Request) { r.TargetInstanceIDs = []string{"iot-cn-x"} }, []string{"target_instance_ids"}},
		{"single with two", func(r *Request) {
			r.TargetInstanceID, r.Strategy, r.TargetInstanceIDs = "", StrategySingle, []string{"iot-a", "iot-b"}
		}, []string{"target_instance_ids"}},
		{"several without a strategy", func(r *Request) { r.TargetInstanceID, r.TargetInstanceIDs = "", []string{"iot-a", "iot-b"} },
			[]string{"strategy"}},
		{"unknown strategy", func(r *Request) { r.Strategy = "random" }, []string{"strategy"}},
		{"target is the source", func(r *Request) {
			r.TargetInstanceID, r.Strategy, r.TargetInstanceIDs = "", StrategyNearest, []string{"iot-a", "iotx-oxssharez200"}
		}, []string{"target_instance_ids[1]"}},
		{"target twice", func(r *Request) {
			r.TargetInstanceID, r.Strategy, r.TargetInstanceIDs = "", StrategyNearest, []string{"iot-a", "iot-a"}
		}, []string{"target_instance_ids[1]"}},
		{"bad product and cross account", func(r *Request) { r.ProductKey, r.TargetUID = "a b", "42" }, []string{"product_key", "target_uid"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := ok()
			tt.mod(&r)
			if got := fields(r.Validate(uid)); !cmp.Equal(got, tt.want) {
				t.Errorf("fields = %q, want %q", got, tt.want)
			}
		})
	}
	many := ok()
	many.DeviceNames = make([]string, 50)
	for i := range many.DeviceNames {
		many.DeviceNames[i] = "x"
	}
	if got := fields(many.Validate(uid)); len(got) != maxNameErrors+1 || got[maxNameErrors] != "device_names" {
		t.Errorf("50 bad names: %d fields, want %d and a summary", len(got), maxNameErrors+1)
	}
}

func newRecord(sizes ...int) *Record {
	r := &Record{ID: NewID(time.Now()), Devices: 0}
	for _, s := range sizes {
		r.Jobs = append(r.Jobs, Job{Devices: s})
		r.Devices += s
	}
	r.Accepted(time.Now())
	return r
}

func isRefusal(err error) bool {
	var te *distribution.TransitionError
	return errors.As(err, &te)
}

// TestJobLife walks the jobs of one distribution through every transition
// and checks the whole's State and Counts at each step.
func TestJobLife(t *testing.T) {
	t.Parallel()
	now := time.Now()
	r := newRecord(10000, 10000, 5000)
	check := func(step string, state State, c Counts) {
		t.Helper()
		if r.State != state || r.Counts() != c {
			t.Errorf("%s: state %s counts %+v, want %s %+v", step, r.State, r.Counts(), state, c)
		}
		if (r.FinishedAt != nil) != state.Terminal() {
			t.Errorf("%s: FinishedAt %v in state %s", step, r.FinishedAt, state)
		}
	}
	check("accepted", StateQueued, Counts{Pending: 25000})
	if err := r.StartCreate(0, now); err != nil {
		t.Fatal(err)
	}
	if err := r.StartCreate(0, now); !isRefusal(err) {
		t.Errorf("second StartCreate of job 0: %v", err)
	}
	check("job 0 submitting", StateRunning, Counts{Pending: 25000})
	if err := r.Requeue(0, now, distribution.WaitBackoff, nil); err != nil {
		t.Fatal(err)
	}
	if r.Jobs[0].CreateSentAt != nil || r.Jobs[0].State != JobPending || r.Jobs[0].Attempts != 0 {
		t.Errorf("requeued job = %+v, want pending, the attempt taken back", r.Jobs[0])
	}
	_ = r.StartCreate(0, now)
	if err := r.Requeue(0, now, distribution.WaitBackoff, &Error{Code: "ServiceUnavailable"}); err != nil || r.Jobs[0].Attempts != 1 {
		t.Errorf("requeued after a transient failure: %v %+v, want the attempt counted", err, r.Jobs[0])
	}
	_ = r.StartCreate(0, now)
	if err := r.Started(0, now, "J0", nil); err != nil {
		t.Fatal(err)
	}
	if err := r.Started(0, now, "J0b", nil); !errors.Is(err, distribution.ErrNoChange) || r.Jobs[0].JobID != "J0" {
		t.Errorf("second Started: %v, job id %s", err, r.Jobs[0].JobID)
	}
	_ = r.StartCreate(1, now)
	if err := r.ForgetCreate(1, now); err != nil || r.Jobs[1].State != JobPending {
		t.Fatalf("forget: %v %+v", err, r.Jobs[1])
	}
	_ = r.StartCreate(1, now)
	_ = r.Started(1, now, "J1", nil)
	if err := r.ObserveRemote(1, 1); err != nil {
		t.Fatal(err)
	}
	if err := r.ObserveRemote(1, 1); !errors.Is(err, distribution.ErrNoChange) {
		t.Errorf("same status again: %v", err)
	}
	canceled, err := r.Cancel(now)
	if err != nil || !cmp.Equal(canceled, []int{2}) {
		t.Fatalf("cancel = %v %v", canceled, err)
	}
	if err := r.StartCreate(2, now); !isRefusal(err) {
		t.Errorf("StartCreate of a canceled job: %v", err)
	}
	if _, err := r.Cancel(now); !isRefusal(err) {
		t.Errorf("second cancel: %v", err)
	}
	check("two running, one canceled", StateRunning, Counts{Pending: 20000, Canceled: 5000})
	if err := r.Ended(0, now, 2, DetailsComplete, 9990, 10, nil); err != nil {
		t.Fatal(err)
	}
	if err := r.Ended(1, now, 3, DetailsUnavailable, 0, 0, &Error{Code: "JobInterrupted"}); err != nil {
		t.Fatal(err)
	}
	check("ended", StateFailed, Counts{Distributed: 9990, Failed: 10, Canceled: 5000, Unknown: 10000})
	if r.DetailsState() != DetailsUnavailable {
		t.Errorf("details = %q", r.DetailsState())
	}
	if got := r.Retryable(); !cmp.Equal(got, []int{0}) {
		t.Errorf("retryable = %v", got)
	}
	added, err := r.Retry(now, []int{0}, []int{10})
	if err != nil || !cmp.Equal(added, []int{3}) {
		t.Fatalf("retry = %v %v", added, err)
	}
	check("retrying", StateRunning, Counts{Distributed: 9990, Pending: 10, Canceled: 5000, Unknown: 10000})
	if _, err := r.Retry(now, []int{0}, []int{10}); !isRefusal(err) {
		t.Errorf("retry while running: %v", err)
	}
	_ = r.StartCreate(3, now)
	if err := r.Fail(3, now, &Error{Code: "iot.prod.NotExistedProduct"}); err != nil {
		t.Fatal(err)
	}
	check("retry refused", StateFailed, Counts{Distributed: 9990, Failed: 10, Canceled: 5000, Unknown: 10000})
	if err := r.Ended(3, now, 2, DetailsComplete, 10, 0, nil); !isRefusal(err) {
		t.Errorf("Ended of a failed job: %v", err)
	}
}

func TestSucceeded(t *testing.T) {
	t.Parallel()
	now := time.Now()
	r := newRecord(3)
	_ = r.StartCreate(0, now)
	_ = r.Started(0, now, "J", nil)
	if err := r.Ended(0, now, 2, DetailsComplete, 3, 0, nil); err != nil || r.State != StateSucceeded || r.DetailsState() != DetailsComplete {
		t.Errorf("%v %s", err, r.State)
	}
	if _, err := r.Retry(now, nil, nil); !isRefusal(err) {
		t.Errorf("retry without failed devices: %v", err)
	}
}
