package alisim

import (
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"time"
)

// outcome is what an action handler decided; the Server writes it.
type outcome struct {
	gateway  *gatewayError
	business *businessError
	// body is the success body, without RequestId and Success.
	body       map[string]any
	jobID      string
	productKey string
	// hold asks for the timeout fault: no answer, then a dropped connection.
	hold bool
	// devices is the number of device names a device Create carried.
	devices int
}

// call is the context of one accepted API call; the Server holds its lock
// while an action runs.
type call struct {
	acct   Account
	params url.Values
	now    time.Time
	// host and scheme are where the call came, for the URLs it answers.
	host, scheme string
}

// response body shapes, with the JSON names the official SDK reads.
type targetInstance struct {
	TargetInstanceID   string `json:"TargetInstanceId"`
	TargetInstanceName string `json:"TargetInstanceName,omitempty"`
	TargetRegion       string `json:"TargetRegion,omitempty"`
}

type targetInstanceConfigs struct {
	Items []targetInstance `json:"targetInstanceConfigs"`
}

type jobData struct {
	JobID                 string                `json:"JobId"`
	ProductKey            string                `json:"ProductKey"`
	SourceInstanceID      string                `json:"SourceInstanceId"`
	SourceInstanceName    string                `json:"SourceInstanceName,omitempty"`
	SourceRegion          string                `json:"SourceRegion,omitempty"`
	SourceUID             string                `json:"SourceUid"`
	TargetUID             string                `json:"TargetUid"`
	Status                int                   `json:"Status"`
	Strategy              int                   `json:"Strategy"`
	Total                 int                   `json:"Total"`
	GmtCreate             int64                 `json:"GmtCreate"`
	TargetInstanceConfigs targetInstanceConfigs `json:"TargetInstanceConfigs"`
}

func jobDataOf(j *job, now time.Time, detailed bool) jobData {
	d := jobData{
		JobID:            j.id,
		ProductKey:       j.productKey,
		SourceInstanceID: j.sourceInstanceID,
		SourceUID:        j.uid,
		TargetUID:        j.targetUID,
		Status:           j.status(now),
		// A product distribution carries no devices and no device strategy.
		Strategy:  0,
		Total:     0,
		GmtCreate: j.created.UnixMilli(),
	}
	if j.device != nil {
		d.Strategy, d.Total = j.device.strategy, len(j.device.results)
	}
	for _, t := range targetsOf(j) {
		ti := targetInstance{TargetInstanceID: t}
		if detailed {
			ti.TargetInstanceName, ti.TargetRegion = instanceName(t), regionOf(t)
		}
		d.TargetInstanceConfigs.Items = append(d.TargetInstanceConfigs.Items, ti)
	}
	if detailed {
		d.SourceInstanceName = instanceName(j.sourceInstanceID)
		d.SourceRegion = regionOf(j.sourceInstanceID)
	}
	return d
}

func fail(code, format string, args ...any) outcome {
	return outcome{business: &businessError{Code: code, Message: fmt.Sprintf(format, args...)}}
}

// required returns the first missing parameter among names as Missing<Name>.
func required(params url.Values, names ...string) *gatewayError {
	for _, n := range names {
		if params.Get(n) == "" {
			return errMissing(n)
		}
	}
	return nil
}

