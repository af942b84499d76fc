package console

import (
	"fmt"
	"math"

	"github.com/distq/distq/internal/distribution"
	"github.com/distq/distq/internal/service"
)

// Charts are drawn on the server as SVG: the templates get coordinates,
// so that no script and no style attribute is needed (the CSP forbids
// both); colours come from classes in console.css.

// segment is one state's part of a progress bar, in percent of its width.
type segment struct {
	State distribution.State
	Count int
	X, W  float64
}

// barOrder puts what is finished on the left.
var barOrder = []distribution.State{
	distribution.StateSucceeded, distribution.StateFailed, distribution.StateCanceled,
	distribution.StateRunning, distribution.StateSubmitting, distribution.StateQueued,
}

func segments(counts map[distribution.State]int) []segment {
	total := 0
	for _, n := range counts {
		total += n
	}
	var out []segment
	x := 0.0
	for _, st := range barOrder {
		n := counts[st]
		if n == 0 || total == 0 {
			continue
		}
		w := 100 * float64(n) / float64(total)
		out = append(out, segment{State: st, Count: n, X: x, W: w})
		x += w
	}
	return out
}

// rateChart is the Creates per minute of the last hour against the limit.
type rateChart struct {
	Width, Height, Top, Left, PlotW, PlotH float64
	Bars                                   []rateBar
	LimitY                                 float64
	Limit, Max                             int
	Summary                                string
}

type rateBar struct {
	X, Y, W, H float64
	Title      string
}

func newRateChart(v *service.AccountView) rateChart {
	c := rateChart{Width: 1000, Height: 230, Top: 14, Left: 48, PlotW: 940, PlotH: 186}
	c.Limit = v.CreateQPS * 60
	top := c.Limit
	for _, m := range v.Minutes {
		top = max(top, m.Count)
	}
	top = int(math.Ceil(float64(max(top, 1)) * 1.1))
	c.Max = top
	n := max(len(v.Minutes), 1)
	slot := c.PlotW / float64(n)
	for i, m := range v.Minutes {
		h := c.PlotH * float64(m.Count) / float64(top)
		c.Bars = append(c.Bars, rateBar{
			X: c.Left + float64(i)*slot + 1, W: math.Max(slot-2, 1), Y: c.Top + c.PlotH - h, H: h,
			Title: fmt.Sprintf("%s: %d Creates (limit %d)", m.Start.Format("15:04"), m.Count, c.Limit),
		})
	}
	c.LimitY = c.Top + c.PlotH - c.PlotH*float64(c.Limit)/float64(top)
	limit := v.CreateQPS * 3600
	used := 0.0
	if limit > 0 {
		used = float64(v.CreatesLastHour) / float64(limit)
	}
	c.Summary = fmt.Sprintf("%d Creates in the last hour, %.1f%% of the account's limit of %d (%d per second).", v.CreatesLastHour, 100*used, limit, v.CreateQPS)
	return c
}

// hbars is a horizontal bar chart, one row per team.
type hbars struct {
	Width, Height, Label, BarW float64
	Rows                       []hrow
	Summary                    string
}

type hrow struct {
	Name, Value string
	Self        bool
	Y, W        float64
}

func newHBars(names []string, self []bool, values []float64, max float64, format func(float64) string) hbars {
	h := hbars{Width: 480, Label: 130, BarW: 290}
	for i, name := range names {
		w := 0.0
		if max > 0 {
			w = h.BarW * values[i] / max
		}
		h.Rows = append(h.Rows, hrow{Name: name, Self: self[i], Value: format(values[i]), Y: float64(i) * 32, W: w})
	}
	h.Height = math.Max(float64(len(names))*32, 32)
	return h
}

// slotGauge is the account's job slots: held per team, held outside
// distq, and free.
type slotGauge struct {
	Width, BarW float64
	Parts       []slotPart
	Summary     string
}

type slotPart struct {
	Name  string
	Count int
	Class string
	X, W  float64
}

func newSlotGauge(v *service.AccountView) slotGauge {
	g := slotGauge{Width: 1000, BarW: 1000}
	limit := max(v.MaxJobs, v.SlotsInUse+v.External, 1)
	x := 0.0
	add := func(name, class string, n int) {
		if n <= 0 {
			return
		}
		w := g.BarW * float64(n) / float64(limit)
		g.Parts = append(g.Parts, slotPart{Name: name, Count: n, Class: class, X: x, W: w})
		x += w
	}
	for _, t := range v.Teams {
		class := "team-other"
		if t.Self {
			class = "team-self"
		}
		add(t.Team, class, t.Slots)
	}
	add("outside distq", "external", v.External)
	add("free", "free", v.MaxJobs-v.SlotsInUse-v.External)
	g.Summary = fmt.Sprintf("%d of %d job slots in use (%d by distq, %d outside it).", v.SlotsInUse+v.External, v.MaxJobs, v.SlotsInUse, v.External)
	return g
}
