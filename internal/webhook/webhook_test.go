package webhook_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/distq/distq/internal/webhook"
)

const secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

func TestCheckURL(t *testing.T) {
	t.Parallel()
	a, err := webhook.ParseAllowlist("hooks.example.com, *.corp.example:8443, 10.1.2.3, 127.0.0.1:9000, [::1]:9001")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		url      string
		ok       bool
		explicit bool
	}{
		{"https://hooks.example.com/distq", true, true},
		{"http://HOOKS.example.com:8080/x", true, true},
		{"https://a.corp.example:8443/x", true, false},
		{"https://a.b.corp.example:8443/x", true, false},
		{"https://a.corp.example/x", false, false},      // wrong port
		{"https://corp.example:8443/x", false, false},   // the wildcard is for names under it
		{"https://evil.example.org/x", false, false},    // not listed
		{"http://169.254.169.254/latest", false, false}, // the metadata address, not listed
		{"http://10.1.2.3/x", true, true},               // a private address named exactly
		{"http://10.1.2.4/x", false, false},             // another private one
		{"http://127.0.0.1:9000/x", true, true},         // loopback named exactly with its port
		{"http://127.0.0.1:9001/x", false, false},       // not that port
		{"http://[::1]:9001/x", true, true},             //
		{"ftp://hooks.example.com/x", false, false},     // scheme
		{"https://user:pw@hooks.example.com/x", false, false},
		{"/relative", false, false},
		{"https://hooks.example.com/" + strings.Repeat("x", 2100), false, false},
	}
	for _, tt := range tests {
		d, err := a.CheckURL(tt.url)
		if (err == nil) != tt.ok || err == nil && d.Explicit != tt.explicit {
			t.Errorf("CheckURL(%.60q) = %+v, %v; want ok %v explicit %v", tt.url, d, err, tt.ok, tt.explicit)
		}
	}
	// A wildcard never admits a literal address, even a public one.
	w, _ := webhook.ParseAllowlist("*.0.1")
	if _, err := w.CheckURL("http://10.0.0.1/x"); err == nil {
		t.Error("a wildcard admitted a literal address")
	}
	for _, bad := range []string{"*", "a.*.b", "host:port", "http://x/y", "*.:80"} {
		if _, err := webhook.ParseAllowlist(bad); err == nil {
			t.Errorf("ParseAllowlist(%q) accepted", bad)
		}
	}
}

func TestRefused(t *testing.T) {
	t.Parallel()
	for _, s := range []string{"127.0.0.1", "10.0.0.1", "172.16.5.4", "192.168.1.1", "169.254.169.254", "0.0.0.0",
		"100.64.0.1", "::1", "fe80::1", "fd00::1", "::ffff:10.0.0.1", "::ffff:169.254.169.254", "224.0.0.1", "64:ff9b::a00:1"} {
		if !webhook.Refused(netip.MustParseAddr(s)) {
			t.Errorf("%s is not refused", s)
		}
	}
	for _, s := range []string{"8.8.8.8", "203.0.113.7", "2606:4700::1111"} {
		if webhook.Refused(netip.MustParseAddr(s)) {
			t.Errorf("%s is refused", s)
		}
	}
}

func TestBackoffGrowsWithJitterUpToTheCap(t *testing.T) {
	t.Parallel()
	first, maxB := time.Second, time.Minute
	for n := 1; n <= 12; n++ {
		want := min(first<<(n-1), maxB)
		for range 20 {
			d := webhook.Backoff(n, first, maxB)
			if d < want/2 || d > want {
				t.Fatalf("Backoff(%d) = %v, want within [%v, %v]", n, d, want/2, want)
			}
		}
	}
}

// receiver is an HTTP receiver of the test's own on loopback.
type receiver struct {
	*httptest.Server
	hits atomic.Int64
}

func newReceiver(t *testing.T, h http.HandlerFunc) *receiver {
	t.Helper()
	r := &receiver{}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.hits.Add(1)
		h(w, req)
	}))
	t.Cleanup(r.Close)
	return r
}

func (r *receiver) hostPort() string { return strings.TrimPrefix(r.URL, "http://") }

func event(url string) *webhook.Event {
	return &webhook.Event{ID: "msg_test1", Type: webhook.TypeBatchFinished, Team: "team-a", URL: url,
		Body: []byte(`{"type":"batch.finished","timestamp":"2026-01-02T03:04:05Z","data":{"id":"b_1"}}`)}
}

func TestSendIsSignedAndVerifiesWithTheLibrary(t *testing.T) {
	t.Parallel()
	got := make(chan error, 1)
	rcv := newReceiver(t, func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		wh, _ := standardwebhooks.NewWebhook(secret)
		err := wh.Verify(body, r.Header)
		if err == nil && r.Header.Get("webhook-id") != "msg_test1" {
			err = errors.New("webhook-id " + r.Header.Get("webhook-id"))
		}
		got <- err
	})
	allow, _ := webhook.ParseAllowlist(rcv.hostPort()) // loopback, allowed explicitly
	s := webhook.NewSender(allow, map[string]string{"team-a": secret}, webhook.SenderOptions{})
	res := s.Send(t.Context(), event(rcv.URL+"/hook"), time.Now())
	if res.Err != nil || res.Status != 200 {
		t.Fatalf("send: %+v", res)
	}
	if err := <-got; err != nil {
		t.Fatalf("the receiver's verification: %v", err)
	}
	// Another secret does not verify.
	other := webhook.NewSender(allow, map[string]string{"team-a": "whsec_" + strings.Repeat("QUFB", 8)}, webhook.SenderOptions{})
	other.Send(t.Context(), event(rcv.URL+"/hook"), time.Now())
	if err := <-got; err == nil {
		t.Fatal("a signature with another secret verified")
	}
}

