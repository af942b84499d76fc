package main

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/distq/distq/internal/distribution"
)

// client speaks distq's REST API (v1). It is safe for concurrent use.
type client struct {
	base  string // e.g. http://127.0.0.1:8080, no trailing slash
	token string
	http  *http.Client
	// maxRetries bounds the retries of a 429 answer (after its Retry-After)
	// and, for requests that are safe to repeat, of a transport error.
	maxRetries int
}

func newClient(base, token string) *client {
	return &client{
		base:       strings.TrimRight(base, "/"),
		token:      token,
		http:       &http.Client{Timeout: 2 * time.Minute},
		maxRetries: 4,
	}
}

// APIError is an error answer of the API:
// {"error": {"code": "...", "message": "...", "details": [...]}}.
type APIError struct {
	Status    int             `json:"-"`
	Code      string          `json:"code"`
	Message   string          `json:"message"`
	Details   json.RawMessage `json:"details,omitempty"`
	RequestID string          `json:"-"`
}

func (e *APIError) Error() string {
	msg := fmt.Sprintf("%s (HTTP %d): %s", e.Code, e.Status, e.Message)
	if e.RequestID != "" {
		msg += " [request " + e.RequestID + "]"
	}
	return msg
}

// Unavailable reports whether the answer says the service cannot serve now.
func (e *APIError) Unavailable() bool {
	return e.Status == http.StatusBadGateway || e.Status == http.StatusServiceUnavailable || e.Status == http.StatusGatewayTimeout
}

// unreachableError is a request that got no HTTP answer.
type unreachableError struct {
	URL string
	Err error
}

func (e *unreachableError) Error() string {
	return fmt.Sprintf("cannot reach distq at %s (check --url or DISTQ_URL): %v", e.URL, e.Err)
}

func (e *unreachableError) Unwrap() error { return e.Err }

// response is a successful answer.
type response struct {
	Status int
	Header http.Header
	Body   []byte
}

// do sends a request and returns a 2xx answer, an *APIError for an error
// answer, an *unreachableError when the server did not answer, or ctx's
// error. retrySafe says whether a transport error may be retried (GETs,
// and POSTs carrying an Idempotency-Key).
func (c *client) do(ctx context.Context, method, path string, body any, header http.Header, retrySafe bool) (*response, error) {
	var raw []byte
	if body != nil {
		var err error
		if raw, err = json.Marshal(body); err != nil {
			return nil, fmt.Errorf("encode request: %w", err)
		}
	}
	for attempt := 0; ; attempt++ {
		resp, err := c.once(ctx, method, path, raw, header)
		if err == nil {
			return resp, nil
		}
		if attempt >= c.maxRetries || ctx.Err() != nil {
			return nil, err
		}
		var wait time.Duration
		var ae *APIError
		var ue *unreachableError
		switch {
		case errors.As(err, &ae) && ae.Status == http.StatusTooManyRequests:
			wait = retryAfter(resp)
		case errors.As(err, &ue) && retrySafe && attempt < 2:
			wait = time.Duration(250<<attempt) * time.Millisecond
		default:
			return nil, err
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(wait):
		}
	}
}

func retryAfter(r *response) time.Duration {
	if r != nil {
		if n, err := strconv.Atoi(r.Header.Get("Retry-After")); err == nil && n > 0 {
			return time.Duration(n) * time.Second
		}
	}
	return time.Second
}

// once sends one request. On an error answer it returns the answer too, so
// the caller can read Retry-After.
func (c *client) once(ctx context.Context, method, path string, raw []byte, header http.Header) (*response, error) {
	var rd io.Reader
	if raw != nil {
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return nil, usagef("bad server URL %q: %v", c.base, err)
	}
	for k, vs := range header {
		req.Header[k] = vs
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "distqctl")
	if raw != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	httpResp, err := c.http.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // the URL is in our own message
		}
		return nil, &unreachableError{URL: c.base, Err: err}
	}
	defer httpResp.Body.Close()
	body, err := io.ReadAll(httpResp.Body)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, &unreachableError{URL: c.base, Err: fmt.Errorf("read answer: %w", err)}
	}
	resp := &response{Status: httpResp.StatusCode, Header: httpResp.Header, Body: body}
	if resp.Status < 400 {
		return resp, nil
	}
	var eb struct {
		Error *APIError `json:"error"`
	}
	if json.Unmarshal(body, &eb) != nil || eb.Error == nil || eb.Error.Code == "" {
		// Not distq's error shape: a proxy, or not distq at all.
		msg := strings.TrimSpace(string(body))
		if len(msg) > 200 {
			msg = msg[:200] + "…"
		}
		eb.Error = &APIError{Code: "http_" + strconv.Itoa(resp.Status), Message: cmp.Or(msg, http.StatusText(resp.Status))}
	}
	eb.Error.Status = resp.Status
	eb.Error.RequestID = httpResp.Header.Get("X-Request-Id")
	return resp, eb.Error
}

// getJSON GETs path into out.
func (c *client) getJSON(ctx context.Context, path string, out any) error {
	resp, err := c.do(ctx, http.MethodGet, path, nil, nil, true)
	if err != nil {
		return err
	}
	return decode(resp, out)
}

func decode(resp *response, out any) error {
	if err := json.Unmarshal(resp.Body, out); err != nil {
		return fmt.Errorf("decode the API's answer (HTTP %d): %w", resp.Status, err)
	}
	return nil
}

// The API's JSON shapes (internal/httpapi), as the client reads them.

// itemResult is the outcome of one batch item.
type itemResult struct {
	Index      int       `json:"index"`
	ID         string    `json:"id,omitempty"`
	ExistingID string    `json:"existing_id,omitempty"`
	Error      *APIError `json:"error,omitempty"`
}

// batchView is a batch with its counts per state.
type batchView struct {
	distribution.Batch
	Counts map[distribution.State]int `json:"counts"`
	Done   bool                       `json:"done"`
	ETA    *time.Time                 `json:"eta,omitempty"`
}

// batchCreated is the answer of POST /v1/batches.
type batchCreated struct {
	Batch    batchView    `json:"batch"`
	Accepted int          `json:"accepted"`
	Rejected int          `json:"rejected"`
	Results  []itemResult `json:"results"`
}

// listPage is one page of a distribution list.
type listPage struct {
	Items      []distribution.Distribution `json:"items"`
	NextCursor string                      `json:"next_cursor,omitempty"`
}

// batchActionResult is the answer of a batch cancel or retry.
type batchActionResult struct {
	BatchID  string   `json:"batch_id"`
	Changed  int      `json:"changed"`
	Skipped  int      `json:"skipped"`
	Affected []string `json:"affected"`
}

// listQuery filters a distribution list.
type listQuery struct {
	State      string
	BatchID    string
	ProductKey string
	PageSize   int
}

// list calls fn with every page of the list, following next_cursor, until
// the last page or fn returns false.
func (c *client) list(ctx context.Context, q listQuery, fn func([]distribution.Distribution) bool) error {
	v := url.Values{}
	if q.State != "" {
		v.Set("state", q.State)
	}
	if q.BatchID != "" {
		v.Set("batch_id", q.BatchID)
	}
	if q.ProductKey != "" {
		v.Set("product_key", q.ProductKey)
	}
	if q.PageSize > 0 {
		v.Set("limit", strconv.Itoa(q.PageSize))
	}
	for {
		var p listPage
		if err := c.getJSON(ctx, "/v1/distributions?"+v.Encode(), &p); err != nil {
			return err
		}
		if !fn(p.Items) || p.NextCursor == "" {
			return nil
		}
		v.Set("cursor", p.NextCursor)
	}
}
