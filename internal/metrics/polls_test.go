package metrics

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestPollsCollector(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	for _, c := range []struct {
		name    string
		n       int64
		first   time.Time
		err     error
		overdue float64
	}{
		{"empty", 0, time.Time{}, nil, 0},
		{"due later", 3, now.Add(time.Second), nil, 0},
		{"overdue", 2, now.Add(-90 * time.Second), nil, 90},
		{"redis down", 0, time.Time{}, errors.New("down"), 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			col := NewPollsCollector(func(context.Context) (int64, time.Time, error) { return c.n, c.first, c.err }).(*pollsCollector)
			col.now = func() time.Time { return now }
			if n := testutil.CollectAndCount(col); (c.err == nil) != (n == 2) {
				t.Fatalf("%d series", n)
			}
			if c.err != nil {
				return
			}
			reg := prometheus.NewPedanticRegistry()
			reg.MustRegister(col)
			mfs, err := reg.Gather()
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]float64{}
			for _, mf := range mfs {
				got[mf.GetName()] = mf.GetMetric()[0].GetGauge().GetValue()
			}
			if got["distq_polls_scheduled"] != float64(c.n) || got["distq_polls_overdue_seconds"] != c.overdue {
				t.Errorf("got %v, want scheduled %d overdue %v", got, c.n, c.overdue)
			}
		})
	}
}
