package alisim

import (
	"cmp"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"
)

// Action names of the IoT distribution APIs the simulator serves.
const (
	ActionCreateProductDistributeJob  = "CreateProductDistributeJob"
	ActionCreateDeviceDistributeJob   = "CreateDeviceDistributeJob"
	ActionQueryDeviceDistributeJob    = "QueryDeviceDistributeJob"
	ActionListDeviceDistributeJob     = "ListDeviceDistributeJob"
	ActionDeleteDeviceDistributeJob   = "DeleteDeviceDistributeJob"
	ActionQueryDeviceDistributeDetail = "QueryDeviceDistributeDetail"
	ActionListDistributedProduct      = "ListDistributedProduct"
)

// APIVersion is the only API version the simulator accepts.
const APIVersion = "2018-01-20"

// Quota modes: which jobs count against Config.MaxJobs.
const (
	// QuotaUnfinished counts the jobs not deleted whose Status is 0 or 1.
	QuotaUnfinished = "unfinished"
	// QuotaUndeleted counts every job not yet deleted, whatever its Status.
	QuotaUndeleted = "undeleted"
)

// Default business codes. No public source names the codes the real endpoint
// uses for these three cases; the defaults follow the iot.<area>.<Reason> style
// of the documented codes.
const (
	DefaultQuotaExceededCode = "iot.distribute.JobQuotaExceeded"
	DefaultCrossAccountCode  = "iot.distribute.CrossAccountNotSupported"
	DefaultJobNotFoundCode   = "iot.distribute.JobNotExist"
	// DefaultDeviceFailCode is the per-device code of a device that failed
	// to distribute (the result file's codes are not documented either).
	DefaultDeviceFailCode = "iot.device.NotExistedDevice"
)

// DefaultQPS returns the documented per-account QPS of each action.
func DefaultQPS() map[string]float64 {
	return map[string]float64{
		ActionCreateProductDistributeJob:  2,
		ActionCreateDeviceDistributeJob:   2,
		ActionQueryDeviceDistributeJob:    10,
		ActionListDeviceDistributeJob:     5,
		ActionDeleteDeviceDistributeJob:   2,
		ActionQueryDeviceDistributeDetail: 5,
		ActionListDistributedProduct:      5,
	}
}

// Account is one Alibaba Cloud account (UID) reachable through one AccessKey.
// Several Accounts with the same UID model several AccessKeys (or RAM users)
// of one account: they share its QPS budget and its job quota.
type Account struct {
	UID             string
	AccessKeyID     string
	AccessKeySecret string
	// AliyunID is the account's logon name, matched against TargetAliyunId.
	// When empty, any TargetAliyunId is taken to be the caller's own.
	AliyunID string
}

// Faults are the failures the simulator injects. The zero value injects none.
type Faults struct {
	// LatencyMin and LatencyMax bound a uniformly random delay applied to
	// every API request before it arrives: before its arrival time is
	// recorded and before rate limiting.
	LatencyMin, LatencyMax time.Duration
	// ServerErrorRatio is the share of calls answered 503 ServiceUnavailable
	// or 500 InternalError (half each) before any other processing.
	ServerErrorRatio float64
	// TimeoutAfterCreateRatio is the share of successful
	// CreateProductDistributeJob and CreateDeviceDistributeJob calls whose
	// job is created but which get no answer: the handler holds until the client goes away or HoldTimeout
	// passes, then drops the connection.
	TimeoutAfterCreateRatio float64
	// ErrorAfterCreateRatio is the share of successful
	// CreateProductDistributeJob and CreateDeviceDistributeJob calls whose
	// job is created but which are
	// answered 503 ServiceUnavailable or 500 InternalError (half each): the
	// answer is lost on the way back, as a gateway may do.
	ErrorAfterCreateRatio float64
	// HoldTimeout bounds the hold of a timed-out call. Default 30s.
	HoldTimeout time.Duration
	// ThrottleUntil makes every authenticated call answer Throttling.User
	// until that time (by Config.Now).
	ThrottleUntil time.Time
	// DeviceFailRatio is the share of the devices of each new device job
	// whose distribution fails: their line in the job's result file carries
	// DeviceFailCode instead of 200. Drawn per device when the job is made.
	DeviceFailRatio float64
	// DeviceFailCode is the code of those devices. Default
	// DefaultDeviceFailCode.
	DeviceFailCode string
	// UnreadableDetails serves every result file as an HTML page (status
	// 200), as a proxy's error page would be: no per-device result can be
	// read from it.
	UnreadableDetails bool
}

