package e2e

import (
	"bytes"
	"context"
	"encoding/csv"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/distq/distq/client"
	"github.com/distq/distq/internal/alisim"
	"github.com/distq/distq/internal/app"
	"github.com/distq/distq/internal/devstack"
	"github.com/distq/distq/internal/queue"
)

// deviceNames returns n valid device names with prefix.
func deviceNames(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s-%06d", prefix, i)
	}
	return out
}

func deviceReq(pk string, names []string) client.DeviceDistributionRequest {
	return client.DeviceDistributionRequest{ProductKey: pk, SourceInstanceID: "iotx-oxssharez200",
		TargetInstanceID: "iot-cn-6ja0000e2e", DeviceNames: names}
}

// waitDevices polls a device distribution until it is final, within limit.
func (c *api) waitDevices(id string, limit time.Duration) client.DeviceDistribution {
	c.t.Helper()
	deadline := time.Now().Add(limit)
	for {
		d, err := c.GetDevices(c.t.Context(), id)
		if err != nil {
			c.t.Fatalf("get %s: %v", id, err)
		}
		if client.DeviceTerminal(d.State) {
			return *d
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("device distribution %s not final after %v: %+v", id, limit, d)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// deviceJobsOf returns the simulator's device jobs of a product, oldest first.
func deviceJobsOf(sim *alisim.Server, pk string) []alisim.Job {
	var out []alisim.Job
	for _, j := range sim.Jobs() {
		if j.Kind == alisim.KindDevice && j.ProductKey == pk {
			out = append(out, j)
		}
	}
	return out
}

// deviceStackOptions are a stack with short jobs (300 ms + 20 µs per
// device: a job of 10,000 takes 0.5 s) and short worker intervals.
func deviceStackOptions(sim alisim.Config) devstack.Options {
	sim.JobDuration = 300 * time.Millisecond
	if sim.DevicePace == 0 {
		sim.DevicePace = 20 * time.Microsecond
	}
	return devstack.Options{Sim: sim, Worker: app.WorkerOptions{ReconcileInterval: 200 * time.Millisecond,
		Queue: queue.Options{PollInterval: 100 * time.Millisecond}}}
}

// 25,000 device names make three remote jobs (10,000 + 10,000 + 5,000),
// each name sent exactly once, while 15 product distributions run on the
// same 10 job slots: never more than 10 unfinished remote jobs of both
// kinds, nothing throttled, and the devices that failed are shown by name
// and code.
func TestDeviceDistributionShares(t *testing.T) {
	t.Parallel()
	names := deviceNames("meter", 25000)
	missing := []string{names[3], names[12345], names[24999]}
	st := startStack(t, deviceStackOptions(alisim.Config{MissingDevices: missing}))
	c := newAPI(t, st.APIURL, st.Token)

	var products []string
	for i := range 15 {
		products = append(products, c.submit(req(fmt.Sprintf("a1share%02d", i))).ID)
	}
	d, replayed, err := c.SubmitDevices(t.Context(), deviceReq("a1meters", names), "devices-once")
	if err != nil || replayed {
		t.Fatalf("submit devices: %v (replayed %t)", err, replayed)
	}
	if d.Devices != 25000 || len(d.Jobs) != 3 || !d.DistributesProduct || d.State != client.DevicesQueued {
		t.Fatalf("accepted %+v", d)
	}
	// The same key and body: the same answer, nothing new.
	again, replayed, err := c.SubmitDevices(t.Context(), deviceReq("a1meters", names), "devices-once")
	if err != nil || !replayed || again.ID != d.ID {
		t.Fatalf("repeat: %+v %v (replayed %t)", again, err, replayed)
	}
	final := c.waitDevices(d.ID, 90*time.Second)
	for _, id := range products {
		if got := c.waitFinal(id, 60*time.Second); got.State != client.StateSucceeded {
			t.Errorf("product distribution %s: %+v", id, got)
		}
	}

	if final.State != client.DevicesSucceeded || final.Details != "complete" ||
		final.Counts != (client.DeviceCounts{Distributed: 25000 - len(missing), Failed: len(missing)}) {
		t.Fatalf("final %+v (counts %+v)", final, final.Counts)
	}
	var sizes []int
	for _, j := range final.Jobs {
		sizes = append(sizes, j.Devices)
		if j.State != "succeeded" || j.JobID == "" || j.Attempts != 1 || j.RemoteStatus == nil || *j.RemoteStatus != 2 {
			t.Errorf("job %+v", j)
		}
	}
	if !slices.Equal(sizes, []int{10000, 10000, 5000}) {
		t.Errorf("job sizes %v, want 10000 10000 5000", sizes)
	}
	// From the outside: three jobs, every name in exactly one, in order.
	jobs := deviceJobsOf(st.Sim, "a1meters")
	sent := sentNames(t, st.Sim, final, jobs)
	if len(jobs) != 3 || !slices.Equal(sent, names) {
		t.Fatalf("%d remote device jobs carrying %d names; want 3 carrying the 25,000 once each", len(jobs), len(sent))
	}
	if peak := peakJobs(st.Sim.Jobs()); peak > 10 {
		t.Errorf("peak unfinished remote jobs %d, want <= 10", peak)
	}
	for _, call := range st.Sim.Audit() {
		if call.Outcome == alisim.OutcomeThrottled {
			t.Errorf("throttled: %+v", call)
		}
	}

	// The failed devices, by name and code: as a page and as CSV.
	page, err := c.DeviceResults(t.Context(), d.ID, "failed", "", 0)
	if err != nil {
		t.Fatal(err)
	}
	var failed []string
	for _, r := range page.Items {
		failed = append(failed, r.DeviceName)
		if r.Code != alisim.DeviceMissingCode || r.Message == "" {
			t.Errorf("failed device %+v", r)
		}
	}
	if !slices.Equal(failed, missing) || page.NextCursor != "" || page.Items[1].Job != 1 {
		t.Errorf("failed devices %v (cursor %q), want %v", failed, page.NextCursor, missing)
	}
	var buf bytes.Buffer
	if err := c.DeviceResultsCSV(t.Context(), d.ID, "failed", &buf); err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(&buf).ReadAll()
	if err != nil || len(rows) != 4 || rows[0][0] != "device_name" || rows[2][0] != names[12345] || rows[2][2] != alisim.DeviceMissingCode {
		t.Errorf("CSV %q %v", rows, err)
	}
	// All results, paged: 25,000 in name order.
	n := 0
	for r, err := range c.AllDeviceResults(t.Context(), d.ID, "all") {
		if err != nil {
			t.Fatal(err)
		}
		if r.DeviceName != names[n] {
			t.Fatalf("result %d is %s, want %s", n, r.DeviceName, names[n])
		}
		n++
	}
	if n != 25000 {
		t.Errorf("%d results, want 25000", n)
	}
}

// sentNames returns the names the simulator's jobs carried, in the order
// of the distribution's jobs, failing when a remote job is not one of them.
func sentNames(t *testing.T, sim *alisim.Server, d client.DeviceDistribution, jobs []alisim.Job) []string {
	t.Helper()
	byID := map[string][]string{}
	for _, j := range jobs {
		byID[j.JobID] = sim.DeviceNames(j.JobID)
	}
	var sent []string
	for _, j := range d.Jobs {
		names, ok := byID[j.JobID]
		if !ok {
			t.Errorf("job %d's remote job %q is not in the simulator", j.Index, j.JobID)
		}
		sent = append(sent, names...)
	}
	return sent
}

// watchExternal samples the count of external jobs the reconciler sets,
// every 10 ms, until the returned function is called; that returns the
// highest count seen.
func watchExternal(t *testing.T, st *devstack.Stack) func() int64 {
	t.Helper()
	rdb := redis.NewClient(mustRedisOptions(t, st.RedisURL))
	var highest atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			case <-time.After(10 * time.Millisecond):
			}
			n, _ := rdb.Get(context.Background(), "distq:{"+devstack.DevUID+"}:external").Int64()
			if n > highest.Load() {
				highest.Store(n)
			}
		}
	}()
	return func() int64 {
		close(stop)
		wg.Wait()
		rdb.Close()
		return highest.Load()
	}
}

