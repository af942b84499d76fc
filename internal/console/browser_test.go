package console_test

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/redis/go-redis/v9"

	"github.com/distq/distq/internal/alisim"
	"github.com/distq/distq/internal/app"
	"github.com/distq/distq/internal/devstack"
	"github.com/distq/distq/internal/distribution"
	"github.com/distq/distq/internal/quota"
	"github.com/distq/distq/internal/redistest"
	"github.com/distq/distq/internal/store"
)

// The console in a real headless Chromium, against the whole stack (api,
// worker, simulator) with short jobs: sign in, submit a CSV with a bad
// line, cancel what a second batch still has queued, watch the 20-item
// batch reach 100% without a reload, retry its failures, download its CSV,
// see a remote message with a <script> as text, and sign out; another
// team's token gets the 404 page for the batch. With
// DISTQ_UPDATE_SCREENSHOTS=1 it writes the screenshots of docs/CONSOLE.md.

const otherToken = "other-team-token-1234"

func chromium(t *testing.T) string {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "headless-shell"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Skip("no Chromium on this machine (apt-get install chromium): the console's browser test needs one; .ci/run installs it")
	return ""
}

// shooter takes the screenshots of the docs when asked to.
type shooter struct {
	t   *testing.T
	dir string
}

func (s shooter) shot(ctx context.Context, name string) {
	s.t.Helper()
	if s.dir == "" {
		return
	}
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		s.t.Fatalf("screenshot %s: %v", name, err)
	}
	if err := os.WriteFile(filepath.Join(s.dir, name+".png"), png, 0o644); err != nil {
		s.t.Fatal(err)
	}
}

