package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/distq/distq/client"
	"github.com/distq/distq/internal/service"
)

// Only an operator's token opens the admin routes: a team's token is 403
// forbidden on every one, no token or an unknown one 401; and an
// operator's token opens no team route.
func TestAdminRoutesNeedAnOperatorsToken(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	a := newAPI(t, apiOptions{})
	for _, r := range adminRouteList() {
		for _, tc := range []struct {
			token string
			want  int
			code  string
		}{{tokenA, 403, "forbidden"}, {tokenB, 403, "forbidden"}, {"", 401, "unauthorized"}, {"token-nobody-0123456789", 401, "unauthorized"}, {tokenAdmin, 200, ""}} {
			r.token = tc.token
			resp, err := a.do(ctx, r)
			if err != nil {
				t.Fatal(err)
			}
			if resp.status != tc.want {
				t.Errorf("%s %s with token %q: %d %s, want %d", r.method, r.path, tc.token, resp.status, resp.body, tc.want)
				continue
			}
			if tc.code != "" {
				if got := decode[errorBody](t, resp.body).Error.Code; got != tc.code {
					t.Errorf("%s %s with token %q: code %q, want %q", r.method, r.path, tc.token, got, tc.code)
				}
			}
		}
	}
	// A team's token refused by an admin route does not count as a failed
	// authentication: it is a known token, used in the wrong place.
	for range 30 {
		resp, err := a.do(ctx, request{method: http.MethodGet, path: "/v1/admin/accounts", token: tokenA})
		if err != nil || resp.status != http.StatusForbidden {
			t.Fatalf("a team's token, again: %v %+v", err, resp)
		}
	}
	// Symmetrically, an operator's token on a team route is a 403, never
	// counted as a failed authentication (30 of them lock nobody out).
	for range 30 {
		resp, err := a.do(ctx, request{method: http.MethodGet, path: "/v1/distributions", token: tokenAdmin})
		if err != nil || resp.status != http.StatusForbidden {
			t.Fatalf("an operator's token on a team route: %v %+v, want 403", err, resp)
		}
	}
	if resp, err := a.do(ctx, request{method: http.MethodGet, path: "/v1/distributions", token: tokenA}); err != nil || resp.status != http.StatusOK {
		t.Fatalf("a team's token after the operator's: %v %+v, want 200", err, resp)
	}
}

