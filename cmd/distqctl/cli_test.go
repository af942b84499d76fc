package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/distq/distq/client"
	"github.com/distq/distq/internal/alisim"
	"github.com/distq/distq/internal/devstack"
	"github.com/distq/distq/internal/redistest"
)

const (
	testSource = "iotx-oxssharez200"
	testTarget = "iot-cn-6ja0000demo"
)

// startStack starts api + worker + simulator on a leased Redis database,
// with short jobs and raised rates so that a few hundred items take seconds.
func startStack(t *testing.T, missing ...string) *devstack.Stack {
	t.Helper()
	db := redistest.New(t)
	st, err := devstack.Start(context.Background(), devstack.Options{
		RedisURL: db.URL(),
		Sim: alisim.Config{
			JobDuration:     300 * time.Millisecond,
			QPS:             map[string]float64{"CreateProductDistributeJob": 50, "QueryDeviceDistributeJob": 100, "ListDeviceDistributeJob": 50},
			MaxJobs:         100,
			MissingProducts: missing,
		},
		Env: map[string]string{"DISTQ_CREATE_QPS": "50", "DISTQ_QUERY_QPS": "100", "DISTQ_LIST_QPS": "50", "DISTQ_MAX_JOBS": "100"},
	})
	if err != nil {
		t.Fatalf("start stack: %v", err)
	}
	t.Cleanup(st.Stop)
	return st
}

// cli runs distqctl in-process.
type cli struct {
	t   *testing.T
	env map[string]string
	dir string // the user config dir
}

func newCLI(t *testing.T, st *devstack.Stack) *cli {
	t.Helper()
	c := &cli{t: t, env: map[string]string{}, dir: t.TempDir()}
	if st != nil {
		c.env["DISTQ_URL"], c.env["DISTQ_TOKEN"] = st.APIURL, st.Token
	}
	return c
}

type result struct {
	code           int
	stdout, stderr string
}

