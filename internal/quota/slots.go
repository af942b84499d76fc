package quota

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// AcquireSlot takes one of the account's remote job slots for holder (a
// distribution id) for lease (invariant Q2). Leases that expired are dropped
// first. A new holder gets a slot only if the unexpired leases plus the
// External count are below limit; a holder that already has one renews it to
// now + lease and always succeeds, so a retried acquire is idempotent. A
// holder that gets a slot is removed from the account's waiters.
//
// inUse is the number of slots in use after the call, unexpired leases plus
// External, to compare with limit. Errors wrap ErrInvalid for bad arguments,
// or come from Redis. Safe for concurrent use.
func (l *Limiter) AcquireSlot(ctx context.Context, uid, holder string, limit int, lease time.Duration) (ok bool, inUse int, err error) {
	return l.AcquireSlotToken(ctx, uid, holder, "", limit, lease)
}

// AcquireSlotToken is AcquireSlot for one run of holder, named by token
// (distq: distribution id + run): a holder's slot is held by the run that
// acquired (or pinned) it last, and ReleaseSlotToken frees it only for
// that run. A pinned slot stays pinned, and stays with the run that pinned
// it: a stale run's acquire never takes it over. Safe for concurrent use.
func (l *Limiter) AcquireSlotToken(ctx context.Context, uid, holder, token string, limit int, lease time.Duration) (ok bool, inUse int, err error) {
	if err := checkSlotArgs(uid, holder, lease); err != nil {
		return false, 0, fmt.Errorf("acquire slot: %w", err)
	}
	if limit < 1 {
		return false, 0, fmt.Errorf("acquire slot: limit %d: %w", limit, ErrInvalid)
	}
	res, err := acquireScript.Run(ctx, l.rdb,
		[]string{key(uid, kindSlots), key(uid, kindExternal), key(uid, kindWaiters), key(uid, kindSlotTok)},
		holder, limit, leaseMicros(lease), token,
	).Int64Slice()
	if err != nil {
		return false, 0, fmt.Errorf("acquire slot of %s for %s: %w", uid, holder, err)
	}
	if len(res) != 2 {
		return false, 0, fmt.Errorf("acquire slot of %s for %s: script answered %d values, want 2", uid, holder, len(res))
	}
	return res[0] == 1, int(res[1]), nil
}

// RenewSlot extends holder's lease on its slot to now + lease. held is false
// when holder had no unexpired lease (it lapsed, was released, or never
// existed); the slot may then belong to someone else, and holder must
// AcquireSlot again before creating a job. Safe for concurrent use.
func (l *Limiter) RenewSlot(ctx context.Context, uid, holder string, lease time.Duration) (held bool, err error) {
	if err := checkSlotArgs(uid, holder, lease); err != nil {
		return false, fmt.Errorf("renew slot: %w", err)
	}
	n, err := renewScript.Run(ctx, l.rdb, []string{key(uid, kindSlots)}, holder, leaseMicros(lease)).Int64()
	if err != nil {
		return false, fmt.Errorf("renew slot of %s for %s: %w", uid, holder, err)
	}
	return n == 1, nil
}

// PinSlot pins holder's slot for a remote job that exists or may exist
// (Q2, Q5): no lease expiry frees it, through a crashed worker's task
// recovery or a Redis outage; only ReleaseSlot (a final status, or proof
// that the record is terminal) or ReleaseSlotToken of the run holding it
// does. The pin is taken whatever the limit and also when the lease lapsed.
// A non-empty token makes that run the holder. It returns the slots in use
// and the account's pause epoch, read in the same step (see Grant.Stale).
// Safe for concurrent use.
func (l *Limiter) PinSlot(ctx context.Context, uid, holder, token string) (inUse int, epoch int64, err error) {
	if err := checkUID(uid); err != nil {
		return 0, 0, fmt.Errorf("pin slot: %w", err)
	}
	if holder == "" {
		return 0, 0, fmt.Errorf("pin slot: empty holder: %w", ErrInvalid)
	}
	res, err := pinScript.Run(ctx, l.rdb,
		[]string{key(uid, kindSlots), key(uid, kindExternal), key(uid, kindWaiters), key(uid, kindSlotTok), key(uid, kindEpoch)},
		holder, token).Int64Slice()
	if err != nil {
		return 0, 0, fmt.Errorf("pin slot of %s for %s: %w", uid, holder, err)
	}
	if len(res) != 2 {
		return 0, 0, fmt.Errorf("pin slot of %s for %s: script answered %d values, want 2", uid, holder, len(res))
	}
	return int(res[0]), res[1], nil
}

