package httpapi

import (
	"net"
	"sync"

	"github.com/labstack/echo/v4"
	"golang.org/x/time/rate"
)

// Failed authentications allowed per client address: authFailRate a
// second, in bursts of authFailBurst; beyond, 429 with Retry-After.
const (
	authFailRate   = 1
	authFailBurst  = 20
	authRetryAfter = 1
	// maxAuthAddrs bounds the addresses remembered; past it the table
	// starts afresh, so spoofed or many addresses cannot grow memory.
	maxAuthAddrs = 10000
)

// failureLimiter counts failed authentications per client address, so
// guessing tokens costs seconds, not microseconds, per guess.
type failureLimiter struct {
	mu    sync.Mutex
	addrs map[string]*rate.Limiter
}

func (f *failureLimiter) limiter(addr string) *rate.Limiter {
	if f.addrs == nil || len(f.addrs) >= maxAuthAddrs {
		f.addrs = map[string]*rate.Limiter{}
	}
	l := f.addrs[addr]
	if l == nil {
		l = rate.NewLimiter(authFailRate, authFailBurst)
		f.addrs[addr] = l
	}
	return l
}

// exhausted reports whether addr has no failure left to spend: it is then
// refused before its token is even compared.
func (f *failureLimiter) exhausted(addr string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	l, ok := f.addrs[addr]
	return ok && l.Tokens() < 1
}

// add spends one failure of addr.
func (f *failureLimiter) add(addr string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.limiter(addr).Allow()
}

// clientAddr is the peer's IP address: not X-Forwarded-For, which the
// client chooses (behind a proxy, the proxy's clients share its budget).
func clientAddr(c echo.Context) string {
	host, _, err := net.SplitHostPort(c.Request().RemoteAddr)
	if err != nil {
		return c.Request().RemoteAddr
	}
	return host
}
