package alisim

import (
	"fmt"
	"testing"
	"time"

	iot "github.com/alibabacloud-go/iot-20180120/v6/client"
	"github.com/alibabacloud-go/tea/tea"
	"github.com/google/go-cmp/cmp"
)

// fast lifts the QPS limits for tests that are not about rates.
var fast = map[string]float64{
	ActionCreateProductDistributeJob: 1000, ActionQueryDeviceDistributeJob: 1000,
	ActionListDeviceDistributeJob: 1000, ActionDeleteDeviceDistributeJob: 1000,
}

func queryStatus(t *testing.T, c *iot.Client, id string) int {
	t.Helper()
	resp, err := c.QueryDeviceDistributeJob(&iot.QueryDeviceDistributeJobRequest{JobId: tea.String(id)})
	if err != nil {
		t.Fatalf("query %s: %v", id, err)
	}
	if !tea.BoolValue(resp.Body.Success) {
		t.Fatalf("query %s: %s", id, resp.Body)
	}
	return int(tea.Int32Value(resp.Body.Data.Status))
}

func TestJobProgression(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name     string
		fail     float64
		terminal int
	}{{"completes", 0, StatusCompleted}, {"fails", 1, StatusInterrupted}} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, Config{JobDuration: 10 * time.Second, FailRatio: tt.fail, QPS: fast})
			c := h.sdk(t, acctA1, false)
			created := h.clock.Now()
			id := h.mustCreate(t, c, acctA1, "pk")
			steps := []struct {
				at   time.Duration
				want int
			}{
				{0, StatusInitializing},
				{2*time.Second - time.Millisecond, StatusInitializing},
				{2 * time.Second, StatusRunning},
				{10*time.Second - time.Millisecond, StatusRunning},
				{10 * time.Second, tt.terminal},
				{10 * time.Minute, tt.terminal}, // within the timestamp skew of the SDK's real clock
			}
			for _, s := range steps {
				h.clock.Advance(created.Add(s.at).Sub(h.clock.Now()))
				if got := queryStatus(t, c, id); got != s.want {
					t.Errorf("Status at +%v = %d, want %d", s.at, got, s.want)
				}
			}
		})
	}
}

func TestQueryShape(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Config{QPS: fast})
	c := h.sdk(t, acctA1, true)
	id := h.mustCreate(t, c, acctA1, "pk")
	resp, err := c.QueryDeviceDistributeJob(&iot.QueryDeviceDistributeJobRequest{JobId: tea.String(id)})
	if err != nil {
		t.Fatal(err)
	}
	want := &iot.QueryDeviceDistributeJobResponseBodyData{
		JobId: tea.String(id), ProductKey: tea.String("pk"), SourceInstanceId: tea.String("iotx-oxssharez200"),
		SourceUid: tea.String(acctA1.UID), TargetUid: tea.String(acctA1.UID), Status: tea.Int32(0),
		Strategy: tea.Int32(0), Total: tea.Int32(0), GmtCreate: tea.Int64(h.clock.Now().UnixMilli()),
		TargetInstanceConfigs: &iot.QueryDeviceDistributeJobResponseBodyDataTargetInstanceConfigs{
			TargetInstanceConfigs: []*iot.QueryDeviceDistributeJobResponseBodyDataTargetInstanceConfigsTargetInstanceConfigs{
				{TargetInstanceId: tea.String("iot-cn-target")},
			},
		},
	}
	if diff := cmp.Diff(want, resp.Body.Data); diff != "" {
		t.Errorf("Data (-want +got):\n%s", diff)
	}
}

func TestQuotaModes(t *testing.T) {
	t.Parallel()
	for _, mode := range []string{QuotaUnfinished, QuotaUndeleted} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, Config{MaxJobs: 2, QuotaMode: mode, QPS: fast})
			c := h.sdk(t, acctA1, false)
			first := h.mustCreate(t, c, acctA1, "pk1")
			h.mustCreate(t, c, acctA1, "pk2")
			if b := h.create(t, c, acctA1, "pk3"); tea.StringValue(b.Code) != DefaultQuotaExceededCode {
				t.Fatalf("third job: %s", b)
			}
			// Another AccessKey of the same UID shares the quota; another UID does not.
			if b := h.create(t, h.sdk(t, acctA2, false), acctA2, "pk3"); tea.StringValue(b.Code) != DefaultQuotaExceededCode {
				t.Errorf("same UID, other key: %s", b)
			}
			h.mustCreate(t, h.sdk(t, acctB, false), acctB, "pk3")

			h.clock.Advance(h.sim.cfg.JobDuration) // both jobs finish
			b := h.create(t, c, acctA1, "pk3")
			if mode == QuotaUnfinished {
				if !tea.BoolValue(b.Success) {
					t.Errorf("after the jobs finished: %s", b)
				}
				return
			}
			if tea.StringValue(b.Code) != DefaultQuotaExceededCode {
				t.Errorf("finished jobs still count in undeleted mode: %s", b)
			}
			d, err := c.DeleteDeviceDistributeJob(&iot.DeleteDeviceDistributeJobRequest{JobId: tea.String(first)})
			if err != nil || !tea.BoolValue(d.Body.Success) {
				t.Fatalf("delete: %v %s", err, d.Body)
			}
			h.mustCreate(t, c, acctA1, "pk3")
		})
	}
}

