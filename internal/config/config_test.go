package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func env(m map[string]string) Getenv { return func(k string) string { return m[k] } }

func base() map[string]string {
	return map[string]string{
		"DISTQ_ALIBABA_UID":               "1234567890",
		"ALIBABA_CLOUD_ACCESS_KEY_ID":     "ak",
		"ALIBABA_CLOUD_ACCESS_KEY_SECRET": "very-secret-value",
		"DISTQ_API_TOKENS":                "team-a:token-aaaa,team-b:token-bbbb",
	}
}

func TestDefaults(t *testing.T) {
	t.Parallel()
	c, err := FromEnv(env(base()))
	if err != nil {
		t.Fatal(err)
	}
	a := c.DefaultAccount()
	if a.CreateQPS != 2 || a.QueryQPS != 10 || a.ListQPS != 5 || a.DeleteQPS != 2 || a.MaxJobs != 10 ||
		a.Endpoint != "https://iot.cn-shanghai.aliyuncs.com" || c.HTTPAddr != ":8080" || c.MetricsAddr != ":9090" ||
		c.WorkerConcurrency != 10 || c.Tokens["token-aaaa"] != "team-a" {
		t.Fatalf("defaults: %+v %+v", c, a)
	}
	if strings.Contains(a.String(), "very-secret-value") {
		t.Fatal("an account prints its secret")
	}
}

func TestBadSettingsNameTheVariable(t *testing.T) {
	t.Parallel()
	for name, tc := range map[string]struct{ key, val, want string }{
		"qps":          {"DISTQ_CREATE_QPS", "two", "DISTQ_CREATE_QPS"},
		"max jobs":     {"DISTQ_MAX_JOBS", "0", "DISTQ_MAX_JOBS"},
		"endpoint":     {"DISTQ_ALIBABA_ENDPOINT", "https://iot.cn-beijing.aliyuncs.com", "DISTQ_ALIBABA_ENDPOINT"},
		"uid":          {"DISTQ_ALIBABA_UID", "", "DISTQ_ALIBABA_UID"},
		"uid digits":   {"DISTQ_ALIBABA_UID", "12ab", "DISTQ_ALIBABA_UID"},
		"redis":        {"DISTQ_REDIS_URL", "http://x", "DISTQ_REDIS_URL"},
		"tokens":       {"DISTQ_API_TOKENS", "nocolon", "DISTQ_API_TOKENS"},
		"short token":  {"DISTQ_API_TOKENS", "t:abc", "DISTQ_API_TOKENS"},
		"concurrency":  {"DISTQ_WORKER_CONCURRENCY", "-1", "DISTQ_WORKER_CONCURRENCY"},
		"half keys":    {"ALIBABA_CLOUD_ACCESS_KEY_ID", "", "ALIBABA_CLOUD_ACCESS_KEY_SECRET"},
		"sentinel":     {"DISTQ_REDIS_SENTINEL_ADDRS", "a:1", "DISTQ_REDIS_SENTINEL_MASTER"},
		"accountsfile": {"DISTQ_ACCOUNTS_FILE", "/nonexistent.yaml", "DISTQ_ACCOUNTS_FILE"},
	} {
		m := base()
		m[tc.key] = tc.val
		_, err := FromEnv(env(m))
		if err == nil || !strings.HasPrefix(err.Error(), tc.want) || strings.Contains(err.Error(), "very-secret-value") {
			t.Errorf("%s: error %v, want one naming %s", name, err, tc.want)
		}
	}
}

func TestAccountsFile(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "accounts.yaml")
	os.WriteFile(path, []byte(`
- name: prod
  uid: "111"
  access_key_id_env: PROD_AK
  access_key_secret_env: PROD_SK
  create_qps: 1
  default: true
- name: prod-other-key
  uid: "111"
  create_qps: 1
  access_key_id: ak2
  access_key_secret: sk2
- name: lab
  uid: "222"
  credentials_chain: true
  max_jobs: 5
`), 0o600)
	m := base()
	m["DISTQ_ACCOUNTS_FILE"] = path
	m["PROD_AK"], m["PROD_SK"] = "ak1", "sk1"
	c, err := FromEnv(env(m))
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Accounts) != 3 || c.DefaultAccount().Name != "prod" || c.Accounts[0].AccessKeySecret != "sk1" ||
		c.Accounts[0].CreateQPS != 1 || c.Accounts[2].MaxJobs != 5 || c.Accounts[2].CreateQPS != 2 {
		t.Fatalf("accounts %+v", c.Accounts)
	}
	if a, ok := c.Account("lab"); !ok || a.UID != "222" {
		t.Fatalf("lookup lab: %+v %v", a, ok)
	}
	os.WriteFile(path, []byte("- name: x\n  uid: \"1\"\n  unknown_field: 1\n"), 0o600)
	if _, err := FromEnv(env(m)); err == nil || !strings.Contains(err.Error(), "DISTQ_ACCOUNTS_FILE") {
		t.Fatalf("unknown field: %v", err)
	}
}

func TestTokenFileHoldsHashes(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "tokens")
	// sha256("token-aaaa")
	os.WriteFile(path, []byte("# team hash\nteam-c 6b6a4b8a2d1e1f1b1d8b9ac16ba3c6e1a6c7d1e4c9e8a1a1d2b3c4d5e6f70819\n"), 0o600)
	m := base()
	m["DISTQ_API_TOKENS_FILE"] = path
	c, err := FromEnv(env(m))
	if err != nil {
		t.Fatal(err)
	}
	if c.TokenHashes["6b6a4b8a2d1e1f1b1d8b9ac16ba3c6e1a6c7d1e4c9e8a1a1d2b3c4d5e6f70819"] != "team-c" {
		t.Fatalf("hashes %v", c.TokenHashes)
	}
	os.WriteFile(path, []byte("team-c not-a-hash\n"), 0o600)
	if _, err := FromEnv(env(m)); err == nil || !strings.HasPrefix(err.Error(), "DISTQ_API_TOKENS_FILE") || !strings.Contains(err.Error(), "line 1") {
		t.Fatalf("bad file: %v", err)
	}
}
