package alisim

// Device distribution: CreateDeviceDistributeJob and the result files of
// QueryDeviceDistributeDetail.
//
// What the simulator assumes where no public source tells (the result
// file's format above all; distq's parser is tolerant of others):
//
//   - CreateDeviceDistributeJob takes its parameters in the form body, as
//     the official SDK sends them: DeviceName.1 … DeviceName.N (at most
//     MaxDevicesPerJob), ProductKey, SourceInstanceId, Strategy (0 or 1),
//     TargetInstanceConfig.1.TargetInstanceId … and TargetUid or
//     TargetAliyunId. A missing one answers Missing<Name> (MissingDeviceName,
//     MissingTargetInstanceConfig for the list parameters); more than
//     MaxDevicesPerJob names, a Strategy other than 0 or 1, or Strategy 0
//     with several targets answer iot.check.InvalidFormattedParameter.
//   - A device job counts against the same MaxJobs as product jobs, has its
//     own Create rate (2/s), and lasts JobDuration + n × DevicePace for n
//     devices. Query and List show it with Total = n, its Strategy and
//     every target instance; ListDistributedProduct shows its product as
//     distributed to each target once it completes (the product is
//     distributed along with its devices).
//   - QueryDeviceDistributeDetail answers a File URL on the simulator's own
//     HTTP server (/_alisim/detail/<JobId>.<ext>?Expires=<unix>&Signature=…),
//     valid DetailValidity (10 minutes); after that, or with a bad
//     signature, the download answers 403 with an OSS-style XML error.
//   - The file lists the devices handled so far: none before the job ends,
//     every device of a completed job, the first half of an interrupted
//     one's. One record per device, in the order of DeviceName.N:
//     DetailJSONLines (default) is one JSON object per line,
//     {"DeviceName","ProductKey","SourceInstanceId","TargetInstanceId","Code","Message"},
//     with Code a string, "200" when the device was distributed; DetailCSV
//     is the same columns, with a header line. A device fails with
//     iot.device.NotExistedDevice when it is one of MissingDevices, with
//     iot.device.InvalidFormattedDeviceName when its name breaks the
//     remote's rules (4–32 of letters, digits, '-', '_', '@', '.', ':'), and
//     with Faults.DeviceFailCode for a Faults.DeviceFailRatio share of the
//     rest; the target of a Strategy 1 job is one of its targets per device.
//     Faults.UnreadableDetails serves every file as an HTML page instead.

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Job kinds, as Job.Kind reports them.
const (
	KindProduct = "product"
	KindDevice  = "device"
)

// MaxDevicesPerJob bounds the DeviceName.N of one CreateDeviceDistributeJob.
const MaxDevicesPerJob = 10000

// Result-file formats (Config.DetailFormat).
const (
	DetailJSONLines = "jsonl"
	DetailCSV       = "csv"
)

// Per-device codes of the result file.
const (
	// DeviceOK is the Code of a device that was distributed.
	DeviceOK = "200"
	// DeviceMissingCode is the Code of a device of Config.MissingDevices.
	DeviceMissingCode = "iot.device.NotExistedDevice"
	// DeviceBadNameCode is the Code of a device name that breaks the rules.
	DeviceBadNameCode = "iot.device.InvalidFormattedDeviceName"
)

// deviceNameRE is the remote's rule for device names.
var deviceNameRE = regexp.MustCompile(`^[A-Za-z0-9_.:@-]{4,32}$`)

// deviceJob is what a device job holds beyond a product job's.
type deviceJob struct {
	strategy int
	targets  []string
	results  []DeviceResult
}

// DeviceResult is the outcome of one device of a device job, as its result
// file tells it.
type DeviceResult struct {
	DeviceName       string `json:"DeviceName"`
	ProductKey       string `json:"ProductKey"`
	SourceInstanceID string `json:"SourceInstanceId"`
	TargetInstanceID string `json:"TargetInstanceId"`
	Code             string `json:"Code"`
	Message          string `json:"Message"`
}

// listParam returns the values of a repeated parameter name.N (suffix
// ".field" when not empty: name.N.field), in the order of N.
func listParam(p url.Values, name, field string) (vals []string, bad bool) {
	type item struct {
		n int
		v string
	}
	var items []item
	prefix := name + "."
	for k, vs := range p {
		rest, ok := strings.CutPrefix(k, prefix)
		if !ok {
			continue
		}
		if field != "" {
			var f string
			if rest, f, ok = strings.Cut(rest, "."); !ok || f != field {
				continue
			}
		}
		n, err := strconv.Atoi(rest)
		if err != nil || n < 1 {
			return nil, true
		}
		items = append(items, item{n, vs[0]})
	}
	sort.Slice(items, func(i, j int) bool { return items[i].n < items[j].n })
	for _, it := range items {
		if it.v != "" {
			vals = append(vals, it.v)
		}
	}
	return vals, false
}