func TestExternalJobsCountAndShow(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Config{MaxJobs: 2, QPS: fast})
	ext := []string{h.sim.AddExternalJob(acctA1.UID, "ext1"), h.sim.AddExternalJob(acctA1.UID, "ext2")}
	c := h.sdk(t, acctA1, false)
	if b := h.create(t, c, acctA1, "pk"); tea.StringValue(b.Code) != DefaultQuotaExceededCode {
		t.Errorf("create with 2 external jobs: %s", b)
	}
	l, err := c.ListDeviceDistributeJob(&iot.ListDeviceDistributeJobRequest{PageSize: tea.Int32(10)})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, it := range l.Body.Data.JobInfo.Items {
		got = append(got, tea.StringValue(it.JobId))
	}
	if diff := cmp.Diff([]string{ext[1], ext[0]}, got); diff != "" {
		t.Errorf("listed jobs (-want +got):\n%s", diff)
	}
	if st := queryStatus(t, c, ext[0]); st != StatusInitializing {
		t.Errorf("external job Status = %d", st)
	}
	jobs := h.sim.Jobs()
	if len(jobs) != 2 || !jobs[0].External {
		t.Errorf("Jobs() = %+v", jobs)
	}
}

func TestListFilteringAndPaging(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Config{MaxJobs: 100, QPS: fast, JobDuration: 10 * time.Second})
	c := h.sdk(t, acctA1, false)
	var ids []string // oldest first
	for i := range 5 {
		ids = append(ids, h.mustCreate(t, c, acctA1, fmt.Sprintf("pk%d", i%2)))
		h.clock.Advance(time.Second)
	}
	h.mustCreate(t, h.sdk(t, acctB, false), acctB, "pk0") // another account's job never shows
	// Now ids[0] and ids[1] are running (+5s, +4s), the others too; advance so
	// that the two oldest complete.
	h.clock.Advance(5 * time.Second) // ages 10s, 9s, 8s, 7s, 6s
	list := func(req *iot.ListDeviceDistributeJobRequest) (total int, next string, got []string) {
		t.Helper()
		resp, err := c.ListDeviceDistributeJob(req)
		if err != nil {
			t.Fatal(err)
		}
		if !tea.BoolValue(resp.Body.Success) {
			t.Fatalf("list: %s", resp.Body)
		}
		for _, it := range resp.Body.Data.JobInfo.Items {
			got = append(got, tea.StringValue(it.JobId))
			if tea.StringValue(it.SourceRegion) != "cn-shanghai" || it.TargetInstanceConfigs == nil ||
				len(it.TargetInstanceConfigs.TargetInstanceConfigs) != 1 {
				t.Errorf("item lacks regions or targets: %s", it)
			}
		}
		return int(tea.Int32Value(resp.Body.Data.Total)), tea.StringValue(resp.Body.Data.NextToken), got
	}
	check := func(name string, req *iot.ListDeviceDistributeJobRequest, wantTotal int, wantNext bool, want ...string) string {
		t.Helper()
		total, next, got := list(req)
		if total != wantTotal || (next != "") != wantNext {
			t.Errorf("%s: Total %d NextToken %q, want %d and a token: %v", name, total, next, wantTotal, wantNext)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("%s: items (-want +got):\n%s", name, diff)
		}
		return next
	}
	next := check("page 1", &iot.ListDeviceDistributeJobRequest{PageSize: tea.Int32(2)}, 5, true, ids[4], ids[3])
	next = check("token 2", &iot.ListDeviceDistributeJobRequest{PageSize: tea.Int32(2), NextToken: tea.String(next)}, 5, true, ids[2], ids[1])
	check("token 3", &iot.ListDeviceDistributeJobRequest{PageSize: tea.Int32(2), NextToken: tea.String(next)}, 5, false, ids[0])
	check("page 3", &iot.ListDeviceDistributeJobRequest{PageSize: tea.Int32(2), CurrentPage: tea.Int32(3)}, 5, false, ids[0])
	check("page 4", &iot.ListDeviceDistributeJobRequest{PageSize: tea.Int32(2), CurrentPage: tea.Int32(4)}, 5, false)
	check("product", &iot.ListDeviceDistributeJobRequest{PageSize: tea.Int32(10), ProductKey: tea.String("pk1")}, 2, false, ids[3], ids[1])
	check("completed", &iot.ListDeviceDistributeJobRequest{PageSize: tea.Int32(10), Status: tea.Int32(2)}, 1, false, ids[0])
	check("running", &iot.ListDeviceDistributeJobRequest{PageSize: tea.Int32(10), Status: tea.Int32(1)}, 4, false, ids[4], ids[3], ids[2], ids[1])
	check("job id in body", &iot.ListDeviceDistributeJobRequest{PageSize: tea.Int32(10), JobId: tea.String(ids[2])}, 1, false, ids[2])
	check("target uid", &iot.ListDeviceDistributeJobRequest{PageSize: tea.Int32(10), TargetUid: tea.String(acctB.UID)}, 0, false)

	d, err := c.DeleteDeviceDistributeJob(&iot.DeleteDeviceDistributeJobRequest{JobId: tea.String(ids[4])})
	if err != nil || !tea.BoolValue(d.Body.Success) {
		t.Fatalf("delete: %v %s", err, d.Body)
	}
	check("after delete", &iot.ListDeviceDistributeJobRequest{PageSize: tea.Int32(1)}, 4, true, ids[3])
	q, err := c.QueryDeviceDistributeJob(&iot.QueryDeviceDistributeJobRequest{JobId: tea.String(ids[4])})
	if err != nil || tea.StringValue(q.Body.Code) != DefaultJobNotFoundCode {
		t.Errorf("query deleted job: %v %s", err, q.Body)
	}
	// Another account cannot see, nor delete, a job.
	cb := h.sdk(t, acctB, false)
	q, err = cb.QueryDeviceDistributeJob(&iot.QueryDeviceDistributeJobRequest{JobId: tea.String(ids[0])})
	if err != nil || tea.StringValue(q.Body.Code) != DefaultJobNotFoundCode {
		t.Errorf("query of another account's job: %v %s", err, q.Body)
	}
	d, err = cb.DeleteDeviceDistributeJob(&iot.DeleteDeviceDistributeJobRequest{JobId: tea.String(ids[0])})
	if err != nil || tea.StringValue(d.Body.Code) != DefaultJobNotFoundCode {
		t.Errorf("delete of another account's job: %v %s", err, d.Body)
	}
}

