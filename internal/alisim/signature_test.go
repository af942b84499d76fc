package alisim

import (
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	openapiutil "github.com/alibabacloud-go/darabonba-openapi/v2/utils"
	"github.com/alibabacloud-go/tea/dara"
	"github.com/google/go-cmp/cmp"
)

// vector is one of the vendor's published signature examples.
type vector struct {
	Name                     string            `json:"name"`
	Algorithm                string            `json:"algorithm"`
	Method                   string            `json:"method"`
	Path                     string            `json:"path"`
	Query                    map[string]string `json:"query"`
	Headers                  map[string]string `json:"headers"`
	Body                     string            `json:"body"`
	AccessKeyID              string            `json:"access_key_id"`
	AccessKeySecret          string            `json:"access_key_secret"`
	ExpectedCanonicalRequest string            `json:"expected_canonical_request"`
	ExpectedStringToSign     string            `json:"expected_string_to_sign"`
	ExpectedSignature        string            `json:"expected_signature"`
}

func loadVectors(t *testing.T) []vector {
	t.Helper()
	b, err := os.ReadFile("testdata/signature_vectors.json")
	if err != nil {
		t.Fatalf("read vectors: %v", err)
	}
	var vs []vector
	if err := json.Unmarshal(b, &vs); err != nil {
		t.Fatalf("decode vectors: %v", err)
	}
	if len(vs) == 0 {
		t.Fatal("no vectors")
	}
	return vs
}

func values(m map[string]string) url.Values {
	v := url.Values{}
	for k, s := range m {
		v.Set(k, s)
	}
	return v
}

// TestVendorVectors reproduces the vendor documentation's worked examples
// exactly, first with the signing functions, then through the full
// verifier (with the clock at the example's own time).
func TestVendorVectors(t *testing.T) {
	t.Parallel()
	for _, v := range loadVectors(t) {
		t.Run(v.Name, func(t *testing.T) {
			t.Parallel()
			query := values(v.Query)
			var sts, sig, date string
			switch v.Algorithm {
			case AlgorithmV3:
				cr := canonicalRequestV3(v.Method, v.Path, query, v.Headers, hexSHA256([]byte(v.Body)))
				if diff := cmp.Diff(v.ExpectedCanonicalRequest, cr); diff != "" {
					t.Errorf("canonical request (-want +got):\n%s", diff)
				}
				sts = stringToSignV3(cr)
				sig = signV3(v.AccessKeySecret, sts)
				date = v.Headers["x-acs-date"]
			case AlgorithmV1:
				sts = stringToSignV1(v.Method, query)
				sig = signV1(v.AccessKeySecret, sts)
				date = v.Query["Timestamp"]
			default:
				t.Fatalf("unknown algorithm %q", v.Algorithm)
			}
			if diff := cmp.Diff(v.ExpectedStringToSign, sts); diff != "" {
				t.Errorf("string to sign (-want +got):\n%s", diff)
			}
			if sig != v.ExpectedSignature {
				t.Errorf("signature = %s, want %s", sig, v.ExpectedSignature)
			}

			// The same example, as a request, passes the verifier.
			p := &parsed{method: v.Method, path: v.Path, host: v.Headers["host"], header: http.Header{},
				query: query, form: url.Values{}, body: []byte(v.Body)}
			for k, s := range v.Headers {
				if k != "host" {
					p.header.Set(k, s)
				}
			}
			if v.Algorithm == AlgorithmV3 {
				names := "host;x-acs-action;x-acs-content-sha256;x-acs-date;x-acs-signature-nonce;x-acs-version"
				p.header.Set("Authorization", AlgorithmV3+" Credential="+v.AccessKeyID+",SignedHeaders="+names+",Signature="+v.ExpectedSignature)
			} else {
				p.query.Set("Signature", v.ExpectedSignature)
			}
			now, err := time.Parse(timestampLayout, date)
			if err != nil {
				t.Fatalf("date: %v", err)
			}
			ver := verifier{skew: 15 * time.Minute, lookup: func(id string) (Account, bool) {
				return Account{UID: "1", AccessKeyID: v.AccessKeyID, AccessKeySecret: v.AccessKeySecret}, id == v.AccessKeyID
			}}
			if _, _, gerr := ver.verify(p, now); gerr != nil {
				t.Errorf("verify: %v", gerr)
			}
			// One changed secret character fails with the server's string to sign.
			bad := ver
			bad.lookup = func(id string) (Account, bool) {
				return Account{UID: "1", AccessKeyID: id, AccessKeySecret: v.AccessKeySecret + "x"}, true
			}
			_, _, gerr := bad.verify(p, now)
			if gerr == nil || gerr.Code != "SignatureDoesNotMatch" || !strings.HasSuffix(gerr.Message, "server string to sign is:"+sts) {
				t.Errorf("verify with a wrong secret = %v, want SignatureDoesNotMatch with the string to sign", gerr)
			}
		})
	}
}

