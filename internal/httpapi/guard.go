package httpapi

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/labstack/echo/v4"
)

// Defaults of the guards (Deps may change them).
const (
	// DefaultRequestTimeout bounds a request's time, Redis included, so that
	// a hung Redis answers a prompt 503 rather than a client timeout.
	DefaultRequestTimeout = 3 * time.Second
	// batchTimeout bounds a batch upload (reading 8 MiB, 10,000 inserts).
	batchTimeout = 30 * time.Second
	// batchActionTimeout bounds a batch's cancel or retry, which changes up
	// to 10,000 records one by one (a hung Redis still fails the first
	// command within the client's read timeout and one retry).
	batchActionTimeout = 2 * time.Minute
	// idempotentTimeout bounds a create with an Idempotency-Key, which may
	// wait for the first request with the key to finish.
	idempotentTimeout = 15 * time.Second
	// DefaultBodyTimeout and batchBodyTimeout bound the reading of a body
	// (the server's own ReadTimeout is off, so that long polls live).
	DefaultBodyTimeout = 10 * time.Second
	batchBodyTimeout   = 60 * time.Second
	// DefaultMaxLongPolls is how many long polls one team may hold at once.
	DefaultMaxLongPolls = 100
	// maxRequestID is the longest X-Request-Id taken from a client.
	maxRequestID = 64
)

// requestID takes the client's X-Request-Id when it is a short safe token
// (1 to 64 characters of [A-Za-z0-9._-]) and generates one otherwise, so
// that what is echoed and logged is bounded and cannot forge log lines.
func requestID(generate func() string) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			rid := c.Request().Header.Get(echo.HeaderXRequestID)
			if !safeToken(rid, maxRequestID) {
				rid = generate()
			}
			c.Request().Header.Set(echo.HeaderXRequestID, rid)
			c.Response().Header().Set(echo.HeaderXRequestID, rid)
			return next(c)
		}
	}
}

func safeToken(s string, max int) bool {
	if s == "" || len(s) > max {
		return false
	}
	for i := 0; i < len(s); i++ {
		b := s[i]
		if !('a' <= b && b <= 'z' || 'A' <= b && b <= 'Z' || '0' <= b && b <= '9' || b == '.' || b == '_' || b == '-') {
			return false
		}
	}
	return true
}

// apiHeaders marks every answer as not to be cached nor sniffed.
func apiHeaders(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		h := c.Response().Header()
		h.Set("Cache-Control", "no-store")
		h.Set("X-Content-Type-Options", "nosniff")
		return next(c)
	}
}

// isLongPoll reports whether the request asks to wait for a change.
func isLongPoll(c echo.Context) bool {
	return c.Request().Method == http.MethodGet && c.Request().URL.Query().Has("wait")
}

func isBatchUpload(c echo.Context) bool {
	return c.Request().Method == http.MethodPost && (c.Path() == "/v1/batches" || c.Path() == "/v1/device-distributions")
}

// deadline gives each request an overall deadline: the request timeout,
// more for a batch upload, a batch action or a create with an
// Idempotency-Key, and the
// longest wait plus the request timeout for a long poll. Redis calls that
// pass the deadline fail, and the error handler answers 503.
func (s *server) deadline(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		d := s.RequestTimeout
		switch {
		case isLongPoll(c):
			d += s.MaxWait
		case isBatchUpload(c):
			d = max(d, batchTimeout)
		case c.Path() == "/v1/batches/:id/cancel" || c.Path() == "/v1/batches/:id/retry":
			d = max(d, batchActionTimeout)
		case c.Request().Method == http.MethodPost && c.Request().Header.Get("Idempotency-Key") != "":
			d = max(d, idempotentTimeout)
		}
		ctx, cancel := context.WithTimeout(c.Request().Context(), d)
		defer cancel()
		c.SetRequest(c.Request().WithContext(ctx))
		return next(c)
	}
}

