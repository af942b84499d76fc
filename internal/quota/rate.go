package quota

import (
	"cmp"
	"context"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// Reservation is the answer of Reserve.
type Reservation struct {
	// OK reports whether a grant was reserved. When false nothing was
	// recorded, and Wait and At say when the grant would have been.
	OK bool
	// Wait is the time from the reservation to the grant, measured on the
	// Redis server's clock; 0 when the call may go at once.
	Wait time.Duration
	// At is the grant instant on the Redis server's clock (µs precision).
	// Compare it with other grants, not with the local clock.
	At time.Time
	// Margin is the safety margin the grant was computed with.
	Margin time.Duration
	// Epoch is the account's pause epoch when the grant was made: a Pause
	// after it raises the epoch, and the grant is then stale.
	Epoch int64
	// Allow is the part of Margin left for the delay between the grant and
	// the call's send (see ReserveGrant): the margin less the spread of the
	// delays after the send.
	Allow time.Duration
}

// Reserve reserves the next call of action for the account uid under a limit
// of perSecond calls per 1 s sliding window (invariant Q1), in one Lua script
// on Redis server time, never the caller's clock.
//
// The grant is the latest of: now, the end of the account's Pause, the newest
// grant so far, and the oldest of the last perSecond grants + 1 s + margin,
// where margin is the shared estimate described at ObserveLatency. Grants
// never go backwards, so at most perSecond grants fall in any window of
// 1 s + margin, across any number of processes; calls sent at their grants
// and delayed by less than margin relative to one another never exceed
// perSecond in any 1 s window at the endpoint. With a backlog the limit is
// used at 1 ÷ (1 + margin/1s).
//
// If the grant is more than maxWait away, nothing is reserved and the
// Reservation has OK false with the Wait it would have had. maxWait 0 takes
// only an immediate grant.
//
// The caller should send its call at the grant (Wait does the sleeping). A
// reserved grant that is never used costs one call of capacity, not safety.
// Errors wrap ErrInvalid for bad arguments, or come from Redis. Safe for
// concurrent use.
func (l *Limiter) Reserve(ctx context.Context, uid, action string, perSecond int, maxWait time.Duration) (Reservation, error) {
	if err := checkUID(uid); err != nil {
		return Reservation{}, fmt.Errorf("reserve: %w", err)
	}
	if err := checkAction(action); err != nil {
		return Reservation{}, fmt.Errorf("reserve: %w", err)
	}
	if perSecond < 1 {
		return Reservation{}, fmt.Errorf("reserve %s: %d per second: %w", action, perSecond, ErrInvalid)
	}
	if maxWait < 0 {
		return Reservation{}, fmt.Errorf("reserve %s: max wait %v: %w", action, maxWait, ErrInvalid)
	}
	o := l.opts
	res, err := reserveScript.Run(ctx, l.rdb,
		[]string{key(uid, kindRate, action), key(uid, kindMargin, action), key(uid, kindPause), key(uid, kindEpoch)},
		perSecond, micros(maxWait), micros(o.MinMargin), micros(o.MaxMargin), micros(o.InitialMargin), o.MinSamples,
	).Int64Slice()
	if err != nil {
		return Reservation{}, fmt.Errorf("reserve %s for %s: %w", action, uid, err)
	}
	if len(res) != 6 {
		return Reservation{}, fmt.Errorf("reserve %s for %s: script answered %d values, want 6", action, uid, len(res))
	}
	return Reservation{OK: res[0] == 1, Wait: fromMicros(res[1]), At: time.UnixMicro(res[2]),
		Margin: fromMicros(res[3]), Epoch: res[4], Allow: fromMicros(res[5])}, nil
}

// Wait reserves the next call of action for uid, as Reserve does, and sleeps
// until the grant. It returns how long it took on the local clock (the
// Redis round trip included), or a *TooLongError (nothing reserved) when the
// grant is more than maxWait away.
//
// When ctx ends during the sleep, Wait returns the time spent and an error
// wrapping ctx.Err(); the grant stays reserved and unused.
//
// Wait also records how much later than planned it woke (Redis round trip and
// timer lateness); that delay is part of the spread the margin must cover and
// is added to this process's estimate (see ObserveLatency). Safe for
// concurrent use.
func (l *Limiter) Wait(ctx context.Context, uid, action string, perSecond int, maxWait time.Duration) (time.Duration, error) {
	g, err := l.WaitGrant(ctx, uid, action, perSecond, maxWait)
	return g.Waited, err
}

// Grant is a rate grant: one that WaitGrant slept until, or one that
// ReserveGrant reserved for the caller to sleep until (Grant.Sleep).
type Grant struct {
	// At is the grant instant on the Redis clock (see Reservation.At).
	At time.Time
	// Due is the grant instant on the local monotonic clock, taken no later
	// than the grant: from the offset between the server's clock and this
	// process's that the recent round trips bound (for WaitGrant, the
	// start of the reservation plus its wait).
	Due time.Time
	// Local is when the sleep ended, on the local monotonic clock (zero
	// for a grant of ReserveGrant).
	Local time.Time
	// wake is the grant instant on the local clock taken no earlier than
	// the grant (the other end of the offset's bounds). Grant.Sleep sleeps
	// until it, so a call never leaves before its grant.
	wake time.Time
	// Waited is how long the reservation and the sleep took.
	Waited time.Duration
	// Margin, Epoch and Allow are those of the Reservation.
	Margin time.Duration
	Epoch  int64
	Allow  time.Duration
}

// Stale reports whether the grant may no longer be used for a call going
// out now: more than its margin passed since it came (a CPU stall or a slow
// write between grant and send would bunch this call with later ones), or
// the account was paused since (epoch is the current pause epoch). A stale
// grant must be reserved again.
func (g Grant) Stale(epoch int64) bool {
	return time.Since(g.Local) > g.Margin || epoch != g.Epoch
}

// WaitGrant is Wait, returning the Grant. Safe for concurrent use.
func (l *Limiter) WaitGrant(ctx context.Context, uid, action string, perSecond int, maxWait time.Duration) (Grant, error) {
	r, start, _, err := l.reserveTimed(ctx, uid, action, perSecond, maxWait)
	if err != nil {
		return Grant{Waited: time.Since(start)}, err
	}
	if r.Wait > 0 {
		t := time.NewTimer(r.Wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return Grant{Waited: time.Since(start)}, fmt.Errorf("wait for %s grant: %w", action, ctx.Err())
		case <-t.C:
		}
	}
	now := time.Now()
	waited := now.Sub(start)
	// start + r.Wait is no earlier than the grant on the local clock (the
	// server's "now" came after start), so the excess bounds the lateness.
	l.observeLateness(uid, action, waited-r.Wait)
	return Grant{At: r.At, Due: start.Add(r.Wait), wake: now, Local: now, Waited: waited,
		Margin: r.Margin, Epoch: r.Epoch, Allow: r.Allow}, nil
}

// ReserveGrant reserves the next call of action for uid, as Reserve does,
// without sleeping, for a caller that prepares its call before the grant
// comes: it sleeps with Grant.Sleep, checks Grant.Overdue right before the
// request leaves, and reports that delay with ObserveSend and the rest of
// the call with ObserveLatency (from the call's start).
//
// This is how a call keeps the margin small: the spread the margin covers
// is then that of the delays after the send (the network, the endpoint)
// plus Allow, the longest a call may leave after its grant. Any two calls
// reserved N apart reach the endpoint at most Allow + that spread = Margin
// out of step, whatever stalled the caller before the send, since a call
// that would leave later than Allow after its grant is given back
// (CancelGrant) and reserved again instead.
//
// A grant further than maxWait away returns a *TooLongError (nothing
// reserved). Safe for concurrent use.
func (l *Limiter) ReserveGrant(ctx context.Context, uid, action string, perSecond int, maxWait time.Duration) (Grant, error) {
	r, start, b, err := l.reserveTimed(ctx, uid, action, perSecond, maxWait)
	if err != nil {
		return Grant{Waited: time.Since(start)}, err
	}
	end := b.end
	due, wake := l.localOf(r.At.UnixMicro(), b.lo, b.hi)
	return Grant{At: r.At, Due: due, wake: wake, Waited: end.Sub(start),
		Margin: r.Margin, Epoch: r.Epoch, Allow: r.Allow}, nil
}

// roundTrip is what reserveTimed learned of a Reserve's round trip: when
// it ended on the local clock, and the account's clock offset bounds.
type roundTrip struct {
	end    time.Time
	lo, hi int64
}

// reserveTimed is Reserve for WaitGrant and ReserveGrant: it times the
// round trip from start (the local clock) and feeds it to the clock
// offset (see offset); a grant beyond maxWait is a *TooLongError.
func (l *Limiter) reserveTimed(ctx context.Context, uid, action string, perSecond int, maxWait time.Duration) (r Reservation, start time.Time, b roundTrip, err error) {
	start = time.Now()
	r, err = l.Reserve(ctx, uid, action, perSecond, maxWait)
	if err != nil {
		return r, start, b, err
	}
	if !r.OK {
		return r, start, b, &TooLongError{Wait: r.Wait}
	}
	b.end = time.Now()
	b.lo, b.hi = l.offset(uid, start, b.end, r.At.UnixMicro()-micros(r.Wait))
	return r, start, b, nil
}

// Sleep sleeps until lead before the grant (not at all when that has
// passed), or until ctx ends (its error is returned; the grant stays
// reserved and unused). With lead 0 it returns no earlier than the grant.
func (g Grant) Sleep(ctx context.Context, lead time.Duration) error {
	d := time.Until(cmp.Or(g.wake, g.Due).Add(-lead))
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// Overdue reports whether a call of this grant leaving now would leave
// later than its Allow after the grant, or after a Pause (epoch is the
// current pause epoch), and how long after the grant that is. An overdue
// grant must not be used: give it back with CancelGrant and reserve again.
func (g Grant) Overdue(epoch int64) (bool, time.Duration) {
	late := time.Since(g.Due)
	return late > g.Allow || epoch != g.Epoch, late
}

// MoveGrant moves a grant of ReserveGrant whose call is overdue (see
// Overdue) and has not left to now, on the Redis clock, and returns it with
// the current margin and allowance: the call may then leave at once. A
// grant moves only while it is among the perSecond newest (no later grant
// was reserved counting on it), no pause came since it was made, and it
// was not given back; otherwise moved is false and nothing changed (give
// it back with CancelGrant and reserve again). Safe for concurrent use.
//
// A stall before the send then costs the rate only its own length, not the
// call's place: a grant given back is reserved again behind every grant
// taken meanwhile.
func (l *Limiter) MoveGrant(ctx context.Context, uid, action string, perSecond int, g Grant) (Grant, bool, error) {
	if err := checkUID(uid); err != nil {
		return g, false, fmt.Errorf("move grant: %w", err)
	}
	if err := checkAction(action); err != nil {
		return g, false, fmt.Errorf("move grant: %w", err)
	}
	if perSecond < 1 {
		return g, false, fmt.Errorf("move grant of %s: %d per second: %w", action, perSecond, ErrInvalid)
	}
	if g.At.IsZero() {
		return g, false, nil
	}
	o := l.opts
	start := time.Now()
	res, err := moveScript.Run(ctx, l.rdb,
		[]string{key(uid, kindRate, action), key(uid, kindMargin, action), key(uid, kindPause), key(uid, kindEpoch)},
		perSecond, g.At.UnixMicro(), g.Epoch, micros(o.MinMargin), micros(o.MaxMargin), micros(o.InitialMargin), o.MinSamples,
	).Int64Slice()
	if err != nil {
		return g, false, fmt.Errorf("move grant of %s for %s: %w", action, uid, err)
	}
	if len(res) != 6 {
		return g, false, fmt.Errorf("move grant of %s for %s: script answered %d values, want 6", action, uid, len(res))
	}
	if res[0] != 1 {
		return g, false, nil
	}
	end := time.Now()
	// The grant is the server's now (plus the wait of a grant not due yet):
	// Sleep waits until it has passed on the local clock.
	lo, hi := l.offset(uid, start, end, res[1]-res[5])
	due, wake := l.localOf(res[1], lo, hi)
	return Grant{At: time.UnixMicro(res[1]), Due: due, wake: wake, Waited: g.Waited + end.Sub(start),
		Margin: fromMicros(res[2]), Epoch: res[3], Allow: fromMicros(res[4])}, true, nil
}

// ObserveSend reports how long after its grant (Grant.Overdue's duration) a
// call of ReserveGrant was ready to leave, before any MoveGrant. These
// delays are the late term of the margin (see ObserveLatency) in place of
// WaitGrant's lateness, at the SendQuantile (0.5) and at least MinMargin:
// the allowance covers the usual delay, and calls stalled longer move their
// grants (MoveGrant) instead of widening every window. Safe for concurrent
// use.
func (l *Limiter) ObserveSend(uid, action string, d time.Duration) {
	if checkUID(uid) != nil || checkAction(action) != nil {
		return
	}
	now := time.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.seriesOf(uid, action)
	s.send = true
	s.late = l.push(s.late, sample{now, max(d, 0)}, now)
}

// CancelGrant gives back a grant whose call was never sent (it went stale
// first), so it costs no capacity: it is removed from the account's recent
// grants. Call it only after the grant's time (Wait returned) and only for
// a call that did not go out: later grants are then still no earlier than
// it, so every call that was sent stays within the limit. Safe for
// concurrent use.
func (l *Limiter) CancelGrant(ctx context.Context, uid, action string, g Grant) error {
	if err := checkUID(uid); err != nil {
		return fmt.Errorf("cancel grant: %w", err)
	}
	if err := checkAction(action); err != nil {
		return fmt.Errorf("cancel grant: %w", err)
	}
	if g.At.IsZero() {
		return nil
	}
	if err := l.rdb.LRem(ctx, key(uid, kindRate, action), 1, g.At.UnixMicro()).Err(); err != nil {
		return fmt.Errorf("cancel grant of %s for %s: %w", action, uid, err)
	}
	return nil
}

// Epoch returns the account's pause epoch (see Grant.Stale). Safe for
// concurrent use.
func (l *Limiter) Epoch(ctx context.Context, uid string) (int64, error) {
	if err := checkUID(uid); err != nil {
		return 0, fmt.Errorf("epoch: %w", err)
	}
	n, err := l.rdb.Get(ctx, key(uid, kindEpoch)).Int64()
	if isNil(err) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("epoch of %s: %w", uid, err)
	}
	return n, nil
}

// Pause makes every Reserve of the account uid, for every action, grant
// nothing before now + d (Redis time): the shared back-off after a Throttling
// answer (invariant Q4). It extends a pause in force, never shortens it; d <= 0
// does nothing. Safe for concurrent use.
func (l *Limiter) Pause(ctx context.Context, uid string, d time.Duration) error {
	if err := checkUID(uid); err != nil {
		return fmt.Errorf("pause: %w", err)
	}
	if d <= 0 {
		return nil
	}
	// Round up so a sub-µs pause still pauses.
	us := max(micros(d+time.Microsecond-1), 1)
	if err := pauseScript.Run(ctx, l.rdb, []string{key(uid, kindPause), key(uid, kindEpoch)}, us).Err(); err != nil {
		return fmt.Errorf("pause %s: %w", uid, err)
	}
	return nil
}

// PausedUntil returns the end of the account's pause on the Redis clock, or
// the zero time when none is in force. Safe for concurrent use.
func (l *Limiter) PausedUntil(ctx context.Context, uid string) (time.Time, error) {
	if err := checkUID(uid); err != nil {
		return time.Time{}, fmt.Errorf("paused until: %w", err)
	}
	// The key expires at the pause end, but compare with the server clock
	// too: a Redis whose expiry lags (miniredis in the dev stack) still answers right.
	var now *redis.TimeCmd
	var get *redis.StringCmd
	_, err := l.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		now = p.Time(ctx)
		get = p.Get(ctx, key(uid, kindPause))
		return nil
	})
	if err != nil && !isNil(err) {
		return time.Time{}, fmt.Errorf("paused until %s: %w", uid, err)
	}
	us, err := get.Int64()
	if isNil(err) {
		return time.Time{}, nil
	}
	if err != nil {
		return time.Time{}, fmt.Errorf("paused until %s: %w", uid, err)
	}
	until := time.UnixMicro(us)
	if !until.After(now.Val()) {
		return time.Time{}, nil
	}
	return until, nil
}