func (c *cli) run(args ...string) result {
	c.t.Helper()
	var out, errb bytes.Buffer
	a := newApp(strings.NewReader(""), &out, &errb, func(k string) string { return c.env[k] })
	a.userConfigDir = func() (string, error) { return c.dir, nil }
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	code := run(ctx, args, a)
	c.t.Logf("distqctl %s → exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), code, clip(out.String()), clip(errb.String()))
	return result{code, out.String(), errb.String()}
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// listAll lists distributions through the CLI's own pagination, as JSON.
func listAll(t *testing.T, c *cli, args ...string) []client.Distribution {
	t.Helper()
	r := c.run(append([]string{"list", "-o", "json", "--page-size", "50"}, args...)...)
	if r.code != 0 {
		t.Fatalf("list: exit %d: %s", r.code, r.stderr)
	}
	var ds []client.Distribution
	if err := json.Unmarshal([]byte(r.stdout), &ds); err != nil {
		t.Fatalf("list -o json: %v", err)
	}
	return ds
}

// TestSubmitFileWithBadLines is the scenario: a 200-line CSV with
// three bad lines, submitted with --wait; then the same command again.
func TestSubmitFileWithBadLines(t *testing.T) {
	t.Parallel()
	st := startStack(t)
	c := newCLI(t, st)

	var b strings.Builder
	b.WriteString("product_key\n") // line 1
	for i := 1; i <= 200; i++ {    // lines 2..201
		switch i {
		case 10:
			b.WriteString("bad key!\n")
		case 50:
			b.WriteString("a1extra,field\n")
		case 150:
			b.WriteString("\"a1unclosed\n")
		default:
			fmt.Fprintf(&b, "a1cli%04d\n", i)
		}
	}
	file := writeFile(t, "products.csv", b.String())
	args := []string{"submit", "--file", file, "--source", testSource, "--target", testTarget,
		"--wait", "--batch-size", "100", "--interval", "100ms", "--progress", "lines"}

	r := c.run(args...)
	if r.code != ExitItems {
		t.Fatalf("exit %d, want %d (bad lines)", r.code, ExitItems)
	}
	for _, want := range []string{
		"197 items to submit, 3 bad lines skipped",
		"finished 197 items",
		"succeeded 197",
		"bad lines in " + file + ", skipped (3):",
		"line 11: product_key is not a valid product key",
		"line 51: has 2 fields, want a product key",
		"line 151: not CSV:",
	} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("stdout lacks %q", want)
		}
	}
	if strings.Count(r.stdout, "accepted, 0 rejected\n") != 2 {
		t.Errorf("want two batches of at most 100 items, each accepted in full")
	}
	if !strings.Contains(r.stderr, "197/197 done (100%)") {
		t.Errorf("stderr lacks the final progress line")
	}
	all := listAll(t, c)
	if len(all) != 197 {
		t.Fatalf("%d distributions after the first run, want 197", len(all))
	}
	for _, d := range all {
		if d.State != client.StateSucceeded {
			t.Fatalf("%s is %s, want succeeded", d.ID, d.State)
		}
	}

	// The same command again: the idempotency keys replay, nothing new.
	r = c.run(args...)
	if r.code != ExitItems {
		t.Fatalf("re-run: exit %d, want %d (the bad lines are still there)", r.code, ExitItems)
	}
	if n := strings.Count(r.stdout, "nothing new submitted"); n != 2 {
		t.Errorf("re-run: %d batches said to be replays, want 2", n)
	}
	if !strings.Contains(r.stdout, "succeeded 197") || !strings.Contains(r.stdout, "line 51:") {
		t.Errorf("re-run: the summary lacks the result or the bad lines")
	}
	if n := len(listAll(t, c)); n != 197 {
		t.Fatalf("%d distributions after the re-run, want 197: it submitted again", n)
	}

	// The JSON output of the same submit, for scripts.
	r = c.run(append(args, "-o", "json")...)
	var res submitResult
	if err := json.Unmarshal([]byte(r.stdout), &res); err != nil {
		t.Fatalf("submit -o json: %v", err)
	}
	if r.code != ExitItems || len(res.Batches) != 2 || !res.Batches[0].Replayed || !res.Batches[1].Replayed ||
		len(res.BadLines) != 3 || res.BadLines[0].Line != 11 || res.Result == nil || res.Result.Counts[client.StateSucceeded] != 197 {
		t.Errorf("submit -o json: exit %d, %+v", r.code, res)
	}

	// get, list by batch (following the cursor), retry refused.
	batch := res.Batches[1].ID
	if r := c.run("get", batch); r.code != 0 || !strings.Contains(r.stdout, "succeeded:   97") {
		t.Errorf("get %s: exit %d", batch, r.code)
	}
	if n := len(listAll(t, c, "--batch", batch)); n != 97 {
		t.Errorf("list --batch: %d items, want 97", n)
	}
	if r := c.run("retry", batch); r.code != ExitAPI || !strings.Contains(r.stderr, "invalid_state") {
		t.Errorf("retry of a batch with nothing failed: exit %d, want %d with invalid_state", r.code, ExitAPI)
	}

	// list of a batch follows the file's order: the keys ascend in the file.
	var keys []string
	for _, d := range listAll(t, c, "--batch", batch) {
		keys = append(keys, d.ProductKey)
	}
	if !slices.IsSorted(keys) || len(keys) != 97 {
		t.Errorf("list --batch: %d items in the order %v, want the file's", len(keys), keys)
	}

	// watch of a batch that finished earlier counts the time from the
	// batch's creation, not from the start of the watch.
	r = c.run("get", batch, "-o", "json")
	var view client.Batch
	if err := json.Unmarshal([]byte(r.stdout), &view); err != nil {
		t.Fatalf("get -o json: %v", err)
	}
	sinceCreated := time.Since(view.CreatedAt)
	r = c.run("watch", batch, "-o", "json", "--progress", "lines")
	var w watchResult
	if err := json.Unmarshal([]byte(r.stdout), &w); err != nil {
		t.Fatalf("watch -o json: %v", err)
	}
	if r.code != 0 || w.Total != 97 || !w.Created.Equal(view.CreatedAt) || w.Elapsed < sinceCreated.Seconds() {
		t.Errorf("watch of a finished batch: exit %d, %d items, created %v, %.3fs elapsed; want 97 items, created %v, at least %.3fs",
			r.code, w.Total, w.Created, w.Elapsed, view.CreatedAt, sinceCreated.Seconds())
	}
	if !strings.Contains(r.stderr, "97/97 done (100%)") || !strings.Contains(r.stderr, " since created") {
		t.Errorf("watch's progress line lacks the totals or the time since creation: %q", r.stderr)
	}
}

