package devstack

import (
	"cmp"
	"fmt"
	"net/url"
	"strings"

	"github.com/distq/distq/internal/alisim"
)

// Setting is one variable the dev stack took from the environment, as its
// banner shows it: secrets are never shown, only that they are set.
type Setting struct{ Name, Value string }

func (s Setting) String() string { return s.Name + "=" + s.Value }

// distqSettings are the settings of the README's table that make sense in
// one process on one machine; FromEnv hands each one that is set to the api
// and the worker. DISTQ_ALIBABA_ENDPOINT is not among them: the stack's
// accounts call its simulator.
var distqSettings = []string{
	"DISTQ_REDIS_SENTINEL_ADDRS", "DISTQ_REDIS_SENTINEL_MASTER",
	"DISTQ_API_TOKENS", "DISTQ_API_TOKENS_FILE", "DISTQ_ADMIN_TOKENS", "DISTQ_ADMIN_TOKENS_FILE", "DISTQ_TEAM_WEIGHTS",
	"DISTQ_TEAM_RPS", "DISTQ_JOB_DURATION_HINT",
	"DISTQ_ACCOUNTS_FILE", "DISTQ_ALIBABA_UID", "ALIBABA_CLOUD_ACCESS_KEY_ID", "ALIBABA_CLOUD_ACCESS_KEY_SECRET",
	"DISTQ_CREATE_QPS", "DISTQ_QUERY_QPS", "DISTQ_LIST_QPS", "DISTQ_DELETE_QPS", "DISTQ_MAX_JOBS", "DISTQ_DELETE_FINISHED",
	"DISTQ_WORKER_CONCURRENCY", "DISTQ_SLOT_LEASE", "DISTQ_ALIBABA_TIMEOUT", "DISTQ_REMOTE_VISIBILITY", "DISTQ_RETENTION",
	"DISTQ_WEBHOOK_SECRETS", "DISTQ_WEBHOOK_SECRETS_FILE", "DISTQ_WEBHOOK_ALLOWED_HOSTS", "DISTQ_WEBHOOK_CONCURRENCY",
}

// simSettings are the simulator's variables (alisim.ConfigFromEnv), shown in
// the banner when set.
var simSettings = []string{
	"ALISIM_ACCOUNTS", "ALISIM_JOB_DURATION", "ALISIM_FAIL_RATIO", "ALISIM_LIST_LAG", "ALISIM_MAX_JOBS", "ALISIM_QUOTA_MODE", "ALISIM_QPS",
	"ALISIM_MISSING_PRODUCTS", "ALISIM_LATENCY", "ALISIM_ERROR_RATIO", "ALISIM_TIMEOUT_RATIO", "ALISIM_ERROR_AFTER_CREATE_RATIO",
	"ALISIM_QUOTA_EXCEEDED_CODE", "ALISIM_CROSS_ACCOUNT_CODE", "ALISIM_JOB_NOT_FOUND_CODE", "ALISIM_SEED",
	"ALISIM_DEVICE_PACE", "ALISIM_MISSING_DEVICES", "ALISIM_DEVICE_FAIL_RATIO", "ALISIM_DEVICE_FAIL_CODE", "ALISIM_DETAIL_VALIDITY", "ALISIM_DETAIL_FORMAT",
}

// FromEnv returns the Options of `make run` read through getenv: the
// addresses (DISTQ_HTTP_ADDR, DISTQ_METRICS_ADDR and ALISIM_ADDR, default
// 127.0.0.1:8080, :9090 and :8081), DISTQ_REDIS_URL (default: an embedded
// Redis), every other distq setting of distqSettings that is set, and the
// simulator's ALISIM_* settings. The simulator's first account is distq's
// unless DISTQ_ALIBABA_UID or DISTQ_ACCOUNTS_FILE says otherwise.
//
// It also returns the settings it took, for the banner, and those it
// ignored. A bad ALISIM_* value is an error naming it; distq's own are
// checked by Start.
func FromEnv(getenv func(string) string) (o Options, took, ignored []Setting, err error) {
	o.Sim, err = alisim.ConfigFromEnv(getenv)
	if err != nil {
		return Options{}, nil, nil, err
	}
	if getenv("ALISIM_ACCOUNTS") == "" {
		o.Sim.Accounts = nil // Start's dev account
	}
	o.RedisURL = getenv("DISTQ_REDIS_URL")
	o.APIAddr = cmp.Or(getenv("DISTQ_HTTP_ADDR"), "127.0.0.1:8080")
	o.MetricsAddr = cmp.Or(getenv("DISTQ_METRICS_ADDR"), "127.0.0.1:9090")
	o.SimAddr = cmp.Or(getenv("ALISIM_ADDR"), "127.0.0.1:8081")
	for _, name := range []string{"DISTQ_REDIS_URL", "DISTQ_HTTP_ADDR", "DISTQ_METRICS_ADDR", "ALISIM_ADDR"} {
		if v := getenv(name); v != "" {
			took = append(took, Setting{name, shown(name, v)})
		}
	}
	o.Env = map[string]string{}
	for _, name := range distqSettings {
		if v := getenv(name); v != "" {
			o.Env[name] = v
			took = append(took, Setting{name, shown(name, v)})
		}
	}
	for _, name := range simSettings {
		if v := getenv(name); v != "" {
			took = append(took, Setting{name, shown(name, v)})
		}
	}
	if v := getenv("DISTQ_ALIBABA_ENDPOINT"); v != "" {
		ignored = append(ignored, Setting{"DISTQ_ALIBABA_ENDPOINT", v + " (the stack's accounts call its simulator)"})
	}
	return o, took, ignored, nil
}

// shown is how the banner shows a setting: no token, key or password.
func shown(name, v string) string {
	switch name {
	case "DISTQ_API_TOKENS", "DISTQ_WEBHOOK_SECRETS", "DISTQ_ADMIN_TOKENS":
		var names []string
		for _, pair := range strings.Split(v, ",") {
			if name, _, ok := strings.Cut(pair, ":"); ok {
				names = append(names, strings.TrimSpace(name))
			}
		}
		if name == "DISTQ_ADMIN_TOKENS" {
			return fmt.Sprintf("(admins %s)", strings.Join(names, ", "))
		}
		return fmt.Sprintf("(teams %s)", strings.Join(names, ", "))
	case "ALIBABA_CLOUD_ACCESS_KEY_ID", "ALIBABA_CLOUD_ACCESS_KEY_SECRET":
		return "(set)"
	case "ALISIM_ACCOUNTS":
		var uids []string
		for _, item := range strings.Split(v, ",") {
			uid, _, _ := strings.Cut(item, ":")
			uids = append(uids, strings.TrimSpace(uid))
		}
		return fmt.Sprintf("(uids %s)", strings.Join(uids, ", "))
	case "DISTQ_REDIS_URL":
		if u, err := url.Parse(v); err == nil {
			return u.Redacted()
		}
		return "(set)"
	}
	return v
}
