package main

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
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
