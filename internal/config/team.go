package config

import "fmt"

// checkTeam refuses a team name outside 1 to 64 characters of
// [A-Za-z0-9._-]: team names become parts of Redis keys ("distq:idem:" +
// team + ":" + key), where a ':' would let two teams' keys collide, and
// of log lines and metric labels.
func checkTeam(team string) error {
	ok := team != "" && len(team) <= 64
	for i := 0; ok && i < len(team); i++ {
		b := team[i]
		ok = 'a' <= b && b <= 'z' || 'A' <= b && b <= 'Z' || '0' <= b && b <= '9' || b == '.' || b == '_' || b == '-'
	}
	if !ok {
		return fmt.Errorf("team %q: want 1 to 64 characters of A-Z a-z 0-9 . _ -", team)
	}
	return nil
}
