package distribution

import (
	"crypto/rand"
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

// NewBatchID returns a new batch id created at now.
func NewBatchID(now time.Time) string { return newID(KindBatch, now) }

// ValidID reports whether s has the shape of an id of kind
// (KindDistribution or KindBatch).
func ValidID(kind byte, s string) bool { return idRE.MatchString(s) && s[0] == kind }

// IDFloor is the smallest id of its kind created at t: ids below it were
// created before t.
func IDFloor(kind byte, t time.Time) string { return fmt.Sprintf("%c_%012x_", kind, t.UnixMilli()) }
