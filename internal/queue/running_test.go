package queue

import (
	"context"
	"testing"
	"time"

	"github.com/distq/distq/internal/distribution"
	"github.com/distq/distq/internal/store"
)

// insertRunning stores a batch distribution of account uid whose job
// (job-<pk>) started at submitted, with its poll scheduled at pollAt, and
// returns its record.
func insertRunning(t *testing.T, st *store.Redis, uid, pk string, submitted, pollAt time.Time) *store.Record {
	t.Helper()
	ctx := context.Background()
	r := &store.Record{Distribution: distribution.Distribution{
		ID: distribution.NewID(submitted), Team: "t", Account: "a", ProductKey: pk,
		SourceInstanceID: "iotx-src", TargetInstanceID: "iotx-dst", State: distribution.StateQueued,
		CreatedAt: submitted, UpdatedAt: submitted,
	}, UID: uid, Queue: QueueBatch}
	if _, err := st.Insert(ctx, nil, []*store.Record{r}); err != nil {
		t.Fatal(err)
	}
	r, err := st.Update(ctx, r.ID, func(r *store.Record) error {
		if err := r.StartSubmit(submitted); err != nil {
			return err
		}
		return r.Started(submitted, "job-"+pk, nil)
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.SchedulePoll(ctx, pollTaskID(r.ID), pollAt); err != nil {
		t.Fatal(err)
	}
	return r
}
