// Package client is the Go client of distq's REST API (v1): the API's wire
// types and a small typed client for every /v1 route.
//
// distq distributes Alibaba Cloud IoT products (CreateProductDistributeJob)
// through a queue that keeps to the account's rate and job limits. A team
// submits distributions one by one (Client.Submit) or in batches of up to
// 10,000 (Client.SubmitBatch), then follows them: Client.Get, the long poll
// Client.Poll, Client.GetBatch for a batch's counts and ETA, and
// Client.List or Client.All for pages of distributions. Operators, with a
// Client made with an operator's token, use the admin methods (admin.go):
// Client.AdminAccounts, Client.SetLimits, Client.PauseAccount, …
//
// Every method takes a context. An error answer is an *Error carrying the
// API's code, message, details and HTTP status; a request that got no
// answer is a *TransportError:
//
//	d, err := c.Get(ctx, id)
//	var apiErr *client.Error
//	if errors.As(err, &apiErr) && apiErr.Code == "not_found" { … }
//
// The types match the API's OpenAPI document (GET /openapi.yaml); a test
// in distq checks them against it. The package imports only the standard
// library.
package client

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"iter"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Client speaks distq's REST API (v1) for one team (its bearer token). It
// is safe for concurrent use.
type Client struct {
	base       string
	token      string
	http       *http.Client
	userAgent  string
	maxRetries int
}

// Option configures a Client.
type Option func(*Client)

// WithHTTPClient sends the requests with hc instead of a plain
// *http.Client (which has no timeout: long polls last up to their wait,
// and the context bounds every call).
func WithHTTPClient(hc *http.Client) Option { return func(c *Client) { c.http = hc } }

// WithUserAgent sets the User-Agent header (default "distq-go-client").
func WithUserAgent(ua string) Option { return func(c *Client) { c.userAgent = ua } }

// WithRetries retries a 429 answer up to n times, each after its
// Retry-After, and retries a request that got no answer up to
// min(n, 2) times when it is safe to repeat (reads, cancel and retry, and
// submissions with an Idempotency-Key). The default is 0: no retries.
func WithRetries(n int) Option { return func(c *Client) { c.maxRetries = max(n, 0) } }

// New returns a client of the API at baseURL (e.g. "http://127.0.0.1:8080")
// that authenticates with token.
func New(baseURL, token string, opts ...Option) *Client {
	c := &Client{
		base:      strings.TrimRight(baseURL, "/"),
		token:     token,
		http:      &http.Client{},
		userAgent: "distq-go-client",
	}
	for _, o := range opts {
		o(c)
	}
	return c
}

// Submit queues one distribution. With a non-empty idempotencyKey (1 to
// 255 printable ASCII characters, kept 24 hours per team), a repeat of the
// same request answers the first answer again and replayed is true; the
// same key with another request is an *Error with code
// idempotency_key_reused. A distribution of the same product to the same
// target that is still active makes it an *Error with code
// duplicate_active (see Error.ExistingID).
func (c *Client) Submit(ctx context.Context, req DistributionRequest, idempotencyKey string) (d *Distribution, replayed bool, err error) {
	d = new(Distribution)
	resp, err := c.do(ctx, http.MethodPost, "/v1/distributions", req, idemHeader(idempotencyKey), idempotencyKey != "", d)
	if err != nil {
		return nil, false, err
	}
	return d, isReplay(resp), nil
}

// SubmitBatch queues a batch. Items that are invalid or duplicates of
// active distributions are refused one by one (BatchCreated.Results); when
// none is valid, nothing is created and the *Error (validation_failed)
// holds every item's result (Error.ItemResults). idempotencyKey works as
// for Submit.
func (c *Client) SubmitBatch(ctx context.Context, req BatchRequest, idempotencyKey string) (b *BatchCreated, replayed bool, err error) {
	b = new(BatchCreated)
	resp, err := c.do(ctx, http.MethodPost, "/v1/batches", req, idemHeader(idempotencyKey), idempotencyKey != "", b)
	if err != nil {
		return nil, false, err
	}
	return b, isReplay(resp), nil
}

func isReplay(resp *http.Response) bool {
	return resp.StatusCode == http.StatusOK || resp.Header.Get("Idempotent-Replayed") == "true"
}

// Get returns a distribution. Another team's id is not_found, like an
// unknown one.
func (c *Client) Get(ctx context.Context, id string) (*Distribution, error) {
	var d Distribution
	_, err := c.do(ctx, http.MethodGet, "/v1/distributions/"+url.PathEscape(id), nil, nil, true, &d)
	return ptr(&d, err)
}

