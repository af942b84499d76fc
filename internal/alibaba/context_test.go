package alibaba

import (
	"context"
	"errors"
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

// A send check that fails holds the request back: nothing reaches the
// endpoint, and the error says so (transient, NotSent), not ambiguous.
func TestSendCheckHoldsBack(t *testing.T) {
	t.Parallel()
	hits := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits++ }))
	defer srv.Close()
	c, err := NewClient(Config{Endpoint: srv.URL, AccessKeyID: "ak", AccessKeySecret: "sk"})
	if err != nil {
		t.Fatal(err)
	}
	ctx := WithSendCheck(context.Background(), func() error { return errors.New("grant stale") })
	_, _, err = c.CreateContext(ctx, CreateRequest{ProductKey: "a1", SourceInstanceID: "s", TargetInstanceID: "t", TargetUID: "1"})
	e := AsAPIError(err)
	if e == nil || e.Class != Transient || e.Code != CodeNotSent || hits != 0 {
		t.Fatalf("held create = %v (hits %d), want transient NotSent and nothing sent", err, hits)
	}
	// The pooled client forgets the refusal.
	if _, _, err := c.Create(CreateRequest{ProductKey: "a1", SourceInstanceID: "s", TargetInstanceID: "t", TargetUID: "1"}); AsAPIError(err) == nil || AsAPIError(err).Code == CodeNotSent || hits != 1 {
		t.Fatalf("next create = %v (hits %d), want it sent", err, hits)
	}
}
