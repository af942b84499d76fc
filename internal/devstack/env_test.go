package devstack

import (
	"strings"
	"testing"
	"time"
)

func lookup(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestFromEnv(t *testing.T) {
	t.Parallel()
	for name, tc := range map[string]struct {
		env map[string]string
		// check inspects the options and the banner's lines.
		check func(t *testing.T, o Options, took, ignored string)
	}{
		"nothing set: the defaults of make run": {
			env: map[string]string{},
			check: func(t *testing.T, o Options, took, ignored string) {
				if o.APIAddr != "127.0.0.1:8080" || o.MetricsAddr != "127.0.0.1:9090" || o.SimAddr != "127.0.0.1:8081" ||
					o.RedisURL != "" || len(o.Env) != 0 || len(o.Sim.Accounts) != 0 || took != "" || ignored != "" {
					t.Errorf("options %+v, took %q, ignored %q", o, took, ignored)
				}
			},
		},
		"the README's settings reach the api and the worker": {
			env: map[string]string{
				"DISTQ_API_TOKENS": "a:secret-token-a,b:secret-token-b", "DISTQ_API_TOKENS_FILE": "/etc/tokens",
				"DISTQ_TEAM_RPS": "5", "DISTQ_CREATE_QPS": "3", "DISTQ_QUERY_QPS": "4", "DISTQ_LIST_QPS": "6", "DISTQ_DELETE_QPS": "1",
				"DISTQ_MAX_JOBS": "7", "DISTQ_DELETE_FINISHED": "true", "DISTQ_WORKER_CONCURRENCY": "3", "DISTQ_SLOT_LEASE": "1m",
				"DISTQ_ALIBABA_TIMEOUT": "2s", "DISTQ_RETENTION": "1h", "DISTQ_ACCOUNTS_FILE": "/etc/accounts.yaml",
				"DISTQ_HTTP_ADDR": "127.0.0.1:1", "DISTQ_METRICS_ADDR": "127.0.0.1:2", "ALISIM_ADDR": "127.0.0.1:3",
				"DISTQ_REDIS_URL":       "redis://:redis-password@127.0.0.1:6379/4",
				"DISTQ_WEBHOOK_SECRETS": "a:whsec_secret-hook-key", "DISTQ_WEBHOOK_ALLOWED_HOSTS": "hooks.example.com",
				"DISTQ_ADMIN_TOKENS": "ops:secret-admin-token", "DISTQ_TEAM_WEIGHTS": "a=3",
			},
			check: func(t *testing.T, o Options, took, ignored string) {
				for _, k := range []string{"DISTQ_API_TOKENS", "DISTQ_API_TOKENS_FILE", "DISTQ_TEAM_RPS", "DISTQ_CREATE_QPS", "DISTQ_QUERY_QPS",
					"DISTQ_LIST_QPS", "DISTQ_DELETE_QPS", "DISTQ_MAX_JOBS", "DISTQ_DELETE_FINISHED", "DISTQ_WORKER_CONCURRENCY",
					"DISTQ_SLOT_LEASE", "DISTQ_ALIBABA_TIMEOUT", "DISTQ_RETENTION", "DISTQ_ACCOUNTS_FILE",
					"DISTQ_WEBHOOK_SECRETS", "DISTQ_WEBHOOK_ALLOWED_HOSTS", "DISTQ_ADMIN_TOKENS", "DISTQ_TEAM_WEIGHTS"} {
					if o.Env[k] == "" || !strings.Contains(took, k+"=") {
						t.Errorf("%s: not taken (env %v, banner %q)", k, o.Env, took)
					}
				}
				if o.APIAddr != "127.0.0.1:1" || o.MetricsAddr != "127.0.0.1:2" || o.SimAddr != "127.0.0.1:3" ||
					o.RedisURL != "redis://:redis-password@127.0.0.1:6379/4" {
					t.Errorf("addresses %+v", o)
				}
				if !strings.Contains(took, "DISTQ_API_TOKENS=(teams a, b)") || !strings.Contains(took, "DISTQ_TEAM_RPS=5") {
					t.Errorf("banner %q", took)
				}
				if !strings.Contains(took, "DISTQ_ADMIN_TOKENS=(admins ops)") || !strings.Contains(took, "DISTQ_TEAM_WEIGHTS=a=3") {
					t.Errorf("banner %q", took)
				}
				if !strings.Contains(took, "DISTQ_WEBHOOK_SECRETS=(teams a)") {
					t.Errorf("banner %q", took)
				}
				for _, secret := range []string{"secret-token", "redis-password", "secret-hook-key", "secret-admin-token"} {
					if strings.Contains(took, secret) {
						t.Errorf("the banner shows a secret: %q", took)
					}
				}
			},
		},
		"the simulator's accounts and settings": {
			env: map[string]string{
				"ALISIM_ACCOUNTS": "42:ak-42:sim-secret", "ALISIM_JOB_DURATION": "2s", "ALISIM_MISSING_PRODUCTS": "a1gone",
				"DISTQ_ALIBABA_UID": "42", "ALIBABA_CLOUD_ACCESS_KEY_ID": "ak-42", "ALIBABA_CLOUD_ACCESS_KEY_SECRET": "sim-secret",
			},
			check: func(t *testing.T, o Options, took, ignored string) {
				if len(o.Sim.Accounts) != 1 || o.Sim.Accounts[0].UID != "42" || o.Sim.JobDuration != 2*time.Second ||
					len(o.Sim.MissingProducts) != 1 || o.Env["ALIBABA_CLOUD_ACCESS_KEY_SECRET"] != "sim-secret" {
					t.Errorf("options %+v", o)
				}
				if !strings.Contains(took, "ALISIM_ACCOUNTS=(uids 42)") || !strings.Contains(took, "ALISIM_JOB_DURATION=2s") ||
					!strings.Contains(took, "ALIBABA_CLOUD_ACCESS_KEY_SECRET=(set)") || strings.Contains(took, "sim-secret") {
					t.Errorf("banner %q", took)
				}
			},
		},
		"the endpoint is the simulator's": {
			env: map[string]string{"DISTQ_ALIBABA_ENDPOINT": "https://iot.cn-shanghai.aliyuncs.com"},
			check: func(t *testing.T, o Options, took, ignored string) {
				if _, ok := o.Env["DISTQ_ALIBABA_ENDPOINT"]; ok || !strings.HasPrefix(ignored, "DISTQ_ALIBABA_ENDPOINT=") || took != "" {
					t.Errorf("env %v, took %q, ignored %q", o.Env, took, ignored)
				}
			},
		},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			o, took, ignored, err := FromEnv(lookup(tc.env))
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, o, join(took), join(ignored))
		})
	}
}

func TestFromEnvRefusesABadSimulatorSetting(t *testing.T) {
	t.Parallel()
	for name, value := range map[string]string{
		"ALISIM_JOB_DURATION": "soon",
		"ALISIM_ACCOUNTS":     "42:only-two",
		"ALISIM_FAIL_RATIO":   "2",
	} {
		_, _, _, err := FromEnv(lookup(map[string]string{name: value}))
		if err == nil || !strings.HasPrefix(err.Error(), name+":") {
			t.Errorf("%s=%q: %v, want an error naming it", name, value, err)
		}
	}
}

func join(s []Setting) string {
	var out []string
	for _, x := range s {
		out = append(out, x.String())
	}
	return strings.Join(out, "\n")
}
