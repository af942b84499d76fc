// Package config reads distq's settings from the environment (twelve-factor),
// once, at start, and validates them. It builds nothing: internal/app turns a
// Config into Redis clients, Alibaba clients and servers.
//
// Each binary reads what it uses (ForAPI, ForWorker), so a setting one binary
// ignores can never stop it. A bad or missing setting is an error whose text
// starts with the variable's name; it never holds a secret.
//
// The files are split by source: env.go reads the variables, accounts.go the
// accounts (DISTQ_ACCOUNTS_FILE or the single-account variables), tokens.go the
// teams' tokens.
package config

import (
	"fmt"
	"time"
)

// The remote actions an account has a rate for. They are the Alibaba API's
// action names (internal/alibaba calls them; a test in internal/app checks
// that both packages agree).
const (
	actionCreate = "CreateProductDistributeJob"
	actionQuery  = "QueryDeviceDistributeJob"
	actionList   = "ListDeviceDistributeJob"
	actionDelete = "DeleteDeviceDistributeJob"
)

// DefaultEndpoint is the default of DISTQ_ALIBABA_ENDPOINT: the only host that
// serves the distribution APIs.
const DefaultEndpoint = "https://iot.cn-shanghai.aliyuncs.com"

// Account is one Alibaba Cloud account distq acts for.
type Account struct {
	Name string `yaml:"name"`
	// UID is the account's UID: the quota key. Two entries with one UID
	// share one budget.
	UID string `yaml:"uid"`
	// AliyunID is the account's logon name, the only target_aliyun_id a
	// request may name (distribution stays within the account); empty: no
	// request may name one (use target_uid).
	AliyunID        string `yaml:"aliyun_id"`
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

// QPS returns the account's configured rate for a remote action, named as
// the Alibaba API names it (alibaba.ActionCreate, ...); 1 for another action.
func (a Account) QPS(action string) int {
	switch action {
	case actionCreate:
		return a.CreateQPS
	case actionQuery:
		return a.QueryQPS
	case actionList:
		return a.ListQPS
	case actionDelete:
		return a.DeleteQPS
	}
	return 1
}

// String never prints the secret.
func (a Account) String() string {
	return fmt.Sprintf("account %s (uid %s, endpoint %s)", a.Name, a.UID, a.Endpoint)
}

// Config is what the api and the worker read from the environment. A field
// that a binary does not use keeps its zero value in that binary's Config
// (ForAPI leaves the worker's fields empty and the reverse).
type Config struct {
	// Redis, both binaries.
	RedisURL            string
	RedisSentinelAddrs  []string
	RedisSentinelMaster string
	// Retention is how long finished records are kept (both binaries).
	Retention time.Duration
	// Accounts, both binaries; only the worker's hold credentials and a
	// checked endpoint.
	Accounts []Account

	// The api's.
	HTTPAddr string
	// Tokens maps a bearer token to its team (from DISTQ_API_TOKENS).
	Tokens map[string]string
	// TokenHashes maps the hex SHA-256 of a bearer token to its team (from
	// DISTQ_API_TOKENS_FILE, which holds only hashes).
	TokenHashes map[string]string
	// AdminTokens maps an operator's bearer token to the operator's name
	// (from DISTQ_ADMIN_TOKENS); only these open the admin routes.
	AdminTokens map[string]string
	// AdminTokenHashes maps the hex SHA-256 of an operator's bearer token
	// to the operator's name (from DISTQ_ADMIN_TOKENS_FILE).
	AdminTokenHashes map[string]string
	// TeamRPS limits each team's API requests per second (burst twice that).
	TeamRPS int
	// JobDurationHint is the remote job duration batch ETAs assume until
	// one has been observed (DISTQ_JOB_DURATION_HINT).
	JobDurationHint time.Duration

	// The worker's.
	MetricsAddr       string
	WorkerConcurrency int
	// TaskCheckInterval is how often an idle worker looks for runnable
	// tasks (asynq's TaskCheckInterval, jittered to 0.5–1.5 times it):
	// about how long a new single submission, or a batch item admitted by
	// the fair share, waits for an idle worker, and what an idle worker
	// costs Redis.
	TaskCheckInterval time.Duration
	// IdleAfter is how long no task may have been runnable or running
	// before the worker goes quiet: it then looks for
	// tasks every IdleTaskCheckInterval instead, and a submission wakes it
	// at once (0: never quiet).
	IdleAfter             time.Duration
	IdleTaskCheckInterval time.Duration
	// SlotLease is how long a job slot stays held without renewal: a
	// crashed worker's slots free after it.
	SlotLease time.Duration
	// AlibabaTimeout bounds one call to the endpoint.
	AlibabaTimeout time.Duration
	// RemoteVisibility bounds how long a job made by a Create may take to
	// show in ListDeviceDistributeJob (DISTQ_REMOTE_VISIBILITY, default 2m).
	RemoteVisibility time.Duration

	// Webhooks, both binaries.
	Webhooks Webhooks

	// TeamWeights maps a team to its weight in the fair share of an
	// account between teams (DISTQ_TEAM_WEIGHTS, both binaries); a team
	// not in it weighs 1. Never nil.
	TeamWeights map[string]int
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
