package service_test

import (
	"crypto/sha256"
	"encoding/hex"
	"testing"

	"github.com/distq/distq/internal/service"
)

func TestTokens(t *testing.T) {
	t.Parallel()
	sum := sha256.Sum256([]byte("hashed-token-1"))
	tokens := service.NewTokens(map[string]string{"plain-token-1": "team-a"},
		map[string]string{hex.EncodeToString(sum[:]): "team-b", "not-hex": "team-c"})
	for _, tt := range []struct{ token, want string }{
		{"plain-token-1", "team-a"},
		{"hashed-token-1", "team-b"},
		{"not-hex", ""},
		{"", ""},
		{"plain-token-2", ""},
	} {
		if got := tokens.Team(tt.token); got != tt.want {
			t.Errorf("Team(%q) = %q, want %q", tt.token, got, tt.want)
		}
	}
	if got := tokens.TeamOfHash(hex.EncodeToString(sum[:])); got != "team-b" {
		t.Errorf("TeamOfHash(hash of a hashed token) = %q, want team-b", got)
	}
	if got := tokens.TeamOfHash("zz"); got != "" {
		t.Errorf("TeamOfHash(malformed) = %q, want none", got)
	}
}
