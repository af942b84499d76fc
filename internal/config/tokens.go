package config

import (
	"errors"
	"fmt"
	"os"
	"strings"
)

// readTokens reads the teams' bearer tokens: DISTQ_API_TOKENS in clear,
// DISTQ_API_TOKENS_FILE as hashes. The api needs at least one.
func readTokens(c *Config, e *vars) error {
	var err error
	if c.Tokens, err = parseTokens(e.getenv("DISTQ_API_TOKENS")); err != nil {
		return fmt.Errorf("DISTQ_API_TOKENS: %w", err)
	}
	if path := e.getenv("DISTQ_API_TOKENS_FILE"); path != "" {
		if c.TokenHashes, err = tokenFile(path); err != nil {
			return fmt.Errorf("DISTQ_API_TOKENS_FILE %s: %w", path, err)
		}
	}
	if len(c.Tokens) == 0 && len(c.TokenHashes) == 0 {
		return errors.New("DISTQ_API_TOKENS: required: at least one team:token (or DISTQ_API_TOKENS_FILE)")
	}
	return nil
}

// parseTokens reads "team:token[,team:token…]" into token → team.
func parseTokens(s string) (map[string]string, error) {
	out := map[string]string{}
	for _, pair := range splitList(s) {
		team, token, ok := strings.Cut(pair, ":")
		team, token = strings.TrimSpace(team), strings.TrimSpace(token)
		if !ok || team == "" || token == "" {
			return nil, fmt.Errorf("want team:token[,team:token…], got an entry without team or token")
		}
		if len(token) < 8 {
			return nil, fmt.Errorf("token of team %q is shorter than 8 characters", team)
		}
		if _, dup := out[token]; dup {
			return nil, fmt.Errorf("a token is given twice")
		}
		out[token] = team
	}
	return out, nil
}

// tokenFile reads lines "team sha256-hex-of-token" ('#' starts a comment),
// so the file never holds a usable token. `printf %s "$TOKEN" | sha256sum`
// gives the hash.
func tokenFile(path string) (map[string]string, error) {
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
			return nil, fmt.Errorf("line %d: want \"team sha256-hex\"", i+1)
		}
		out[strings.ToLower(f[1])] = f[0]
	}
	return out, nil
}
