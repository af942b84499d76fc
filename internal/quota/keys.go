package quota

import (
	"fmt"
	"strings"
)

// prefix starts every key this package writes.
const prefix = "distq:"

// kind names what a key holds. Every key of an account carries the account
// UID as its hash tag, so all the keys one script touches live in one hash
// slot and the scripts stay Redis Cluster safe.
type kind string

// The key layout (µs = microseconds since the Unix epoch, Redis server time):
//
//	distq:{uid}:rate:<action>    LIST   last N grant times in µs, newest first
//	distq:{uid}:margin:<action>  HASH   process id -> "lo hi late n expiry" (µs; n samples)
//	distq:{uid}:pause            STRING paused until, µs (expires at that instant)
//	distq:{uid}:slots            ZSET   holder -> lease expiry, µs (PINNED: no expiry)
//	distq:{uid}:slottok          HASH   holder -> token of the run holding its slot
//	distq:{uid}:epoch            STRING pause epoch, one more per Pause
//	distq:{uid}:external         STRING remote jobs made outside distq
//	distq:{uid}:waiters          ZSET   distribution id -> first-seen order, µs
//	distq:{uid}:fair:queue       ZSET   "team\0order\0id", all scores 0 (lex order)
//	distq:{uid}:fair:active      ZSET   team -> stride pass, teams with queued items
//	distq:{uid}:fair:pass        HASH   team -> pass when last active
//	distq:{uid}:fair:vt          STRING virtual time (pass of the last admission)
//	distq:{uid}:fair:adm         ZSET   admitted member -> admission expiry, µs
const (
	kindRate     kind = "rate"
	kindMargin   kind = "margin"
	kindPause    kind = "pause"
	kindSlots    kind = "slots"
	kindSlotTok  kind = "slottok"
	kindEpoch    kind = "epoch"
	kindExternal kind = "external"
	kindWaiters  kind = "waiters"
	kindFair     kind = "fair"
)

// key builds every Redis key of the package: distq:{uid}:kind, followed by
// :action for the per-action kinds (rate, margin). It is the only place a key
// is spelled.
func key(uid string, k kind, action ...string) string {
	s := prefix + "{" + uid + "}:" + string(k)
	for _, a := range action {
		s += ":" + a
	}
	return s
}

// checkUID refuses a UID that would break the key layout: an empty one, or
// one with a brace, which would change the hash tag.
func checkUID(uid string) error {
	if uid == "" || strings.ContainsAny(uid, "{}") {
		return fmt.Errorf("account uid %q: %w", uid, ErrInvalid)
	}
	return nil
}

// checkAction refuses an empty action name.
func checkAction(action string) error {
	if action == "" {
		return fmt.Errorf("empty action: %w", ErrInvalid)
	}
	return nil
}
