package main

import (
	"strings"
	"testing"
	"time"
)

// schedule is a synthetic audit: one successful Create every 500 ms from
// base (2 per second, the account's rate used fully), for the teams in
// order ("AAB" is A, A, B), each team's items numbered from 0.
func schedule(base time.Time, order string) []call {
	next := map[rune]int{}
	var calls []call
	for i, team := range order {
		calls = append(calls, call{Action: "CreateProductDistributeJob", ProductKey: fairKey(string(team), next[team]),
			Arrived: base.Add(time.Duration(i) * 500 * time.Millisecond), Outcome: "ok"})
		next[team]++
	}
	return calls
}

// verdicts are the PASS/FAIL of each of fairChecks(p) for r, "P" or "F".
func verdicts(p fairParams, r fairResult) string {
	var b strings.Builder
	for _, c := range fairChecks(p) {
		if c.pass(r) {
			b.WriteByte('P')
		} else {
			b.WriteByte('F')
		}
	}
	return b.String()
}

var base = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func sec(s float64) time.Time { return base.Add(time.Duration(s * float64(time.Second))) }

// A fair 1:1 run: A alone for 5 s, then B and A take turns until B's 30
// are done; C's single, posted at 10 s, takes the next grant. Queries and
// a throttled Query are not Creates; an errored Create counts in the
// 1-second windows only.
func TestAnalyzeFairEqualShares(t *testing.T) {
	t.Parallel()
	order := strings.Repeat("A", 10) + strings.Repeat("BA", 5) + "C" + strings.Repeat("AB", 25) + strings.Repeat("A", 20)
	calls := schedule(base, order)
	calls = append(calls,
		call{Action: "QueryDeviceDistributeJob", Arrived: sec(7.1), Outcome: "ok"},
		call{Action: "QueryDeviceDistributeJob", Arrived: sec(7.2), Outcome: "throttled"},
		call{Action: "CreateProductDistributeJob", ProductKey: fairKey("A", 999), Arrived: sec(90), Outcome: "error"})
	p := defaultFair(1, 1, 2)
	r, err := analyzeFair(calls, fairTimes{bAccepted: sec(5), cSubmitted: sec(9.999)}, p)
	if err != nil {
		t.Fatal(err)
	}
	// Window: B's batch accepted (5 s) to B's last Create (slot 70, 35 s):
	// 30 of A, 30 of B, and C's single, which is not counted.
	want := fairResult{BShare: 0.5, InWindowA: 30, InWindowB: 30, Window: 30 * time.Second, BFirst: 0, BLast: 30 * time.Second,
		RateUsed: 1, Throttled: 1, MaxPerSecond: 2, CFound: true, CLatency: time.Millisecond, COvertaken: 0}
	if r != want {
		t.Fatalf("analyzeFair =\n %+v\nwant\n %+v", r, want)
	}
	if v := verdicts(p, r); v != "PPPFPP" { // only the throttled answer fails
		t.Errorf("verdicts = %s, want PPPFPP", v)
	}
}

// Today's order (issue 14): A's whole batch, then B's; C's single waits
// behind three of A's Creates. B gets nothing while both wait, its first
// Create comes after A's last, and C is overtaken.
func TestAnalyzeFairArrivalOrder(t *testing.T) {
	t.Parallel()
	order := strings.Repeat("A", 25) + "C" + strings.Repeat("A", 275) + strings.Repeat("B", 30)
	p := defaultFair(1, 1, 2)
	r, err := analyzeFair(schedule(base, order), fairTimes{bAccepted: sec(5), cSubmitted: sec(10)}, p)
	if err != nil {
		t.Fatal(err)
	}
	// A's last Create is slot 300 (150 s); B's first is slot 301 (150.5 s).
	// C's Create at slot 25 (12.5 s): A's at 11, 11.5 and 12 s came after
	// its POST (10 s) + one interval (10.5 s, excluded).
	want := fairResult{BShare: 0, InWindowA: 290, InWindowB: 0, Window: 145 * time.Second, BFirst: 145500 * time.Millisecond,
		BLast: 160 * time.Second, RateUsed: 1, MaxPerSecond: 2, CFound: true, CLatency: 2500 * time.Millisecond, COvertaken: 3}
	if r != want {
		t.Fatalf("analyzeFair =\n %+v\nwant\n %+v", r, want)
	}
	if v := verdicts(p, r); v != "FFPPPF" {
		t.Errorf("verdicts = %s, want FFPPPF", v)
	}
}

