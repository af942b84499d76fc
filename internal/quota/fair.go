package quota

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	_ "embed"

	"github.com/redis/go-redis/v9"
)

// Fair share of an account between teams (docs/QUOTA.md, "Fair share").
//
// Batch items do not race for the account's Creates in the order asynq
// dequeues them. Each waits in the account's fair queue, one lane per team,
// and only an admitted item goes on to take a slot and a rate grant. At most
// K items are admitted at once (the worker keeps K about one rate interval
// of Creates), and each admission goes to the team with the lowest pass:
// stride scheduling, where each admission adds 10^6 / weight to the team's
// pass. Two teams with backlogs are thus admitted, and their Creates sent,
// in proportion to their weights; a team alone is admitted without limit
// (work-conserving); a newcomer is admitted at the next free admission,
// ahead of any backlog with a higher pass, since its pass starts at the
// virtual time. Within a team, items are admitted in their order (arrival,
// then item order of a batch).
//
// Every step is one script on keys of the account's hash slot. What a crash
// leaves is safe: an admission lapses after its ttl and its item goes back
// to the queue in its place; an item whose queue entry was lost is queued
// again by its task's own fallback run.

// FairItem is one distribution in an account's fair queue.
type FairItem struct {
	Team string
	// Order places the item within its team: earlier first; ties by ID.
	Order time.Time
	ID    string
}

// member is the item's queue entry: team, then zero-padded order (µs),
// then id, separated by NUL, so lex order is (team, order, id).
func (it FairItem) member() string {
	return it.Team + "\x00" + fmt.Sprintf("%016d", max(it.Order.UnixMicro(), 0)) + "\x00" + it.ID
}

func parseMember(m string) (FairItem, error) {
	parts := strings.SplitN(m, "\x00", 3)
	if len(parts) != 3 {
		return FairItem{}, fmt.Errorf("fair queue entry %q: want team, order, id", m)
	}
	us, err := strconv.ParseInt(parts[1], 10, 64)
	if err != nil {
		return FairItem{}, fmt.Errorf("fair queue entry %q: order: %w", m, err)
	}
	return FairItem{Team: parts[0], Order: time.UnixMicro(us).UTC(), ID: parts[2]}, nil
}

func checkItem(it FairItem) error {
	if it.Team == "" || strings.ContainsAny(it.Team, "\x00\x01") {
		return fmt.Errorf("team %q: %w", it.Team, ErrInvalid)
	}
	if it.ID == "" || strings.Contains(it.ID, "\x00") {
		return fmt.Errorf("item id %q: %w", it.ID, ErrInvalid)
	}
	return nil
}

func fairKeys(uid string) []string {
	return []string{key(uid, kindFair, "queue"), key(uid, kindFair, "active"), key(uid, kindFair, "pass"),
		key(uid, kindFair, "vt"), key(uid, kindFair, "adm")}
}

//go:embed fairlib.lua
var fairLib string

func fairScript(body string) *redis.Script { return script(fairLib + "\n" + body) }

var (
	//go:embed fairenqueue.lua
	fairEnqueueLua    string
	fairEnqueueScript = fairScript(fairEnqueueLua)
	//go:embed fairadmit.lua
	fairAdmitLua    string
	fairAdmitScript = fairScript(fairAdmitLua)
	//go:embed fairdone.lua
	fairDoneLua    string
	fairDoneScript = fairScript(fairDoneLua)
	//go:embed fairstate.lua
	fairStateLua    string
	fairStateScript = fairScript(fairStateLua)
)

// FairEnqueue queues it in the account's fair queue, or, when it is
// admitted already, extends its admission to now + ttl and reports
// admitted. Queuing is idempotent: an item queued again keeps its place.
// Safe for concurrent use.
func (l *Limiter) FairEnqueue(ctx context.Context, uid string, it FairItem, ttl time.Duration) (admitted bool, err error) {
	if err := checkUID(uid); err != nil {
		return false, fmt.Errorf("fair enqueue: %w", err)
	}
	if err := checkItem(it); err != nil {
		return false, fmt.Errorf("fair enqueue: %w", err)
	}
	if ttl <= 0 {
		return false, fmt.Errorf("fair enqueue: ttl %v: %w", ttl, ErrInvalid)
	}
	n, err := fairEnqueueScript.Run(ctx, l.rdb, fairKeys(uid), it.member(), it.Team, leaseMicros(ttl)).Int64()
	if err != nil {
		return false, fmt.Errorf("fair enqueue %s of %s: %w", it.ID, uid, err)
	}
	return n == 2, nil
}

