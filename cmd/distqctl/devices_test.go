package main

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/distq/distq/client"
	"github.com/distq/distq/internal/alisim"
	"github.com/distq/distq/internal/devstack"
	"github.com/distq/distq/internal/redistest"
)

func TestParseDeviceNames(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, in string
		want     []string
		bad      []int
	}{
		{"one per line", "# devices\ndev-0001\n\ndev-0002\nx\ndev-0001\n", []string{"dev-0001", "dev-0002"}, []int{5, 6}},
		{"CSV with a header", "product,DeviceName,region\npk,dev-0001,sh\npk,dev@0002,sh\npk,a b,sh\n", []string{"dev-0001", "dev@0002"}, []int{4}},
		{"semicolons", "device_name;note\ndev:0001;x\n", []string{"dev:0001"}, nil},
		{"first column without a header", "dev-0001,foo\ndev-0002,bar\n", []string{"dev-0001", "dev-0002"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, bad, err := parseDeviceNames([]byte(tt.in))
			if err != nil {
				t.Fatal(err)
			}
			var lines []int
			for _, b := range bad {
				lines = append(lines, b.Line)
			}
			if strings.Join(got, " ") != strings.Join(tt.want, " ") || len(lines) != len(tt.bad) {
				t.Errorf("names %q, bad lines %v; want %q, %v", got, lines, tt.want, tt.bad)
			}
			for i := range lines {
				if lines[i] != tt.bad[i] {
					t.Errorf("bad lines %v, want %v", lines, tt.bad)
				}
			}
		})
	}
}