// createJob serves CreateProductDistributeJob.
func (s *Server) createJob(c call) outcome {
	p := c.params
	pk := p.Get("ProductKey")
	if e := required(p, "ProductKey", "SourceInstanceId", "TargetInstanceId"); e != nil {
		return outcome{gateway: e, productKey: pk}
	}
	targetUID, targetAliyunID := p.Get("TargetUid"), p.Get("TargetAliyunId")
	if targetUID == "" && targetAliyunID == "" {
		// Neither is mandatory alone, so the metadata cannot say which is
		// missing: the simulator names TargetUid, the one distq sends.
		return outcome{gateway: errMissing("TargetUid"), productKey: pk}
	}
	src, dst := p.Get("SourceInstanceId"), p.Get("TargetInstanceId")
	var o outcome
	switch {
	case src == dst:
		o = fail("iot.system.InstanceIdSame", "The source instance and the target instance are the same.")
	case slices.Contains(s.cfg.MissingProducts, pk):
		o = fail("iot.prod.NotExistedProduct", "The specified product does not exist.")
	case targetUID != "" && targetUID != c.acct.UID,
		targetAliyunID != "" && c.acct.AliyunID != "" && targetAliyunID != c.acct.AliyunID:
		o = fail(s.cfg.CrossAccountCode, "Cross-account distribution is not supported.")
	case s.jobs.inQuota(c.acct.UID, s.cfg.QuotaMode, c.now) >= s.cfg.MaxJobs:
		o = fail(s.cfg.QuotaExceededCode, "The number of distribution jobs exceeds the limit of %d.", s.cfg.MaxJobs)
	default:
		j := s.newJob(c.acct.UID, pk, src, dst, c.now)
		j.targetUID = targetUID
		if j.targetUID == "" {
			j.targetUID = c.acct.UID
		}
		j.targetAliyunID = targetAliyunID
		s.jobs.add(j)
		o = s.created(j)
	}
	o.productKey = pk
	return o
}

// newJob makes a job of uid; whether it fails is drawn now.
func (s *Server) newJob(uid, productKey, src, dst string, now time.Time) *job {
	return &job{
		id:               s.newJobID(),
		uid:              uid,
		productKey:       productKey,
		sourceInstanceID: src,
		targetInstanceID: dst,
		targetUID:        uid,
		created:          now,
		duration:         s.cfg.JobDuration,
		fails:            s.chance(s.cfg.FailRatio),
	}
}

// queryJob serves QueryDeviceDistributeJob.
func (s *Server) queryJob(c call) outcome {
	if e := required(c.params, "JobId"); e != nil {
		return outcome{gateway: e}
	}
	id := c.params.Get("JobId")
	j, ok := s.jobs.get(c.acct.UID, id)
	if !ok || c.now.Sub(j.created) < s.cfg.QueryLag {
		return s.jobNotFound(id)
	}
	return outcome{body: map[string]any{"Data": jobDataOf(j, c.now, false)}, jobID: id, productKey: j.productKey}
}

func (s *Server) jobNotFound(id string) outcome {
	o := fail(s.cfg.JobNotFoundCode, "The distribution job does not exist.")
	o.jobID = id
	return o
}

// deleteJob serves DeleteDeviceDistributeJob. Any job of the caller may be
// deleted, whatever its Status; a deleted job is gone from Query and List
// and holds no slot in either quota mode.
func (s *Server) deleteJob(c call) outcome {
	if e := required(c.params, "JobId"); e != nil {
		return outcome{gateway: e}
	}
	id := c.params.Get("JobId")
	j, ok := s.jobs.get(c.acct.UID, id)
	if !ok {
		return s.jobNotFound(id)
	}
	j.deleted = true
	return outcome{body: map[string]any{}, jobID: id, productKey: j.productKey}
}

// queryDetail serves QueryDeviceDistributeDetail.
func (s *Server) queryDetail(c call) outcome {
	if e := required(c.params, "JobId"); e != nil {
		return outcome{gateway: e}
	}
	id := c.params.Get("JobId")
	j, ok := s.jobs.get(c.acct.UID, id)
	if !ok {
		return s.jobNotFound(id)
	}
	file := s.detailURL(c, id, c.now.Add(s.cfg.DetailValidity))
	return outcome{body: map[string]any{"File": file}, jobID: id, productKey: j.productKey}
}