// Weights 3:1: three of A's Creates to one of B's while both wait. The
// share is right for 3:1 and wrong for 1:1; a burst of three Creates in a
// second and a gap of 5 s after B's last are seen.
func TestAnalyzeFairWeightsBurstAndGap(t *testing.T) {
	t.Parallel()
	order := strings.Repeat("A", 10) + strings.Repeat("AAAB", 30) + "C"
	calls := schedule(base, order)
	last := calls[len(calls)-1].Arrived
	// A burst: three of A's Creates 100 ms apart, 5 s after the rest.
	for i, d := range []time.Duration{5000, 5100, 5200} {
		calls = append(calls, call{Action: "CreateProductDistributeJob", ProductKey: fairKey("A", 500+i),
			Arrived: last.Add(d * time.Millisecond), Outcome: "ok"})
	}
	times := fairTimes{bAccepted: sec(5), cSubmitted: sec(64)}
	r, err := analyzeFair(calls, times, defaultFair(3, 1, 2))
	if err != nil {
		t.Fatal(err)
	}
	if r.InWindowA != 90 || r.InWindowB != 30 || r.BShare != 0.25 {
		t.Errorf("window counts A %d, B %d, share %v; want 90, 30, 0.25", r.InWindowA, r.InWindowB, r.BShare)
	}
	if r.BFirst != 1500*time.Millisecond {
		t.Errorf("B's first Create %v after acceptance, want 1.5s (slot 13)", r.BFirst)
	}
	if r.MaxPerSecond != 3 {
		t.Errorf("max Creates in 1 s = %d, want 3", r.MaxPerSecond)
	}
	// 134 Creates: 66 s of grants at 2/s (bursts of 2), taken in 70.2 s.
	if want := 66 / 70.2; r.RateUsed < want-1e-9 || r.RateUsed > want+1e-9 {
		t.Errorf("rate used %v, want %v", r.RateUsed, want)
	}
	if v := verdicts(defaultFair(3, 1, 2), r); v != "PFFPFP" {
		t.Errorf("verdicts with 3:1 = %s, want PFFPFP", v)
	}
	if v := verdicts(defaultFair(1, 1, 2), r); v[0] != 'F' {
		t.Errorf("a 0.25 share passes with weights 1:1 (verdicts %s)", v)
	}
}

func TestAnalyzeFairNeedsBothTeams(t *testing.T) {
	t.Parallel()
	if _, err := analyzeFair(schedule(base, "AAAA"), fairTimes{bAccepted: sec(1)}, defaultFair(1, 1, 1)); err == nil {
		t.Fatal("no Create of B: want an error, not a share")
	}
	r, err := analyzeFair(schedule(base, "AABAB"), fairTimes{bAccepted: sec(0.5)}, defaultFair(1, 1, 1))
	if err != nil {
		t.Fatal(err)
	}
	if r.CFound || verdicts(defaultFair(1, 1, 1), r)[5] != 'F' {
		t.Errorf("C never created: CFound %v, verdicts %s; want false and a FAIL", r.CFound, verdicts(defaultFair(1, 1, 1), r))
	}
}

func TestFairKeysAndWeights(t *testing.T) {
	t.Parallel()
	for key, team := range map[string]string{fairKey("B", 7): "B", fairKey("C", 0): "C", "a1bench00001": "", "fair-": ""} {
		if got := teamOf(key); got != team {
			t.Errorf("teamOf(%q) = %q, want %q", key, got, team)
		}
	}
	if a, b, err := parseWeights("3:1"); err != nil || a != 3 || b != 1 {
		t.Errorf("parseWeights(3:1) = %d, %d, %v", a, b, err)
	}
	for _, bad := range []string{"1", "0:1", "1:x", "-1:2", ""} {
		if _, _, err := parseWeights(bad); err == nil {
			t.Errorf("parseWeights(%q): want an error", bad)
		}
	}
}
