package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Accounts that share a UID share its limits: conflicting limits are
// refused at start rather than each key believing its own.
func TestCheckSharedUIDsRefusesConflictingLimits(t *testing.T) {
	t.Parallel()
	acct := func(name, uid string, create, jobs int) Account {
		return Account{Name: name, UID: uid, CreateQPS: create, QueryQPS: 10, ListQPS: 5, DeleteQPS: 2, MaxJobs: jobs}
	}
	if err := checkSharedUIDs([]Account{acct("a", "1", 2, 10), acct("b", "1", 2, 10), acct("c", "2", 5, 3)}); err != nil {
		t.Fatalf("consistent accounts refused: %v", err)
	}
	err := checkSharedUIDs([]Account{acct("a", "1", 2, 10), acct("b", "1", 3, 10)})
	if err == nil || !strings.Contains(err.Error(), "CreateProductDistributeJob") {
		t.Fatalf("conflicting create_qps: %v, want refused", err)
	}
	if err := checkSharedUIDs([]Account{acct("a", "1", 2, 10), acct("b", "1", 2, 9)}); err == nil {
		t.Fatal("conflicting max_jobs accepted")
	}
}

// Both binaries refuse a file whose entries of one UID disagree on create_qps
// (the second entry takes the default, 2).
func TestAccountsFileRefusesConflictingCreateQPS(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "accounts.yaml")
	os.WriteFile(path, []byte(`
- name: a
  uid: "111"
  create_qps: 1
  credentials_chain: true
- name: b
  uid: "111"
  credentials_chain: true
`), 0o600)
	m := base()
	m["DISTQ_ACCOUNTS_FILE"] = path
	for name, read := range map[string]func(Getenv) (*Config, error){"api": ForAPI, "worker": ForWorker} {
		if _, err := read(env(m)); err == nil || !strings.Contains(err.Error(), "share UID 111") {
			t.Errorf("%s: %v, want conflicting create_qps refused", name, err)
		}
	}
}
