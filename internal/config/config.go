// Package config reads distq's settings from the environment (twelve-factor),
// once, at start. Every value is validated where it is built, and a bad or
// missing one stops the binary with an error naming the variable.
package config

import (
	"cmp"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"gopkg.in/yaml.v3"

	"github.com/distq/distq/internal/alibaba"
)

// Account is one Alibaba Cloud account distq acts for.
type Account struct {
	Name string `yaml:"name"`
	// UID is the account's UID: the quota key. Two entries with one UID
	// share one budget.
	UID             string `yaml:"uid"`
	AccessKeyID     string `yaml:"access_key_id"`
	AccessKeySecret string `yaml:"access_key_secret"`
	// AccessKeyIDEnv and AccessKeySecretEnv name environment variables that
	// hold the keys, so the file need not hold secrets.
	AccessKeyIDEnv     string `yaml:"access_key_id_env"`
	AccessKeySecretEnv string `yaml:"access_key_secret_env"`
	// CredentialsChain uses the SDK's default chain (STS, RAM role, ...)
	// instead of static keys.
	CredentialsChain bool   `yaml:"credentials_chain"`
	Endpoint         string `yaml:"endpoint"`
	CreateQPS        int    `yaml:"create_qps"`
	QueryQPS         int    `yaml:"query_qps"`
	ListQPS          int    `yaml:"list_qps"`
	DeleteQPS        int    `yaml:"delete_qps"`
	MaxJobs          int    `yaml:"max_jobs"`
	// DeleteFinished deletes remote jobs once seen finished (frees a slot
	// where the remote counts jobs not yet deleted).
	DeleteFinished bool `yaml:"delete_finished"`
	Default        bool `yaml:"default"`
}

// QPS returns the account's configured rate for a remote action.
func (a Account) QPS(action string) int {
	switch action {
	case alibaba.ActionCreate:
		return a.CreateQPS
	case alibaba.ActionQuery:
		return a.QueryQPS
	case alibaba.ActionList:
		return a.ListQPS
	case alibaba.ActionDelete:
		return a.DeleteQPS
	}
	return 1
}

// String never prints the secret.
func (a Account) String() string {
	return fmt.Sprintf("account %s (uid %s, endpoint %s)", a.Name, a.UID, a.Endpoint)
}

// Config is everything the api and the worker read from the environment.
type Config struct {
	RedisURL            string
	RedisSentinelAddrs  []string
	RedisSentinelMaster string
	HTTPAddr            string
	MetricsAddr         string
	// Tokens maps a bearer token to its team (from DISTQ_API_TOKENS).
	Tokens map[string]string
	// TokenHashes maps the hex SHA-256 of a bearer token to its team (from
	// DISTQ_API_TOKENS_FILE, which holds only hashes).
	TokenHashes       map[string]string
	Accounts          []Account
	WorkerConcurrency int
	// Retention is how long finished records are kept.
	Retention time.Duration
	// SlotLease is how long a job slot stays held without renewal: a
	// crashed worker's slots free after it.
	SlotLease time.Duration
	// AlibabaTimeout bounds one call to the endpoint.
	AlibabaTimeout time.Duration
	// RemoteVisibility bounds how long a job made by a Create may take to
	// show in ListDeviceDistributeJob (DISTQ_REMOTE_VISIBILITY, default 2m).
	RemoteVisibility time.Duration
	// TeamRPS limits each team's API requests per second (burst twice that).
	TeamRPS int
}

// DefaultAccount returns the account a request gets when it names none.
func (c *Config) DefaultAccount() Account {
	for _, a := range c.Accounts {
		if a.Default {
			return a
		}
	}
	return c.Accounts[0]
}

// Account returns the named account, or the default one for "".
func (c *Config) Account(name string) (Account, bool) {
	if name == "" {
		return c.DefaultAccount(), true
	}
	for _, a := range c.Accounts {
		if a.Name == name {
			return a, true
		}
	}
	return Account{}, false
}

