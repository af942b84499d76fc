package alisim

import (
	"slices"
	"strings"
	"time"
)

// Job Status values of the remote API.
const (
	StatusInitializing = 0
	StatusRunning      = 1
	StatusCompleted    = 2
	StatusInterrupted  = 3
)

// Job is a snapshot of one simulated distribution job.
type Job struct {
	JobID            string    `json:"job_id"`
	UID              string    `json:"uid"`
	ProductKey       string    `json:"product_key"`
	SourceInstanceID string    `json:"source_instance_id"`
	TargetInstanceID string    `json:"target_instance_id"`
	TargetUID        string    `json:"target_uid"`
	TargetAliyunID   string    `json:"target_aliyun_id,omitempty"`
	Status           int       `json:"status"`
	Created          time.Time `json:"created"`
	FinishesAt       time.Time `json:"finishes_at"`
	External         bool      `json:"external"`
	Deleted          bool      `json:"deleted"`
	// Kind is KindProduct or KindDevice.
	Kind string `json:"kind"`
	// Devices is the number of devices of a device job; Strategy and
	// TargetInstanceIDs are its distribution policy and every target
	// instance (TargetInstanceID is the first).
	Devices           int      `json:"devices,omitempty"`
	Strategy          int      `json:"strategy,omitempty"`
	TargetInstanceIDs []string `json:"target_instance_ids,omitempty"`
}

// job is the stored state; its Status is computed from the clock.
type job struct {
	id               string
	uid              string
	productKey       string
	sourceInstanceID string
	targetInstanceID string
	targetUID        string
	targetAliyunID   string
	created          time.Time
	duration         time.Duration
	fails            bool
	external         bool
	deleted          bool
	// device jobs only (see devices.go)
	device *deviceJob
}

// status is 0 for the first 20% of the job's duration, then 1, then 2 (or 3
// for a failing job) once the duration has passed.
func (j *job) status(now time.Time) int {
	elapsed := now.Sub(j.created)
	switch {
	case elapsed < j.duration/5:
		return StatusInitializing
	case elapsed < j.duration:
		return StatusRunning
	case j.fails:
		return StatusInterrupted
	default:
		return StatusCompleted
	}
}

func (j *job) snapshot(now time.Time) Job {
	s := Job{
		JobID:            j.id,
		UID:              j.uid,
		ProductKey:       j.productKey,
		SourceInstanceID: j.sourceInstanceID,
		TargetInstanceID: j.targetInstanceID,
		TargetUID:        j.targetUID,
		TargetAliyunID:   j.targetAliyunID,
		Status:           j.status(now),
		Created:          j.created,
		FinishesAt:       j.created.Add(j.duration),
		External:         j.external,
		Deleted:          j.deleted,
		Kind:             KindProduct,
	}
	if d := j.device; d != nil {
		s.Kind = KindDevice
		s.Devices = len(d.results)
		s.Strategy = d.strategy
		s.TargetInstanceIDs = slices.Clone(d.targets)
	}
	return s
}

// jobStore holds every job ever created. Not safe for concurrent use: the
// Server guards it.
type jobStore struct {
	byID  map[string]*job
	order []*job // creation order
}

func (s *jobStore) add(j *job) {
	if s.byID == nil {
		s.byID = map[string]*job{}
	}
	s.byID[j.id] = j
	s.order = append(s.order, j)
}

// get returns the live job id of account uid.
func (s *jobStore) get(uid, id string) (*job, bool) {
	j, ok := s.byID[id]
	if !ok || j.deleted || j.uid != uid {
		return nil, false
	}
	return j, true
}

// inQuota counts the jobs of uid that hold one of its slots.
func (s *jobStore) inQuota(uid, mode string, now time.Time) int {
	n := 0
	for _, j := range s.order {
		if j.uid != uid || j.deleted {
			continue
		}
		if mode == QuotaUndeleted || j.status(now) <= StatusRunning {
			n++
		}
	}
	return n
}

// jobFilter selects jobs for ListDeviceDistributeJob.
type jobFilter struct {
	productKey, targetUID, jobID string
	status                       *int
	// visibleBefore hides jobs created at or after it (the List lag); zero
	// hides none.
	visibleBefore time.Time
}

// list returns the live jobs of uid matching f, newest first.
func (s *jobStore) list(uid string, f jobFilter, now time.Time) []*job {
	var out []*job
	for _, j := range slices.Backward(s.order) {
		if j.uid != uid || j.deleted ||
			(f.productKey != "" && j.productKey != f.productKey) ||
			(f.targetUID != "" && j.targetUID != f.targetUID) ||
			(f.jobID != "" && j.id != f.jobID) ||
			(f.status != nil && j.status(now) != *f.status) ||
			(!f.visibleBefore.IsZero() && !j.created.Before(f.visibleBefore)) {
			continue
		}
		out = append(out, j)
	}
	return out
}

// distributed returns the completed jobs of uid, deleted or not: a product
// stays distributed when its job is deleted.
func (s *jobStore) distributed(uid string, now time.Time) []*job {
	var out []*job
	for _, j := range slices.Backward(s.order) {
		if j.uid == uid && j.status(now) == StatusCompleted {
			out = append(out, j)
		}
	}
	return out
}

// snapshots returns every job, oldest first.
func (s *jobStore) snapshots(now time.Time) []Job {
	out := make([]Job, 0, len(s.order))
	for _, j := range s.order {
		out = append(out, j.snapshot(now))
	}
	return out
}

// regionOf maps the public instance IDs to their regions; other instances
// are taken to be in cn-shanghai, the only endpoint of these APIs.
func regionOf(instanceID string) string {
	if rest, ok := strings.CutPrefix(instanceID, "iotx-oxssharez"); ok {
		switch rest {
		case "300":
			return "ap-northeast-1"
		case "400":
			return "ap-southeast-1"
		case "500":
			return "us-west-1"
		case "600":
			return "us-east-1"
		case "700":
			return "eu-central-1"
		}
	}
	return "cn-shanghai"
}

// instanceName is the console name of an instance.
func instanceName(instanceID string) string {
	if strings.HasPrefix(instanceID, "iotx-oxssharez") {
		return "Public Instance"
	}
	return instanceID
}
