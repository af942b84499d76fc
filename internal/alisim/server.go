// Package alisim simulates the Alibaba Cloud IoT endpoint
// (iot.cn-shanghai.aliyuncs.com) for the product and device distribution
// APIs, as an http.Handler.
//
// It exists so that every test, the benchmark and the development stack run
// distq against an endpoint that behaves like the real one: it verifies both
// signature algorithms (ACS3-HMAC-SHA256 and HMAC-SHA1), timestamps and
// nonces; it enforces per-account, per-action QPS and the job quota with the
// remote's error codes and body shapes; it runs jobs through Status 0, 1 and
// 2 (or 3) by the clock; it serves device jobs' result files from its own
// HTTP server (devices.go); it injects faults on demand; and it keeps an audit
// of every call with its arrival time, so tests can prove from the outside
// that distq respects the remote's limits.
//
// Behaviour no public source settles, and the choice made here:
//   - Business errors are HTTP 200 with Success false.
//   - The quota, cross-account and unknown-job codes are configurable, with
//     the defaults DefaultQuotaExceededCode, DefaultCrossAccountCode and
//     DefaultJobNotFoundCode.
//   - CreateProductDistributeJob without TargetUid and TargetAliyunId answers
//     the gateway error MissingTargetUid (400).
//   - Throttling.User is HTTP 400.
//   - Calls rejected before rate limiting (signature, timestamp, nonce,
//     injected 5xx or throttling burst) do not count against the QPS; calls
//     accepted by it count even when they then fail (missing parameter,
//     business error).
//   - Any job may be deleted; a deleted job holds no slot in either mode.
//   - Device jobs: see devices.go.
//   - ListDeviceDistributeJob lists newest first; its NextToken is the offset
//     of the next item. PageSize outside 1–200 and other malformed numbers
//     answer iot.check.InvalidFormattedParameter.
//   - A request with no signature at all answers MissingSignature (400); a
//     malformed Authorization header, a v3 request that does not sign host
//     and every x-acs-* header the algorithm requires, or a v1 request with
//     another SignatureMethod answers IncompleteSignature.
//   - ACS3 canonical query names are encoded like values, as the vendor's
//     documentation says (the SDK leaves names as is: the same for every
//     real parameter name).
//   - A body that does not match x-acs-content-sha256 answers
//     SignatureDoesNotMatch: the server hashes the body itself.
//
// A Server is safe for concurrent use. It starts no goroutine: job Status is
// computed from the creation time and the clock.
package alisim

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"
)

// maxBody bounds the request body the simulator reads: a Create of 10,000
// device names of 32 characters, each percent-encoded at worst, fits.
const maxBody = 4 << 20

// Server is the simulated endpoint. Create it with New.
type Server struct {
	cfg      Config
	accounts map[string]Account
	verifier verifier
	handlers map[string]func(call) outcome
	mux      *http.ServeMux

	mu      sync.Mutex
	faults  Faults
	calls   []Call
	jobs    jobStore
	nonces  nonceStore
	limiter limiter
	// fileKey signs the result-file URLs; downloads counts the files served.
	fileKey   []byte
	downloads int
}

// New returns a Server for cfg, with defaults filled in. It panics if cfg is
// invalid (see Config.Validate); ConfigFromEnv returns only valid configs.
func New(cfg Config) *Server {
	if err := cfg.Validate(); err != nil {
		panic("alisim: invalid config: " + err.Error())
	}
	cfg = cfg.withDefaults()
	s := &Server{
		cfg:      cfg,
		accounts: make(map[string]Account, len(cfg.Accounts)),
		faults:   cfg.Faults,
		nonces:   nonceStore{window: cfg.NonceWindow, seen: map[string]map[string]time.Time{}},
	}
	for _, a := range cfg.Accounts {
		s.accounts[a.AccessKeyID] = a
	}
	s.verifier = verifier{
		lookup: func(id string) (Account, bool) { a, ok := s.accounts[id]; return a, ok },
		skew:   cfg.TimestampSkew,
	}
	s.handlers = map[string]func(call) outcome{
		ActionCreateProductDistributeJob:  s.createJob,
		ActionCreateDeviceDistributeJob:   s.createDeviceJob,
		ActionQueryDeviceDistributeJob:    s.queryJob,
		ActionListDeviceDistributeJob:     s.listJobs,
		ActionDeleteDeviceDistributeJob:   s.deleteJob,
		ActionQueryDeviceDistributeDetail: s.queryDetail,
		ActionListDistributedProduct:      s.listDistributed,
	}
	s.fileKey = make([]byte, 32)
	for i := range s.fileKey {
		s.fileKey[i] = byte(cfg.Rand.Uint32())
	}
	s.mux = http.NewServeMux()
	s.routes()
	return s
}

