package alisim

import (
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"net/url"
	"slices"
	"strings"
)

// Signature algorithms, as recorded in Call.SignatureMethod.
const (
	AlgorithmV3 = "ACS3-HMAC-SHA256"
	AlgorithmV1 = "HMAC-SHA1"
)

// enc is the percent-encoding both algorithms share: URL query escaping with
// a space as %20, '*' as %2A and '~' left as is.
func enc(s string) string {
	e := url.QueryEscape(s)
	e = strings.ReplaceAll(e, "+", "%20")
	e = strings.ReplaceAll(e, "*", "%2A")
	return strings.ReplaceAll(e, "%7E", "~")
}

// canonicalParams sorts params by name (then value) and joins enc(k)=enc(v)
// with '&', keeping empty values as "k=". Names in skip are left out.
func canonicalParams(params url.Values, skip string) string {
	type kv struct{ k, v string }
	var pairs []kv
	for k, vs := range params {
		if k == skip {
			continue
		}
		for _, v := range vs {
			pairs = append(pairs, kv{enc(k), enc(v)})
		}
	}
	slices.SortFunc(pairs, func(a, b kv) int {
		if c := strings.Compare(a.k, b.k); c != 0 {
			return c
		}
		return strings.Compare(a.v, b.v)
	})
	var b strings.Builder
	for i, p := range pairs {
		if i > 0 {
			b.WriteByte('&')
		}
		b.WriteString(p.k)
		b.WriteByte('=')
		b.WriteString(p.v)
	}
	return b.String()
}

// stringToSignV1 is METHOD&%2F&enc(canonical params without Signature).
func stringToSignV1(method string, params url.Values) string {
	return method + "&" + enc("/") + "&" + enc(canonicalParams(params, "Signature"))
}

// signV1 is base64(HMAC-SHA1(secret + "&", stringToSign)).
func signV1(secret, stringToSign string) string {
	h := hmac.New(sha1.New, []byte(secret+"&"))
	h.Write([]byte(stringToSign))
	return base64.StdEncoding.EncodeToString(h.Sum(nil))
}

// hexSHA256 is the lower-case hex SHA-256 of b.
func hexSHA256(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// canonicalRequestV3 builds the ACS3 canonical request. headers maps each
// signed header name (lower case) to its value; names are sorted here.
func canonicalRequestV3(method, path string, query url.Values, headers map[string]string, payloadHash string) string {
	names := make([]string, 0, len(headers))
	for n := range headers {
		names = append(names, n)
	}
	slices.Sort(names)
	var b strings.Builder
	b.WriteString(method)
	b.WriteByte('\n')
	b.WriteString(canonicalURI(path))
	b.WriteByte('\n')
	b.WriteString(canonicalParams(query, ""))
	b.WriteByte('\n')
	for _, n := range names {
		b.WriteString(n)
		b.WriteByte(':')
		b.WriteString(strings.TrimSpace(headers[n]))
		b.WriteByte('\n')
	}
	b.WriteByte('\n')
	b.WriteString(strings.Join(names, ";"))
	b.WriteByte('\n')
	b.WriteString(payloadHash)
	return b.String()
}

// canonicalURI encodes each path segment with enc, keeping the slashes.
func canonicalURI(path string) string {
	if path == "" {
		return "/"
	}
	segs := strings.Split(path, "/")
	for i, s := range segs {
		segs[i] = enc(s)
	}
	return strings.Join(segs, "/")
}

// stringToSignV3 is "ACS3-HMAC-SHA256\n" + hex(SHA-256(canonicalRequest)).
func stringToSignV3(canonicalRequest string) string {
	return AlgorithmV3 + "\n" + hexSHA256([]byte(canonicalRequest))
}

// signV3 is hex(HMAC-SHA256(secret, stringToSign)).
func signV3(secret, stringToSign string) string {
	h := hmac.New(sha256.New, []byte(secret))
	h.Write([]byte(stringToSign))
	return hex.EncodeToString(h.Sum(nil))
}
