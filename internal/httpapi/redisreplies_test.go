package httpapi_test

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/redis/go-redis/v9"
)

// fakeRedis serves the Redis protocol and answers every command with the
// error reply reply (a HELLO or CLIENT with "unknown command", so that
// go-redis speaks RESP2 and proceeds to the command). It stops when t ends.
func fakeRedis(t *testing.T, reply string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	conns := map[net.Conn]bool{}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns[c] = true
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				r := bufio.NewReader(c)
				for {
					args, err := readCommand(r)
					if err != nil {
						return
					}
					answer := "-" + reply + "\r\n"
					if cmd := strings.ToUpper(args[0]); cmd == "HELLO" || cmd == "CLIENT" {
						answer = "-ERR unknown command '" + args[0] + "'\r\n"
					}
					if _, err := io.WriteString(c, answer); err != nil {
						return
					}
				}
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return ln.Addr().String()
}

// readCommand reads one command: an array of bulk strings.
func readCommand(r *bufio.Reader) ([]string, error) {
	line, err := r.ReadString('\n')
	if err != nil {
		return nil, err
	}
	if !strings.HasPrefix(line, "*") {
		return nil, errors.New("not an array: " + line)
	}
	n, err := strconv.Atoi(strings.TrimSpace(line[1:]))
	if err != nil || n < 1 {
		return nil, errors.New("bad array: " + line)
	}
	args := make([]string, n)
	for i := range args {
		hdr, err := r.ReadString('\n')
		if err != nil {
			return nil, err
		}
		size, err := strconv.Atoi(strings.TrimSpace(strings.TrimPrefix(hdr, "$")))
		if err != nil {
			return nil, err
		}
		buf := make([]byte, size+2)
		if _, err := io.ReadFull(r, buf); err != nil {
			return nil, err
		}
		args[i] = string(buf[:size])
	}
	return args, nil
}

// A Redis that answers but cannot serve — out of memory, a read-only
// replica, loading its data, without its master — makes the api answer 503
// unavailable, never 500: the error replies are classified by type.
func TestRedisErrorRepliesAreUnavailable(t *testing.T) {
	t.Parallel()
	replies := map[string]string{
		"out of memory": "OOM command not allowed when used memory > 'maxmemory'.",
		"read-only":     "READONLY You can't write against a read only replica.",
		"loading":       "LOADING Redis is loading the dataset in memory",
		"master down":   "MASTERDOWN Link with MASTER is down and replica-serve-stale-data is set to 'no'.",
	}
	for name, reply := range replies {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			addr := fakeRedis(t, reply)
			a := newAPI(t, apiOptions{redis: &redis.Options{Addr: addr, MaxRetries: -1}})
			ctx := context.Background()
			for _, r := range []request{
				{method: "POST", path: "/v1/distributions", body: []byte(`{"product_key":"a1P","source_instance_id":"iotx-a","target_instance_id":"iotx-b"}`)},
				{method: "POST", path: "/v1/distributions", header: map[string]string{"Idempotency-Key": "k1"},
					body: []byte(`{"product_key":"a1P","source_instance_id":"iotx-a","target_instance_id":"iotx-b"}`)},
				{method: "GET", path: "/v1/distributions/d_0000000000aa_0123456789"},
				{method: "GET", path: "/v1/distributions"},
				{method: "POST", path: "/v1/batches/b_0000000000aa_0123456789/cancel"},
			} {
				r.token = tokenA
				resp, err := a.do(ctx, r)
				if err != nil {
					t.Fatal(err)
				}
				if resp.status != 503 || !strings.Contains(string(resp.body), `"code":"unavailable"`) {
					t.Errorf("%s %s: %d %s, want 503 unavailable", r.method, r.path, resp.status, resp.body)
				}
			}
		})
	}
}