// ReleaseSlotToken frees holder's slot only if the run named token holds
// it (or no run is named), as ReleaseSlot does; a stale run of the holder
// never frees the live run's slot. nextWaiter is "" when nothing was freed.
// Safe for concurrent use.
func (l *Limiter) ReleaseSlotToken(ctx context.Context, uid, holder, token string) (nextWaiter string, err error) {
	if token == "" {
		return "", fmt.Errorf("release slot: empty token: %w", ErrInvalid)
	}
	return l.releaseSlot(ctx, uid, holder, token)
}

// ReleaseSlot frees holder's slot, if it has one, whatever run holds it
// and pinned or not, and pops the account's
// oldest waiter, returning its id ("" when none waits) so the caller can wake
// it promptly. The waiter is popped even if holder held no slot any more; a
// waiter woken that fails to acquire should AddWaiter again. Safe for
// concurrent use.
func (l *Limiter) ReleaseSlot(ctx context.Context, uid, holder string) (nextWaiter string, err error) {
	return l.releaseSlot(ctx, uid, holder, "")
}

func (l *Limiter) releaseSlot(ctx context.Context, uid, holder, token string) (nextWaiter string, err error) {
	next, _, err := l.release(ctx, uid, holder, token, 0, 0)
	return next, err
}

// HandSlot frees holder's slot as ReleaseSlotToken does (any run's when
// token is ""), pops the account's next waiter (priority waiters first, Q7)
// and, in the same step, leases it a slot for lease when the slots in use
// and External leave room below limit: the freed slot goes to that waiter,
// not to whichever task asks first, and the waiter's AcquireSlot finds it
// held. handed reports that; a waiter handed a slot it will not use (its
// distribution was canceled) must be released in turn. Safe for concurrent
// use.
func (l *Limiter) HandSlot(ctx context.Context, uid, holder, token string, limit int, lease time.Duration) (nextWaiter string, handed bool, err error) {
	if limit < 1 || lease <= 0 {
		return "", false, fmt.Errorf("hand slot: limit %d, lease %v: %w", limit, lease, ErrInvalid)
	}
	return l.release(ctx, uid, holder, token, limit, lease)
}

func (l *Limiter) release(ctx context.Context, uid, holder, token string, limit int, lease time.Duration) (string, bool, error) {
	if err := checkUID(uid); err != nil {
		return "", false, fmt.Errorf("release slot: %w", err)
	}
	if holder == "" {
		return "", false, fmt.Errorf("release slot: empty holder: %w", ErrInvalid)
	}
	leaseUS := int64(0)
	if lease > 0 {
		leaseUS = leaseMicros(lease)
	}
	res, err := releaseScript.Run(ctx, l.rdb,
		[]string{key(uid, kindSlots), key(uid, kindWaiters), key(uid, kindSlotTok), key(uid, kindExternal)},
		holder, token, limit, leaseUS).Slice()
	if err != nil {
		return "", false, fmt.Errorf("release slot of %s for %s: %w", uid, holder, err)
	}
	if len(res) != 2 {
		return "", false, fmt.Errorf("release slot of %s for %s: script answered %d values, want 2", uid, holder, len(res))
	}
	next, _ := res[0].(string)
	handed, _ := res[1].(int64)
	return next, handed == 1, nil
}

// Holders returns the unexpired leases and the pins of the account: holder
// -> lease expiry on the Redis clock (µs precision; a pin's is in the year
// 2255, see Pinned). Safe for concurrent use.
func (l *Limiter) Holders(ctx context.Context, uid string) (map[string]time.Time, error) {
	if err := checkUID(uid); err != nil {
		return nil, fmt.Errorf("holders: %w", err)
	}
	vals, err := holdersScript.Run(ctx, l.rdb, []string{key(uid, kindSlots)}).StringSlice()
	if err != nil {
		return nil, fmt.Errorf("holders of %s: %w", uid, err)
	}
	out := make(map[string]time.Time, len(vals)/2)
	for i := 0; i+1 < len(vals); i += 2 {
		us, err := strconv.ParseFloat(vals[i+1], 64)
		if err != nil {
			return nil, fmt.Errorf("holders of %s: lease of %s: %w", uid, vals[i], err)
		}
		out[vals[i]] = time.UnixMicro(int64(us))
	}
	return out, nil
}

