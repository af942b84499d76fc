package alisim

import (
	"crypto/subtle"
	"errors"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// timestampLayout is the layout of x-acs-date and Timestamp.
const timestampLayout = "2006-01-02T15:04:05Z"

// v3Required are the headers an ACS3 request must carry and sign.
var v3Required = []string{"x-acs-action", "x-acs-version", "x-acs-date", "x-acs-signature-nonce", "x-acs-content-sha256"}

// v1Required are the protocol parameters of an HMAC-SHA1 request, in the
// order their absence is reported.
var v1Required = []string{"AccessKeyId", "SignatureMethod", "SignatureVersion", "SignatureNonce", "Timestamp", "Action", "Version"}

// signedRequest is a request whose signature has been checked.
type signedRequest struct {
	algorithm   string
	accessKeyID string
	action      string
	version     string
	nonce       string
	// params are the API parameters: the query and the form body merged.
	params url.Values
}

// parsed is what can be read from a request before any verification.
type parsed struct {
	method string
	path   string
	host   string
	scheme string // http or https, as the request came
	header http.Header
	query  url.Values
	form   url.Values
	body   []byte
}

// parseRequest decodes the query and, for a form body, the form. Form
// encoding is decoded first ('+' is a space); signing re-encodes with enc.
func parseRequest(r *http.Request, body []byte) (*parsed, *gatewayError) {
	p := &parsed{method: r.Method, path: r.URL.Path, host: r.Host, scheme: "http", header: r.Header, body: body}
	if r.TLS != nil {
		p.scheme = "https"
	}
	var err error
	if p.query, err = url.ParseQuery(r.URL.RawQuery); err != nil {
		return nil, errInvalidParam("query")
	}
	p.form = url.Values{}
	if len(body) > 0 {
		mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
		if mt == "application/x-www-form-urlencoded" {
			if p.form, err = parseForm(string(body)); err != nil {
				return nil, errInvalidParam("body")
			}
		}
	}
	return p, nil
}

// parseForm decodes a form body as url.ParseQuery does, without its cap on
// the number of parameters (10,000 since Go 1.26): a CreateDeviceDistributeJob
// carries up to 10,000 DeviceName.N besides its other parameters.
func parseForm(body string) (url.Values, error) {
	v := url.Values{}
	for body != "" {
		var pair string
		pair, body, _ = strings.Cut(body, "&")
		if pair == "" {
			continue
		}
		if strings.Contains(pair, ";") {
			return nil, errors.New("invalid semicolon separator in form")
		}
		k, val, _ := strings.Cut(pair, "=")
		k, err := url.QueryUnescape(k)
		if err != nil {
			return nil, err
		}
		val, err = url.QueryUnescape(val)
		if err != nil {
			return nil, err
		}
		v[k] = append(v[k], val)
	}
	return v, nil
}

// merged returns the query and the form parameters together.
func (p *parsed) merged() url.Values {
	m := make(url.Values, len(p.query)+len(p.form))
	for k, vs := range p.query {
		m[k] = append(m[k], vs...)
	}
	for k, vs := range p.form {
		m[k] = append(m[k], vs...)
	}
	return m
}

// algorithm tells which signature scheme the request claims.
func (p *parsed) algorithm() string {
	if strings.HasPrefix(p.header.Get("Authorization"), "ACS3-") {
		return AlgorithmV3
	}
	if p.query.Has("Signature") || p.form.Has("Signature") {
		return AlgorithmV1
	}
	return ""
}

// peek returns the claimed action and AccessKeyId without verifying
// anything, for the audit of calls rejected early.
func (p *parsed) peek() (action, accessKeyID string) {
	if p.algorithm() == AlgorithmV3 {
		auth, _ := parseAuthorization(p.header.Get("Authorization"))
		return p.header.Get("x-acs-action"), auth.credential
	}
	m := p.merged()
	return m.Get("Action"), m.Get("AccessKeyId")
}

// authorization is a parsed ACS3 Authorization header.
type authorization struct {
	credential    string
	signedHeaders []string
	signature     string
}

// parseAuthorization parses
// "ACS3-HMAC-SHA256 Credential=AK,SignedHeaders=a;b,Signature=hex".
func parseAuthorization(h string) (authorization, bool) {
	var a authorization
	alg, rest, ok := strings.Cut(strings.TrimSpace(h), " ")
	if !ok || alg != AlgorithmV3 {
		return a, false
	}
	for _, part := range strings.Split(rest, ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(part), "=")
		switch k {
		case "Credential":
			a.credential = v
		case "SignedHeaders":
			for _, n := range strings.Split(v, ";") {
				if n = strings.ToLower(strings.TrimSpace(n)); n != "" {
					a.signedHeaders = append(a.signedHeaders, n)
				}
			}
		case "Signature":
			a.signature = v
		}
	}
	return a, a.credential != "" && len(a.signedHeaders) > 0 && a.signature != ""
}

// verifier checks signatures, timestamps and nonces. It holds no state; the
// keys and the nonce store are the Server's.
type verifier struct {
	lookup func(accessKeyID string) (Account, bool)
	skew   time.Duration
}

