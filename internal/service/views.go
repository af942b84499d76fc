package service

import (
	"context"
	"sort"
	"strings"
	"time"

	"github.com/distq/distq/internal/distribution"
)

// The use cases behind the team console's views: a dry run of a batch, a
// team's batches and recent distributions newest first, and where the
// team stands in its account.

// Figures is what those views read beyond the records (internal/store's
// *Redis satisfies it).
type Figures interface {
	// Batches returns up to limit of team's batch ids, newest first, older
	// than before ("" for the newest).
	Batches(ctx context.Context, team, before string, limit int) ([]string, error)
	// Newest returns up to limit of f.Team's distributions newest first that
	// match f, single ones only when singles, reading at most scan entries.
	Newest(ctx context.Context, f distribution.Filter, singles bool, limit, scan int) ([]*distribution.Record, error)
	// CreatesPerMinute returns the Creates sent per team for the account of
	// uid in each of the n minutes up to that of to, oldest first.
	CreatesPerMinute(ctx context.Context, uid string, to time.Time, n int) ([]map[string]int, error)
	// Backlog returns each team's unfinished distributions.
	Backlog(ctx context.Context) (map[string]int, error)
}

// Slots tells which distributions hold an account's remote job slots, and
// how many remote jobs were made outside distq.
type Slots interface {
	SlotHolders(ctx context.Context, uid string) (ids []string, external int, err error)
}

// DryRun is what a batch would be if it were submitted now.
type DryRun struct {
	Valid, Rejected int
	// Results has every item's outcome: an Err, or nothing for a valid one.
	Results []ItemResult
	// ETA is when the valid items would be done if submitted now; nil when
	// none is valid.
	ETA *time.Time
}

// DryRunBatch validates every item of a batch for team as SubmitBatch
// would, flags an item that repeats an earlier one of the same batch
// (CodeDuplicate), and computes the ETA the valid items would have now. It
// writes nothing; an active distribution elsewhere is found only when the
// batch is submitted.
func (s *Service) DryRunBatch(ctx context.Context, team string, req BatchRequest) (*DryRun, error) {
	if err := CheckBatchSize(len(req.Items)); err != nil {
		return nil, err
	}
	now := s.d.Now()
	acct, ok := s.account(req.Defaults.Account)
	if !ok {
		return nil, domainError(&distribution.ValidationError{Fields: []distribution.FieldError{{Field: "account", Message: "unknown account"}}})
	}
	out := &DryRun{Results: make([]ItemResult, len(req.Items))}
	seen := map[string]int{}
	for i, item := range req.Items {
		res := &out.Results[i]
		res.Index = i
		if item.Err != nil {
			res.Err = item.Err
			out.Rejected++
			continue
		}
		r := item.Request
		r.FillFrom(req.Defaults)
		rec, err := s.newRecord(team, r, "", distribution.QueueBatch, now)
		if err != nil {
			res.Err = err
			out.Rejected++
			continue
		}
		k := rec.UID + "\x00" + rec.ProductKey + "\x00" + rec.TargetInstanceID
		if first, dup := seen[k]; dup {
			res.Err = errorf(CodeDuplicate, "repeats item %d: the same product to the same instance", first)
			out.Rejected++
			continue
		}
		seen[k] = i
		out.Valid++
	}
	if out.Valid > 0 {
		eta, _, err := s.eta(ctx, acct, team, now, out.Valid)
		if err != nil {
			return nil, err
		}
		out.ETA = &eta
	}
	return out, nil
}

// Batches returns up to limit of team's batches newest first, older than
// the batch id before ("" for the newest), and the cursor of the next page
// ("" at the end).
func (s *Service) Batches(ctx context.Context, team, before string, limit int) ([]BatchView, string, error) {
	if s.d.Figures == nil {
		return nil, "", nil
	}
	ids, err := s.d.Figures.Batches(ctx, team, before, limit)
	if err != nil {
		return nil, "", err
	}
	out := make([]BatchView, 0, len(ids))
	for _, id := range ids {
		v, err := s.Batch(ctx, team, id)
		if IsCode(err, CodeNotFound) {
			continue // expired meanwhile
		}
		if err != nil {
			return nil, "", err
		}
		out = append(out, *v)
	}
	next := ""
	if len(ids) == limit {
		next = ids[len(ids)-1]
	}
	return out, next, nil
}

// Recent returns up to limit of team's newest distributions that match f
// (its Team is set to team), single ones only when singles is true.
func (s *Service) Recent(ctx context.Context, team string, f distribution.Filter, singles bool, limit int) ([]distribution.Distribution, error) {
	if s.d.Figures == nil {
		return nil, nil
	}
	f.Team = team
	recs, err := s.d.Figures.Newest(ctx, f, singles, limit, max(limit*20, 500))
	if err != nil {
		return nil, err
	}
	out := make([]distribution.Distribution, len(recs))
	for i, r := range recs {
		out[i] = r.Distribution
	}
	return out, nil
}

// AccountView is where the teams stand in one account: the Creates sent
// against the account's rate, its job slots, and each team's backlog and
// share. It names other teams but shows none of their distributions.
type AccountView struct {
	Name string
	// CreateQPS and MaxJobs are the limits in force (an operator's
	// override, else the configuration's).
	CreateQPS int
	MaxJobs   int
	// Minutes holds the Creates sent in each of the last 60 minutes, oldest
	// first; the limit of one minute is CreateQPS*60.
	Minutes []MinuteCreates
	// CreatesLastHour is their sum, against CreateQPS*3600.
	CreatesLastHour int
	// SlotsInUse counts the job slots held by distq's distributions,
	// External the remote jobs made outside distq; together against MaxJobs.
	SlotsInUse, External int
	// Teams lists every team with a backlog, a slot or a Create in the last
	// minute, by name.
	Teams []TeamFigures
}

