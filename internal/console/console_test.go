package console_test

import (
	"context"
	"fmt"
	"html"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/distq/distq/internal/console"
	"github.com/distq/distq/internal/distribution"
	"github.com/distq/distq/internal/metrics"
	"github.com/distq/distq/internal/redistest"
	"github.com/distq/distq/internal/service"
	"github.com/distq/distq/internal/store"
)

const (
	tokenA = "token-team-a-0123456789"
	tokenB = "token-team-b-9876543210"
	uid    = "1234567890123456"
)

type enqueuer struct{}

func (enqueuer) Submit(context.Context, []*distribution.Record) error { return nil }

type noChanges struct{}

func (noChanges) Watch(string) (<-chan struct{}, func()) { return nil, func() {} }
func (noChanges) Run(context.Context)                    {}

// testConsole is the console on a real Redis, its service without a
// worker: what is submitted stays queued unless a test moves it.
type testConsole struct {
	URL   string
	Store *store.Redis
	Redis *redis.Client
	Svc   *service.Service
}

func newConsole(t *testing.T) *testConsole {
	t.Helper()
	db := redistest.New(t)
	st := store.NewRedis(db.Client, time.Hour)
	svc := service.New(service.Deps{
		Store: st, Idempotency: st, Enqueuer: enqueuer{}, Changes: noChanges{}, Figures: st,
		Accounts: []service.Account{{Name: "main", UID: uid, CreateQPS: 2, MaxJobs: 10, Default: true}},
		Metrics:  metrics.New(prometheus.NewRegistry()),
		Log:      slog.New(slog.DiscardHandler),
	})
	h := console.New(console.Deps{Service: svc, Sessions: st, Log: slog.New(slog.NewTextHandler(testWriter{t}, nil)), Tokens: map[string]string{tokenA: "team-a", tokenB: "team-b"}})
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return &testConsole{URL: srv.URL, Store: st, Redis: db.Client, Svc: svc}
}

// browser is an HTTP client with cookies that does not follow redirects.
type browser struct {
	t    *testing.T
	base string
	c    *http.Client
}

func (tc *testConsole) browser(t *testing.T) *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{t: t, base: tc.URL, c: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

type page struct {
	status int
	header http.Header
	body   string
}

func (b *browser) get(path string) page {
	b.t.Helper()
	resp, err := b.c.Get(b.base + path)
	if err != nil {
		b.t.Fatal(err)
	}
	return read(b.t, resp)
}

func (b *browser) post(path string, form url.Values) page {
	b.t.Helper()
	resp, err := b.c.PostForm(b.base+path, form)
	if err != nil {
		b.t.Fatal(err)
	}
	return read(b.t, resp)
}

func read(t *testing.T, resp *http.Response) page {
	t.Helper()
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return page{status: resp.StatusCode, header: resp.Header, body: string(raw)}
}

var csrfRE = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

func csrfOf(t *testing.T, p page) string {
	t.Helper()
	m := csrfRE.FindStringSubmatch(p.body)
	if m == nil {
		t.Fatalf("no CSRF token in page %d: %.300s", p.status, p.body)
	}
	return m[1]
}

// signIn signs b in with token and returns the session's CSRF token.
func (b *browser) signIn(token string) string {
	b.t.Helper()
	login := b.get("/console/login")
	p := b.post("/console/login", url.Values{"csrf": {csrfOf(b.t, login)}, "token": {token}})
	if p.status != http.StatusSeeOther || p.header.Get("Location") != "/console/" {
		b.t.Fatalf("sign in: %d to %q, want 303 to /console/", p.status, p.header.Get("Location"))
	}
	return csrfOf(b.t, b.get("/console/"))
}

func TestHeadersOnEveryAnswer(t *testing.T) {
	t.Parallel()
	tc := newConsole(t)
	b := tc.browser(t)
	for _, path := range []string{"/console/login", "/console/", "/console/nope", "/console/assets/console.css"} {
		p := b.get(path)
		csp := p.header.Get("Content-Security-Policy")
		if !strings.Contains(csp, "script-src 'self'") || strings.Contains(csp, "unsafe-inline") || !strings.Contains(csp, "frame-ancestors 'none'") {
			t.Errorf("%s: CSP %q, want only the console's own scripts and no framing", path, csp)
		}
		if p.header.Get("X-Frame-Options") != "DENY" || p.header.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("%s: X-Frame-Options %q, X-Content-Type-Options %q", path, p.header.Get("X-Frame-Options"), p.header.Get("X-Content-Type-Options"))
		}
	}
	login := b.get("/console/login")
	if !strings.Contains(login.body, `name="token"`) || login.status != http.StatusOK {
		t.Fatalf("login page %d without a token field", login.status)
	}
	// No inline script or style anywhere the CSP would have to allow.
	for _, bad := range []string{"<script>", "style=", "onclick=", "<style"} {
		if strings.Contains(login.body, bad) {
			t.Errorf("login page contains %q", bad)
		}
	}
}

