package alisim

import (
	"cmp"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"
)

// DevAccounts is the default of ALISIM_ACCOUNTS: one development account.
const DevAccounts = "1234567890123456:dev-access-key:dev-secret"

// ConfigFromEnv builds a Config from ALISIM_* variables read through getenv
// (os.Getenv in a binary). Unset variables take the defaults of Config.
// The error names the first bad variable.
//
//	ALISIM_ACCOUNTS         uid:accessKeyId:secret[,…]   (default DevAccounts)
//	ALISIM_JOB_DURATION     Go duration                   (5s)
//	ALISIM_FAIL_RATIO       0..1                          (0)
//	ALISIM_LIST_LAG         Go duration: new jobs hidden from List (0)
//	ALISIM_MAX_JOBS         integer >= 1                  (10)
//	ALISIM_QUOTA_MODE       unfinished | undeleted        (unfinished)
//	ALISIM_QPS              Action=rate[,…] over DefaultQPS
//	ALISIM_MISSING_PRODUCTS productKey[,…]
//	ALISIM_LATENCY          min-max, e.g. 0-50ms, or one duration
//	ALISIM_ERROR_RATIO      0..1, the 5xx fault           (0)
//	ALISIM_TIMEOUT_RATIO    0..1, the timeout-after-create fault (0)
//	ALISIM_ERROR_AFTER_CREATE_RATIO 0..1, the 5xx-after-create fault (0)
//	ALISIM_QUOTA_EXCEEDED_CODE, ALISIM_CROSS_ACCOUNT_CODE, ALISIM_JOB_NOT_FOUND_CODE
//	ALISIM_DEVICE_PACE      Go duration per device of a device job (1ms)
//	ALISIM_MISSING_DEVICES  deviceName[,…] failing iot.device.NotExistedDevice
//	ALISIM_DEVICE_FAIL_RATIO 0..1, the share of devices that fail (0)
//	ALISIM_DEVICE_FAIL_CODE their code            (DefaultDeviceFailCode)
//	ALISIM_DETAIL_VALIDITY  Go duration a result-file URL stays valid (10m)
//	ALISIM_DETAIL_FORMAT    jsonl | csv, the result files' format (jsonl)
//	ALISIM_SEED             uint64 seed for deterministic faults (random)
func ConfigFromEnv(getenv func(string) string) (Config, error) {
	var cfg Config
	var err error
	bad := func(name, v, why string) error {
		return fmt.Errorf("%s: %q %s", name, v, why)
	}

	accounts := cmp.Or(getenv("ALISIM_ACCOUNTS"), DevAccounts)
	for _, item := range splitList(accounts) {
		parts := strings.SplitN(item, ":", 3)
		if len(parts) != 3 || parts[0] == "" || parts[1] == "" || parts[2] == "" {
			return Config{}, fmt.Errorf("ALISIM_ACCOUNTS: an entry is not uid:accessKeyId:secret")
		}
		cfg.Accounts = append(cfg.Accounts, Account{UID: parts[0], AccessKeyID: parts[1], AccessKeySecret: parts[2]})
	}
	if len(cfg.Accounts) == 0 {
		return Config{}, fmt.Errorf("ALISIM_ACCOUNTS: no account given")
	}

	if v := getenv("ALISIM_LIST_LAG"); v != "" {
		if cfg.ListLag, err = time.ParseDuration(v); err != nil || cfg.ListLag < 0 {
			return Config{}, bad("ALISIM_LIST_LAG", v, "is not a duration >= 0")
		}
	}
	if v := getenv("ALISIM_JOB_DURATION"); v != "" {
		if cfg.JobDuration, err = time.ParseDuration(v); err != nil || cfg.JobDuration <= 0 {
			return Config{}, bad("ALISIM_JOB_DURATION", v, "is not a positive duration")
		}
	}
	if v := getenv("ALISIM_FAIL_RATIO"); v != "" {
		if cfg.FailRatio, err = parseRatio(v); err != nil {
			return Config{}, bad("ALISIM_FAIL_RATIO", v, "is not a number within [0, 1]")
		}
	}
	if v := getenv("ALISIM_MAX_JOBS"); v != "" {
		if cfg.MaxJobs, err = strconv.Atoi(v); err != nil || cfg.MaxJobs < 1 {
			return Config{}, bad("ALISIM_MAX_JOBS", v, "is not a positive integer")
		}
	}
	if v := getenv("ALISIM_QUOTA_MODE"); v != "" {
		if v != QuotaUnfinished && v != QuotaUndeleted {
			return Config{}, bad("ALISIM_QUOTA_MODE", v, "is not unfinished or undeleted")
		}
		cfg.QuotaMode = v
	}
	if v := getenv("ALISIM_QPS"); v != "" {
		cfg.QPS = map[string]float64{}
		defaults := DefaultQPS()
		for _, item := range splitList(v) {
			action, rate, ok := strings.Cut(item, "=")
			action = strings.TrimSpace(action)
			if _, known := defaults[action]; !ok || !known {
				return Config{}, bad("ALISIM_QPS", item, "is not Action=rate with a known action")
			}
			r, err := strconv.ParseFloat(strings.TrimSpace(rate), 64)
			if err != nil || !(r > 0) {
				return Config{}, bad("ALISIM_QPS", item, "has no positive rate")
			}
			cfg.QPS[action] = r
		}
	}
	cfg.MissingProducts = splitList(getenv("ALISIM_MISSING_PRODUCTS"))
	if v := getenv("ALISIM_LATENCY"); v != "" {
		if cfg.Faults.LatencyMin, cfg.Faults.LatencyMax, err = parseLatency(v); err != nil {
			return Config{}, bad("ALISIM_LATENCY", v, "is not min-max durations with 0 <= min <= max")
		}
	}
	if v := getenv("ALISIM_ERROR_RATIO"); v != "" {
		if cfg.Faults.ServerErrorRatio, err = parseRatio(v); err != nil {
			return Config{}, bad("ALISIM_ERROR_RATIO", v, "is not a number within [0, 1]")
		}
	}
	if v := getenv("ALISIM_ERROR_AFTER_CREATE_RATIO"); v != "" {
		if cfg.Faults.ErrorAfterCreateRatio, err = parseRatio(v); err != nil {
			return Config{}, bad("ALISIM_ERROR_AFTER_CREATE_RATIO", v, "is not a number within [0, 1]")
		}
	}
	if v := getenv("ALISIM_TIMEOUT_RATIO"); v != "" {
		if cfg.Faults.TimeoutAfterCreateRatio, err = parseRatio(v); err != nil {
			return Config{}, bad("ALISIM_TIMEOUT_RATIO", v, "is not a number within [0, 1]")
		}
	}
	if v := getenv("ALISIM_DEVICE_PACE"); v != "" {
		if cfg.DevicePace, err = time.ParseDuration(v); err != nil || cfg.DevicePace < 0 {
			return Config{}, bad("ALISIM_DEVICE_PACE", v, "is not a duration >= 0")
		}
		if cfg.DevicePace == 0 {
			cfg.DevicePace = -1 // none, not the default
		}
	}
	cfg.MissingDevices = splitList(getenv("ALISIM_MISSING_DEVICES"))
	if v := getenv("ALISIM_DEVICE_FAIL_RATIO"); v != "" {
		if cfg.Faults.DeviceFailRatio, err = parseRatio(v); err != nil {
			return Config{}, bad("ALISIM_DEVICE_FAIL_RATIO", v, "is not a number within [0, 1]")
		}
	}
	cfg.Faults.DeviceFailCode = getenv("ALISIM_DEVICE_FAIL_CODE")
	if v := getenv("ALISIM_DETAIL_VALIDITY"); v != "" {
		if cfg.DetailValidity, err = time.ParseDuration(v); err != nil || cfg.DetailValidity <= 0 {
			return Config{}, bad("ALISIM_DETAIL_VALIDITY", v, "is not a positive duration")
		}
	}
	if v := getenv("ALISIM_DETAIL_FORMAT"); v != "" {
		if v != DetailJSONLines && v != DetailCSV {
			return Config{}, bad("ALISIM_DETAIL_FORMAT", v, "is not jsonl or csv")
		}
		cfg.DetailFormat = v
	}
	cfg.QuotaExceededCode = getenv("ALISIM_QUOTA_EXCEEDED_CODE")
	cfg.CrossAccountCode = getenv("ALISIM_CROSS_ACCOUNT_CODE")
	cfg.JobNotFoundCode = getenv("ALISIM_JOB_NOT_FOUND_CODE")
	if v := getenv("ALISIM_SEED"); v != "" {
		seed, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			return Config{}, bad("ALISIM_SEED", v, "is not an unsigned integer")
		}
		cfg.Rand = rand.New(rand.NewPCG(seed, seed))
	}
	if err := cfg.Validate(); err != nil {
		return Config{}, fmt.Errorf("ALISIM_ACCOUNTS: %w", err)
	}
	return cfg, nil
}

func splitList(s string) []string {
	var out []string
	for _, item := range strings.Split(s, ",") {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	return out
}

func parseRatio(s string) (float64, error) {
	r, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return 0, err
	}
	if !ratio(r) {
		return 0, fmt.Errorf("out of range")
	}
	return r, nil
}

// parseLatency parses "min-max" (e.g. "0-50ms", "10ms-1s") or one duration.
func parseLatency(s string) (lo, hi time.Duration, err error) {
	a, b, found := strings.Cut(s, "-")
	if lo, err = time.ParseDuration(strings.TrimSpace(a)); err != nil {
		return 0, 0, err
	}
	hi = lo
	if found {
		if hi, err = time.ParseDuration(strings.TrimSpace(b)); err != nil {
			return 0, 0, err
		}
	}
	if lo < 0 || hi < lo {
		return 0, 0, fmt.Errorf("bad range")
	}
	return lo, hi, nil
}