// Poll is a long poll: it returns a distribution as soon as its state
// differs from known (when known is empty: from its state when the request
// arrives), or when wait runs out, whichever is first; either way as it is
// then. wait is at most the server's maximum (60 s by default).
func (c *Client) Poll(ctx context.Context, id string, known State, wait time.Duration) (*Distribution, error) {
	q := url.Values{"wait": {wait.String()}}
	if known != "" {
		q.Set("state", string(known))
	}
	var d Distribution
	_, err := c.do(ctx, http.MethodGet, "/v1/distributions/"+url.PathEscape(id)+"?"+q.Encode(), nil, nil, true, &d)
	return ptr(&d, err)
}

// Cancel moves a queued distribution to canceled; in any other state it is
// an *Error with code invalid_state.
func (c *Client) Cancel(ctx context.Context, id string) (*Distribution, error) {
	return c.action(ctx, "distributions", id, "cancel")
}

// Retry queues a failed distribution again; in any other state it is an
// *Error with code invalid_state.
func (c *Client) Retry(ctx context.Context, id string) (*Distribution, error) {
	return c.action(ctx, "distributions", id, "retry")
}

func (c *Client) action(ctx context.Context, kind, id, action string) (*Distribution, error) {
	var d Distribution
	// Both actions are idempotent in effect (a second one answers 409), so
	// a request without answer may be repeated.
	_, err := c.do(ctx, http.MethodPost, "/v1/"+kind+"/"+url.PathEscape(id)+"/"+action, nil, nil, true, &d)
	return ptr(&d, err)
}

// GetBatch returns a batch with its counts per state, done flag and ETA.
func (c *Client) GetBatch(ctx context.Context, id string) (*Batch, error) {
	var b Batch
	_, err := c.do(ctx, http.MethodGet, "/v1/batches/"+url.PathEscape(id), nil, nil, true, &b)
	return ptr(&b, err)
}

// PollBatch long-polls a batch: it answers as soon as the batch's counts
// differ from those the revision names (the ETag of an earlier answer), or
// after wait. With an empty revision it answers at once. It returns the batch
// and the revision to pass next time.
func (c *Client) PollBatch(ctx context.Context, id, revision string, wait time.Duration) (*Batch, string, error) {
	var b Batch
	path := "/v1/batches/" + url.PathEscape(id)
	var hdr http.Header
	if revision != "" {
		path += "?wait=" + url.QueryEscape(wait.String())
		hdr = http.Header{"If-None-Match": {`"` + revision + `"`}}
	}
	resp, err := c.do(ctx, http.MethodGet, path, nil, hdr, true, &b)
	if err != nil {
		return nil, "", err
	}
	return &b, strings.Trim(strings.TrimPrefix(resp.Header.Get("ETag"), "W/"), `"`), nil
}

// Notify sends a finished batch's completion event again (the same event
// id, so a receiver can deduplicate) and returns the batch with the
// event's delivery state.
func (c *Client) Notify(ctx context.Context, id string) (*Batch, error) {
	var b Batch
	_, err := c.do(ctx, http.MethodPost, "/v1/batches/"+url.PathEscape(id)+"/notify", nil, nil, false, &b)
	return ptr(&b, err)
}

// CancelBatch cancels every queued item of a batch; when none was queued
// it is an *Error with code invalid_state.
func (c *Client) CancelBatch(ctx context.Context, id string) (*BatchActionResult, error) {
	return c.batchAction(ctx, id, "cancel")
}

// RetryBatch queues every failed item of a batch again; when none could be
// it is an *Error with code invalid_state.
func (c *Client) RetryBatch(ctx context.Context, id string) (*BatchActionResult, error) {
	return c.batchAction(ctx, id, "retry")
}

func (c *Client) batchAction(ctx context.Context, id, action string) (*BatchActionResult, error) {
	var r BatchActionResult
	_, err := c.do(ctx, http.MethodPost, "/v1/batches/"+url.PathEscape(id)+"/"+action, nil, nil, true, &r)
	return ptr(&r, err)
}

// ListOptions filters and pages a list. The zero value lists everything,
// 100 a page.
type ListOptions struct {
	State      State
	BatchID    string // only with List and All; BatchDistributions takes it as argument
	ProductKey string
	// Limit is the page size, 1 to 1000 (0: the server's default, 100).
	Limit int
	// Cursor is the NextCursor of the previous page.
	Cursor string
}

func (o ListOptions) query() url.Values {
	v := url.Values{}
	if o.State != "" {
		v.Set("state", string(o.State))
	}
	if o.BatchID != "" {
		v.Set("batch_id", o.BatchID)
	}
	if o.ProductKey != "" {
		v.Set("product_key", o.ProductKey)
	}
	if o.Limit > 0 {
		v.Set("limit", strconv.Itoa(o.Limit))
	}
	if o.Cursor != "" {
		v.Set("cursor", o.Cursor)
	}
	return v
}

// List returns one page of the team's distributions in creation order,
// filtered by every option set.
func (c *Client) List(ctx context.Context, o ListOptions) (*Page, error) {
	return c.page(ctx, "/v1/distributions", o)
}