// RedisOptions returns the go-redis options for the configured Redis: one
// server, or a Sentinel-watched master.
func (c *Config) RedisOptions() (*redis.UniversalOptions, error) {
	opt, err := redis.ParseURL(c.RedisURL)
	if err != nil {
		return nil, fmt.Errorf("DISTQ_REDIS_URL: %w", err)
	}
	u := &redis.UniversalOptions{
		Addrs:    []string{opt.Addr},
		DB:       opt.DB,
		Username: opt.Username,
		Password: opt.Password,
		// The api must answer 503 quickly while Redis is away, not hang.
		DialTimeout:  cmp.Or(opt.DialTimeout, 2*time.Second),
		ReadTimeout:  cmp.Or(opt.ReadTimeout, 3*time.Second),
		WriteTimeout: cmp.Or(opt.WriteTimeout, 3*time.Second),
		TLSConfig:    opt.TLSConfig,
	}
	if len(c.RedisSentinelAddrs) > 0 {
		u.Addrs = c.RedisSentinelAddrs
		u.MasterName = c.RedisSentinelMaster
	}
	return u, nil
}

// Getenv reads a variable; tests pass a map's lookup.
type Getenv func(string) string

// FromEnv reads the configuration. It returns an error naming the first bad
// or missing variable.
func FromEnv(getenv Getenv) (*Config, error) {
	if getenv == nil {
		getenv = os.Getenv
	}
	c := &Config{
		RedisURL:            cmp.Or(getenv("DISTQ_REDIS_URL"), "redis://127.0.0.1:6379/0"),
		RedisSentinelMaster: getenv("DISTQ_REDIS_SENTINEL_MASTER"),
		HTTPAddr:            cmp.Or(getenv("DISTQ_HTTP_ADDR"), ":8080"),
		MetricsAddr:         cmp.Or(getenv("DISTQ_METRICS_ADDR"), ":9090"),
	}
	if _, err := redis.ParseURL(c.RedisURL); err != nil {
		return nil, fmt.Errorf("DISTQ_REDIS_URL: %v", err)
	}
	if s := getenv("DISTQ_REDIS_SENTINEL_ADDRS"); s != "" {
		c.RedisSentinelAddrs = splitList(s)
		if c.RedisSentinelMaster == "" {
			return nil, fmt.Errorf("DISTQ_REDIS_SENTINEL_MASTER: required with DISTQ_REDIS_SENTINEL_ADDRS")
		}
	}
	var err error
	if c.Tokens, err = parseTokens(getenv("DISTQ_API_TOKENS")); err != nil {
		return nil, fmt.Errorf("DISTQ_API_TOKENS: %w", err)
	}
	if path := getenv("DISTQ_API_TOKENS_FILE"); path != "" {
		if c.TokenHashes, err = tokenFile(path); err != nil {
			return nil, fmt.Errorf("DISTQ_API_TOKENS_FILE %s: %w", path, err)
		}
	}
	if c.WorkerConcurrency, err = intVar(getenv, "DISTQ_WORKER_CONCURRENCY", 10, 1, 1000); err != nil {
		return nil, err
	}
	if c.SlotLease, err = durationVar(getenv, "DISTQ_SLOT_LEASE", 2*time.Minute); err != nil {
		return nil, err
	}
	if c.AlibabaTimeout, err = durationVar(getenv, "DISTQ_ALIBABA_TIMEOUT", 10*time.Second); err != nil {
		return nil, err
	}
	if c.RemoteVisibility, err = durationVar(getenv, "DISTQ_REMOTE_VISIBILITY", 2*time.Minute); err != nil {
		return nil, err
	}
	if c.TeamRPS, err = intVar(getenv, "DISTQ_TEAM_RPS", 200, 1, 1000000); err != nil {
		return nil, err
	}
	if c.Retention, err = durationVar(getenv, "DISTQ_RETENTION", 30*24*time.Hour); err != nil {
		return nil, err
	}
	if c.Accounts, err = accounts(getenv); err != nil {
		return nil, err
	}
	return c, nil
}