// FairAdmit admits items of the account's fair queue while fewer than k
// are admitted, each to the unpaused team with the lowest pass (see the
// package's fair-share comment), and returns them in admission order.
// weights maps teams to their weights (a team not in it weighs 1); paused
// teams are skipped and keep their items. Admissions last ttl unless
// FairEnqueue extends them; lapsed ones go back to the queue first.
// Safe for concurrent use.
func (l *Limiter) FairAdmit(ctx context.Context, uid string, k int, ttl time.Duration, weights map[string]int, paused []string) ([]FairItem, error) {
	if err := checkUID(uid); err != nil {
		return nil, fmt.Errorf("fair admit: %w", err)
	}
	if k < 1 || ttl <= 0 {
		return nil, fmt.Errorf("fair admit: k %d, ttl %v: %w", k, ttl, ErrInvalid)
	}
	teams := make([]string, 0, len(weights))
	for t := range weights {
		teams = append(teams, t)
	}
	sort.Strings(teams)
	args := []any{k, leaseMicros(ttl), len(teams)}
	for _, t := range teams {
		args = append(args, t, max(weights[t], 1))
	}
	for _, t := range paused {
		args = append(args, t)
	}
	ms, err := fairAdmitScript.Run(ctx, l.rdb, fairKeys(uid), args...).StringSlice()
	if err != nil {
		return nil, fmt.Errorf("fair admit of %s: %w", uid, err)
	}
	out := make([]FairItem, 0, len(ms))
	for _, m := range ms {
		it, err := parseMember(m)
		if err != nil {
			return out, fmt.Errorf("fair admit of %s: %w", uid, err)
		}
		out = append(out, it)
	}
	return out, nil
}

// FairDone ends its admission and takes it out of the fair queue: its
// Create is going out, or it left the queue (finished, canceled, backing
// off). It reports whether it was admitted. Safe for concurrent use.
func (l *Limiter) FairDone(ctx context.Context, uid string, it FairItem) (wasAdmitted bool, err error) {
	return l.fairDone(ctx, uid, it, false)
}

// FairReturn puts an admitted item back in the fair queue in its place
// (its team was paused): the admission goes to another. It reports whether
// it was admitted. Safe for concurrent use.
func (l *Limiter) FairReturn(ctx context.Context, uid string, it FairItem) (wasAdmitted bool, err error) {
	return l.fairDone(ctx, uid, it, true)
}

func (l *Limiter) fairDone(ctx context.Context, uid string, it FairItem, back bool) (bool, error) {
	if err := checkUID(uid); err != nil {
		return false, fmt.Errorf("fair done: %w", err)
	}
	if err := checkItem(it); err != nil {
		return false, fmt.Errorf("fair done: %w", err)
	}
	flag := "0"
	if back {
		flag = "1"
	}
	n, err := fairDoneScript.Run(ctx, l.rdb, fairKeys(uid), it.member(), it.Team, flag).Int64()
	if err != nil {
		return false, fmt.Errorf("fair done %s of %s: %w", it.ID, uid, err)
	}
	return n == 1, nil
}

// TeamShare is one team's place in an account's fair queue.
type TeamShare struct {
	// Queued counts the team's items waiting for admission.
	Queued int
	// Admitted counts its items admitted and not yet sent.
	Admitted int
	// Pass is its stride pass: lower is served sooner.
	Pass float64
}

