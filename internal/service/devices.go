package service

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/distq/distq/internal/devices"
	"github.com/distq/distq/internal/distribution"
	"github.com/distq/distq/internal/webhook"
)

// The use cases of device distributions (internal/devices): submit one,
// read and list them, page through their per-device results, cancel the
// jobs not yet created, retry the failed devices as new jobs.

// DeviceStore keeps device distributions (internal/store's *Redis
// satisfies it).
type DeviceStore interface {
	InsertDevices(ctx context.Context, r *devices.Record, names [][]string) error
	GetDevices(ctx context.Context, id string) (*devices.Record, error)
	// UpdateDevices runs fn, a transition, on the record of id under
	// compare-and-set.
	UpdateDevices(ctx context.Context, id string, fn func(r *devices.Record) error) (*devices.Record, error)
	ListDevices(ctx context.Context, team, after string, limit int) ([]*devices.Record, string, error)
	// DeviceResults returns up to count outcomes of job n from offset (the
	// failed ones only when failedOnly) and how many there are.
	DeviceResults(ctx context.Context, id string, n int, failedOnly bool, offset, count int) ([]devices.Result, int, error)
	// PutDeviceNames writes the names of new jobs first, first+1, ….
	PutDeviceNames(ctx context.Context, id string, first int, names [][]string) error
}

// DeviceEnqueuer puts the submit tasks of device jobs on the queue.
type DeviceEnqueuer interface {
	SubmitDeviceJobs(ctx context.Context, id string, jobs []int) error
}

// DeviceDeps is what the device use cases need beyond Deps' accounts,
// logger and clock. Without them every device use case answers
// CodeUnavailable.
type DeviceDeps struct {
	Store    DeviceStore
	Enqueuer DeviceEnqueuer
}

// DeviceView is a device distribution as a front door shows it.
type DeviceView struct {
	ID                string           `json:"id"`
	Account           string           `json:"account"`
	ProductKey        string           `json:"product_key"`
	SourceInstanceID  string           `json:"source_instance_id"`
	TargetInstanceIDs []string         `json:"target_instance_ids"`
	Strategy          devices.Strategy `json:"strategy"`
	TargetUID         string           `json:"target_uid,omitempty"`
	TargetAliyunID    string           `json:"target_aliyun_id,omitempty"`
	// DistributesProduct is always true: CreateDeviceDistributeJob
	// distributes the devices' product along with them, with the one-way
	// door of a product distribution (its TSL model and scripts frozen).
	DistributesProduct bool            `json:"distributes_product"`
	Devices            int             `json:"devices"`
	State              devices.State   `json:"state"`
	Counts             devices.Counts  `json:"counts"`
	Details            devices.Details `json:"details,omitempty"`
	Jobs               []DeviceJobView `json:"jobs"`
	CreatedAt          time.Time       `json:"created_at"`
	UpdatedAt          time.Time       `json:"updated_at"`
	FinishedAt         *time.Time      `json:"finished_at,omitempty"`
	NotifyURL          string          `json:"notify_url,omitempty"`
	// Notification is the latest device_distribution.finished event and
	// its delivery state: only on GetDevices, nil without a notify_url or
	// before the distribution first finished.
	Notification *NotificationView `json:"notification,omitempty"`
}

// NotificationView is a completion event's delivery state as a front door
// shows it (the wire form of client.Notification).
type NotificationView struct {
	EventID       string     `json:"event_id"`
	Type          string     `json:"type"`
	State         string     `json:"state"`
	Attempts      int        `json:"attempts"`
	CreatedAt     time.Time  `json:"created_at"`
	LastAttemptAt *time.Time `json:"last_attempt_at,omitempty"`
	LastStatus    int        `json:"last_status,omitempty"`
	LastError     string     `json:"last_error,omitempty"`
	NextRetryAt   *time.Time `json:"next_retry_at,omitempty"`
	DeliveredAt   *time.Time `json:"delivered_at,omitempty"`
}

