package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/distq/distq/client"
)

// The fairness scenario of issue 14: three teams share one account. Team A
// queues a big batch, team B a small one a few seconds later, and team C
// one single distribution later still. Everything is measured from the
// simulator's audit: each Create's arrival and product key, whose middle
// part names the team (fairKey).

// fairTeams are the scenario's teams and their bearer tokens.
var fairTeams = []struct{ name, token string }{
	{"A", "bench-fair-token-a"},
	{"B", "bench-fair-token-b"},
	{"C", "bench-fair-token-c"},
}

// fairParams describe one fairness run.
type fairParams struct {
	weightA, weightB int           // DISTQ_TEAM_WEIGHTS of A and B
	qps, slots       int           // the account's Create rate and job slots
	jobDur           time.Duration // the simulator's job duration
	nA, nB           int           // batch sizes of A and B
	bAfter, cAfter   time.Duration // B's batch and C's single, after A's batch is accepted
	workers          int
}

// defaultFair is the scenario of issue 14 with weights wA:wB.
func defaultFair(wA, wB, workers int) fairParams {
	return fairParams{weightA: wA, weightB: wB, qps: 2, slots: 10, jobDur: time.Second,
		nA: 300, nB: 30, bAfter: 5 * time.Second, cAfter: 10 * time.Second, workers: workers}
}

// idealShare is B's share of Creates while A and B both have a backlog.
func (p fairParams) idealShare() float64 {
	return float64(p.weightB) / float64(p.weightA+p.weightB)
}

// interval is one rate interval: the time between two grants at the
// account's rate.
func (p fairParams) interval() time.Duration { return time.Second / time.Duration(p.qps) }

// parseWeights reads "wA:wB", two integers ≥ 1.
func parseWeights(s string) (int, int, error) {
	a, b, ok := strings.Cut(s, ":")
	wa, errA := strconv.Atoi(strings.TrimSpace(a))
	wb, errB := strconv.Atoi(strings.TrimSpace(b))
	if !ok || errA != nil || errB != nil || wa < 1 || wb < 1 {
		return 0, 0, fmt.Errorf("-fair-weights %q: want A:B, two integers ≥ 1 (e.g. 1:1 or 3:1)", s)
	}
	return wa, wb, nil
}

// fairKey is the product key of item i of team's submission: "fair-B-0007".
func fairKey(team string, i int) string { return fmt.Sprintf("fair-%s-%04d", team, i) }

// teamOf is the team of a product key made by fairKey, "" for another key.
func teamOf(productKey string) string {
	rest, ok := strings.CutPrefix(productKey, "fair-")
	if !ok {
		return ""
	}
	team, _, ok := strings.Cut(rest, "-")
	if !ok {
		return ""
	}
	return team
}

// fairTimes are the bench's clock readings of the submissions.
type fairTimes struct {
	bAccepted  time.Time // B's batch answered 202
	cSubmitted time.Time // C's single POST sent
}

// fairResult is what one run measured.
type fairResult struct {
	// B's share of the Creates of A and B that arrived while both had a
	// backlog: from B's batch accepted to the earlier of A's and B's last
	// Create (C's single is not counted).
	BShare       float64
	InWindowA    int
	InWindowB    int
	Window       time.Duration
	BFirst       time.Duration // B's first Create after its batch was accepted (0 if it arrived before the 202 did)
	BLast        time.Duration // B's last Create after its batch was accepted
	RateUsed     float64       // utilization of every successful Create, first to last
	Throttled    int           // throttling answers, every action
	MaxPerSecond int           // most Create arrivals in any 1 s
	// C: its single's Create after its POST was sent, and the batch Creates
	// that arrived between one rate interval after that POST and C's Create
	// (0 when C went first).
	CFound     bool
	CLatency   time.Duration
	COvertaken int
}