func TestEnc(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want string }{
		{"abc-_.~", "abc-_.~"},
		{"a b", "a%20b"},
		{"a*b", "a%2Ab"},
		{"a+b", "a%2Bb"},
		{"a/b", "a%2Fb"},
		{"a@b", "a%40b"},
		{"a=b&c", "a%3Db%26c"},
		{"é中", "%C3%A9%E4%B8%AD"},
		{"", ""},
	}
	for _, tt := range tests {
		if got := enc(tt.in); got != tt.want {
			t.Errorf("enc(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestCanonicalParamsKeepsEmptyValues(t *testing.T) {
	t.Parallel()
	got := canonicalParams(url.Values{"b": {""}, "a": {"2", "1"}, "Signature": {"x"}, "SignatureType": {""}}, "Signature")
	if want := "SignatureType=&a=1&a=2&b="; got != want {
		t.Errorf("canonicalParams = %q, want %q", got, want)
	}
}

func TestNonceStore(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	n := nonceStore{window: 31 * time.Minute, seen: map[string]map[string]time.Time{}}
	steps := []struct {
		key, nonce string
		at         time.Duration
		want       bool
	}{
		{"ak1", "n1", 0, true},
		{"ak1", "n1", time.Minute, false},
		{"ak2", "n1", time.Minute, true}, // per AccessKeyId
		{"ak1", "n2", 30 * time.Minute, true},
		{"ak1", "n1", 31*time.Minute - 1, false},
		{"ak1", "n1", 31*time.Minute + 1, true}, // forgotten after the window
		{"ak1", "n2", 32 * time.Minute, false},
	}
	for i, s := range steps {
		if got := n.use(s.key, s.nonce, t0.Add(s.at)); got != s.want {
			t.Errorf("step %d: use(%s, %s, +%v) = %v, want %v", i, s.key, s.nonce, s.at, got, s.want)
		}
	}
}

// sdkSignedV1 signs params the way the official SDK's HMAC-SHA1 path does.
func sdkSignedV1(query, form url.Values, secret string) url.Values {
	signed := map[string]*string{}
	for k := range query {
		signed[k] = dara.String(query.Get(k))
	}
	for k := range form {
		signed[k] = dara.String(form.Get(k))
	}
	q := url.Values{}
	for k, v := range query {
		q[k] = v
	}
	q.Set("Signature", dara.StringValue(openapiutil.GetRPCSignature(signed, dara.String(http.MethodPost), dara.String(secret))))
	return q
}

// sdkAuthorizationV3 signs a request the way the official SDK's ACS3 path does.
func sdkAuthorizationV3(query url.Values, headers map[string]string, body string, acct Account) string {
	req := dara.NewRequest()
	req.Method = dara.String(http.MethodPost)
	req.Pathname = dara.String("/")
	for k := range query {
		req.Query[k] = dara.String(query.Get(k))
	}
	for k, v := range headers {
		req.Headers[k] = dara.String(v)
	}
	return dara.StringValue(openapiutil.GetAuthorization(req, dara.String(AlgorithmV3),
		dara.String(hexSHA256([]byte(body))), dara.String(acct.AccessKeyID), dara.String(acct.AccessKeySecret)))
}

// FuzzVerify feeds the request parser and verifier (1) arbitrary raw
// requests, which must never panic nor verify, and (2) a value signed by
// the official SDK's own signing code in both algorithms, in the query and
// in the form body, which must always verify.
func FuzzVerify(f *testing.F) {
	seeds := []struct{ rawQuery, body, auth, value string }{
		{"Action=CreateProductDistributeJob&Signature=abc", "ProductKey=a+b", "", "a b*~@+/é中"},
		{"", "", "ACS3-HMAC-SHA256 Credential=ak-a1,SignedHeaders=host,Signature=00", "plain"},
		{"%zz", "%", "ACS3-HMAC-SHA256", ""},
		{"a=1&a=2&Signature=", "JobId=x%20y", "Bearer x", "%41+%2B"},
		{"SignatureMethod=HMAC-SHA1&SignatureVersion=1.0", "", "ACS3-HMAC-SHA256 Credential=,,,=", "\x00\xff"},
	}
	for _, s := range seeds {
		f.Add(s.rawQuery, s.body, s.auth, s.value)
	}
	acct := acctA1
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	ver := verifier{skew: 15 * time.Minute, lookup: func(id string) (Account, bool) { return acct, id == acct.AccessKeyID }}
	form := "application/x-www-form-urlencoded"
	f.Fuzz(func(t *testing.T, rawQuery, body, auth, value string) {
		// (1) Arbitrary input.
		r, err := http.NewRequest(http.MethodPost, "http://iot.example/?x", strings.NewReader(body))
		if err != nil {
			t.Skip()
		}
		r.URL.RawQuery = rawQuery
		r.Header.Set("Content-Type", form)
		r.Header.Set("Authorization", auth)
		if p, gerr := parseRequest(r, []byte(body)); gerr == nil {
			if _, _, gerr := ver.verify(p, now); gerr == nil {
				t.Fatalf("unsigned request verified: query %q body %q auth %q", rawQuery, body, auth)
			}
		}

		// (2) The SDK's signatures over value, in both algorithms.
		apiQuery := url.Values{"ProductKey": {value}, "SignatureType": {""}}
		apiForm := url.Values{"JobId": {value + "/form"}}
		ts := now.Format(timestampLayout)

		q := url.Values{"Action": {"ListDeviceDistributeJob"}, "Version": {APIVersion}, "Format": {"json"},
			"Timestamp": {ts}, "SignatureNonce": {"n1"}, "AccessKeyId": {acct.AccessKeyID},
			"SignatureMethod": {AlgorithmV1}, "SignatureVersion": {"1.0"}}
		for k, v := range apiQuery {
			q[k] = v
		}
		q = sdkSignedV1(q, apiForm, acct.AccessKeySecret)
		checkSigned(t, ver, now, q.Encode(), apiForm.Encode(), http.Header{}, value)

		bodyV3 := apiForm.Encode()
		h := map[string]string{
			"host": "iot.example", "x-acs-action": "ListDeviceDistributeJob", "x-acs-version": APIVersion,
			"x-acs-date": ts, "x-acs-signature-nonce": "n2", "x-acs-content-sha256": hexSHA256([]byte(bodyV3)),
			"content-type": form,
		}
		hdr := http.Header{}
		for k, v := range h {
			if k != "host" {
				hdr.Set(k, v)
			}
		}
		hdr.Set("Authorization", sdkAuthorizationV3(apiQuery, h, bodyV3, acct))
		checkSigned(t, ver, now, apiQuery.Encode(), bodyV3, hdr, value)
	})
}

func checkSigned(t *testing.T, ver verifier, now time.Time, rawQuery, body string, hdr http.Header, value string) {
	t.Helper()
	r, err := http.NewRequest(http.MethodPost, "http://iot.example/", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	r.URL.RawQuery = rawQuery
	r.Header = hdr
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	p, gerr := parseRequest(r, []byte(body))
	if gerr != nil {
		t.Fatalf("parse: %v", gerr)
	}
	req, _, gerr := ver.verify(p, now)
	if gerr != nil {
		t.Fatalf("verify value %q: %v", value, gerr)
	}
	if got := req.params.Get("ProductKey"); got != value {
		t.Errorf("ProductKey = %q, want %q", got, value)
	}
	if got := req.params.Get("JobId"); got != value+"/form" {
		t.Errorf("JobId = %q, want %q", got, value+"/form")
	}
}