func notificationView(ev *webhook.Event) *NotificationView {
	if ev == nil {
		return nil
	}
	return &NotificationView{EventID: ev.ID, Type: ev.Type, State: ev.State, Attempts: ev.Attempts,
		CreatedAt: ev.CreatedAt, LastAttemptAt: ev.LastAttemptAt, LastStatus: ev.LastStatus, LastError: ev.LastError,
		NextRetryAt: ev.NextRetryAt, DeliveredAt: ev.DeliveredAt}
}

// DeviceJobView is one remote job of a device distribution.
type DeviceJobView struct {
	Index        int                     `json:"index"`
	Devices      int                     `json:"devices"`
	State        devices.JobState        `json:"state"`
	WaitReason   distribution.WaitReason `json:"wait_reason,omitempty"`
	JobID        string                  `json:"job_id,omitempty"`
	RemoteStatus *int                    `json:"remote_status,omitempty"`
	Attempts     int                     `json:"attempts"`
	RetryOf      []int                   `json:"retry_of,omitempty"`
	Retried      bool                    `json:"retried,omitempty"`
	Distributed  int                     `json:"distributed"`
	Failed       int                     `json:"failed"`
	Details      devices.Details         `json:"details,omitempty"`
	Error        *devices.Error          `json:"error,omitempty"`
	SubmittedAt  *time.Time              `json:"submitted_at,omitempty"`
	FinishedAt   *time.Time              `json:"finished_at,omitempty"`
}

func deviceView(r *devices.Record) *DeviceView {
	v := &DeviceView{ID: r.ID, Account: r.Account, ProductKey: r.ProductKey, SourceInstanceID: r.SourceInstanceID,
		TargetInstanceIDs: r.TargetInstanceIDs, Strategy: r.Strategy, TargetUID: r.TargetUID, TargetAliyunID: r.TargetAliyunID,
		DistributesProduct: true, Devices: r.Devices, State: r.State, Counts: r.Counts(), Details: r.DetailsState(),
		CreatedAt: r.CreatedAt, UpdatedAt: r.UpdatedAt, FinishedAt: r.FinishedAt, NotifyURL: r.NotifyURL,
		Jobs: make([]DeviceJobView, len(r.Jobs))}
	for i, j := range r.Jobs {
		v.Jobs[i] = DeviceJobView{Index: j.Index, Devices: j.Devices, State: j.State, WaitReason: j.WaitReason, JobID: j.JobID,
			RemoteStatus: j.RemoteStatus, Attempts: j.Attempts, RetryOf: j.RetryOf, Retried: j.Retried,
			Distributed: j.Distributed, Failed: j.Failed, Details: j.Details, Error: j.Error,
			SubmittedAt: j.SubmittedAt, FinishedAt: j.FinishedAt}
	}
	return v
}

func (s *Service) deviceStore() (DeviceStore, error) {
	if s.d.Devices.Store == nil || s.d.Devices.Enqueuer == nil {
		return nil, &Error{Code: CodeUnavailable, Message: "device distributions are not configured on this server"}
	}
	return s.d.Devices.Store, nil
}

