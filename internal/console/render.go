package console

import (
	"bytes"
	"fmt"
	"html/template"
	"math"
	"net/http"
	"strings"
	"time"

	"github.com/distq/distq/internal/distribution"
)

// pages holds one template set per page, each with the layout.
type pages struct {
	byName map[string]*template.Template
}

var pageNames = []string{"login", "error", "home", "batch", "distribution", "submit", "preview", "account"}

func mustParsePages() *pages {
	p := &pages{byName: map[string]*template.Template{}}
	base := template.Must(template.New("").Funcs(funcs).ParseFS(templateFS, "templates/layout.html", "templates/parts.html"))
	for _, name := range pageNames {
		t := template.Must(template.Must(base.Clone()).ParseFS(templateFS, "templates/"+name+".html"))
		p.byName[name] = t
	}
	return p
}

// view is what every page's template gets.
type view struct {
	Title string
	// Nav names the section of the page, for aria-current.
	Nav string
	// Session is nil on the sign-in and error pages of a signed-out visitor.
	Session *session
	Data    any
	// Now is when the page was made.
	Now time.Time
}

// render writes page name with data, buffered so that a template error
// is a 500 and never half a page.
func (c *console) render(w http.ResponseWriter, r *http.Request, s *session, status int, name string, data any) {
	c.renderTemplate(w, s, status, name, "layout", data)
}

func (c *console) renderTemplate(w http.ResponseWriter, s *session, status int, page, tmpl string, data any) {
	t := c.pages.byName[page]
	var buf bytes.Buffer
	v := &view{Nav: page, Session: s, Data: data, Now: time.Now().UTC()}
	if err := t.ExecuteTemplate(&buf, tmpl, v); err != nil {
		c.Log.Error("console: render", "page", page, "err", err)
		http.Error(w, "The console could not render this page.", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	if w.Header().Get("Cache-Control") == "" {
		w.Header().Set("Cache-Control", "no-store")
	}
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

var funcs = template.FuncMap{
	"when": func(t time.Time) string {
		if t.IsZero() {
			return ""
		}
		return t.UTC().Format("2006-01-02 15:04:05 UTC")
	},
	"iso": func(t time.Time) string { return t.UTC().Format(time.RFC3339) },
	"ago": func(now, t time.Time) string { return human(now.Sub(t)) + " ago" },
	"until": func(now time.Time, t *time.Time) string {
		if t == nil {
			return "—"
		}
		d := t.Sub(now)
		if d <= time.Second {
			return "any moment"
		}
		return "in " + human(d)
	},
	"pct":    func(f float64) string { return fmt.Sprintf("%.0f%%", 100*f) },
	"states": func() []distribution.State { return distribution.States },
	"remote": remoteName,
	"deref": func(p *int) int {
		if p == nil {
			return 0
		}
		return *p
	},
	"f1":    func(f float64) string { return fmt.Sprintf("%.1f", f) },
	"upper": strings.ToUpper,
	"addf":  func(a, b float64) float64 { return a + b },
	"subf":  func(a, b float64) float64 { return a - b },
	"deref1": func(t *time.Time) time.Time {
		if t == nil {
			return time.Time{}
		}
		return *t
	},
}

// human writes a duration the way people read it: "45 s", "3 min 20 s",
// "2 h 5 min".
func human(d time.Duration) string {
	d = d.Round(time.Second)
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%d s", int(d.Seconds()))
	case d < time.Hour:
		m := int(d.Minutes())
		if s := int(d.Seconds()) % 60; s != 0 && m < 10 {
			return fmt.Sprintf("%d min %d s", m, s)
		}
		return fmt.Sprintf("%d min", m)
	default:
		h := int(d.Hours())
		return fmt.Sprintf("%d h %d min", h, int(math.Mod(d.Minutes(), 60)))
	}
}

// remoteName names a remote job status of QueryDeviceDistributeJob.
func remoteName(p *int) string {
	if p == nil {
		return ""
	}
	switch *p {
	case distribution.RemoteInitializing:
		return "initializing"
	case distribution.RemoteRunning:
		return "running"
	case distribution.RemoteCompleted:
		return "completed"
	case distribution.RemoteInterrupted:
		return "interrupted"
	}
	return fmt.Sprintf("status %d", *p)
}
