package main

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	if os.Getenv("DEVSTACK_TEST_MAIN") == "1" {
		main() // the test binary playing the command, for TestInterruptExitsZero
		return
	}
	goleak.VerifyTestMain(m)
}

// syncBuffer is an output safe to read while run writes it.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// run prints the settings it took, no secret, and returns nil (exit 0) when
// its context ends, as on Ctrl-C.
func TestRunPrintsItsSettingsAndStopsCleanly(t *testing.T) {
	env := map[string]string{
		"DISTQ_HTTP_ADDR": "127.0.0.1:0", "DISTQ_METRICS_ADDR": "127.0.0.1:0", "ALISIM_ADDR": "127.0.0.1:0",
		"DISTQ_API_TOKENS": "team-a:token-aaaa-1,team-b:token-bbbb-2", "DISTQ_TEAM_RPS": "9",
		"DISTQ_ALIBABA_ENDPOINT": "https://iot.cn-shanghai.aliyuncs.com", "DISTQ_DEV_QUIET": "1",
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	out := &syncBuffer{}
	done := make(chan error, 1)
	go func() { done <- run(ctx, func(k string) string { return env[k] }, out) }()
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(out.String(), "Ctrl-C stops everything.") {
		select {
		case err := <-done:
			t.Fatalf("run: %v\n%s", err, out)
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("no banner: %s", out)
		}
	}
	banner := out.String()
	for _, want := range []string{
		"DISTQ_API_TOKENS=(teams team-a, team-b)", "DISTQ_TEAM_RPS=9", "9 requests/s each",
		"ignored:    DISTQ_ALIBABA_ENDPOINT=", "Bearer $TOKEN",
	} {
		if !strings.Contains(banner, want) {
			t.Errorf("banner lacks %q:\n%s", want, banner)
		}
	}
	if strings.Contains(banner, "token-aaaa-1") || strings.Contains(banner, "token-bbbb-2") {
		t.Errorf("the banner shows a token:\n%s", banner)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("run after Ctrl-C: %v", err)
	}
}

func TestRunRefusesABadSetting(t *testing.T) {
	for name, value := range map[string]string{"DISTQ_TEAM_RPS": "fast", "ALISIM_JOB_DURATION": "soon"} {
		env := map[string]string{name: value, "DISTQ_HTTP_ADDR": "127.0.0.1:0", "DISTQ_METRICS_ADDR": "127.0.0.1:0", "ALISIM_ADDR": "127.0.0.1:0"}
		err := run(context.Background(), func(k string) string { return env[k] }, &syncBuffer{})
		if err == nil || !strings.HasPrefix(err.Error(), name+":") {
			t.Errorf("%s=%q: %v, want an error naming it", name, value, err)
		}
	}
}

// Ctrl-C (SIGINT) on the running command stops it cleanly with exit status 0,
// so `make run` ends without an error.
func TestInterruptExitsZero(t *testing.T) {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "DEVSTACK_TEST_MAIN=1", "DISTQ_DEV_QUIET=1",
		"DISTQ_HTTP_ADDR=127.0.0.1:0", "DISTQ_METRICS_ADDR=127.0.0.1:0", "ALISIM_ADDR=127.0.0.1:0")
	out := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill() })
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(out.String(), "Ctrl-C stops everything.") {
		if time.Now().After(deadline) {
			t.Fatalf("no banner: %s", out)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("after SIGINT: %v\n%s", err, out)
	}
	if !strings.Contains(out.String(), "stopping…") {
		t.Errorf("no clean stop: %s", out)
	}
}