// TestDevicesCommands submits a file of device names with --wait, then
// reads the distribution back with get, list and results.
func TestDevicesCommands(t *testing.T) {
	t.Parallel()
	db := redistest.New(t)
	st, err := devstack.Start(context.Background(), devstack.Options{
		RedisURL: db.URL(),
		Sim:      alisim.Config{JobDuration: 300 * time.Millisecond, MissingDevices: []string{"meter-0007"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.Stop)
	c := newCLI(t, st)
	var b strings.Builder
	b.WriteString("device_name,site\n")
	for i := range 25 {
		fmt.Fprintf(&b, "meter-%04d,plant\n", i)
	}
	b.WriteString("no,plant\nmeter-0001,plant\n")
	file := writeFile(t, "devices.csv", b.String())
	args := []string{"devices", "submit", "--file", file, "--product", "a1Meters", "--source", testSource, "--target", testTarget, "--wait", "--interval", "100ms"}
	r := c.run(args...)
	if r.code != ExitItems {
		t.Fatalf("exit %d, want %d (a device failed, two lines were bad)", r.code, ExitItems)
	}
	for _, want := range []string{"25 devices of a1Meters in 1 job", "distributed along with its devices", "line 27", "line 28", "repeats line 3",
		"24 distributed, 1 failed", "meter-0007", alisim.DeviceMissingCode} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("stdout lacks %q", want)
		}
	}
	if !strings.Contains(r.stderr, "succeeded: 1 of 1 jobs done") {
		t.Errorf("no progress on stderr")
	}
	id := regexp.MustCompile(`v_[0-9a-f]{12}_[0-9a-f]{10}`).FindString(r.stdout)
	if id == "" {
		t.Fatal("no device distribution id in the output")
	}
	// The same command again submits nothing new.
	if r := c.run(args...); !strings.Contains(r.stdout, "nothing new submitted") || !strings.Contains(r.stdout, id) {
		t.Errorf("second run: %s", r.stdout)
	}

	r = c.run("-o", "json", "devices", "get", id)
	var d client.DeviceDistribution
	if err := json.Unmarshal([]byte(r.stdout), &d); err != nil || r.code != ExitOK || d.State != client.DevicesSucceeded || d.Counts.Failed != 1 {
		t.Errorf("get: %d %v %+v", r.code, err, d)
	}
	if r := c.run("devices", "list"); r.code != ExitOK || !strings.Contains(r.stdout, id) {
		t.Errorf("list: %d %s", r.code, r.stdout)
	}
	r = c.run("devices", "results", id, "--all", "--csv")
	rows, err := csv.NewReader(strings.NewReader(r.stdout)).ReadAll()
	if err != nil || r.code != ExitOK || len(rows) != 26 || rows[8][0] != "meter-0007" || rows[8][2] != alisim.DeviceMissingCode {
		t.Errorf("results --csv: %d %v %q", r.code, err, rows)
	}
	if r := c.run("devices", "results", id); r.code != ExitOK || !strings.Contains(r.stdout, "meter-0007") || strings.Contains(r.stdout, "meter-0008") {
		t.Errorf("results: %s", r.stdout)
	}
	// --out gets the whole CSV, and a failed request leaves the file as it was.
	outFile := filepath.Join(t.TempDir(), "results.csv")
	if r := c.run("devices", "results", id, "--out", outFile); r.code != ExitOK {
		t.Errorf("results --out: %d %s", r.code, r.stderr)
	}
	if raw, err := os.ReadFile(outFile); err != nil || !strings.Contains(string(raw), "meter-0007") {
		t.Errorf("results --out wrote %q %v", raw, err)
	}
	if r := c.run("devices", "results", "v_000000000000_0000000000", "--out", outFile); r.code != ExitAPI {
		t.Errorf("results --out of an unknown id: exit %d", r.code)
	}
	if raw, _ := os.ReadFile(outFile); !strings.Contains(string(raw), "meter-0007") {
		t.Errorf("a failed results --out changed the file: %q", raw)
	}
	if r := c.run("devices", "cancel", id); r.code != ExitAPI || !strings.Contains(r.stderr, "invalid_state") {
		t.Errorf("cancel of a finished one: %d %s", r.code, r.stderr)
	}
	if r := c.run("devices", "get", "d_000000000000_0000000000"); r.code != ExitUsage {
		t.Errorf("get with a distribution id: exit %d", r.code)
	}
	if r := c.run("devices", "submit", "--file", file, "--product", "a1Meters", "--source", testSource); r.code != ExitUsage {
		t.Errorf("no target: exit %d", r.code)
	}
}

// devices submit --after-product distributes the product first and sends
// the devices once it succeeded; it waits for the team's own active
// distribution of the product (the duplicate answer's id) rather than
// submitting another; when the product fails it stops with exit 2 and no
// device is sent.
func TestDevicesSubmitAfterProduct(t *testing.T) {
	t.Parallel()
	st := startStack(t, "a1gonedev")
	c := newCLI(t, st)
	file := writeFile(t, "devices.txt", "meter-0001\nmeter-0002\nmeter-0003\n")
	submit := func(pk string, extra ...string) result {
		return c.run(append([]string{"devices", "submit", "--file", file, "--product", pk, "--source", testSource, "--target", testTarget,
			"--after-product", "--wait", "--interval", "100ms", "--progress", "lines"}, extra...)...)
	}
	devIDRE := regexp.MustCompile(`v_[0-9a-f]{12}_[0-9a-f]{10}`)
	distIDRE := regexp.MustCompile(`d_[0-9a-f]{12}_[0-9a-f]{10}`)

	// The product first, then the devices.
	r := submit("a1okdev")
	if r.code != ExitOK {
		t.Fatalf("exit %d\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
	}
	prod := distIDRE.FindString(r.stdout)
	iProd, iOK, iDev := strings.Index(r.stdout, "product distribution "+prod), strings.Index(r.stdout, "succeeded; submitting the devices"), strings.Index(r.stdout, "device distribution v_")
	if prod == "" || iProd < 0 || iOK < iProd || iDev < iOK || !strings.Contains(r.stdout, "3 distributed, 0 failed") {
		t.Errorf("stdout, want the product distribution, its success, then the devices:\n%s", r.stdout)
	}
	if !strings.Contains(r.stderr, "succeeded 1") {
		t.Errorf("no progress of the product on stderr:\n%s", r.stderr)
	}
	if got := listAll(t, c, "--product-key", "a1okdev"); len(got) != 1 || got[0].ID != prod || got[0].State != client.StateSucceeded {
		t.Errorf("product distributions %+v, want %s succeeded", got, prod)
	}

	// The team's own distribution of the product is still active: the
	// command waits for that one.
	var b strings.Builder
	for i := range 200 {
		fmt.Fprintf(&b, "a1busy%04d\n", i)
	}
	b.WriteString("a1dupdev\n")
	if r := c.run("submit", "-f", writeFile(t, "products.txt", b.String()), "--source", testSource, "--target", testTarget); r.code != ExitOK {
		t.Fatalf("submit products: exit %d %s", r.code, r.stderr)
	}
	active := listAll(t, c, "--product-key", "a1dupdev")
	if len(active) != 1 || active[0].State.Terminal() {
		t.Fatalf("a1dupdev: %+v, want one distribution still active", active)
	}
	r = submit("a1dupdev")
	if r.code != ExitOK || !strings.Contains(r.stdout, "already being distributed to "+testTarget+" by distribution "+active[0].ID) || devIDRE.FindString(r.stdout) == "" {
		t.Errorf("after an active one: exit %d\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
	}
	if got := listAll(t, c, "--product-key", "a1dupdev"); len(got) != 1 || got[0].State != client.StateSucceeded {
		t.Errorf("a1dupdev distributions %+v, want the one, succeeded", got)
	}

	// The product fails: a clear error, exit 2, no device sent.
	r = submit("a1gonedev")
	if r.code != ExitItems || !strings.Contains(r.stderr, "did not succeed (iot.prod.NotExistedProduct") || !strings.Contains(r.stderr, "no device was submitted") {
		t.Errorf("failed product: exit %d\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
	}
	if devIDRE.FindString(r.stdout) != "" {
		t.Errorf("a device distribution after a failed product:\n%s", r.stdout)
	}
	for _, j := range st.Sim.Jobs() {
		if j.Kind == alisim.KindDevice && j.ProductKey == "a1gonedev" {
			t.Errorf("a device job of the failed product reached the remote: %+v", j)
		}
	}
	r = c.run("-o", "json", "devices", "list")
	var all []client.DeviceDistribution
	if err := json.Unmarshal([]byte(r.stdout), &all); err != nil || len(all) != 2 {
		t.Errorf("device distributions: %v, %d, want 2 (a1okdev, a1dupdev)", err, len(all))
	}
	for _, d := range all {
		if d.ProductKey == "a1gonedev" {
			t.Errorf("a device distribution of the failed product: %+v", d)
		}
	}

	// --after-product needs the one target.
	if r := c.run("devices", "submit", "--file", file, "--product", "a1okdev", "--source", testSource, "--targets", testTarget+",iot-cn-other0001",
		"--strategy", "nearest", "--after-product"); r.code != ExitUsage || !strings.Contains(r.stderr, "--after-product needs --target") {
		t.Errorf("--targets with --after-product: exit %d %s", r.code, r.stderr)
	}
}
