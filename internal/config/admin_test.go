package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The operators' tokens are optional, follow the rules of the teams'
// tokens, and are never a team's token as well.
func TestAdminTokens(t *testing.T) {
	t.Parallel()
	c, err := ForAPI(env(base()))
	if err != nil {
		t.Fatal(err)
	}
	if len(c.AdminTokens) != 0 || len(c.AdminTokenHashes) != 0 {
		t.Fatalf("admin tokens without DISTQ_ADMIN_TOKENS: %v %v", c.AdminTokens, c.AdminTokenHashes)
	}

	path := filepath.Join(t.TempDir(), "admins")
	// sha256("admin-token-2")
	const h = "ac462d5ea711c0c669b939e029ae18ab516c59a375500541870b365e489228ac"
	if err := os.WriteFile(path, []byte("# operators\nbob "+h+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	m := base()
	m["DISTQ_ADMIN_TOKENS"] = "alice:admin-token-1"
	m["DISTQ_ADMIN_TOKENS_FILE"] = path
	if c, err = ForAPI(env(m)); err != nil {
		t.Fatal(err)
	}
	if c.AdminTokens["admin-token-1"] != "alice" || c.AdminTokenHashes[h] != "bob" || c.Tokens["admin-token-1"] != "" {
		t.Fatalf("admins %v, hashes %v, teams %v", c.AdminTokens, c.AdminTokenHashes, c.Tokens)
	}
	if w, err := ForWorker(env(m)); err != nil || len(w.AdminTokens) != 0 || len(w.AdminTokenHashes) != 0 {
		t.Fatalf("the worker read the admin tokens: %v %+v", err, w)
	}

	for name, tc := range map[string]struct{ key, val, want string }{
		"bad name":          {"DISTQ_ADMIN_TOKENS", "al ice:admin-token-1", `admin "al ice"`},
		"no name":           {"DISTQ_ADMIN_TOKENS", "admin-token-1", "admin:token"},
		"a team's token":    {"DISTQ_ADMIN_TOKENS", "alice:token-bbbb", "also a team's token"},
		"a team's, hashed":  {"DISTQ_API_TOKENS_FILE", path, "also a team's token"},
		"file of bad lines": {"DISTQ_ADMIN_TOKENS_FILE", writeTemp(t, "bob not-a-hash\n"), `line 1: want "admin sha256-hex"`},
	} {
		bad := base()
		bad["DISTQ_ADMIN_TOKENS_FILE"] = path
		bad[tc.key] = tc.val
		if _, err := ForAPI(env(bad)); err == nil || !strings.HasPrefix(err.Error(), "DISTQ_ADMIN_TOKENS") || !strings.Contains(err.Error(), tc.want) ||
			strings.Contains(err.Error(), "token-bbbb") || strings.Contains(err.Error(), "admin-token-1") {
			t.Errorf("%s: %v, want an error on DISTQ_ADMIN_TOKENS… saying %q, without a token", name, err, tc.want)
		}
	}
}

func writeTemp(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// DISTQ_TEAM_WEIGHTS reaches both binaries; its teams follow the token
// rules and its weights are 1 to 1000.
func TestTeamWeights(t *testing.T) {
	t.Parallel()
	m := base()
	m["DISTQ_TEAM_WEIGHTS"] = " team-a=3, team-b = 1000 ,ops=1"
	m["DISTQ_API_TOKENS"] += ",ops:token-opsteam"
	for name, read := range map[string]func(Getenv) (*Config, error){"api": ForAPI, "worker": ForWorker, "both": FromEnv} {
		c, err := read(env(m))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if len(c.TeamWeights) != 3 || c.TeamWeights["team-a"] != 3 || c.TeamWeights["team-b"] != 1000 || c.TeamWeights["ops"] != 1 {
			t.Errorf("%s: weights %v", name, c.TeamWeights)
		}
	}
	// The api refuses a weighted team without a token (a misspelt team);
	// the worker, which reads no tokens, takes it.
	m = base()
	m["DISTQ_TEAM_WEIGHTS"] = "team-x=3"
	if _, err := ForAPI(env(m)); err == nil || !strings.Contains(err.Error(), `team "team-x" has no token`) {
		t.Errorf("a weighted team without a token: %v", err)
	}
	if _, err := ForWorker(env(m)); err != nil {
		t.Errorf("worker: %v", err)
	}
	if c, err := ForWorker(env(base())); err != nil || c.TeamWeights == nil || len(c.TeamWeights) != 0 {
		t.Errorf("unset: %v %v, want an empty map", err, c.TeamWeights)
	}
	for _, bad := range []string{"team-a=1001", "team-a=-1", "team-a=1.5", "team-a=", "=3", "team a=2", "team-a=2,team-a=3", "team-a"} {
		m["DISTQ_TEAM_WEIGHTS"] = bad
		if _, err := ForWorker(env(m)); err == nil || !strings.HasPrefix(err.Error(), "DISTQ_TEAM_WEIGHTS: ") {
			t.Errorf("%q: %v, want refused naming DISTQ_TEAM_WEIGHTS", bad, err)
		}
	}
}