// bodyDeadline bounds the time a client may take to send its body (60 s
// for a batch upload, BodyTimeout otherwise), so slow bodies do not hold
// connections. net/http lifts the deadline once the body is read (when it
// starts watching the connection), so answering may take longer.
func (s *server) bodyDeadline(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		req := c.Request()
		if req.ContentLength == 0 || req.Body == nil || req.Body == http.NoBody {
			return next(c)
		}
		d := s.BodyTimeout
		if isBatchUpload(c) {
			d = max(d, batchBodyTimeout)
		}
		// Not a net/http connection (tests' recorders): no deadline.
		_ = http.NewResponseController(c.Response().Writer).SetReadDeadline(time.Now().Add(d))
		return next(c)
	}
}

// longPolls caps the long polls each team holds at once: beyond the cap
// the answer is 429, so one team cannot hold thousands of connections.
type longPolls struct {
	max   int64
	teams sync.Map // team -> *atomic.Int64
}

func (l *longPolls) middleware(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if !isLongPoll(c) {
			return next(c)
		}
		v, _ := l.teams.LoadOrStore(teamOf(c), new(atomic.Int64))
		n := v.(*atomic.Int64)
		defer n.Add(-1)
		if n.Add(1) > l.max {
			e := errorf(http.StatusTooManyRequests, "too_many_long_polls", "team %q already holds %d long polls; wait for one to end or poll without wait", teamOf(c), l.max)
			e.RetryAfter = 1
			return e
		}
		return next(c)
	}
}

// singleParams are the query parameters that take one value.
var singleParams = map[string]bool{"wait": true, "state": true, "cursor": true, "limit": true, "product_key": true, "batch_id": true}

// checkQuery refuses a query string that does not parse, or that repeats
// a parameter taking one value, with a 400 naming the parameter (Go's own
// parsing would drop the pair or take the first value silently).
func checkQuery(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		seen := map[string]bool{}
		for pair := range strings.SplitSeq(c.Request().URL.RawQuery, "&") {
			if pair == "" {
				continue
			}
			rawKey, rawVal, _ := strings.Cut(pair, "=")
			key, err := url.QueryUnescape(rawKey)
			if err != nil {
				return errorf(http.StatusBadRequest, "bad_parameter", "query parameter %q: malformed escape", truncate(rawKey, 40))
			}
			if _, err := url.QueryUnescape(rawVal); err != nil {
				return errorf(http.StatusBadRequest, "bad_parameter", "query parameter %s: malformed escape in its value", truncate(key, 40))
			}
			if singleParams[key] && seen[key] {
				return errorf(http.StatusBadRequest, "bad_parameter", "query parameter %s given more than once", key)
			}
			seen[key] = true
		}
		return next(c)
	}
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// maxBatchDecodes is how many batch bodies the api decodes at once (each
// decode allocates up to ~35 MiB beyond its 8 MiB body: the decoder and
// 10,000 items); others wait their turn within their deadline, so eight
// hostile uploads in parallel cannot take the api past its memory limit.
// Reading a body takes no slot: slow uploads cannot starve the others.
const maxBatchDecodes = 4

var batchDecodes = make(chan struct{}, maxBatchDecodes)

// acquireDecode takes a decode slot; release gives it back.
func acquireDecode(ctx context.Context) (release func(), err error) {
	select {
	case batchDecodes <- struct{}{}:
		return func() { <-batchDecodes }, nil
	case <-ctx.Done():
		e := errorf(http.StatusServiceUnavailable, "unavailable", "too many batch uploads in progress; try again shortly")
		e.RetryAfter = 1
		return nil, e
	}
}

// MaxHeaderBytes is the most header bytes a request may carry. The http
// server's own limit is set higher (1 MiB) so that between the two the
// refusal is this JSON 431, not net/http's text/plain one.
const MaxHeaderBytes = 64 << 10

// headerLimit refuses requests whose headers exceed MaxHeaderBytes.
func headerLimit(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		n := len(c.Request().RequestURI)
		for k, vs := range c.Request().Header {
			for _, v := range vs {
				n += len(k) + len(v) + 4
			}
		}
		if n > MaxHeaderBytes {
			c.Response().Header().Set("Connection", "close")
			return errorf(http.StatusRequestHeaderFieldsTooLarge, "headers_too_large", "request line and headers are %d bytes; at most %d are accepted", n, MaxHeaderBytes)
		}
		return next(c)
	}
}
