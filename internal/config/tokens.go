package config

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// readTokens reads the teams' bearer tokens: DISTQ_API_TOKENS in clear,
// DISTQ_API_TOKENS_FILE as hashes. The api needs at least one.
func readTokens(c *Config, e *vars) error {
	var err error
	if c.Tokens, err = parseTokens(e.getenv("DISTQ_API_TOKENS"), "team"); err != nil {
		return fmt.Errorf("DISTQ_API_TOKENS: %w", err)
	}
	if path := e.getenv("DISTQ_API_TOKENS_FILE"); path != "" {
		if c.TokenHashes, err = tokenFile(path, "team"); err != nil {
			return fmt.Errorf("DISTQ_API_TOKENS_FILE %s: %w", path, err)
		}
	}
	if len(c.Tokens) == 0 && len(c.TokenHashes) == 0 {
		return errors.New("DISTQ_API_TOKENS: required: at least one team:token (or DISTQ_API_TOKENS_FILE)")
	}
	return nil
}

// readAdminTokens reads the operators' bearer tokens, which open the admin
// routes (/v1/admin/…) and only them: DISTQ_ADMIN_TOKENS in clear,
// DISTQ_ADMIN_TOKENS_FILE as hashes, by the rules of the teams' tokens.
// Both are optional: without them no admin route can be used. A token
// that is also a team's is refused, so that a token is one or the other.
func readAdminTokens(c *Config, e *vars) error {
	var err error
	if c.AdminTokens, err = parseTokens(e.getenv("DISTQ_ADMIN_TOKENS"), "admin"); err != nil {
		return fmt.Errorf("DISTQ_ADMIN_TOKENS: %w", err)
	}
	if path := e.getenv("DISTQ_ADMIN_TOKENS_FILE"); path != "" {
		if c.AdminTokenHashes, err = tokenFile(path, "admin"); err != nil {
			return fmt.Errorf("DISTQ_ADMIN_TOKENS_FILE %s: %w", path, err)
		}
	}
	teams := map[string]bool{} // the hashes of every team token
	for token := range c.Tokens {
		teams[hashHex(token)] = true
	}
	for h := range c.TokenHashes {
		teams[h] = true
	}
	for token, admin := range c.AdminTokens {
		if teams[hashHex(token)] {
			return fmt.Errorf("DISTQ_ADMIN_TOKENS: the token of admin %q is also a team's token: give operators tokens of their own", admin)
		}
	}
	for h, admin := range c.AdminTokenHashes {
		if teams[h] {
			return fmt.Errorf("DISTQ_ADMIN_TOKENS_FILE: the token of admin %q is also a team's token: give operators tokens of their own", admin)
		}
	}
	return nil
}

// hashHex is the hex SHA-256 of token, as the token files hold it.
func hashHex(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// parseTokens reads "name:token[,name:token…]" into token → name, where a
// name is a team's or, with kind "admin", an operator's.
func parseTokens(s, kind string) (map[string]string, error) {
	out := map[string]string{}
	for _, pair := range splitList(s) {
		team, token, ok := strings.Cut(pair, ":")
		team, token = strings.TrimSpace(team), strings.TrimSpace(token)
		if !ok || team == "" || token == "" {
			return nil, fmt.Errorf("want %s:token[,%s:token…], got an entry without %s or token", kind, kind, kind)
		}
		if err := checkName(kind, team); err != nil {
			return nil, err
		}
		if len(token) < 8 {
			return nil, fmt.Errorf("token of %s %q is shorter than 8 characters", kind, team)
		}
		if _, dup := out[token]; dup {
			return nil, fmt.Errorf("a token is given twice")
		}
		out[token] = team
	}
	return out, nil
}

// tokenFile reads lines "name sha256-hex-of-token" ('#' starts a comment),
// so the file never holds a usable token. `printf %s "$TOKEN" | sha256sum`
// gives the hash. A name is a team's or, with kind "admin", an operator's.
func tokenFile(path, kind string) (map[string]string, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for i, line := range strings.Split(string(raw), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Fields(line)
		if len(f) != 2 || len(f[1]) != 64 || strings.Trim(strings.ToLower(f[1]), "0123456789abcdef") != "" {
			return nil, fmt.Errorf("line %d: want \"%s sha256-hex\"", i+1, kind)
		}
		if err := checkName(kind, f[0]); err != nil {
			return nil, fmt.Errorf("line %d: %w", i+1, err)
		}
		out[strings.ToLower(f[1])] = f[0]
	}
	return out, nil
}

// checkTeam refuses a team name outside 1 to 64 characters of
// [A-Za-z0-9._-]: team names become parts of Redis keys ("distq:idem:" +
// team + ":" + key), where a ':' would let two teams' keys collide, and
// of log lines and metric labels.
func checkTeam(team string) error { return checkName("team", team) }

// checkName applies checkTeam's rule to a name of kind ("team", "admin"):
// operators' names go to log lines too.
func checkName(kind, name string) error {
	ok := name != "" && len(name) <= 64
	for i := 0; ok && i < len(name); i++ {
		b := name[i]
		ok = 'a' <= b && b <= 'z' || 'A' <= b && b <= 'Z' || '0' <= b && b <= '9' || b == '.' || b == '_' || b == '-'
	}
	if !ok {
		return fmt.Errorf("%s %q: want 1 to 64 characters of A-Z a-z 0-9 . _ -", kind, name)
	}
	return nil
}

// readTeamWeights reads DISTQ_TEAM_WEIGHTS, "team=weight[,team=weight…]":
// each team's weight in the fair share of an account between teams, a
// whole number from 1 to 1000 (a team left out weighs 1). Both binaries
// read it: the worker shares by it, the api shows it.
func readTeamWeights(c *Config, e *vars) error {
	const name = "DISTQ_TEAM_WEIGHTS"
	c.TeamWeights = map[string]int{}
	for _, pair := range splitList(e.getenv(name)) {
		team, w, ok := strings.Cut(pair, "=")
		team, w = strings.TrimSpace(team), strings.TrimSpace(w)
		if !ok {
			return fmt.Errorf("%s: want team=weight[,team=weight…], got %q", name, pair)
		}
		if err := checkTeam(team); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		n, err := strconv.Atoi(w)
		if err != nil || n < MinTeamWeight || n > MaxTeamWeight {
			return fmt.Errorf("%s: team %q: want a whole number from %d to %d, got %q", name, team, MinTeamWeight, MaxTeamWeight, w)
		}
		if _, dup := c.TeamWeights[team]; dup {
			return fmt.Errorf("%s: team %q is given twice", name, team)
		}
		c.TeamWeights[team] = n
	}
	return nil
}

// checkWeightedTeams refuses, in the api, a DISTQ_TEAM_WEIGHTS team that
// no team token names: a misspelt team would weigh nothing and show as a
// phantom team. (The worker reads no tokens and takes the weights as given.)
func checkWeightedTeams(c *Config, _ *vars) error {
	teams := map[string]bool{}
	for _, m := range []map[string]string{c.Tokens, c.TokenHashes} {
		for _, team := range m {
			teams[team] = true
		}
	}
	for team := range c.TeamWeights {
		if !teams[team] {
			return fmt.Errorf("DISTQ_TEAM_WEIGHTS: team %q has no token in DISTQ_API_TOKENS or DISTQ_API_TOKENS_FILE", team)
		}
	}
	return nil
}

// The bounds of a team's weight (DISTQ_TEAM_WEIGHTS, and the operators'
// overrides, which internal/control keeps within the same).
const (
	MinTeamWeight = 1
	MaxTeamWeight = 1000
)