func TestConsoleInABrowser(t *testing.T) {
	t.Parallel()
	exe := chromium(t)
	start := time.Now()
	db := redistest.New(t)
	st, err := devstack.Start(context.Background(), devstack.Options{
		RedisURL: db.URL(),
		// A generous margin: a CPU stall of the busy machine must not turn
		// into a throttled call (as in internal/e2e).
		Worker: app.WorkerOptions{Quota: quota.Options{MinMargin: 100 * time.Millisecond}},
		Sim:    alisim.Config{JobDuration: 300 * time.Millisecond, MissingProducts: []string{"a1Missing01", "a1Missing02"}},
		Env:    map[string]string{"DISTQ_API_TOKENS": "dev:" + devstack.DevToken + ",other:" + otherToken},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.Stop)
	base := st.APIURL + "/console"

	shots := shooter{t: t}
	if os.Getenv("DISTQ_UPDATE_SCREENSHOTS") == "1" {
		shots.dir = filepath.Join("..", "..", "docs", "console")
		if err := os.MkdirAll(shots.dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}

	alloc, cancel := chromedp.NewExecAllocator(t.Context(),
		chromedp.ExecPath(exe), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck, chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(1280, 900),
		chromedp.Flag("disable-quic", true), chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true), chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
	)
	defer cancel()
	ctx, cancel := chromedp.NewContext(alloc)
	defer cancel()
	ctx, cancel = context.WithTimeout(ctx, 90*time.Second)
	defer cancel()

	do := func(what string, steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(ctx, steps...); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	// navigate runs steps that load a page and returns its HTTP status.
	navigate := func(ctx context.Context, what string, steps ...chromedp.Action[chromedp.Void]) int64 {
		t.Helper()
		resp, err := chromedp.RunResponse(ctx, steps...)
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		return resp.Status
	}
	eval := func(expr string) string {
		t.Helper()
		v, err := chromedp.Run(ctx, chromedp.Evaluate[string](expr, chromedp.EvalAwaitPromise))
		if err != nil {
			t.Fatalf("evaluate %s: %v", expr, err)
		}
		return v
	}
	waitFor := func(what, predicate string) {
		t.Helper()
		if _, err := chromedp.Run(ctx, chromedp.Poll[bool](predicate, chromedp.WithPollingInterval(100*time.Millisecond), chromedp.WithPollingTimeout(45*time.Second))); err != nil {
			t.Fatalf("waiting for %s: %v (page: %s)", what, err, eval(`document.querySelector("main").innerText`))
		}
	}
	// Every field of the page has a label a screen reader reads, and
	// nothing needs the CSP to allow an inline script or style.
	labelled := func(page string) {
		t.Helper()
		if n := eval(`String(document.querySelectorAll("[style],script:not([src]),style").length + [...document.querySelectorAll("*")].filter(e => [...e.attributes].some(a => a.name.startsWith("on"))).length)`); n != "0" {
			t.Errorf("%s: %s elements with inline script or style", page, n)
		}
		if n := eval(`String([...document.querySelectorAll("input:not([type=hidden]),select,textarea")].filter(e => e.labels.length === 0).map(e => e.name))`); n != "" {
			t.Errorf("%s: fields without a label: %s", page, n)
		}
	}

	// Sign in.
	if code := navigate(ctx, "open the console", chromedp.Navigate(base+"/")); code != 200 {
		t.Fatalf("console: status %d", code)
	}
	if loc := eval(`location.pathname`); loc != "/console/login" {
		t.Fatalf("signed out, the console shows %s, want the sign-in page", loc)
	}
	labelled("sign-in")
	shots.shot(ctx, "login")
	do("type the token", chromedp.SendKeys(chromedp.ID("token"), devstack.DevToken))
	navigate(ctx, "sign in", chromedp.Submit(chromedp.ID("token")))
	if h := eval(`document.querySelector("h1").textContent`); h != "Your work" {
		t.Fatalf("after sign-in: %q", h)
	}
	// The keyboard: the first Tab reaches the skip link, Enter moves to
	// the content.
	do("tab", chromedp.KeyEvent("\t"))
	if f := eval(`document.activeElement.textContent`); f != "Skip to content" {
		t.Errorf("first Tab focuses %q, want the skip link", f)
	}
	do("enter", chromedp.KeyEvent("\r"))
	if f := eval(`document.activeElement.id`); f != "main" {
		t.Errorf("the skip link leads to %q, want main", f)
	}
	// The stylesheet and the script are allowed by the CSP (no inline ones
	// exist): the header is styled.
	if bg := eval(`getComputedStyle(document.querySelector("header.top")).backgroundColor`); bg != "rgb(17, 22, 31)" {
		t.Errorf("header background %q: the stylesheet did not apply", bg)
	}

	// Submit a CSV of 21 lines, one of them bad: the preview says which,
	// with the dry run's ETA.
	var csv strings.Builder
	csv.WriteString("product_key,source_instance_id,target_instance_id\n")
	for i := 1; i <= 18; i++ {
		fmt.Fprintf(&csv, "a1Console%02d,iotx-oxssharez200,iot-cn-6ja0000cons\n", i)
	}
	csv.WriteString("not a key!,iotx-oxssharez200,iot-cn-6ja0000cons\n")
	csv.WriteString("a1Missing01,iotx-oxssharez200,iot-cn-6ja0000cons\na1Missing02,iotx-oxssharez200,iot-cn-6ja0000cons\n")
	file := filepath.Join(t.TempDir(), "products.csv")
	if err := os.WriteFile(file, []byte(csv.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	navigate(ctx, "open submit", chromedp.Click(chromedp.CSS(`nav a[href="/console/submit"]`)))
	labelled("submit")
	do("choose the CSV", chromedp.SetUploadFiles(chromedp.ID("csv"), []string{file}))
	shots.shot(ctx, "submit")
	navigate(ctx, "preview", chromedp.Submit(chromedp.ID("csv")))
	if h := eval(`document.querySelector("#h-summary").textContent`); h != "20 to submit, 1 with errors" {
		t.Fatalf("preview summary %q", h)
	}
	if bad := eval(`document.querySelector("tr.invalid").innerText`); !strings.Contains(bad, "20") || !strings.Contains(bad, "product_key: is not a valid product key") {
		t.Fatalf("the bad line's row: %q", bad)
	}
	if eta := eval(`document.querySelector("#h-summary + p time").getAttribute("datetime")`); eta == "" {
		t.Fatalf("no ETA in the preview")
	}
	labelled("preview")
	shots.shot(ctx, "preview")
	// A double click submits once (the form's key; the script too).
	navigate(ctx, "submit the batch", chromedp.DoubleClick(chromedp.ID("submit-batch")))
	batchA := strings.TrimPrefix(eval(`location.pathname`), "/console/batches/")
	if !distribution.ValidID(distribution.KindBatch, batchA) {
		t.Fatalf("after submit, at %s", eval(`location.href`))
	}

	// Another team's work on the same account, over the REST API: the
	// account page names that team and shows its share, nothing of its work.
	body := `{"source_instance_id":"iotx-oxssharez200","target_instance_id":"iot-cn-6ja0000othr","items":[{"product_key":"a1Theirs1"},{"product_key":"a1Theirs2"},{"product_key":"a1Theirs3"},{"product_key":"a1Theirs4"}]}`
	req, _ := http.NewRequest("POST", st.APIURL+"/v1/batches", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+otherToken)
	req.Header.Set("Content-Type", "application/json")
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusAccepted {
		t.Fatalf("other team's batch: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}

	// A second batch, pasted, behind the first: cancel what it has queued.
	navigate(ctx, "open submit", chromedp.Navigate(base+"/submit"))
	var keys strings.Builder
	for i := 1; i <= 8; i++ {
		fmt.Fprintf(&keys, "a1Later%02d\n", i)
	}
	do("fill the form",
		chromedp.SendKeys(chromedp.ID("source"), "iotx-oxssharez200"),
		chromedp.SendKeys(chromedp.ID("target"), "iot-cn-6ja0000cons"),
		chromedp.SetValue(chromedp.ID("keys"), keys.String()))
	navigate(ctx, "preview", chromedp.Submit(chromedp.ID("keys")))
	navigate(ctx, "submit", chromedp.Click(chromedp.ID("submit-batch")))
	batchB := strings.TrimPrefix(eval(`location.pathname`), "/console/batches/")
	navigate(ctx, "cancel queued", chromedp.Click(chromedp.ID("cancel-queued")))
	if f := eval(`document.querySelector(".alert.info").textContent`); !strings.HasPrefix(f, "Canceled ") || f == "Canceled 0 queued distributions." {
		t.Fatalf("after cancel: %q", f)
	}
	waitFor("the second batch to finish", `document.querySelector("#percent").textContent === "100%"`)
	canceledB, _ := strconv.Atoi(eval(`document.querySelector('[data-state="canceled"]').textContent`))
	if canceledB == 0 {
		t.Fatalf("no item of the second batch canceled")
	}

	// The account while batch A runs (the screenshot of the docs).
	navigate(ctx, "account while busy", chromedp.Navigate(base+"/account"))
	shots.shot(ctx, "account")

	// The first batch's page follows it to 100% without a reload.
	navigate(ctx, "open batch A", chromedp.Navigate(base+"/batches/"+batchA))
	labelled("batch")
	if max := eval(`document.querySelector("progress").getAttribute("max")`); max != "20" {
		t.Fatalf("progress max %q, want 20", max)
	}
	do("mark the page", chromedp.Evaluate[chromedp.Void](`window.notReloaded = true`))
	waitFor("batch A at 100%", `document.querySelector("#percent").textContent === "100%"`)
	if eval(`String(window.notReloaded)`) != "true" {
		t.Fatalf("the page reloaded to update")
	}
	counts := eval(`[...document.querySelectorAll("[data-state]")].map(e => e.dataset.state + "=" + e.textContent).join(" ")`)
	if counts != "queued=0 submitting=0 running=0 succeeded=18 failed=2 canceled=0" {
		t.Fatalf("batch A counts %q", counts)
	}
	failures := eval(`document.querySelector("#h-failures").parentElement.innerText`)
	if !strings.Contains(failures, "iot.prod.NotExistedProduct") || !strings.Contains(failures, "2 failed") || !strings.Contains(failures, "a1Missing01") {
		t.Fatalf("failures: %q", failures)
	}
	shots.shot(ctx, "batch")

	// Retry the failed ones: they run again (and fail again: still missing).
	navigate(ctx, "retry failed", chromedp.Click(chromedp.ID("retry-failed")))
	if f := eval(`document.querySelector(".alert.info").textContent`); f != "Retrying 2 failed distributions." {
		t.Fatalf("after retry: %q", f)
	}
	waitFor("the retried items to finish", `document.querySelector("#percent").textContent === "100%" && document.querySelector('[data-state="failed"]').textContent === "2"`)

	// The CSV of every item.
	items := eval(`fetch(document.querySelector('a[download]').href).then(r => r.text())`)
	lines := strings.Split(strings.TrimSpace(items), "\n")
	if len(lines) != 21 || lines[0] != "id,product_key,state,job_id,remote_status,error_code" || !strings.Contains(items, ",a1Console01,succeeded,") || !strings.Contains(items, ",a1Missing02,failed,,,iot.prod.NotExistedProduct") {
		t.Fatalf("CSV of batch A (%d lines): %s", len(lines), items)
	}

	// A distribution's timeline, from acceptance to the remote job's end.
	var first string
	for _, l := range lines {
		if f := strings.Split(l, ","); f[1] == "a1Console01" {
			first = f[0]
		}
	}
	navigate(ctx, "open a distribution", chromedp.Navigate(base+"/distributions/"+first))
	tl := eval(`document.querySelector(".timeline").innerText`)
	for _, want := range []string{"Accepted and queued", "Create sent (attempt 1)", "Remote job ", "Succeeded (remote status: completed)"} {
		if !strings.Contains(tl, want) {
			t.Errorf("timeline of %s lacks %q: %s", first, want, tl)
		}
	}
	shots.shot(ctx, "distribution")

	// A remote message with a <script> is shown as text.
	rdb := redis.NewClient(db.Options())
	defer rdb.Close()
	xss := storeFailed(t, store.NewRedis(rdb, time.Hour), `<script>document.title="pwned";window.pwned=1</script>`)
	navigate(ctx, "open the distribution", chromedp.Navigate(base+"/distributions/"+xss))
	if msg := eval(`document.querySelector(".message").textContent`); !strings.HasPrefix(msg, "<script>") || eval(`String(window.pwned)`) != "undefined" || strings.Contains(eval(`document.title`), "pwned") {
		t.Fatalf("remote message %q ran or was not shown as text", msg)
	}
	shots.shot(ctx, "remote-error")

	// Home, account, and the phone's width.
	navigate(ctx, "home", chromedp.Navigate(base+"/"))
	if n := eval(`String(document.querySelectorAll(".batch-row").length)`); n != "2" {
		t.Fatalf("home lists %s batches, want 2 (a double click submits once)", n)
	}
	labelled("home")
	shots.shot(ctx, "home")
	navigate(ctx, "account", chromedp.Navigate(base+"/account"))
	labelled("account")
	if n := eval(`String(document.querySelectorAll("svg.chart[role=img]").length)`); n != "4" {
		t.Fatalf("account page has %s charts, want 4", n)
	}
	// Every Create sent: batch A's 20 and 2 retried, batch B's not
	// canceled, the one of the scripted record and the other team's 4 (a
	// Create refused by
	// throttling and sent again counts twice: the figure is calls).
	rate := eval(`document.querySelector("#rate-desc").textContent`)
	var creates int
	fmt.Sscanf(rate, "%d Creates", &creates)
	if want := 20 + 2 + 8 - canceledB + 1 + 4; creates < want || creates > want+3 {
		t.Errorf("rate summary %q, want %d Creates", rate, want)
	}
	if acct := eval(`document.querySelector("main").innerHTML`); !strings.Contains(acct, "other") || strings.Contains(acct, "a1Theirs") {
		t.Errorf("account page: want the other team named, none of its product keys")
	}
	do("phone width", chromedp.EmulateViewport(390, 844))
	navigate(ctx, "batch A on a phone", chromedp.Navigate(base+"/batches/"+batchA))
	if w := eval(`String(document.documentElement.scrollWidth)`); w != "390" {
		t.Errorf("at 390 px the batch page is %s px wide", w)
	}
	shots.shot(ctx, "batch-phone")
	navigate(ctx, "home on a phone", chromedp.Navigate(base+"/"))
	shots.shot(ctx, "home-phone")
	do("desktop width", chromedp.EmulateViewport(1280, 900))

	// Sign out: the console asks to sign in again.
	navigate(ctx, "sign out", chromedp.Click(chromedp.CSS(".signout button")))
	if msg := eval(`document.querySelector(".alert.info").textContent`); msg != "You signed out." {
		t.Fatalf("after sign-out: %q", msg)
	}
	navigate(ctx, "home after sign-out", chromedp.Navigate(base+"/batches/"+batchB))
	if loc := eval(`location.pathname`); loc != "/console/login" {
		t.Fatalf("after sign-out the console shows %s", loc)
	}

	// Another team, in another browser profile: the batch is not found.
	other, cancelOther := chromedp.NewContext(ctx, chromedp.WithNewBrowserContext())
	defer cancelOther()
	navigate(other, "other team: sign-in page", chromedp.Navigate(base+"/login"))
	if err := chromedp.Do(other, chromedp.SendKeys(chromedp.ID("token"), otherToken)); err != nil {
		t.Fatal(err)
	}
	navigate(other, "other team: sign in", chromedp.Submit(chromedp.ID("token")))
	if code := navigate(other, "other team: batch A", chromedp.Navigate(base+"/batches/"+batchA)); code != 404 {
		t.Fatalf("another team's batch page: status %d, want 404", code)
	}
	if h, err := chromedp.Run(other, chromedp.Text(chromedp.CSS("h1"))); err != nil || h != "Not found" {
		t.Fatalf("another team's batch page says %q (%v)", h, err)
	}
	if shots.dir != "" {
		shots.shot(other, "not-found")
	}
	t.Logf("browser scenario took %v", time.Since(start).Round(100*time.Millisecond))
}

// storeFailed writes a failed single distribution of the dev team whose
// remote error message is msg, as the worker stores it: verbatim.
func storeFailed(t *testing.T, st *store.Redis, msg string) string {
	t.Helper()
	now := time.Now().UTC()
	r := &distribution.Record{Distribution: distribution.Distribution{
		ID: distribution.NewID(now), Team: devstack.DevTeam, Account: "default", ProductKey: "a1Scripted",
		SourceInstanceID: "iotx-oxssharez200", TargetInstanceID: "iot-cn-6ja0000xss", State: distribution.StateQueued,
		CreatedAt: now, UpdatedAt: now,
	}, UID: devstack.DevUID, Queue: distribution.QueueSingle}
	if _, err := st.Insert(t.Context(), nil, []*distribution.Record{r}); err != nil {
		t.Fatal(err)
	}
	for _, step := range []func(*distribution.Record) error{
		func(r *distribution.Record) error { return r.StartSubmit(now) },
		func(r *distribution.Record) error {
			return r.Finish(now, distribution.StateFailed, &distribution.Error{Code: "iot.common.InvalidParameter", Message: msg, RequestID: "5E4D-REQ-XSS"}, nil)
		},
	} {
		if _, err := st.Update(t.Context(), r.ID, step); err != nil {
			t.Fatal(err)
		}
	}
	return r.ID
}