func TestSignInAndOut(t *testing.T) {
	t.Parallel()
	tc := newConsole(t)
	b := tc.browser(t)
	if p := b.get("/console/account"); p.status != http.StatusSeeOther || !strings.HasPrefix(p.header.Get("Location"), "/console/login?next=") {
		t.Fatalf("signed out: %d to %q, want 303 to the sign-in page", p.status, p.header.Get("Location"))
	}
	login := b.get("/console/login")
	if p := b.post("/console/login", url.Values{"csrf": {"forged"}, "token": {tokenA}}); p.status != http.StatusForbidden {
		t.Fatalf("sign in with a forged CSRF token: %d, want 403", p.status)
	}
	login = b.get("/console/login")
	if p := b.post("/console/login", url.Values{"csrf": {csrfOf(t, login)}, "token": {"not-a-token"}}); p.status != http.StatusUnauthorized || !strings.Contains(p.body, "not valid") {
		t.Fatalf("sign in with a bad token: %d, want 401 saying so", p.status)
	}
	login = b.get("/console/login")
	p := b.post("/console/login", url.Values{"csrf": {csrfOf(t, login)}, "token": {tokenA}, "next": {"/console/account"}})
	if p.status != http.StatusSeeOther || p.header.Get("Location") != "/console/account" {
		t.Fatalf("sign in: %d to %q", p.status, p.header.Get("Location"))
	}
	var cookie *http.Cookie
	for _, c := range (&http.Response{Header: p.header}).Cookies() {
		if c.Name == "distq_console" && c.Value != "" {
			cookie = c
		}
	}
	if cookie == nil || !cookie.HttpOnly || cookie.SameSite != http.SameSiteStrictMode || cookie.MaxAge <= 0 {
		t.Fatalf("session cookie %+v: want HttpOnly, SameSite=Strict, with an expiry", cookie)
	}
	// The session lives in Redis, with an expiry, under a hash of the cookie.
	keys, _ := tc.Redis.Keys(t.Context(), "distq:session:*").Result()
	if len(keys) != 1 || strings.Contains(keys[0], cookie.Value) {
		t.Fatalf("session keys %v: want one, not naming the cookie", keys)
	}
	if ttl := tc.Redis.TTL(t.Context(), keys[0]).Val(); ttl <= 0 || ttl > 8*time.Hour {
		t.Fatalf("session TTL %v, want at most 8h", ttl)
	}
	home := b.get("/console/")
	if home.status != http.StatusOK || !strings.Contains(home.body, "team-a") {
		t.Fatalf("home %d, want the team's page", home.status)
	}
	// Sign-out needs the CSRF token, and ends the session in Redis.
	if p := b.post("/console/logout", url.Values{}); p.status != http.StatusForbidden {
		t.Fatalf("sign out without CSRF: %d, want 403", p.status)
	}
	if p := b.post("/console/logout", url.Values{"csrf": {csrfOf(t, home)}}); p.status != http.StatusSeeOther {
		t.Fatalf("sign out: %d", p.status)
	}
	if n := tc.Redis.Exists(t.Context(), keys[0]).Val(); n != 0 {
		t.Fatalf("session still in Redis after sign-out")
	}
	// The old cookie no longer opens anything.
	replay := tc.browser(t)
	u, _ := url.Parse(tc.URL + "/console/")
	replay.c.Jar.SetCookies(u, []*http.Cookie{{Name: "distq_console", Value: cookie.Value, Path: "/console/"}})
	if p := replay.get("/console/"); p.status != http.StatusSeeOther {
		t.Fatalf("old cookie after sign-out: %d, want a redirect to sign in", p.status)
	}
}

