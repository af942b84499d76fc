package main

import (
	"testing"
	"time"
)

func at(ms ...int) []time.Time {
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var out []time.Time
	for _, m := range ms {
		out = append(out, base.Add(time.Duration(m)*time.Millisecond))
	}
	return out
}

func TestMaxInWindow(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		ts   []time.Time
		want int
	}{
		{"empty", nil, 0},
		{"spaced 500ms", at(0, 500, 1000, 1500), 2},
		{"edge excluded", at(0, 999, 1000), 2},
		{"three in a second", at(0, 400, 999, 2000), 3},
		{"unsorted", at(999, 0, 400), 3},
	} {
		if got := maxInWindow(tc.ts, time.Second); got != tc.want {
			t.Errorf("%s: maxInWindow = %d, want %d", tc.name, got, tc.want)
		}
	}
}

func TestRateAndOverlap(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		ts    []time.Time
		limit int
		want  float64
	}{
		{at(0, 0, 1000, 1000, 2000, 2000), 2, 1}, // bursts of 2 each second: all of it
		{at(0, 500, 1000, 1500, 2000), 2, 1},     // even spacing, 5 calls: 2 s ideal, 2 s taken
		{at(0, 500, 1000, 1500), 2, 1 / 1.5},     // 4 calls: 1 s ideal, 1.5 s taken
		{at(0, 1000), 2, 0},                      // too few to tell
	} {
		if got := utilization(tc.ts, tc.limit); got != tc.want {
			t.Errorf("utilization(%v, %d) = %v, want %v", tc.ts, tc.limit, got, tc.want)
		}
	}
	ts := at(0, 100, 200, 1000, 1100)
	jobs := []job{
		{ProductKey: "a", Created: ts[0], FinishesAt: ts[3]},
		{ProductKey: "b", Created: ts[1], FinishesAt: ts[2]},
		{ProductKey: "c", Created: ts[2], FinishesAt: ts[4]},
		{ProductKey: "a", Created: ts[3], FinishesAt: ts[4]},
		{ProductKey: "x", Created: ts[0], FinishesAt: ts[4], External: true},
	}
	if got := peakOverlap(jobs); got != 2 {
		t.Errorf("peakOverlap = %d, want 2", got)
	}
	if got := duplicates(jobs); got != 1 {
		t.Errorf("duplicates = %d, want 1", got)
	}
}

// The ideal schedule of the slot-bound scenario of issue 13: 30 products,
// 6 s jobs, 2 Creates/s, 10 slots: the last Create 16 s after the first,
// all done at 22 s.
func TestIdealSchedule(t *testing.T) {
	t.Parallel()
	last, done := idealSchedule(30, 2, 10, 6*time.Second)
	if last != 16*time.Second || done != 22*time.Second {
		t.Fatalf("ideal: last Create %v, done %v; want 16s and 22s", last, done)
	}
	// Rate-bound: 10 Creates, 10 slots, 1 s jobs: pairs each second.
	last, done = idealSchedule(10, 2, 10, time.Second)
	if last != 4*time.Second || done != 5*time.Second {
		t.Fatalf("rate-bound ideal: %v, %v; want 4s and 5s", last, done)
	}
}
