package client

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// The admin API (/v1/admin/…) is for operators: a Client made with an
// operator's token (DISTQ_ADMIN_TOKENS) reads where every account and team
// stands, changes an account's limits and a team's weight at run time, and
// pauses and resumes an account or one team in it. A team's token gets an
// *Error with code forbidden (HTTP 403). Every change is kept in Redis, in
// force on every worker within about a second, and shown with its origin.

// Origins of a Setting.
const (
	OriginConfig   = "config"
	OriginOverride = "override"
)

// Setting is a value in force and where it comes from: "config" (the
// configuration, or the default) or "override" (an operator's, with who
// set it and when).
type Setting struct {
	Value  int        `json:"value"`
	Origin string     `json:"origin"`
	SetBy  string     `json:"set_by,omitempty"`
	SetAt  *time.Time `json:"set_at,omitempty"`
}

// Pause says whether something is paused, by which operator, since when.
type Pause struct {
	Paused bool       `json:"paused"`
	SetBy  string     `json:"set_by,omitempty"`
	SetAt  *time.Time `json:"set_at,omitempty"`
}

// AdminAccount is an account as an operator sees it.
type AdminAccount struct {
	Name string `json:"name"`
	UID  string `json:"uid"`
	// SharedWith names the other accounts of the same UID: they share the
	// budget and every override.
	SharedWith []string `json:"shared_with,omitempty"`
	CreateQPS  Setting  `json:"create_qps"`
	MaxJobs    Setting  `json:"max_jobs"`
	// Pause is the whole account's pause.
	Pause Pause `json:"pause"`
	// SlotsInUse counts the job slots distq's distributions hold,
	// ExternalJobs the remote jobs made outside distq.
	SlotsInUse   int `json:"slots_in_use"`
	ExternalJobs int `json:"external_jobs"`
	// CreatesLastMinute counts the Creates sent over the last 60 s.
	CreatesLastMinute float64     `json:"creates_last_minute"`
	Teams             []AdminTeam `json:"teams"`
}

// AdminTeam is one team in an account.
type AdminTeam struct {
	Team   string  `json:"team"`
	Weight Setting `json:"weight"`
	// Pause is the team's own pause in the account; Paused is true when
	// that or the account's pause holds its work.
	Pause  Pause `json:"pause"`
	Paused bool  `json:"paused"`
	// Backlog counts its distributions waiting in the account's queue
	// (nil when the api cannot tell).
	Backlog *int `json:"backlog,omitempty"`
	// Slots counts the account's job slots its distributions hold;
	// SlotHolders names those distributions.
	Slots       int      `json:"slots"`
	SlotHolders []string `json:"slot_holders,omitempty"`
	// CreatesLastMinute counts its Creates over the last 60 s; Share is
	// their fraction of the account's.
	CreatesLastMinute float64 `json:"creates_last_minute"`
	Share             float64 `json:"share"`
}

// AdminAccountList is the answer of GET /v1/admin/accounts.
type AdminAccountList struct {
	Accounts []AdminAccount `json:"accounts"`
}

// TeamWeight is a team's weight in force in every account's fair share.
type TeamWeight struct {
	Team   string  `json:"team"`
	Weight Setting `json:"weight"`
}

// TeamWeightList is the answer of GET /v1/admin/teams.
type TeamWeightList struct {
	Teams []TeamWeight `json:"teams"`
}

// LimitsChange changes an account's limits: a field left nil is left as it
// is, a value (1 to 100) overrides the configured limit, and Clear…
// restores the configured one (sent as null).
type LimitsChange struct {
	CreateQPS      *int `json:"create_qps,omitempty"`
	MaxJobs        *int `json:"max_jobs,omitempty"`
	ClearCreateQPS bool `json:"-"`
	ClearMaxJobs   bool `json:"-"`
}

// MarshalJSON sends a cleared limit as null, a set one as its value, and
// leaves out the others.
func (c LimitsChange) MarshalJSON() ([]byte, error) {
	out := []byte{'{'}
	add := func(name string, v *int, clear bool) {
		if v == nil && !clear {
			return
		}
		if len(out) > 1 {
			out = append(out, ',')
		}
		out = append(out, `"`+name+`":`...)
		if clear {
			out = append(out, "null"...)
		} else {
			out = strconv.AppendInt(out, int64(*v), 10)
		}
	}
	add("create_qps", c.CreateQPS, c.ClearCreateQPS)
	add("max_jobs", c.MaxJobs, c.ClearMaxJobs)
	return append(out, '}'), nil
}

