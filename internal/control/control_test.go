package control_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/distq/distq/internal/control"
	"github.com/distq/distq/internal/redistest"
)

// base is two accounts of one UID (two keys of one Alibaba account) and a
// third of its own, and one configured weight.
var base = control.Base{
	Accounts: []control.Account{
		{Name: "prod", UID: "111", CreateQPS: 2, MaxJobs: 10},
		{Name: "prod-key2", UID: "111", CreateQPS: 2, MaxJobs: 10},
		{Name: "lab", UID: "222", CreateQPS: 5, MaxJobs: 3},
	},
	Weights: map[string]int{"team-a": 3},
}

func TestConfigOnly(t *testing.T) {
	t.Parallel()
	s := control.NewStore(redistest.New(t).Client, base).Base()
	if s.CreateQPS("prod") != 2 || s.MaxJobs("lab") != 3 || s.Weight("team-a") != 3 || s.Weight("team-z") != control.DefaultWeight ||
		s.Paused("prod", "team-a") || s.CreateQPS("nope") != 0 || s.Version != 0 {
		t.Fatalf("config snapshot: %+v", s)
	}
	if got := s.Limit("prod", control.MaxJobs); got != (control.Setting{Value: 10, Origin: control.OriginConfig}) {
		t.Errorf("max_jobs %+v", got)
	}
	if got := s.TeamWeight("team-z"); got != (control.Setting{Value: 1, Origin: control.OriginConfig}) {
		t.Errorf("default weight %+v", got)
	}
	var zero control.Snapshot
	if zero.CreateQPS("prod") != 0 || zero.Weight("team-a") != 1 || zero.Paused("prod", "team-a") {
		t.Errorf("the zero snapshot is not empty")
	}
}

// A write on one Store is in force in another process's View within one
// refresh, with its origin and author; clearing it restores the
// configured value; accounts of one UID share every override.
func TestOverridesReachAnotherView(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	db := redistest.New(t)
	api := control.NewStore(db.Client, base)
	worker := redis.NewClient(db.Options()) // another process's connection
	t.Cleanup(func() { worker.Close() })
	const refresh = 100 * time.Millisecond
	view := control.NewView(control.NewStore(worker, base), control.ViewOptions{Refresh: refresh})
	if s := view.Get(ctx); s.CreateQPS("prod") != 2 || s.Overrides() != 0 {
		t.Fatalf("before any write: %+v", s)
	}

	before := time.Now()
	must(t, api.SetLimits(ctx, "prod", "alice", control.Change{Limit: control.CreateQPS, Value: 1}, control.Change{Limit: control.MaxJobs, Value: 4}))
	must(t, api.SetWeight(ctx, "team-b", "bob", 5))
	must(t, api.SetPaused(ctx, "prod-key2", "team-a", "alice", true))
	s := waitFor(t, view, refresh, func(s control.Snapshot) bool { return s.Version == 3 })

	for _, acct := range []string{"prod", "prod-key2"} { // one UID, one budget
		if s.CreateQPS(acct) != 1 || s.MaxJobs(acct) != 4 {
			t.Errorf("%s: create_qps %d max_jobs %d, want the overrides 1 and 4", acct, s.CreateQPS(acct), s.MaxJobs(acct))
		}
		if !s.Paused(acct, "team-a") || s.Paused(acct, "team-b") || s.AccountPause(acct).Paused {
			t.Errorf("%s: team-a's pause %+v, team-b paused %t, account %+v", acct, s.TeamPause(acct, "team-a"), s.Paused(acct, "team-b"), s.AccountPause(acct))
		}
	}
	if s.CreateQPS("lab") != 5 || s.Paused("lab", "team-a") {
		t.Errorf("another UID changed: create_qps %d, team-a paused %t", s.CreateQPS("lab"), s.Paused("lab", "team-a"))
	}
	got := s.Limit("prod", control.CreateQPS)
	if got.Value != 1 || got.Origin != control.OriginOverride || got.By != "alice" || got.At.Before(before.Add(-time.Second)) {
		t.Errorf("create_qps setting %+v, want 1 from alice's override", got)
	}
	if w := s.TeamWeight("team-b"); w.Value != 5 || w.Origin != control.OriginOverride || w.By != "bob" {
		t.Errorf("team-b weight %+v", w)
	}
	if p := s.TeamPause("prod", "team-a"); p.By != "alice" || p.At.IsZero() {
		t.Errorf("pause %+v, want alice's", p)
	}
	if got := s.PausedTeams("prod"); len(got) != 1 || got[0] != "team-a" {
		t.Errorf("paused teams %v", got)
	}
	if got := s.WeightedTeams(); strings.Join(got, ",") != "team-a,team-b" {
		t.Errorf("weighted teams %v", got)
	}

	// The whole account, then clear everything: the configuration again.
	must(t, api.SetPaused(ctx, "prod", "", "alice", true))
	s = waitFor(t, view, refresh, func(s control.Snapshot) bool { return s.Version == 4 })
	if !s.Paused("prod", "team-z") || !s.Paused("prod-key2", "team-b") || s.Paused("lab", "team-b") {
		t.Errorf("account pause: prod %t prod-key2 %t lab %t", s.Paused("prod", "team-z"), s.Paused("prod-key2", "team-b"), s.Paused("lab", "team-b"))
	}
	must(t, api.SetPaused(ctx, "prod", "", "alice", false))
	s = waitFor(t, view, refresh, func(s control.Snapshot) bool { return s.Version == 5 })
	if !s.Paused("prod", "team-a") || s.Paused("prod", "team-b") {
		t.Errorf("resuming the account resumed the team paused on its own, or not the others")
	}
	must(t, api.SetLimits(ctx, "prod-key2", "carol", control.Change{Limit: control.CreateQPS}, control.Change{Limit: control.MaxJobs}))
	must(t, api.SetWeight(ctx, "team-b", "carol", 0))
	must(t, api.SetWeight(ctx, "team-a", "carol", 0)) // no override: nothing to clear
	must(t, api.SetPaused(ctx, "prod", "team-a", "carol", false))
	s = waitFor(t, view, refresh, func(s control.Snapshot) bool { return s.Version == 9 })
	if s.Overrides() != 0 || s.Limit("prod", control.CreateQPS) != (control.Setting{Value: 2, Origin: control.OriginConfig}) ||
		s.MaxJobs("prod-key2") != 10 || s.Weight("team-b") != 1 || s.Weight("team-a") != 3 || s.Paused("prod", "team-a") {
		t.Errorf("after clearing: %d overrides, create_qps %+v, weights %d %d", s.Overrides(), s.Limit("prod", control.CreateQPS), s.Weight("team-a"), s.Weight("team-b"))
	}
}

