// Command distqbench measures distq's quota invariants from the outside:
// it starts the simulator, the api and K worker processes as separate
// processes on one Redis, submits a backlog, and reads the simulator's
// audit. It prints one table row per scenario, with asynq's per-process
// x/time/rate pattern ("naive") run on the same simulator for contrast.
//
//	go run ./cmd/distqbench [-scenarios all|quick] [-bin bin] [-redis 127.0.0.1:6379] [-db 13]
//	go run ./cmd/distqbench -fair [-fair-weights 1:1] [-runs N]   # fair share between teams (fair.go)
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/distq/distq/client"
)

type scenario struct {
	name    string
	naive   bool
	workers int
	n       int
	qps     int
	slots   int
	jobDur  time.Duration
	latency string // simulator latency, e.g. 0-50ms
	hog     bool   // a CPU hog process on the same cores
}

func scenarios(set string) []scenario {
	base := []scenario{
		{name: "distq K=1", workers: 1, n: 40, qps: 2, slots: 10, jobDur: 2 * time.Second},
		{name: "distq K=3", workers: 3, n: 40, qps: 2, slots: 10, jobDur: 2 * time.Second},
		{name: "distq K=3 jitter 0-50ms", workers: 3, n: 40, qps: 2, slots: 10, jobDur: 2 * time.Second, latency: "0-50ms"},
		{name: "distq K=3 slot-bound", workers: 3, n: 30, qps: 2, slots: 10, jobDur: 8 * time.Second},
		{name: "distq K=1 scaled 50/s", workers: 1, n: 500, qps: 50, slots: 100, jobDur: time.Second},
		{name: "distq K=3 scaled 50/s", workers: 3, n: 500, qps: 50, slots: 100, jobDur: time.Second},
		{name: "distq K=3 scaled 50/s jitter 0-50ms", workers: 3, n: 500, qps: 50, slots: 100, jobDur: time.Second, latency: "0-50ms"},
		{name: "naive x/time/rate K=3", naive: true, workers: 3, n: 40, qps: 2, slots: 10, jobDur: 2 * time.Second},
	}
	switch set {
	case "quick":
		return []scenario{base[1], base[5], base[7]}
	case "distq":
		return base[:7]
	case "scaled":
		return base[4:7]
	}
	return base
}

func main() {
	if len(os.Args) > 1 && os.Args[1] == "hog" {
		hog()
		return
	}
	if len(os.Args) > 1 && os.Args[1] == "naive-worker" {
		if err := naiveWorker(); err != nil {
			fmt.Fprintln(os.Stderr, "naive-worker:", err)
			os.Exit(1)
		}
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "distqbench:", err)
		os.Exit(1)
	}
}

type env struct {
	bin   string
	redis string
	db    int
	logs  string
	self  string
	extra []string // more variables for distq's processes (-distq-env)
}

