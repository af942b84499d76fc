package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/distq/distq/client"
	"github.com/distq/distq/internal/alisim"
	"github.com/distq/distq/internal/devstack"
)

func (c *api) raw(method, path string, body []byte, headers map[string]string) (int, []byte, http.Header) {
	c.t.Helper()
	req, _ := http.NewRequest(method, c.base+path, bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("Content-Type", "application/json")
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Errorf("%s %s: %v", method, path, err)
		return 0, nil, nil
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, raw, resp.Header
}

// listAll lists every distribution o selects, 7 a page.
func (c *api) listAll(o client.ListOptions) []client.Distribution {
	c.t.Helper()
	o.Limit = 7
	var all []client.Distribution
	for d, err := range c.All(c.t.Context(), o) {
		if err != nil {
			c.t.Fatalf("list: %v", err)
		}
		all = append(all, d)
	}
	return all
}

func TestIdempotencyKey(t *testing.T) {
	t.Parallel()
	st := startStack(t, devstack.Options{Sim: fastSim()})
	c := newAPI(t, st.APIURL, st.Token)
	body, _ := json.Marshal(req("a1idem"))
	key := map[string]string{"Idempotency-Key": "key-1"}

	// Concurrent first requests with one key: exactly one record.
	var wg sync.WaitGroup
	replays := make([]bool, 8)
	ids := make([]string, 8)
	for i := range replays {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d, replayed, err := c.Submit(t.Context(), req("a1idem"), "key-1")
			if err != nil {
				t.Errorf("request %d: %v", i, err)
				return
			}
			replays[i], ids[i] = replayed, d.ID
		}()
	}
	wg.Wait()
	accepted := 0
	for i, replayed := range replays {
		if !replayed {
			accepted++
		}
		if ids[i] != ids[0] || ids[i] == "" {
			t.Fatalf("ids %v: want one id for every request", ids)
		}
	}
	if accepted != 1 {
		t.Fatalf("replayed %v: want exactly one 202 and replays with 200", replays)
	}
	// A later replay gets the same answer; another body with the key is 422.
	code, raw, hdr := c.raw("POST", "/v1/distributions", body, key)
	if code != http.StatusOK || hdr.Get("Idempotent-Replayed") != "true" || !bytes.Contains(raw, []byte(ids[0])) {
		t.Fatalf("replay: %d %s", code, raw)
	}
	_, _, err := c.Submit(t.Context(), req("a1idemOther"), "key-1")
	if e := apiError(t, err); e.Status != http.StatusUnprocessableEntity || e.Code != "idempotency_key_reused" {
		t.Fatalf("same key, other body: %v, want 422", e)
	}
	if n := len(c.listAll(client.ListOptions{ProductKey: "a1idem"})); n != 1 {
		t.Fatalf("%d records for the product, want 1", n)
	}
	// A second active distribution of the same product to the same target
	// is refused, naming the first (unless the first is finished already).
	if _, _, err := c.Submit(t.Context(), req("a1idem"), ""); err != nil {
		if e := apiError(t, err); e.Status != http.StatusConflict || e.ExistingID() != ids[0] {
			t.Fatalf("duplicate: %v (existing %q), want 409 naming %s", e, e.ExistingID(), ids[0])
		}
	}
}

func TestBatchMixedItemsCancelAndETA(t *testing.T) {
	t.Parallel()
	// Slow Creates (1/s) keep most of the batch queued for a while.
	st := startStack(t, devstack.Options{
		Sim: alisim.Config{JobDuration: 200 * time.Millisecond, QPS: map[string]float64{"CreateProductDistributeJob": 2}},
		Env: map[string]string{"DISTQ_CREATE_QPS": "2"},
	})
	c := newAPI(t, st.APIURL, st.Token)
	items := []map[string]any{}
	for i := range 12 {
		items = append(items, map[string]any{"product_key": fmt.Sprintf("a1mix%02d", i)})
	}
	items = append(items,
		map[string]any{"product_key": "bad key!"},                                          // invalid product key
		map[string]any{"product_key": 5},                                                   // wrong type
		map[string]any{"product_key": "a1same", "target_instance_id": "iotx-oxssharez200"}, // source == target
		map[string]any{"product_key": "a1x", "target_uid": "42"},                           // cross-account
		map[string]any{"product_key": "a1y", "surprise": true},                             // unknown field
	)
	// Items of the wrong type or with unknown fields are not something the
	// typed client can send: post by hand, read the answer with its type.
	var created client.BatchCreated
	if code := c.do("POST", "/v1/batches", map[string]any{
		"source_instance_id": "iotx-oxssharez200", "target_instance_id": "iot-cn-6ja0000e2e", "items": items,
	}, &created); code != http.StatusAccepted {
		t.Fatalf("batch: status %d", code)
	}
	if created.Accepted != 12 || created.Rejected != 5 || len(created.Results) != 17 {
		t.Fatalf("accepted %d rejected %d results %d, want 12, 5, 17", created.Accepted, created.Rejected, len(created.Results))
	}
	for _, r := range created.Results[12:] {
		if r.Error == nil || r.ID != "" {
			t.Fatalf("bad item %d: %+v, want an error and no id", r.Index, r)
		}
	}
	last := created.Results[11].ID
	if canceled, err := c.Cancel(t.Context(), last); err != nil || canceled.State != client.StateCanceled {
		t.Fatalf("cancel: %v %+v", err, canceled)
	}
	_, err := c.Cancel(t.Context(), last)
	if e := apiError(t, err); e.Status != http.StatusConflict {
		t.Fatalf("second cancel: %v, want 409", e)
	}
	// ETA falls as the batch drains, then the batch is done.
	var firstLeft, lastLeft time.Duration = -1, -1
	deadline := time.Now().Add(60 * time.Second)
	for {
		b, err := c.GetBatch(t.Context(), created.Batch.ID)
		if err != nil {
			t.Fatalf("get batch: %v", err)
		}
		if b.Done {
			if b.Counts["succeeded"] != 11 || b.Counts["canceled"] != 1 {
				t.Fatalf("done with counts %v, want 11 succeeded, 1 canceled", b.Counts)
			}
			break
		}
		if b.ETA == nil {
			t.Fatalf("open batch without eta: %+v", b)
		}
		left := time.Until(*b.ETA)
		if firstLeft < 0 {
			firstLeft = left
		}
		lastLeft = left
		if time.Now().After(deadline) {
			t.Fatalf("batch not done: %+v", b)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if !(lastLeft < firstLeft) {
		t.Fatalf("time left by the eta went from %v to %v, want it to fall", firstLeft, lastLeft)
	}
	// The canceled item never reached the endpoint.
	for _, call := range st.Sim.Audit() {
		if call.ProductKey == "a1mix11" {
			t.Fatalf("a call was sent for the canceled distribution: %+v", call)
		}
	}
	// Listing follows cursors without skipping or repeating.
	all := c.listAll(client.ListOptions{BatchID: created.Batch.ID})
	seen := map[string]bool{}
	for _, d := range all {
		if seen[d.ID] {
			t.Fatalf("listing repeated %s", d.ID)
		}
		seen[d.ID] = true
	}
	if len(all) != 12 {
		t.Fatalf("listed %d of the batch, want 12", len(all))
	}
}
