package config

import (
	"cmp"
	"fmt"
	"os"
	"strings"

	"gopkg.in/yaml.v3"
)

// readAccounts reads the accounts: DISTQ_ACCOUNTS_FILE when set, otherwise
// one account from DISTQ_ALIBABA_UID and the ALIBABA_CLOUD_* keys. Both
// binaries get names, UIDs and limits; with worker set (the worker, which
// calls the endpoint) it also reads and checks credentials, endpoints and
// DISTQ_DELETE_FINISHED, which the api leaves empty.
func readAccounts(worker bool) part {
	return func(c *Config, e *vars) error {
		defaults := Account{
			CreateQPS: e.int("DISTQ_CREATE_QPS", "2", 1, 10000),
			QueryQPS:  e.int("DISTQ_QUERY_QPS", "10", 1, 10000),
			ListQPS:   e.int("DISTQ_LIST_QPS", "5", 1, 10000),
			DeleteQPS: e.int("DISTQ_DELETE_QPS", "2", 1, 10000),
			MaxJobs:   e.int("DISTQ_MAX_JOBS", "10", 1, 100000),
		}
		if worker {
			defaults.DeleteFinished = e.bool("DISTQ_DELETE_FINISHED", "false")
			defaults.Endpoint = cmp.Or(e.getenv("DISTQ_ALIBABA_ENDPOINT"), DefaultEndpoint)
		}
		if e.err != nil {
			return e.err
		}
		var err error
		if path := e.getenv("DISTQ_ACCOUNTS_FILE"); path != "" {
			c.Accounts, err = accountsFile(path, defaults, e.getenv, worker)
		} else {
			c.Accounts, err = envAccount(defaults, e.getenv, worker)
		}
		return err
	}
}

// envAccount is the one account of the variables, named "default".
func envAccount(a Account, getenv Getenv, worker bool) ([]Account, error) {
	a.Name = "default"
	a.Default = true
	a.UID = getenv("DISTQ_ALIBABA_UID")
	a.AliyunID = getenv("DISTQ_ALIBABA_ALIYUN_ID")
	if a.UID == "" {
		return nil, fmt.Errorf("DISTQ_ALIBABA_UID: required (the account's UID), or set DISTQ_ACCOUNTS_FILE")
	}
	if err := checkUID(a.UID); err != nil {
		return nil, fmt.Errorf("DISTQ_ALIBABA_UID: %w", err)
	}
	if !worker {
		return []Account{a}, nil
	}
	if err := checkEndpoint(a.Endpoint); err != nil {
		return nil, fmt.Errorf("DISTQ_ALIBABA_ENDPOINT: %v", err)
	}
	a.AccessKeyID = getenv("ALIBABA_CLOUD_ACCESS_KEY_ID")
	a.AccessKeySecret = getenv("ALIBABA_CLOUD_ACCESS_KEY_SECRET")
	if (a.AccessKeyID == "") != (a.AccessKeySecret == "") {
		return nil, fmt.Errorf("ALIBABA_CLOUD_ACCESS_KEY_SECRET: set both ALIBABA_CLOUD_ACCESS_KEY_ID and ALIBABA_CLOUD_ACCESS_KEY_SECRET, or neither (credentials chain)")
	}
	a.CredentialsChain = a.AccessKeyID == ""
	return []Account{a}, nil
}

func checkUID(uid string) error {
	if uid == "" || strings.Trim(uid, "0123456789") != "" {
		return fmt.Errorf("uid %q: want the account's numeric UID", uid)
	}
	return nil
}

// accountsFile reads the YAML list of accounts at path (unknown fields are
// errors). Limits an entry leaves out come from defaults.
func accountsFile(path string, defaults Account, getenv Getenv, worker bool) ([]Account, error) {
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
		if err := checkUID(a.UID); err != nil {
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
		if a.Default {
			defaultsSeen++
		}
		if !worker {
			// The api calls no endpoint: it keeps no credentials.
			a.Endpoint, a.AccessKeyID, a.AccessKeySecret = "", "", ""
			continue
		}
		if err := workerAccount(a, defaults, getenv); err != nil {
			return nil, fmt.Errorf("%s: %v", where, err)
		}
	}
	if defaultsSeen > 1 {
		return nil, fmt.Errorf("DISTQ_ACCOUNTS_FILE %s: more than one default account", path)
	}
	if err := checkSharedUIDs(list); err != nil {
		return nil, fmt.Errorf("DISTQ_ACCOUNTS_FILE %s: %v", path, err)
	}
	return list, nil
}

// checkSharedUIDs refuses accounts that share a UID but not its limits: the
// remote counts the rate (and the jobs) per UID, and the shared Redis state
// is keyed by UID, so two keys of one UID configured with different
// create_qps (or any rate, or max_jobs) would each believe their own limit.
func checkSharedUIDs(list []Account) error {
	byUID := map[string]Account{}
	for _, a := range list {
		b, ok := byUID[a.UID]
		if !ok {
			byUID[a.UID] = a
			continue
		}
		for _, action := range []string{actionCreate, actionQuery, actionList, actionDelete} {
			if a.QPS(action) != b.QPS(action) {
				return fmt.Errorf("accounts %q and %q share UID %s but not its %s rate (%d vs %d): set the same limits on both",
					b.Name, a.Name, a.UID, action, b.QPS(action), a.QPS(action))
			}
		}
		if a.MaxJobs != b.MaxJobs {
			return fmt.Errorf("accounts %q and %q share UID %s but not its max_jobs (%d vs %d): set the same on both",
				b.Name, a.Name, a.UID, b.MaxJobs, a.MaxJobs)
		}
	}
	return nil
}

// workerAccount completes a file's entry with what the worker needs: the
// endpoint and the credentials.
func workerAccount(a *Account, defaults Account, getenv Getenv) error {
	a.Endpoint = cmp.Or(a.Endpoint, defaults.Endpoint)
	if err := checkEndpoint(a.Endpoint); err != nil {
		return err
	}
	if a.AccessKeyIDEnv != "" {
		if a.AccessKeyID = getenv(a.AccessKeyIDEnv); a.AccessKeyID == "" {
			return fmt.Errorf("%s is empty", a.AccessKeyIDEnv)
		}
	}
	if a.AccessKeySecretEnv != "" {
		if a.AccessKeySecret = getenv(a.AccessKeySecretEnv); a.AccessKeySecret == "" {
			return fmt.Errorf("%s is empty", a.AccessKeySecretEnv)
		}
	}
	if (a.AccessKeyID == "") != (a.AccessKeySecret == "") {
		return fmt.Errorf("give both access key id and secret, or neither")
	}
	if a.AccessKeyID == "" && !a.CredentialsChain {
		return fmt.Errorf("no credentials: set access_key_id(_env)/access_key_secret(_env) or credentials_chain: true")
	}
	return nil
}