func run(ctx context.Context) error {
	set := flag.String("scenarios", "all", "all, distq (without the naive contrast), quick or scaled (the 50/s rows)")
	bin := flag.String("bin", "bin", "folder of the built binaries (make build)")
	addr := flag.String("redis", envOr("TEST_REDIS_ADDR", "127.0.0.1:6379"), "Redis address")
	db := flag.Int("db", 15, "Redis DB number the bench may empty (FLUSHDB) and use; the tests lease 1–14")
	ingest := flag.Bool("ingest", false, "measure intake (batch and single POSTs) against bare asynq enqueues instead")
	items := flag.Int("items", 5000, "with -ingest: batch size")
	conc := flag.Int("concurrency", 16, "with -ingest: concurrent single POSTs")
	load := flag.Duration("load", 0, "run the intake load scenario for this long instead (e.g. 60s)")
	chaos := flag.Int("chaos", 0, "run the crash scenario with this many distributions instead")
	faults := flag.Bool("faults", false, "with -chaos: the simulator also injects 5xx, timeouts after create and latency")
	lost := flag.Bool("lost", false, "with -chaos: the simulator answers 503/500 after making the job on 30% of Creates")
	hogRuns := flag.Int("hog", 0, "run the jitter scenario with a CPU hog this many times instead")
	runs := flag.Int("runs", 1, "with -chaos or -fair: how many runs")
	fair := flag.Bool("fair", false, "run the fair-share scenario of issue 14 (teams A, B, C on one account; 300- and 30-item batches, one single) instead")
	fairWeights := flag.String("fair-weights", "1:1", "with -fair: the weights of teams A and B, A:B (passed as DISTQ_TEAM_WEIGHTS=A=…,B=…)")
	fairWorkers := flag.Int("fair-workers", 2, "with -fair: worker processes")
	cost := flag.Int("cost", 0, "measure Redis commands (INFO commandstats) per distribution for this many distributions with 1 s, 10 s and 60 s jobs, and of an idle api + worker, instead")
	slotRuns := flag.Int("slotbound", 0, "run the slot-bound scenario (30 products, 6 s jobs, 3 workers) this many times and print it beside the ideal schedule, instead")
	costDurs := flag.String("cost-durations", "1s,10s,60s", "with -cost: the job durations")
	slotWarm := flag.Bool("slotbound-warm", false, "with -slotbound: run -slotbound-warm-jobs jobs first, so the account's job duration and Create latency are known when the measured batch starts, as in a deployment that has run")
	slotWarmJobs := flag.Int("slotbound-warm-jobs", 20, "with -slotbound-warm: how many jobs run first")
	slotJob := flag.Duration("slotbound-job", 6*time.Second, "with -slotbound: the remote jobs' duration")
	distqExtra := flag.String("distq-env", "", "more environment for distq's api and workers, NAME=value[,NAME=value…] (e.g. DISTQ_TASK_CHECK_INTERVAL=1s)")
	flag.Parse()
	self, err := os.Executable()
	if err != nil {
		return err
	}
	logs, err := os.MkdirTemp("", "distqbench-")
	if err != nil {
		return err
	}
	e := env{bin: *bin, redis: *addr, db: *db, logs: logs, self: self}
	for _, kv := range strings.Split(*distqExtra, ",") {
		if kv = strings.TrimSpace(kv); kv == "" {
			continue
		}
		if k, _, ok := strings.Cut(kv, "="); !ok || !strings.HasPrefix(k, "DISTQ_") {
			return fmt.Errorf("-distq-env: want DISTQ_NAME=value, got %q", kv)
		}
		e.extra = append(e.extra, kv)
	}
	fmt.Printf("distqbench: logs in %s\n\n", logs)
	if *fair {
		wA, wB, err := parseWeights(*fairWeights)
		if err != nil {
			return err
		}
		if *fairWorkers < 1 {
			return fmt.Errorf("-fair-workers %d: want at least 1", *fairWorkers)
		}
		return e.runFair(ctx, max(*runs, 1), defaultFair(wA, wB, *fairWorkers))
	}
	if *load > 0 {
		return e.runLoad(ctx, *conc, *load)
	}
	if *chaos > 0 {
		f := ""
		if *faults {
			f = "on"
		}
		if *lost {
			f = "lost"
		}
		return e.runChaosRuns(ctx, *chaos, *runs, f)
	}
	if *slotRuns > 0 {
		warmJobs := 0
		if *slotWarm {
			warmJobs = max(*slotWarmJobs, 1)
		}
		return e.runSlotBound(ctx, *slotRuns, 30, 3, *slotJob, warmJobs)
	}
	if *cost > 0 {
		var durs []time.Duration
		for _, s := range strings.Split(*costDurs, ",") {
			d, err := time.ParseDuration(strings.TrimSpace(s))
			if err != nil {
				return fmt.Errorf("-cost-durations: %w", err)
			}
			durs = append(durs, d)
		}
		return e.runCost(ctx, *cost, durs, 10*time.Second)
	}
	if *hogRuns > 0 {
		return e.runHog(ctx, *hogRuns)
	}
	if *ingest {
		return e.runIngest(ctx, *items, *conc, 5*time.Second)
	}
	fmt.Println("| scenario | Create rate used | max Creates in any 1 s | throttled | peak jobs ÷ limit | duplicate Creates | drain ÷ bound |")
	fmt.Println("|---|---|---|---|---|---|---|")
	for _, sc := range scenarios(*set) {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		res, err := e.runScenario(ctx, sc)
		if err != nil {
			return fmt.Errorf("%s: %w", sc.name, err)
		}
		fmt.Println(res)
	}
	return nil
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

func freePort() string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

type procs struct {
	cmds []*exec.Cmd
	// nice, when set, is the niceness of every process started but the
	// simulator: with a CPU hog, distq and the hog share the cores at one
	// priority while the simulator, which stands for a remote endpoint on
	// other machines, keeps its own, so that its arrival times are the
	// remote's, not a starved local process's.
	nice int
}

func (p *procs) start(e env, name string, environ []string, args ...string) error {
	path := args[0]
	cmd := exec.Command(path, args[1:]...)
	cmd.Env = append(os.Environ(), environ...)
	f, err := os.Create(filepath.Join(e.logs, strings.NewReplacer(" ", "_", "/", "per").Replace(name)+".log"))
	if err != nil {
		return err
	}
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", name, err)
	}
	p.cmds = append(p.cmds, cmd)
	if p.nice != 0 && !strings.HasSuffix(name, " alisim") {
		if err := syscall.Setpriority(syscall.PRIO_PROCESS, cmd.Process.Pid, p.nice); err != nil {
			return fmt.Errorf("renice %s: %w", name, err)
		}
	}
	return nil
}

func (p *procs) stop() {
	for _, c := range p.cmds {
		c.Process.Signal(syscall.SIGTERM)
	}
	for _, c := range p.cmds {
		done := make(chan struct{})
		go func() { c.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			c.Process.Kill()
			<-done
		}
	}
}

func waitHTTP(ctx context.Context, url string) error {
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	return fmt.Errorf("%s did not become ready", url)
}

const (
	uid    = "1234567890123456"
	keyID  = "bench-key"
	secret = "bench-secret"
	token  = "bench-token-0123"
)