// Config configures a Server. Zero fields take the documented defaults.
type Config struct {
	// Accounts are the known AccessKeys. A call signed by any other key
	// answers InvalidAccessKeyId.NotFound.
	Accounts []Account
	// QPS is the limit per action per account UID, in calls per second.
	// Entries override DefaultQPS; an action missing here keeps its default.
	// A limit r allows max(1, floor(r)) accepted calls in any sliding window
	// of max(1, floor(r))/r seconds (1 s for integer r).
	QPS map[string]float64
	// MaxJobs is the number of jobs an account may hold. Default 10.
	MaxJobs int
	// QuotaMode is QuotaUnfinished (default) or QuotaUndeleted.
	QuotaMode string
	// JobDuration is the time from creation to a terminal Status. A job is
	// Status 0 for the first 20%, then 1, then 2 or 3. Default 5s.
	JobDuration time.Duration
	// ListLag is how long a new job stays out of ListDeviceDistributeJob
	// (Query finds it at once): the remote's list may lag its writes.
	ListLag time.Duration
	// QueryLag is how long a new job answers NotFound to
	// QueryDeviceDistributeJob: a read replica behind its writes.
	QueryLag time.Duration
	// FailRatio is the share of jobs that end in Status 3.
	FailRatio float64
	// DevicePace is the time a device job takes per device, on top of
	// JobDuration: a job of n devices ends JobDuration + n*DevicePace after
	// its creation. Default 1ms (a job of 10,000 devices takes 10 s more);
	// negative means none.
	DevicePace time.Duration
	// MissingDevices are device names whose distribution fails with
	// iot.device.NotExistedDevice in the result file, whatever the faults.
	MissingDevices []string
	// DetailValidity is how long a result-file URL of
	// QueryDeviceDistributeDetail stays valid. Default 10m.
	DetailValidity time.Duration
	// DetailFormat is the format of the result files: DetailJSONLines
	// (default) or DetailCSV (see devices.go).
	DetailFormat string
	// MissingProducts are product keys that answer iot.prod.NotExistedProduct.
	MissingProducts []string
	// QuotaExceededCode, CrossAccountCode and JobNotFoundCode are the
	// business codes of those refusals. Defaults: DefaultQuotaExceededCode,
	// DefaultCrossAccountCode, DefaultJobNotFoundCode.
	QuotaExceededCode, CrossAccountCode, JobNotFoundCode string
	// Faults are the initial faults; see Server.SetFaults.
	Faults Faults
	// Now is the clock. Default time.Now.
	Now func() time.Time
	// Rand drives every random choice (faults, job failures, ids). The
	// Server serialises its use. Default: randomly seeded.
	Rand *rand.Rand
	// TimestampSkew is the largest accepted distance between a request's
	// timestamp and Now. Default 15m.
	TimestampSkew time.Duration
	// NonceWindow is how long a signature nonce is remembered per
	// AccessKeyId. Default 31m.
	NonceWindow time.Duration
}

