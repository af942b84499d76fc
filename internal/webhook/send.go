package webhook

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"syscall"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
)

// Delivery limits.
const (
	DefaultTimeout = 5 * time.Second
	// MaxResponseBody bounds what is read of a receiver's answer.
	MaxResponseBody = 64 << 10
)

// ErrRefusedAddress is a delivery refused because the destination is (or
// resolves to) an address that is not public and its host is not named
// exactly in the allowlist.
var ErrRefusedAddress = errors.New("refused address")

// Sender posts signed events. It is safe for concurrent use.
type Sender struct {
	allow   *Allowlist
	secrets map[string]string // team → whsec_… secret
	lookup  func(ctx context.Context, host string) ([]netip.Addr, error)
	client  *http.Client
}

// SenderOptions tune a Sender.
type SenderOptions struct {
	// Timeout bounds one attempt, connection and answer (default 5s).
	Timeout time.Duration
	// Lookup resolves a host name (default: the system resolver). Tests map
	// names to addresses with it, without DNS.
	Lookup func(ctx context.Context, host string) ([]netip.Addr, error)
}

// NewSender returns a Sender that signs with each team's secret and sends
// only where allow permits. Redirects are never followed (a 3xx is a failed
// attempt), no proxy is used, and every address dialed is checked in the
// dialer's Control hook, after resolution: a name that resolves to a
// private address is refused unless it is named exactly.
func NewSender(allow *Allowlist, secrets map[string]string, o SenderOptions) *Sender {
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	s := &Sender{allow: allow, secrets: secrets, lookup: o.Lookup}
	if s.lookup == nil {
		s.lookup = func(ctx context.Context, host string) ([]netip.Addr, error) {
			return net.DefaultResolver.LookupNetIP(ctx, "ip", host)
		}
	}
	tr := &http.Transport{
		Proxy:                 nil,
		DialContext:           s.dial(o.Timeout),
		TLSHandshakeTimeout:   o.Timeout,
		ResponseHeaderTimeout: o.Timeout,
		MaxIdleConnsPerHost:   4,
		IdleConnTimeout:       30 * time.Second,
		ForceAttemptHTTP2:     true,
	}
	s.client = &http.Client{
		Transport:     tr,
		Timeout:       o.Timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	return s
}

// HasSecret reports whether team has a signing secret.
func (s *Sender) HasSecret(team string) bool { _, ok := s.secrets[team]; return ok }

// dial resolves the host itself (through lookup) and dials one address at
// a time, each checked in Control against the policy.
func (s *Sender) dial(timeout time.Duration) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		host, port, err := net.SplitHostPort(addr)
		if err != nil {
			return nil, err
		}
		explicit := s.allow.Explicit(host, port)
		var addrs []netip.Addr
		if ip, err := netip.ParseAddr(host); err == nil {
			addrs = []netip.Addr{ip}
		} else if addrs, err = s.lookup(ctx, host); err != nil {
			return nil, fmt.Errorf("resolve %s: %w", host, err)
		}
		d := &net.Dialer{
			Timeout: timeout,
			Control: func(_, address string, _ syscall.RawConn) error {
				ap, err := netip.ParseAddrPort(address)
				if err != nil {
					return fmt.Errorf("%w: %s is not an IP address", ErrRefusedAddress, address)
				}
				if !explicit && Refused(ap.Addr()) {
					return fmt.Errorf("%w: %s resolves to %s, which is not public (name the host exactly in DISTQ_WEBHOOK_ALLOWED_HOSTS to allow it)", ErrRefusedAddress, host, ap.Addr())
				}
				return nil
			},
		}
		var errs []error
		for _, ip := range addrs {
			c, err := d.DialContext(ctx, network, net.JoinHostPort(ip.Unmap().String(), port))
			if err == nil {
				return c, nil
			}
			errs = append(errs, err)
		}
		if len(errs) == 0 {
			return nil, fmt.Errorf("resolve %s: no address", host)
		}
		return nil, errors.Join(errs...)
	}
}

// Result is the outcome of one attempt.
type Result struct {
	// Status is the receiver's HTTP status, 0 when none came.
	Status   int
	Duration time.Duration
	// Err is why the attempt failed (nil on a 2xx).
	Err error
}

// Refused reports whether the attempt was refused by the address policy.
func (r Result) Refused() bool { return errors.Is(r.Err, ErrRefusedAddress) }

// Send posts ev's body to its URL, signed with its team's secret: headers
// webhook-id (ev.ID, the same on every attempt), webhook-timestamp (now)
// and webhook-signature (v1,<base64 HMAC-SHA256>). Only a 2xx is success.
func (s *Sender) Send(ctx context.Context, ev *Event, now time.Time) Result {
	start := time.Now()
	res := s.send(ctx, ev, now)
	res.Duration = time.Since(start)
	return res
}

func (s *Sender) send(ctx context.Context, ev *Event, now time.Time) Result {
	secret, ok := s.secrets[ev.Team]
	if !ok {
		return Result{Err: fmt.Errorf("team %q has no webhook secret", ev.Team)}
	}
	if _, err := s.allow.CheckURL(ev.URL); err != nil {
		return Result{Err: fmt.Errorf("%w: notify_url %v", ErrRefusedAddress, err)}
	}
	wh, err := standardwebhooks.NewWebhook(secret)
	if err != nil {
		return Result{Err: fmt.Errorf("team %q: bad webhook secret", ev.Team)}
	}
	sig, err := wh.Sign(ev.ID, now, ev.Body)
	if err != nil {
		return Result{Err: fmt.Errorf("sign: %w", err)}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, ev.URL, bytes.NewReader(ev.Body))
	if err != nil {
		return Result{Err: err}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "distq-webhooks/1")
	req.Header.Set(standardwebhooks.HeaderWebhookID, ev.ID)
	req.Header.Set(standardwebhooks.HeaderWebhookTimestamp, strconv.FormatInt(now.Unix(), 10))
	req.Header.Set(standardwebhooks.HeaderWebhookSignature, sig)
	resp, err := s.client.Do(req)
	if err != nil {
		return Result{Err: err}
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, MaxResponseBody))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return Result{Status: resp.StatusCode, Err: fmt.Errorf("receiver answered %d", resp.StatusCode)}
	}
	return Result{Status: resp.StatusCode}
}

// ValidSecret checks a whsec_… secret: the prefix, then base64 of at least
// 24 bytes.
func ValidSecret(secret string) error {
	if len(secret) < 6 || secret[:6] != "whsec_" {
		return errors.New("want a whsec_… secret")
	}
	wh, err := standardwebhooks.NewWebhook(secret)
	if err != nil || wh == nil {
		return errors.New("want whsec_ followed by base64")
	}
	key, _ := base64Len(secret[6:])
	if key < 24 {
		return errors.New("want a key of at least 24 bytes (whsec_ + base64)")
	}
	return nil
}