// mustRedisOptions parses a Redis URL.
func mustRedisOptions(t *testing.T, url string) *redis.Options {
	t.Helper()
	o, err := redis.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	return o
}

// A device Create whose answer is lost (the job made, the JobId never
// written) is looked up before any new Create, and its job adopted: one
// remote job per device job, each name sent once. All along, the
// reconciler (every 200 ms) never counts distq's own device jobs as
// external, not even those whose JobId is not yet recorded.
func TestDeviceCreateLostAnswer(t *testing.T) {
	t.Parallel()
	// Jobs of 2.3 s: reconcile passes (at most one a second) see them run.
	st := startStack(t, deviceStackOptions(alisim.Config{Faults: alisim.Faults{ErrorAfterCreateRatio: 1}, DevicePace: 200 * time.Microsecond}))
	c := newAPI(t, st.APIURL, st.Token)
	external := watchExternal(t, st)
	names := deviceNames("lost", 15000)
	d, _, err := c.SubmitDevices(t.Context(), deviceReq("a1lost", names), "")
	if err != nil {
		t.Fatal(err)
	}
	final := c.waitDevices(d.ID, 60*time.Second)
	if final.State != client.DevicesSucceeded || final.Counts.Distributed != 15000 {
		t.Fatalf("final %+v", final)
	}
	jobs := deviceJobsOf(st.Sim, "a1lost")
	sent := sentNames(t, st.Sim, final, jobs)
	for _, j := range final.Jobs {
		if j.Attempts != 1 {
			t.Errorf("job %+v: want one Create", j)
		}
	}
	if len(jobs) != 2 || !slices.Equal(sent, names) {
		t.Fatalf("%d remote jobs carrying %d names; want 2 carrying the 15,000 once", len(jobs), len(sent))
	}
	if n := external(); n != 0 {
		t.Errorf("the reconciler counted %d external jobs; distq's own device jobs are not external", n)
	}
}