// FairState returns the account's fair queue by team: the teams with items
// queued or admitted. Safe for concurrent use.
func (l *Limiter) FairState(ctx context.Context, uid string) (map[string]TeamShare, error) {
	if err := checkUID(uid); err != nil {
		return nil, fmt.Errorf("fair state: %w", err)
	}
	res, err := fairStateScript.Run(ctx, l.rdb, fairKeys(uid)).Slice()
	if err != nil {
		return nil, fmt.Errorf("fair state of %s: %w", uid, err)
	}
	if len(res) != 2 {
		return nil, fmt.Errorf("fair state of %s: script answered %d values, want 2", uid, len(res))
	}
	out := map[string]TeamShare{}
	teams, _ := res[0].([]any)
	for i := 0; i+2 < len(teams); i += 3 {
		t, _ := teams[i].(string)
		n, _ := teams[i+1].(int64)
		ps, _ := teams[i+2].(string)
		p, _ := strconv.ParseFloat(ps, 64)
		s := out[t]
		s.Queued, s.Pass = int(n), p
		out[t] = s
	}
	adm, _ := res[1].([]any)
	for _, m := range adm {
		ms, _ := m.(string)
		it, err := parseMember(ms)
		if err != nil {
			return nil, fmt.Errorf("fair state of %s: %w", uid, err)
		}
		s := out[it.Team]
		s.Admitted++
		out[it.Team] = s
	}
	return out, nil
}

// FairTeams returns the teams with items in the account's fair queue.
// Safe for concurrent use.
func (l *Limiter) FairTeams(ctx context.Context, uid string) ([]string, error) {
	if err := checkUID(uid); err != nil {
		return nil, fmt.Errorf("fair teams: %w", err)
	}
	teams, err := l.rdb.ZRange(ctx, key(uid, kindFair, "active"), 0, -1).Result()
	if err != nil {
		return nil, fmt.Errorf("fair teams of %s: %w", uid, err)
	}
	return teams, nil
}

// fairPipeline bounds the FairEnqueue calls sent in one pipeline.
const fairPipeline = 500

// FairEnqueueAll queues every item as FairEnqueue does, in pipelines: a
// batch of thousands costs a few round trips. Safe for concurrent use.
func (l *Limiter) FairEnqueueAll(ctx context.Context, uid string, items []FairItem, ttl time.Duration) error {
	if err := checkUID(uid); err != nil {
		return fmt.Errorf("fair enqueue: %w", err)
	}
	if ttl <= 0 {
		return fmt.Errorf("fair enqueue: ttl %v: %w", ttl, ErrInvalid)
	}
	for _, it := range items {
		if err := checkItem(it); err != nil {
			return fmt.Errorf("fair enqueue: %w", err)
		}
	}
	if err := fairEnqueueScript.Load(ctx, l.rdb).Err(); err != nil {
		return fmt.Errorf("fair enqueue of %s: load script: %w", uid, err)
	}
	keys := fairKeys(uid)
	for start := 0; start < len(items); start += fairPipeline {
		pipe := l.rdb.Pipeline()
		for _, it := range items[start:min(start+fairPipeline, len(items))] {
			fairEnqueueScript.EvalSha(ctx, pipe, keys, it.member(), it.Team, leaseMicros(ttl))
		}
		if _, err := pipe.Exec(ctx); err != nil {
			return fmt.Errorf("fair enqueue of %s: %w", uid, err)
		}
	}
	return nil
}

// FairAdmitted reports whether it is admitted now. Safe for concurrent use.
func (l *Limiter) FairAdmitted(ctx context.Context, uid string, it FairItem) (bool, error) {
	if err := checkUID(uid); err != nil {
		return false, fmt.Errorf("fair admitted: %w", err)
	}
	err := l.rdb.ZScore(ctx, key(uid, kindFair, "adm"), it.member()).Err()
	if isNil(err) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("fair admitted %s of %s: %w", it.ID, uid, err)
	}
	return true, nil
}

// FairAhead counts team's items queued (not admitted) in the account's
// fair queue in an order before `before`. Safe for concurrent use.
func (l *Limiter) FairAhead(ctx context.Context, uid, team string, before time.Time) (int, error) {
	if err := checkUID(uid); err != nil {
		return 0, fmt.Errorf("fair ahead: %w", err)
	}
	if err := checkItem(FairItem{Team: team, ID: "-"}); err != nil {
		return 0, fmt.Errorf("fair ahead: %w", err)
	}
	upto := FairItem{Team: team, Order: before}.member() // team\0order\0: below every id of that order
	n, err := l.rdb.ZLexCount(ctx, key(uid, kindFair, "queue"), "["+team+"\x00", "("+upto).Result()
	if err != nil {
		return 0, fmt.Errorf("fair ahead of %s: %w", uid, err)
	}
	return int(n), nil
}
