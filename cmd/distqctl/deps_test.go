package main

import (
	"os/exec"
	"strings"
	"testing"
)

// TestDeps keeps distqctl a pure API client: it reaches the server only
// through the public client package, so it imports neither Echo nor any of
// distq's internal packages.
func TestDeps(t *testing.T) {
	t.Parallel()
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	deps := strings.Fields(string(out))
	usesClient := false
	for _, p := range deps {
		switch {
		case p == "github.com/distq/distq/client":
			usesClient = true
		case strings.HasPrefix(p, "github.com/distq/distq/internal/"), strings.HasPrefix(p, "github.com/labstack/"):
			t.Errorf("distqctl imports %s", p)
		}
	}
	if !usesClient {
		t.Errorf("distqctl does not import github.com/distq/distq/client; deps: %v", deps)
	}
}
