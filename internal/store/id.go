package store

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"regexp"
	"time"
)

// IDs sort by creation time: a kind letter, the creation time in
// milliseconds as 12 hex digits, and 10 random hex digits. Indexes keep ids
// in lexical order, so a cursor is an id and the retention janitor trims by
// id range.

var idRE = regexp.MustCompile(`^[db]_[0-9a-f]{12}_[0-9a-f]{10}$`)

func newID(kind byte, now time.Time) string {
	var b [5]byte
	rand.Read(b[:])
	return fmt.Sprintf("%c_%012x_%s", kind, now.UnixMilli(), hex.EncodeToString(b[:]))
}

// NewDistributionID returns a new distribution id.
func NewDistributionID(now time.Time) string { return newID('d', now) }

// NewBatchID returns a new batch id.
func NewBatchID(now time.Time) string { return newID('b', now) }

// ValidID reports whether s has the shape of a distribution (kind 'd') or
// batch (kind 'b') id.
func ValidID(kind byte, s string) bool { return idRE.MatchString(s) && s[0] == kind }

// idFloor is the smallest id of its kind created at t, for trimming ranges.
func idFloor(kind byte, t time.Time) string { return fmt.Sprintf("%c_%012x_", kind, t.UnixMilli()) }