// MinuteCreates is the Creates sent in one minute.
type MinuteCreates struct {
	Start time.Time
	Count int
}

// TeamFigures is one team's place in an account.
type TeamFigures struct {
	Team string
	// Self marks the team that asked.
	Self bool
	// Backlog counts its unfinished distributions (in every account).
	Backlog int
	// Slots counts the account's job slots its distributions hold.
	Slots int
	// CreatesLastMinute counts its Creates in the last 60 s (the current
	// and the previous minute's buckets, weighted by overlap).
	CreatesLastMinute float64
	// Share is its fraction of the account's Creates over the last minute
	// (0 when nobody sent one): what the team gets of the shared rate now.
	Share float64
}

// Account returns where team stands in the named account ("" for the
// default one).
func (s *Service) Account(ctx context.Context, team, name string) (*AccountView, error) {
	acct, ok := s.account(name)
	if !ok {
		return nil, notFound("account", name)
	}
	v := &AccountView{Name: acct.Name, CreateQPS: acct.CreateQPS, MaxJobs: acct.MaxJobs}
	if s.d.Controls != nil {
		set, err := s.d.Controls.Current(ctx)
		if err != nil {
			return nil, err
		}
		v.CreateQPS, v.MaxJobs = set.Limit(acct.Name, LimitCreateQPS).Value, set.Limit(acct.Name, LimitMaxJobs).Value
	}
	if s.d.Figures == nil {
		return v, nil
	}
	now := s.d.Now()
	per, err := s.d.Figures.CreatesPerMinute(ctx, acct.UID, now, 61)
	if err != nil {
		return nil, err
	}
	teams := map[string]*TeamFigures{team: {Team: team, Self: true}}
	get := func(t string) *TeamFigures {
		if teams[t] == nil {
			teams[t] = &TeamFigures{Team: t}
		}
		return teams[t]
	}
	start := now.Truncate(time.Minute).Add(-59 * time.Minute)
	for i, m := range per[1:] {
		n := 0
		for _, c := range m {
			n += c
		}
		v.Minutes = append(v.Minutes, MinuteCreates{Start: start.Add(time.Duration(i) * time.Minute), Count: n})
		v.CreatesLastHour += n
	}
	last, total := lastMinute(per, now)
	for t, c := range last {
		get(t).CreatesLastMinute = c
	}
	backlog, err := s.d.Figures.Backlog(ctx)
	if err != nil {
		return nil, err
	}
	for t, n := range backlog {
		get(t).Backlog = n
	}
	slots, err := s.slotsPerTeam(ctx, acct.UID)
	if err != nil {
		return nil, err
	}
	if slots != nil {
		v.SlotsInUse, v.External = slots.inUse, slots.external
		for t, n := range slots.teams {
			get(t).Slots = n
		}
	}
	for _, tf := range teams {
		if total > 0 {
			tf.Share = tf.CreatesLastMinute / total
		}
		v.Teams = append(v.Teams, *tf)
	}
	sort.Slice(v.Teams, func(i, j int) bool { return strings.Compare(v.Teams[i].Team, v.Teams[j].Team) < 0 })
	return v, nil
}

// lastMinute returns each team's Creates over the last 60 s and their
// sum, from per-minute counts whose last two are the previous and the
// current minute of now: all of the current minute, and the part of the
// previous one that is less than 60 s ago.
func lastMinute(per []map[string]int, now time.Time) (map[string]float64, float64) {
	out := map[string]float64{}
	if len(per) < 2 {
		return out, 0
	}
	frac := 1 - now.Sub(now.Truncate(time.Minute)).Seconds()/60
	total := 0.0
	for t, c := range per[len(per)-1] {
		out[t] += float64(c)
		total += float64(c)
	}
	for t, c := range per[len(per)-2] {
		out[t] += float64(c) * frac
		total += float64(c) * frac
	}
	return out, total
}

// slotHolding is who holds an account's remote job slots.
type slotHolding struct {
	// inUse counts the slots of distq's distributions, external the remote
	// jobs made outside distq.
	inUse, external int
	// teams counts the slots of each team's distributions, holders lists
	// them.
	teams   map[string]int
	holders map[string][]string
}

// slotsPerTeam reads who holds the job slots of the account of uid; nil
// without Slots.
func (s *Service) slotsPerTeam(ctx context.Context, uid string) (*slotHolding, error) {
	if s.d.Slots == nil {
		return nil, nil
	}
	ids, ext, err := s.d.Slots.SlotHolders(ctx, uid)
	if err != nil {
		return nil, err
	}
	recs, err := s.d.Store.GetMany(ctx, ids)
	if err != nil {
		return nil, err
	}
	out := &slotHolding{inUse: len(ids), external: ext, teams: map[string]int{}, holders: map[string][]string{}}
	for _, r := range recs {
		out.teams[r.Team]++
		out.holders[r.Team] = append(out.holders[r.Team], r.ID)
	}
	return out, nil
}

// Accounts returns the names of the accounts a team may submit to, the
// default one first.
func (s *Service) Accounts() []string {
	var out []string
	def, _ := s.account("")
	out = append(out, def.Name)
	for _, a := range s.d.Accounts {
		if a.Name != def.Name {
			out = append(out, a.Name)
		}
	}
	return out
}
