// Package httpapi is distq's REST API (v1) on Echo, a front door of
// internal/service and nothing more: bearer-token auth per team, decoding
// with a JSON error for every bad input, the distribution and batch routes
// (each decodes, calls one use case and encodes its answer), long polls,
// the operators' admin routes (admin.go: their own tokens, a team's is 403),
// and /healthz, /readyz, /metrics and /openapi.yaml. Handlers return
// errors; one table in errors.go maps them to statuses.
package httpapi

import (
	"context"
	_ "embed"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"golang.org/x/time/rate"

	"github.com/distq/distq/internal/distribution"
	"github.com/distq/distq/internal/metrics"
	"github.com/distq/distq/internal/service"
)

//go:embed openapi.yaml
var openapiYAML []byte

// OpenAPI returns the OpenAPI 3 document of the API.
func OpenAPI() []byte { return openapiYAML }

// Limits of request bodies.
const (
	MaxSingleBody = 64 << 10 // 64 KiB
	MaxBatchBody  = 8 << 20  // 8 MiB: 10,000 items of ~800 bytes
	MaxBatchItems = service.MaxBatchItems
)

// Deps is what the API needs.
type Deps struct {
	// Service runs every use case of the /v1 routes.
	Service *service.Service
	// Tokens maps bearer tokens to teams.
	Tokens map[string]string
	// TokenHashes maps the hex SHA-256 of bearer tokens to teams.
	TokenHashes map[string]string
	Registry    interface {
		prometheus.Registerer
		prometheus.Gatherer
	}
	Log *slog.Logger
	// Metrics counts the api's requests (HTTPRequests, HTTPDuration).
	Metrics *metrics.Metrics
	// Ready reports whether the api can serve (Redis reachable).
	Ready func(ctx context.Context) error
	// TeamRate and TeamBurst limit each team's requests (default 200/s, 400).
	TeamRate  float64
	TeamBurst int
	// MaxWait bounds long polls (default 60s).
	MaxWait time.Duration
	// RequestTimeout bounds each request, Redis included (default 3s; long
	// polls get MaxWait more, batch uploads 30s).
	RequestTimeout time.Duration
	// MaxLongPolls caps the long polls one team holds at once (default 100).
	MaxLongPolls int
	// BodyTimeout bounds the sending of a request body (default 10s; 60s
	// for a batch upload).
	BodyTimeout time.Duration

	// AdminTokens and AdminTokenHashes are the operators' tokens (token,
	// or its hex SHA-256, to the operator's name): only they open the
	// admin routes (/v1/admin/…). Without any, no admin route can be used.
	AdminTokens      map[string]string
	AdminTokenHashes map[string]string
}

type server struct {
	Deps
	tokens   *service.Tokens
	admins   *service.Tokens
	limiters sync.Map // team (or "admin " + operator) -> *rate.Limiter
	// routes are the path templates of the routes, the url labels.
	routes map[string]bool
	polls  longPolls
	// authFailures limits failed authentications per client address.
	authFailures failureLimiter
}

