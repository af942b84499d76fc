package distribution

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"regexp"
	"time"
)

// IDs sort by creation time: a kind letter, the creation time in
// milliseconds as 12 hex digits, and 10 random hex digits. The store's
// indexes keep ids in lexical order, so a cursor is an id and the retention
// janitor trims by id range.

var idRE = regexp.MustCompile(`^[db]_[0-9a-f]{12}_[0-9a-f]{10}$`)

// Kinds of id.
const (
	KindDistribution byte = 'd'
	KindBatch        byte = 'b'
)

func newID(kind byte, now time.Time) string {
	var b [5]byte
	rand.Read(b[:])
	return fmt.Sprintf("%c_%012x_%s", kind, now.UnixMilli(), hex.EncodeToString(b[:]))
}

// NewID returns a new distribution id created at now.
func NewID(now time.Time) string { return newID(KindDistribution, now) }

// NewIDs returns n distribution ids created at now that sort in the order
// they are returned: a random start, then consecutive numbers. A batch's
// items get them in item order, so every listing of a batch (which sorts
// by id) follows the order of its items. Ids of one batch cannot collide
// with each other, and two batches of one millisecond collide only if
// their ranges overlap.
func NewIDs(now time.Time, n int) []string {
	var b [8]byte
	rand.Read(b[3:])
	space := uint64(1)<<40 - uint64(n)
	start := binary.BigEndian.Uint64(b[:]) % space
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("%c_%012x_%010x", KindDistribution, now.UnixMilli(), start+uint64(i))
	}
	return ids
}

// NewBatchID returns a new batch id created at now.
func NewBatchID(now time.Time) string { return newID(KindBatch, now) }

// ValidID reports whether s has the shape of an id of kind
// (KindDistribution or KindBatch).
func ValidID(kind byte, s string) bool { return idRE.MatchString(s) && s[0] == kind }

// IDFloor is the smallest id of its kind created at t: ids below it were
// created before t.
func IDFloor(kind byte, t time.Time) string { return fmt.Sprintf("%c_%012x_", kind, t.UnixMilli()) }