// ServeHTTP serves the API at "/" and the admin endpoints under /_alisim/
// and /healthz.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mux.ServeHTTP(w, r)
}

// SetFaults replaces the injected faults. A zero HoldTimeout means 30s.
// It returns an error, and changes nothing, if f is invalid.
func (s *Server) SetFaults(f Faults) error {
	if err := f.Validate(); err != nil {
		return err
	}
	s.mu.Lock()
	s.faults = f.withDefaults()
	s.mu.Unlock()
	return nil
}

// CurrentFaults returns the faults in force.
func (s *Server) CurrentFaults() Faults {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.faults
}

// AddExternalJob creates a job of account uid as if made outside distq (by
// the console or another tool): it counts against the quota and shows in
// Query and List, but was never requested through the API. It returns the
// JobId. It never fails and ignores the quota.
func (s *Server) AddExternalJob(uid, productKey string) string {
	return s.AddExternalJobTo(uid, productKey, "iotx-oxssharez200", "iot-external-target")
}

// AddExternalJobTo is AddExternalJob from source to target instance: a job
// indistinguishable from one distq would make for the same distribution.
func (s *Server) AddExternalJobTo(uid, productKey, source, target string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	j := s.newJob(uid, productKey, source, target, s.cfg.Now())
	j.fails = false
	j.external = true
	s.jobs.add(j)
	return j.id
}

// Jobs returns every job ever created, deleted ones included, oldest first,
// with their Status at the current time.
func (s *Server) Jobs() []Job {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.jobs.snapshots(s.cfg.Now())
}

// chance draws true with probability p. The caller holds s.mu.
func (s *Server) chance(p float64) bool {
	return p > 0 && s.cfg.Rand.Float64() < p
}

const idAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

// newJobID returns a 24-character id in the style of the endpoint's. The
// caller holds s.mu.
func (s *Server) newJobID() string {
	for {
		b := make([]byte, 24)
		for i := range b {
			b[i] = idAlphabet[s.cfg.Rand.IntN(len(idAlphabet))]
		}
		if _, dup := s.jobs.byID[string(b)]; !dup {
			return string(b)
		}
	}
}

// newRequestID returns an upper-case UUID-shaped id. The caller holds s.mu.
func (s *Server) newRequestID() string {
	a, b := s.cfg.Rand.Uint64(), s.cfg.Rand.Uint64()
	return fmt.Sprintf("%08X-%04X-%04X-%04X-%012X",
		a>>32, (a>>16)&0xffff, a&0xffff, b>>48, b&0xffffffffffff)
}

// latency draws the injected delay. The caller holds s.mu.
func (s *Server) latency() time.Duration {
	lo, hi := s.faults.LatencyMin, s.faults.LatencyMax
	if hi <= lo {
		return lo
	}
	return lo + time.Duration(s.cfg.Rand.Int64N(int64(hi-lo)+1))
}