// New returns the API's handler, and a function that runs its background
// work (the service's change feed, for long polls) until ctx ends.
func New(d Deps) (*echo.Echo, func(ctx context.Context)) {
	if d.TeamRate <= 0 {
		d.TeamRate = 200
	}
	if d.TeamBurst <= 0 {
		d.TeamBurst = 2 * int(math.Ceil(d.TeamRate))
	}
	if d.MaxWait <= 0 {
		d.MaxWait = 60 * time.Second
	}
	if d.RequestTimeout <= 0 {
		d.RequestTimeout = DefaultRequestTimeout
	}
	if d.MaxLongPolls <= 0 {
		d.MaxLongPolls = DefaultMaxLongPolls
	}
	if d.BodyTimeout <= 0 {
		d.BodyTimeout = DefaultBodyTimeout
	}
	s := &server{Deps: d}
	s.polls.max = int64(d.MaxLongPolls)
	s.tokens = service.NewTokens(d.Tokens, d.TokenHashes)
	s.admins = service.NewTokens(d.AdminTokens, d.AdminTokenHashes)
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.HTTPErrorHandler = errorHandler(d.Log)
	e.Use(requestID(func() string { return distribution.NewID(time.Now())[2:] }))
	e.Use(apiHeaders)
	e.Use(s.httpMetrics)
	e.Use(middleware.RecoverWithConfig(middleware.RecoverConfig{
		LogErrorFunc: func(c echo.Context, err error, stack []byte) error {
			d.Log.Error("panic", "request_id", c.Response().Header().Get(echo.HeaderXRequestID),
				"method", c.Request().Method, "route", c.Path(), "err", err, "stack", string(stack))
			return err
		},
	}))
	e.Use(s.accessLog)
	e.Use(headerLimit, s.deadline, s.bodyDeadline, checkQuery)

	healthz := func(c echo.Context) error { return c.JSON(http.StatusOK, map[string]string{"status": "ok"}) }
	// HEAD too: load balancers and uptime checkers probe with it.
	e.GET("/healthz", healthz)
	e.HEAD("/healthz", healthz)
	e.GET("/readyz", s.readyz)
	e.HEAD("/readyz", s.readyz)
	e.GET("/metrics", echo.WrapHandler(promhttp.HandlerFor(d.Registry, promhttp.HandlerOpts{})))
	e.GET("/openapi.yaml", func(c echo.Context) error { return c.Blob(http.StatusOK, "application/yaml", openapiYAML) })

	// Middleware per route, not on the group: a group's middleware makes
	// Echo answer 404 to a known path with a wrong method, not 405.
	v1 := e.Group("/v1")
	mw := func(extra ...echo.MiddlewareFunc) []echo.MiddlewareFunc {
		return append([]echo.MiddlewareFunc{s.auth, s.teamLimit, s.polls.middleware}, extra...)
	}
	v1.POST("/distributions", s.createDistribution, mw(bodyLimit(MaxSingleBody))...)
	v1.GET("/distributions", s.listDistributions, mw()...)
	v1.GET("/distributions/:id", s.getDistribution, mw()...)
	v1.POST("/distributions/:id/cancel", s.cancelDistribution, mw()...)
	v1.POST("/distributions/:id/retry", s.retryDistribution, mw()...)
	v1.POST("/batches", s.createBatch, mw(bodyLimit(MaxBatchBody))...)
	v1.GET("/batches/:id", s.getBatch, mw()...)
	v1.GET("/batches/:id/distributions", s.listBatchDistributions, mw()...)
	v1.POST("/batches/:id/cancel", s.cancelBatch, mw()...)
	v1.POST("/batches/:id/retry", s.retryBatch, mw()...)
	v1.POST("/batches/:id/notify", s.notifyBatch, mw()...)
	s.adminRoutes(v1)
	s.deviceRoutes(v1, mw)
	s.routes = routeTemplates(e)
	return e, d.Service.Run
}

func bodyLimit(n int64) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			req := c.Request()
			if req.ContentLength > n {
				return errorf(http.StatusRequestEntityTooLarge, "too_large", "request body is %d bytes; this route accepts at most %d", req.ContentLength, n)
			}
			req.Body = http.MaxBytesReader(c.Response(), req.Body, n)
			return next(c)
		}
	}
}

const teamKey = "team"

func teamOf(c echo.Context) string { return c.Get(teamKey).(string) }

func (s *server) auth(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		token, err := s.bearer(c)
		if err != nil {
			return err
		}
		team := s.tokens.Team(token)
		if team == "" {
			if s.admins.Team(token) != "" {
				// An operator's valid token is no failed login: it opens
				// the admin routes only.
				return errorf(http.StatusForbidden, "forbidden", "an operator's token opens only the admin routes (/v1/admin/…); use a team's token")
			}
			return s.badToken(c)
		}
		c.Set(teamKey, team)
		return next(c)
	}
}

