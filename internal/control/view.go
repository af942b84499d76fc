package control

import (
	"cmp"
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// ViewOptions tune a View. Zero values select the defaults.
type ViewOptions struct {
	// Refresh is how old a snapshot may get before Get reads the version
	// again (default 500ms).
	Refresh time.Duration
	// Timeout bounds one refresh (default 1s).
	Timeout time.Duration
	// Log receives a warning when a refresh fails, once until one works
	// again (default: discarded).
	Log *slog.Logger
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// View is a cached read of the overrides for a hot path (the worker's
// handling of each task). Get costs nothing while its snapshot is younger
// than Refresh, then one HGET of the version, and reads the whole hash
// only when the version changed. When Redis fails, the last snapshot stays
// in force. It is safe for concurrent use: one caller refreshes while the
// others that need a fresher snapshot wait for that read.
type View struct {
	store *Store
	opts  ViewOptions

	cur     atomic.Pointer[viewState]
	refresh sync.Mutex
	failing bool // under refresh
}

type viewState struct {
	snap    Snapshot
	checked time.Time // zero: never read from Redis
}

// NewView returns a View of s. Until its first read it holds the
// configuration (no override).
func NewView(s *Store, o ViewOptions) *View {
	o.Refresh = cmp.Or(o.Refresh, 500*time.Millisecond)
	o.Timeout = cmp.Or(o.Timeout, time.Second)
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	v := &View{store: s, opts: o}
	v.cur.Store(&viewState{snap: s.Base()})
	return v
}

// Get returns the snapshot in force, read from Redis at most Refresh ago
// (or the last one read, while Redis fails).
func (v *View) Get(ctx context.Context) Snapshot {
	st := v.cur.Load()
	if !st.checked.IsZero() && v.opts.Now().Sub(st.checked) < v.opts.Refresh {
		return st.snap
	}
	// A snapshot older than Refresh is never answered, also while another
	// caller refreshes: waiting for its read (bounded by Timeout) is what
	// keeps an operator's change in force within Refresh plus one read.
	v.refresh.Lock()
	defer v.refresh.Unlock()
	st = v.cur.Load()
	if !st.checked.IsZero() && v.opts.Now().Sub(st.checked) < v.opts.Refresh {
		return st.snap
	}
	next, err := v.read(ctx, st)
	if err != nil {
		if !v.failing {
			v.opts.Log.Warn("operator overrides: refresh failed; the last ones read stay in force", "err", err, "version", st.snap.Version)
		}
		v.failing = true
		// Try again after another Refresh, not at every call.
		v.cur.Store(&viewState{snap: st.snap, checked: v.opts.Now()})
		return st.snap
	}
	if v.failing {
		v.opts.Log.Info("operator overrides: refresh works again", "version", next.snap.Version)
		v.failing = false
	}
	if next.snap.Version != st.snap.Version {
		v.opts.Log.Info("operator overrides changed", "version", next.snap.Version, "overrides", next.snap.Overrides())
	}
	v.cur.Store(next)
	return next.snap
}

// read checks the version and reads the overrides when it changed.
func (v *View) read(ctx context.Context, st *viewState) (*viewState, error) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), v.opts.Timeout)
	defer cancel()
	ver, err := v.store.Version(ctx)
	if err != nil {
		return nil, err
	}
	now := v.opts.Now()
	if ver == st.snap.Version && !st.checked.IsZero() {
		return &viewState{snap: st.snap, checked: now}, nil
	}
	snap, err := v.store.Snapshot(ctx)
	if err != nil {
		return nil, err
	}
	return &viewState{snap: snap, checked: now}, nil
}
