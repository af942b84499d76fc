package httpapi

import (
	"bytes"
	"encoding/json"
	"io"
	"math"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/distq/distq/client"
	"github.com/distq/distq/internal/service"
)

// The admin API: /v1/admin/… for operators, authenticated by the
// operators' tokens only (a team's token is 403 forbidden). Its wire types
// are the public client's.

const adminKey = "admin"

func adminOf(c echo.Context) string { return c.Get(adminKey).(string) }

// adminRoutes adds the admin routes to v1.
func (s *server) adminRoutes(v1 *echo.Group) {
	mw := []echo.MiddlewareFunc{s.adminAuth, s.adminLimit}
	body := append(mw, bodyLimit(MaxSingleBody))
	v1.GET("/admin/accounts", s.adminAccounts, mw...)
	v1.GET("/admin/accounts/:account", s.adminAccount, mw...)
	v1.PUT("/admin/accounts/:account/limits", s.adminSetLimits, body...)
	v1.POST("/admin/accounts/:account/pause", s.adminPause(true), mw...)
	v1.POST("/admin/accounts/:account/resume", s.adminPause(false), mw...)
	v1.POST("/admin/accounts/:account/teams/:team/pause", s.adminPause(true), mw...)
	v1.POST("/admin/accounts/:account/teams/:team/resume", s.adminPause(false), mw...)
	v1.GET("/admin/teams", s.adminTeams, mw...)
	v1.PUT("/admin/teams/:team/weight", s.adminSetWeight, body...)
	v1.DELETE("/admin/teams/:team/weight", s.adminClearWeight, mw...)
}

// adminAuth admits an operator's token only: no or an unknown token is 401
// (and counts as a failed authentication of the address), a team's token
// 403.
func (s *server) adminAuth(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		token, err := s.bearer(c)
		if err != nil {
			return err
		}
		if admin := s.admins.Team(token); admin != "" {
			c.Set(adminKey, admin)
			return next(c)
		}
		if team := s.tokens.Team(token); team != "" {
			c.Set(teamKey, team)
			return errorf(http.StatusForbidden, "forbidden", "the admin routes need an operator's token (DISTQ_ADMIN_TOKENS); a team's token cannot use them")
		}
		return s.badToken(c)
	}
}

// adminLimit limits each operator's requests as a team's are limited.
func (s *server) adminLimit(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		// A prefix no team name can have keeps operators and teams apart.
		if err := s.limit("admin " + adminOf(c)); err != nil {
			return err
		}
		return next(c)
	}
}

func (s *server) adminAccounts(c echo.Context) error {
	list, err := s.Service.AdminAccounts(c.Request().Context())
	if err != nil {
		return err
	}
	out := client.AdminAccountList{Accounts: make([]client.AdminAccount, len(list))}
	for i := range list {
		out.Accounts[i] = adminAccount(&list[i])
	}
	return c.JSON(http.StatusOK, out)
}

func (s *server) adminAccount(c echo.Context) error {
	a, err := s.Service.AdminAccount(c.Request().Context(), c.Param("account"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, adminAccount(a))
}

// limitsBody is the body of PUT …/limits: each field a number (set), null
// (restore the configured value) or absent (leave as it is).
type limitsBody struct {
	CreateQPS json.RawMessage `json:"create_qps"`
	MaxJobs   json.RawMessage `json:"max_jobs"`
}

func (s *server) adminSetLimits(c echo.Context) error {
	var body limitsBody
	if _, err := readJSON(c, &body); err != nil {
		return err
	}
	var changes []service.LimitChange
	var bad []client.FieldError
	for _, f := range []struct {
		name string
		raw  json.RawMessage
	}{{service.LimitCreateQPS, body.CreateQPS}, {service.LimitMaxJobs, body.MaxJobs}} {
		if f.raw == nil {
			continue
		}
		if bytes.Equal(f.raw, []byte("null")) {
			changes = append(changes, service.LimitChange{Limit: f.name})
			continue
		}
		n, ok := wholeNumber(f.raw, service.MinLimit, service.MaxLimit)
		if !ok {
			bad = append(bad, client.FieldError{Field: f.name, Message: "want a whole number from 1 to 100, or null for the configured value"})
			continue
		}
		changes = append(changes, service.LimitChange{Limit: f.name, Value: n})
	}
	if len(bad) > 0 {
		return badValue(bad...)
	}
	a, err := s.Service.SetLimits(c.Request().Context(), adminOf(c), c.Param("account"), changes)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, adminAccount(a))
}

