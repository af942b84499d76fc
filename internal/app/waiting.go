package app

import (
	"context"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/distq/distq/internal/config"
	"github.com/distq/distq/internal/distribution"
	"github.com/distq/distq/internal/metrics"
	"github.com/distq/distq/internal/store"
)

// waitingCollector exports distq_distributions_waiting of cfg's accounts
// from st, read at each scrape.
func waitingCollector(cfg *config.Config, st *store.Redis) prometheus.Collector {
	var names []string
	for _, a := range cfg.Accounts {
		names = append(names, a.Name)
	}
	reasons := []distribution.WaitReason{distribution.WaitRateLimit, distribution.WaitJobSlots, distribution.WaitBackoff,
		distribution.WaitFairShare, distribution.WaitPaused}
	return metrics.NewWaitingCollector(names, func(ctx context.Context) (map[[2]string]int64, error) {
		return st.Waiting(ctx, names, reasons)
	})
}