// analyzeFair measures a run from the simulator's audit.
func analyzeFair(calls []call, t fairTimes, p fairParams) (fairResult, error) {
	var r fairResult
	var all, ok []time.Time
	byTeam := map[string][]time.Time{}
	var batch []time.Time // successful Creates of A and B
	for _, c := range calls {
		if c.Outcome == "throttled" {
			r.Throttled++
		}
		if c.Action != "CreateProductDistributeJob" {
			continue
		}
		all = append(all, c.Arrived)
		if c.Outcome != "ok" {
			continue
		}
		ok = append(ok, c.Arrived)
		team := teamOf(c.ProductKey)
		byTeam[team] = append(byTeam[team], c.Arrived)
		if team == "A" || team == "B" {
			batch = append(batch, c.Arrived)
		}
	}
	for _, ts := range [][]time.Time{ok, batch, byTeam["A"], byTeam["B"], byTeam["C"]} {
		sort.Slice(ts, func(i, j int) bool { return ts[i].Before(ts[j]) })
	}
	a, b := byTeam["A"], byTeam["B"]
	if len(a) == 0 || len(b) == 0 {
		return r, fmt.Errorf("the audit has %d successful Creates of team A and %d of team B: nothing to compare", len(a), len(b))
	}
	start := t.bAccepted
	if b[0].Before(start) { // the Create came before the 202 reached the bench
		start = b[0]
	}
	end := b[len(b)-1]
	if a[len(a)-1].Before(end) {
		end = a[len(a)-1]
	}
	r.InWindowA, r.InWindowB = countIn(a, start, end), countIn(b, start, end)
	if n := r.InWindowA + r.InWindowB; n > 0 {
		r.BShare = float64(r.InWindowB) / float64(n)
	}
	r.Window = max(end.Sub(start), 0)
	r.BFirst = max(b[0].Sub(t.bAccepted), 0)
	r.BLast = b[len(b)-1].Sub(t.bAccepted)
	r.RateUsed = utilization(ok, p.qps)
	r.MaxPerSecond = maxInWindow(all, time.Second)
	if c := byTeam["C"]; len(c) > 0 {
		r.CFound = true
		r.CLatency = c[0].Sub(t.cSubmitted)
		from := t.cSubmitted.Add(p.interval())
		for _, at := range batch {
			if at.After(from) && at.Before(c[0]) {
				r.COvertaken++
			}
		}
	}
	return r, nil
}

// countIn counts the times within [from, to].
func countIn(ts []time.Time, from, to time.Time) int {
	n := 0
	for _, t := range ts {
		if !t.Before(from) && !t.After(to) {
			n++
		}
	}
	return n
}

// fairCheck is one target of the scenario, over every run.
type fairCheck struct {
	name, ideal, target string
	measured            func(fairResult) string
	pass                func(fairResult) bool
}

// fairChecks are the targets of issue 14 for p.
func fairChecks(p fairParams) []fairCheck {
	share := p.idealShare()
	return []fairCheck{
		{
			name:     "B's share of Creates while A and B both wait",
			ideal:    fmt.Sprintf("%.2f (%d:%d)", share, p.weightA, p.weightB),
			target:   fmt.Sprintf("%.2f–%.2f", share-0.05, share+0.05),
			measured: func(r fairResult) string { return fmt.Sprintf("%.2f", r.BShare) },
			pass:     func(r fairResult) bool { return math.Abs(r.BShare-share) <= 0.05+1e-9 },
		},
		{
			name:     "B's first Create after its batch was accepted",
			ideal:    fmt.Sprintf("≤ %v", p.interval()),
			target:   "≤ 1s",
			measured: func(r fairResult) string { return fmt.Sprintf("%.2fs", r.BFirst.Seconds()) },
			pass:     func(r fairResult) bool { return r.BFirst <= time.Second },
		},
		{
			name:     "account's Create rate used while work was queued",
			ideal:    "100%",
			target:   "≥ 98%",
			measured: func(r fairResult) string { return fmt.Sprintf("%.1f%%", 100*r.RateUsed) },
			pass:     func(r fairResult) bool { return r.RateUsed >= 0.98 },
		},
		{
			name:     "throttled answers",
			ideal:    "0",
			target:   "0",
			measured: func(r fairResult) string { return strconv.Itoa(r.Throttled) },
			pass:     func(r fairResult) bool { return r.Throttled == 0 },
		},
		{
			name:     "most Creates in any 1 s",
			ideal:    strconv.Itoa(p.qps),
			target:   fmt.Sprintf("≤ %d", p.qps),
			measured: func(r fairResult) string { return strconv.Itoa(r.MaxPerSecond) },
			pass:     func(r fairResult) bool { return r.MaxPerSecond <= p.qps },
		},
		{
			name:   "batch Creates reaching the endpoint before C's single (after C's POST + one interval)",
			ideal:  fmt.Sprintf("0 (C's Create ≤ %v after its POST)", p.interval()),
			target: "0",
			measured: func(r fairResult) string {
				if !r.CFound {
					return "C not created"
				}
				return fmt.Sprintf("%d (C's Create %.2fs after its POST)", r.COvertaken, r.CLatency.Seconds())
			},
			pass: func(r fairResult) bool { return r.CFound && r.COvertaken == 0 },
		},
	}
}

