package service

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
)

// Tokens tells which team a bearer token belongs to. Tokens are kept only as
// SHA-256 hashes and every lookup compares with every entry in constant
// time, whatever matches. The REST API and the console share it. It is safe
// for concurrent use (read-only after NewTokens).
type Tokens struct {
	entries []tokenEntry
}

type tokenEntry struct {
	hash [sha256.Size]byte
	team string
}

// NewTokens builds the table from plain tokens (token → team) and from hex
// SHA-256 hashes of tokens (hash → team); a malformed hash is skipped (the
// configuration has checked them).
func NewTokens(plain, hashes map[string]string) *Tokens {
	t := &Tokens{}
	for token, team := range plain {
		t.entries = append(t.entries, tokenEntry{hash: sha256.Sum256([]byte(token)), team: team})
	}
	for h, team := range hashes {
		e := tokenEntry{team: team}
		if n, err := hex.Decode(e.hash[:], []byte(h)); err == nil && n == len(e.hash) {
			t.entries = append(t.entries, e)
		}
	}
	return t
}

// Team returns the team of token, or "" when it is no team's.
func (t *Tokens) Team(token string) string { return t.teamOf(sha256.Sum256([]byte(token))) }

// TeamOfHash returns the team of the token whose hex SHA-256 is h, or "".
func (t *Tokens) TeamOfHash(h string) string {
	var sum [sha256.Size]byte
	if n, err := hex.Decode(sum[:], []byte(h)); err != nil || n != len(sum) {
		return ""
	}
	return t.teamOf(sum)
}

func (t *Tokens) teamOf(sum [sha256.Size]byte) string {
	team := ""
	for _, e := range t.entries { // every entry, whatever matches: constant time
		if subtle.ConstantTimeCompare(sum[:], e.hash[:]) == 1 {
			team = e.team
		}
	}
	return team
}
