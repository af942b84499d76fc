package webhook_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// The receiver of docs/WEBHOOKS.md ("Receiving events") compiles and passes
// go vet against the library version distq uses.
func TestReceiverInTheDocsCompiles(t *testing.T) {
	t.Parallel()
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command on PATH")
	}
	raw, err := os.ReadFile("../../docs/WEBHOOKS.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(raw), "## Receiving events")
	_, code, ok2 := strings.Cut(section, "```go\n")
	code, _, ok3 := strings.Cut(code, "```")
	if !ok || !ok2 || !ok3 || !strings.Contains(code, "wh.Verify(") {
		t.Fatal("no Go receiver using the verifier under \"## Receiving events\" in docs/WEBHOOKS.md")
	}
	// Inside the module (testdata is left out of ./...), so that it builds
	// against go.mod's version of the library.
	dir, err := os.MkdirTemp("testdata", "receiver-")
	if err != nil {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if dir, err = os.MkdirTemp("testdata", "receiver-"); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() { os.RemoveAll(dir); os.Remove("testdata") })
	if err := os.WriteFile(filepath.Join(dir, "main.go"), []byte(code), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(gobin, "vet", "./"+filepath.ToSlash(dir)).CombinedOutput()
	if err != nil {
		t.Fatalf("go vet of the documented receiver: %v\n%s", err, out)
	}
}
