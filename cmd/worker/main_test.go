package main

import (
	"context"
	"strings"
	"testing"

	"github.com/distq/distq/internal/redistest"
)

// The worker reads its own settings only: api settings, even unusable ones,
// never stop it; its own bad ones do, with one line naming the variable.
func TestWorkerReadsOnlyItsSettings(t *testing.T) {
	t.Parallel()
	apiOnly := map[string]string{"DISTQ_API_TOKENS": "t:short", "DISTQ_API_TOKENS_FILE": "/nonexistent", "DISTQ_TEAM_RPS": "0"}
	for name, tc := range map[string]struct{ key, val string }{
		"concurrency": {"DISTQ_WORKER_CONCURRENCY", "0"},
		"endpoint":    {"DISTQ_ALIBABA_ENDPOINT", "https://iot.cn-beijing.aliyuncs.com"},
		"half keys":   {"ALIBABA_CLOUD_ACCESS_KEY_ID", "ak-without-secret"},
		"uid":         {"DISTQ_ALIBABA_UID", "not-a-uid"},
	} {
		env := map[string]string{"DISTQ_ALIBABA_UID": "1234567890"}
		for k, v := range apiOnly {
			env[k] = v
		}
		env[tc.key] = tc.val
		want := tc.key
		if tc.key == "ALIBABA_CLOUD_ACCESS_KEY_ID" {
			want = "ALIBABA_CLOUD_ACCESS_KEY_SECRET"
		}
		err := run(context.Background(), func(k string) string { return env[k] })
		if err == nil || !strings.HasPrefix(err.Error(), want+":") || strings.Contains(err.Error(), "\n") {
			t.Errorf("%s: %v, want one line naming %s", name, err, want)
		}
	}
}

func TestWorkerStartsDespiteBadAPISettings(t *testing.T) {
	t.Parallel()
	db := redistest.New(t)
	env := map[string]string{
		"DISTQ_REDIS_URL": db.URL(), "DISTQ_METRICS_ADDR": "127.0.0.1:0",
		"DISTQ_ALIBABA_UID": "1234567890", "ALIBABA_CLOUD_ACCESS_KEY_ID": "ak", "ALIBABA_CLOUD_ACCESS_KEY_SECRET": "sk",
		"DISTQ_ALIBABA_ENDPOINT": "http://127.0.0.1:1",
		// The short token of issue 11, and the api's other settings, unusable.
		"DISTQ_API_TOKENS": "t:short", "DISTQ_API_TOKENS_FILE": "/nonexistent", "DISTQ_TEAM_RPS": "0",
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // start, then stop at once
	if err := run(ctx, func(k string) string { return env[k] }); err != nil {
		t.Errorf("worker with api-only settings it does not use: %v", err)
	}
}
