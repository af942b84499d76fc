package alisim

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"
)

// routes registers the API and the admin endpoints. The admin endpoints
// need no signature; they exist for tests, the benchmark and operators.
func (s *Server) routes() {
	s.mux.HandleFunc("/", s.serveAPI)
	s.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	s.mux.HandleFunc("GET /_alisim/audit", s.handleAudit)
	s.mux.HandleFunc("GET /_alisim/jobs", s.handleJobs)
	s.mux.HandleFunc("POST /_alisim/jobs", s.handleAddJob)
	s.mux.HandleFunc("GET /_alisim/detail/{file}", s.handleDetailFile)
	s.mux.HandleFunc("GET /_alisim/faults", s.handleGetFaults)
	s.mux.HandleFunc("POST /_alisim/faults", s.handleSetFaults)
}

// faultsJSON is Faults on the wire: durations as Go duration strings, times
// as RFC 3339. ThrottleFor, when set, throttles from now for that long.
type faultsJSON struct {
	LatencyMin              string    `json:"latency_min,omitempty"`
	LatencyMax              string    `json:"latency_max,omitempty"`
	ServerErrorRatio        float64   `json:"server_error_ratio"`
	TimeoutAfterCreateRatio float64   `json:"timeout_after_create_ratio"`
	ErrorAfterCreateRatio   float64   `json:"error_after_create_ratio"`
	HoldTimeout             string    `json:"hold_timeout,omitempty"`
	ThrottleUntil           time.Time `json:"throttle_until"`
	ThrottleFor             string    `json:"throttle_for,omitempty"`
	DeviceFailRatio         float64   `json:"device_fail_ratio"`
	DeviceFailCode          string    `json:"device_fail_code,omitempty"`
	UnreadableDetails       bool      `json:"unreadable_details"`
}

func faultsToJSON(f Faults) faultsJSON {
	return faultsJSON{
		LatencyMin:              f.LatencyMin.String(),
		LatencyMax:              f.LatencyMax.String(),
		ServerErrorRatio:        f.ServerErrorRatio,
		TimeoutAfterCreateRatio: f.TimeoutAfterCreateRatio,
		ErrorAfterCreateRatio:   f.ErrorAfterCreateRatio,
		HoldTimeout:             f.HoldTimeout.String(),
		ThrottleUntil:           f.ThrottleUntil,
		DeviceFailRatio:         f.DeviceFailRatio,
		DeviceFailCode:          f.DeviceFailCode,
		UnreadableDetails:       f.UnreadableDetails,
	}
}

func (fj faultsJSON) faults(now time.Time) (Faults, error) {
	f := Faults{
		ServerErrorRatio:        fj.ServerErrorRatio,
		TimeoutAfterCreateRatio: fj.TimeoutAfterCreateRatio,
		ErrorAfterCreateRatio:   fj.ErrorAfterCreateRatio,
		ThrottleUntil:           fj.ThrottleUntil,
		DeviceFailRatio:         fj.DeviceFailRatio,
		DeviceFailCode:          fj.DeviceFailCode,
		UnreadableDetails:       fj.UnreadableDetails,
	}
	for _, d := range []struct {
		name string
		s    string
		dst  *time.Duration
	}{
		{"latency_min", fj.LatencyMin, &f.LatencyMin},
		{"latency_max", fj.LatencyMax, &f.LatencyMax},
		{"hold_timeout", fj.HoldTimeout, &f.HoldTimeout},
	} {
		if d.s == "" {
			continue
		}
		v, err := time.ParseDuration(d.s)
		if err != nil {
			return Faults{}, fmt.Errorf("%s: %w", d.name, err)
		}
		*d.dst = v
	}
	if fj.ThrottleFor != "" {
		v, err := time.ParseDuration(fj.ThrottleFor)
		if err != nil {
			return Faults{}, fmt.Errorf("throttle_for: %w", err)
		}
		f.ThrottleUntil = now.Add(v)
	}
	if f.LatencyMax == 0 {
		f.LatencyMax = f.LatencyMin
	}
	return f, f.Validate()
}

func (s *Server) handleAudit(w http.ResponseWriter, r *http.Request) {
	since := 0
	if v := r.URL.Query().Get("since"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			writeAdminError(w, http.StatusBadRequest, errors.New("since: not a non-negative integer"))
			return
		}
		since = n
	}
	writeJSON(w, http.StatusOK, map[string]any{"calls": s.AuditSince(since, r.URL.Query().Get("action"))})
}

func (s *Server) handleJobs(w http.ResponseWriter, r *http.Request) {
	uid := r.URL.Query().Get("uid")
	jobs := []Job{}
	for _, j := range s.Jobs() {
		if uid == "" || j.UID == uid {
			jobs = append(jobs, j)
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"jobs": jobs})
}

func (s *Server) handleAddJob(w http.ResponseWriter, r *http.Request) {
	var in struct {
		UID        string `json:"uid"`
		ProductKey string `json:"product_key"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBody)).Decode(&in); err != nil {
		writeAdminError(w, http.StatusBadRequest, fmt.Errorf("body: %w", err))
		return
	}
	if in.UID == "" {
		if len(s.cfg.Accounts) == 0 {
			writeAdminError(w, http.StatusBadRequest, errors.New("uid: required"))
			return
		}
		in.UID = s.cfg.Accounts[0].UID
	}
	if in.ProductKey == "" {
		writeAdminError(w, http.StatusBadRequest, errors.New("product_key: required"))
		return
	}
	writeJSON(w, http.StatusCreated, map[string]string{"job_id": s.AddExternalJob(in.UID, in.ProductKey)})
}

func (s *Server) handleGetFaults(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, faultsToJSON(s.CurrentFaults()))
}

func (s *Server) handleSetFaults(w http.ResponseWriter, r *http.Request) {
	var in faultsJSON
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&in); err != nil {
		writeAdminError(w, http.StatusBadRequest, fmt.Errorf("body: %w", err))
		return
	}
	f, err := in.faults(s.cfg.Now())
	if err == nil {
		err = s.SetFaults(f)
	}
	if err != nil {
		writeAdminError(w, http.StatusBadRequest, err)
		return
	}
	writeJSON(w, http.StatusOK, faultsToJSON(s.CurrentFaults()))
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v) // the client may be gone; nothing to do
}

func writeAdminError(w http.ResponseWriter, status int, err error) {
	writeJSON(w, status, map[string]string{"error": err.Error()})
}