// intParam parses an optional integer parameter within [lo, hi].
func intParam(p url.Values, name string, def, lo, hi int) (int, *businessError) {
	v := p.Get(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < lo || n > hi {
		return 0, &businessError{Code: "iot.check.InvalidFormattedParameter",
			Message: fmt.Sprintf("The parameter %s is invalid.", name)}
	}
	return n, nil
}

// page cuts items at an offset taken from NextToken or else CurrentPage.
func page(p url.Values, total int) (offset, size int, be *businessError) {
	if size, be = intParam(p, "PageSize", 0, 1, 200); be != nil {
		return 0, 0, be
	}
	current, be := intParam(p, "CurrentPage", 1, 1, 1<<30)
	if be != nil {
		return 0, 0, be
	}
	offset = (current - 1) * size
	if tok := p.Get("NextToken"); tok != "" {
		n, err := strconv.Atoi(tok)
		if err != nil || n < 0 || n > total {
			return 0, 0, &businessError{Code: "iot.check.InvalidFormattedParameter",
				Message: "The parameter NextToken is invalid."}
		}
		offset = n
	}
	return min(offset, total), size, nil
}

// listJobs serves ListDeviceDistributeJob: the caller's jobs, newest first.
func (s *Server) listJobs(c call) outcome {
	p := c.params
	if e := required(p, "PageSize"); e != nil {
		return outcome{gateway: e}
	}
	f := jobFilter{productKey: p.Get("ProductKey"), targetUID: p.Get("TargetUid"), jobID: p.Get("JobId")}
	if s.cfg.ListLag > 0 {
		f.visibleBefore = c.now.Add(-s.cfg.ListLag)
	}
	if p.Get("Status") != "" {
		st, be := intParam(p, "Status", 0, StatusInitializing, StatusInterrupted)
		if be != nil {
			return outcome{business: be}
		}
		f.status = &st
	}
	jobs := s.jobs.list(c.acct.UID, f, c.now)
	offset, size, be := page(p, len(jobs))
	if be != nil {
		return outcome{business: be}
	}
	end := min(offset+size, len(jobs))
	items := make([]jobData, 0, end-offset)
	for _, j := range jobs[offset:end] {
		items = append(items, jobDataOf(j, c.now, true))
	}
	data := map[string]any{
		"Total":       len(jobs),
		"PageSize":    size,
		"CurrentPage": offset/size + 1,
		"JobInfo":     map[string]any{"items": items},
	}
	if end < len(jobs) {
		data["NextToken"] = strconv.Itoa(end)
	}
	return outcome{body: map[string]any{"Data": data}, jobID: f.jobID, productKey: f.productKey}
}

// listDistributed serves ListDistributedProduct: products whose distribution
// completed.
func (s *Server) listDistributed(c call) outcome {
	p := c.params
	if e := required(p, "CurrentPage", "PageSize"); e != nil {
		return outcome{gateway: e}
	}
	var items []map[string]any
	for _, j := range s.jobs.distributed(c.acct.UID, c.now) {
		// A device job distributes its product to each of its targets too.
		for _, target := range targetsOf(j) {
			if (p.Get("ProductKey") != "" && j.productKey != p.Get("ProductKey")) ||
				(p.Get("SourceInstanceId") != "" && j.sourceInstanceID != p.Get("SourceInstanceId")) ||
				(p.Get("TargetInstanceId") != "" && target != p.Get("TargetInstanceId")) ||
				(p.Get("TargetUid") != "" && j.targetUID != p.Get("TargetUid")) {
				continue
			}
			items = append(items, map[string]any{
				"ProductKey":         j.productKey,
				"SourceInstanceId":   j.sourceInstanceID,
				"SourceInstanceName": instanceName(j.sourceInstanceID),
				"SourceRegion":       regionOf(j.sourceInstanceID),
				"SourceUid":          j.uid,
				"TargetInstanceId":   target,
				"TargetInstanceName": instanceName(target),
				"TargetRegion":       regionOf(target),
				"TargetUid":          j.targetUID,
				"TargetAliyunId":     j.targetAliyunID,
				"GmtCreate":          j.created.Add(j.duration).UnixMilli(),
			})
		}
	}
	p2 := url.Values{"PageSize": {p.Get("PageSize")}, "CurrentPage": {p.Get("CurrentPage")}}
	offset, size, be := page(p2, len(items))
	if be != nil {
		return outcome{business: be}
	}
	end := min(offset+size, len(items))
	shown := append([]map[string]any{}, items[offset:end]...)
	return outcome{body: map[string]any{"Data": map[string]any{
		"Total": len(items),
		"Info":  map[string]any{"items": shown},
	}}}
}
