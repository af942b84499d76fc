// Package alibaba is distq's client of the Alibaba Cloud IoT Platform's
// distribution APIs, built on the official SDK
// (github.com/alibabacloud-go/iot-20180120/v6). It exists to turn every
// answer of the endpoint — gateway errors, business errors hidden in HTTP 200
// bodies, timeouts — into one classified *APIError, so that callers decide
// retry, wait or give up without reading error strings.
package alibaba

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	openapi "github.com/alibabacloud-go/darabonba-openapi/v2/client"
	iot "github.com/alibabacloud-go/iot-20180120/v6/client"
	util "github.com/alibabacloud-go/tea-utils/v2/service"
	"github.com/alibabacloud-go/tea/tea"
	credential "github.com/aliyun/credentials-go/credentials"
)

// The actions distq calls.
const (
	ActionCreate = "CreateProductDistributeJob"
	ActionQuery  = "QueryDeviceDistributeJob"
	ActionList   = "ListDeviceDistributeJob"
	ActionDelete = "DeleteDeviceDistributeJob"
)

// Actions lists the actions distq calls, for metrics and limits.
var Actions = []string{ActionCreate, ActionQuery, ActionList, ActionDelete}

// DefaultEndpoint is the only host that serves the distribution APIs.
const DefaultEndpoint = "https://iot.cn-shanghai.aliyuncs.com"

// Config configures a Client.
type Config struct {
	// Endpoint is a URL: https://iot.cn-shanghai.aliyuncs.com, or a simulator
	// such as http://127.0.0.1:8081.
	Endpoint string
	// AccessKeyID and AccessKeySecret are static credentials.
	AccessKeyID, AccessKeySecret string
	// Credential, such as the SDK's default chain (STS, RAM role, ...) that
	// the caller builds once, overrides both when set. NewClient refuses a
	// Config with neither.
	Credential credential.Credential
	// Timeout bounds one call, connect and read (default 10s).
	Timeout time.Duration
	// SignatureV1 selects HMAC-SHA1 signing instead of ACS3-HMAC-SHA256.
	SignatureV1 bool
	// Codes names the undocumented business codes (default DefaultCodes).
	Codes *Codes
}

// Client calls the distribution APIs of one account. It is safe for
// concurrent use: the SDK's client is not (it keeps per-call state in its
// fields, and by default shares one HTTP client per host across the process
// without locking its reads), so each call takes an SDK client of its own
// from a pool, and every SDK client sends through one *http.Client of ours.
type Client struct {
	pool    sync.Pool // of *pooled
	codes   Codes
	runtime *util.RuntimeOptions
	// http is the HTTP client of every call, and of result-file downloads.
	http *http.Client
}

// pooled is one SDK client with the HTTP doer only it uses, so the doer
// can carry the context of the one call the SDK client is making.
type pooled struct {
	sdk  *iot.Client
	doer *httpDoer
}

// httpDoer is the HTTP client the SDK sends through. The SDK's API takes no
// context; ctx, set for the duration of one call, is attached to its request
// so a canceled task (a lost asynq lease, a shutdown) abandons the call.
type httpDoer struct {
	c       *http.Client
	ctx     context.Context
	notSent bool // the send check refused the request: it never left
}

func (h *httpDoer) Call(req *http.Request, _ *http.Transport) (*http.Response, error) {
	if h.ctx != nil {
		if check, ok := h.ctx.Value(sendCheckKey{}).(func() error); ok {
			if err := check(); err != nil {
				h.notSent = true
				return nil, err
			}
		}
		req = req.WithContext(h.ctx)
	}
	return h.c.Do(req)
}

type sendCheckKey struct{}

// WithSendCheck returns a context whose calls run check right before the
// HTTP request is written (after the SDK built and signed it). When check
// fails, nothing is sent, and the call returns an *APIError of Class
// Transient and Code CodeNotSent: the last moment to give up a stale rate
// grant.
func WithSendCheck(ctx context.Context, check func() error) context.Context {
	return context.WithValue(ctx, sendCheckKey{}, check)
}

// CodeNotSent is the Code of a call that a send check (WithSendCheck) held back.
const CodeNotSent = "NotSent"

