// Package quota keeps distq inside the Alibaba Cloud account quotas, across
// every worker process and replica, with state shared in Redis.
//
// It exists because asynq's rate-limiting pattern (a golang.org/x/time/rate
// limiter in each process, with the task bounced when the limiter says no)
// cannot hold a per-account limit once more than one process calls the API:
// each process sees only its own calls, so three workers send three times the
// rate, and a bounced task comes back only after asynq's whole-second retry
// delay and 5 s forwarder tick. Measured against the simulator, that pattern
// used 17–19% of the limit and still drew 44–52 Throttling answers per 40
// calls. Here instead every decision is one Lua script on Redis server time:
//
//   - Rate (invariant Q1): Reserve and Wait grant calls of one (account,
//     action) so that at most N grants fall in any window of 1 s + margin,
//     whatever the number of processes; the caller sleeps until its grant.
//   - Margin: the margin covers the spread of delays between a grant and the
//     call's arrival at the endpoint. ObserveLatency measures it, and every
//     process of the account shares the estimate (see ObserveLatency).
//   - Back-off (Q4): Pause makes every worker of an account wait together
//     after a Throttling answer.
//   - Job slots (Q2): AcquireSlot, RenewSlot and ReleaseSlot lease the
//     account's remote job slots; SetExternal counts jobs made outside distq;
//     AddWaiter and ReleaseSlot keep the queue of distributions waiting for one.
//
// Keys (see keys.go) are distq:{uid}:…, so each script touches one hash slot
// and works on Redis Cluster. Every key expires on its own once idle, but no
// decision depends on key expiry: leases, pauses and margin entries carry
// their end in their value and are compared with TIME, so the package also
// runs on a Redis whose expiry lags the clock (miniredis in the dev stack).
// It needs Redis 6.2 or later (SET PXAT, ZRANGE BYSCORE).
package quota

import (
	"cmp"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	_ "embed"

	"github.com/redis/go-redis/v9"
)

// ErrInvalid is wrapped by the errors returned for an invalid argument: an
// empty or brace-holding account UID, an empty action or holder, a rate, limit
// or lease that is not positive, a negative maximum wait or external count.
var ErrInvalid = errors.New("quota: invalid argument")

// TooLongError is returned by Wait when the grant would come later than the
// caller's maximum wait. Nothing was reserved.
type TooLongError struct {
	// Wait is how long the caller would have had to wait.
	Wait time.Duration
}

func (e *TooLongError) Error() string {
	return fmt.Sprintf("quota: next grant is %v away, over the maximum wait", e.Wait)
}

// Options configure a Limiter. The zero value of every field selects its default.
type Options struct {
	// MinMargin is the floor of the safety margin added to each 1 s window.
	// Default 5ms.
	MinMargin time.Duration
	// MaxMargin is the ceiling of the safety margin. Default 200ms. A
	// MaxMargin below MinMargin is raised to MinMargin.
	MaxMargin time.Duration
	// InitialMargin is the margin used while no process has a live latency
	// estimate for the (account, action), e.g. on a fresh start, and the
	// floor of the margin while the live estimates hold fewer than
	// MinSamples samples. Default 50ms: enough for a real network's spread,
	// and it lasts only until MinSamples calls are measured. Clamped to
	// [MinMargin, MaxMargin].
	InitialMargin time.Duration
	// MinSamples is how many samples the live estimates must hold before
	// the margin may fall below InitialMargin: the spread of two or three
	// samples can be any fraction of the real one, and that of 10 is below
	// 0.8 of it one time in four. From MinSamples/2 samples on, the floor is
	// a 99% bound on the spread instead when that is less (a loopback's
	// 1 ms spread is not held at 50 ms for 20 calls). Default 20.
	MinSamples int
	// MarginTTL is how long a process's published estimate counts after its
	// last refresh, so a process that stopped calling (or died) stops holding
	// the margin. Default 30s.
	MarginTTL time.Duration
	// LatencyWindow is the most latency samples a process keeps per
	// (account, action). Default 256.
	LatencyWindow int
	// LatencyMaxAge drops samples older than this, so the margin falls when
	// the network calms down. Default 60s.
	LatencyMaxAge time.Duration
	// LatencyQuantile is the quantile taken as the high end of the delays,
	// in (0, 1]. Default 0.99.
	LatencyQuantile float64
	// SendQuantile is the quantile of the delays between grants and sends
	// (ObserveSend) taken as the late term of the margin, in (0, 1], with
	// MinMargin as its floor: the send allowance. Calls later than it move
	// their grants (MoveGrant), which costs the rate their delay once,
	// where the allowance costs it in every window. Default 0.5.
	SendQuantile float64
	// ExternalTTL is how long a SetExternal count stays without being set
	// again. Default 1h; a reconciler refreshes it much more often.
	ExternalTTL time.Duration
	// WaiterTTL is how long the waiters of an account are kept after the
	// last AddWaiter. Default 24h.
	WaiterTTL time.Duration
	// ID names this process in the shared margin estimates. Default
	// hostname-pid-random, unique per Limiter.
	ID string
}

