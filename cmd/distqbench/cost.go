package main

import (
	"bufio"
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/distq/distq/client"
)

// commandStats sums the calls of every command in INFO commandstats, the
// INFO calls themselves left out (the bench makes them), and gives the
// calls of each command. Commands run by Lua scripts count one each,
// besides their EVALSHA: what the server does.
func commandStats(ctx context.Context, rdb *redis.Client) (int64, map[string]int64, error) {
	info, err := rdb.Info(ctx, "commandstats").Result()
	if err != nil {
		return 0, nil, err
	}
	n, by := parseCommandStats(info)
	return n, by, nil
}

// parseCommandStats sums calls= of the cmdstat_ lines of an INFO
// commandstats answer, cmdstat_info left out, and gives the calls of each
// command (lower case, as Redis names them).
func parseCommandStats(info string) (int64, map[string]int64) {
	var n int64
	by := map[string]int64{}
	sc := bufio.NewScanner(strings.NewReader(info))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		name, rest, ok := strings.Cut(line, ":")
		if !ok || !strings.HasPrefix(name, "cmdstat_") || name == "cmdstat_info" {
			continue
		}
		for _, f := range strings.Split(rest, ",") {
			if v, ok := strings.CutPrefix(f, "calls="); ok {
				c, _ := strconv.ParseInt(v, 10, 64)
				n += c
				by[strings.TrimPrefix(name, "cmdstat_")] += c
			}
		}
	}
	return n, by
}

// topCommands formats the commands of after-before with the most calls,
// as calls per unit (a distribution, a second).
func topCommands(before, after map[string]int64, per float64, k int) string {
	type kv struct {
		name string
		n    int64
	}
	var d []kv
	for name, n := range after {
		if c := n - before[name]; c > 0 {
			d = append(d, kv{name, c})
		}
	}
	sort.Slice(d, func(i, j int) bool { return d[i].n > d[j].n || d[i].n == d[j].n && d[i].name < d[j].name })
	if len(d) > k {
		d = d[:k]
	}
	parts := make([]string, len(d))
	for i, x := range d {
		parts[i] = fmt.Sprintf("%s %.1f", x.name, float64(x.n)/per)
	}
	return strings.Join(parts, ", ")
}

// costResult is one cost measurement.
type costResult struct {
	jobDur     time.Duration
	warm       bool // the account's job durations known from an earlier batch
	n          int
	idlePerSec float64 // api + worker with nothing to do, the worker still busy
	quietSec   float64 // the same once the worker went quiet (DISTQ_IDLE_AFTER)
	commands   int64   // during the run, submit to last final state
	elapsed    time.Duration
	idleTop    string // the idle pair's commands with the most calls, per second
	quietTop   string // the same, the worker quiet
	top        string // the run's commands with the most calls, per distribution
}

func (r costResult) String() string {
	net := float64(r.commands) - r.idlePerSec*r.elapsed.Seconds()
	netQuiet := float64(r.commands) - r.quietSec*r.elapsed.Seconds()
	batch := "first (no duration known)"
	if r.warm {
		batch = "second (durations known)"
	}
	return fmt.Sprintf("| %v | %s | %d | %.1f | %.1f | %d | %.1fs | %.0f | %.0f | %.0f |", r.jobDur, batch, r.n, r.idlePerSec, r.quietSec, r.commands, r.elapsed.Seconds(),
		float64(r.commands)/float64(r.n), net/float64(r.n), netQuiet/float64(r.n))
}

// runCost measures what distq costs Redis, from INFO commandstats: the
// commands per second of an idle api + worker pair, and the commands per
// distribution of a batch of n with remote jobs of each duration (one api,
// one worker, the documented limits: 2 Creates/s, 10 jobs). The Redis
// server must serve nothing else meanwhile.
func (e env) runCost(ctx context.Context, n int, durs []time.Duration, idleFor time.Duration) error {
	// Two nets: less the busy idle rate (what a worker that never went
	// quiet would cost anyway: comparable with earlier figures) and less the
	// quiet rate (the deployment's floor: what the work itself costs, the
	// busy worker's look for tasks while items wait included).
	fmt.Println("| job duration | batch | distributions | idle commands/s, worker busy | idle commands/s, worker quiet | commands in the run | run | commands per distribution | per distribution, idle (busy) subtracted | per distribution, idle (quiet) subtracted |")
	fmt.Println("|---|---|---|---|---|---|---|---|---|---|")
	var details []string
	defer func() {
		// Where the commands go: after the table, so it stays one table.
		for _, d := range details {
			fmt.Println(d)
		}
	}()
	for _, d := range durs {
		rs, err := e.costOnce(ctx, n, d, idleFor)
		for i, r := range rs {
			fmt.Println(r)
			if i == 0 {
				details = append(details, fmt.Sprintf("- %v jobs, idle, worker busy, per second: %s", d, r.idleTop))
				details = append(details, fmt.Sprintf("- %v jobs, idle, worker quiet, per second: %s", d, r.quietTop))
			}
			details = append(details, fmt.Sprintf("- %v jobs, warm=%v, per distribution (idle included): %s", d, r.warm, r.top))
		}
		if err != nil {
			return fmt.Errorf("cost, %v jobs: %w", d, err)
		}
	}
	return nil
}