func invalidParam(name string) outcome {
	return fail("iot.check.InvalidFormattedParameter", "The parameter %s is invalid.", name)
}

// createDeviceJob serves CreateDeviceDistributeJob.
func (s *Server) createDeviceJob(c call) outcome {
	p := c.params
	pk := p.Get("ProductKey")
	names, bad := listParam(p, "DeviceName", "")
	o := outcome{productKey: pk, devices: len(names)}
	if bad {
		o.business = invalidParam("DeviceName").business
		return o
	}
	if len(names) == 0 {
		o.gateway = errMissing("DeviceName")
		return o
	}
	if e := required(p, "ProductKey", "SourceInstanceId", "Strategy"); e != nil {
		o.gateway = e
		return o
	}
	targets, bad := listParam(p, "TargetInstanceConfig", "TargetInstanceId")
	if bad {
		o.business = invalidParam("TargetInstanceConfig").business
		return o
	}
	if len(targets) == 0 {
		o.gateway = errMissing("TargetInstanceConfig")
		return o
	}
	targetUID, targetAliyunID := p.Get("TargetUid"), p.Get("TargetAliyunId")
	if targetUID == "" && targetAliyunID == "" {
		o.gateway = errMissing("TargetUid")
		return o
	}
	strategy, be := intParam(p, "Strategy", 0, 0, 1)
	src := p.Get("SourceInstanceId")
	var r outcome
	switch {
	case be != nil:
		r = outcome{business: be}
	case len(names) > MaxDevicesPerJob:
		r = fail("iot.check.InvalidFormattedParameter", "The number of devices exceeds the limit of %d.", MaxDevicesPerJob)
	case strategy == 0 && len(targets) > 1:
		r = invalidParam("TargetInstanceConfig")
	case slices.Contains(targets, src):
		r = fail("iot.system.InstanceIdSame", "The source instance and the target instance are the same.")
	case slices.Contains(s.cfg.MissingProducts, pk):
		r = fail("iot.prod.NotExistedProduct", "The specified product does not exist.")
	case targetUID != "" && targetUID != c.acct.UID,
		targetAliyunID != "" && c.acct.AliyunID != "" && targetAliyunID != c.acct.AliyunID:
		r = fail(s.cfg.CrossAccountCode, "Cross-account distribution is not supported.")
	case s.jobs.inQuota(c.acct.UID, s.cfg.QuotaMode, c.now) >= s.cfg.MaxJobs:
		r = fail(s.cfg.QuotaExceededCode, "The number of distribution jobs exceeds the limit of %d.", s.cfg.MaxJobs)
	default:
		j := s.newJob(c.acct.UID, pk, src, targets[0], c.now)
		j.targetUID = targetUID
		if j.targetUID == "" {
			j.targetUID = c.acct.UID
		}
		j.targetAliyunID = targetAliyunID
		j.duration += time.Duration(len(names)) * s.cfg.DevicePace
		j.device = &deviceJob{strategy: strategy, targets: targets, results: s.deviceResults(pk, src, targets, names)}
		s.jobs.add(j)
		r = s.created(j)
	}
	r.productKey, r.devices = pk, len(names)
	return r
}

// created is the answer to a Create that made job j, with the faults that
// lose it. The caller holds s.mu.
func (s *Server) created(j *job) outcome {
	o := outcome{body: map[string]any{"JobId": j.id}, jobID: j.id}
	o.hold = s.chance(s.faults.TimeoutAfterCreateRatio)
	if !o.hold && s.chance(s.faults.ErrorAfterCreateRatio) {
		// The job exists; the answer says the call failed.
		o.body = nil
		o.gateway = errServiceUnavailable()
		if s.cfg.Rand.IntN(2) == 0 {
			o.gateway = errInternal()
		}
	}
	return o
}

// deviceResults draws the outcome of every device of a new job. The caller
// holds s.mu.
func (s *Server) deviceResults(pk, src string, targets, names []string) []DeviceResult {
	out := make([]DeviceResult, len(names))
	for i, n := range names {
		r := DeviceResult{DeviceName: n, ProductKey: pk, SourceInstanceID: src, TargetInstanceID: targets[0],
			Code: DeviceOK, Message: "success"}
		if len(targets) > 1 {
			h := fnv.New32a()
			h.Write([]byte(n))
			r.TargetInstanceID = targets[int(h.Sum32()%uint32(len(targets)))]
		}
		switch {
		case !deviceNameRE.MatchString(n):
			r.Code, r.Message = DeviceBadNameCode, "The device name is invalid."
		case slices.Contains(s.cfg.MissingDevices, n):
			r.Code, r.Message = DeviceMissingCode, "The specified device does not exist."
		case s.chance(s.faults.DeviceFailRatio):
			r.Code, r.Message = s.faults.DeviceFailCode, "The device failed to be distributed."
		}
		out[i] = r
	}
	return out
}

