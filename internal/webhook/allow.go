package webhook

import (
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strings"
)

// Allowlist is DISTQ_WEBHOOK_ALLOWED_HOSTS: where events may go. An entry
// is a host or "*.domain" (any name under domain), each optionally with
// ":port" (else any port). Entries that name a host exactly are explicit:
// an explicit host may be (or resolve to) a private, loopback or
// link-local address; a host matched only through a wildcard must be
// public. An IP literal is matched only by an exact entry. The zero value
// allows nothing.
type Allowlist struct {
	entries []entry
}

type entry struct {
	host     string // lower case, without brackets; "*.x" for a wildcard
	port     string // "" for any port
	wildcard bool
}

// ParseAllowlist reads comma-separated entries.
func ParseAllowlist(s string) (*Allowlist, error) {
	a := &Allowlist{}
	for _, raw := range strings.Split(s, ",") {
		raw = strings.ToLower(strings.TrimSpace(raw))
		if raw == "" {
			continue
		}
		e := entry{host: raw}
		if h, p, err := net.SplitHostPort(raw); err == nil {
			e.host, e.port = h, p
		} else if strings.HasPrefix(raw, "[") && strings.HasSuffix(raw, "]") {
			e.host = raw[1 : len(raw)-1]
		}
		if strings.ContainsAny(e.host, "/@?#[] ") || e.host == "" {
			return nil, fmt.Errorf("entry %q: want host[:port] or *.domain[:port]", raw)
		}
		if e.port != "" && !validPort(e.port) {
			return nil, fmt.Errorf("entry %q: bad port", raw)
		}
		if strings.HasPrefix(e.host, "*.") {
			e.wildcard = true
			e.host = e.host[1:] // ".domain"
			if len(e.host) < 2 || strings.Contains(e.host[1:], "*") {
				return nil, fmt.Errorf("entry %q: want *.domain", raw)
			}
		} else if strings.Contains(e.host, "*") {
			return nil, fmt.Errorf("entry %q: a wildcard is only allowed as *.domain", raw)
		}
		a.entries = append(a.entries, e)
	}
	return a, nil
}

func validPort(p string) bool {
	if len(p) == 0 || len(p) > 5 {
		return false
	}
	for _, c := range p {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// Len returns the number of entries.
func (a *Allowlist) Len() int {
	if a == nil {
		return 0
	}
	return len(a.entries)
}

// match reports whether host:port is allowed, and whether by an exact
// entry. host is lower case, without brackets.
func (a *Allowlist) match(host, port string) (allowed, explicit bool) {
	if a == nil {
		return false, false
	}
	_, ipErr := netip.ParseAddr(host)
	isIP := ipErr == nil
	for _, e := range a.entries {
		if e.port != "" && e.port != port {
			continue
		}
		switch {
		case !e.wildcard && e.host == host:
			return true, true
		case e.wildcard && !isIP && strings.HasSuffix(host, e.host):
			allowed = true
		}
	}
	return allowed, false
}

// Explicit reports whether host:port is named by an exact entry: such a
// destination may be a private address.
func (a *Allowlist) Explicit(host, port string) bool {
	_, explicit := a.match(strings.ToLower(strings.Trim(host, "[]")), port)
	return explicit
}

// Destination is a checked notify URL's host and port (the port filled in
// from the scheme when the URL has none).
type Destination struct {
	Host, Port string
	Explicit   bool
}

// CheckURL checks a notify URL: http or https, a host, no user info, at
// most 2048 bytes, its host allowed, and an IP literal that is private,
// loopback, link-local or otherwise not public only when named exactly.
// Its error is a sentence for the caller.
func (a *Allowlist) CheckURL(raw string) (Destination, error) {
	if len(raw) > 2048 {
		return Destination{}, fmt.Errorf("is longer than 2048 bytes")
	}
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || u.Opaque != "" {
		return Destination{}, fmt.Errorf("want an absolute http(s) URL")
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return Destination{}, fmt.Errorf("want an http or https URL, got scheme %q", u.Scheme)
	}
	if u.User != nil {
		return Destination{}, fmt.Errorf("must not hold user info")
	}
	host := strings.ToLower(u.Hostname())
	port := u.Port()
	if port == "" {
		port = map[string]string{"http": "80", "https": "443"}[u.Scheme]
	}
	allowed, explicit := a.match(host, port)
	if !allowed {
		return Destination{}, fmt.Errorf("host %s is not in DISTQ_WEBHOOK_ALLOWED_HOSTS", net.JoinHostPort(host, port))
	}
	if ip, err := netip.ParseAddr(host); err == nil && Refused(ip) && !explicit {
		return Destination{}, fmt.Errorf("address %s is not public", host)
	}
	return Destination{Host: host, Port: port, Explicit: explicit}, nil
}

var refusedPrefixes = func() []netip.Prefix {
	var out []netip.Prefix
	for _, s := range []string{
		"0.0.0.0/8",      // "this network"
		"100.64.0.0/10",  // carrier-grade NAT
		"192.0.0.0/24",   // IETF protocol assignments
		"198.18.0.0/15",  // benchmarking
		"240.0.0.0/4",    // reserved, and broadcast
		"64:ff9b::/96",   // NAT64: may reach any IPv4 address
		"64:ff9b:1::/48", // local-use NAT64
		"2001:db8::/32",  // documentation
		"100::/64",       // discard
		"fec0::/10",      // site-local (deprecated)
		"2002::/16",      // 6to4: may embed a private IPv4 address
		"::/128", "::1/128",
	} {
		out = append(out, netip.MustParsePrefix(s))
	}
	return out
}()

// Refused reports whether ip is an address events never go to unless its
// host is named exactly: loopback, private (10/8, 172.16/12, 192.168/16,
// fc00::/7), link-local (169.254/16 — the cloud metadata address — and
// fe80::/10), unspecified, multicast, and other non-public ranges.
func Refused(ip netip.Addr) bool {
	ip = ip.Unmap()
	if !ip.IsValid() || ip.IsLoopback() || ip.IsPrivate() || ip.IsLinkLocalUnicast() || ip.IsLinkLocalMulticast() ||
		ip.IsInterfaceLocalMulticast() || ip.IsMulticast() || ip.IsUnspecified() {
		return true
	}
	for _, p := range refusedPrefixes {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}