// SubmitDevices accepts a device distribution for team: validated, split
// into jobs of at most devices.MaxDevicesPerJob names, written and
// enqueued. It refuses with CodeTooManyItems (more than devices.MaxDevices
// names) or CodeInvalid.
func (s *Service) SubmitDevices(ctx context.Context, team string, req devices.Request) (*DeviceView, error) {
	st, err := s.deviceStore()
	if err != nil {
		return nil, err
	}
	if len(req.DeviceNames) > devices.MaxDevices {
		return nil, errorf(CodeTooManyItems, "%d device names; one device distribution takes at most %d", len(req.DeviceNames), devices.MaxDevices)
	}
	acct, ok := s.account(req.Account)
	if !ok {
		return nil, domainError(&distribution.ValidationError{Fields: []distribution.FieldError{{Field: "account", Message: "unknown account " + strconv.Quote(req.Account)}}})
	}
	if err := req.Validate(acct.UID); err != nil {
		return nil, domainError(err)
	}
	if err := s.checkNotify(team, req.NotifyURL); err != nil {
		return nil, err
	}
	if req.TargetAliyunID != "" && req.TargetAliyunID != acct.AliyunID {
		msg := "must be the logon name of account " + strconv.Quote(acct.Name) + " (cross-account distribution is not allowed); use target_uid"
		if acct.AliyunID == "" {
			msg = "is not accepted: account " + strconv.Quote(acct.Name) + " has no logon name configured (aliyun_id); use target_uid"
		}
		return nil, domainError(&distribution.ValidationError{Fields: []distribution.FieldError{{Field: "target_aliyun_id", Message: msg}}})
	}
	now := s.d.Now()
	parts := devices.Split(req.DeviceNames)
	r := &devices.Record{ID: devices.NewID(now), Team: team, Account: acct.Name, UID: acct.UID,
		ProductKey: req.ProductKey, SourceInstanceID: req.SourceInstanceID, TargetInstanceIDs: req.TargetInstanceIDs,
		Strategy: req.Strategy, TargetUID: req.TargetUID, TargetAliyunID: req.TargetAliyunID, NotifyURL: req.NotifyURL,
		Devices: len(req.DeviceNames), CreatedAt: now, UpdatedAt: now}
	jobs := make([]int, len(parts))
	for i, p := range parts {
		r.Jobs = append(r.Jobs, devices.Job{Devices: len(p)})
		jobs[i] = i
	}
	r.Accepted(now)
	if err := st.InsertDevices(ctx, r, parts); err != nil {
		return nil, err
	}
	if err := s.d.Devices.Enqueuer.SubmitDeviceJobs(ctx, r.ID, jobs); err != nil {
		// The record is written: the reconciler enqueues the missing tasks
		// of an open distribution (after its orphan age). Undoing it here
		// could race a worker that already runs a job whose task did go in.
		s.d.Log.Warn("enqueue device jobs; the reconciler enqueues them later", "device_distribution_id", r.ID, "err", err)
	}
	s.d.Log.Info("device distribution accepted", "device_distribution_id", r.ID, "team", team, "account", acct.Name,
		"devices", r.Devices, "jobs", len(r.Jobs))
	return deviceView(r), nil
}

// loadDevices returns team's device distribution id; another team's is not
// found.
func (s *Service) loadDevices(ctx context.Context, team, id string) (*devices.Record, error) {
	st, err := s.deviceStore()
	if err != nil {
		return nil, err
	}
	if !devices.ValidID(id) {
		return nil, notFound("device distribution", id)
	}
	r, err := st.GetDevices(ctx, id)
	if errors.Is(err, distribution.ErrNotFound) || err == nil && r.Team != team {
		return nil, notFound("device distribution", id)
	}
	return r, err
}

// GetDevices returns team's device distribution id with its latest
// event's delivery state, or CodeNotFound.
func (s *Service) GetDevices(ctx context.Context, team, id string) (*DeviceView, error) {
	r, err := s.loadDevices(ctx, team, id)
	if err != nil {
		return nil, err
	}
	v := deviceView(r)
	if r.NotifyURL != "" && s.d.Webhooks.Events != nil {
		ev, err := s.d.Webhooks.Events.DeviceEvent(ctx, r.ID)
		if err != nil {
			return nil, err
		}
		v.Notification = notificationView(ev)
	}
	return v, nil
}

// ListDevices returns one page of team's device distributions in creation
// order, and the cursor of the next ("" at the end). A cursor this listing
// did not give is refused with CodeBadCursor.
func (s *Service) ListDevices(ctx context.Context, team, cursor string, limit int) ([]DeviceView, string, error) {
	st, err := s.deviceStore()
	if err != nil {
		return nil, "", err
	}
	after, err := decodeDeviceCursor(team, "list", cursor)
	if err != nil {
		return nil, "", err
	}
	if after != "" && !devices.ValidID(after) {
		return nil, "", badDeviceCursor(cursor)
	}
	recs, next, err := st.ListDevices(ctx, team, after, limit)
	if err != nil {
		return nil, "", err
	}
	out := make([]DeviceView, len(recs))
	for i, r := range recs {
		out[i] = *deviceView(r)
	}
	return out, encodeDeviceCursor(team, "list", next), nil
}