// bearer returns the request's bearer token, or the error to answer: 429
// when the address failed too many times, 400 for two Authorization
// headers, 401 for none.
func (s *server) bearer(c echo.Context) (string, error) {
	addr := clientAddr(c)
	if s.authFailures.exhausted(addr) {
		e := errorf(http.StatusTooManyRequests, "rate_limited", "too many failed authentications from this address; retry after %ds", authRetryAfter)
		e.RetryAfter = authRetryAfter
		return "", e
	}
	hs := c.Request().Header.Values(echo.HeaderAuthorization)
	if len(hs) > 1 {
		s.authFailures.add(addr)
		return "", errorf(http.StatusBadRequest, "bad_request", "send one Authorization header, not %d", len(hs))
	}
	h := ""
	if len(hs) == 1 {
		h = hs[0]
	}
	// The scheme is case-insensitive (RFC 9110 section 11.1).
	scheme, token, ok := strings.Cut(h, " ")
	token = strings.TrimLeft(token, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || token == "" {
		c.Response().Header().Set("WWW-Authenticate", `Bearer realm="distq"`)
		return "", errorf(http.StatusUnauthorized, "unauthorized", "missing bearer token: send Authorization: Bearer <token>")
	}
	return token, nil
}

// badToken answers a token that is nobody's, and counts the failure
// against the client's address.
func (s *server) badToken(c echo.Context) error {
	s.authFailures.add(clientAddr(c))
	c.Response().Header().Set("WWW-Authenticate", `Bearer realm="distq", error="invalid_token"`)
	return errorf(http.StatusUnauthorized, "unauthorized", "invalid bearer token")
}

func (s *server) teamLimit(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if err := s.limit(teamOf(c)); err != nil {
			return err
		}
		return next(c)
	}
}

// limit spends one request of who's inbound budget, or returns the 429.
func (s *server) limit(who string) error {
	l, _ := s.limiters.LoadOrStore(who, rate.NewLimiter(rate.Limit(s.TeamRate), s.TeamBurst))
	r := l.(*rate.Limiter).Reserve()
	if d := r.Delay(); d > 0 {
		r.Cancel()
		// Whole seconds, rounded up, in the message as in Retry-After:
		// the two never disagree (a sub-millisecond wait is 1 s, not 0 s).
		after := max(int(math.Ceil(d.Seconds())), 1)
		e := errorf(http.StatusTooManyRequests, "rate_limited", "too many requests from %s; retry after %ds", whoText(who), after)
		e.RetryAfter = after
		return e
	}
	return nil
}

// whoText names a limiter's owner in a message.
func whoText(who string) string {
	if admin, ok := strings.CutPrefix(who, "admin "); ok {
		return fmt.Sprintf("operator %q", admin)
	}
	return fmt.Sprintf("team %q", who)
}

func (s *server) readyz(c echo.Context) error {
	ctx, cancel := context.WithTimeout(c.Request().Context(), 2*time.Second)
	defer cancel()
	if err := s.Ready(ctx); err != nil {
		return errorf(http.StatusServiceUnavailable, "unavailable", "not ready: %v", err)
	}
	return c.JSON(http.StatusOK, map[string]string{"status": "ready"})
}

// accessLog writes one structured line per request.
func (s *server) accessLog(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		start := time.Now()
		err := next(c)
		status := c.Response().Status
		if err != nil {
			status = toError(err).Status
		}
		path := c.Path()
		if path == "/metrics" || path == "/healthz" || path == "/readyz" {
			return err
		}
		team, _ := c.Get(teamKey).(string)
		attrs := []any{"request_id", c.Response().Header().Get(echo.HeaderXRequestID),
			"method", c.Request().Method, "route", path, "status", status, "team", team,
			"duration_ms", time.Since(start).Milliseconds()}
		if admin, ok := c.Get(adminKey).(string); ok {
			attrs = append(attrs, "admin", admin)
		}
		s.Log.Info("http request", attrs...)
		return err
	}
}
