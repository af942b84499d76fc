// Package devices is the domain of device distributions: a team's request
// to move up to MaxDevices devices of one product to another instance
// (CreateDeviceDistributeJob), how it is split into remote jobs of at most
// MaxDevicesPerJob devices, the states of the whole and of each job and the
// named transitions between them, per-device outcomes, and how a request is
// validated (the remote's device-name rules). Each remote job takes one of
// the account's job slots, the same counter as product distributions.
//
// Like internal/distribution, it imports no adapter: the store, the queue,
// the use cases and the REST API speak in its terms.
package devices

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/distq/distq/internal/distribution"
)

// Limits of a device distribution.
const (
	// MaxDevices bounds the device names of one request.
	MaxDevices = 100000
	// MaxDevicesPerJob bounds the device names of one remote job
	// (CreateDeviceDistributeJob's DeviceName.N).
	MaxDevicesPerJob = 10000
	// MaxTargets bounds the target instances of a "nearest" distribution
	// (the remote documents no bound; one per region is the use).
	MaxTargets = 16
)

// State is where a device distribution is in its life, computed from its
// jobs: queued (no job created yet) → running → succeeded | failed |
// canceled.
type State string

// The states of a device distribution.
const (
	StateQueued    State = "queued"
	StateRunning   State = "running"
	StateSucceeded State = "succeeded"
	StateFailed    State = "failed"
	StateCanceled  State = "canceled"
)

// Terminal reports whether nothing more happens by itself in state s.
func (s State) Terminal() bool {
	return s == StateSucceeded || s == StateFailed || s == StateCanceled
}

// JobState is where one remote job of a device distribution is: pending
// (waiting for a slot, the rate, or a back-off) → submitting (its Create
// may be out) → running (it has a JobId) → succeeded (remote Status 2) |
// failed (Status 3, or the Create refused); pending → canceled.
type JobState string

// The states of a job.
const (
	JobPending    JobState = "pending"
	JobSubmitting JobState = "submitting"
	JobRunning    JobState = "running"
	JobSucceeded  JobState = "succeeded"
	JobFailed     JobState = "failed"
	JobCanceled   JobState = "canceled"
)

// Final reports whether the job is over.
func (s JobState) Final() bool { return s == JobSucceeded || s == JobFailed || s == JobCanceled }

// Strategy is how devices are spread over the target instances.
type Strategy string

// The strategies of CreateDeviceDistributeJob.
const (
	// StrategySingle: every device to the one target instance (remote 0).
	StrategySingle Strategy = "single"
	// StrategyNearest: each device to the nearest of several target
	// instances, by its IP address (remote 1).
	StrategyNearest Strategy = "nearest"
)

// Remote is the remote Strategy value.
func (s Strategy) Remote() int {
	if s == StrategyNearest {
		return 1
	}
	return 0
}

// Details says whether a job's per-device results were read.
type Details string

// The states of a job's per-device results.
const (
	// DetailsNone: the job has not ended (or made no remote job).
	DetailsNone Details = ""
	// DetailsComplete: the result file was read; every device has an outcome.
	DetailsComplete Details = "complete"
	// DetailsUnavailable: the result file could not be fetched or read
	// within its validity; the job's end is known, its devices' outcomes
	// are not.
	DetailsUnavailable Details = "unavailable"
)

// Codes distq gives devices that the result file does not settle.
const (
	// CodeNoResult: the job completed but its file does not list the device.
	CodeNoResult = "NoResult"
	// CodeJobInterrupted: the job was interrupted (Status 3) before it
	// handled the device.
	CodeJobInterrupted = "JobInterrupted"
	// CodeOK is the remote's code of a distributed device.
	CodeOK = "200"
)

// Error is a failure recorded on a job: the remote Code and message
// verbatim, or distq's own code.
type Error = distribution.Error