func (o Options) withDefaults() Options {
	o.MinMargin = cmp.Or(o.MinMargin, 5*time.Millisecond)
	o.MaxMargin = max(cmp.Or(o.MaxMargin, 200*time.Millisecond), o.MinMargin)
	o.InitialMargin = min(max(cmp.Or(o.InitialMargin, 50*time.Millisecond), o.MinMargin), o.MaxMargin)
	o.MinSamples = max(cmp.Or(o.MinSamples, 20), 2)
	o.MarginTTL = cmp.Or(o.MarginTTL, 30*time.Second)
	o.LatencyWindow = max(cmp.Or(o.LatencyWindow, 256), 2)
	o.LatencyMaxAge = cmp.Or(o.LatencyMaxAge, 60*time.Second)
	if !(o.LatencyQuantile > 0 && o.LatencyQuantile <= 1) {
		o.LatencyQuantile = 0.99
	}
	if !(o.SendQuantile > 0 && o.SendQuantile <= 1) {
		o.SendQuantile = 0.5
	}
	o.ExternalTTL = cmp.Or(o.ExternalTTL, time.Hour)
	o.WaiterTTL = cmp.Or(o.WaiterTTL, 24*time.Hour)
	if o.ID == "" {
		host, _ := os.Hostname()
		var b [4]byte
		_, _ = rand.Read(b[:]) // never fails (crypto/rand.Read panics instead)
		o.ID = fmt.Sprintf("%s-%d-%s", cmp.Or(host, "host"), os.Getpid(), hex.EncodeToString(b[:]))
	}
	return o
}

// Limiter hands out rate grants and job slots from state kept in Redis. It
// is safe for concurrent use by many goroutines, and any number of Limiters,
// in any number of processes, may share one Redis: they see the same quotas.
type Limiter struct {
	rdb  redis.UniversalClient
	opts Options

	mu     sync.Mutex
	series map[seriesKey]*series // latency samples of this process
	// clocks bound, per account, the offset of its Redis server's clock
	// (see offset); base is the origin of the local monotonic clock.
	clocks map[string][]clockSample
	base   time.Time
}

// New returns a Limiter on rdb. rdb may be a Cluster client: every script
// touches keys of one account only, which share a hash slot.
func New(rdb redis.UniversalClient, opts Options) *Limiter {
	return &Limiter{rdb: rdb, opts: opts.withDefaults(), series: map[seriesKey]*series{},
		clocks: map[string][]clockSample{}, base: time.Now()}
}

//go:embed marginlib.lua
var libLua string

// script builds a script from the shared library and its body.
func script(body string) *redis.Script { return redis.NewScript(libLua + "\n" + body) }

var (
	//go:embed reserve.lua
	reserveLua    string
	reserveScript = script(reserveLua)
	//go:embed move.lua
	moveLua    string
	moveScript = script(moveLua)
	//go:embed margin.lua
	marginLua    string
	marginScript = script(marginLua)
	//go:embed observe.lua
	observeLua    string
	observeScript = script(observeLua)
	//go:embed pause.lua
	pauseLua    string
	pauseScript = script(pauseLua)
	//go:embed acquire.lua
	acquireLua    string
	acquireScript = script(acquireLua)
	//go:embed pin.lua
	pinLua    string
	pinScript = script(pinLua)
	//go:embed renew.lua
	renewLua    string
	renewScript = script(renewLua)
	//go:embed release.lua
	releaseLua    string
	releaseScript = script(releaseLua)
	//go:embed holders.lua
	holdersLua    string
	holdersScript = script(holdersLua)
	//go:embed addwaiter.lua
	addWaiterLua    string
	addWaiterScript = script(addWaiterLua)
)

// micros converts a duration to whole microseconds, the unit of every script.
func micros(d time.Duration) int64 { return d.Microseconds() }

// fromMicros converts microseconds from a script to a duration.
func fromMicros(us int64) time.Duration { return time.Duration(us) * time.Microsecond }