// The typed client, with an operator's token, over every admin route:
// limits, pauses and weights go round trip with their origin and author,
// bad values are 400 bad_value naming the field, and each answer decodes
// without losing a field.
func TestAdminClientAgainstAPI(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	doc, router := loadSpec(ctx, t)
	var logs syncBuffer
	holders := &slotHolders{}
	a := newAPI(t, apiOptions{log: slog.New(slog.NewJSONHandler(&logs, nil)), slots: holders})
	rec := &exchangeRecorder{transport: &http.Transport{}}
	t.Cleanup(rec.transport.CloseIdleConnections)
	c := client.New(a.URL, tokenAdmin, client.WithHTTPClient(&http.Client{Transport: rec, Timeout: time.Minute}))
	chk := &clientCheck{doc: doc, router: router, rec: rec}
	holders.ids = []string{a.createDistribution(ctx, t, tokenB, "a1Admin1").ID}

	list, err := c.AdminAccounts(ctx)
	chk.exchange(t, http.StatusOK, client.AdminAccountList{Accounts: list}, err)
	if len(list) != 1 || list[0].Name != "main" || list[0].UID != accountUID {
		t.Fatalf("accounts %+v", list)
	}
	acct := list[0]
	if acct.CreateQPS != (client.Setting{Value: 2, Origin: client.OriginConfig}) || acct.MaxJobs.Value != 10 || acct.Pause.Paused || len(acct.Teams) != 2 {
		t.Fatalf("account from the configuration: %+v", acct)
	}
	if ta := acct.Teams[0]; ta.Team != teamA || ta.Weight != (client.Setting{Value: 2, Origin: client.OriginConfig}) || ta.Paused || ta.Backlog != nil {
		t.Errorf("team A %+v, want weight 2 from the configuration, no backlog (none wired)", ta)
	}
	if tb := acct.Teams[1]; tb.Slots != 1 || len(tb.SlotHolders) != 1 || tb.SlotHolders[0] != holders.ids[0] || acct.SlotsInUse != 1 {
		t.Errorf("team B %+v, want its distribution holding a slot", tb)
	}

	// Limits: set both, then clear one.
	qps, jobs := 1, 4
	before := time.Now().Add(-time.Second)
	got, err := c.SetLimits(ctx, "main", client.LimitsChange{CreateQPS: &qps, MaxJobs: &jobs})
	chk.exchange(t, http.StatusOK, got, err)
	if got.CreateQPS.Value != 1 || got.CreateQPS.Origin != client.OriginOverride || got.CreateQPS.SetBy != adminName ||
		got.CreateQPS.SetAt == nil || got.CreateQPS.SetAt.Before(before) || got.MaxJobs.Value != 4 {
		t.Fatalf("after setting the limits: %+v %+v", got.CreateQPS, got.MaxJobs)
	}
	got, err = c.SetLimits(ctx, "main", client.LimitsChange{ClearCreateQPS: true})
	chk.exchange(t, http.StatusOK, got, err)
	if got.CreateQPS != (client.Setting{Value: 2, Origin: client.OriginConfig}) || got.MaxJobs.Value != 4 || got.MaxJobs.Origin != client.OriginOverride {
		t.Fatalf("after clearing create_qps: %+v %+v, want 2 from config and 4 still overridden", got.CreateQPS, got.MaxJobs)
	}
	if raw := string(rec.reqBody); raw != `{"create_qps":null}` {
		t.Errorf("the client sent %s, want only create_qps, null", raw)
	}
	bad := 101
	_, err = c.SetLimits(ctx, "main", client.LimitsChange{MaxJobs: &bad})
	chk.exchange(t, http.StatusBadRequest, nil, err)
	var ce *client.Error
	if !errors.As(err, &ce) || ce.Code != "bad_value" || len(ce.FieldErrors()) != 1 || ce.FieldErrors()[0].Field != "max_jobs" {
		t.Fatalf("max_jobs 101: %v, want bad_value on max_jobs", err)
	}
	_, err = c.SetLimits(ctx, "nope", client.LimitsChange{CreateQPS: &qps})
	chk.exchange(t, http.StatusNotFound, nil, err)

	// Pauses: the account, then one team; resuming the account leaves the
	// team paused on its own.
	got, err = c.PauseAccount(ctx, "main")
	chk.exchange(t, http.StatusOK, got, err)
	if !got.Pause.Paused || got.Pause.SetBy != adminName || !got.Teams[0].Paused || !got.Teams[1].Paused || got.Teams[0].Pause.Paused {
		t.Fatalf("paused account %+v", got)
	}
	got, err = c.PauseTeam(ctx, "main", teamB)
	chk.exchange(t, http.StatusOK, got, err)
	got, err = c.ResumeAccount(ctx, "main")
	chk.exchange(t, http.StatusOK, got, err)
	if got.Pause.Paused || got.Teams[0].Paused || !got.Teams[1].Paused || !got.Teams[1].Pause.Paused || got.Teams[1].Pause.SetBy != adminName {
		t.Fatalf("after resuming the account: %+v", got)
	}
	got, err = c.ResumeTeam(ctx, "main", teamB)
	chk.exchange(t, http.StatusOK, got, err)
	if got.Teams[1].Paused {
		t.Fatalf("team B still paused: %+v", got.Teams[1])
	}
	_, err = c.PauseTeam(ctx, "main", "nobody")
	chk.exchange(t, http.StatusNotFound, nil, err)

	// Weights.
	w, err := c.SetTeamWeight(ctx, teamB, 3)
	chk.exchange(t, http.StatusOK, w, err)
	if w.Team != teamB || w.Weight.Value != 3 || w.Weight.Origin != client.OriginOverride || w.Weight.SetBy != adminName {
		t.Fatalf("weight %+v", w)
	}
	weights, err := c.TeamWeights(ctx)
	chk.exchange(t, http.StatusOK, client.TeamWeightList{Teams: weights}, err)
	if len(weights) != 2 || weights[0].Weight.Value != 2 || weights[1].Weight.Value != 3 {
		t.Fatalf("weights %+v", weights)
	}
	w, err = c.ClearTeamWeight(ctx, teamB)
	chk.exchange(t, http.StatusOK, w, err)
	if w.Weight != (client.Setting{Value: 1, Origin: client.OriginConfig}) {
		t.Fatalf("cleared weight %+v, want 1 by default", w)
	}
	_, err = c.SetTeamWeight(ctx, teamB, 0)
	chk.exchange(t, http.StatusBadRequest, nil, err)
	one, err := c.AdminAccount(ctx, "main")
	chk.exchange(t, http.StatusOK, one, err)
	_, err = c.AdminAccount(ctx, "nope")
	chk.exchange(t, http.StatusNotFound, nil, err)

	// A team's token, through the client.
	_, err = client.New(a.URL, tokenA, client.WithHTTPClient(&http.Client{Transport: rec})).AdminAccounts(ctx)
	chk.exchange(t, http.StatusForbidden, nil, err)

	// Every write was logged with the operator's name.
	writes := 0
	for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		var l map[string]any
		if json.Unmarshal([]byte(line), &l) != nil {
			continue
		}
		if msg, _ := l["msg"].(string); strings.HasPrefix(msg, "admin: ") {
			writes++
			if l["admin"] != adminName {
				t.Errorf("log line without the operator: %s", line)
			}
		}
	}
	if writes != 8 { // 2 limits, 4 pauses, 2 weights
		t.Errorf("%d admin writes logged, want 8:\n%s", writes, logs.String())
	}
}

