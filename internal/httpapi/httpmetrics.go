package httpapi

import (
	"net/http"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"
)

// unmatched is the url label of requests that matched no route: the raw
// path of a 404 would let anyone grow /metrics without bound.
const unmatched = "unmatched"

// knownMethods are the method labels; any other method is "other".
var knownMethods = map[string]bool{
	http.MethodGet: true, http.MethodHead: true, http.MethodPost: true, http.MethodPut: true,
	http.MethodPatch: true, http.MethodDelete: true, http.MethodOptions: true,
}

// routeTemplates returns the path templates of e's routes (not the
// group-level not-found routes), the closed set of url labels.
func routeTemplates(e *echo.Echo) map[string]bool {
	out := map[string]bool{}
	for _, r := range e.Routes() {
		if knownMethods[r.Method] {
			out[r.Path] = true
		}
	}
	return out
}

// httpMetrics counts every request by the status the client received. An
// error of the chain is answered here, through the error handler, so that
// the status read back is the one sent: distq's own *Error, the team
// limiter's 429, the body limit's 413, a panic's 500 (Recover runs inside
// this middleware).
func (s *server) httpMetrics(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if c.Path() == "/metrics" {
			return next(c)
		}
		start := time.Now()
		if err := next(c); err != nil {
			if st := toError(err).Status; st == http.StatusUnauthorized || st == http.StatusRequestEntityTooLarge {
				// Not worth the connection: a token guesser or an oversized
				// body must dial again.
				c.Response().Header().Set("Connection", "close")
			}
			c.Error(err)
		}
		url := c.Path()
		if !s.routes[url] {
			url = unmatched
		}
		method := c.Request().Method
		if !knownMethods[method] {
			method = "other"
		}
		if s.Metrics == nil {
			return nil
		}
		s.Metrics.HTTPRequests.WithLabelValues(strconv.Itoa(c.Response().Status), method, url).Inc()
		s.Metrics.HTTPDuration.WithLabelValues(method, url).Observe(time.Since(start).Seconds())
		return nil
	}
}