// Job is one remote job of a device distribution: up to
// MaxDevicesPerJob of its device names.
type Job struct {
	// Index is the job's place in the distribution, from 0; a retry adds
	// jobs after the others.
	Index   int      `json:"index"`
	Devices int      `json:"devices"`
	State   JobState `json:"state"`
	// WaitReason says why a pending job waits.
	WaitReason distribution.WaitReason `json:"wait_reason,omitempty"`
	JobID      string                  `json:"job_id,omitempty"`
	// RemoteStatus is the last Status QueryDeviceDistributeJob answered.
	RemoteStatus *int `json:"remote_status,omitempty"`
	// Attempts counts the Creates sent for the job.
	Attempts int `json:"attempts"`
	// RetryOf names the jobs whose failed devices this job sends again.
	RetryOf []int `json:"retry_of,omitempty"`
	// Retried: a later job sends this job's failed devices again.
	Retried bool `json:"retried,omitempty"`
	// Distributed and Failed count the devices by outcome once Details is
	// DetailsComplete.
	Distributed int     `json:"distributed"`
	Failed      int     `json:"failed"`
	Details     Details `json:"details,omitempty"`
	// DetailAttempts counts failed tries at the result file.
	DetailAttempts int        `json:"detail_attempts,omitempty"`
	Error          *Error     `json:"error,omitempty"`
	CreateSentAt   *time.Time `json:"create_sent_at,omitempty"`
	SubmittedAt    *time.Time `json:"submitted_at,omitempty"`
	FinishedAt     *time.Time `json:"finished_at,omitempty"`
}

// Record is a device distribution as distq keeps it.
type Record struct {
	ID      string `json:"id"`
	Team    string `json:"team"`
	Account string `json:"account"`
	// UID is the account's UID: the quota key.
	UID               string   `json:"uid"`
	ProductKey        string   `json:"product_key"`
	SourceInstanceID  string   `json:"source_instance_id"`
	TargetInstanceIDs []string `json:"target_instance_ids"`
	Strategy          Strategy `json:"strategy"`
	TargetUID         string   `json:"target_uid,omitempty"`
	TargetAliyunID    string   `json:"target_aliyun_id,omitempty"`
	// NotifyURL is where the device_distribution.finished event goes each
	// time the distribution reaches a final state ("" for none).
	NotifyURL string `json:"notify_url,omitempty"`
	// Devices is the number of device names requested.
	Devices    int        `json:"devices"`
	State      State      `json:"state"`
	Jobs       []Job      `json:"jobs"`
	CreatedAt  time.Time  `json:"created_at"`
	UpdatedAt  time.Time  `json:"updated_at"`
	FinishedAt *time.Time `json:"finished_at,omitempty"`
}

// Counts are a device distribution's devices by outcome. Every device is
// in exactly one of them: a device sent again by a retry counts in the
// retry's job.
type Counts struct {
	Distributed int `json:"distributed"`
	Failed      int `json:"failed"`
	// Pending: in jobs not finished.
	Pending int `json:"pending"`
	// Canceled: in jobs canceled before their Create.
	Canceled int `json:"canceled"`
	// Unknown: in finished jobs whose result file could not be read.
	Unknown int `json:"unknown"`
}

// EventJob is one job in a device_distribution.finished event.
type EventJob struct {
	Index       int      `json:"index"`
	Devices     int      `json:"devices"`
	State       JobState `json:"state"`
	JobID       string   `json:"job_id,omitempty"`
	Distributed int      `json:"distributed"`
	Failed      int      `json:"failed"`
	Details     Details  `json:"details,omitempty"`
	Error       *Error   `json:"error,omitempty"`
}

// EventData is the data of a device_distribution.finished event: the
// distribution as it ended, its counts and its jobs (docs/WEBHOOKS.md).
type EventData struct {
	ID                 string     `json:"id"`
	Account            string     `json:"account"`
	ProductKey         string     `json:"product_key"`
	SourceInstanceID   string     `json:"source_instance_id"`
	TargetInstanceIDs  []string   `json:"target_instance_ids"`
	Strategy           Strategy   `json:"strategy"`
	DistributesProduct bool       `json:"distributes_product"`
	Devices            int        `json:"devices"`
	State              State      `json:"state"`
	Counts             Counts     `json:"counts"`
	Details            Details    `json:"details,omitempty"`
	Jobs               []EventJob `json:"jobs"`
	NotifyURL          string     `json:"notify_url"`
	CreatedAt          time.Time  `json:"created_at"`
	FinishedAt         *time.Time `json:"finished_at,omitempty"`
}