// Outcome selects per-device results.
type Outcome string

// The outcomes a results listing selects.
const (
	// OutcomeFailed: the devices that failed, in their latest job (a device
	// retried counts in the retry's job only).
	OutcomeFailed Outcome = "failed"
	// OutcomeAll: every per-device result of every job, a retried device
	// once per job that carried it.
	OutcomeAll Outcome = "all"
)

// DeviceResults returns one page (up to limit) of the per-device results
// of team's device distribution id, in job order and, within a job, in the
// order of its names; and the cursor of the next page ("" at the end).
// Jobs not finished, or whose result file could not be read, list none.
func (s *Service) DeviceResults(ctx context.Context, team, id string, outcome Outcome, cursor string, limit int) ([]devices.Result, string, error) {
	r, err := s.loadDevices(ctx, team, id)
	if err != nil {
		return nil, "", err
	}
	if limit <= 0 {
		limit = 100
	}
	scope := "results\x00" + id + "\x00" + string(outcome)
	pos, err := decodeDeviceCursor(team, scope, cursor)
	if err != nil {
		return nil, "", err
	}
	job, offset := 0, 0
	if pos != "" {
		a, b, ok := strings.Cut(pos, ":")
		if job, err = strconv.Atoi(a); ok && err == nil {
			offset, err = strconv.Atoi(b)
		}
		if !ok || err != nil || job < 0 || offset < 0 {
			return nil, "", badDeviceCursor(cursor)
		}
	}
	var out []devices.Result
	for ; job < len(r.Jobs); job, offset = job+1, 0 {
		j := r.Jobs[job]
		failedOnly := outcome != OutcomeAll
		if j.Details != devices.DetailsComplete || failedOnly && (j.Retried || j.Failed == 0) {
			continue
		}
		page, total, err := s.d.Devices.Store.DeviceResults(ctx, id, job, failedOnly, offset, limit-len(out))
		if err != nil {
			return nil, "", err
		}
		out = append(out, page...)
		if len(out) == limit {
			next := offset + len(page)
			if next >= total {
				job, next = job+1, 0
			}
			if !s.moreResults(r, job, next, failedOnly) {
				return out, "", nil
			}
			return out, encodeDeviceCursor(team, scope, fmt.Sprintf("%d:%d", job, next)), nil
		}
	}
	return out, "", nil
}

// moreResults reports whether a results listing from (job, offset) can
// list anything: a job left with results, judged from the record.
func (s *Service) moreResults(r *devices.Record, job, offset int, failedOnly bool) bool {
	for ; job < len(r.Jobs); job, offset = job+1, 0 {
		j := r.Jobs[job]
		if j.Details != devices.DetailsComplete || failedOnly && (j.Retried || j.Failed == 0) {
			continue
		}
		n := j.Devices
		if failedOnly {
			n = j.Failed
		}
		if offset < n {
			return true
		}
	}
	return false
}

// CancelDevices cancels the jobs of team's device distribution id whose
// Create has not been sent (none will be); jobs already created run to
// their end. It refuses with CodeNotFound, or CodeInvalidState when no job
// is left to cancel.
func (s *Service) CancelDevices(ctx context.Context, team, id string) (*DeviceView, error) {
	if _, err := s.loadDevices(ctx, team, id); err != nil {
		return nil, err
	}
	now := s.d.Now()
	r, err := s.d.Devices.Store.UpdateDevices(ctx, id, func(r *devices.Record) error {
		_, err := r.Cancel(now)
		return err
	})
	if err != nil {
		return nil, s.updateDevicesError(err, id)
	}
	return deviceView(r), nil
}

