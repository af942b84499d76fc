package main

import (
	"sort"
	"time"
)

// call is what the bench reads of the simulator's audit.
type call struct {
	Action     string    `json:"action"`
	ProductKey string    `json:"product_key"`
	JobID      string    `json:"job_id"`
	Arrived    time.Time `json:"arrived"`
	Outcome    string    `json:"outcome"`
	Code       string    `json:"code"`
}

// job is what the bench reads of the simulator's jobs.
type job struct {
	JobID      string    `json:"job_id"`
	ProductKey string    `json:"product_key"`
	Created    time.Time `json:"created"`
	FinishesAt time.Time `json:"finishes_at"`
	External   bool      `json:"external"`
}

// maxInWindow is the most times that fall in any half-open window
// [t, t+w) — the sliding-window count the remote enforces.
func maxInWindow(ts []time.Time, w time.Duration) int {
	s := append([]time.Time(nil), ts...)
	sort.Slice(s, func(i, j int) bool { return s[i].Before(s[j]) })
	best, j := 0, 0
	for i := range s {
		for j < len(s) && s[j].Sub(s[i]) < w {
			j++
		}
		best = max(best, j-i)
	}
	return best
}

// utilization compares the span of n calls with the shortest span a
// sliding window of limit calls per second allows: bursts of limit calls,
// one second apart, take floor((n-1)/limit) seconds. 1.0 is the limit used
// fully; over 1.0 is impossible without breaking it.
func utilization(ts []time.Time, limit int) float64 {
	if len(ts) <= limit {
		return 0
	}
	s := append([]time.Time(nil), ts...)
	sort.Slice(s, func(i, j int) bool { return s[i].Before(s[j]) })
	span := s[len(s)-1].Sub(s[0]).Seconds()
	if span <= 0 {
		return 0
	}
	return float64((len(s)-1)/limit) / span
}

// peakOverlap is the most jobs unfinished at once (created, not yet past
// FinishesAt), counting only jobs made by distq.
func peakOverlap(jobs []job) int {
	type ev struct {
		t time.Time
		d int
	}
	var evs []ev
	for _, j := range jobs {
		if j.External {
			continue
		}
		evs = append(evs, ev{j.Created, 1}, ev{j.FinishesAt, -1})
	}
	sort.Slice(evs, func(i, j int) bool {
		if evs[i].t.Equal(evs[j].t) {
			return evs[i].d < evs[j].d // a finish before a start at the same instant
		}
		return evs[i].t.Before(evs[j].t)
	})
	cur, best := 0, 0
	for _, e := range evs {
		cur += e.d
		best = max(best, cur)
	}
	return best
}

// duplicates counts products with more than one job.
func duplicates(jobs []job) int {
	per := map[string]int{}
	for _, j := range jobs {
		if !j.External {
			per[j.ProductKey]++
		}
	}
	n := 0
	for _, c := range per {
		if c > 1 {
			n += c - 1
		}
	}
	return n
}
