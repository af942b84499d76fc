package console

import (
	"encoding/csv"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/distq/distq/internal/distribution"
	"github.com/distq/distq/internal/service"
)

// batchRow is a batch as the pages show it.
type batchRow struct {
	service.BatchView
	Segments []segment
	Finished int
	Label    string
	// Share is the team's fraction of the account's Creates over the last
	// minute (batch page only).
	Share *float64
}

func newBatchRow(v service.BatchView) batchRow {
	b := batchRow{BatchView: v, Segments: segments(v.Counts)}
	for st, n := range v.Counts {
		if st.Terminal() {
			b.Finished += n
		}
	}
	failed, canceled := v.Counts[distribution.StateFailed], v.Counts[distribution.StateCanceled]
	switch {
	case !v.Done:
		b.Label = "in progress"
	case failed > 0:
		b.Label = fmt.Sprintf("done, %d failed", failed)
	case canceled == v.Size:
		b.Label = "canceled"
	default:
		b.Label = "done"
	}
	return b
}

// Tone is the badge's colour class of the batch's label.
func (b batchRow) Tone() string {
	switch {
	case !b.Done:
		return "active"
	case b.Failed() > 0:
		return "done-failed"
	case b.Counts[distribution.StateCanceled] == b.Size:
		return "done-canceled"
	}
	return "done"
}

// Queued counts the queued items.
func (b batchRow) Queued() int { return b.Counts[distribution.StateQueued] }

// Failed counts the failed items.
func (b batchRow) Failed() int { return b.Counts[distribution.StateFailed] }

// Percent is how much of the batch is finished.
func (b batchRow) Percent() int {
	if b.Size == 0 {
		return 100
	}
	return 100 * b.Finished / b.Size
}

type homeData struct {
	State, ProductKey string
	Filtered          bool
	Batches           []batchRow
	Distributions     []distribution.Distribution
	Error             string
}

const homeBatches = 25

func (c *console) home(w http.ResponseWriter, r *http.Request, s *session) {
	ctx := r.Context()
	q := r.URL.Query()
	d := &homeData{State: q.Get("state"), ProductKey: strings.TrimSpace(q.Get("product_key"))}
	f := distribution.Filter{ProductKey: d.ProductKey}
	if d.State != "" {
		f.State = distribution.State(d.State)
		if !f.State.Valid() {
			d.Error = "Unknown state " + strconv.Quote(d.State) + "."
			d.State, f.State = "", ""
		}
	}
	if len(d.ProductKey) > 64 {
		d.Error, d.ProductKey, f.ProductKey = "A product key has at most 64 characters.", "", ""
	}
	d.Filtered = f.State != "" || f.ProductKey != ""
	batches, _, err := c.Service.Batches(ctx, s.Team, "", homeBatches)
	if err != nil {
		c.fail(w, r, s, err)
		return
	}
	// Without a filter: the recent single distributions. With one: every
	// distribution that matches, and the batches they belong to.
	d.Distributions, err = c.Service.Recent(ctx, s.Team, f, !d.Filtered, 50)
	if err != nil {
		c.fail(w, r, s, err)
		return
	}
	inBatch := map[string]bool{}
	for _, x := range d.Distributions {
		inBatch[x.BatchID] = true
	}
	for _, b := range batches {
		if f.State != "" && b.Counts[f.State] == 0 || f.ProductKey != "" && !inBatch[b.ID] {
			continue
		}
		d.Batches = append(d.Batches, newBatchRow(b))
	}
	c.render(w, r, s, http.StatusOK, "home", d)
}

type batchData struct {
	Batch    batchRow
	Failures []failureGroup
	// Scanned is how many failed items were grouped when that is fewer
	// than failed (0 when all were).
	Scanned int
	Poll    int
	Flash   string
	CSRF    string
}

type failureGroup struct {
	Code  string
	Count int
	Items []distribution.Distribution
}

// maxFailureItems bounds the failed items shown per code, and
// maxFailureScan the failed items grouped on each refresh.
const (
	maxFailureItems = 10
	maxFailureScan  = 2000
)

// errStop ends eachItem early.
var errStop = errors.New("stop")