// runFair runs the fairness scenario runs times, prints each run's figures
// and then one PASS/FAIL line per target, with the ideal beside the
// measured. It fails when a target is missed in any run.
func (e env) runFair(ctx context.Context, runs int, p fairParams) error {
	fmt.Printf("fair share: teams A, B, C on one account (%d Creates/s, %d slots, %v jobs, %d workers)\n", p.qps, p.slots, p.jobDur, p.workers)
	fmt.Printf("A: %d-item batch at 0s; B: %d-item batch at %v; C: one single at %v; DISTQ_TEAM_WEIGHTS=A=%d,B=%d\n",
		p.nA, p.nB, p.bAfter, p.cAfter, p.weightA, p.weightB)
	idealBLast := time.Duration(float64(p.nB) / (float64(p.qps) * p.idealShare()) * float64(time.Second))
	fmt.Printf("ideal: B's share %.2f, B's first Create ≤ %v after its batch is accepted, B's last ~%.0fs after it; C's Create ≤ %v after its POST\n\n",
		p.idealShare(), p.interval(), idealBLast.Seconds(), p.interval())
	fmt.Println("| run | B's share (A, B Creates in the window) | window | B's first Create | B's last Create | rate used | throttled | max Creates in 1 s | batch Creates before C | C's Create |")
	fmt.Println("|---|---|---|---|---|---|---|---|---|---|")
	var results []fairResult
	for i := range runs {
		r, err := e.fairOnce(ctx, i+1, p)
		if err != nil {
			return fmt.Errorf("fair run %d: %w", i+1, err)
		}
		results = append(results, r)
		c := "not created"
		if r.CFound {
			c = fmt.Sprintf("%.2fs", r.CLatency.Seconds())
		}
		fmt.Printf("| %d | %.3f (%d, %d) | %.1fs | %.2fs | %.1fs | %.1f%% | %d | %d | %d | %s |\n", i+1,
			r.BShare, r.InWindowA, r.InWindowB, r.Window.Seconds(), r.BFirst.Seconds(), r.BLast.Seconds(),
			100*r.RateUsed, r.Throttled, r.MaxPerSecond, r.COvertaken, c)
	}
	fmt.Println()
	failed := 0
	for _, c := range fairChecks(p) {
		verdict := "PASS"
		var got []string
		for _, r := range results {
			got = append(got, c.measured(r))
			if !c.pass(r) {
				verdict = "FAIL"
			}
		}
		if verdict == "FAIL" {
			failed++
		}
		fmt.Printf("%s  %s: measured %s; ideal %s; target %s\n", verdict, c.name, strings.Join(got, ", "), c.ideal, c.target)
	}
	if failed > 0 {
		return fmt.Errorf("fair share: %d of %d targets missed", failed, len(fairChecks(p)))
	}
	return nil
}