// BatchDistributions returns one page of a batch's distributions;
// o.BatchID is ignored. An unknown batch is not_found.
func (c *Client) BatchDistributions(ctx context.Context, batchID string, o ListOptions) (*Page, error) {
	o.BatchID = ""
	return c.page(ctx, "/v1/batches/"+url.PathEscape(batchID)+"/distributions", o)
}

func (c *Client) page(ctx context.Context, path string, o ListOptions) (*Page, error) {
	var p Page
	if q := o.query().Encode(); q != "" {
		path += "?" + q
	}
	_, err := c.do(ctx, http.MethodGet, path, nil, nil, true, &p)
	return ptr(&p, err)
}

// All iterates over every distribution List finds, from o.Cursor (or the
// start) to the last page, following next_cursor; each page is fetched
// when the one before is used up. An error ends the iteration: it is
// yielded once, with a zero Distribution. Stop early with break.
func (c *Client) All(ctx context.Context, o ListOptions) iter.Seq2[Distribution, error] {
	return func(yield func(Distribution, error) bool) {
		for {
			p, err := c.List(ctx, o)
			if err != nil {
				yield(Distribution{}, err)
				return
			}
			for _, d := range p.Items {
				if !yield(d, nil) {
					return
				}
			}
			if p.NextCursor == "" {
				return
			}
			o.Cursor = p.NextCursor
		}
	}
}

func ptr[T any](v *T, err error) (*T, error) {
	if err != nil {
		return nil, err
	}
	return v, nil
}

// do sends a request and decodes a 2xx answer into out. It returns an
// *Error for an error answer, a *TransportError when the server did not
// answer, or ctx's error. retrySafe says whether a request without answer
// may be sent again.
func (c *Client) do(ctx context.Context, method, path string, body any, hdr http.Header, retrySafe bool, out any) (*http.Response, error) {
	var raw []byte
	if body != nil {
		var err error
		if raw, err = json.Marshal(body); err != nil {
			return nil, fmt.Errorf("encode request: %w", err)
		}
	}
	for attempt := 0; ; attempt++ {
		resp, data, err := c.once(ctx, method, path, raw, hdr)
		if err == nil {
			if err := json.Unmarshal(data, out); err != nil {
				return nil, fmt.Errorf("decode the API's answer (HTTP %d): %w", resp.StatusCode, err)
			}
			return resp, nil
		}
		if attempt >= c.maxRetries || ctx.Err() != nil {
			return nil, err
		}
		var wait time.Duration
		var ae *Error
		var te *TransportError
		switch {
		case errors.As(err, &ae) && ae.Status == http.StatusTooManyRequests:
			wait = cmp.Or(ae.RetryAfter, time.Second)
		case errors.As(err, &te) && retrySafe && attempt < 2:
			wait = time.Duration(250<<attempt) * time.Millisecond
		default:
			return nil, err
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		case <-t.C:
		}
	}
}

// idemHeader is the Idempotency-Key header, or none for an empty key.
func idemHeader(key string) http.Header {
	if key == "" {
		return nil
	}
	return http.Header{"Idempotency-Key": {key}}
}

// once sends one request and reads its answer.
func (c *Client) once(ctx context.Context, method, path string, raw []byte, hdr http.Header) (*http.Response, []byte, error) {
	var rd io.Reader
	if raw != nil {
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return nil, nil, fmt.Errorf("bad server URL %q: %v", c.base, err)
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", c.userAgent)
	if raw != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	resp, err := c.http.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil, nil, ctx.Err()
		}
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // the URL is in TransportError's message
		}
		return nil, nil, &TransportError{URL: c.base, Err: err}
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		if ctx.Err() != nil {
			return nil, nil, ctx.Err()
		}
		return nil, nil, &TransportError{URL: c.base, Err: fmt.Errorf("read answer: %w", err)}
	}
	if resp.StatusCode < 400 {
		return resp, body, nil
	}
	return resp, nil, errorOf(resp, body)
}

// errorOf reads an error answer.
func errorOf(resp *http.Response, body []byte) *Error {
	var eb errorBody
	if json.Unmarshal(body, &eb) != nil || eb.Error == nil || eb.Error.Code == "" {
		// Not distq's error shape: a proxy, or not distq at all.
		msg := strings.TrimSpace(string(body))
		if len(msg) > 200 {
			msg = msg[:200] + "…"
		}
		eb.Error = &Error{Code: "http_" + strconv.Itoa(resp.StatusCode), Message: cmp.Or(msg, http.StatusText(resp.StatusCode))}
	}
	if eb.Error.Details == nil {
		eb.Error.Details = json.RawMessage("[]")
	}
	eb.Error.Status = resp.StatusCode
	eb.Error.RequestID = resp.Header.Get("X-Request-Id")
	if n, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && n > 0 {
		eb.Error.RetryAfter = time.Duration(n) * time.Second
	}
	return eb.Error
}