// EventData returns the data of the event r's move to a final state
// announces.
func (r *Record) EventData() EventData {
	d := EventData{ID: r.ID, Account: r.Account, ProductKey: r.ProductKey, SourceInstanceID: r.SourceInstanceID,
		TargetInstanceIDs: r.TargetInstanceIDs, Strategy: r.Strategy, DistributesProduct: true, Devices: r.Devices,
		State: r.State, Counts: r.Counts(), Details: r.DetailsState(), Jobs: make([]EventJob, len(r.Jobs)),
		NotifyURL: r.NotifyURL, CreatedAt: r.CreatedAt, FinishedAt: r.FinishedAt}
	for i, j := range r.Jobs {
		d.Jobs[i] = EventJob{Index: j.Index, Devices: j.Devices, State: j.State, JobID: j.JobID,
			Distributed: j.Distributed, Failed: j.Failed, Details: j.Details, Error: j.Error}
	}
	return d
}

// Counts returns the devices by outcome.
func (r *Record) Counts() Counts {
	var c Counts
	for _, j := range r.Jobs {
		switch {
		case !j.State.Final():
			c.Pending += j.Devices
		case j.State == JobCanceled:
			c.Canceled += j.Devices
		case j.Details == DetailsComplete:
			c.Distributed += j.Distributed
			if !j.Retried {
				c.Failed += j.Failed
			}
		case j.Retried:
		default:
			c.Unknown += j.Devices
		}
	}
	return c
}

// DetailsState sums up the jobs' Details: "complete" when every finished
// job's results were read, "unavailable" when some could not be, "" while
// no job has finished.
func (r *Record) DetailsState() Details {
	out := DetailsNone
	for _, j := range r.Jobs {
		switch j.Details {
		case DetailsUnavailable:
			return DetailsUnavailable
		case DetailsComplete:
			out = DetailsComplete
		}
	}
	return out
}

// Holder is the job slot holder of job n of distribution id: "dev:<id>:<n>".
// Distribution ids never start with "dev:", so the two never collide.
func Holder(id string, n int) string { return "dev:" + id + ":" + strconv.Itoa(n) }

// ParseHolder is the inverse of Holder.
func ParseHolder(h string) (id string, n int, ok bool) {
	rest, ok := strings.CutPrefix(h, "dev:")
	if !ok {
		return "", 0, false
	}
	i := strings.LastIndexByte(rest, ':')
	if i < 0 {
		return "", 0, false
	}
	n, err := strconv.Atoi(rest[i+1:])
	if err != nil || n < 0 || !ValidID(rest[:i]) {
		return "", 0, false
	}
	return rest[:i], n, true
}

// IsHolder reports whether a slot holder is a device job's.
func IsHolder(h string) bool { return strings.HasPrefix(h, "dev:") }

var idRE = regexp.MustCompile(`^v_[0-9a-f]{12}_[0-9a-f]{10}$`)

// NewID returns a new device distribution id created at now: "v_", the
// time in ms as 12 hex digits, 10 random hex digits. Ids sort by creation.
func NewID(now time.Time) string {
	var b [5]byte
	_, _ = rand.Read(b[:]) // never fails
	return fmt.Sprintf("v_%012x_%s", now.UnixMilli(), hex.EncodeToString(b[:]))
}

// ValidID reports whether s has the shape of a device distribution id.
func ValidID(s string) bool { return idRE.MatchString(s) }

// IDFloor is the smallest id created at t: ids below it are older.
func IDFloor(t time.Time) string { return fmt.Sprintf("v_%012x_", t.UnixMilli()) }

// Split cuts names into jobs of at most MaxDevicesPerJob, as even as the
// bound allows in job order: 25,000 names make 10,000 + 10,000 + 5,000.
func Split(names []string) [][]string {
	var out [][]string
	for len(names) > 0 {
		n := min(len(names), MaxDevicesPerJob)
		out = append(out, names[:n:n])
		names = names[n:]
	}
	return out
}

// Result is one device's outcome.
type Result struct {
	DeviceName string `json:"device_name"`
	// Job is the index of the job that carried the device.
	Job int `json:"job"`
	// Code is CodeOK when the device was distributed.
	Code    string `json:"code"`
	Message string `json:"message,omitempty"`
	// TargetInstanceID is where the device went, when the file says.
	TargetInstanceID string `json:"target_instance_id,omitempty"`
}

// Distributed reports whether the device was distributed.
func (r Result) Distributed() bool { return r.Code == CodeOK }
