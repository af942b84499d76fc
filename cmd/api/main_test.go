package main

import (
	"context"
	"strings"
	"testing"
)

// The api reads its own settings only: worker settings, even unusable ones,
// never stop it; its own bad ones do, with one line naming the variable.
func TestAPIReadsOnlyItsSettings(t *testing.T) {
	t.Parallel()
	workerOnly := map[string]string{
		"DISTQ_WORKER_CONCURRENCY": "0", "DISTQ_SLOT_LEASE": "never", "DISTQ_ALIBABA_TIMEOUT": "-1s", "DISTQ_REMOTE_VISIBILITY": "-1m",
		"DISTQ_ALIBABA_ENDPOINT": "ftp://x", "ALIBABA_CLOUD_ACCESS_KEY_ID": "ak-without-secret", "DISTQ_DELETE_FINISHED": "maybe",
	}
	for name, tc := range map[string]struct{ key, val string }{
		"short token": {"DISTQ_API_TOKENS", "t:short"},
		"no token":    {"DISTQ_API_TOKENS", ""},
		"team rps":    {"DISTQ_TEAM_RPS", "0"},
		"uid":         {"DISTQ_ALIBABA_UID", "not-a-uid"},
	} {
		env := map[string]string{"DISTQ_ALIBABA_UID": "1234567890", "DISTQ_API_TOKENS": "team:long-enough-token"}
		for k, v := range workerOnly {
			env[k] = v
		}
		env[tc.key] = tc.val
		err := run(context.Background(), func(k string) string { return env[k] })
		if err == nil || !strings.HasPrefix(err.Error(), tc.key+":") || strings.Contains(err.Error(), "\n") {
			t.Errorf("%s: %v, want one line naming %s", name, err, tc.key)
		}
	}
}

func TestAPIStartsDespiteBadWorkerSettings(t *testing.T) {
	t.Parallel()
	env := map[string]string{
		"DISTQ_ALIBABA_UID": "1234567890", "DISTQ_API_TOKENS": "team:long-enough-token", "DISTQ_HTTP_ADDR": "127.0.0.1:0",
		"DISTQ_WORKER_CONCURRENCY": "0", "DISTQ_SLOT_LEASE": "never", "DISTQ_ALIBABA_ENDPOINT": "ftp://x",
		"ALIBABA_CLOUD_ACCESS_KEY_ID": "ak-without-secret",
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // start, then stop at once
	if err := run(ctx, func(k string) string { return env[k] }); err != nil {
		t.Errorf("api with worker-only settings it does not use: %v", err)
	}
}