func (c *console) loadBatch(r *http.Request, s *session) (*batchData, error) {
	ctx := r.Context()
	v, err := c.Service.Batch(ctx, s.Team, r.PathValue("id"))
	if err != nil {
		return nil, err
	}
	d := &batchData{Batch: newBatchRow(*v), Poll: int(c.Poll.Milliseconds()), CSRF: s.CSRF}
	if v.Size > 1000 { // a big batch's refresh reads more: less often
		d.Poll = int(max(c.Poll, 5*time.Second).Milliseconds())
	}
	if acct, err := c.Service.Account(ctx, s.Team, v.Account); err == nil {
		for _, t := range acct.Teams {
			if t.Self {
				share := t.Share
				d.Batch.Share = &share
			}
		}
	}
	if v.Counts[distribution.StateFailed] > 0 {
		groups := map[string]*failureGroup{}
		var order []string
		scanned := 0
		err := c.eachItem(r, s.Team, v.ID, distribution.StateFailed, func(x distribution.Distribution) error {
			if scanned == maxFailureScan {
				return errStop
			}
			scanned++
			code := "unknown"
			if x.Error != nil {
				code = x.Error.Code
			}
			g := groups[code]
			if g == nil {
				g = &failureGroup{Code: code}
				groups[code] = g
				order = append(order, code)
			}
			g.Count++
			if len(g.Items) < maxFailureItems {
				g.Items = append(g.Items, x)
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
		if scanned < v.Counts[distribution.StateFailed] {
			d.Scanned = scanned
		}
		for _, code := range order {
			d.Failures = append(d.Failures, *groups[code])
		}
	}
	return d, nil
}

// eachItem calls fn for every item of team's batch id in state (every
// state when ""), in creation order, until fn returns errStop.
func (c *console) eachItem(r *http.Request, team, id string, state distribution.State, fn func(distribution.Distribution) error) error {
	f := distribution.Filter{BatchID: id, State: state, Limit: 1000}
	for {
		items, next, err := c.Service.List(r.Context(), team, f)
		if err != nil {
			return err
		}
		for _, x := range items {
			if err := fn(x); errors.Is(err, errStop) {
				return nil
			} else if err != nil {
				return err
			}
		}
		if next == "" {
			return nil
		}
		f.After = next
	}
}

var flashes = map[string]string{
	"submitted": "Batch submitted.",
	"canceled":  "Canceled %d queued distributions.",
	"retried":   "Retrying %d failed distributions.",
}

func flash(r *http.Request) string {
	msg, ok := flashes[r.URL.Query().Get("done")]
	if !ok {
		return ""
	}
	if strings.Contains(msg, "%d") {
		n, _ := strconv.Atoi(r.URL.Query().Get("n"))
		return fmt.Sprintf(msg, n)
	}
	return msg
}

func (c *console) batchPage(w http.ResponseWriter, r *http.Request, s *session) {
	d, err := c.loadBatch(r, s)
	if err != nil {
		c.fail(w, r, s, err)
		return
	}
	d.Flash = flash(r)
	c.render(w, r, s, http.StatusOK, "batch", d)
}

// batchLive is the part of the batch page that its script refreshes.
func (c *console) batchLive(w http.ResponseWriter, r *http.Request, s *session) {
	d, err := c.loadBatch(r, s)
	if err != nil {
		c.fail(w, r, s, err)
		return
	}
	c.renderTemplate(w, s, http.StatusOK, "batch", "live", d)
}

// batchCSV downloads every item of a batch.
func (c *console) batchCSV(w http.ResponseWriter, r *http.Request, s *session) {
	b, err := c.Service.FindBatch(r.Context(), s.Team, r.PathValue("id"))
	if err != nil {
		c.fail(w, r, s, err)
		return
	}
	var rows [][]string
	err = c.eachItem(r, s.Team, b.ID, "", func(x distribution.Distribution) error {
		status, code := "", ""
		if x.RemoteStatus != nil {
			status = strconv.Itoa(*x.RemoteStatus)
		}
		if x.Error != nil {
			code = x.Error.Code
		}
		rows = append(rows, []string{x.ID, x.ProductKey, string(x.State), cell(x.JobID), status, cell(code)})
		return nil
	})
	if err != nil {
		c.fail(w, r, s, err)
		return
	}
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Content-Disposition", `attachment; filename="`+b.ID+`.csv"`)
	cw := csv.NewWriter(w)
	cw.Write([]string{"id", "product_key", "state", "job_id", "remote_status", "error_code"})
	cw.WriteAll(rows)
}

// cell keeps a remote value from being read as a formula by a spreadsheet.
func cell(v string) string {
	if v != "" && strings.ContainsRune("=+-@\t\r", rune(v[0])) {
		return "'" + v
	}
	return v
}

func (c *console) batchCancel(w http.ResponseWriter, r *http.Request, s *session) {
	res, err := c.Service.CancelBatch(r.Context(), s.Team, r.PathValue("id"))
	c.afterBatchAction(w, r, s, "canceled", res, err)
}

func (c *console) batchRetry(w http.ResponseWriter, r *http.Request, s *session) {
	res, err := c.Service.RetryBatch(r.Context(), s.Team, r.PathValue("id"))
	c.afterBatchAction(w, r, s, "retried", res, err)
}

func (c *console) afterBatchAction(w http.ResponseWriter, r *http.Request, s *session, done string, res *service.BatchActionResult, err error) {
	if err != nil {
		c.fail(w, r, s, err)
		return
	}
	http.Redirect(w, r, fmt.Sprintf("%s/batches/%s?done=%s&n=%d", Prefix, res.BatchID, done, res.Changed), http.StatusSeeOther)
}

type distributionData struct {
	D        *distribution.Distribution
	Timeline []event
	CSRF     string
	Flash    string
}

// event is one step of a distribution's timeline.
type event struct {
	At    time.Time
	What  string
	Class string
}

// timeline writes a distribution's steps for people; a record without
// steps (written before distq kept them) gets them from its dates.
func timeline(d *distribution.Distribution, steps []distribution.Step) []event {
	if len(steps) == 0 {
		return fromDates(d)
	}
	var ev []event
	for _, st := range steps {
		e := event{At: st.At, Class: string(st.State)}
		switch st.What {
		case "accepted":
			e.What = "Accepted and queued"
		case "create_sent":
			e.What = fmt.Sprintf("Create sent (attempt %d)", st.Attempt)
		case "requeued":
			e.What = "Back in the queue"
			if st.WaitReason != "" {
				e.What += ", waiting for " + strings.ReplaceAll(string(st.WaitReason), "_", " ")
			}
		case "create_lost":
			e.What = "The Create made no job; queued again"
		case "started":
			e.What = "Remote job " + st.JobID + " created"
			if st.RemoteStatus != nil {
				e.What += " (remote status: " + remoteName(st.RemoteStatus) + ")"
			}
		case "remote_status":
			e.What = "Remote status: " + remoteName(st.RemoteStatus)
		case "finished":
			e.What = finishedName(st.State)
			if st.RemoteStatus != nil {
				e.What += " (remote status: " + remoteName(st.RemoteStatus) + ")"
			}
		case "canceled":
			e.What = "Canceled"
		case "retried":
			e.What = "Retried: queued again as new"
		default:
			e.What = st.What
		}
		ev = append(ev, e)
	}
	return ev
}

func finishedName(s distribution.State) string {
	switch s {
	case distribution.StateSucceeded:
		return "Succeeded"
	case distribution.StateFailed:
		return "Failed"
	}
	return "Finished: " + string(s)
}

func fromDates(d *distribution.Distribution) []event {
	ev := []event{{At: d.CreatedAt, What: "Accepted and queued", Class: "queued"}}
	if d.SubmittedAt != nil {
		ev = append(ev, event{At: *d.SubmittedAt, What: "Remote job " + d.JobID + " created", Class: "running"})
	}
	if d.RemoteStatus != nil && !d.State.Terminal() {
		ev = append(ev, event{At: d.UpdatedAt, What: "Remote status: " + remoteName(d.RemoteStatus), Class: "running"})
	}
	if d.FinishedAt != nil {
		what := finishedName(d.State)
		if d.State == distribution.StateCanceled {
			what = "Canceled"
		}
		ev = append(ev, event{At: *d.FinishedAt, What: what, Class: string(d.State)})
	}
	return ev
}

func (c *console) distributionPage(w http.ResponseWriter, r *http.Request, s *session) {
	d, steps, err := c.Service.Timeline(r.Context(), s.Team, r.PathValue("id"))
	if err != nil {
		c.fail(w, r, s, err)
		return
	}
	c.render(w, r, s, http.StatusOK, "distribution", &distributionData{D: d, Timeline: timeline(d, steps), CSRF: s.CSRF, Flash: flash(r)})
}

func (c *console) distributionCancel(w http.ResponseWriter, r *http.Request, s *session) {
	d, err := c.Service.Cancel(r.Context(), s.Team, r.PathValue("id"))
	if err != nil {
		c.fail(w, r, s, err)
		return
	}
	http.Redirect(w, r, Prefix+"/distributions/"+d.ID+"?done=canceled&n=1", http.StatusSeeOther)
}

func (c *console) distributionRetry(w http.ResponseWriter, r *http.Request, s *session) {
	d, err := c.Service.Retry(r.Context(), s.Team, r.PathValue("id"))
	if err != nil {
		c.fail(w, r, s, err)
		return
	}
	http.Redirect(w, r, Prefix+"/distributions/"+d.ID+"?done=retried&n=1", http.StatusSeeOther)
}

type accountData struct {
	A       *service.AccountView
	Rate    rateChart
	Slots   slotGauge
	Backlog hbars
	Share   hbars
	Self    *service.TeamFigures
}

func (c *console) accountPage(w http.ResponseWriter, r *http.Request, s *session) {
	v, err := c.Service.Account(r.Context(), s.Team, r.URL.Query().Get("account"))
	if err != nil {
		c.fail(w, r, s, err)
		return
	}
	d := &accountData{A: v, Rate: newRateChart(v), Slots: newSlotGauge(v)}
	var names []string
	var self []bool
	var backlog, share []float64
	top := 0.0
	for i, t := range v.Teams {
		names = append(names, t.Team)
		self = append(self, t.Self)
		backlog = append(backlog, float64(t.Backlog))
		share = append(share, t.Share)
		top = max(top, float64(t.Backlog))
		if t.Self {
			d.Self = &v.Teams[i]
		}
	}
	d.Backlog = newHBars(names, self, backlog, top, func(f float64) string { return strconv.Itoa(int(f)) })
	d.Share = newHBars(names, self, share, 1, func(f float64) string { return fmt.Sprintf("%.0f%%", 100*f) })
	c.render(w, r, s, http.StatusOK, "account", d)
}
