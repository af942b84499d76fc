// Package console is distq's team console: web pages, served by the api
// under /console/, where a team signs in with its API token and sees and
// steers its own work — its batches with live progress, single
// distributions with their timeline, a submit form with a dry-run preview,
// and where it stands in the shared account.
//
// It is a front door of internal/service like the REST API: every page
// calls use cases and presents their results, through html/template with
// its assets embedded. Sessions live server-side (the Sessions interface,
// which internal/store satisfies) behind an HttpOnly, SameSite=Strict
// cookie; every state-changing form carries the session's CSRF token; every
// answer has a strict Content-Security-Policy (no inline script or style),
// X-Frame-Options DENY and nosniff.
package console

import (
	"context"
	"embed"
	"errors"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/distq/distq/internal/service"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed assets
var assetFS embed.FS

// Prefix is where the console is served.
const Prefix = "/console"

// Sessions keeps the console's server-side sessions, by the hash of their
// cookie, until they expire.
type Sessions interface {
	PutSession(ctx context.Context, id string, data []byte, ttl time.Duration) error
	// GetSession returns an error wrapping distribution.ErrNotFound (or any
	// error) when the session is gone.
	GetSession(ctx context.Context, id string) ([]byte, error)
	DeleteSession(ctx context.Context, id string) error
}

// Deps is what the console needs.
type Deps struct {
	Service  *service.Service
	Sessions Sessions
	// Tokens maps API tokens to teams; TokenHashes the hex SHA-256 of
	// tokens to teams (as the REST API takes them).
	Tokens      map[string]string
	TokenHashes map[string]string
	Log         *slog.Logger
	// SessionTTL is how long a sign-in lasts (default 8 h).
	SessionTTL time.Duration
	// Poll is how often a running batch's page refreshes (default 2 s).
	Poll time.Duration
}

type console struct {
	Deps
	tokens *service.Tokens
	pages  *pages

	mu       sync.Mutex
	failures map[string]*rate.Limiter // client address -> failed sign-ins
}

// New returns the console's handler, for every path under Prefix.
func New(d Deps) http.Handler {
	if d.SessionTTL <= 0 {
		d.SessionTTL = 8 * time.Hour
	}
	if d.Poll <= 0 {
		d.Poll = 2 * time.Second
	}
	if d.Log == nil {
		d.Log = slog.New(slog.DiscardHandler)
	}
	c := &console{Deps: d, pages: mustParsePages(), failures: map[string]*rate.Limiter{}}
	c.tokens = service.NewTokens(d.Tokens, d.TokenHashes)
	assets, _ := fs.Sub(assetFS, "assets")
	mux := http.NewServeMux()
	mux.Handle("GET "+Prefix+"/assets/", http.StripPrefix(Prefix+"/assets/", cacheAssets(http.FileServerFS(assets))))
	mux.HandleFunc("GET "+Prefix+"/login", c.loginPage)
	mux.HandleFunc("POST "+Prefix+"/login", c.login)
	mux.HandleFunc("GET "+Prefix, func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, Prefix+"/", http.StatusSeeOther)
	})
	signed := func(pattern string, h func(http.ResponseWriter, *http.Request, *session)) {
		mux.HandleFunc(pattern, c.signedIn(h))
	}
	signed("POST "+Prefix+"/logout", c.logout)
	signed("GET "+Prefix+"/{$}", c.home)
	signed("GET "+Prefix+"/batches/{id}", c.batchPage)
	signed("GET "+Prefix+"/batches/{id}/live", c.batchLive)
	signed("GET "+Prefix+"/batches/{id}/items.csv", c.batchCSV)
	signed("POST "+Prefix+"/batches/{id}/cancel", c.batchCancel)
	signed("POST "+Prefix+"/batches/{id}/retry", c.batchRetry)
	signed("GET "+Prefix+"/distributions/{id}", c.distributionPage)
	signed("POST "+Prefix+"/distributions/{id}/cancel", c.distributionCancel)
	signed("POST "+Prefix+"/distributions/{id}/retry", c.distributionRetry)
	signed("GET "+Prefix+"/submit", c.submitPage)
	signed("POST "+Prefix+"/submit/preview", c.preview)
	signed("POST "+Prefix+"/submit", c.submit)
	signed("GET "+Prefix+"/account", c.accountPage)
	mux.HandleFunc(Prefix+"/", func(w http.ResponseWriter, r *http.Request) {
		s, _ := c.session(r)
		c.notFound(w, r, s)
	})
	return secure(mux)
}

// csp allows only the console's own scripts, styles and images: no inline
// script, no style attribute, no framing, forms only to itself.
const csp = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; " +
	"form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

// secure sets the security headers of every answer.
func secure(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", csp)
		h.Set("X-Frame-Options", "DENY")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "same-origin")
		h.Set("Cross-Origin-Opener-Policy", "same-origin")
		next.ServeHTTP(w, r)
	})
}

func cacheAssets(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "" || strings.HasSuffix(r.URL.Path, "/") { // no listings
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Cache-Control", "public, max-age=3600")
		next.ServeHTTP(w, r)
	})
}

// Failed sign-ins are limited per client address: a burst of 10, then one
// every 6 s.
const (
	loginBurst = 10
	loginEvery = 6 * time.Second
)

func clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

func (c *console) limiter(r *http.Request) *rate.Limiter {
	c.mu.Lock()
	defer c.mu.Unlock()
	ip := clientIP(r)
	l := c.failures[ip]
	if l == nil {
		if len(c.failures) > 10000 { // bounded: forget everyone rather than grow
			c.failures = map[string]*rate.Limiter{}
		}
		l = rate.NewLimiter(rate.Every(loginEvery), loginBurst)
		c.failures[ip] = l
	}
	return l
}

// loginAllowed reports whether the client may try to sign in now.
func (c *console) loginAllowed(r *http.Request) bool { return c.limiter(r).Tokens() >= 1 }

// loginFailed counts a failed sign-in of the client.
func (c *console) loginFailed(r *http.Request) { c.limiter(r).Allow() }

// fail renders the page of a use case's refusal, or a 500 page for any
// other error.
func (c *console) fail(w http.ResponseWriter, r *http.Request, s *session, err error) {
	if e, ok := service.AsError(err); ok {
		switch e.Code {
		case service.CodeNotFound:
			c.notFound(w, r, s)
			return
		case service.CodeUnavailable:
			c.errorPage(w, r, s, http.StatusServiceUnavailable, "Try again", e.Message)
			return
		}
		c.errorPage(w, r, s, http.StatusConflict, "Not done", e.Message)
		return
	}
	if errors.Is(err, context.Canceled) {
		return
	}
	c.Log.Error("console", "path", r.URL.Path, "err", err)
	c.errorPage(w, r, s, http.StatusInternalServerError, "Something went wrong", "The console could not answer; try again in a moment.")
}

func (c *console) notFound(w http.ResponseWriter, r *http.Request, s *session) {
	c.errorPage(w, r, s, http.StatusNotFound, "Not found", "There is nothing here for your team.")
}

func (c *console) errorPage(w http.ResponseWriter, r *http.Request, s *session, status int, title, msg string) {
	c.render(w, r, s, status, "error", &errorData{Title: title, Message: msg})
}

type errorData struct{ Title, Message string }