// handled returns the results the job's file lists at now: none before
// the job ends, all of a completed job, the first half of an interrupted one.
func (j *job) handled(now time.Time) []DeviceResult {
	if j.device == nil {
		return nil
	}
	switch j.status(now) {
	case StatusCompleted:
		return j.device.results
	case StatusInterrupted:
		return j.device.results[:len(j.device.results)/2]
	}
	return nil
}

// targetsOf returns every target instance of j.
func targetsOf(j *job) []string {
	if j.device != nil {
		return j.device.targets
	}
	return []string{j.targetInstanceID}
}

// detailURL returns the signed URL of job id's result file, valid until
// expires, on the host the call came to.
func (s *Server) detailURL(c call, id string, expires time.Time) string {
	path := "/_alisim/detail/" + id + "." + s.cfg.DetailFormat
	exp := strconv.FormatInt(expires.Unix(), 10)
	q := url.Values{"Expires": {exp}, "Signature": {s.fileSignature(path, exp)}}
	return c.scheme + "://" + c.host + path + "?" + q.Encode()
}

// fileSignature signs a result file's path and expiry with the Server's key.
func (s *Server) fileSignature(path, expires string) string {
	m := hmac.New(sha256.New, s.fileKey)
	m.Write([]byte(path + "\n" + expires))
	return hex.EncodeToString(m.Sum(nil))
}

// ossError writes an error of the result files' store, in the XML shape
// of OSS.
func (s *Server) ossError(w http.ResponseWriter, status int, code, message string) {
	w.Header().Set("Content-Type", "application/xml")
	w.WriteHeader(status)
	fmt.Fprintf(w, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error>\n  <Code>%s</Code>\n  <Message>%s</Message>\n  <ServerTime>%s</ServerTime>\n</Error>\n",
		code, message, s.cfg.Now().UTC().Format(time.RFC3339))
}

// handleDetailFile serves a result file named by a URL of detailURL.
func (s *Server) handleDetailFile(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("file")
	id, ext, _ := strings.Cut(name, ".")
	q := r.URL.Query()
	exp := q.Get("Expires")
	if !hmac.Equal([]byte(s.fileSignature(r.URL.Path, exp)), []byte(q.Get("Signature"))) {
		s.ossError(w, http.StatusForbidden, "SignatureDoesNotMatch", "The request signature we calculated does not match the signature you provided.")
		return
	}
	n, err := strconv.ParseInt(exp, 10, 64)
	if err != nil || !s.cfg.Now().Before(time.Unix(n, 0)) {
		s.ossError(w, http.StatusForbidden, "AccessDenied", "Request has expired.")
		return
	}
	s.mu.Lock()
	j, ok := s.jobs.byID[id]
	var results []DeviceResult
	if ok {
		results = slices.Clone(j.handled(s.cfg.Now()))
		s.downloads++
	}
	unreadable := s.faults.UnreadableDetails
	s.mu.Unlock()
	if !ok {
		s.ossError(w, http.StatusNotFound, "NoSuchKey", "The specified key does not exist.")
		return
	}
	if unreadable {
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprint(w, "<html><body><h1>Service temporarily unavailable</h1></body></html>\n")
		return
	}
	switch ext {
	case DetailCSV:
		w.Header().Set("Content-Type", "text/csv")
		cw := csv.NewWriter(w)
		_ = cw.Write([]string{"DeviceName", "ProductKey", "SourceInstanceId", "TargetInstanceId", "Code", "Message"})
		for _, d := range results {
			_ = cw.Write([]string{d.DeviceName, d.ProductKey, d.SourceInstanceID, d.TargetInstanceID, d.Code, d.Message})
		}
		cw.Flush()
	default:
		w.Header().Set("Content-Type", "application/x-ndjson")
		enc := json.NewEncoder(w)
		for _, d := range results {
			_ = enc.Encode(d) // the client may be gone; nothing to do
		}
	}
}

// DeviceNames returns the device names of device job id, in the order of
// its DeviceName.N, or nil for a product job or an unknown id.
func (s *Server) DeviceNames(id string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	j, ok := s.jobs.byID[id]
	if !ok || j.device == nil {
		return nil
	}
	out := make([]string, len(j.device.results))
	for i, r := range j.device.results {
		out[i] = r.DeviceName
	}
	return out
}

// DeviceResults returns what device job id's result file would list now.
func (s *Server) DeviceResults(id string) []DeviceResult {
	s.mu.Lock()
	defer s.mu.Unlock()
	j, ok := s.jobs.byID[id]
	if !ok {
		return nil
	}
	return slices.Clone(j.handled(s.cfg.Now()))
}

// Downloads returns how many result files were served.
func (s *Server) Downloads() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.downloads
}