// waitFor gets view's snapshot until ok, and fails t when that took more
// than one refresh (and some slack for a busy machine).
func waitFor(t *testing.T, view *control.View, refresh time.Duration, ok func(control.Snapshot) bool) control.Snapshot {
	t.Helper()
	start := time.Now()
	for {
		s := view.Get(t.Context())
		if ok(s) {
			if d := time.Since(start); d > refresh+400*time.Millisecond {
				t.Errorf("the view saw the write after %v, refresh %v", d, refresh)
			}
			return s
		}
		if time.Since(start) > 5*time.Second {
			t.Fatalf("the view still has version %d after 5s", s.Version)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func TestBadValuesAreRefused(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	db := redistest.New(t)
	s := control.NewStore(db.Client, base)
	for name, err := range map[string]error{
		"create_qps 0 < n":     s.SetLimits(ctx, "prod", "a", control.Change{Limit: control.CreateQPS, Value: -1}),
		"create_qps > 100":     s.SetLimits(ctx, "prod", "a", control.Change{Limit: control.CreateQPS, Value: 101}),
		"max_jobs > 100":       s.SetLimits(ctx, "prod", "a", control.Change{Limit: control.MaxJobs, Value: 1000}),
		"unknown limit":        s.SetLimits(ctx, "prod", "a", control.Change{Limit: "query_qps", Value: 3}),
		"no change":            s.SetLimits(ctx, "prod", "a"),
		"one bad of two":       s.SetLimits(ctx, "prod", "a", control.Change{Limit: control.CreateQPS, Value: 1}, control.Change{Limit: control.MaxJobs, Value: 101}),
		"weight > 1000":        s.SetWeight(ctx, "team-a", "a", 1001),
		"weight < 0":           s.SetWeight(ctx, "team-a", "a", -2),
		"team with ':'":        s.SetWeight(ctx, "team:a", "a", 2),
		"empty team":           s.SetWeight(ctx, "", "a", 2),
		"long team":            s.SetWeight(ctx, strings.Repeat("t", 65), "a", 2),
		"pause of a bad team":  s.SetPaused(ctx, "prod", "team a", "a", true),
		"unknown account":      s.SetLimits(ctx, "nope", "a", control.Change{Limit: control.CreateQPS, Value: 1}),
		"pause unknown acount": s.SetPaused(ctx, "nope", "", "a", true),
	} {
		want := control.ErrInvalid
		if strings.Contains(name, "unknown account") || strings.Contains(name, "unknown acount") {
			want = control.ErrUnknownAccount
		}
		if !errors.Is(err, want) {
			t.Errorf("%s: %v, want %v", name, err, want)
		}
	}
	if n, err := db.Client.Exists(ctx, control.Key).Result(); err != nil || n != 0 {
		t.Errorf("a refused write wrote: %d %v", n, err)
	}
	for _, v := range []int{control.MinLimit, control.MaxLimit} {
		must(t, s.SetLimits(ctx, "lab", "a", control.Change{Limit: control.MaxJobs, Value: v}))
	}
	must(t, s.SetWeight(ctx, "Team_B.2", "a", control.MaxWeight))
}

// Between refreshes a View reads nothing; a refresh whose version did not
// change reads only the version; a failing Redis leaves the last snapshot
// in force and is reported once.
func TestViewCost(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	db := redistest.New(t)
	api := control.NewStore(db.Client, base)
	must(t, api.SetWeight(ctx, "team-b", "bob", 7))

	rdb := redis.NewClient(db.Options())
	cmds := &commandLog{}
	rdb.AddHook(cmds)
	var now atomic.Int64
	now.Store(time.Now().UnixNano())
	var logs bytes.Buffer
	view := control.NewView(control.NewStore(rdb, base), control.ViewOptions{
		Refresh: time.Second,
		Now:     func() time.Time { return time.Unix(0, now.Load()) },
		Log:     slog.New(slog.NewTextHandler(&logs, nil)),
	})
	tick := func(d time.Duration) { now.Add(int64(d)) }

	if view.Get(ctx).Weight("team-b") != 7 {
		t.Fatal("first read")
	}
	if got := cmds.take(); got != "hget hgetall" {
		t.Errorf("first read: %q, want the version then the hash", got)
	}
	var wg sync.WaitGroup
	for range 50 {
		wg.Add(1)
		go func() { defer wg.Done(); view.Get(ctx) }()
	}
	wg.Wait()
	if got := cmds.take(); got != "" {
		t.Errorf("within the refresh: %q, want no command", got)
	}
	tick(time.Second)
	view.Get(ctx)
	view.Get(ctx)
	if got := cmds.take(); got != "hget" {
		t.Errorf("refresh without a change: %q, want one hget", got)
	}
	must(t, api.SetWeight(ctx, "team-b", "bob", 8))
	tick(time.Second)
	if view.Get(ctx).Weight("team-b") != 8 {
		t.Error("the change was not read")
	}
	if got := cmds.take(); got != "hget hgetall" {
		t.Errorf("refresh after a change: %q, want hget hgetall", got)
	}

	// Redis away: the last snapshot stays, one warning, a retry per refresh.
	must(t, api.SetWeight(ctx, "team-b", "bob", 9))
	rdb.Close()
	for range 3 {
		tick(time.Second)
		if s := view.Get(ctx); s.Weight("team-b") != 8 || s.Version != 2 {
			t.Errorf("with Redis away: weight %d version %d, want the last read (8, version 2)", s.Weight("team-b"), s.Version)
		}
	}
	if n := strings.Count(logs.String(), "refresh failed"); n != 1 {
		t.Errorf("%d warnings, want 1:\n%s", n, logs.String())
	}
}

// commandLog records the names of the commands a client sends, but those
// that open a connection.
type commandLog struct {
	mu    sync.Mutex
	names []string
}

func (c *commandLog) DialHook(next redis.DialHook) redis.DialHook { return next }
func (c *commandLog) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		switch cmd.Name() {
		case "hello", "client", "select", "auth", "ping": // a new connection's
		default:
			c.mu.Lock()
			c.names = append(c.names, cmd.Name())
			c.mu.Unlock()
		}
		return next(ctx, cmd)
	}
}
func (c *commandLog) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

func (c *commandLog) take() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := strings.Join(c.names, " ")
	c.names = nil
	return out
}
