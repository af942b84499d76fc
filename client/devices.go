package client

import (
	"context"
	"io"
	"iter"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// Device distributions (CreateDeviceDistributeJob): up to 100,000 devices of
// one product, split by distq into remote jobs of at most 10,000, each job
// one of the account's job slots (the same counter as product
// distributions). The remote distributes the devices' product along with
// them: a device distribution is also a product distribution, with its
// one-way door (the product's TSL model and scripts can no longer change).

// DeviceDistributionRequest is what SubmitDevices sends: target_instance_id
// (strategy "single", the default) or target_instance_ids with strategy
// "nearest".
type DeviceDistributionRequest struct {
	Account           string   `json:"account,omitempty"`
	ProductKey        string   `json:"product_key"`
	SourceInstanceID  string   `json:"source_instance_id"`
	TargetInstanceID  string   `json:"target_instance_id,omitempty"`
	TargetInstanceIDs []string `json:"target_instance_ids,omitempty"`
	Strategy          string   `json:"strategy,omitempty"`
	TargetUID         string   `json:"target_uid,omitempty"`
	TargetAliyunID    string   `json:"target_aliyun_id,omitempty"`
	DeviceNames       []string `json:"device_names"`
	// NotifyURL is where distq sends the device_distribution.finished
	// event (docs/WEBHOOKS.md).
	NotifyURL string `json:"notify_url,omitempty"`
}

// The states of a device distribution (DeviceDistribution.State):
// queued → running → succeeded | failed | canceled, computed from its jobs.
// succeeded means every job ended (remote Status 2): devices may still
// have failed one by one (Counts.Failed).
const (
	DevicesQueued    = "queued"
	DevicesRunning   = "running"
	DevicesSucceeded = "succeeded"
	DevicesFailed    = "failed"
	DevicesCanceled  = "canceled"
)

// DeviceTerminal reports whether a device distribution in state is over.
func DeviceTerminal(state string) bool {
	return state == DevicesSucceeded || state == DevicesFailed || state == DevicesCanceled
}

// DeviceCounts are a device distribution's devices by outcome; each device
// is in exactly one.
type DeviceCounts struct {
	Distributed int `json:"distributed"`
	Failed      int `json:"failed"`
	Pending     int `json:"pending"`
	Canceled    int `json:"canceled"`
	// Unknown: in finished jobs whose result file could not be read.
	Unknown int `json:"unknown"`
}

// DeviceJob is one remote job of a device distribution. State is pending,
// submitting, running, succeeded, failed or canceled.
type DeviceJob struct {
	Index        int                `json:"index"`
	Devices      int                `json:"devices"`
	State        string             `json:"state"`
	WaitReason   string             `json:"wait_reason,omitempty"`
	JobID        string             `json:"job_id,omitempty"`
	RemoteStatus *int               `json:"remote_status,omitempty"`
	Attempts     int                `json:"attempts"`
	RetryOf      []int              `json:"retry_of,omitempty"`
	Retried      bool               `json:"retried,omitempty"`
	Distributed  int                `json:"distributed"`
	Failed       int                `json:"failed"`
	Details      string             `json:"details,omitempty"`
	Error        *DistributionError `json:"error,omitempty"`
	SubmittedAt  *time.Time         `json:"submitted_at,omitempty"`
	FinishedAt   *time.Time         `json:"finished_at,omitempty"`
}

// DeviceDistribution is a device distribution as the API shows it.
// Details is "complete" once every finished job's results were read,
// "unavailable" when some could not be (the distribution does not fail
// for it: those devices count as Unknown).
type DeviceDistribution struct {
	ID                 string       `json:"id"`
	Account            string       `json:"account"`
	ProductKey         string       `json:"product_key"`
	SourceInstanceID   string       `json:"source_instance_id"`
	TargetInstanceIDs  []string     `json:"target_instance_ids"`
	Strategy           string       `json:"strategy"`
	TargetUID          string       `json:"target_uid,omitempty"`
	TargetAliyunID     string       `json:"target_aliyun_id,omitempty"`
	DistributesProduct bool         `json:"distributes_product"`
	Devices            int          `json:"devices"`
	State              string       `json:"state"`
	Counts             DeviceCounts `json:"counts"`
	Details            string       `json:"details,omitempty"`
	Jobs               []DeviceJob  `json:"jobs"`
	CreatedAt          time.Time    `json:"created_at"`
	UpdatedAt          time.Time    `json:"updated_at"`
	FinishedAt         *time.Time   `json:"finished_at,omitempty"`
	NotifyURL          string       `json:"notify_url,omitempty"`
	// Notification is the latest device_distribution.finished event and
	// its delivery state (GetDevices only).
	Notification *Notification `json:"notification,omitempty"`
}

// DevicePage is one page of ListDevices.
type DevicePage struct {
	Items      []DeviceDistribution `json:"items"`
	NextCursor string               `json:"next_cursor,omitempty"`
}

// DeviceResult is one device's outcome: Code "200" when it was
// distributed, else the remote's code (or NoResult, JobInterrupted).
type DeviceResult struct {
	DeviceName       string `json:"device_name"`
	Job              int    `json:"job"`
	Code             string `json:"code"`
	Message          string `json:"message,omitempty"`
	TargetInstanceID string `json:"target_instance_id,omitempty"`
}

// DeviceResultPage is one page of DeviceResults.
type DeviceResultPage struct {
	Items      []DeviceResult `json:"items"`
	NextCursor string         `json:"next_cursor,omitempty"`
}

// SubmitDevices queues a device distribution (202). idempotencyKey works
// as for Submit. An invalid request is an *Error with code
// validation_failed whose details name each bad field and device name
// (device_names[i]); more than 100,000 names is too_many_items.
func (c *Client) SubmitDevices(ctx context.Context, req DeviceDistributionRequest, idempotencyKey string) (d *DeviceDistribution, replayed bool, err error) {
	d = new(DeviceDistribution)
	resp, err := c.do(ctx, http.MethodPost, "/v1/device-distributions", req, idemHeader(idempotencyKey), idempotencyKey != "", d)
	if err != nil {
		return nil, false, err
	}
	return d, isReplay(resp), nil
}

// GetDevices returns a device distribution.
func (c *Client) GetDevices(ctx context.Context, id string) (*DeviceDistribution, error) {
	var d DeviceDistribution
	_, err := c.do(ctx, http.MethodGet, "/v1/device-distributions/"+url.PathEscape(id), nil, nil, true, &d)
	return ptr(&d, err)
}

// ListDevices returns one page of the team's device distributions in
// creation order, from cursor ("" for the first); limit 0 takes the
// server's default (100).
func (c *Client) ListDevices(ctx context.Context, cursor string, limit int) (*DevicePage, error) {
	q := url.Values{}
	if cursor != "" {
		q.Set("cursor", cursor)
	}
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	path := "/v1/device-distributions"
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	var p DevicePage
	_, err := c.do(ctx, http.MethodGet, path, nil, nil, true, &p)
	return ptr(&p, err)
}

// DeviceResults returns one page of a device distribution's per-device
// results: outcome "failed" (the default) or "all", from cursor; limit 0
// takes the server's default (1,000).
func (c *Client) DeviceResults(ctx context.Context, id, outcome, cursor string, limit int) (*DeviceResultPage, error) {
	q := url.Values{}
	if outcome != "" {
		q.Set("outcome", outcome)
	}
	if cursor != "" {
		q.Set("cursor", cursor)
	}
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	path := "/v1/device-distributions/" + url.PathEscape(id) + "/results"
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	var p DeviceResultPage
	_, err := c.do(ctx, http.MethodGet, path, nil, nil, true, &p)
	return ptr(&p, err)
}

// AllDeviceResults iterates over every result DeviceResults finds, page by
// page. An error ends the iteration: it is yielded once, with a zero
// DeviceResult.
func (c *Client) AllDeviceResults(ctx context.Context, id, outcome string) iter.Seq2[DeviceResult, error] {
	return func(yield func(DeviceResult, error) bool) {
		cursor := ""
		for {
			p, err := c.DeviceResults(ctx, id, outcome, cursor, 0)
			if err != nil {
				yield(DeviceResult{}, err)
				return
			}
			for _, r := range p.Items {
				if !yield(r, nil) {
					return
				}
			}
			if p.NextCursor == "" {
				return
			}
			cursor = p.NextCursor
		}
	}
}

// DeviceResultsCSV writes every result of outcome ("failed" or "all") as
// the API's CSV (device_name, job, code, message, target_instance_id) to w.
func (c *Client) DeviceResultsCSV(ctx context.Context, id, outcome string, w io.Writer) error {
	q := url.Values{"format": {"csv"}}
	if outcome != "" {
		q.Set("outcome", outcome)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+"/v1/device-distributions/"+url.PathEscape(id)+"/results?"+q.Encode(), nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("Accept", "text/csv")
	req.Header.Set("User-Agent", c.userAgent)
	resp, err := c.http.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return &TransportError{URL: c.base, Err: err}
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 400 {
		body, _ := io.ReadAll(resp.Body)
		return errorOf(resp, body)
	}
	if _, err := io.Copy(w, resp.Body); err != nil {
		return &TransportError{URL: c.base, Err: err}
	}
	return nil
}

// CancelDevices cancels the jobs of a device distribution not yet created
// (none will be); created jobs run to their end. With none left to cancel
// it is an *Error with code invalid_state.
func (c *Client) CancelDevices(ctx context.Context, id string) (*DeviceDistribution, error) {
	return c.deviceAction(ctx, id, "cancel")
}

// RetryDevices sends a finished device distribution's failed devices
// again, as new jobs; without failed devices it is an *Error with code
// invalid_state.
func (c *Client) RetryDevices(ctx context.Context, id string) (*DeviceDistribution, error) {
	return c.deviceAction(ctx, id, "retry")
}

func (c *Client) deviceAction(ctx context.Context, id, action string) (*DeviceDistribution, error) {
	var d DeviceDistribution
	_, err := c.do(ctx, http.MethodPost, "/v1/device-distributions/"+url.PathEscape(id)+"/"+action, nil, nil, true, &d)
	return ptr(&d, err)
}
