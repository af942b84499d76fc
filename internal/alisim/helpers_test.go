package alisim

import (
	"encoding/json"
	"errors"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	openapi "github.com/alibabacloud-go/darabonba-openapi/v2/client"
	iot "github.com/alibabacloud-go/iot-20180120/v6/client"
	"github.com/alibabacloud-go/tea/tea"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// Test accounts: A1 and A2 are two AccessKeys of one UID; B is another UID.
var (
	acctA1 = Account{UID: "1111111111111111", AccessKeyID: "ak-a1", AccessKeySecret: "secret-a1"}
	acctA2 = Account{UID: "1111111111111111", AccessKeyID: "ak-a2", AccessKeySecret: "secret-a2"}
	acctB  = Account{UID: "2222222222222222", AccessKeyID: "ak-b", AccessKeySecret: "secret-b"}
)

// clock is an injectable clock that moves only when told to.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

// newClock starts at the current time, so that the SDK's real timestamps
// stay within the simulator's skew.
func newClock() *clock { return &clock{t: time.Now().UTC()} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// harness is a simulator behind a real HTTP server.
type harness struct {
	sim   *Server
	clock *clock
	srv   *httptest.Server
}

// newHarness starts a simulator on cfg with the test accounts, an injected
// clock and a fixed seed, unless cfg sets them.
func newHarness(t *testing.T, cfg Config) *harness {
	t.Helper()
	h := &harness{clock: newClock()}
	if cfg.Accounts == nil {
		cfg.Accounts = []Account{acctA1, acctA2, acctB}
	}
	if cfg.Now == nil {
		cfg.Now = h.clock.Now
	}
	if cfg.Rand == nil {
		cfg.Rand = rand.New(rand.NewPCG(1, 2))
	}
	h.sim = New(cfg)
	h.srv = httptest.NewServer(h.sim)
	t.Cleanup(h.srv.Close)
	return h
}

// sdk returns an official SDK client for acct; v1 selects HMAC-SHA1.
func (h *harness) sdk(t *testing.T, acct Account, v1 bool) *iot.Client {
	t.Helper()
	cfg := &openapi.Config{
		Endpoint:        tea.String(strings.TrimPrefix(h.srv.URL, "http://")),
		Protocol:        tea.String("HTTP"),
		AccessKeyId:     tea.String(acct.AccessKeyID),
		AccessKeySecret: tea.String(acct.AccessKeySecret),
		RegionId:        tea.String("cn-shanghai"),
	}
	if v1 {
		cfg.SignatureAlgorithm = tea.String("v2")
	}
	c, err := iot.NewClient(cfg)
	if err != nil {
		t.Fatalf("new sdk client: %v", err)
	}
	return c
}

// create calls CreateProductDistributeJob through the SDK with the caller's
// UID as target.
func (h *harness) create(t *testing.T, c *iot.Client, acct Account, productKey string) *iot.CreateProductDistributeJobResponseBody {
	t.Helper()
	resp, err := c.CreateProductDistributeJob(&iot.CreateProductDistributeJobRequest{
		ProductKey:       tea.String(productKey),
		SourceInstanceId: tea.String("iotx-oxssharez200"),
		TargetInstanceId: tea.String("iot-cn-target"),
		TargetUid:        tea.String(acct.UID),
	})
	if err != nil {
		t.Fatalf("create %s: %v", productKey, err)
	}
	return resp.Body
}

// mustCreate creates a job and returns its JobId.
func (h *harness) mustCreate(t *testing.T, c *iot.Client, acct Account, productKey string) string {
	t.Helper()
	b := h.create(t, c, acct, productKey)
	if !tea.BoolValue(b.Success) {
		t.Fatalf("create %s: %s %s", productKey, tea.StringValue(b.Code), tea.StringValue(b.ErrorMessage))
	}
	return tea.StringValue(b.JobId)
}

// sdkError asserts err is a *tea.SDKError and returns it.
func sdkError(t *testing.T, err error) *tea.SDKError {
	t.Helper()
	var se *tea.SDKError
	if !errors.As(err, &se) {
		t.Fatalf("error %v (%T) is not a *tea.SDKError", err, err)
	}
	return se
}

// rawCall is a hand-made signed request, for what the SDK cannot do
// (replays, stale timestamps, tampering).
type rawCall struct {
	acct   Account
	v1     bool
	method string
	action string
	query  url.Values
	form   url.Values
	nonce  string
	date   time.Time
	// tamper runs on the request after signing.
	tamper func(*http.Request)
}

// request builds the signed request against base.
func (rc rawCall) request(t *testing.T, base string) *http.Request {
	t.Helper()
	method := rc.method
	if method == "" {
		method = http.MethodPost
	}
	query := url.Values{}
	for k, v := range rc.query {
		query[k] = v
	}
	host := strings.TrimPrefix(base, "http://")
	var body string
	if len(rc.form) > 0 {
		body = rc.form.Encode()
	}
	ts := rc.date.UTC().Format(timestampLayout)
	header := http.Header{}
	if rc.v1 {
		query.Set("Action", rc.action)
		query.Set("Version", APIVersion)
		query.Set("Format", "JSON")
		query.Set("AccessKeyId", rc.acct.AccessKeyID)
		query.Set("SignatureMethod", AlgorithmV1)
		query.Set("SignatureVersion", "1.0")
		query.Set("SignatureNonce", rc.nonce)
		query.Set("Timestamp", ts)
		all := url.Values{}
		for k, v := range query {
			all[k] = append(all[k], v...)
		}
		for k, v := range rc.form {
			all[k] = append(all[k], v...)
		}
		query.Set("Signature", signV1(rc.acct.AccessKeySecret, stringToSignV1(method, all)))
	} else {
		header.Set("x-acs-action", rc.action)
		header.Set("x-acs-version", APIVersion)
		header.Set("x-acs-date", ts)
		header.Set("x-acs-signature-nonce", rc.nonce)
		header.Set("x-acs-content-sha256", hexSHA256([]byte(body)))
		signed := map[string]string{"host": host}
		for _, n := range v3Required {
			signed[n] = header.Get(n)
		}
		if body != "" {
			header.Set("Content-Type", "application/x-www-form-urlencoded")
			signed["content-type"] = "application/x-www-form-urlencoded"
		}
		sts := stringToSignV3(canonicalRequestV3(method, "/", query, signed, hexSHA256([]byte(body))))
		names := make([]string, 0, len(signed))
		for n := range signed {
			names = append(names, n)
		}
		slices.Sort(names)
		header.Set("Authorization", AlgorithmV3+" Credential="+rc.acct.AccessKeyID+
			",SignedHeaders="+strings.Join(names, ";")+",Signature="+signV3(rc.acct.AccessKeySecret, sts))
	}
	u := base + "/?" + strings.ReplaceAll(query.Encode(), "+", "%20")
	req, err := http.NewRequest(method, u, strings.NewReader(body))
	if err != nil {
		t.Fatalf("new request: %v", err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	if rc.tamper != nil {
		rc.tamper(req)
	}
	return req
}

// apiReply is the union of gateway and business bodies.
type apiReply struct {
	Status       int
	RequestID    string `json:"RequestId"`
	HostID       string `json:"HostId"`
	Code         string
	Message      string
	Recommend    string
	Success      *bool
	ErrorMessage string
	JobID        string `json:"JobId"`
	raw          map[string]any
}

// do sends rc and decodes the reply.
func (h *harness) do(t *testing.T, rc rawCall) apiReply {
	t.Helper()
	if rc.date.IsZero() {
		rc.date = h.clock.Now()
	}
	if rc.nonce == "" {
		rc.nonce = "nonce-" + strconv.FormatUint(rand.Uint64(), 16)
	}
	resp, err := h.srv.Client().Do(rc.request(t, h.srv.URL))
	if err != nil {
		t.Fatalf("do %s: %v", rc.action, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read %s: %v", rc.action, err)
	}
	r := apiReply{Status: resp.StatusCode}
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatalf("decode %s: %v: %s", rc.action, err, b)
	}
	if err := json.Unmarshal(b, &r.raw); err != nil {
		t.Fatalf("decode %s: %v", rc.action, err)
	}
	return r
}