// costOnce starts a stack, measures it idle, then runs two batches of n
// one after the other: the first on an account without known job
// durations, the second with them (as in a running deployment).
func (e env) costOnce(ctx context.Context, n int, jobDur, idleFor time.Duration) ([]costResult, error) {
	res := costResult{jobDur: jobDur, n: n}
	rdb, err := e.emptyDB(ctx)
	if err != nil {
		return nil, err
	}
	defer rdb.Close()
	var p procs
	defer p.stop()
	name := fmt.Sprintf("cost %v", jobDur)
	simURL, err := e.startSim(ctx, &p, name, "ALISIM_JOB_DURATION="+jobDur.String())
	if err != nil {
		return nil, err
	}
	distqEnv := e.distqEnv(simURL)
	if err := e.startWorker(&p, name, 0, distqEnv); err != nil {
		return nil, err
	}
	api, err := e.startAPI(ctx, &p, name, distqEnv)
	if err != nil {
		return nil, err
	}
	// Let both settle (their first reconcile pass, asynq's first checks).
	if err := sleepCtx(ctx, 3*time.Second); err != nil {
		return nil, err
	}
	// Busy (it has just started): half the idle time, ending before the
	// worker may go quiet.
	busyFor := idleFor / 2
	before, beforeBy, err := commandStats(ctx, rdb)
	if err != nil {
		return nil, err
	}
	if err := sleepCtx(ctx, busyFor); err != nil {
		return nil, err
	}
	after, afterBy, err := commandStats(ctx, rdb)
	if err != nil {
		return nil, err
	}
	res.idlePerSec = float64(after-before) / busyFor.Seconds()
	res.idleTop = topCommands(beforeBy, afterBy, busyFor.Seconds(), 8)
	// The worker goes quiet after DISTQ_IDLE_AFTER (10 s) with nothing to
	// do anywhere: measure that too, from a little after it.
	if err := sleepCtx(ctx, quietAfter-busyFor); err != nil {
		return nil, err
	}
	if before, beforeBy, err = commandStats(ctx, rdb); err != nil {
		return nil, err
	}
	if err := sleepCtx(ctx, idleFor); err != nil {
		return nil, err
	}
	if after, afterBy, err = commandStats(ctx, rdb); err != nil {
		return nil, err
	}
	res.quietSec = float64(after-before) / idleFor.Seconds()
	res.quietTop = topCommands(beforeBy, afterBy, idleFor.Seconds(), 8)
	c := apiClient(api)
	var out []costResult
	for i, key := range []string{"a1cold%05d", "a1warm%05d"} {
		r, err := e.costBatch(ctx, rdb, c, simURL, key, res)
		r.warm = i > 0
		if err != nil {
			return out, err
		}
		out = append(out, r)
	}
	return out, nil
}

// costBatch submits a batch of res.n and measures the commands until all
// are final.
func (e env) costBatch(ctx context.Context, rdb *redis.Client, c *client.Client, simURL, keyFormat string, res costResult) (costResult, error) {
	n, jobDur := res.n, res.jobDur
	before, beforeBy, err := commandStats(ctx, rdb)
	if err != nil {
		return res, err
	}
	start := time.Now()
	created, _, err := c.SubmitBatch(ctx, benchBatch("iot-cn-cost", keyFormat, n), "")
	if err != nil {
		return res, err
	}
	// The batch's long poll would cost Redis commands of its own: the
	// simulator's job list tells when every job ended instead, and the
	// batch is read once the last should be final.
	limit := start.Add(time.Duration(n/2+30)*time.Second + 3*jobDur)
	for {
		if time.Now().After(limit) {
			return res, fmt.Errorf("batch not done by %v", limit.Sub(start))
		}
		var jobs struct{ Jobs []job }
		if err := getJSON(simURL+"/_alisim/jobs", &jobs); err != nil {
			return res, err
		}
		ended := 0
		for _, j := range jobs.Jobs {
			if j.ProductKey[:6] == keyFormat[:6] && !j.FinishesAt.IsZero() && time.Now().After(j.FinishesAt) {
				ended++
			}
		}
		if ended >= n {
			b, err := c.GetBatch(ctx, created.Batch.ID)
			if err != nil {
				return res, err
			}
			if b.Done {
				if b.Counts[client.StateSucceeded] != n {
					return res, fmt.Errorf("batch done with counts %v, want %d succeeded", b.Counts, n)
				}
				break
			}
		}
		if err := sleepCtx(ctx, 200*time.Millisecond); err != nil {
			return res, err
		}
	}
	res.elapsed = time.Since(start)
	after, afterBy, err := commandStats(ctx, rdb)
	if err != nil {
		return res, err
	}
	res.commands = after - before
	res.top = topCommands(beforeBy, afterBy, float64(n), 12)
	return res, nil
}

// quietAfter is how long after the idle measurement starts the quiet one
// starts: past DISTQ_IDLE_AFTER's default (10 s) and a check (2.5 s) from
// the stack's start.
const quietAfter = 12 * time.Second

func sleepCtx(ctx context.Context, d time.Duration) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}
