package alisim

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

func envOf(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func TestConfigFromEnvDefaults(t *testing.T) {
	t.Parallel()
	cfg, err := ConfigFromEnv(envOf(nil))
	if err != nil {
		t.Fatal(err)
	}
	want := Config{Accounts: []Account{{UID: "1234567890123456", AccessKeyID: "dev-access-key", AccessKeySecret: "dev-secret"}}}
	if diff := cmp.Diff(want, cfg, cmpopts.IgnoreFields(Config{}, "Now", "Rand")); diff != "" {
		t.Errorf("config (-want +got):\n%s", diff)
	}
	full := cfg.withDefaults()
	if full.MaxJobs != 10 || full.JobDuration != 5*time.Second || full.QuotaMode != QuotaUnfinished ||
		full.QPS[ActionCreateProductDistributeJob] != 2 || full.QPS[ActionQueryDeviceDistributeJob] != 10 {
		t.Errorf("defaults = %+v", full)
	}
}

func TestConfigFromEnvAll(t *testing.T) {
	t.Parallel()
	cfg, err := ConfigFromEnv(envOf(map[string]string{
		"ALISIM_ACCOUNTS":           "1:ak1:s:with:colons, 1:ak2:s2",
		"ALISIM_JOB_DURATION":       "2s",
		"ALISIM_FAIL_RATIO":         "0.1",
		"ALISIM_MAX_JOBS":           "3",
		"ALISIM_QUOTA_MODE":         "undeleted",
		"ALISIM_QPS":                "CreateProductDistributeJob=1.5, QueryDeviceDistributeJob=20",
		"ALISIM_MISSING_PRODUCTS":   "a, b",
		"ALISIM_LATENCY":            "5ms-50ms",
		"ALISIM_ERROR_RATIO":        "0.2",
		"ALISIM_TIMEOUT_RATIO":      "0.3",
		"ALISIM_JOB_NOT_FOUND_CODE": "nf",
		"ALISIM_SEED":               "42",
	}))
	if err != nil {
		t.Fatal(err)
	}
	want := Config{
		Accounts: []Account{
			{UID: "1", AccessKeyID: "ak1", AccessKeySecret: "s:with:colons"},
			{UID: "1", AccessKeyID: "ak2", AccessKeySecret: "s2"},
		},
		QPS:             map[string]float64{ActionCreateProductDistributeJob: 1.5, ActionQueryDeviceDistributeJob: 20},
		MaxJobs:         3,
		QuotaMode:       QuotaUndeleted,
		JobDuration:     2 * time.Second,
		FailRatio:       0.1,
		MissingProducts: []string{"a", "b"},
		JobNotFoundCode: "nf",
		Faults: Faults{LatencyMin: 5 * time.Millisecond, LatencyMax: 50 * time.Millisecond,
			ServerErrorRatio: 0.2, TimeoutAfterCreateRatio: 0.3},
	}
	if diff := cmp.Diff(want, cfg, cmpopts.IgnoreFields(Config{}, "Now", "Rand")); diff != "" {
		t.Errorf("config (-want +got):\n%s", diff)
	}
	if cfg.Rand == nil {
		t.Error("ALISIM_SEED set no Rand")
	}
}

func TestConfigFromEnvErrors(t *testing.T) {
	t.Parallel()
	tests := map[string]string{
		"ALISIM_ACCOUNTS":      "uid:ak",
		"ALISIM_JOB_DURATION":  "soon",
		"ALISIM_FAIL_RATIO":    "2",
		"ALISIM_MAX_JOBS":      "0",
		"ALISIM_QUOTA_MODE":    "sometimes",
		"ALISIM_QPS":           "Nope=1",
		"ALISIM_LATENCY":       "50ms-5ms",
		"ALISIM_ERROR_RATIO":   "x",
		"ALISIM_TIMEOUT_RATIO": "-1",
		"ALISIM_SEED":          "-3",
	}
	for name, value := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			_, err := ConfigFromEnv(envOf(map[string]string{name: value}))
			if err == nil || !strings.HasPrefix(err.Error(), name+":") {
				t.Errorf("error %v does not name %s", err, name)
			}
			if err != nil && strings.Contains(err.Error(), "\n") {
				t.Errorf("error spans lines: %q", err)
			}
		})
	}
	_, err := ConfigFromEnv(envOf(map[string]string{"ALISIM_QPS": "CreateProductDistributeJob=0"}))
	if err == nil {
		t.Error("zero QPS accepted")
	}
	_, err = ConfigFromEnv(envOf(map[string]string{"ALISIM_ACCOUNTS": "1:ak:s,2:ak:t"}))
	if err == nil || !strings.HasPrefix(err.Error(), "ALISIM_ACCOUNTS:") {
		t.Errorf("duplicate key: %v", err)
	}
}

func TestParseLatency(t *testing.T) {
	t.Parallel()
	for in, want := range map[string][2]time.Duration{
		"0-50ms":  {0, 50 * time.Millisecond},
		"20ms":    {20 * time.Millisecond, 20 * time.Millisecond},
		"1s - 2s": {time.Second, 2 * time.Second},
	} {
		lo, hi, err := parseLatency(in)
		if err != nil || lo != want[0] || hi != want[1] {
			t.Errorf("parseLatency(%q) = %v, %v, %v", in, lo, hi, err)
		}
	}
}