func accounts(getenv Getenv) ([]Account, error) {
	var defaults Account
	var err error
	if defaults.CreateQPS, err = intVar(getenv, "DISTQ_CREATE_QPS", 2, 1, 10000); err != nil {
		return nil, err
	}
	if defaults.QueryQPS, err = intVar(getenv, "DISTQ_QUERY_QPS", 10, 1, 10000); err != nil {
		return nil, err
	}
	if defaults.ListQPS, err = intVar(getenv, "DISTQ_LIST_QPS", 5, 1, 10000); err != nil {
		return nil, err
	}
	if defaults.DeleteQPS, err = intVar(getenv, "DISTQ_DELETE_QPS", 2, 1, 10000); err != nil {
		return nil, err
	}
	if defaults.MaxJobs, err = intVar(getenv, "DISTQ_MAX_JOBS", 10, 1, 100000); err != nil {
		return nil, err
	}
	if defaults.DeleteFinished, err = boolVar(getenv, "DISTQ_DELETE_FINISHED", false); err != nil {
		return nil, err
	}
	defaults.Endpoint = cmp.Or(getenv("DISTQ_ALIBABA_ENDPOINT"), alibaba.DefaultEndpoint)

	if path := getenv("DISTQ_ACCOUNTS_FILE"); path != "" {
		return accountsFile(path, defaults, getenv)
	}
	a := defaults
	a.Name = "default"
	a.UID = getenv("DISTQ_ALIBABA_UID")
	a.AccessKeyID = getenv("ALIBABA_CLOUD_ACCESS_KEY_ID")
	a.AccessKeySecret = getenv("ALIBABA_CLOUD_ACCESS_KEY_SECRET")
	a.CredentialsChain = a.AccessKeyID == "" && a.AccessKeySecret == ""
	a.Default = true
	if a.UID == "" {
		return nil, fmt.Errorf("DISTQ_ALIBABA_UID: required (the account's UID), or set DISTQ_ACCOUNTS_FILE")
	}
	if err := checkAccount(a); err != nil {
		return nil, fmt.Errorf("DISTQ_ALIBABA_UID: %w", err)
	}
	if _, err := alibaba.ValidateEndpoint(a.Endpoint); err != nil {
		return nil, fmt.Errorf("DISTQ_ALIBABA_ENDPOINT: %v", err)
	}
	if (a.AccessKeyID == "") != (a.AccessKeySecret == "") {
		return nil, fmt.Errorf("ALIBABA_CLOUD_ACCESS_KEY_SECRET: set both ALIBABA_CLOUD_ACCESS_KEY_ID and ALIBABA_CLOUD_ACCESS_KEY_SECRET, or neither (credentials chain)")
	}
	return []Account{a}, nil
}

func checkAccount(a Account) error {
	if a.UID == "" || strings.Trim(a.UID, "0123456789") != "" {
		return fmt.Errorf("uid %q: want the account's numeric UID", a.UID)
	}
	return nil
}

