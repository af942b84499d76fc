package alibaba

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// The task's context reaches the HTTP request: a canceled task abandons its
// call at once instead of holding it for the whole call timeout, and a
// Create abandoned after it was sent is ambiguous.
func TestCallFollowsContext(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	defer srv.Close()
	defer close(release)
	c, err := NewClient(Config{Endpoint: srv.URL, AccessKeyID: "ak", AccessKeySecret: "sk", Timeout: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, _, err = c.CreateContext(ctx, CreateRequest{ProductKey: "a1", SourceInstanceID: "s", TargetInstanceID: "t", TargetUID: "1"})
	if took := time.Since(start); took > 10*time.Second {
		t.Fatalf("create took %v after its context ended, want it abandoned", took)
	}
	if e := AsAPIError(err); e == nil || e.Class != Ambiguous {
		t.Fatalf("abandoned create = %v, want an ambiguous *APIError", err)
	}
	// The pooled client forgets the context: a later call without one works
	// until its own timeout.
	ctx2, cancel2 := context.WithCancel(context.Background())
	cancel2()
	if _, err := c.QueryContext(ctx2, "j"); AsAPIError(err) == nil {
		t.Fatalf("query with a canceled context = %v, want an error", err)
	}
}
