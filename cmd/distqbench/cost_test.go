package main

import "testing"

// INFO commandstats: every command's calls summed (INFO's own left out),
// and the commands with the most calls between two readings.
func TestCommandStats(t *testing.T) {
	before := "# Commandstats\r\ncmdstat_get:calls=10,usec=5,usec_per_call=0.5\r\ncmdstat_info:calls=3,usec=1\r\ncmdstat_evalsha:calls=4,usec=9\r\n"
	after := "# Commandstats\r\ncmdstat_get:calls=30,usec=5\r\ncmdstat_info:calls=9,usec=1\r\ncmdstat_evalsha:calls=8,usec=9\r\ncmdstat_zadd:calls=2,usec=1\r\n"
	n0, by0 := parseCommandStats(before)
	n1, by1 := parseCommandStats(after)
	if n0 != 14 || n1 != 40 {
		t.Fatalf("sums %d, %d; want 14, 40 (info left out)", n0, n1)
	}
	if got := topCommands(by0, by1, 2, 2); got != "get 10.0, evalsha 2.0" {
		t.Fatalf("topCommands = %q", got)
	}
}
