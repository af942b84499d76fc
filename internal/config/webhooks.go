package config

import (
	"fmt"
	"os"
	"strings"

	"github.com/distq/distq/internal/webhook"
)

// Webhooks are the settings of completion events, read by both binaries:
// the api refuses a notify_url its team or host cannot use, the worker
// signs and sends.
type Webhooks struct {
	// Secrets maps a team to its whsec_… signing secret
	// (DISTQ_WEBHOOK_SECRETS and DISTQ_WEBHOOK_SECRETS_FILE). A team
	// without one cannot use notify_url.
	Secrets map[string]string
	// Allowed is DISTQ_WEBHOOK_ALLOWED_HOSTS.
	Allowed *webhook.Allowlist
	// Concurrency is the worker's concurrent deliveries
	// (DISTQ_WEBHOOK_CONCURRENCY), on their own asynq server.
	Concurrency int
}

// String never prints a secret.
func (w Webhooks) String() string {
	return fmt.Sprintf("webhooks (%d team secrets, %d allowed hosts)", len(w.Secrets), w.Allowed.Len())
}

func readWebhooks(c *Config, e *vars) error {
	secrets, err := parseSecrets(e.getenv("DISTQ_WEBHOOK_SECRETS"), ",")
	if err != nil {
		return fmt.Errorf("DISTQ_WEBHOOK_SECRETS: %w", err)
	}
	if path := e.getenv("DISTQ_WEBHOOK_SECRETS_FILE"); path != "" {
		raw, err := os.ReadFile(path)
		if err != nil {
			return fmt.Errorf("DISTQ_WEBHOOK_SECRETS_FILE: %w", err)
		}
		more, err := parseSecrets(string(raw), ",\n")
		if err != nil {
			return fmt.Errorf("DISTQ_WEBHOOK_SECRETS_FILE %s: %w", path, err)
		}
		for team, s := range more {
			if _, dup := secrets[team]; dup {
				return fmt.Errorf("DISTQ_WEBHOOK_SECRETS_FILE %s: team %q also has a secret in DISTQ_WEBHOOK_SECRETS", path, team)
			}
			secrets[team] = s
		}
	}
	allowed, err := webhook.ParseAllowlist(e.getenv("DISTQ_WEBHOOK_ALLOWED_HOSTS"))
	if err != nil {
		return fmt.Errorf("DISTQ_WEBHOOK_ALLOWED_HOSTS: %w", err)
	}
	c.Webhooks.Secrets, c.Webhooks.Allowed = secrets, allowed
	return nil
}

// parseSecrets reads "team:whsec_…" entries separated by any of seps ('#'
// starts a comment line in a file). Its errors name the team, never the
// secret.
func parseSecrets(s, seps string) (map[string]string, error) {
	out := map[string]string{}
	for _, entry := range strings.FieldsFunc(s, func(r rune) bool { return strings.ContainsRune(seps, r) }) {
		entry = strings.TrimSpace(entry)
		if entry == "" || strings.HasPrefix(entry, "#") {
			continue
		}
		team, secret, ok := strings.Cut(entry, ":")
		team, secret = strings.TrimSpace(team), strings.TrimSpace(secret)
		if !ok || team == "" || secret == "" {
			return nil, fmt.Errorf("want team:whsec_…[,team:whsec_…], got an entry without team or secret")
		}
		if err := webhook.ValidSecret(secret); err != nil {
			return nil, fmt.Errorf("secret of team %q: %v", team, err)
		}
		if _, dup := out[team]; dup {
			return nil, fmt.Errorf("team %q has two secrets", team)
		}
		out[team] = secret
	}
	return out, nil
}
