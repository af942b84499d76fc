package metrics

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// WaitReasons are the reason labels of distq_distributions_waiting.
var WaitReasons = []string{"rate_limit", "job_slots", "backoff"}

// WaitingHelp is the HELP text of distq_distributions_waiting.
const WaitingHelp = "Queued distributions waiting, by account and reason (rate_limit, job_slots, backoff). " +
	"Shared state read from Redis at each scrape: every worker exports the same value, so aggregate with max(), never sum()."

// ReadWaiting returns the number of waiting distributions by
// [account, reason], from state shared by every process.
type ReadWaiting func(ctx context.Context) (map[[2]string]int64, error)

type waitingCollector struct {
	desc     *prometheus.Desc
	accounts []string
	read     ReadWaiting
}

// NewWaitingCollector exports distq_distributions_waiting for accounts,
// reading it with read at each scrape (within 1 s): fresh, and identical
// on every worker. When Redis does not answer, the series are left out of
// that scrape rather than shown stale.
func NewWaitingCollector(accounts []string, read ReadWaiting) prometheus.Collector {
	return &waitingCollector{
		desc:     prometheus.NewDesc("distq_distributions_waiting", WaitingHelp, []string{"account", "reason"}, nil),
		accounts: accounts,
		read:     read,
	}
}

func (c *waitingCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *waitingCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	counts, err := c.read(ctx)
	if err != nil {
		return
	}
	for _, a := range c.accounts {
		for _, r := range WaitReasons {
			ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(counts[[2]string{a, r}]), a, r)
		}
	}
}