// serveAPI runs one API call: injected latency, arrival, injected 5xx,
// signature, version and action, throttling, then the action itself.
func (s *Server) serveAPI(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	delay := s.latency()
	s.mu.Unlock()
	if delay > 0 {
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			return // the call never arrived
		}
	}

	s.mu.Lock()
	now := s.cfg.Now()
	seq := len(s.calls) + 1
	rid := s.newRequestID()
	s.calls = append(s.calls, Call{Seq: seq, RequestID: rid, Arrived: now})
	serverError := s.chance(s.faults.ServerErrorRatio)
	internal := serverError && s.cfg.Rand.IntN(2) == 0
	s.mu.Unlock()

	rec := Call{Seq: seq, RequestID: rid, Arrived: now}
	var o outcome
	defer func() {
		if o.hold {
			rec.Outcome = OutcomeTimeout
			rec.JobID, rec.ProductKey, rec.Devices = o.jobID, o.productKey, o.devices
			s.record(rec)
			s.hold(r)
			return
		}
		s.write(w, r, rid, o, &rec)
		s.record(rec)
	}()

	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	var p *parsed
	switch {
	case err != nil:
		o.gateway = errInvalidParam("body")
	case len(body) > maxBody:
		o.gateway = errBodyTooLarge()
	case r.Method != http.MethodGet && r.Method != http.MethodPost:
		o.gateway = errMethodNotAllowed()
	default:
		p, o.gateway = parseRequest(r, body)
	}
	if p != nil {
		rec.Action, rec.AccessKeyID = p.peek()
		rec.SignatureMethod = p.algorithm()
		if a, ok := s.accounts[rec.AccessKeyID]; ok {
			rec.UID = a.UID
		}
	}
	if o.gateway != nil {
		return
	}
	if serverError {
		o.gateway = errServiceUnavailable()
		if internal {
			o.gateway = errInternal()
		}
		return
	}
	if r.URL.Path != "/" {
		o.gateway = errActionNotFound()
		return
	}
	o = s.dispatch(p, now, &rec)
}

// dispatch verifies and runs a parsed call under the Server's lock.
func (s *Server) dispatch(p *parsed, now time.Time, rec *Call) outcome {
	req, acct, gerr := s.verifier.verify(p, now)
	if gerr != nil {
		return outcome{gateway: gerr}
	}
	rec.Action, rec.AccessKeyID, rec.UID = req.action, acct.AccessKeyID, acct.UID
	rec.ProductKey = req.params.Get("ProductKey")
	rec.JobID = req.params.Get("JobId")

	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.nonces.use(acct.AccessKeyID, req.nonce, now) {
		return outcome{gateway: errNonceUsed()}
	}
	if req.version != APIVersion {
		return outcome{gateway: errInvalidVersion()}
	}
	action, ok := s.handlers[req.action]
	if !ok {
		return outcome{gateway: errActionNotFound()}
	}
	if now.Before(s.faults.ThrottleUntil) {
		return outcome{gateway: errThrottlingUser()}
	}
	if !s.limiter.allow(acct.UID, req.action, s.cfg.QPS[req.action], now) {
		return outcome{gateway: errThrottlingUser()}
	}
	return action(call{acct: acct, params: req.params, now: now, host: p.host, scheme: p.scheme})
}

// write answers the call and completes its audit record.
func (s *Server) write(w http.ResponseWriter, r *http.Request, rid string, o outcome, rec *Call) {
	status := http.StatusOK
	var body any
	switch {
	case o.gateway != nil:
		status = o.gateway.Status
		rec.Code = o.gateway.Code
		rec.Outcome = OutcomeError
		if o.gateway.Code == "Throttling.User" {
			rec.Outcome = OutcomeThrottled
		}
		body = gatewayBody{RequestID: rid, HostID: r.Host, Code: o.gateway.Code,
			Message: o.gateway.Message, Recommend: recommend(o.gateway.Code, rid)}
	case o.business != nil:
		rec.Code = o.business.Code
		rec.Outcome = OutcomeError
		body = businessBody{RequestID: rid, Success: false, Code: o.business.Code, ErrorMessage: o.business.Message}
	default:
		rec.Outcome = OutcomeOK
		m := map[string]any{"RequestId": rid, "Success": true}
		for k, v := range o.body {
			m[k] = v
		}
		body = m
	}
	rec.HTTPStatus = status
	rec.JobID = firstNonEmpty(o.jobID, rec.JobID)
	rec.ProductKey = firstNonEmpty(o.productKey, rec.ProductKey)
	rec.Devices = o.devices
	w.Header().Set("Content-Type", "application/json;charset=utf-8")
	w.Header().Set("x-acs-request-id", rid)
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false) // the endpoint writes "&" in Recommend as is
	_ = enc.Encode(body)     // the client may be gone; nothing to do
}

// hold is the timeout fault: no answer until the client goes away or the
// hold times out, then the connection is dropped.
func (s *Server) hold(r *http.Request) {
	s.mu.Lock()
	d := s.faults.HoldTimeout
	s.mu.Unlock()
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-r.Context().Done():
	case <-t.C:
	}
	panic(http.ErrAbortHandler)
}

func firstNonEmpty(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