// SetExternal records n remote jobs of the account made outside distq (seen
// by a reconciler in the remote job list); they count against the capacity
// of AcquireSlot. The count lapses after Options.ExternalTTL unless set
// again; 0 clears it. Safe for concurrent use.
func (l *Limiter) SetExternal(ctx context.Context, uid string, n int) error {
	if err := checkUID(uid); err != nil {
		return fmt.Errorf("set external: %w", err)
	}
	if n < 0 {
		return fmt.Errorf("set external: %d jobs: %w", n, ErrInvalid)
	}
	k := key(uid, kindExternal)
	var err error
	if n == 0 {
		err = l.rdb.Del(ctx, k).Err()
	} else {
		err = l.rdb.Set(ctx, k, n, l.opts.ExternalTTL).Err()
	}
	if err != nil {
		return fmt.Errorf("set external of %s: %w", uid, err)
	}
	return nil
}

// External returns the count last given to SetExternal, 0 when none is in
// force. Safe for concurrent use.
func (l *Limiter) External(ctx context.Context, uid string) (int, error) {
	if err := checkUID(uid); err != nil {
		return 0, fmt.Errorf("external: %w", err)
	}
	n, err := l.rdb.Get(ctx, key(uid, kindExternal)).Int()
	if isNil(err) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("external of %s: %w", uid, err)
	}
	return n, nil
}

// AddWaiter records that distribution id waits for a slot of the account.
// It is idempotent: a waiter added again keeps its first-seen place. The
// waiters are kept Options.WaiterTTL after the last AddWaiter. Safe for
// concurrent use.
func (l *Limiter) AddWaiter(ctx context.Context, uid, id string) error {
	return l.addWaiter(ctx, uid, id, false)
}

// AddPriorityWaiter is AddWaiter for a distribution served ahead of every
// ordinary waiter (a single submission, not a batch item: Q7); priority
// waiters keep their first-seen order among themselves.
func (l *Limiter) AddPriorityWaiter(ctx context.Context, uid, id string) error {
	return l.addWaiter(ctx, uid, id, true)
}

func (l *Limiter) addWaiter(ctx context.Context, uid, id string, priority bool) error {
	flag := "0"
	if priority {
		flag = "1"
	}
	if err := checkUID(uid); err != nil {
		return fmt.Errorf("add waiter: %w", err)
	}
	if id == "" {
		return fmt.Errorf("add waiter: empty id: %w", ErrInvalid)
	}
	err := addWaiterScript.Run(ctx, l.rdb, []string{key(uid, kindWaiters)}, id, leaseMicros(l.opts.WaiterTTL), flag).Err()
	if err != nil {
		return fmt.Errorf("add waiter %s of %s: %w", id, uid, err)
	}
	return nil
}

// RemoveWaiter removes id from the account's waiters (canceled, or served
// another way); removing an absent id does nothing. Safe for concurrent use.
func (l *Limiter) RemoveWaiter(ctx context.Context, uid, id string) error {
	if err := checkUID(uid); err != nil {
		return fmt.Errorf("remove waiter: %w", err)
	}
	if err := l.rdb.ZRem(ctx, key(uid, kindWaiters), id).Err(); err != nil {
		return fmt.Errorf("remove waiter %s of %s: %w", id, uid, err)
	}
	return nil
}

// Waiters returns how many distributions wait for a slot of the account.
// Safe for concurrent use.
func (l *Limiter) Waiters(ctx context.Context, uid string) (int, error) {
	if err := checkUID(uid); err != nil {
		return 0, fmt.Errorf("waiters: %w", err)
	}
	n, err := l.rdb.ZCard(ctx, key(uid, kindWaiters)).Result()
	if err != nil {
		return 0, fmt.Errorf("waiters of %s: %w", uid, err)
	}
	return int(n), nil
}

func checkSlotArgs(uid, holder string, lease time.Duration) error {
	if err := checkUID(uid); err != nil {
		return err
	}
	if holder == "" {
		return fmt.Errorf("empty holder: %w", ErrInvalid)
	}
	if lease <= 0 {
		return fmt.Errorf("lease %v: %w", lease, ErrInvalid)
	}
	return nil
}

// leaseMicros converts a positive duration to µs, rounding up so a lease
// shorter than 1 µs still lasts one.
func leaseMicros(d time.Duration) int64 { return max(micros(d+time.Microsecond-1), 1) }

func isNil(err error) bool { return errors.Is(err, redis.Nil) }

// Pinned reports whether a Holders expiry is a pin's.
func Pinned(expiry time.Time) bool { return expiry.UnixMicro() >= pinnedMicros }

// pinnedMicros is PINNED of marginlib.lua.
const pinnedMicros = 9_000_000_000_000_000
