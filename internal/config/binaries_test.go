package config

import (
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Each binary reads only what it uses: a setting only the other binary reads
// cannot stop it, and a bad one of its own stops it with one line naming the
// variable. FromEnv (the dev stack, which runs both) refuses both kinds.
func TestEachBinaryReadsItsOwnSettings(t *testing.T) {
	t.Parallel()
	const (
		both   = "both"
		api    = "api"
		worker = "worker"
	)
	for name, tc := range map[string]struct {
		set   map[string]string
		fails string // which binary refuses it
		want  string // the variable its error starts with
	}{
		"short token":           {map[string]string{"DISTQ_API_TOKENS": "t:abc"}, api, "DISTQ_API_TOKENS"},
		"token without team":    {map[string]string{"DISTQ_API_TOKENS": "token-aaaa"}, api, "DISTQ_API_TOKENS"},
		"no token":              {map[string]string{"DISTQ_API_TOKENS": ""}, api, "DISTQ_API_TOKENS"},
		"missing token file":    {map[string]string{"DISTQ_API_TOKENS_FILE": "/nonexistent/tokens"}, api, "DISTQ_API_TOKENS_FILE"},
		"team rps":              {map[string]string{"DISTQ_TEAM_RPS": "0"}, api, "DISTQ_TEAM_RPS"},
		"short admin token":     {map[string]string{"DISTQ_ADMIN_TOKENS": "ops:abc"}, api, "DISTQ_ADMIN_TOKENS"},
		"admin token of team":   {map[string]string{"DISTQ_ADMIN_TOKENS": "ops:token-aaaa"}, api, "DISTQ_ADMIN_TOKENS"},
		"missing admin file":    {map[string]string{"DISTQ_ADMIN_TOKENS_FILE": "/nonexistent/admins"}, api, "DISTQ_ADMIN_TOKENS_FILE"},
		"team weight":           {map[string]string{"DISTQ_TEAM_WEIGHTS": "team-a=0"}, both, "DISTQ_TEAM_WEIGHTS"},
		"team weight format":    {map[string]string{"DISTQ_TEAM_WEIGHTS": "team-a:3"}, both, "DISTQ_TEAM_WEIGHTS"},
		"concurrency":           {map[string]string{"DISTQ_WORKER_CONCURRENCY": "lots"}, worker, "DISTQ_WORKER_CONCURRENCY"},
		"task check":            {map[string]string{"DISTQ_TASK_CHECK_INTERVAL": "10ms"}, worker, "DISTQ_TASK_CHECK_INTERVAL"},
		"task check long":       {map[string]string{"DISTQ_TASK_CHECK_INTERVAL": "1m"}, worker, "DISTQ_TASK_CHECK_INTERVAL"},
		"idle after short":      {map[string]string{"DISTQ_IDLE_AFTER": "100ms"}, worker, "DISTQ_IDLE_AFTER"},
		"idle check below busy": {map[string]string{"DISTQ_IDLE_TASK_CHECK_INTERVAL": "100ms"}, worker, "DISTQ_IDLE_TASK_CHECK_INTERVAL"},
		"slot lease":            {map[string]string{"DISTQ_SLOT_LEASE": "-1m"}, worker, "DISTQ_SLOT_LEASE"},
		"alibaba timeout":       {map[string]string{"DISTQ_ALIBABA_TIMEOUT": "10"}, worker, "DISTQ_ALIBABA_TIMEOUT"},
		"remote visibility":     {map[string]string{"DISTQ_REMOTE_VISIBILITY": "soon"}, worker, "DISTQ_REMOTE_VISIBILITY"},
		"delete finished":       {map[string]string{"DISTQ_DELETE_FINISHED": "sometimes"}, worker, "DISTQ_DELETE_FINISHED"},
		"endpoint":              {map[string]string{"DISTQ_ALIBABA_ENDPOINT": "ftp://x"}, worker, "DISTQ_ALIBABA_ENDPOINT"},
		"other region":          {map[string]string{"DISTQ_ALIBABA_ENDPOINT": "https://iot.cn-beijing.aliyuncs.com"}, worker, "DISTQ_ALIBABA_ENDPOINT"},
		"half keys":             {map[string]string{"ALIBABA_CLOUD_ACCESS_KEY_ID": ""}, worker, "ALIBABA_CLOUD_ACCESS_KEY_SECRET"},
		"redis":                 {map[string]string{"DISTQ_REDIS_URL": "http://x"}, both, "DISTQ_REDIS_URL"},
		"sentinel master":       {map[string]string{"DISTQ_REDIS_SENTINEL_ADDRS": "a:1"}, both, "DISTQ_REDIS_SENTINEL_MASTER"},
		"retention":             {map[string]string{"DISTQ_RETENTION": "forever"}, both, "DISTQ_RETENTION"},
		"uid":                   {map[string]string{"DISTQ_ALIBABA_UID": ""}, both, "DISTQ_ALIBABA_UID"},
		"uid digits":            {map[string]string{"DISTQ_ALIBABA_UID": "12ab"}, both, "DISTQ_ALIBABA_UID"},
		"create qps":            {map[string]string{"DISTQ_CREATE_QPS": "two"}, both, "DISTQ_CREATE_QPS"},
		"max jobs":              {map[string]string{"DISTQ_MAX_JOBS": "0"}, both, "DISTQ_MAX_JOBS"},
		"missing account file":  {map[string]string{"DISTQ_ACCOUNTS_FILE": "/nonexistent.yaml"}, both, "DISTQ_ACCOUNTS_FILE"},
		"webhook secret":        {map[string]string{"DISTQ_WEBHOOK_SECRETS": "t:very-secret-value"}, both, "DISTQ_WEBHOOK_SECRETS"},
		"webhook secrets file":  {map[string]string{"DISTQ_WEBHOOK_SECRETS_FILE": "/nonexistent/secrets"}, both, "DISTQ_WEBHOOK_SECRETS_FILE"},
		"webhook hosts":         {map[string]string{"DISTQ_WEBHOOK_ALLOWED_HOSTS": "a.*.example"}, both, "DISTQ_WEBHOOK_ALLOWED_HOSTS"},
		"webhook concurrency":   {map[string]string{"DISTQ_WEBHOOK_CONCURRENCY": "0"}, worker, "DISTQ_WEBHOOK_CONCURRENCY"},
	} {
		m := base()
		for k, v := range tc.set {
			m[k] = v
		}
		for _, b := range []struct {
			name  string
			read  func(Getenv) (*Config, error)
			fails bool
		}{
			{api, ForAPI, tc.fails == api || tc.fails == both},
			{worker, ForWorker, tc.fails == worker || tc.fails == both},
			{"both (FromEnv)", FromEnv, true},
		} {
			c, err := b.read(env(m))
			switch {
			case !b.fails && err != nil:
				t.Errorf("%s: the %s refuses a setting it does not read: %v", name, b.name, err)
			case b.fails && err == nil:
				t.Errorf("%s: the %s starts: %+v", name, b.name, c)
			case b.fails && (!strings.HasPrefix(err.Error(), tc.want+":") && !strings.HasPrefix(err.Error(), tc.want+" ") ||
				strings.Contains(err.Error(), "\n") || strings.Contains(err.Error(), "very-secret-value")):
				t.Errorf("%s: the %s says %q, want one line starting with %s and no secret", name, b.name, err, tc.want)
			}
		}
	}
}

func TestAPIConfigHoldsNoCredentials(t *testing.T) {
	t.Parallel()
	c, err := ForAPI(env(base()))
	if err != nil {
		t.Fatal(err)
	}
	a := c.DefaultAccount()
	if a.AccessKeyID != "" || a.AccessKeySecret != "" || a.Endpoint != "" {
		t.Errorf("the api's account holds what only the worker uses: %+v", a)
	}
	if a.UID != "1234567890" || a.CreateQPS != 2 || a.MaxJobs != 10 || c.TeamRPS != 200 || c.HTTPAddr != ":8080" ||
		c.Tokens["token-bbbb"] != "team-b" || c.Retention.Hours() != 720 {
		t.Errorf("api config %+v, account %+v", c, a)
	}
	if c.WorkerConcurrency != 0 || c.MetricsAddr != "" || c.SlotLease != 0 {
		t.Errorf("the api read worker settings: %+v", c)
	}

	// An accounts file whose keys are in variables only the worker has.
	path := filepath.Join(t.TempDir(), "accounts.yaml")
	if err := os.WriteFile(path, []byte(`
- name: prod
  uid: "111"
  access_key_id_env: PROD_AK
  access_key_secret_env: PROD_SK
  endpoint: https://iot.cn-beijing.aliyuncs.com
`), 0o600); err != nil {
		t.Fatal(err)
	}
	m := base()
	m["DISTQ_ACCOUNTS_FILE"] = path
	c, err = ForAPI(env(m))
	if err != nil {
		t.Fatalf("api with the worker's accounts file: %v", err)
	}
	if a, ok := c.Account("prod"); !ok || a.UID != "111" || a.CreateQPS != 2 || a.AccessKeyID != "" {
		t.Errorf("api account %+v %v", a, ok)
	}
	if _, err := ForWorker(env(m)); err == nil || !strings.HasPrefix(err.Error(), "DISTQ_ACCOUNTS_FILE") {
		t.Errorf("worker without PROD_AK and a Beijing endpoint: %v", err)
	}
}

func TestWorkerConfigHoldsNoTokens(t *testing.T) {
	t.Parallel()
	m := base()
	m["DISTQ_API_TOKENS"] = "x" // unusable, and unused by the worker
	c, err := ForWorker(env(m))
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Tokens) != 0 || len(c.TokenHashes) != 0 || c.TeamRPS != 0 || c.HTTPAddr != "" {
		t.Errorf("the worker read api settings: %+v", c)
	}
	a := c.DefaultAccount()
	for _, off := range []string{"0", "off"} {
		m2 := maps.Clone(m)
		m2["DISTQ_IDLE_AFTER"] = off
		if c, err := ForWorker(env(m2)); err != nil || c.IdleAfter != 0 {
			t.Errorf("DISTQ_IDLE_AFTER=%s: %v, idle after %v; want never quiet", off, err, c.IdleAfter)
		}
	}
	if c.WorkerConcurrency != 10 || c.MetricsAddr != ":9090" || c.SlotLease.Minutes() != 2 || c.AlibabaTimeout.Seconds() != 10 ||
		c.TaskCheckInterval != 250*time.Millisecond || c.IdleAfter != 10*time.Second || c.IdleTaskCheckInterval != 2*time.Second ||
		a.AccessKeySecret != "very-secret-value" || a.Endpoint != DefaultEndpoint || a.CredentialsChain {
		t.Errorf("worker config %+v, account %+v", c, a)
	}
	delete(m, "ALIBABA_CLOUD_ACCESS_KEY_ID")
	delete(m, "ALIBABA_CLOUD_ACCESS_KEY_SECRET")
	if c, err = ForWorker(env(m)); err != nil || !c.DefaultAccount().CredentialsChain {
		t.Errorf("without keys the worker uses the credentials chain: %v %+v", err, c)
	}
}
