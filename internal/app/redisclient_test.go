package app

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"testing"

	"github.com/redis/go-redis/v9"
)

// go-redis's own lines reach the JSON log as JSON, not plain text.
func TestRedisLoggerWritesJSON(t *testing.T) {
	var buf bytes.Buffer
	l := redisLogger{slog.New(slog.NewJSONHandler(&buf, nil))}
	l.Printf(context.Background(), "redis: failed to close connection: %v", "broken pipe")
	var line map[string]any
	if err := json.Unmarshal(buf.Bytes(), &line); err != nil {
		t.Fatalf("log line %q is not JSON: %v", buf.String(), err)
	}
	if line["msg"] != "redis: failed to close connection: broken pipe" || line["component"] != "go-redis" || line["level"] != "WARN" {
		t.Fatalf("log line %v", line)
	}
}

// The api's Redis client honours request deadlines with one retry.
func TestForAPIOptions(t *testing.T) {
	o := &redis.UniversalOptions{}
	forAPI(o)
	if !o.ContextTimeoutEnabled || o.MaxRetries != 1 {
		t.Fatalf("options %+v, want ContextTimeoutEnabled and MaxRetries 1", o)
	}
}
