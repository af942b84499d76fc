package service

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"strings"

	"github.com/distq/distq/internal/distribution"
)

// A list cursor is opaque to callers: the last id of a page and a check
// over that id, the team and the filter the page was listed with. A cursor
// is therefore only good for the listing that gave it: another filter,
// another team, an edited id or an id the API never handed out is refused
// (CodeBadCursor) instead of silently listing from the start.
const cursorVersion = "c1"

func cursorCheck(team string, f distribution.Filter, id string) string {
	h := sha256.Sum256([]byte(strings.Join([]string{"distq-cursor", cursorVersion, team, string(f.State), f.BatchID, f.ProductKey, id}, "\x00")))
	return hex.EncodeToString(h[:12])
}

// encodeCursor returns the cursor that continues f's listing after id.
func encodeCursor(team string, f distribution.Filter, id string) string {
	if id == "" {
		return ""
	}
	return base64.RawURLEncoding.EncodeToString([]byte(cursorVersion + "." + id + "." + cursorCheck(team, f, id)))
}

// decodeCursor returns the last id a cursor from encodeCursor(team, f, …)
// carries, or CodeBadCursor.
func decodeCursor(team string, f distribution.Filter, cursor string) (string, error) {
	bad := errorf(CodeBadCursor, "cursor %q is not one this API returned for this listing", cursor)
	if len(cursor) > 200 {
		bad.Message = "cursor is not one this API returned for this listing"
		return "", bad
	}
	raw, err := base64.RawURLEncoding.DecodeString(cursor)
	if err != nil {
		return "", bad
	}
	parts := strings.Split(string(raw), ".")
	if len(parts) != 3 || parts[0] != cursorVersion || !distribution.ValidID(distribution.KindDistribution, parts[1]) ||
		parts[2] != cursorCheck(team, f, parts[1]) {
		return "", bad
	}
	return parts[1], nil
}