// WeightRequest is the body of PUT /v1/admin/teams/{team}/weight.
type WeightRequest struct {
	Weight int `json:"weight"`
}

// AdminAccounts returns every account, in the configuration's order.
func (c *Client) AdminAccounts(ctx context.Context) ([]AdminAccount, error) {
	var l AdminAccountList
	if _, err := c.do(ctx, http.MethodGet, "/v1/admin/accounts", nil, nil, true, &l); err != nil {
		return nil, err
	}
	return l.Accounts, nil
}

// AdminAccount returns one account; an unknown one is not_found.
func (c *Client) AdminAccount(ctx context.Context, account string) (*AdminAccount, error) {
	var a AdminAccount
	_, err := c.do(ctx, http.MethodGet, accountPath(account), nil, nil, true, &a)
	return ptr(&a, err)
}

// SetLimits changes an account's limits (and those of every account of its
// UID) and returns the account as it is then. A value out of bounds is an
// *Error with code bad_value.
func (c *Client) SetLimits(ctx context.Context, account string, change LimitsChange) (*AdminAccount, error) {
	var a AdminAccount
	_, err := c.do(ctx, http.MethodPut, accountPath(account)+"/limits", change, nil, true, &a)
	return ptr(&a, err)
}

// PauseAccount pauses every team's work in the account (it stays queued,
// wait_reason "paused") and returns the account.
func (c *Client) PauseAccount(ctx context.Context, account string) (*AdminAccount, error) {
	return c.accountAction(ctx, accountPath(account)+"/pause")
}

// ResumeAccount lifts the account's pause (a team paused on its own stays
// paused) and returns the account.
func (c *Client) ResumeAccount(ctx context.Context, account string) (*AdminAccount, error) {
	return c.accountAction(ctx, accountPath(account)+"/resume")
}

// PauseTeam pauses one team's work in the account and returns the account.
func (c *Client) PauseTeam(ctx context.Context, account, team string) (*AdminAccount, error) {
	return c.accountAction(ctx, accountPath(account)+"/teams/"+url.PathEscape(team)+"/pause")
}

// ResumeTeam lifts one team's own pause in the account and returns the
// account.
func (c *Client) ResumeTeam(ctx context.Context, account, team string) (*AdminAccount, error) {
	return c.accountAction(ctx, accountPath(account)+"/teams/"+url.PathEscape(team)+"/resume")
}

func (c *Client) accountAction(ctx context.Context, path string) (*AdminAccount, error) {
	var a AdminAccount
	// Pausing or resuming twice is the same as once: safe to repeat.
	_, err := c.do(ctx, http.MethodPost, path, nil, nil, true, &a)
	return ptr(&a, err)
}

// TeamWeights returns the weight in force of every team the api knows.
func (c *Client) TeamWeights(ctx context.Context) ([]TeamWeight, error) {
	var l TeamWeightList
	if _, err := c.do(ctx, http.MethodGet, "/v1/admin/teams", nil, nil, true, &l); err != nil {
		return nil, err
	}
	return l.Teams, nil
}

// SetTeamWeight overrides a team's weight (1 to 1000) in every account.
func (c *Client) SetTeamWeight(ctx context.Context, team string, weight int) (*TeamWeight, error) {
	var w TeamWeight
	_, err := c.do(ctx, http.MethodPut, weightPath(team), WeightRequest{Weight: weight}, nil, true, &w)
	return ptr(&w, err)
}

// ClearTeamWeight restores a team's configured weight.
func (c *Client) ClearTeamWeight(ctx context.Context, team string) (*TeamWeight, error) {
	var w TeamWeight
	_, err := c.do(ctx, http.MethodDelete, weightPath(team), nil, nil, true, &w)
	return ptr(&w, err)
}

func accountPath(account string) string { return "/v1/admin/accounts/" + url.PathEscape(account) }
func weightPath(team string) string     { return "/v1/admin/teams/" + url.PathEscape(team) + "/weight" }

var _ json.Marshaler = LimitsChange{}
