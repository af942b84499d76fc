package service

import (
	"math"
	"testing"
)

// The ETA model: teams share the account by weight until one runs out,
// which gives its share to the rest.
func TestServedUntilDone(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		own    demand
		others []demand
		want   float64
	}{
		{"alone", demand{30, 1}, nil, 30},
		// B's 30 items beside A's 300 at 1:1: B is done after 60 served.
		{"equal", demand{30, 1}, []demand{{300, 1}}, 60},
		// At 1:3 (B weighs 1, A 3): 4 served per B item.
		{"weighted", demand{30, 1}, []demand{{300, 3}}, 120},
		// A small team runs out first and gives its share back: B's 30 and
		// C's 5 beside A's 300, all 1: 15 served until C is done (5 each),
		// then 25 more of B at 1:1 → 15 + 50 = 65.
		{"one runs out", demand{30, 1}, []demand{{300, 1}, {5, 1}}, 65},
		// The big team asks: it is served last, after everything.
		{"big team", demand{300, 1}, []demand{{30, 1}}, 330},
		{"nothing", demand{0, 1}, []demand{{30, 1}}, 0},
	} {
		if got := servedUntilDone(tc.own, tc.others); math.Abs(got-tc.want) > 1e-6 {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
}
