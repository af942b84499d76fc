package console

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/distq/distq/internal/distribution"
	"github.com/distq/distq/internal/service"
)

// line is one line of the submitted list.
type line struct {
	No     int
	Text   string
	Req    distribution.Request
	Errors []string
}

// columns of a CSV with a header; without one, the columns are
// product_key, source_instance_id, target_instance_id.
var columns = []string{"product_key", "source_instance_id", "target_instance_id", "target_uid", "target_aliyun_id"}

// parseLines reads pasted product keys or a CSV, one item per line; blank
// lines and lines starting with # are skipped, and a first line naming
// the columns is a header.
func parseLines(text string) []line {
	var out []line
	cols := columns[:3]
	for i, raw := range strings.Split(strings.ReplaceAll(text, "\r\n", "\n"), "\n") {
		t := strings.TrimSpace(raw)
		if t == "" || strings.HasPrefix(t, "#") {
			continue
		}
		l := line{No: i + 1, Text: t}
		rd := csv.NewReader(strings.NewReader(t))
		rd.TrimLeadingSpace = true
		rd.FieldsPerRecord = -1
		fields, err := rd.Read()
		if err != nil {
			var pe *csv.ParseError
			if errors.As(err, &pe) {
				err = pe.Err
			}
			l.Errors = []string{"not a CSV line: " + err.Error()}
			out = append(out, l)
			continue
		}
		if len(out) == 0 && strings.EqualFold(strings.TrimSpace(fields[0]), "product_key") {
			cols = nil
			for _, f := range fields {
				cols = append(cols, strings.ToLower(strings.TrimSpace(f)))
			}
			continue
		}
		if len(fields) > len(cols) {
			l.Errors = append(l.Errors, fmt.Sprintf("has %d columns; at most %d (%s)", len(fields), len(cols), strings.Join(cols, ", ")))
		}
		for j, f := range fields {
			if j >= len(cols) {
				break
			}
			f = strings.TrimSpace(f)
			switch cols[j] {
			case "product_key":
				l.Req.ProductKey = f
			case "source_instance_id":
				l.Req.SourceInstanceID = f
			case "target_instance_id":
				l.Req.TargetInstanceID = f
			case "target_uid":
				l.Req.TargetUID = f
			case "target_aliyun_id":
				l.Req.TargetAliyunID = f
			default:
				if f != "" {
					l.Errors = append(l.Errors, "unknown column "+cols[j])
				}
			}
		}
		out = append(out, l)
	}
	return out
}

type submitData struct {
	CSRF     string
	Accounts []string
	Account  string
	Source   string
	Target   string
	Keys     string
	Error    string
}

func (c *console) submitPage(w http.ResponseWriter, r *http.Request, s *session) {
	c.render(w, r, s, http.StatusOK, "submit", &submitData{CSRF: s.CSRF, Accounts: c.Service.Accounts()})
}

type previewData struct {
	CSRF           string
	Account        string
	Source, Target string
	Lines          []line
	Valid, Invalid int
	ETA            *time.Time
	// Items is the valid lines as a CSV (product_key, source, target,
	// target_uid, target_aliyun_id), what the submit sends.
	Items string
	// Key is the Idempotency-Key of the submit: a second click of the
	// same preview submits once.
	Key string
}

