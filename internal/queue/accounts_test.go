package queue

import (
	"strings"
	"testing"

	"github.com/distq/distq/internal/config"
)

// Accounts that share a UID share its limits: conflicting limits are
// refused at start rather than each key believing its own.
func TestCheckAccountsRefusesConflictingLimits(t *testing.T) {
	t.Parallel()
	acct := func(name, uid string, create, jobs int) *Account {
		return &Account{Account: config.Account{Name: name, UID: uid, CreateQPS: create, QueryQPS: 10, ListQPS: 5, DeleteQPS: 2, MaxJobs: jobs}}
	}
	if err := CheckAccounts([]*Account{acct("a", "1", 2, 10), acct("b", "1", 2, 10), acct("c", "2", 5, 3)}); err != nil {
		t.Fatalf("consistent accounts refused: %v", err)
	}
	err := CheckAccounts([]*Account{acct("a", "1", 2, 10), acct("b", "1", 3, 10)})
	if err == nil || !strings.Contains(err.Error(), "CreateProductDistributeJob") {
		t.Fatalf("conflicting create_qps: %v, want refused", err)
	}
	if err := CheckAccounts([]*Account{acct("a", "1", 2, 10), acct("b", "1", 2, 9)}); err == nil {
		t.Fatal("conflicting max_jobs accepted")
	}
}
