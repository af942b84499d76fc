package config

import (
	"cmp"
	"fmt"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Getenv reads a variable; tests pass a map's lookup.
type Getenv func(string) string

// ForAPI reads the api's settings: Redis, DISTQ_HTTP_ADDR, the teams' tokens
// (at least one is required) and rate, the operators' tokens (optional),
// the retention, the accounts' names, UIDs and limits, and the teams'
// weights. It reads no credentials, endpoint or worker tuning.
func ForAPI(getenv Getenv) (*Config, error) {
	return read(getenv, readRedis, readAPI, readAccounts(false), readWebhooks, readTeamWeights, checkWeightedTeams)
}

// ForWorker reads the worker's settings: Redis, the retention, the accounts
// with their credentials and endpoints, the teams' weights, and the
// worker's tuning. It reads no tokens, team rate or HTTP address.
func ForWorker(getenv Getenv) (*Config, error) {
	return read(getenv, readRedis, readWorker, readAccounts(true), readWebhooks, readTeamWeights)
}

// FromEnv reads the settings of both binaries, for a process that runs both
// (the dev stack).
func FromEnv(getenv Getenv) (*Config, error) {
	return read(getenv, readRedis, readAPI, readWorker, readAccounts(true), readWebhooks, readTeamWeights, checkWeightedTeams)
}

// part reads one group of settings into c; it returns the first bad one.
type part func(c *Config, e *vars) error

func read(getenv Getenv, parts ...part) (*Config, error) {
	if getenv == nil {
		getenv = os.Getenv
	}
	e := &vars{getenv: getenv}
	c := &Config{}
	for _, p := range parts {
		if err := p(c, e); err != nil {
			return nil, err
		}
	}
	return c, nil
}

func readRedis(c *Config, e *vars) error {
	c.RedisURL = cmp.Or(e.getenv("DISTQ_REDIS_URL"), "redis://127.0.0.1:6379/0")
	if _, err := redis.ParseURL(c.RedisURL); err != nil {
		return fmt.Errorf("DISTQ_REDIS_URL: %v", err)
	}
	c.RedisSentinelMaster = e.getenv("DISTQ_REDIS_SENTINEL_MASTER")
	c.RedisSentinelAddrs = splitList(e.getenv("DISTQ_REDIS_SENTINEL_ADDRS"))
	if len(c.RedisSentinelAddrs) > 0 && c.RedisSentinelMaster == "" {
		return fmt.Errorf("DISTQ_REDIS_SENTINEL_MASTER: required with DISTQ_REDIS_SENTINEL_ADDRS")
	}
	c.Retention = e.duration("DISTQ_RETENTION", "720h")
	return e.err
}

func readAPI(c *Config, e *vars) error {
	c.HTTPAddr = cmp.Or(e.getenv("DISTQ_HTTP_ADDR"), ":8080")
	c.TeamRPS = e.int("DISTQ_TEAM_RPS", "200", 1, 1000000)
	c.JobDurationHint = e.duration("DISTQ_JOB_DURATION_HINT", "30s")
	if e.err != nil {
		return e.err
	}
	if err := readTokens(c, e); err != nil {
		return err
	}
	return readAdminTokens(c, e)
}

func readWorker(c *Config, e *vars) error {
	c.MetricsAddr = cmp.Or(e.getenv("DISTQ_METRICS_ADDR"), ":9090")
	c.WorkerConcurrency = e.int("DISTQ_WORKER_CONCURRENCY", "10", 1, 1000)
	c.TaskCheckInterval = e.duration("DISTQ_TASK_CHECK_INTERVAL", "250ms")
	if e.err == nil && (c.TaskCheckInterval < 50*time.Millisecond || c.TaskCheckInterval > 10*time.Second) {
		e.err = fmt.Errorf("DISTQ_TASK_CHECK_INTERVAL: want 50ms to 10s, got %v", c.TaskCheckInterval)
	}
	if v := e.getenv("DISTQ_IDLE_AFTER"); v == "0" || v == "off" {
		c.IdleAfter = 0 // never quiet
	} else {
		c.IdleAfter = e.duration("DISTQ_IDLE_AFTER", "10s")
	}
	if e.err == nil && c.IdleAfter != 0 && (c.IdleAfter < time.Second || c.IdleAfter > time.Hour) {
		e.err = fmt.Errorf("DISTQ_IDLE_AFTER: want 0 (never idle) or 1s to 1h, got %v", c.IdleAfter)
	}
	c.IdleTaskCheckInterval = e.duration("DISTQ_IDLE_TASK_CHECK_INTERVAL", "2s")
	if e.err == nil && (c.IdleTaskCheckInterval < c.TaskCheckInterval || c.IdleTaskCheckInterval > time.Minute) {
		e.err = fmt.Errorf("DISTQ_IDLE_TASK_CHECK_INTERVAL: want DISTQ_TASK_CHECK_INTERVAL (%v) to 1m, got %v", c.TaskCheckInterval, c.IdleTaskCheckInterval)
	}
	c.SlotLease = e.duration("DISTQ_SLOT_LEASE", "2m")
	c.AlibabaTimeout = e.duration("DISTQ_ALIBABA_TIMEOUT", "10s")
	c.RemoteVisibility = e.duration("DISTQ_REMOTE_VISIBILITY", "2m")
	c.Webhooks.Concurrency = e.int("DISTQ_WEBHOOK_CONCURRENCY", "4", 1, 1000)
	return e.err
}

// vars reads variables, each with its default given as the text a user would
// set (as in the README's table). The first bad value is kept in err and
// later reads are skipped.
type vars struct {
	getenv Getenv
	err    error
}

func (e *vars) int(name, def string, lo, hi int) int {
	s := cmp.Or(e.getenv(name), def)
	if e.err != nil {
		return 0
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < lo || n > hi {
		e.err = fmt.Errorf("%s: want a whole number from %d to %d, got %q", name, lo, hi, s)
	}
	return n
}

func (e *vars) bool(name, def string) bool {
	s := cmp.Or(e.getenv(name), def)
	if e.err != nil {
		return false
	}
	b, err := strconv.ParseBool(s)
	if err != nil {
		e.err = fmt.Errorf("%s: want true or false, got %q", name, s)
	}
	return b
}

func (e *vars) duration(name, def string) time.Duration {
	s := cmp.Or(e.getenv(name), def)
	if e.err != nil {
		return 0
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		e.err = fmt.Errorf("%s: want a positive duration such as 720h, got %q", name, s)
	}
	return d
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// checkEndpoint checks an endpoint URL: http or https, a host, no path, and
// no real Alibaba host other than the one that serves the distribution APIs
// (alibaba.NewClient applies the same rule; a test in internal/app keeps the
// two in step).
func checkEndpoint(endpoint string) error {
	u, err := url.Parse(endpoint)
	if err != nil {
		return fmt.Errorf("endpoint %q: %w", endpoint, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
		return fmt.Errorf("endpoint %q: want http(s)://host[:port]", endpoint)
	}
	if u.Path != "" && u.Path != "/" || u.RawQuery != "" {
		return fmt.Errorf("endpoint %q: want no path or query", endpoint)
	}
	host := strings.ToLower(u.Hostname())
	if (strings.HasSuffix(host, ".aliyuncs.com") || strings.HasSuffix(host, ".aliyun.com")) && host != "iot.cn-shanghai.aliyuncs.com" {
		return fmt.Errorf("endpoint %q: only iot.cn-shanghai.aliyuncs.com serves CreateProductDistributeJob", endpoint)
	}
	return nil
}