// TestWaitReportsRemoteFailures: products the endpoint does not know fail
// with its code; the summary names them with their lines; retry requeues.
func TestWaitReportsRemoteFailures(t *testing.T) {
	t.Parallel()
	st := startStack(t, "a1gone1", "a1gone2")
	c := newCLI(t, st)
	file := writeFile(t, "products.jsonl", strings.Join([]string{
		`{"product_key":"a1here1"}`,
		`{"product_key":"a1gone1"}`,
		`{"product_key":"a1here2","target_instance_id":"iot-cn-other0001"}`,
		`{"product_key":"a1gone2"}`,
	}, "\n"))
	failedCSV := filepath.Join(t.TempDir(), "failed.csv")
	r := c.run("submit", "-f", file, "--source", testSource, "--target", testTarget, "--wait", "--interval", "100ms", "--failed-csv", failedCSV)
	if r.code != ExitItems {
		t.Fatalf("exit %d, want %d", r.code, ExitItems)
	}
	// --failed-csv holds both failures with their code, RequestId and line.
	raw, err := os.ReadFile(failedCSV)
	if err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(bytes.NewReader(raw)).ReadAll()
	if err != nil || len(rows) != 3 || rows[0][0] != "product_key" {
		t.Fatalf("--failed-csv: %v\n%s", err, raw)
	}
	for i, want := range []struct{ pk, line string }{{"a1gone1", "2"}, {"a1gone2", "4"}} {
		row := map[string]string{}
		for j, col := range rows[0] {
			row[col] = rows[i+1][j]
		}
		if row["product_key"] != want.pk || row["line"] != want.line || row["outcome"] != "failed" || row["code"] != "iot.prod.NotExistedProduct" ||
			row["request_id"] == "" || row["source_instance_id"] != testSource || row["target_instance_id"] != testTarget || !strings.HasPrefix(row["distribution_id"], "d_") {
			t.Errorf("--failed-csv row %d: %v, want %s of line %s failed with its code and request id", i+1, row, want.pk, want.line)
		}
	}
	for _, want := range []string{
		"succeeded 2 · failed 2",
		"failed (2): iot.prod.NotExistedProduct ×2",
		"2     a1gone1",
		"4     a1gone2",
	} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("stdout lacks %q", want)
		}
	}
	failed := listAll(t, c, "--state", "failed")
	if len(failed) != 2 {
		t.Fatalf("%d failed, want 2", len(failed))
	}
	if r := c.run("retry", failed[0].BatchID); r.code != 0 || !strings.Contains(r.stdout, "2 queued again") {
		t.Errorf("retry batch: exit %d", r.code)
	}
	if r := c.run("watch", failed[0].BatchID, "--interval", "100ms", "-o", "json"); r.code != ExitItems || !strings.Contains(r.stdout, `"code": "iot.prod.NotExistedProduct"`) {
		t.Errorf("watch after retry: exit %d, want %d with the remote code", r.code, ExitItems)
	}
	// get shows both attempts of a retried distribution, each with the
	// remote's code and RequestId.
	r = c.run("get", failed[0].ID)
	for _, want := range []string{"attempts:", "attempt 1:", "attempt 2:"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("get %s lacks %q", failed[0].ID, want)
		}
	}
	if r.code != 0 || strings.Count(r.stdout, "failed  ") != 2 || strings.Count(r.stdout, "iot.prod.NotExistedProduct: ") != 3 ||
		strings.Count(r.stdout, "  request_id ") != 2 {
		t.Errorf("get of a retried distribution: exit %d, want both failed attempts with their code and request id", r.code)
	}

	// submit --file takes the failed CSV back as it is: no flags needed, the
	// report columns ignored; the two products go again (and fail again).
	r = c.run("submit", "-f", failedCSV, "--wait", "--interval", "100ms", "--failed-csv", failedCSV+".again")
	if r.code != ExitItems || !strings.Contains(r.stdout, failedCSV+": 2 items to submit\n") || !strings.Contains(r.stdout, "failed (2): iot.prod.NotExistedProduct ×2") {
		t.Errorf("resubmit of --failed-csv: exit %d, want both items submitted and failed again", r.code)
	}
	if again, err := os.ReadFile(failedCSV + ".again"); err != nil || bytes.Count(again, []byte("\n")) != 3 {
		t.Errorf("second --failed-csv: %v\n%s", err, again)
	}
}

