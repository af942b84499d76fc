package service

import (
	"context"
	"fmt"
	"time"

	"github.com/distq/distq/internal/distribution"
)

// resolveOwners fills ExistingTeam and ExistingCreatedAt of the claims
// lost to an active distribution whose record the store did not read, in
// one read per 500. A claim whose owner has no record (being written, or
// just gone) keeps an empty ExistingTeam.
func (s *Service) resolveOwners(ctx context.Context, claims []distribution.Claim) error {
	var ids []string
	for _, c := range claims {
		if c.Existing != "" && c.ExistingTeam == "" {
			ids = append(ids, c.Existing)
		}
	}
	byID := make(map[string]*distribution.Record, len(ids))
	for start := 0; start < len(ids); start += 500 {
		recs, err := s.d.Store.GetMany(ctx, ids[start:min(start+500, len(ids))])
		if err != nil {
			return fmt.Errorf("read the active distributions: %w", err)
		}
		for _, r := range recs {
			byID[r.ID] = r
		}
	}
	for i, c := range claims {
		if r := byID[c.Existing]; r != nil && c.ExistingTeam == "" {
			claims[i].ExistingTeam, claims[i].ExistingCreatedAt = r.Team, r.CreatedAt
		}
	}
	return nil
}

// duplicate is the refusal of team's request for (pk, target) while the
// distribution c.Existing is active. The team's own is named; another
// team's is not: the answer says only that another team's distribution of
// that product to that target is active, and since when, so that an id
// never crosses teams. An owner that could not be read is not named either.
func duplicate(team string, c distribution.Claim, pk, target string) *Error {
	switch c.ExistingTeam {
	case team:
		e := errorf(CodeDuplicate, "distribution %s of product %s to instance %s is still active; this one was not created", c.Existing, pk, target)
		e.ExistingID = c.Existing
		return e
	case "":
		return errorf(CodeDuplicate, "another distribution of product %s to instance %s is active; this one was not created", pk, target)
	}
	since := c.ExistingCreatedAt.UTC()
	e := errorf(CodeDuplicate, "another team's distribution of product %s to instance %s is active, since %s; this one was not created",
		pk, target, since.Format(time.RFC3339))
	e.OtherTeamSince = &since
	return e
}
