package alisim

import "time"

// Outcomes of a call, as recorded in Call.Outcome.
const (
	OutcomeOK        = "ok"
	OutcomeThrottled = "throttled"
	OutcomeError     = "error"
	OutcomeTimeout   = "timeout"
)

// Call is the audit record of one API call that arrived. Outcome is empty
// while the call is being processed.
type Call struct {
	Seq         int    `json:"seq"`
	RequestID   string `json:"request_id"`
	Action      string `json:"action"`
	UID         string `json:"uid,omitempty"`
	AccessKeyID string `json:"access_key_id,omitempty"`
	ProductKey  string `json:"product_key,omitempty"`
	// Devices is the number of DeviceName.N of a CreateDeviceDistributeJob.
	Devices         int       `json:"devices,omitempty"`
	JobID           string    `json:"job_id,omitempty"`
	Code            string    `json:"code,omitempty"`
	HTTPStatus      int       `json:"http_status"`
	Arrived         time.Time `json:"arrived"`
	Outcome         string    `json:"outcome"`
	SignatureMethod string    `json:"signature_method,omitempty"`
}

// record stores the final state of a call.
func (s *Server) record(c Call) {
	s.mu.Lock()
	s.calls[c.Seq-1] = c
	s.mu.Unlock()
}

// Audit returns every call that arrived, in arrival order (by Seq, from 1).
func (s *Server) Audit() []Call {
	return s.AuditSince(0, "")
}

// AuditSince returns the calls with Seq > since, of the given action when
// action is not empty, in arrival order.
func (s *Server) AuditSince(since int, action string) []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := []Call{}
	for _, c := range s.calls[min(max(since, 0), len(s.calls)):] {
		if action == "" || c.Action == action {
			out = append(out, c)
		}
	}
	return out
}
