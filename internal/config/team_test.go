package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Team names that could collide in Redis keys or forge log fields are
// refused, in DISTQ_API_TOKENS and in the token file.
func TestTeamNamesAreRestricted(t *testing.T) {
	for _, team := range []string{"ops", "team-a", "Team_B.2", strings.Repeat("t", 64)} {
		if _, err := parseTokens(team+":token-123456", "team"); err != nil {
			t.Errorf("team %q refused: %v", team, err)
		}
	}
	for _, team := range []string{"ops x", "ops\"x", "ops{x}", "équipe", strings.Repeat("t", 65), "ops/x"} {
		if _, err := parseTokens(team+":token-123456", "team"); err == nil {
			t.Errorf("team %q accepted in DISTQ_API_TOKENS", team)
		}
	}
	path := filepath.Join(t.TempDir(), "tokens")
	os.WriteFile(path, []byte("ops:x 6b6a4b8a2d1e1f1b1d8b9ac16ba3c6e1a6c7d1e4c9e8a1a1d2b3c4d5e6f70819\n"), 0o600)
	if _, err := tokenFile(path, "team"); err == nil || !strings.Contains(err.Error(), "line 1") {
		t.Errorf("team \"ops:x\" in the token file: %v, want refused naming the line", err)
	}
}