// TestDuplicateActiveAndCancel: a product already being distributed to the
// same target is rejected per item; cancel stops the queued rest.
func TestDuplicateActiveAndCancel(t *testing.T) {
	t.Parallel()
	st := startStack(t)
	c := newCLI(t, st)
	var b strings.Builder
	for i := range 300 {
		fmt.Fprintf(&b, "a1dup%04d\n", i)
	}
	file := writeFile(t, "products.txt", b.String())
	r := c.run("submit", "-f", file, "--source", testSource, "--target", testTarget, "-o", "json")
	var res submitResult
	if err := json.Unmarshal([]byte(r.stdout), &res); err != nil || r.code != 0 || len(res.Batches) != 1 {
		t.Fatalf("submit: exit %d, %v", r.code, err)
	}
	batch := res.Batches[0].ID

	// The last product waits behind ~300 items at 50/s: it is still active.
	rejectedCSV := filepath.Join(t.TempDir(), "rejected.csv")
	r = c.run("submit", "-p", "a1dup0299", "--source", testSource, "--target", testTarget, "--failed-csv", rejectedCSV)
	if r.code != ExitItems || !strings.Contains(r.stdout, "duplicate_active") {
		t.Fatalf("duplicate single submit: exit %d, want %d with duplicate_active", r.code, ExitItems)
	}
	if raw, err := os.ReadFile(rejectedCSV); err != nil || !bytes.Contains(raw, []byte("\na1dup0299,"+testSource+","+testTarget+",,,,rejected,duplicate_active,")) {
		t.Errorf("--failed-csv of a rejected submit: %v\n%s", err, raw)
	}
	if r := c.run("cancel", batch); r.code != 0 || !strings.Contains(r.stdout, "canceled") {
		t.Fatalf("cancel batch: exit %d", r.code)
	}
	r = c.run("watch", batch, "--interval", "100ms")
	if r.code != ExitItems || !strings.Contains(r.stdout, "canceled") {
		t.Errorf("watch of a canceled batch: exit %d, want %d", r.code, ExitItems)
	}
}

func TestConfigAndErrors(t *testing.T) {
	t.Parallel()
	// A port nothing listens on.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "http://" + ln.Addr().String()
	ln.Close()

	c := newCLI(t, nil)
	if r := c.run("list"); r.code != ExitUsage || !strings.Contains(r.stderr, "no API token") || !strings.Contains(r.stderr, filepath.Join(c.dir, "distq", "config.yaml")) {
		t.Errorf("no token: exit %d, %q", r.code, r.stderr)
	}
	// The config file gives url and token.
	cfgDir := filepath.Join(c.dir, "distq")
	if err := os.MkdirAll(cfgDir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(cfgDir, "config.yaml"), []byte("url: "+dead+"\ntoken: t0ken\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if r := c.run("get", "b_0000000000aa_0000000000"); r.code != ExitUnreachable || !strings.Contains(r.stderr, "cannot reach distq at "+dead) {
		t.Errorf("unreachable: exit %d, %q", r.code, r.stderr)
	}
	// A bad key in an explicit config file.
	bad := writeFile(t, "bad.yaml", "url: http://x\ncolour: red\n")
	if r := c.run("--config", bad, "list"); r.code != ExitUsage || !strings.Contains(r.stderr, "colour") {
		t.Errorf("bad config: exit %d, %q", r.code, r.stderr)
	}
	for _, args := range [][]string{
		{"-o", "yaml", "list"},
		{"submit", "--source", "s"},
		{"submit", "-p", "a1x", "-f", "x.csv"},
		{"submit", "-f", "missing.csv", "--source", testSource, "--target", testTarget},
		{"watch", "not-an-id"},
		{"list", "--state", "sleeping"},
		{"nosuchcommand"},
	} {
		if r := c.run(args...); r.code != ExitUsage {
			t.Errorf("%v: exit %d, want %d", args, r.code, ExitUsage)
		}
	}
	// A file where no line names the source, and no --source.
	f := writeFile(t, "p.csv", "a1one\na1two\n")
	if r := c.run("submit", "-f", f, "--target", testTarget); r.code != ExitUsage || !strings.Contains(r.stderr, "--source is required") {
		t.Errorf("no source: exit %d, %q", r.code, r.stderr)
	}
}

func TestInterruptedWatch(t *testing.T) {
	t.Parallel()
	st := startStack(t)
	c := newCLI(t, st)
	r := c.run("submit", "-p", "a1int", "--source", testSource, "--target", testTarget, "-o", "json")
	var res submitResult
	if err := json.Unmarshal([]byte(r.stdout), &res); err != nil || res.Distribution == nil {
		t.Fatalf("submit: exit %d: %v", r.code, err)
	}
	// A context already canceled stands for Ctrl-C.
	var out, errb bytes.Buffer
	a := newApp(strings.NewReader(""), &out, &errb, func(k string) string { return c.env[k] })
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if code := run(ctx, []string{"watch", res.Distribution.ID}, a); code != ExitInterrupted {
		t.Errorf("exit %d, want %d; stderr %q", code, ExitInterrupted, errb.String())
	}
}

func clip(s string) string {
	if len(s) > 3000 {
		return s[:1500] + "\n[…]\n" + s[len(s)-1500:]
	}
	return s
}
