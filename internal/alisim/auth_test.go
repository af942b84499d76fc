package alisim

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// TestGatewayChecks covers what the SDK cannot send: replays, stale or
// malformed timestamps, tampering, incomplete signatures, bad versions and
// actions, in both algorithms.
func TestGatewayChecks(t *testing.T) {
	t.Parallel()
	query := url.Values{"JobId": {"x"}}
	for _, m := range modes {
		tests := []struct {
			name   string
			call   func(h *harness) rawCall
			status int
			code   string
		}{
			{"ok reaches the action", func(*harness) rawCall {
				return rawCall{action: ActionQueryDeviceDistributeJob, query: query}
			}, 200, DefaultJobNotFoundCode},
			{"GET works", func(*harness) rawCall {
				return rawCall{method: http.MethodGet, action: ActionQueryDeviceDistributeJob, query: query}
			}, 200, DefaultJobNotFoundCode},
			{"expired timestamp", func(h *harness) rawCall {
				return rawCall{action: ActionQueryDeviceDistributeJob, query: query, date: h.clock.Now().Add(-16 * time.Minute)}
			}, 400, "InvalidTimeStamp.Expired"},
			{"future timestamp", func(h *harness) rawCall {
				return rawCall{action: ActionQueryDeviceDistributeJob, query: query, date: h.clock.Now().Add(16 * time.Minute)}
			}, 400, "InvalidTimeStamp.Expired"},
			{"timestamp within skew", func(h *harness) rawCall {
				return rawCall{action: ActionQueryDeviceDistributeJob, query: query, date: h.clock.Now().Add(-14 * time.Minute)}
			}, 200, DefaultJobNotFoundCode},
			{"unknown action", func(*harness) rawCall {
				return rawCall{action: "CreateDevice"}
			}, 404, "InvalidAction.NotFound"},
			{"missing JobId", func(*harness) rawCall {
				return rawCall{action: ActionQueryDeviceDistributeJob}
			}, 400, "MissingJobId"},
			{"tampered query", func(*harness) rawCall {
				return rawCall{action: ActionQueryDeviceDistributeJob, query: query, tamper: func(r *http.Request) {
					r.URL.RawQuery = strings.Replace(r.URL.RawQuery, "JobId=x", "JobId=y", 1)
				}}
			}, 400, "SignatureDoesNotMatch"},
			{"tampered body", func(*harness) rawCall {
				return rawCall{action: ActionListDeviceDistributeJob, query: url.Values{"PageSize": {"5"}},
					form: url.Values{"JobId": {"a"}}, tamper: func(r *http.Request) {
						r.Body = nopCloser{strings.NewReader("JobId=b")}
						r.ContentLength = 7
					}}
			}, 400, "SignatureDoesNotMatch"},
		}
		for _, tt := range tests {
			t.Run(m.name+"/"+tt.name, func(t *testing.T) {
				t.Parallel()
				h := newHarness(t, Config{})
				rc := tt.call(h)
				rc.acct, rc.v1 = acctA1, m.v1
				r := h.do(t, rc)
				if r.Status != tt.status || r.Code != tt.code {
					t.Errorf("got %d %s (%s), want %d %s", r.Status, r.Code, r.Message, tt.status, tt.code)
				}
			})
		}
	}
}

type nopCloser struct{ *strings.Reader }

func (nopCloser) Close() error { return nil }

func TestReplayedNonce(t *testing.T) {
	t.Parallel()
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, Config{})
			rc := rawCall{acct: acctA1, v1: m.v1, action: ActionQueryDeviceDistributeJob,
				query: url.Values{"JobId": {"x"}}, nonce: "same-nonce", date: h.clock.Now()}
			if r := h.do(t, rc); r.Status != 200 {
				t.Fatalf("first: %d %s", r.Status, r.Code)
			}
			h.clock.Advance(10 * time.Minute)
			if r := h.do(t, rc); r.Status != 400 || r.Code != "SignatureNonceUsed" ||
				r.Message != "Specified signature nonce was used already." {
				t.Errorf("replay: %d %s %s", r.Status, r.Code, r.Message)
			}
			// Another key of the same account has its own nonces.
			rc.acct = acctA2
			if r := h.do(t, rc); r.Status != 200 {
				t.Errorf("other key: %d %s", r.Status, r.Code)
			}
		})
	}
}