// verify checks the request's signature and timestamp. It returns the
// request and the account it is signed by. Nonces are checked by the caller,
// which owns their store.
func (v verifier) verify(p *parsed, now time.Time) (*signedRequest, Account, *gatewayError) {
	switch p.algorithm() {
	case AlgorithmV3:
		return v.verifyV3(p, now)
	case AlgorithmV1:
		return v.verifyV1(p, now)
	}
	if p.header.Get("Authorization") != "" {
		return nil, Account{}, errIncompleteSignature()
	}
	return nil, Account{}, errMissing("Signature")
}

func (v verifier) verifyV3(p *parsed, now time.Time) (*signedRequest, Account, *gatewayError) {
	auth, ok := parseAuthorization(p.header.Get("Authorization"))
	if !ok {
		return nil, Account{}, errIncompleteSignature()
	}
	signed := make(map[string]bool, len(auth.signedHeaders))
	for _, n := range auth.signedHeaders {
		signed[n] = true
	}
	for _, n := range append([]string{"host"}, v3Required...) {
		if !signed[n] || (n != "host" && p.header.Get(n) == "") {
			return nil, Account{}, errIncompleteSignature()
		}
	}
	acct, ok := v.lookup(auth.credential)
	if !ok {
		return nil, Account{}, errAccessKeyNotFound()
	}
	if e := v.checkTimestamp(p.header.Get("x-acs-date"), now); e != nil {
		return nil, Account{}, e
	}
	headers := make(map[string]string, len(auth.signedHeaders))
	for _, n := range auth.signedHeaders {
		if n == "host" {
			headers[n] = p.host
			continue
		}
		vals := p.header.Values(n)
		trimmed := make([]string, len(vals))
		for i, s := range vals {
			trimmed[i] = strings.TrimSpace(s)
		}
		headers[n] = strings.Join(trimmed, ",")
	}
	// The payload hash is the server's own: a body that does not match the
	// client's x-acs-content-sha256 then fails like any other tampering.
	payload := hexSHA256(p.body)
	sts := stringToSignV3(canonicalRequestV3(p.method, p.path, p.query, headers, payload))
	want := signV3(acct.AccessKeySecret, sts)
	if subtle.ConstantTimeCompare([]byte(want), []byte(strings.ToLower(auth.signature))) != 1 ||
		!strings.EqualFold(p.header.Get("x-acs-content-sha256"), payload) {
		return nil, Account{}, errSignatureDoesNotMatch(sts)
	}
	return &signedRequest{
		algorithm:   AlgorithmV3,
		accessKeyID: acct.AccessKeyID,
		action:      p.header.Get("x-acs-action"),
		version:     p.header.Get("x-acs-version"),
		nonce:       p.header.Get("x-acs-signature-nonce"),
		params:      p.merged(),
	}, acct, nil
}

func (v verifier) verifyV1(p *parsed, now time.Time) (*signedRequest, Account, *gatewayError) {
	params := p.merged()
	for _, name := range v1Required {
		if params.Get(name) == "" {
			return nil, Account{}, errMissing(name)
		}
	}
	if params.Get("SignatureMethod") != AlgorithmV1 || params.Get("SignatureVersion") != "1.0" {
		return nil, Account{}, errIncompleteSignature()
	}
	acct, ok := v.lookup(params.Get("AccessKeyId"))
	if !ok {
		return nil, Account{}, errAccessKeyNotFound()
	}
	if e := v.checkTimestamp(params.Get("Timestamp"), now); e != nil {
		return nil, Account{}, e
	}
	sts := stringToSignV1(p.method, params)
	want := signV1(acct.AccessKeySecret, sts)
	if subtle.ConstantTimeCompare([]byte(want), []byte(params.Get("Signature"))) != 1 {
		return nil, Account{}, errSignatureDoesNotMatch(sts)
	}
	return &signedRequest{
		algorithm:   AlgorithmV1,
		accessKeyID: acct.AccessKeyID,
		action:      params.Get("Action"),
		version:     params.Get("Version"),
		nonce:       params.Get("SignatureNonce"),
		params:      params,
	}, acct, nil
}

func (v verifier) checkTimestamp(s string, now time.Time) *gatewayError {
	t, err := time.Parse(timestampLayout, s)
	if err != nil {
		return errTimestampFormat()
	}
	if d := now.Sub(t); d > v.skew || d < -v.skew {
		return errTimestampExpired()
	}
	return nil
}

// nonceStore remembers nonces per AccessKeyId for a window. Not safe for
// concurrent use: the Server guards it.
type nonceStore struct {
	window time.Duration
	seen   map[string]map[string]time.Time
	order  []nonceEntry
}

type nonceEntry struct {
	key, nonce string
	at         time.Time
}

// use records nonce for key at now; it reports false when the nonce was
// already used within the window.
func (n *nonceStore) use(key, nonce string, now time.Time) bool {
	cutoff := now.Add(-n.window)
	i := 0
	for ; i < len(n.order) && !n.order[i].at.After(cutoff); i++ {
		e := n.order[i]
		if at, ok := n.seen[e.key][e.nonce]; ok && at.Equal(e.at) {
			delete(n.seen[e.key], e.nonce)
		}
	}
	n.order = n.order[i:]
	if at, ok := n.seen[key][nonce]; ok && at.After(cutoff) {
		return false
	}
	if n.seen[key] == nil {
		n.seen[key] = map[string]time.Time{}
	}
	n.seen[key][nonce] = now
	n.order = append(n.order, nonceEntry{key, nonce, now})
	return true
}
