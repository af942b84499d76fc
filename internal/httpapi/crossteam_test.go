package httpapi_test

import (
	"bytes"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/distq/distq/client"
)

// When a team submits what another team is already distributing (same
// account, product and target), the 409 names no id of the other team —
// no Location, no existing_id, nowhere in the body — but says that another
// team's distribution of that product to that target is active and since
// when; single submissions, batch items and retries alike. The team's own
// duplicate is still named.
func TestDuplicateOfAnotherTeam(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	doc, router := loadSpec(ctx, t)
	a := newAPI(t, apiOptions{})
	rec := &exchangeRecorder{transport: &http.Transport{}}
	t.Cleanup(rec.transport.CloseIdleConnections)
	hc := &http.Client{Transport: rec, Timeout: time.Minute}
	ca, cb := client.New(a.URL, tokenA, client.WithHTTPClient(hc)), client.New(a.URL, tokenB, client.WithHTTPClient(hc))
	chk := &clientCheck{doc: doc, router: router, rec: rec}
	req := func(pk string) client.DistributionRequest {
		return client.DistributionRequest{ProductKey: pk, SourceInstanceID: "iotx-oxssharez200", TargetInstanceID: "iot-cn-6ja1a2b3c4d"}
	}
	// notNamed checks the last answer: 409 duplicate_active without id.
	notNamed := func(t *testing.T, err error, ids ...string) {
		t.Helper()
		rec.mu.Lock()
		resp := rec.resp
		rec.mu.Unlock()
		for _, id := range ids {
			if bytes.Contains(resp.body, []byte(id)) || strings.Contains(resp.header.Get("Location"), id) {
				t.Errorf("the answer names %s of team A: %s (Location %q)", id, resp.body, resp.header.Get("Location"))
			}
		}
		if loc := resp.header.Get("Location"); err != nil && loc != "" {
			t.Errorf("Location %q on a duplicate of another team's", loc)
		}
	}

	held, _, err := ca.Submit(ctx, req("a1shared"), "")
	chk.exchange(t, http.StatusAccepted, held, err)

	// A single submission of team B.
	_, _, err = cb.Submit(ctx, req("a1shared"), "")
	chk.exchange(t, http.StatusConflict, nil, err)
	notNamed(t, err, held.ID)
	var e *client.Error
	if !errors.As(err, &e) || e.Code != "duplicate_active" || e.ExistingID() != "" ||
		!strings.Contains(e.Message, "another team's distribution of product a1shared to instance iot-cn-6ja1a2b3c4d is active, since "+held.CreatedAt.UTC().Format(time.RFC3339)) {
		t.Fatalf("team B's duplicate: %v, want duplicate_active saying another team's is active since its creation", err)
	}
	if since, ok := e.OtherTeamSince(); !ok || !since.Equal(held.CreatedAt) {
		t.Errorf("details say since %v (%t), want %v", since, ok, held.CreatedAt)
	}

	// The same team's duplicate is still named.
	_, _, err = ca.Submit(ctx, req("a1shared"), "")
	chk.exchange(t, http.StatusConflict, nil, err)
	if !errors.As(err, &e) || e.ExistingID() != held.ID {
		t.Fatalf("team A's own duplicate: %v, want it named %s", err, held.ID)
	}
	if _, other := e.OtherTeamSince(); other {
		t.Errorf("team A's own duplicate says it is another team's")
	}

	// A batch item of team B.
	b, _, err := cb.SubmitBatch(ctx, client.BatchRequest{SourceInstanceID: "iotx-oxssharez200", TargetInstanceID: "iot-cn-6ja1a2b3c4d",
		Items: []client.BatchItem{{ProductKey: "a1shared"}, {ProductKey: "a1mine"}}}, "")
	chk.exchange(t, http.StatusAccepted, b, err)
	notNamed(t, nil, held.ID)
	item := b.Results[0]
	if item.ID != "" || item.ExistingID != "" || item.Error == nil || item.Error.Code != "duplicate_active" || !strings.Contains(item.Error.Message, "another team's") {
		t.Fatalf("team B's batch item: %+v (error %+v), want duplicate_active without id", item, item.Error)
	}
	if since, ok := item.Error.OtherTeamSince(); !ok || !since.Equal(held.CreatedAt) {
		t.Errorf("item details say since %v (%t), want %v", since, ok, held.CreatedAt)
	}

	// A retry of team B while team A's is active.
	mine, _, err := cb.Submit(ctx, req("a1later"), "")
	chk.exchange(t, http.StatusAccepted, mine, err)
	a.fail(ctx, t, mine.ID)
	theirs, _, err := ca.Submit(ctx, req("a1later"), "")
	chk.exchange(t, http.StatusAccepted, theirs, err)
	_, err = cb.Retry(ctx, mine.ID)
	chk.exchange(t, http.StatusConflict, nil, err)
	notNamed(t, err, theirs.ID)
	if !errors.As(err, &e) || e.Code != "duplicate_active" || e.ExistingID() != "" || !strings.Contains(e.Message, "another team's") {
		t.Fatalf("team B's retry: %v, want duplicate_active without id", err)
	}
	if since, ok := e.OtherTeamSince(); !ok || !since.Equal(theirs.CreatedAt) {
		t.Errorf("retry details say since %v (%t), want %v", since, ok, theirs.CreatedAt)
	}
}