func TestConfigurableCodes(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Config{MaxJobs: 1, QPS: fast, QuotaExceededCode: "q", CrossAccountCode: "x", JobNotFoundCode: "n"})
	c := h.sdk(t, acctA1, false)
	h.mustCreate(t, c, acctA1, "pk")
	if b := h.create(t, c, acctA1, "pk"); tea.StringValue(b.Code) != "q" {
		t.Errorf("quota code: %s", b)
	}
	if b := h.create(t, c, acctB, "pk"); tea.StringValue(b.Code) != "x" {
		t.Errorf("cross-account code: %s", b)
	}
	q, _ := c.QueryDeviceDistributeJob(&iot.QueryDeviceDistributeJobRequest{JobId: tea.String("nope")})
	if tea.StringValue(q.Body.Code) != "n" {
		t.Errorf("not-found code: %s", q.Body)
	}
}

func TestTargetAliyunID(t *testing.T) {
	t.Parallel()
	a := acctA1
	a.AliyunID = "me@example.com"
	h := newHarness(t, Config{Accounts: []Account{a}, QPS: fast})
	c := h.sdk(t, a, false)
	create := func(aliyunID string) *iot.CreateProductDistributeJobResponseBody {
		resp, err := c.CreateProductDistributeJob(&iot.CreateProductDistributeJobRequest{
			ProductKey: tea.String("pk"), SourceInstanceId: tea.String("s"),
			TargetInstanceId: tea.String("d"), TargetAliyunId: tea.String(aliyunID),
		})
		if err != nil {
			t.Fatal(err)
		}
		return resp.Body
	}
	if b := create(a.AliyunID); !tea.BoolValue(b.Success) {
		t.Errorf("own aliyun id: %s", b)
	}
	if b := create("other@example.com"); tea.StringValue(b.Code) != DefaultCrossAccountCode {
		t.Errorf("other aliyun id: %s", b)
	}
}
