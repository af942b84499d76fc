package main

import (
	"context"
	"errors"
	"flag"
	"io"
	"log/slog"
	"net/http"
	"os"
	"regexp"
	"strings"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func env(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func TestRunServesAndShutsDown(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var logs strings.Builder
	logger := slog.New(slog.NewTextHandler(&logs, nil))
	addrc := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, env(map[string]string{
			"ALISIM_ADDR":     "127.0.0.1:0",
			"ALISIM_ACCOUNTS": "42:ak:top-secret-value",
		}), logger, func(addr string) { addrc <- addr })
	}()
	var addr string
	select {
	case addr = <-addrc:
	case err := <-done:
		t.Fatalf("run: %v", err)
	}
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := client.Get("http://" + addr + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), "ok") {
		t.Errorf("healthz: %d %s", resp.StatusCode, body)
	}
	resp, err = client.Get("http://" + addr + "/?Action=QueryDeviceDistributeJob")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 400 {
		t.Errorf("unsigned call: %d", resp.StatusCode)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("run after cancel: %v", err)
	}
	if strings.Contains(logs.String(), "top-secret-value") {
		t.Errorf("a secret was logged: %s", logs.String())
	}
	if !strings.Contains(logs.String(), "alisim listening") {
		t.Errorf("no start-up line: %s", logs.String())
	}
}

func TestRunRejectsBadConfig(t *testing.T) {
	t.Parallel()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	for name, value := range map[string]string{
		"ALISIM_MAX_JOBS": "many",
		"ALISIM_ADDR":     "not-an-address",
	} {
		err := run(context.Background(), env(map[string]string{name: value}), logger, nil)
		var ce configError
		if !errors.As(err, &ce) || !strings.HasPrefix(err.Error(), name+":") {
			t.Errorf("%s=%q: error %v, want a configError naming it", name, value, err)
		}
	}
}

func TestHelpPrintsUsageAndStops(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{{"-h"}, {"--help"}, {"-help"}} {
		var stdout, stderr strings.Builder
		if err := parseArgs(args, &stdout, &stderr); !errors.Is(err, flag.ErrHelp) {
			t.Errorf("%v: %v, want flag.ErrHelp (exit 0)", args, err)
		}
		if !strings.HasPrefix(stdout.String(), "Usage: alisim") || stderr.Len() != 0 {
			t.Errorf("%v: stdout %q, stderr %q", args, stdout.String(), stderr.String())
		}
	}
	for _, args := range [][]string{{"-x"}, {"serve"}} {
		var stdout, stderr strings.Builder
		err := parseArgs(args, &stdout, &stderr)
		if err == nil || errors.Is(err, flag.ErrHelp) || !strings.Contains(stderr.String(), "Usage: alisim") || stdout.Len() != 0 {
			t.Errorf("%v: %v, stderr %q", args, err, stderr.String())
		}
	}
	if err := parseArgs(nil, io.Discard, io.Discard); err != nil {
		t.Errorf("no arguments: %v", err)
	}
}

// Every ALISIM_* variable the simulator reads is in the usage and in the
// README's configuration section.
func TestEverySettingIsDocumented(t *testing.T) {
	t.Parallel()
	read := func(path string) string {
		t.Helper()
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	src := read("../../internal/alisim/env.go") + read("main.go")
	readme := read("../../README.md")
	start := strings.Index(readme, "## Configuration")
	if start < 0 {
		t.Fatal("README: no Configuration section")
	}
	section := readme[start:]
	if end := strings.Index(section[3:], "\n## "); end >= 0 {
		section = section[:end+3]
	}
	names := regexp.MustCompile(`"(ALISIM_[A-Z_]+)"`).FindAllStringSubmatch(src, -1)
	if len(names) < 10 {
		t.Fatalf("found only %d ALISIM_ settings in the sources", len(names))
	}
	seen := map[string]bool{}
	for _, m := range names {
		if seen[m[1]] {
			continue
		}
		seen[m[1]] = true
		if !strings.Contains(usage, m[1]) {
			t.Errorf("alisim -h does not document %s", m[1])
		}
		if !strings.Contains(section, "`"+m[1]+"`") {
			t.Errorf("the README's configuration section does not document %s", m[1])
		}
	}
}