// preview shows what a submission would be: each line's validation
// errors and the ETA of the valid ones, from the service's dry run.
func (c *console) preview(w http.ResponseWriter, r *http.Request, s *session) {
	form := &submitData{CSRF: s.CSRF, Accounts: c.Service.Accounts(),
		Account: r.FormValue("account"), Source: strings.TrimSpace(r.FormValue("source_instance_id")),
		Target: strings.TrimSpace(r.FormValue("target_instance_id")), Keys: r.FormValue("keys")}
	text := form.Keys
	if f, _, err := r.FormFile("csv"); err == nil {
		raw, err := io.ReadAll(io.LimitReader(f, maxForm))
		f.Close()
		if err != nil {
			c.fail(w, r, s, err)
			return
		}
		if len(bytes.TrimSpace(raw)) > 0 {
			text = string(raw)
		}
	}
	lines := parseLines(text)
	if len(lines) == 0 {
		form.Error = "Paste product keys or choose a CSV file: there is nothing to submit."
		c.render(w, r, s, http.StatusUnprocessableEntity, "submit", form)
		return
	}
	defaults := distribution.Request{Account: form.Account, SourceInstanceID: form.Source, TargetInstanceID: form.Target}
	br := service.BatchRequest{Defaults: defaults, Items: make([]service.BatchItem, len(lines))}
	for i, l := range lines {
		br.Items[i].Request = l.Req
		if len(l.Errors) > 0 {
			br.Items[i].Err = errors.New(strings.Join(l.Errors, "; "))
		}
	}
	dry, err := c.Service.DryRunBatch(r.Context(), s.Team, br)
	if err != nil {
		if e, ok := service.AsError(err); ok && e.Code != service.CodeUnavailable {
			form.Error = e.Message
			c.render(w, r, s, http.StatusUnprocessableEntity, "submit", form)
			return
		}
		c.fail(w, r, s, err)
		return
	}
	d := &previewData{CSRF: s.CSRF, Account: form.Account, Source: form.Source, Target: form.Target,
		Valid: dry.Valid, Invalid: dry.Rejected, ETA: dry.ETA, Key: "console-" + randomToken()}
	var items bytes.Buffer
	cw := csv.NewWriter(&items)
	for i, res := range dry.Results {
		l := lines[i]
		if res.Err != nil {
			if len(l.Errors) == 0 {
				l.Errors = itemErrors(res.Err)
			}
			d.Lines = append(d.Lines, l)
			continue
		}
		q := l.Req
		q.FillFrom(defaults)
		cw.Write([]string{q.ProductKey, q.SourceInstanceID, q.TargetInstanceID, q.TargetUID, q.TargetAliyunID})
		d.Lines = append(d.Lines, l)
	}
	cw.Flush()
	d.Items = items.String()
	c.render(w, r, s, http.StatusOK, "preview", d)
}

// itemErrors says what is wrong with one item, field by field.
func itemErrors(err error) []string {
	e, ok := service.AsError(err)
	if !ok {
		return []string{err.Error()}
	}
	if len(e.Fields) == 0 {
		return []string{e.Message}
	}
	var out []string
	for _, f := range e.Fields {
		out = append(out, f.Field+": "+f.Message)
	}
	return out
}

// submit submits the previewed items as a batch, once per preview: the
// preview's key makes a double click (or a resent form) answer with the
// same batch.
func (c *console) submit(w http.ResponseWriter, r *http.Request, s *session) {
	account, items, key := r.FormValue("account"), r.FormValue("items"), r.FormValue("key")
	if key == "" || items == "" {
		c.errorPage(w, r, s, http.StatusUnprocessableEntity, "Nothing to submit", "Preview the list first.")
		return
	}
	rd := csv.NewReader(strings.NewReader(items))
	rd.FieldsPerRecord = 5
	recs, err := rd.ReadAll()
	if err != nil || len(recs) == 0 {
		c.errorPage(w, r, s, http.StatusUnprocessableEntity, "Nothing to submit", "The previewed list could not be read; preview it again.")
		return
	}
	br := service.BatchRequest{Defaults: distribution.Request{Account: account}, Items: make([]service.BatchItem, len(recs))}
	for i, f := range recs {
		br.Items[i].Request = distribution.Request{ProductKey: f[0], SourceInstanceID: f[1], TargetInstanceID: f[2], TargetUID: f[3], TargetAliyunID: f[4]}
	}
	request := []byte("console submit\n" + account + "\n" + items)
	a, _, err := c.Service.Once(r.Context(), s.Team, key, request, func() (service.Answer, error) {
		res, err := c.Service.SubmitBatch(r.Context(), s.Team, br)
		if err != nil {
			return service.Answer{}, err
		}
		body, _ := json.Marshal(map[string]any{"batch_id": res.Batch.ID, "accepted": res.Accepted, "rejected": res.Rejected})
		return service.Answer{Status: http.StatusAccepted, Body: body}, nil
	})
	if err != nil {
		c.fail(w, r, s, err)
		return
	}
	var out struct {
		BatchID string `json:"batch_id"`
	}
	if err := json.Unmarshal(a.Body, &out); err != nil || out.BatchID == "" {
		c.fail(w, r, s, fmt.Errorf("stored answer of key %s: %q", key, a.Body))
		return
	}
	http.Redirect(w, r, Prefix+"/batches/"+out.BatchID+"?done=submitted", http.StatusSeeOther)
}