func TestSendRefusesPrivateAddressesUnlessNamedExactly(t *testing.T) {
	t.Parallel()
	rcv := newReceiver(t, func(w http.ResponseWriter, _ *http.Request) {})
	_, port, _ := net.SplitHostPort(rcv.hostPort())
	// Names resolved by the test, never by DNS: one to a private address,
	// two to the receiver on loopback.
	lookup := func(_ context.Context, host string) ([]netip.Addr, error) {
		switch host {
		case "internal.corp.test":
			return []netip.Addr{netip.MustParseAddr("10.0.0.1")}, nil
		case "loop.corp.test", "hooks.internal":
			return []netip.Addr{netip.MustParseAddr("127.0.0.1")}, nil
		}
		return nil, errors.New("no such host")
	}
	allow, _ := webhook.ParseAllowlist("*.corp.test, hooks.internal:" + port)
	s := webhook.NewSender(allow, map[string]string{"team-a": secret}, webhook.SenderOptions{Lookup: lookup, Timeout: 2 * time.Second})
	for _, u := range []string{"http://internal.corp.test:" + port + "/x", "http://loop.corp.test:" + port + "/x"} {
		res := s.Send(t.Context(), event(u), time.Now())
		if !res.Refused() || res.Status != 0 {
			t.Errorf("%s: %+v, want refused by the address policy", u, res)
		}
	}
	if n := rcv.hits.Load(); n != 0 {
		t.Fatalf("the receiver got %d requests through refused names", n)
	}
	// Named exactly, the same loopback address is allowed.
	if res := s.Send(t.Context(), event("http://hooks.internal:"+port+"/x"), time.Now()); res.Err != nil || res.Status != 200 {
		t.Fatalf("explicit host: %+v", res)
	}
	// A URL the list does not allow is refused before any connection.
	if res := s.Send(t.Context(), event("http://169.254.169.254/latest"), time.Now()); !res.Refused() {
		t.Fatalf("metadata address: %+v", res)
	}
}

func TestSendNeverFollowsRedirectsAndBoundsTheAnswer(t *testing.T) {
	t.Parallel()
	var target atomic.Int64
	dst := newReceiver(t, func(http.ResponseWriter, *http.Request) { target.Add(1) })
	redirect := newReceiver(t, func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, dst.URL+"/elsewhere", http.StatusTemporaryRedirect)
	})
	big := newReceiver(t, func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusInternalServerError)
		chunk := []byte(strings.Repeat("x", 1<<16))
		for range 1 << 10 { // 64 MiB, unless the sender stops reading
			if _, err := w.Write(chunk); err != nil {
				return
			}
		}
	})
	allow, _ := webhook.ParseAllowlist(strings.Join([]string{dst.hostPort(), redirect.hostPort(), big.hostPort()}, ","))
	s := webhook.NewSender(allow, map[string]string{"team-a": secret}, webhook.SenderOptions{})
	res := s.Send(t.Context(), event(redirect.URL), time.Now())
	if res.Status != http.StatusTemporaryRedirect || res.Err == nil || target.Load() != 0 {
		t.Fatalf("redirect: %+v, target hit %d times; want a failed 307 and no request to the target", res, target.Load())
	}
	res = s.Send(t.Context(), event(big.URL), time.Now())
	if res.Status != 500 || res.Err == nil || res.Duration > 4*time.Second {
		t.Fatalf("big answer: %+v", res)
	}
	// No secret for the team: no request.
	ev := event(dst.URL)
	ev.Team = "team-b"
	if res := s.Send(t.Context(), ev, time.Now()); res.Err == nil || dst.hits.Load() != 0 {
		t.Fatalf("team without a secret: %+v", res)
	}
}

func TestSendTimesOut(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	slow := newReceiver(t, func(http.ResponseWriter, *http.Request) { <-release })
	defer close(release)
	allow, _ := webhook.ParseAllowlist(slow.hostPort())
	s := webhook.NewSender(allow, map[string]string{"team-a": secret}, webhook.SenderOptions{Timeout: 300 * time.Millisecond})
	res := s.Send(t.Context(), event(slow.URL), time.Now())
	if res.Err == nil || res.Status != 0 || res.Duration > 3*time.Second {
		t.Fatalf("slow receiver: %+v, want a timeout", res)
	}
}

func TestValidSecret(t *testing.T) {
	t.Parallel()
	if err := webhook.ValidSecret(secret); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{"", "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "whsec_!!!", "whsec_QUJD"} {
		if webhook.ValidSecret(bad) == nil {
			t.Errorf("ValidSecret(%q) accepted", bad)
		}
	}
}