// Accounts of one UID share one budget: an override of one shows on the
// other, with shared_with naming it.
func TestAdminAccountsOfOneUID(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	a := newAPI(t, apiOptions{accounts: []service.Account{
		{Name: "main", UID: accountUID, CreateQPS: 2, MaxJobs: 10, Default: true},
		{Name: "main-key2", UID: accountUID, CreateQPS: 2, MaxJobs: 10},
		{Name: "lab", UID: "42", CreateQPS: 2, MaxJobs: 10},
	}})
	c := client.New(a.URL, tokenAdmin, client.WithHTTPClient(a.Client))
	qps := 1
	if _, err := c.SetLimits(ctx, "main-key2", client.LimitsChange{CreateQPS: &qps}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.PauseTeam(ctx, "main", teamA); err != nil {
		t.Fatal(err)
	}
	list, err := c.AdminAccounts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, acct := range list {
		shared := acct.Name != "lab"
		if got := acct.CreateQPS.Value == 1; got != shared {
			t.Errorf("%s: create_qps %+v", acct.Name, acct.CreateQPS)
		}
		if got := acct.Teams[0].Paused; got != shared {
			t.Errorf("%s: team A paused %t", acct.Name, got)
		}
		if shared && (len(acct.SharedWith) != 1 || acct.SharedWith[0] == acct.Name) || !shared && len(acct.SharedWith) != 0 {
			t.Errorf("%s: shared_with %v", acct.Name, acct.SharedWith)
		}
	}
}

// slotHolders reports fixed slot holders.
type slotHolders struct{ ids []string }

func (h *slotHolders) SlotHolders(context.Context, string) ([]string, int, error) {
	return h.ids, 0, nil
}

// syncBuffer is a bytes.Buffer safe for a logger and a test to share.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Pause and resume take no body: nothing or {} only; anything else is a
// 400 and changes nothing.
func TestPauseTakesNoBody(t *testing.T) {
	t.Parallel()
	a := newAPI(t, apiOptions{})
	ctx := t.Context()
	for _, body := range []string{`{"x":1}`, strings.Repeat("a", 1<<20)} {
		resp, err := a.do(ctx, request{method: http.MethodPost, path: "/v1/admin/accounts/main/pause", token: tokenAdmin, body: []byte(body)})
		if err != nil || resp.status != http.StatusBadRequest {
			t.Fatalf("pause with body %.10q: %v %+v, want 400", body, err, resp)
		}
	}
	for _, body := range []string{"", "{}"} {
		resp, err := a.do(ctx, request{method: http.MethodPost, path: "/v1/admin/accounts/main/resume", token: tokenAdmin, body: []byte(body)})
		if err != nil || resp.status != http.StatusOK {
			t.Fatalf("resume with body %q: %v %+v, want 200", body, err, resp)
		}
	}
}
