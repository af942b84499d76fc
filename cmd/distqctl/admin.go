package main

import (
	"cmp"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/distq/distq/client"
)

// The operators' commands (distqctl admin …), over the admin API with an
// operator's token: --admin-token or DISTQ_ADMIN_TOKEN, never a team's.

func (a *app) adminCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "admin",
		Short: "Operators: show accounts and teams, pause and resume, change limits and weights",
		Long: `Operator commands, over the admin API. They need an operator's token
(DISTQ_ADMIN_TOKENS on the api): --admin-token or DISTQ_ADMIN_TOKEN. A team's
token is refused (403).

Every change is kept in Redis and in force on every worker within about a
second; status shows each value with its origin (config, or an override
with who set it and when). Accounts that share a UID share every override.`,
	}
	cmd.PersistentFlags().StringVar(&a.flagAdminToken, "admin-token", "", "operator's token (env DISTQ_ADMIN_TOKEN)")
	cmd.AddCommand(a.adminStatusCmd(), a.adminPauseCmd(true), a.adminPauseCmd(false), a.adminLimitsCmd(), a.adminWeightCmd())
	return cmd
}

// adminAPI returns a client with the operator's token, or a usage error.
func (a *app) adminAPI() (*client.Client, error) {
	token := cmp.Or(a.flagAdminToken, a.getenv("DISTQ_ADMIN_TOKEN"))
	if token == "" {
		return nil, usagef("no operator's token: pass --admin-token or set DISTQ_ADMIN_TOKEN")
	}
	return client.New(a.cfg.URL, token, client.WithRetries(4), client.WithUserAgent("distqctl"),
		client.WithHTTPClient(&http.Client{Timeout: time.Minute})), nil
}

func (a *app) adminStatusCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "status [ACCOUNT]",
		Short: "Show every account (or one): limits, pause, slots, and each team's weight, backlog and share",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.adminAPI()
			if err != nil {
				return err
			}
			var list []client.AdminAccount
			if len(args) == 1 {
				acct, err := c.AdminAccount(cmd.Context(), args[0])
				if err != nil {
					return apiError(err)
				}
				list = []client.AdminAccount{*acct}
			} else if list, err = c.AdminAccounts(cmd.Context()); err != nil {
				return apiError(err)
			}
			if a.jsonOutput() {
				if len(args) == 1 {
					return a.printJSON(list[0])
				}
				return a.printJSON(client.AdminAccountList{Accounts: list})
			}
			for i, acct := range list {
				if i > 0 {
					fmt.Fprintln(a.stdout)
				}
				a.printAdminAccount(acct)
			}
			return nil
		},
	}
}