// Cancel stops the jobs not yet created; retry sends the failed devices
// (only them) again as a new job; a bad request names each bad device.
func TestDeviceCancelAndRetry(t *testing.T) {
	t.Parallel()
	o := deviceStackOptions(alisim.Config{MissingDevices: []string{"gone-000001", "gone-000002"}})
	o.Env = map[string]string{"DISTQ_MAX_JOBS": "1"}
	o.Sim.MaxJobs = 1
	o.Sim.DevicePace = 200 * time.Microsecond // 10,000 devices: 2.3 s
	st := startStack(t, o)
	c := newAPI(t, st.APIURL, st.Token)

	big, _, err := c.SubmitDevices(t.Context(), deviceReq("a1cancel", deviceNames("cx", 30000)), "")
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for len(deviceJobsOf(st.Sim, "a1cancel")) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the first job was never created")
		}
		time.Sleep(20 * time.Millisecond)
	}
	canceled, err := c.CancelDevices(t.Context(), big.ID)
	if err != nil {
		t.Fatal(err)
	}
	// With one slot, one job was created; the two others never will be.
	n := 0
	for _, j := range canceled.Jobs {
		if j.State == "canceled" {
			n++
		}
	}
	if n != 2 {
		t.Fatalf("after cancel: %+v, want 2 jobs canceled", canceled.Jobs)
	}
	final := c.waitDevices(big.ID, 30*time.Second)
	if final.State != client.DevicesCanceled || final.Counts.Distributed != 10000 || final.Counts.Canceled != 20000 {
		t.Fatalf("canceled distribution %+v", final)
	}
	if jobs := deviceJobsOf(st.Sim, "a1cancel"); len(jobs) != 1 {
		t.Errorf("%d remote jobs after the cancel, want 1", len(jobs))
	}
	if _, err := c.CancelDevices(t.Context(), big.ID); apiError(t, err).Code != "invalid_state" {
		t.Errorf("second cancel: %v", err)
	}

	names := []string{"ok-000001", "gone-000001", "ok-000002", "gone-000002"}
	d, _, err := c.SubmitDevices(t.Context(), deviceReq("a1retry", names), "")
	if err != nil {
		t.Fatal(err)
	}
	first := c.waitDevices(d.ID, 30*time.Second)
	if first.State != client.DevicesSucceeded || first.Counts.Failed != 2 || first.Counts.Distributed != 2 {
		t.Fatalf("first run %+v", first)
	}
	retried, err := c.RetryDevices(t.Context(), d.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(retried.Jobs) != 2 || retried.Jobs[1].Devices != 2 || !retried.Jobs[0].Retried {
		t.Fatalf("retried %+v", retried.Jobs)
	}
	second := c.waitDevices(d.ID, 30*time.Second)
	if second.Counts != (client.DeviceCounts{Distributed: 2, Failed: 2}) {
		t.Errorf("after the retry: %+v", second.Counts)
	}
	jobs := deviceJobsOf(st.Sim, "a1retry")
	if len(jobs) != 2 || !slices.Equal(st.Sim.DeviceNames(jobs[1].JobID), []string{"gone-000001", "gone-000002"}) {
		t.Errorf("the retry's job carries %v, want the two failed devices", st.Sim.DeviceNames(jobs[len(jobs)-1].JobID))
	}
	page, err := c.DeviceResults(t.Context(), d.ID, "failed", "", 0)
	if err != nil || len(page.Items) != 2 || page.Items[0].Job != 1 {
		t.Errorf("failed after the retry: %+v %v (want 2, in job 1 only)", page, err)
	}

	bad := deviceReq("a1bad", []string{"ok-name", "no", "ok-name", strings.Repeat("x", 40)})
	_, _, err = c.SubmitDevices(t.Context(), bad, "")
	e := apiError(t, err)
	if e.Status != 422 || !strings.Contains(string(e.Details), "device_names[1]") || !strings.Contains(string(e.Details), "device_names[2]") ||
		!strings.Contains(string(e.Details), "device_names[3]") {
		t.Errorf("bad names: %d %s", e.Status, e.Details)
	}
}