// fairOnce starts the simulator, the workers and the api as processes on
// an empty database, submits A's batch, B's batch and C's single on the
// scenario's schedule, waits until B's batch is done and C's single has
// ended, and measures the audit (kept as fair-RUN-audit.json in the logs).
func (e env) fairOnce(ctx context.Context, run int, p fairParams) (fairResult, error) {
	rdb, err := e.emptyDB(ctx)
	if err != nil {
		return fairResult{}, err
	}
	defer rdb.Close()
	var procs procs
	defer procs.stop()
	name := fmt.Sprintf("fair-%d", run)
	simURL, err := e.startSim(ctx, &procs, name,
		"ALISIM_JOB_DURATION="+p.jobDur.String(),
		fmt.Sprintf("ALISIM_MAX_JOBS=%d", p.slots),
		fmt.Sprintf("ALISIM_QPS=CreateProductDistributeJob=%d", p.qps))
	if err != nil {
		return fairResult{}, err
	}
	var tokens []string
	for _, t := range fairTeams {
		tokens = append(tokens, t.name+":"+t.token)
	}
	distqEnv := e.distqEnv(simURL,
		fmt.Sprintf("DISTQ_CREATE_QPS=%d", p.qps),
		fmt.Sprintf("DISTQ_MAX_JOBS=%d", p.slots),
		"DISTQ_WORKER_CONCURRENCY=10",
		// The last value of a variable wins: the three teams replace the
		// bench's one team of distqEnv.
		"DISTQ_API_TOKENS="+strings.Join(tokens, ","),
		fmt.Sprintf("DISTQ_TEAM_WEIGHTS=A=%d,B=%d", p.weightA, p.weightB))
	for i := range p.workers {
		if err := e.startWorker(&procs, name, i, distqEnv); err != nil {
			return fairResult{}, err
		}
	}
	api, err := e.startAPI(ctx, &procs, name, distqEnv)
	if err != nil {
		return fairResult{}, err
	}
	clA, clB, clC := client.New(api, fairTeams[0].token), client.New(api, fairTeams[1].token), client.New(api, fairTeams[2].token)
	teamBatch := func(team string, n int) client.BatchRequest {
		b := client.BatchRequest{Items: make([]client.BatchItem, n), SourceInstanceID: "iotx-oxssharez200", TargetInstanceID: "iot-cn-fair"}
		for i := range b.Items {
			b.Items[i].ProductKey = fairKey(team, i)
		}
		return b
	}

	if _, _, err := clA.SubmitBatch(ctx, teamBatch("A", p.nA), ""); err != nil {
		return fairResult{}, fmt.Errorf("team A's batch: %w", err)
	}
	t0 := time.Now()
	if err := sleepCtx(ctx, time.Until(t0.Add(p.bAfter))); err != nil {
		return fairResult{}, err
	}
	createdB, _, err := clB.SubmitBatch(ctx, teamBatch("B", p.nB), "")
	if err != nil {
		return fairResult{}, fmt.Errorf("team B's batch: %w", err)
	}
	var t fairTimes
	t.bAccepted = time.Now()
	if err := sleepCtx(ctx, time.Until(t0.Add(p.cAfter))); err != nil {
		return fairResult{}, err
	}
	t.cSubmitted = time.Now()
	single, _, err := clC.Submit(ctx, client.DistributionRequest{ProductKey: fairKey("C", 0),
		SourceInstanceID: "iotx-oxssharez200", TargetInstanceID: "iot-cn-fair"}, "")
	if err != nil {
		return fairResult{}, fmt.Errorf("team C's single: %w", err)
	}

	// Everything of A and B at the account's rate, and a minute more.
	deadline := t0.Add(time.Duration(p.nA+p.nB+1)*p.interval() + time.Minute)
	bDone, cDone := false, false
	for !bDone || !cDone {
		if time.Now().After(deadline) {
			return fairResult{}, fmt.Errorf("not over %[3]v after team A's batch: team B's batch done: %[1]v, team C's single ended: %[2]v", bDone, cDone, time.Since(t0).Round(time.Second))
		}
		if !bDone {
			b, err := clB.GetBatch(ctx, createdB.Batch.ID)
			if err != nil {
				return fairResult{}, err
			}
			if bDone = b.Done; bDone && b.Counts[client.StateSucceeded] != p.nB {
				return fairResult{}, fmt.Errorf("team B's batch done with counts %v, want %d succeeded", b.Counts, p.nB)
			}
		}
		if !cDone {
			d, err := clC.Get(ctx, single.ID)
			if err != nil {
				return fairResult{}, err
			}
			if cDone = d.State.Terminal(); cDone && d.State != client.StateSucceeded {
				return fairResult{}, fmt.Errorf("team C's single ended %s", d.State)
			}
		}
		if err := sleepCtx(ctx, 250*time.Millisecond); err != nil {
			return fairResult{}, err
		}
	}
	// A few more of A's Creates, so the rate is measured across the moment
	// B's backlog ends too.
	if err := sleepCtx(ctx, 3*time.Second); err != nil {
		return fairResult{}, err
	}
	var raw json.RawMessage
	if err := getJSON(simURL+"/_alisim/audit", &raw); err != nil {
		return fairResult{}, err
	}
	// Kept beside the processes' logs, to study a run afterwards.
	if err := os.WriteFile(filepath.Join(e.logs, fmt.Sprintf("fair-%d-audit.json", run)), raw, 0o644); err != nil {
		return fairResult{}, err
	}
	var audit struct{ Calls []call }
	if err := json.Unmarshal(raw, &audit); err != nil {
		return fairResult{}, fmt.Errorf("the simulator's audit: %w", err)
	}
	if len(audit.Calls) == 0 {
		return fairResult{}, errors.New("the simulator's audit is empty")
	}
	return analyzeFair(audit.Calls, t, p)
}