// Validate reports the first invalid field of c, if any.
func (c Config) Validate() error {
	seen := make(map[string]bool, len(c.Accounts))
	for i, a := range c.Accounts {
		if a.UID == "" || a.AccessKeyID == "" || a.AccessKeySecret == "" {
			return fmt.Errorf("account %d: uid, access key id and secret are required", i)
		}
		if seen[a.AccessKeyID] {
			return fmt.Errorf("account %d: duplicate access key id %q", i, a.AccessKeyID)
		}
		seen[a.AccessKeyID] = true
	}
	defaults := DefaultQPS()
	for action, r := range c.QPS {
		if _, ok := defaults[action]; !ok {
			return fmt.Errorf("qps: unknown action %q", action)
		}
		if !(r > 0) {
			return fmt.Errorf("qps: %s must be positive, got %v", action, r)
		}
	}
	if c.MaxJobs < 0 {
		return fmt.Errorf("max jobs must not be negative, got %d", c.MaxJobs)
	}
	switch c.QuotaMode {
	case "", QuotaUnfinished, QuotaUndeleted:
	default:
		return fmt.Errorf("quota mode must be %q or %q, got %q", QuotaUnfinished, QuotaUndeleted, c.QuotaMode)
	}
	if c.JobDuration < 0 || c.ListLag < 0 || c.QueryLag < 0 || c.TimestampSkew < 0 || c.NonceWindow < 0 {
		return errors.New("durations must not be negative")
	}
	switch c.DetailFormat {
	case "", DetailJSONLines, DetailCSV:
	default:
		return fmt.Errorf("detail format must be %q or %q, got %q", DetailJSONLines, DetailCSV, c.DetailFormat)
	}
	if c.DetailValidity < 0 {
		return errors.New("durations must not be negative")
	}
	if !ratio(c.FailRatio) {
		return fmt.Errorf("fail ratio must be within [0, 1], got %v", c.FailRatio)
	}
	return c.Faults.Validate()
}

// Validate reports the first invalid field of f, if any.
func (f Faults) Validate() error {
	if f.LatencyMin < 0 || f.LatencyMax < f.LatencyMin {
		return fmt.Errorf("latency must satisfy 0 <= min <= max, got %v-%v", f.LatencyMin, f.LatencyMax)
	}
	if !ratio(f.ServerErrorRatio) {
		return fmt.Errorf("server error ratio must be within [0, 1], got %v", f.ServerErrorRatio)
	}
	if !ratio(f.TimeoutAfterCreateRatio) {
		return fmt.Errorf("timeout ratio must be within [0, 1], got %v", f.TimeoutAfterCreateRatio)
	}
	if !ratio(f.ErrorAfterCreateRatio) {
		return fmt.Errorf("error after create ratio must be within [0, 1], got %v", f.ErrorAfterCreateRatio)
	}
	if !ratio(f.DeviceFailRatio) {
		return fmt.Errorf("device fail ratio must be within [0, 1], got %v", f.DeviceFailRatio)
	}
	if f.HoldTimeout < 0 {
		return fmt.Errorf("hold timeout must not be negative, got %v", f.HoldTimeout)
	}
	return nil
}

func ratio(r float64) bool { return r >= 0 && r <= 1 }

// withDefaults returns c with every zero field set to its default.
func (c Config) withDefaults() Config {
	qps := DefaultQPS()
	for k, v := range c.QPS {
		qps[k] = v
	}
	c.QPS = qps
	c.MaxJobs = cmp.Or(c.MaxJobs, 10)
	c.QuotaMode = cmp.Or(c.QuotaMode, QuotaUnfinished)
	c.JobDuration = cmp.Or(c.JobDuration, 5*time.Second)
	c.DevicePace = max(cmp.Or(c.DevicePace, time.Millisecond), 0)
	c.DetailValidity = cmp.Or(c.DetailValidity, 10*time.Minute)
	c.DetailFormat = cmp.Or(c.DetailFormat, DetailJSONLines)
	c.QuotaExceededCode = cmp.Or(c.QuotaExceededCode, DefaultQuotaExceededCode)
	c.CrossAccountCode = cmp.Or(c.CrossAccountCode, DefaultCrossAccountCode)
	c.JobNotFoundCode = cmp.Or(c.JobNotFoundCode, DefaultJobNotFoundCode)
	c.Faults = c.Faults.withDefaults()
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Rand == nil {
		c.Rand = rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))
	}
	c.TimestampSkew = cmp.Or(c.TimestampSkew, 15*time.Minute)
	c.NonceWindow = cmp.Or(c.NonceWindow, 31*time.Minute)
	return c
}

func (f Faults) withDefaults() Faults {
	f.HoldTimeout = cmp.Or(f.HoldTimeout, 30*time.Second)
	f.DeviceFailCode = cmp.Or(f.DeviceFailCode, DefaultDeviceFailCode)
	return f
}