// notSentError is the error of a call held back by its send check.
func notSentError(action string, p *pooled, err error) *APIError {
	if !p.doer.notSent {
		return nil
	}
	return &APIError{Action: action, Code: CodeNotSent, Message: fmt.Sprint(err), Class: Transient, err: err}
}

// sdk takes an SDK client from the pool for one call under ctx.
func (c *Client) sdk(ctx context.Context) *pooled {
	p := c.pool.Get().(*pooled)
	p.doer.ctx = ctx
	return p
}

func (c *Client) put(p *pooled) {
	p.doer.ctx, p.doer.notSent = nil, false
	c.pool.Put(p)
}

// ValidateEndpoint checks an endpoint URL: http or https, a host, and no real
// Alibaba host other than the one that serves the distribution APIs.
func ValidateEndpoint(endpoint string) (*url.URL, error) {
	u, err := url.Parse(endpoint)
	if err != nil {
		return nil, fmt.Errorf("endpoint %q: %w", endpoint, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
		return nil, fmt.Errorf("endpoint %q: want http(s)://host[:port]", endpoint)
	}
	if u.Path != "" && u.Path != "/" || u.RawQuery != "" {
		return nil, fmt.Errorf("endpoint %q: want no path or query", endpoint)
	}
	host := strings.ToLower(u.Hostname())
	if (strings.HasSuffix(host, ".aliyuncs.com") || strings.HasSuffix(host, ".aliyun.com")) && host != "iot.cn-shanghai.aliyuncs.com" {
		return nil, fmt.Errorf("endpoint %q: only iot.cn-shanghai.aliyuncs.com serves CreateProductDistributeJob", endpoint)
	}
	return u, nil
}

// NewClient returns a client for cfg.
func NewClient(cfg Config) (*Client, error) {
	u, err := ValidateEndpoint(cmp.Or(cfg.Endpoint, DefaultEndpoint))
	if err != nil {
		return nil, err
	}
	timeout := cfg.Timeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	oc := &openapi.Config{
		Endpoint: tea.String(u.Host),
		Protocol: tea.String(strings.ToUpper(u.Scheme)),
		RegionId: tea.String("cn-shanghai"),
	}
	if cfg.SignatureV1 {
		oc.SignatureAlgorithm = tea.String("v2")
	}
	switch {
	case cfg.Credential != nil:
		oc.Credential = cfg.Credential
	case cfg.AccessKeyID != "" || cfg.AccessKeySecret != "":
		oc.AccessKeyId = tea.String(cfg.AccessKeyID)
		oc.AccessKeySecret = tea.String(cfg.AccessKeySecret)
	default:
		return nil, errors.New("no credentials: set AccessKeyID and AccessKeySecret, or Credential")
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 64
	hc := &http.Client{Transport: tr, Timeout: timeout}
	oc.HttpClient = &httpDoer{c: hc}
	if _, err := iot.NewClient(oc); err != nil {
		return nil, fmt.Errorf("new iot client: %w", err)
	}
	codes := DefaultCodes
	if cfg.Codes != nil {
		codes = *cfg.Codes
	}
	ms := int(timeout / time.Millisecond)
	c := &Client{
		codes: codes,
		http:  hc,
		runtime: &util.RuntimeOptions{
			ReadTimeout:    tea.Int(ms),
			ConnectTimeout: tea.Int(min(ms, 5000)),
			Autoretry:      tea.Bool(false),
		},
	}
	c.pool.New = func() any {
		cfg := *oc
		d := &httpDoer{c: hc}
		cfg.HttpClient = d
		s, err := iot.NewClient(&cfg)
		if err != nil {
			panic(fmt.Sprintf("new iot client: %v", err)) // the same config succeeded above
		}
		return &pooled{sdk: s, doer: d}
	}
	return c, nil
}

// CreateRequest is what CreateProductDistributeJob takes.
type CreateRequest struct {
	ProductKey, SourceInstanceID, TargetInstanceID, TargetUID, TargetAliyunID string
}

// Job is a remote distribution job: a product job, or a device job
// (Total > 0, see IsDeviceJob).
type Job struct {
	JobID             string
	ProductKey        string
	SourceInstanceID  string
	TargetInstanceIDs []string
	SourceUID         string
	TargetUID         string
	Status            int
	CreatedAt         time.Time
	// Total is the number of devices of a device job (0 for a product
	// job); Strategy is a device job's (0 one target, 1 nearest).
	Total    int
	Strategy int
}

// Create is CreateContext without a context.
func (c *Client) Create(r CreateRequest) (jobID, requestID string, err error) {
	return c.CreateContext(context.Background(), r)
}

// CreateContext calls CreateProductDistributeJob and returns the JobId and
// the remote RequestId. Errors are *APIError; every error that may have
// reached the backend is Ambiguous (see forCreate). ctx ending abandons the call.
func (c *Client) CreateContext(ctx context.Context, r CreateRequest) (jobID, requestID string, err error) {
	req := &iot.CreateProductDistributeJobRequest{
		ProductKey:       tea.String(r.ProductKey),
		SourceInstanceId: tea.String(r.SourceInstanceID),
		TargetInstanceId: tea.String(r.TargetInstanceID),
	}
	if r.TargetUID != "" {
		req.TargetUid = tea.String(r.TargetUID)
	}
	if r.TargetAliyunID != "" {
		req.TargetAliyunId = tea.String(r.TargetAliyunID)
	}
	sdk := c.sdk(ctx)
	resp, err := sdk.sdk.CreateProductDistributeJobWithOptions(req, c.runtime)
	held := notSentError(ActionCreate, sdk, err)
	c.put(sdk)
	if held != nil {
		return "", "", held
	}
	if err != nil {
		return "", "", forCreate(c.codes.fromSDK(ActionCreate, err))
	}
	b := resp.Body
	if b == nil {
		return "", "", forCreate(c.codes.businessError(ActionCreate, "", "empty response body", ""))
	}
	if !tea.BoolValue(b.Success) || tea.StringValue(b.JobId) == "" {
		return "", "", forCreate(c.codes.businessError(ActionCreate, tea.StringValue(b.Code), tea.StringValue(b.ErrorMessage), tea.StringValue(b.RequestId)))
	}
	return tea.StringValue(b.JobId), tea.StringValue(b.RequestId), nil
}

// Query is QueryContext without a context.
func (c *Client) Query(jobID string) (Job, error) { return c.QueryContext(context.Background(), jobID) }

// QueryContext calls QueryDeviceDistributeJob. Errors are *APIError.
func (c *Client) QueryContext(ctx context.Context, jobID string) (Job, error) {
	sdk := c.sdk(ctx)
	resp, err := sdk.sdk.QueryDeviceDistributeJobWithOptions(&iot.QueryDeviceDistributeJobRequest{JobId: tea.String(jobID)}, c.runtime)
	c.put(sdk)
	if err != nil {
		return Job{}, c.codes.fromSDK(ActionQuery, err)
	}
	b := resp.Body
	if b == nil || !tea.BoolValue(b.Success) || b.Data == nil {
		if b == nil {
			return Job{}, c.codes.businessError(ActionQuery, "", "empty response body", "")
		}
		return Job{}, c.codes.businessError(ActionQuery, tea.StringValue(b.Code), tea.StringValue(b.ErrorMessage), tea.StringValue(b.RequestId))
	}
	d := b.Data
	j := Job{
		JobID:            tea.StringValue(d.JobId),
		ProductKey:       tea.StringValue(d.ProductKey),
		SourceInstanceID: tea.StringValue(d.SourceInstanceId),
		SourceUID:        tea.StringValue(d.SourceUid),
		TargetUID:        tea.StringValue(d.TargetUid),
		Status:           int(tea.Int32Value(d.Status)),
		CreatedAt:        time.UnixMilli(tea.Int64Value(d.GmtCreate)).UTC(),
		Total:            int(tea.Int32Value(d.Total)),
		Strategy:         int(tea.Int32Value(d.Strategy)),
	}
	if d.TargetInstanceConfigs != nil {
		for _, t := range d.TargetInstanceConfigs.TargetInstanceConfigs {
			j.TargetInstanceIDs = append(j.TargetInstanceIDs, tea.StringValue(t.TargetInstanceId))
		}
	}
	return j, nil
}

// ListFilter narrows ListDeviceDistributeJob.
type ListFilter struct {
	ProductKey string
	TargetUID  string
	Status     *int
	PageSize   int // 1–200, default 200
	NextToken  string
	Page       int
}

// List is ListContext without a context.
func (c *Client) List(f ListFilter) (jobs []Job, nextToken string, err error) {
	return c.ListContext(context.Background(), f)
}

// ListContext calls ListDeviceDistributeJob once and returns one page and
// the token of the next (empty at the end). Errors are *APIError.
func (c *Client) ListContext(ctx context.Context, f ListFilter) (jobs []Job, nextToken string, err error) {
	size := f.PageSize
	if size <= 0 || size > 200 {
		size = 200
	}
	req := &iot.ListDeviceDistributeJobRequest{PageSize: tea.Int32(int32(size))}
	if f.ProductKey != "" {
		req.ProductKey = tea.String(f.ProductKey)
	}
	if f.TargetUID != "" {
		req.TargetUid = tea.String(f.TargetUID)
	}
	if f.Status != nil {
		req.Status = tea.Int32(int32(*f.Status))
	}
	if f.NextToken != "" {
		req.NextToken = tea.String(f.NextToken)
	}
	if f.Page > 0 {
		req.CurrentPage = tea.Int32(int32(f.Page))
	}
	sdk := c.sdk(ctx)
	resp, err := sdk.sdk.ListDeviceDistributeJobWithOptions(req, c.runtime)
	c.put(sdk)
	if err != nil {
		return nil, "", c.codes.fromSDK(ActionList, err)
	}
	b := resp.Body
	if b == nil {
		return nil, "", c.codes.businessError(ActionList, "", "empty response body", "")
	}
	if !tea.BoolValue(b.Success) {
		return nil, "", c.codes.businessError(ActionList, tea.StringValue(b.Code), tea.StringValue(b.ErrorMessage), tea.StringValue(b.RequestId))
	}
	if b.Data == nil {
		return nil, "", nil
	}
	if b.Data.JobInfo != nil {
		for _, it := range b.Data.JobInfo.Items {
			j := Job{
				JobID:            tea.StringValue(it.JobId),
				ProductKey:       tea.StringValue(it.ProductKey),
				SourceInstanceID: tea.StringValue(it.SourceInstanceId),
				SourceUID:        tea.StringValue(it.SourceUid),
				TargetUID:        tea.StringValue(it.TargetUid),
				Status:           int(tea.Int32Value(it.Status)),
				CreatedAt:        time.UnixMilli(tea.Int64Value(it.GmtCreate)).UTC(),
				Total:            int(tea.Int32Value(it.Total)),
				Strategy:         int(tea.Int32Value(it.Strategy)),
			}
			if it.TargetInstanceConfigs != nil {
				for _, t := range it.TargetInstanceConfigs.TargetInstanceConfigs {
					j.TargetInstanceIDs = append(j.TargetInstanceIDs, tea.StringValue(t.TargetInstanceId))
				}
			}
			jobs = append(jobs, j)
		}
	}
	return jobs, tea.StringValue(b.Data.NextToken), nil
}

// Delete is DeleteContext without a context.
func (c *Client) Delete(jobID string) error { return c.DeleteContext(context.Background(), jobID) }

// DeleteContext calls DeleteDeviceDistributeJob. Errors are *APIError.
func (c *Client) DeleteContext(ctx context.Context, jobID string) error {
	sdk := c.sdk(ctx)
	resp, err := sdk.sdk.DeleteDeviceDistributeJobWithOptions(&iot.DeleteDeviceDistributeJobRequest{JobId: tea.String(jobID)}, c.runtime)
	c.put(sdk)
	if err != nil {
		return c.codes.fromSDK(ActionDelete, err)
	}
	b := resp.Body
	if b == nil {
		return c.codes.businessError(ActionDelete, "", "empty response body", "")
	}
	if !tea.BoolValue(b.Success) {
		return c.codes.businessError(ActionDelete, tea.StringValue(b.Code), tea.StringValue(b.ErrorMessage), tea.StringValue(b.RequestId))
	}
	return nil
}

// AsAPIError returns err as an *APIError, or nil.
func AsAPIError(err error) *APIError {
	var e *APIError
	if errors.As(err, &e) {
		return e
	}
	return nil
}