func TestMalformedSignatures(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		req    func(base string) *http.Request
		status int
		code   string
	}{
		{"no signature at all", func(base string) *http.Request {
			r, _ := http.NewRequest(http.MethodPost, base+"/?Action=QueryDeviceDistributeJob&JobId=x", nil)
			return r
		}, 400, "MissingSignature"},
		{"v1 without nonce", func(base string) *http.Request {
			r, _ := http.NewRequest(http.MethodPost, base+"/?Action=QueryDeviceDistributeJob&Signature=x&AccessKeyId=ak-a1&SignatureMethod=HMAC-SHA1&SignatureVersion=1.0", nil)
			return r
		}, 400, "MissingSignatureNonce"},
		{"v1 with another method", func(base string) *http.Request {
			r, _ := http.NewRequest(http.MethodPost, base+"/?Action=A&Version=2018-01-20&Signature=x&AccessKeyId=ak-a1&SignatureMethod=HMAC-SHA256&SignatureVersion=1.0&SignatureNonce=n&Timestamp=2026-01-01T00:00:00Z", nil)
			return r
		}, 400, "IncompleteSignature"},
		{"v3 without signed headers", func(base string) *http.Request {
			r, _ := http.NewRequest(http.MethodPost, base+"/", nil)
			r.Header.Set("Authorization", "ACS3-HMAC-SHA256 Credential=ak-a1,Signature=00")
			return r
		}, 400, "IncompleteSignature"},
		{"v3 not signing the date", func(base string) *http.Request {
			r, _ := http.NewRequest(http.MethodPost, base+"/", nil)
			r.Header.Set("x-acs-date", "2026-01-01T00:00:00Z")
			r.Header.Set("Authorization", "ACS3-HMAC-SHA256 Credential=ak-a1,SignedHeaders=host;x-acs-action,Signature=00")
			return r
		}, 400, "IncompleteSignature"},
		{"other scheme", func(base string) *http.Request {
			r, _ := http.NewRequest(http.MethodPost, base+"/", nil)
			r.Header.Set("Authorization", "Bearer x")
			return r
		}, 400, "IncompleteSignature"},
		{"v1 malformed timestamp", func(base string) *http.Request {
			r, _ := http.NewRequest(http.MethodGet, base+"/?Action=A&Version=2018-01-20&Signature=x&AccessKeyId=ak-a1&SignatureMethod=HMAC-SHA1&SignatureVersion=1.0&SignatureNonce=n&Timestamp=yesterday", nil)
			return r
		}, 400, "InvalidTimeStamp.Format"},
		{"PUT", func(base string) *http.Request {
			r, _ := http.NewRequest(http.MethodPut, base+"/", nil)
			return r
		}, 405, "UnsupportedHTTPMethod"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, Config{})
			resp, err := h.srv.Client().Do(tt.req(h.srv.URL))
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			calls := h.sim.Audit()
			if resp.StatusCode != tt.status || len(calls) != 1 || calls[0].Code != tt.code {
				t.Errorf("got %d %+v, want %d %s", resp.StatusCode, calls, tt.status, tt.code)
			}
		})
	}
}

func TestWrongVersion(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Config{})
	q := url.Values{"Action": {ActionQueryDeviceDistributeJob}, "Version": {"2017-04-20"}, "JobId": {"x"},
		"AccessKeyId": {acctA1.AccessKeyID}, "SignatureMethod": {AlgorithmV1}, "SignatureVersion": {"1.0"},
		"SignatureNonce": {"n1"}, "Timestamp": {h.clock.Now().Format(timestampLayout)}}
	q.Set("Signature", signV1(acctA1.AccessKeySecret, stringToSignV1(http.MethodGet, q)))
	resp, err := h.srv.Client().Get(h.srv.URL + "/?" + q.Encode())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if c := h.sim.Audit()[0]; resp.StatusCode != 400 || c.Code != "InvalidVersion" {
		t.Errorf("got %d %+v, want 400 InvalidVersion", resp.StatusCode, c)
	}
}