func submitBatch(t *testing.T, svc *service.Service, team string, pks ...string) *service.BatchSubmitted {
	t.Helper()
	br := service.BatchRequest{Defaults: distribution.Request{SourceInstanceID: "iotx-src", TargetInstanceID: "iotx-dst"}}
	for _, pk := range pks {
		br.Items = append(br.Items, service.BatchItem{Request: distribution.Request{ProductKey: pk}})
	}
	res, err := svc.SubmitBatch(t.Context(), team, br)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// fail moves a queued distribution to failed with e, as the worker would.
func fail(t *testing.T, st *store.Redis, id string, e *distribution.Error) {
	t.Helper()
	now := time.Now().UTC()
	for _, step := range []func(r *distribution.Record) error{
		func(r *distribution.Record) error { return r.StartSubmit(now) },
		func(r *distribution.Record) error { return r.Finish(now, distribution.StateFailed, e, nil) },
	} {
		if _, err := st.Update(t.Context(), id, step); err != nil {
			t.Fatal(err)
		}
	}
}

func TestAnotherTeamsWorkIsNotFound(t *testing.T) {
	t.Parallel()
	tc := newConsole(t)
	res := submitBatch(t, tc.Svc, "team-a", "a1One", "a1Two")
	a, b := tc.browser(t), tc.browser(t)
	a.signIn(tokenA)
	csrfB := b.signIn(tokenB)
	bid, did := res.Batch.ID, res.Results[0].ID
	if p := a.get("/console/batches/" + bid); p.status != http.StatusOK || !strings.Contains(p.body, bid) || !strings.Contains(p.body, "<progress") {
		t.Fatalf("own batch: %d", p.status)
	}
	if p := a.get("/console/batches/" + bid + "/live"); p.status != http.StatusOK || !strings.Contains(p.body, `data-state="queued">2<`) || strings.Contains(p.body, "<html") {
		t.Fatalf("own batch's live part: %d %.300s", p.status, p.body)
	}
	for _, path := range []string{"/console/batches/" + bid, "/console/batches/" + bid + "/live", "/console/batches/" + bid + "/items.csv", "/console/distributions/" + did} {
		if p := b.get(path); p.status != http.StatusNotFound || !strings.Contains(p.body, "Not found") {
			t.Errorf("team B GET %s: %d, want the 404 page", path, p.status)
		}
	}
	if p := b.post("/console/batches/"+bid+"/cancel", url.Values{"csrf": {csrfB}}); p.status != http.StatusNotFound {
		t.Errorf("team B cancels team A's batch: %d, want 404", p.status)
	}
	if v, _ := tc.Svc.Batch(t.Context(), "team-a", bid); v.Counts[distribution.StateQueued] != 2 {
		t.Errorf("team A's batch after team B's cancel: %v", v.Counts)
	}
	if p := b.get("/console/"); strings.Contains(p.body, bid) || strings.Contains(p.body, "a1One") {
		t.Errorf("team B's home shows team A's work")
	}
}

func TestRemoteTextIsEscaped(t *testing.T) {
	t.Parallel()
	tc := newConsole(t)
	res := submitBatch(t, tc.Svc, "team-a", "a1Xss", "a1Other")
	msg := `<script>document.title="pwned"</script><img src=x onerror=alert(1)>`
	fail(t, tc.Store, res.Results[0].ID, &distribution.Error{Code: `iot.<b>bad</b>`, Message: msg, RequestID: `"><script>x</script>`})
	a := tc.browser(t)
	a.signIn(tokenA)
	for _, path := range []string{"/console/distributions/" + res.Results[0].ID, "/console/batches/" + res.Batch.ID} {
		p := a.get(path)
		if p.status != http.StatusOK {
			t.Fatalf("%s: %d", path, p.status)
		}
		if strings.Contains(p.body, "<script>document") || strings.Contains(p.body, "<img src=x") || strings.Contains(p.body, "<b>bad") {
			t.Errorf("%s renders remote text as markup", path)
		}
		if !strings.Contains(p.body, html.EscapeString(msg)) && !strings.Contains(p.body, "&lt;script&gt;document.title=&#34;pwned&#34;&lt;/script&gt;") {
			t.Errorf("%s does not show the message as text", path)
		}
	}
	csv := a.get("/console/batches/" + res.Batch.ID + "/items.csv")
	if csv.status != http.StatusOK || !strings.HasPrefix(csv.header.Get("Content-Type"), "text/csv") || !strings.Contains(csv.body, "id,product_key,state,job_id,remote_status,error_code\n") ||
		!strings.Contains(csv.body, ",a1Xss,failed,,,iot.<b>bad</b>\n") || !strings.Contains(csv.body, ",a1Other,queued,,,\n") {
		t.Errorf("CSV %d %q", csv.status, csv.body)
	}
}

var hiddenRE = regexp.MustCompile(`name="(key|items|account)" value="([^"]*)"`)

func TestPreviewThenSubmitOnce(t *testing.T) {
	t.Parallel()
	tc := newConsole(t)
	a := tc.browser(t)
	csrf := a.signIn(tokenA)
	keys := "product_key,source_instance_id\na1Good1\nbad key!\n\na1Good2,iotx-other\na1Good1\n"
	p := a.post("/console/submit/preview", url.Values{"csrf": {csrf}, "keys": {keys}, "source_instance_id": {"iotx-src"}, "target_instance_id": {"iotx-dst"}})
	if p.status != http.StatusOK {
		t.Fatalf("preview: %d %.500s", p.status, p.body)
	}
	for _, want := range []string{"2 to submit", "2 with errors", "product_key: is not a valid product key", "repeats item", "Submit 2 distributions", "should be done"} {
		if !strings.Contains(p.body, html.EscapeString(want)) {
			t.Errorf("preview lacks %q", want)
		}
	}
	if n, _ := tc.Redis.Keys(t.Context(), "distq:d:*").Result(); len(n) != 0 {
		t.Fatalf("the preview wrote %d records", len(n))
	}
	form := url.Values{"csrf": {csrf}}
	for _, m := range hiddenRE.FindAllStringSubmatch(p.body, -1) {
		form.Set(m[1], html.UnescapeString(m[2]))
	}
	if form.Get("key") == "" || !strings.Contains(form.Get("items"), "a1Good2,iotx-other,iotx-dst") {
		t.Fatalf("submit form %v", form)
	}
	// A double click: two submits of the same preview make one batch.
	var wg sync.WaitGroup
	locs := make([]string, 2)
	for i := range locs {
		wg.Go(func() {
			resp, err := a.c.PostForm(a.base+"/console/submit", form)
			if err != nil {
				t.Error(err)
				return
			}
			resp.Body.Close()
			locs[i] = fmt.Sprint(resp.StatusCode, " ", resp.Header.Get("Location"))
		})
	}
	wg.Wait()
	if locs[0] != locs[1] || !strings.HasPrefix(locs[0], "303 /console/batches/b_") {
		t.Fatalf("two submits answered %q and %q, want the same batch", locs[0], locs[1])
	}
	batches, _, err := tc.Svc.Batches(t.Context(), "team-a", "", 10)
	if err != nil || len(batches) != 1 || batches[0].Size != 2 {
		t.Fatalf("batches %+v %v: want one of 2 items", batches, err)
	}
	// Its page: the flash, the counts by their API names.
	bp := a.get(strings.TrimPrefix(locs[0], "303 "))
	for _, want := range []string{"Batch submitted.", `data-state="queued">2<`, `data-state="canceled">0<`, "Cancel queued items", "Retry failed items"} {
		if !strings.Contains(bp.body, want) {
			t.Errorf("batch page lacks %q", want)
		}
	}
	// Cancel with the form's token; without it the action is refused.
	bid := batches[0].ID
	if p := a.post("/console/batches/"+bid+"/cancel", url.Values{"csrf": {"x"}}); p.status != http.StatusForbidden {
		t.Fatalf("cancel with a bad CSRF token: %d", p.status)
	}
	if p := a.post("/console/batches/"+bid+"/cancel", url.Values{"csrf": {csrf}}); p.status != http.StatusSeeOther || !strings.Contains(p.header.Get("Location"), "done=canceled&n=2") {
		t.Fatalf("cancel: %d %q", p.status, p.header.Get("Location"))
	}
	if p := a.post("/console/batches/"+bid+"/retry", url.Values{"csrf": {csrf}}); p.status != http.StatusConflict || !strings.Contains(p.body, "is failed") {
		t.Fatalf("retry without failed items: %d, want 409 saying none failed", p.status)
	}
}

func TestHomeFiltersAndAccount(t *testing.T) {
	t.Parallel()
	tc := newConsole(t)
	old := submitBatch(t, tc.Svc, "team-a", "a1Old")
	newer := submitBatch(t, tc.Svc, "team-a", "a1New1", "a1New2")
	submitBatch(t, tc.Svc, "team-b", "a1Theirs")
	single, err := tc.Svc.Submit(t.Context(), "team-a", distribution.Request{ProductKey: "a1Single", SourceInstanceID: "iotx-src", TargetInstanceID: "iotx-dst"})
	if err != nil {
		t.Fatal(err)
	}
	fail(t, tc.Store, newer.Results[1].ID, &distribution.Error{Code: "iot.x", Message: "no"})
	a := tc.browser(t)
	a.signIn(tokenA)
	home := a.get("/console/")
	iNew, iOld := strings.Index(home.body, newer.Batch.ID), strings.Index(home.body, old.Batch.ID)
	if iNew < 0 || iOld < 0 || iNew > iOld || !strings.Contains(home.body, single.ID) || strings.Contains(home.body, "a1New1") {
		t.Fatalf("home: want both batches newest first and the single distribution only")
	}
	f := a.get("/console/?state=failed")
	if !strings.Contains(f.body, newer.Batch.ID) || strings.Contains(f.body, old.Batch.ID) || !strings.Contains(f.body, "a1New2") || strings.Contains(f.body, single.ID) {
		t.Errorf("filter by state failed: want the batch with a failure and its failed item only")
	}
	pk := a.get("/console/?product_key=a1Old")
	if !strings.Contains(pk.body, old.Batch.ID) || strings.Contains(pk.body, newer.Batch.ID) {
		t.Errorf("filter by product key: want only the batch holding it")
	}
	// The account page: charts, other teams by name, none of their work.
	acct := a.get("/console/account")
	for _, want := range []string{"<svg", "Create rate, last hour", "team-b", "Backlog per team", "Share per team", "Job slots"} {
		if !strings.Contains(acct.body, want) {
			t.Errorf("account page lacks %q", want)
		}
	}
	if strings.Contains(acct.body, "a1Theirs") || strings.Contains(acct.body, "b_") || strings.Contains(acct.body, "d_") {
		t.Errorf("account page shows another team's product keys or ids")
	}
}

// testWriter sends the console's log to the test's.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// Failed sign-ins from one address are limited; a session ends when its
// token is no longer configured.
func TestSignInLimitsAndRevokedTokens(t *testing.T) {
	t.Parallel()
	tc := newConsole(t)
	a := tc.browser(t)
	a.signIn(tokenA)
	// The same sessions, served by a console whose configuration dropped
	// team A's token.
	revoked := httptest.NewServer(console.New(console.Deps{Service: tc.Svc, Sessions: tc.Store, Tokens: map[string]string{tokenB: "team-b"}}))
	defer revoked.Close()
	u, _ := url.Parse(tc.URL + "/console/")
	r, _ := url.Parse(revoked.URL + "/console/")
	a.c.Jar.SetCookies(r, a.c.Jar.Cookies(u))
	a.base = revoked.URL
	if p := a.get("/console/"); p.status != http.StatusSeeOther {
		t.Fatalf("session of a revoked token: %d, want a redirect to sign in", p.status)
	}
	a.base = tc.URL
	if p := a.get("/console/"); p.status != http.StatusOK {
		t.Fatalf("the same session where the token is configured: %d, want 200", p.status)
	}
	// (Sign-ins above succeeded; now fail from the same address.)
	b := tc.browser(t)
	status := 0
	for range 11 {
		login := b.get("/console/login")
		status = b.post("/console/login", url.Values{"csrf": {csrfOf(t, login)}, "token": {"guess-guess-guess"}}).status
	}
	if status != http.StatusTooManyRequests {
		t.Fatalf("11th failed sign-in in a row: %d, want 429", status)
	}
	login := b.get("/console/login")
	if p := b.post("/console/login", url.Values{"csrf": {csrfOf(t, login)}, "token": {tokenA}}); p.status != http.StatusTooManyRequests {
		t.Fatalf("right token while limited: %d, want 429", p.status)
	}
}