// A result file distq cannot read leaves the distribution succeeded, with
// details "unavailable" and its devices counted as unknown: the remote's
// end of the job is known, its devices' outcomes are not.
func TestDeviceDetailsUnreadable(t *testing.T) {
	t.Parallel()
	st := startStack(t, deviceStackOptions(alisim.Config{Faults: alisim.Faults{UnreadableDetails: true}}))
	c := newAPI(t, st.APIURL, st.Token)
	d, _, err := c.SubmitDevices(t.Context(), deviceReq("a1unreadable", deviceNames("u", 50)), "")
	if err != nil {
		t.Fatal(err)
	}
	final := c.waitDevices(d.ID, 30*time.Second)
	if final.State != client.DevicesSucceeded || final.Details != "unavailable" ||
		final.Counts != (client.DeviceCounts{Unknown: 50}) || final.Jobs[0].Details != "unavailable" || final.Jobs[0].Error == nil {
		t.Fatalf("final %+v (counts %+v, job %+v)", final, final.Counts, final.Jobs[0])
	}
	if page, err := c.DeviceResults(t.Context(), d.ID, "all", "", 0); err != nil || len(page.Items) != 0 {
		t.Errorf("results of an unreadable file: %+v %v", page, err)
	}
	if _, err := c.RetryDevices(t.Context(), d.ID); apiError(t, err).Code != "invalid_state" {
		t.Errorf("retry of unknown outcomes: %v", err)
	}
}

// An operator's pause of a team holds its device jobs too (wait_reason
// paused, no Create), and the resume lets them go.
func TestDevicePausedTeamWaits(t *testing.T) {
	t.Parallel()
	st, admin := adminStack(t, nil, alisim.Config{JobDuration: 200 * time.Millisecond})
	ctx := context.Background()
	if _, err := admin.PauseTeam(ctx, "default", "teama"); err != nil {
		t.Fatalf("pause: %v", err)
	}
	time.Sleep(700 * time.Millisecond) // the workers' views refresh every 500 ms
	a := newAPI(t, st.APIURL, "token-aaaaaaaa")
	d, _, err := a.SubmitDevices(ctx, deviceReq("a1pausedev", deviceNames("p", 20)), "")
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		got, err := a.GetDevices(ctx, d.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.Jobs[0].WaitReason == "paused" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("paused team's device job: %+v, want waiting, paused", got.Jobs[0])
		}
		time.Sleep(50 * time.Millisecond)
	}
	if jobs := deviceJobsOf(st.Sim, "a1pausedev"); len(jobs) != 0 {
		t.Fatalf("a paused team's device job was created: %+v", jobs)
	}
	if _, err := admin.ResumeTeam(ctx, "default", "teama"); err != nil {
		t.Fatalf("resume: %v", err)
	}
	if got := a.waitDevices(d.ID, 30*time.Second); got.State != client.DevicesSucceeded || got.Counts.Distributed != 20 {
		t.Fatalf("after resume: %+v", got)
	}
}
