package app

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/redis/go-redis/v9"
)

// forAPI tunes the api's Redis client so that a hung Redis costs a request
// its deadline (the api gives each one, 3 s by default) and at most one
// retry, and the api answers 503 promptly instead of after 6–24 s of
// socket timeouts and retries.
func forAPI(o *redis.UniversalOptions) {
	o.ContextTimeoutEnabled = true
	o.MaxRetries = 1
}

// redisLogger routes go-redis's own log lines (pool and reconnection
// trouble) into the binaries' JSON log instead of plain text on stderr.
type redisLogger struct{ log *slog.Logger }

func (l redisLogger) Printf(ctx context.Context, format string, v ...any) {
	l.log.WarnContext(ctx, fmt.Sprintf(format, v...), "component", "go-redis")
}
