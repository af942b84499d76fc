package metrics

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// ReadPolls reads the poll schedule: how many polls it holds and the
// earliest due time among them (zero when none).
type ReadPolls func(ctx context.Context) (n int64, first time.Time, err error)

type pollsCollector struct {
	scheduled, overdue *prometheus.Desc
	read               ReadPolls
	now                func() time.Time
}

// NewPollsCollector exports distq_polls_scheduled and
// distq_polls_overdue_seconds, read with read at each scrape (within 1 s).
// Overdue is how long the earliest poll is past its due time: a poll being
// run is due at its lease's end, so a lasting overdue means no worker runs
// the schedule. When Redis does not answer, both are left out.
func NewPollsCollector(read ReadPolls) prometheus.Collector {
	return &pollsCollector{
		scheduled: prometheus.NewDesc("distq_polls_scheduled",
			"Remote jobs in the poll schedule (running jobs polled with QueryDeviceDistributeJob).", nil, nil),
		overdue: prometheus.NewDesc("distq_polls_overdue_seconds",
			"How long the earliest poll of the schedule is past its due time (0 when none is); a lasting value means no worker polls.", nil, nil),
		read: read,
		now:  time.Now,
	}
}

func (c *pollsCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.scheduled
	ch <- c.overdue
}

func (c *pollsCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	n, first, err := c.read(ctx)
	if err != nil {
		return
	}
	overdue := 0.0
	if !first.IsZero() {
		overdue = max(c.now().Sub(first).Seconds(), 0)
	}
	ch <- prometheus.MustNewConstMetric(c.scheduled, prometheus.GaugeValue, float64(n))
	ch <- prometheus.MustNewConstMetric(c.overdue, prometheus.GaugeValue, overdue)
}