func accountsFile(path string, defaults Account, getenv Getenv) ([]Account, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("DISTQ_ACCOUNTS_FILE: %v", err)
	}
	var list []Account
	dec := yaml.NewDecoder(strings.NewReader(string(raw)))
	dec.KnownFields(true)
	if err := dec.Decode(&list); err != nil {
		return nil, fmt.Errorf("DISTQ_ACCOUNTS_FILE %s: %v", path, err)
	}
	if len(list) == 0 {
		return nil, fmt.Errorf("DISTQ_ACCOUNTS_FILE %s: no accounts", path)
	}
	names := map[string]bool{}
	defaultsSeen := 0
	for i := range list {
		a := &list[i]
		where := fmt.Sprintf("DISTQ_ACCOUNTS_FILE %s: account %d (%q)", path, i+1, a.Name)
		if a.Name == "" {
			return nil, fmt.Errorf("%s: name is required", where)
		}
		if names[a.Name] {
			return nil, fmt.Errorf("%s: name repeated", where)
		}
		names[a.Name] = true
		if err := checkAccount(*a); err != nil {
			return nil, fmt.Errorf("%s: %v", where, err)
		}
		a.Endpoint = cmp.Or(a.Endpoint, defaults.Endpoint)
		if _, err := alibaba.ValidateEndpoint(a.Endpoint); err != nil {
			return nil, fmt.Errorf("%s: %v", where, err)
		}
		a.CreateQPS = cmp.Or(a.CreateQPS, defaults.CreateQPS)
		a.QueryQPS = cmp.Or(a.QueryQPS, defaults.QueryQPS)
		a.ListQPS = cmp.Or(a.ListQPS, defaults.ListQPS)
		a.DeleteQPS = cmp.Or(a.DeleteQPS, defaults.DeleteQPS)
		a.MaxJobs = cmp.Or(a.MaxJobs, defaults.MaxJobs)
		if a.CreateQPS < 0 || a.QueryQPS < 0 || a.ListQPS < 0 || a.DeleteQPS < 0 || a.MaxJobs < 0 {
			return nil, fmt.Errorf("%s: limits must be positive", where)
		}
		if a.AccessKeyIDEnv != "" {
			if a.AccessKeyID = getenv(a.AccessKeyIDEnv); a.AccessKeyID == "" {
				return nil, fmt.Errorf("%s: %s is empty", where, a.AccessKeyIDEnv)
			}
		}
		if a.AccessKeySecretEnv != "" {
			if a.AccessKeySecret = getenv(a.AccessKeySecretEnv); a.AccessKeySecret == "" {
				return nil, fmt.Errorf("%s: %s is empty", where, a.AccessKeySecretEnv)
			}
		}
		if (a.AccessKeyID == "") != (a.AccessKeySecret == "") {
			return nil, fmt.Errorf("%s: give both access key id and secret, or neither", where)
		}
		if a.AccessKeyID == "" && !a.CredentialsChain {
			return nil, fmt.Errorf("%s: no credentials: set access_key_id(_env)/access_key_secret(_env) or credentials_chain: true", where)
		}
		if a.Default {
			defaultsSeen++
		}
	}
	if defaultsSeen > 1 {
		return nil, fmt.Errorf("DISTQ_ACCOUNTS_FILE %s: more than one default account", path)
	}
	return list, nil
}

func parseTokens(s string) (map[string]string, error) {
	out := map[string]string{}
	if strings.TrimSpace(s) == "" {
		return out, nil
	}
	for _, pair := range splitList(s) {
		team, token, ok := strings.Cut(pair, ":")
		team, token = strings.TrimSpace(team), strings.TrimSpace(token)
		if !ok || team == "" || token == "" {
			return nil, fmt.Errorf("want team:token[,team:token…], got an entry without team or token")
		}
		if len(token) < 8 {
			return nil, fmt.Errorf("token of team %q is shorter than 8 characters", team)
		}
		if _, dup := out[token]; dup {
			return nil, fmt.Errorf("a token is given twice")
		}
		out[token] = team
	}
	return out, nil
}

// tokenFile reads lines "team sha256-hex-of-token" ('#' starts a comment),
// so the file never holds a usable token. `printf %s "$TOKEN" | sha256sum`
// gives the hash.
func tokenFile(path string) (map[string]string, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for i, line := range strings.Split(string(raw), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Fields(line)
		if len(f) != 2 || len(f[1]) != 64 || strings.Trim(strings.ToLower(f[1]), "0123456789abcdef") != "" {
			return nil, fmt.Errorf("line %d: want \"team sha256-hex\"", i+1)
		}
		out[strings.ToLower(f[1])] = f[0]
	}
	return out, nil
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

func intVar(getenv Getenv, name string, def, lo, hi int) (int, error) {
	s := getenv(name)
	if s == "" {
		return def, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < lo || n > hi {
		return 0, fmt.Errorf("%s: want a whole number from %d to %d, got %q", name, lo, hi, s)
	}
	return n, nil
}

func boolVar(getenv Getenv, name string, def bool) (bool, error) {
	s := getenv(name)
	if s == "" {
		return def, nil
	}
	b, err := strconv.ParseBool(s)
	if err != nil {
		return false, fmt.Errorf("%s: want true or false, got %q", name, s)
	}
	return b, nil
}

func durationVar(getenv Getenv, name string, def time.Duration) (time.Duration, error) {
	s := getenv(name)
	if s == "" {
		return def, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("%s: want a positive duration such as 720h, got %q", name, s)
	}
	return d, nil
}
