package queue

import (
	"context"
	"errors"

	"github.com/distq/distq/internal/distribution"
	"github.com/distq/distq/internal/store"
)

// apply runs op, one of the record's named transitions, on the record of id
// under the store's compare-and-set. A transition the record's current
// state no longer allows (a cancel won, another run got there first) is not
// an error for the worker: the record stays as it is and applied is false.
func (w *Worker) apply(ctx context.Context, id string, op func(r *store.Record) error) (r *store.Record, applied bool, err error) {
	r, err = w.store.Update(ctx, id, func(r *store.Record) error {
		applied = false
		err := op(r)
		var refused *distribution.TransitionError
		if errors.As(err, &refused) {
			return store.ErrNoChange
		}
		applied = err == nil
		return err
	})
	return r, applied && err == nil, err
}