func (s *Service) updateDevicesError(err error, id string) error {
	if errors.Is(err, distribution.ErrNotFound) {
		return notFound("device distribution", id)
	}
	return domainError(err)
}

// RetryDevices sends the failed devices of team's finished device
// distribution id again, as new jobs (at most devices.MaxDevicesPerJob
// names each) of the same distribution. It refuses with CodeNotFound, or
// CodeInvalidState when the distribution is not finished or no device
// failed (devices whose outcome is unknown are not retried).
func (s *Service) RetryDevices(ctx context.Context, team, id string) (*DeviceView, error) {
	r, err := s.loadDevices(ctx, team, id)
	if err != nil {
		return nil, err
	}
	from := r.Retryable()
	if !r.State.Terminal() || len(from) == 0 {
		// The transition says why.
		_, err := r.Retry(s.d.Now(), from, []int{0})
		return nil, domainError(err)
	}
	var names []string
	for _, n := range from {
		res, _, err := s.d.Devices.Store.DeviceResults(ctx, id, n, true, 0, r.Jobs[n].Failed)
		if err != nil {
			return nil, err
		}
		for _, x := range res {
			names = append(names, x.DeviceName)
		}
	}
	parts := devices.Split(names)
	first := len(r.Jobs)
	if err := s.d.Devices.Store.PutDeviceNames(ctx, id, first, parts); err != nil {
		return nil, err
	}
	sizes := make([]int, len(parts))
	for i, p := range parts {
		sizes[i] = len(p)
	}
	now := s.d.Now()
	var added []int
	r, err = s.d.Devices.Store.UpdateDevices(ctx, id, func(r *devices.Record) error {
		if len(r.Jobs) != first {
			// Retried meanwhile: the names written are not this record's.
			return &distribution.TransitionError{ID: id, Op: "retried", From: distribution.State(r.State), Allowed: "a device distribution not retried meanwhile"}
		}
		var err error
		added, err = r.Retry(now, from, sizes)
		return err
	})
	if err != nil {
		return nil, s.updateDevicesError(err, id)
	}
	if err := s.d.Devices.Enqueuer.SubmitDeviceJobs(ctx, id, added); err != nil {
		s.d.Log.Warn("enqueue device jobs; the reconciler enqueues them later", "device_distribution_id", id, "err", err)
	}
	return deviceView(r), nil
}

// Device cursors are opaque like the distributions' (cursor.go): a
// position and a check over it, the team and the listing.
const deviceCursorVersion = "v1"

func deviceCursorCheck(team, scope, pos string) string {
	h := sha256.Sum256([]byte(strings.Join([]string{"distq-device-cursor", deviceCursorVersion, team, scope, pos}, "\x00")))
	return hex.EncodeToString(h[:12])
}

func encodeDeviceCursor(team, scope, pos string) string {
	if pos == "" {
		return ""
	}
	return base64.RawURLEncoding.EncodeToString([]byte(deviceCursorVersion + "." + pos + "." + deviceCursorCheck(team, scope, pos)))
}

func badDeviceCursor(cursor string) *Error {
	if len(cursor) > 200 {
		return errorf(CodeBadCursor, "cursor is not one this API returned for this listing")
	}
	return errorf(CodeBadCursor, "cursor %q is not one this API returned for this listing", cursor)
}

func decodeDeviceCursor(team, scope, cursor string) (string, error) {
	if cursor == "" {
		return "", nil
	}
	raw, err := base64.RawURLEncoding.DecodeString(cursor)
	if err != nil || len(cursor) > 200 {
		return "", badDeviceCursor(cursor)
	}
	parts := strings.Split(string(raw), ".")
	if len(parts) != 3 || parts[0] != deviceCursorVersion || parts[2] != deviceCursorCheck(team, scope, parts[1]) {
		return "", badDeviceCursor(cursor)
	}
	return parts[1], nil
}
