package config

import (
	"os/exec"
	"strings"
	"testing"
)

// config parses and validates; it builds no client, so it must not depend on
// the Alibaba client.
func TestConfigDoesNotImportTheAlibabaClient(t *testing.T) {
	t.Parallel()
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command on PATH")
	}
	out, err := exec.Command(gobin, "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	deps := strings.Fields(string(out))
	if len(deps) == 0 || deps[len(deps)-1] != "github.com/distq/distq/internal/config" {
		t.Fatalf("go list -deps gave no list ending with the package itself: %q", out)
	}
	for _, d := range deps {
		if d == "github.com/distq/distq/internal/alibaba" {
			t.Errorf("internal/config imports %s", d)
		}
		if strings.HasPrefix(d, "github.com/alibabacloud-go/") || strings.HasPrefix(d, "github.com/aliyun/") {
			t.Errorf("internal/config imports the Alibaba SDK: %s", d)
		}
	}
}