func (a *app) adminPauseCmd(pause bool) *cobra.Command {
	var account, team string
	name, short := "resume", "Resume an account, or one team in it"
	if pause {
		name, short = "pause", "Pause an account, or one team in it (its work stays queued)"
	}
	cmd := &cobra.Command{
		Use:   name + " --account ACCOUNT [--team TEAM]",
		Short: short,
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if account == "" {
				return usagef("%s: --account is required", name)
			}
			c, err := a.adminAPI()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			var acct *client.AdminAccount
			switch {
			case team != "" && pause:
				acct, err = c.PauseTeam(ctx, account, team)
			case team != "":
				acct, err = c.ResumeTeam(ctx, account, team)
			case pause:
				acct, err = c.PauseAccount(ctx, account)
			default:
				acct, err = c.ResumeAccount(ctx, account)
			}
			if err != nil {
				return apiError(err)
			}
			if a.jsonOutput() {
				return a.printJSON(acct)
			}
			if team == "" {
				fmt.Fprintf(a.stdout, "account %s: %s\n", acct.Name, pauseText(acct.Pause))
				return nil
			}
			for _, t := range acct.Teams {
				if t.Team == team {
					fmt.Fprintf(a.stdout, "account %s, team %s: %s", acct.Name, team, pauseText(t.Pause))
					if !t.Pause.Paused && t.Paused {
						fmt.Fprint(a.stdout, " (the account is paused)")
					}
					fmt.Fprintln(a.stdout)
				}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&account, "account", "", "the account (required)")
	cmd.Flags().StringVar(&team, "team", "", "only this team in the account")
	return cmd
}

func (a *app) adminLimitsCmd() *cobra.Command {
	var (
		account        string
		qps, jobs      int
		clearOverrides bool
	)
	cmd := &cobra.Command{
		Use:   "limits --account ACCOUNT [--create-qps N] [--max-jobs N] [--clear]",
		Short: "Change an account's create_qps and max_jobs at run time (1 to 100), or --clear back to the configuration",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			f := cmd.Flags()
			setQPS, setJobs := f.Changed("create-qps"), f.Changed("max-jobs")
			switch {
			case account == "":
				return usagef("limits: --account is required")
			case clearOverrides && (setQPS || setJobs):
				return usagef("limits: --clear restores both limits; give it alone")
			case !clearOverrides && !setQPS && !setJobs:
				return usagef("limits: give --create-qps, --max-jobs or --clear")
			}
			var change client.LimitsChange
			if clearOverrides {
				change.ClearCreateQPS, change.ClearMaxJobs = true, true
			}
			if setQPS {
				change.CreateQPS = &qps
			}
			if setJobs {
				change.MaxJobs = &jobs
			}
			c, err := a.adminAPI()
			if err != nil {
				return err
			}
			acct, err := c.SetLimits(cmd.Context(), account, change)
			if err != nil {
				return apiError(err)
			}
			if a.jsonOutput() {
				return a.printJSON(acct)
			}
			fmt.Fprintf(a.stdout, "account %s: create_qps %s, max_jobs %s\n", acct.Name, settingText(acct.CreateQPS), settingText(acct.MaxJobs))
			if len(acct.SharedWith) > 0 {
				fmt.Fprintf(a.stdout, "also in force for %s (same UID)\n", strings.Join(acct.SharedWith, ", "))
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&account, "account", "", "the account (required)")
	cmd.Flags().IntVar(&qps, "create-qps", 0, "Creates per second (1 to 100)")
	cmd.Flags().IntVar(&jobs, "max-jobs", 0, "remote jobs at once (1 to 100)")
	cmd.Flags().BoolVar(&clearOverrides, "clear", false, "restore both configured limits")
	return cmd
}

func (a *app) adminWeightCmd() *cobra.Command {
	var (
		team           string
		clearOverrides bool
	)
	cmd := &cobra.Command{
		Use:   "weight --team TEAM (WEIGHT | --clear)",
		Short: "Change a team's weight (1 to 1000) in every account's fair share, or --clear back to the configuration",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			switch {
			case team == "":
				return usagef("weight: --team is required")
			case clearOverrides == (len(args) == 1):
				return usagef("weight: give a weight or --clear, not both or neither")
			}
			c, err := a.adminAPI()
			if err != nil {
				return err
			}
			var w *client.TeamWeight
			if clearOverrides {
				w, err = c.ClearTeamWeight(cmd.Context(), team)
			} else {
				n, perr := strconv.Atoi(args[0])
				if perr != nil || n < 1 || n > 1000 {
					return usagef("weight: want a whole number from 1 to 1000, got %q", args[0])
				}
				w, err = c.SetTeamWeight(cmd.Context(), team, n)
			}
			if err != nil {
				return apiError(err)
			}
			if a.jsonOutput() {
				return a.printJSON(w)
			}
			fmt.Fprintf(a.stdout, "team %s: weight %s\n", w.Team, settingText(w.Weight))
			return nil
		},
	}
	cmd.Flags().StringVar(&team, "team", "", "the team (required)")
	cmd.Flags().BoolVar(&clearOverrides, "clear", false, "restore the configured weight")
	return cmd
}

func (a *app) printAdminAccount(acct client.AdminAccount) {
	fmt.Fprintf(a.stdout, "account %s (uid %s", acct.Name, acct.UID)
	if len(acct.SharedWith) > 0 {
		fmt.Fprintf(a.stdout, "; shares its UID with %s", strings.Join(acct.SharedWith, ", "))
	}
	fmt.Fprintln(a.stdout, ")")
	tw := newTable(a.stdout)
	fmt.Fprintf(tw, "  create_qps:\t%s\n", settingText(acct.CreateQPS))
	fmt.Fprintf(tw, "  max_jobs:\t%s\n", settingText(acct.MaxJobs))
	fmt.Fprintf(tw, "  paused:\t%s\n", pauseText(acct.Pause))
	fmt.Fprintf(tw, "  slots:\t%d in use, %d external, of %d\n", acct.SlotsInUse, acct.ExternalJobs, acct.MaxJobs.Value)
	fmt.Fprintf(tw, "  creates:\t%.1f in the last minute (at most %d)\n", acct.CreatesLastMinute, acct.CreateQPS.Value*60)
	tw.Flush()
	if len(acct.Teams) == 0 {
		return
	}
	tw = newTable(a.stdout)
	fmt.Fprintln(tw, "  TEAM\tWEIGHT\tPAUSED\tBACKLOG\tSLOTS\tCREATES/MIN\tSHARE")
	for _, t := range acct.Teams {
		paused := "no"
		switch {
		case t.Pause.Paused:
			paused = "yes"
		case t.Paused:
			paused = "yes (account)"
		}
		backlog := "-"
		if t.Backlog != nil {
			backlog = strconv.Itoa(*t.Backlog)
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%d\t%.1f\t%.0f%%\n", t.Team, settingText(t.Weight), paused, backlog, t.Slots, t.CreatesLastMinute, t.Share*100)
	}
	tw.Flush()
}

// settingText is "2 (config)" or "1 (override by ops, 2026-03-01T10:00:00Z)".
func settingText(s client.Setting) string {
	if s.Origin != client.OriginOverride {
		return fmt.Sprintf("%d (%s)", s.Value, s.Origin)
	}
	return fmt.Sprintf("%d (override%s)", s.Value, byText(s.SetBy, s.SetAt))
}

// pauseText is "no" or "paused by ops, 2026-03-01T10:00:00Z".
func pauseText(p client.Pause) string {
	if !p.Paused {
		return "no"
	}
	return "paused" + byText(p.SetBy, p.SetAt)
}

func byText(by string, at *time.Time) string {
	out := ""
	if by != "" {
		out += " by " + by
	}
	if at != nil {
		out += ", " + at.Format(time.RFC3339)
	}
	return out
}
