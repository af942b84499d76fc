package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const (
	secretA = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	secretB = "whsec_QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQQ=="
)

func TestWebhookSettings(t *testing.T) {
	t.Parallel()
	file := filepath.Join(t.TempDir(), "secrets")
	if err := os.WriteFile(file, []byte("# team secrets\nteam-b:"+secretB+"\n\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	m := base()
	m["DISTQ_WEBHOOK_SECRETS"] = "team-a:" + secretA
	m["DISTQ_WEBHOOK_SECRETS_FILE"] = file
	m["DISTQ_WEBHOOK_ALLOWED_HOSTS"] = "hooks.example.com, *.corp.example:8443"
	m["DISTQ_WEBHOOK_CONCURRENCY"] = "7"
	for name, read := range map[string]func(Getenv) (*Config, error){"api": ForAPI, "worker": ForWorker} {
		c, err := read(env(m))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		w := c.Webhooks
		if w.Secrets["team-a"] != secretA || w.Secrets["team-b"] != secretB || len(w.Secrets) != 2 || w.Allowed.Len() != 2 {
			t.Errorf("%s: %d secrets, %d hosts", name, len(w.Secrets), w.Allowed.Len())
		}
		if _, err := w.Allowed.CheckURL("https://x.corp.example:8443/hook"); err != nil {
			t.Errorf("%s: %v", name, err)
		}
		if want := map[string]int{"api": 0, "worker": 7}[name]; w.Concurrency != want {
			t.Errorf("%s: concurrency %d, want %d", name, w.Concurrency, want)
		}
		if s := w.String(); strings.Contains(s, "whsec_") {
			t.Errorf("String shows a secret: %s", s)
		}
	}
	// None set: no team may use notify_url, nothing is allowed.
	c, err := ForWorker(env(base()))
	if err != nil || len(c.Webhooks.Secrets) != 0 || c.Webhooks.Allowed.Len() != 0 || c.Webhooks.Concurrency != 4 {
		t.Fatalf("defaults: %+v, %v", c.Webhooks, err)
	}
	for _, bad := range []string{"team-a", "team-a:whsec_", "team-a:" + secretA + ",team-a:" + secretB, ":" + secretA, "team-a:whsec_QUJD"} {
		m := base()
		m["DISTQ_WEBHOOK_SECRETS"] = bad
		if _, err := ForAPI(env(m)); err == nil || strings.Contains(err.Error(), "MfKQ9r8") {
			t.Errorf("DISTQ_WEBHOOK_SECRETS=%q: %v", bad, err)
		}
	}
	m = base()
	m["DISTQ_WEBHOOK_SECRETS"] = "team-b:" + secretA
	m["DISTQ_WEBHOOK_SECRETS_FILE"] = file
	if _, err := ForAPI(env(m)); err == nil || !strings.Contains(err.Error(), "team-b") {
		t.Errorf("a team in both the variable and the file: %v", err)
	}
}