func (s *server) adminPause(paused bool) echo.HandlerFunc {
	return func(c echo.Context) error {
		if err := emptyBody(c); err != nil {
			return err
		}
		a, err := s.Service.SetPaused(c.Request().Context(), adminOf(c), c.Param("account"), c.Param("team"), paused)
		if err != nil {
			return err
		}
		return c.JSON(http.StatusOK, adminAccount(a))
	}
}

func (s *server) adminTeams(c echo.Context) error {
	list, err := s.Service.TeamWeights(c.Request().Context())
	if err != nil {
		return err
	}
	out := client.TeamWeightList{Teams: make([]client.TeamWeight, len(list))}
	for i, w := range list {
		out.Teams[i] = client.TeamWeight{Team: w.Team, Weight: setting(w.Weight)}
	}
	return c.JSON(http.StatusOK, out)
}

// weightBody is the body of PUT …/weight.
type weightBody struct {
	Weight json.RawMessage `json:"weight"`
}

func (s *server) adminSetWeight(c echo.Context) error {
	var body weightBody
	if _, err := readJSON(c, &body); err != nil {
		return err
	}
	n, ok := wholeNumber(body.Weight, service.MinWeight, service.MaxWeight)
	if !ok {
		return badValue(client.FieldError{Field: "weight", Message: "required: a whole number from 1 to 1000 (DELETE restores the configured weight)"})
	}
	return s.setWeight(c, n)
}

// wholeNumber reads raw as a JSON number without fraction from lo to hi
// (1e2 is 100; "3", 2.5 and null are not numbers of it).
func wholeNumber(raw json.RawMessage, lo, hi int) (int, bool) {
	if len(raw) == 0 || raw[0] == '"' {
		return 0, false
	}
	var n float64
	if err := json.Unmarshal(raw, &n); err != nil || n != math.Trunc(n) || n < float64(lo) || n > float64(hi) {
		return 0, false
	}
	return int(n), true
}

// badValue is the 400 bad_value of the fields named in details.
func badValue(details ...client.FieldError) *Error {
	e := errorf(http.StatusBadRequest, string(service.CodeBadValue), "%s: %s", details[0].Field, details[0].Message)
	for _, d := range details {
		e.Details = append(e.Details, d)
	}
	return e
}

func (s *server) adminClearWeight(c echo.Context) error { return s.setWeight(c, 0) }

func (s *server) setWeight(c echo.Context, weight int) error {
	w, err := s.Service.SetWeight(c.Request().Context(), adminOf(c), c.Param("team"), weight)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, client.TeamWeight{Team: w.Team, Weight: setting(w.Weight)})
}

// adminAccount is the wire form of an account.
func adminAccount(a *service.AdminAccount) client.AdminAccount {
	out := client.AdminAccount{Name: a.Name, UID: a.UID, SharedWith: a.SharedWith,
		CreateQPS: setting(a.CreateQPS), MaxJobs: setting(a.MaxJobs), Pause: pause(a.Pause),
		SlotsInUse: a.SlotsInUse, ExternalJobs: a.External, CreatesLastMinute: round(a.CreatesLastMinute, 100),
		Teams: make([]client.AdminTeam, len(a.Teams))}
	for i, t := range a.Teams {
		out.Teams[i] = client.AdminTeam{Team: t.Team, Weight: setting(t.Weight), Pause: pause(t.Pause), Paused: t.Paused,
			Slots: t.Slots, SlotHolders: t.Holders, CreatesLastMinute: round(t.CreatesLastMinute, 100), Share: round(t.Share, 10000)}
		if t.HasBacklog {
			n := t.Backlog
			out.Teams[i].Backlog = &n
		}
	}
	return out
}

func setting(s service.Setting) client.Setting {
	return client.Setting{Value: s.Value, Origin: s.Origin, SetBy: s.By, SetAt: timePtr(s.At)}
}

func pause(p service.Pause) client.Pause {
	return client.Pause{Paused: p.Paused, SetBy: p.By, SetAt: timePtr(p.At)}
}

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	t = t.UTC()
	return &t
}

// round rounds x to 1/scale.
func round(x, scale float64) float64 { return math.Round(x*scale) / scale }

// emptyBody refuses a body on a route that takes none (pause, resume):
// only nothing or an empty JSON object is taken. At most 64 bytes are
// read, so a huge body costs nothing.
func emptyBody(c echo.Context) error {
	raw, _ := io.ReadAll(io.LimitReader(c.Request().Body, 64))
	if b := bytes.TrimSpace(raw); len(b) > 0 && !bytes.Equal(b, []byte("{}")) {
		return errorf(http.StatusBadRequest, "bad_request", "this route takes no body (nothing, or {})")
	}
	return nil
}
