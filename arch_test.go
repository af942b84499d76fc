package distq_test

import (
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/distq/distq"

// The layering of distq, proven on what each package really pulls in
// (go list -deps, transitive, tests excluded): the domain imports no other
// distq package (the device domain only the distribution domain), the use cases and the front doors (the REST API, the
// console) reach no adapter (the Redis store, the quota scripts, the queue,
// the Alibaba client, the operators' overrides in internal/control), so
// that every front door goes through internal/service and the rules of a
// distribution's life cannot leak back
// into a transport.
func TestLayering(t *testing.T) {
	t.Parallel()
	adapters := []string{
		module + "/internal/store", module + "/internal/alibaba", module + "/internal/quota",
		module + "/internal/queue", module + "/internal/alisim", module + "/internal/control",
		"github.com/redis/go-redis/v9", "github.com/hibiken/asynq", "github.com/alibabacloud-go/",
	}
	tests := []struct {
		pkg       string
		forbidden []string
	}{
		{pkg: "internal/distribution", forbidden: []string{module + "/"}},
		{pkg: "internal/devices", forbidden: append([]string{module + "/internal/service", module + "/internal/httpapi"}, adapters...)},
		{pkg: "internal/webhook", forbidden: append([]string{module + "/"}, adapters...)},
		{pkg: "internal/service", forbidden: append([]string{module + "/internal/httpapi", "github.com/labstack/echo"}, adapters...)},
		{pkg: "internal/httpapi", forbidden: adapters[:6]},
		{pkg: "internal/console", forbidden: append([]string{module + "/internal/httpapi", "github.com/labstack/echo"}, adapters...)},
	}
	for _, tt := range tests {
		t.Run(tt.pkg, func(t *testing.T) {
			t.Parallel()
			self := module + "/" + tt.pkg
			for _, dep := range deps(t, "./"+tt.pkg) {
				if dep == self {
					continue
				}
				for _, f := range tt.forbidden {
					if dep == f || strings.HasPrefix(dep, f+"/") || strings.HasSuffix(f, "/") && strings.HasPrefix(dep, f) {
						t.Errorf("%s depends on %s (forbidden: %s)", tt.pkg, dep, f)
					}
				}
			}
		})
	}
}

// deps lists the import paths pkg depends on, itself included.
func deps(t *testing.T, pkg string) []string {
	t.Helper()
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command on PATH")
	}
	out, err := exec.Command(gobin, "list", "-deps", "-f", "{{.ImportPath}}", pkg).Output()
	if err != nil {
		t.Fatalf("go list -deps %s: %v", pkg, err)
	}
	list := strings.Fields(string(out))
	if len(list) < 2 {
		t.Fatalf("go list -deps %s: %q, want the package and its dependencies", pkg, out)
	}
	return list
}
