// Package httpapi is distq's REST API (v1) on Echo, a front door of
// internal/service and nothing more: bearer-token auth per team, decoding
// with a JSON error for every bad input, the distribution and batch routes
// (each decodes, calls one use case and encodes its answer), long polls,
// and /healthz, /readyz, /metrics and /openapi.yaml. Handlers return
// errors; one table in errors.go maps them to statuses.
package httpapi

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	_ "embed"
	"encoding/hex"
	"log/slog"
	"math"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/labstack/echo-contrib/echoprometheus"
	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"golang.org/x/time/rate"

	"github.com/distq/distq/internal/distribution"
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
	// Ready reports whether the api can serve (Redis reachable).
	Ready func(ctx context.Context) error
	// TeamRate and TeamBurst limit each team's requests (default 200/s, 400).
	TeamRate  float64
	TeamBurst int
	// MaxWait bounds long polls (default 60s).
	MaxWait time.Duration
}

type server struct {
	Deps
	tokens   []tokenEntry
	limiters sync.Map // team -> *rate.Limiter
}

type tokenEntry struct {
	hash [32]byte
	team string
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
	s := &server{Deps: d}
	for token, team := range d.Tokens {
		// Tokens are kept only as hashes, compared in constant time.
		s.tokens = append(s.tokens, tokenEntry{hash: sha256.Sum256([]byte(token)), team: team})
	}
	for hexHash, team := range d.TokenHashes {
		var e tokenEntry
		if n, err := hex.Decode(e.hash[:], []byte(hexHash)); err == nil && n == len(e.hash) {
			e.team = team
			s.tokens = append(s.tokens, e)
		}
	}
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.HTTPErrorHandler = errorHandler(d.Log)
	e.Use(middleware.RequestIDWithConfig(middleware.RequestIDConfig{
		Generator: func() string { return distribution.NewID(time.Now())[2:] },
	}))
	e.Use(middleware.Recover())
	e.Use(echoprometheus.NewMiddlewareWithConfig(echoprometheus.MiddlewareConfig{
		Namespace: "distq", Subsystem: "http", Registerer: d.Registry,
		Skipper: func(c echo.Context) bool { return c.Path() == "/metrics" },
	}))
	e.Use(s.accessLog)

	e.GET("/healthz", func(c echo.Context) error { return c.JSON(http.StatusOK, map[string]string{"status": "ok"}) })
	e.GET("/readyz", s.readyz)
	e.GET("/metrics", echo.WrapHandler(promhttp.HandlerFor(d.Registry, promhttp.HandlerOpts{})))
	e.GET("/openapi.yaml", func(c echo.Context) error { return c.Blob(http.StatusOK, "application/yaml", openapiYAML) })

	v1 := e.Group("/v1", s.auth, s.teamLimit)
	v1.POST("/distributions", s.createDistribution, bodyLimit(MaxSingleBody))
	v1.GET("/distributions", s.listDistributions)
	v1.GET("/distributions/:id", s.getDistribution)
	v1.POST("/distributions/:id/cancel", s.cancelDistribution)
	v1.POST("/distributions/:id/retry", s.retryDistribution)
	v1.POST("/batches", s.createBatch, bodyLimit(MaxBatchBody))
	v1.GET("/batches/:id", s.getBatch)
	v1.GET("/batches/:id/distributions", s.listBatchDistributions)
	v1.POST("/batches/:id/cancel", s.cancelBatch)
	v1.POST("/batches/:id/retry", s.retryBatch)
	v1.POST("/batches/:id/notify", s.notifyBatch)
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
		h := c.Request().Header.Get(echo.HeaderAuthorization)
		token, ok := strings.CutPrefix(h, "Bearer ")
		if !ok || token == "" {
			c.Response().Header().Set("WWW-Authenticate", `Bearer realm="distq"`)
			return errorf(http.StatusUnauthorized, "unauthorized", "missing bearer token: send Authorization: Bearer <token>")
		}
		sum := sha256.Sum256([]byte(token))
		team := ""
		for _, t := range s.tokens { // every entry, whatever matches: constant time
			if subtle.ConstantTimeCompare(sum[:], t.hash[:]) == 1 {
				team = t.team
			}
		}
		if team == "" {
			c.Response().Header().Set("WWW-Authenticate", `Bearer realm="distq", error="invalid_token"`)
			return errorf(http.StatusUnauthorized, "unauthorized", "invalid bearer token")
		}
		c.Set(teamKey, team)
		return next(c)
	}
}

func (s *server) teamLimit(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		team := teamOf(c)
		l, _ := s.limiters.LoadOrStore(team, rate.NewLimiter(rate.Limit(s.TeamRate), s.TeamBurst))
		r := l.(*rate.Limiter).Reserve()
		if d := r.Delay(); d > 0 {
			r.Cancel()
			e := errorf(http.StatusTooManyRequests, "rate_limited", "too many requests from team %q; retry after %v", team, d.Round(time.Millisecond))
			e.RetryAfter = int(math.Ceil(d.Seconds()))
			return e
		}
		return next(c)
	}
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
		s.Log.Info("http request", "request_id", c.Response().Header().Get(echo.HeaderXRequestID),
			"method", c.Request().Method, "route", path, "status", status, "team", team,
			"duration_ms", time.Since(start).Milliseconds())
		return err
	}
}
