package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/distq/distq/client"
	"github.com/distq/distq/internal/alisim"
	"github.com/distq/distq/internal/devstack"
	"github.com/distq/distq/internal/redistest"
)

const testAdminToken = "admin-token-ops-0123456789"

// distqctl admin, against the whole stack: status, limits, pause and
// resume (account and team), weights, each change shown with its origin;
// and the refusals with their exit codes.
func TestAdminCommands(t *testing.T) {
	t.Parallel()
	db := redistest.New(t)
	st, err := devstack.Start(context.Background(), devstack.Options{
		RedisURL: db.URL(),
		Sim:      alisim.Config{JobDuration: 300 * time.Millisecond},
		Env:      map[string]string{"DISTQ_ADMIN_TOKENS": "ops:" + testAdminToken, "DISTQ_TEAM_WEIGHTS": devstack.DevTeam + "=2"},
	})
	if err != nil {
		t.Fatalf("start stack: %v", err)
	}
	t.Cleanup(st.Stop)
	c := newCLI(t, st)

	// Without an operator's token, or with a team's.
	if r := c.run("admin", "status"); r.code != ExitUsage || !strings.Contains(r.stderr, "DISTQ_ADMIN_TOKEN") {
		t.Errorf("no admin token: exit %d %q", r.code, r.stderr)
	}
	if r := c.run("admin", "status", "--admin-token", st.Token); r.code != ExitUsage || !strings.Contains(r.stderr, "forbidden") {
		t.Errorf("a team's token: exit %d %q, want %d and forbidden", r.code, r.stderr, ExitUsage)
	}
	c.env["DISTQ_ADMIN_TOKEN"] = testAdminToken

	r := c.run("admin", "status")
	for _, want := range []string{"account default (uid " + devstack.DevUID + ")", "create_qps:  2 (config)", "max_jobs:    10 (config)", "paused:      no",
		"  TEAM  WEIGHT", "  dev   2 (config)"} {
		if r.code != 0 || !strings.Contains(r.stdout, want) {
			t.Errorf("status: exit %d, lacks %q:\n%s", r.code, want, r.stdout)
		}
	}

	r = c.run("admin", "limits", "--account", "default", "--create-qps", "1", "--max-jobs", "4")
	if r.code != 0 || !strings.Contains(r.stdout, "account default: create_qps 1 (override by ops, ") || !strings.Contains(r.stdout, "max_jobs 4 (override by ops, ") {
		t.Errorf("limits: exit %d\n%s", r.code, r.stdout)
	}
	r = c.run("admin", "status", "default", "-o", "json")
	var acct client.AdminAccount
	if err := json.Unmarshal([]byte(r.stdout), &acct); err != nil || r.code != 0 || acct.CreateQPS.Value != 1 || acct.CreateQPS.Origin != "override" || acct.CreateQPS.SetBy != "ops" {
		t.Errorf("status -o json: exit %d %v %+v", r.code, err, acct)
	}
	if r := c.run("admin", "limits", "--account", "default", "--clear"); r.code != 0 || !strings.Contains(r.stdout, "create_qps 2 (config), max_jobs 10 (config)") {
		t.Errorf("limits --clear: exit %d\n%s", r.code, r.stdout)
	}

	if r := c.run("admin", "pause", "--account", "default", "--team", devstack.DevTeam); r.code != 0 || !strings.Contains(r.stdout, "team dev: paused by ops, ") {
		t.Errorf("pause team: exit %d\n%s", r.code, r.stdout)
	}
	if r := c.run("admin", "pause", "--account", "default"); r.code != 0 || !strings.Contains(r.stdout, "account default: paused by ops, ") {
		t.Errorf("pause account: exit %d\n%s", r.code, r.stdout)
	}
	if r := c.run("admin", "resume", "--account", "default"); r.code != 0 || !strings.Contains(r.stdout, "account default: no") {
		t.Errorf("resume account: exit %d\n%s", r.code, r.stdout)
	}
	if r := c.run("admin", "status", "default"); !strings.Contains(r.stdout, "  dev   2 (config)  yes") {
		t.Errorf("status after resuming the account: the team paused on its own is not shown paused:\n%s", r.stdout)
	}
	if r := c.run("admin", "resume", "--account", "default", "--team", devstack.DevTeam); r.code != 0 || !strings.Contains(r.stdout, "team dev: no") {
		t.Errorf("resume team: exit %d\n%s", r.code, r.stdout)
	}

	if r := c.run("admin", "weight", "--team", devstack.DevTeam, "5"); r.code != 0 || !strings.Contains(r.stdout, "team dev: weight 5 (override by ops, ") {
		t.Errorf("weight: exit %d\n%s", r.code, r.stdout)
	}
	if r := c.run("admin", "weight", "--team", devstack.DevTeam, "--clear"); r.code != 0 || r.stdout != "team dev: weight 2 (config)\n" {
		t.Errorf("weight --clear: exit %d\n%s", r.code, r.stdout)
	}

	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"limits", "--account", "default", "--create-qps", "101"}, ExitAPI, "bad_value"},
		{[]string{"limits", "--account", "nope", "--create-qps", "1"}, ExitAPI, "not_found"},
		{[]string{"limits", "--account", "default"}, ExitUsage, "--create-qps, --max-jobs or --clear"},
		{[]string{"limits", "--account", "default", "--clear", "--max-jobs", "3"}, ExitUsage, "alone"},
		{[]string{"pause", "--team", "dev"}, ExitUsage, "--account is required"},
		{[]string{"pause", "--account", "default", "--team", "nobody"}, ExitAPI, "no team"},
		{[]string{"weight", "--team", "dev", "0"}, ExitUsage, "1 to 1000"},
		{[]string{"weight", "--team", "dev"}, ExitUsage, "a weight or --clear"},
		{[]string{"weight", "--team", "nobody", "3"}, ExitAPI, "not_found"},
	} {
		if r := c.run(append([]string{"admin"}, tc.args...)...); r.code != tc.code || !strings.Contains(r.stderr, tc.want) {
			t.Errorf("admin %v: exit %d %q, want %d and %q", tc.args, r.code, r.stderr, tc.code, tc.want)
		}
	}
}