func (e env) runScenario(ctx context.Context, sc scenario) (string, error) {
	rdb, err := e.emptyDB(ctx)
	if err != nil {
		return "", err
	}
	defer rdb.Close()
	var p procs
	defer p.stop()
	if sc.hog {
		p.nice = 5
		if err := p.start(e, sc.name+" hog", nil, e.self, "hog"); err != nil {
			return "", err
		}
	}
	simURL, err := e.startSim(ctx, &p, sc.name,
		"ALISIM_JOB_DURATION="+sc.jobDur.String(),
		"ALISIM_MAX_JOBS="+fmt.Sprint(sc.slots),
		fmt.Sprintf("ALISIM_QPS=CreateProductDistributeJob=%d,QueryDeviceDistributeJob=%d,ListDeviceDistributeJob=%d", sc.qps, sc.qps*5, sc.qps*5/2),
		"ALISIM_LATENCY="+sc.latency)
	if err != nil {
		return "", err
	}
	distqEnv := e.distqEnv(simURL,
		fmt.Sprintf("DISTQ_CREATE_QPS=%d", sc.qps),
		fmt.Sprintf("DISTQ_QUERY_QPS=%d", sc.qps*5),
		fmt.Sprintf("DISTQ_LIST_QPS=%d", sc.qps*5/2),
		fmt.Sprintf("DISTQ_MAX_JOBS=%d", sc.slots),
		"DISTQ_WORKER_CONCURRENCY=10")
	bound := max(time.Duration(float64(sc.n)/float64(sc.qps)*float64(time.Second)), time.Duration(sc.n)*sc.jobDur/time.Duration(sc.slots))
	var drain time.Duration
	if sc.naive {
		drain, err = e.runNaive(ctx, &p, sc, simURL, distqEnv, bound)
	} else {
		drain, err = e.runDistq(ctx, &p, sc, distqEnv, bound)
	}
	if err != nil {
		return "", err
	}
	var audit struct{ Calls []call }
	var jobs struct{ Jobs []job }
	if err := getJSON(simURL+"/_alisim/audit", &audit); err != nil {
		return "", err
	}
	// Kept beside the logs: the arrivals behind the figures.
	if raw, err := json.Marshal(audit); err == nil {
		_ = os.WriteFile(filepath.Join(e.logs, strings.NewReplacer(" ", "_", "/", "per").Replace(sc.name)+"-audit.json"), raw, 0o644)
	}
	if err := getJSON(simURL+"/_alisim/jobs", &jobs); err != nil {
		return "", err
	}
	var arrivals, ok []time.Time
	throttled := 0
	for _, c := range audit.Calls {
		if c.Outcome == "throttled" {
			throttled++
		}
		if c.Action != "CreateProductDistributeJob" {
			continue
		}
		arrivals = append(arrivals, c.Arrived)
		if c.Outcome == "ok" {
			ok = append(ok, c.Arrived)
		}
	}
	drainCell := fmt.Sprintf("%.2f (%.1fs ÷ %.1fs)", drain.Seconds()/bound.Seconds(), drain.Seconds(), bound.Seconds())
	if drain == 0 {
		drainCell = fmt.Sprintf("not drained in %.0fs", (4 * bound).Seconds())
	}
	return fmt.Sprintf("| %s (N=%d, %d/s, %d slots, job %v) | %.1f%% | %d (limit %d) | %d | %d ÷ %d | %d | %s |",
		sc.name, sc.n, sc.qps, sc.slots, sc.jobDur,
		100*utilization(ok, sc.qps), maxInWindow(arrivals, time.Second), sc.qps, throttled,
		peakOverlap(jobs.Jobs), sc.slots, duplicates(jobs.Jobs), drainCell), nil
}

func (e env) runDistq(ctx context.Context, p *procs, sc scenario, distqEnv []string, bound time.Duration) (time.Duration, error) {
	for i := range sc.workers {
		if err := e.startWorker(p, sc.name, i, distqEnv); err != nil {
			return 0, err
		}
	}
	api, err := e.startAPI(ctx, p, sc.name, distqEnv)
	if err != nil {
		return 0, err
	}
	c := apiClient(api)
	start := time.Now()
	created, _, err := c.SubmitBatch(ctx, benchBatch("iot-cn-bench", "a1bench%05d", sc.n), "")
	if err != nil {
		return 0, err
	}
	deadline := start.Add(4 * bound)
	for time.Now().Before(deadline) {
		b, err := c.GetBatch(ctx, created.Batch.ID)
		if err != nil {
			return 0, err
		}
		if b.Done {
			if b.Counts[client.StateSucceeded] != sc.n {
				return 0, fmt.Errorf("batch done with counts %v, want %d succeeded", b.Counts, sc.n)
			}
			return time.Since(start), nil
		}
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	return 0, nil
}

func getJSON(url string, out any) error {
	resp, err := http.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return errors.New(url + ": " + resp.Status)
	}
	return json.NewDecoder(resp.Body).Decode(out)
}
