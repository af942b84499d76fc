package httpapi_test

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/distq/distq/client"
)

// A batch lists in the order of its items (the file's order), page after
// page, whatever its product keys: /v1/batches/{id}/distributions and
// /v1/distributions?batch_id= alike. Rejected items leave no gap in the
// order of the others.
func TestBatchListsInItemOrder(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	a := newAPI(t, apiOptions{})
	c := client.New(a.URL, tokenA, client.WithHTTPClient(&http.Client{Timeout: time.Minute}))
	var items []client.BatchItem
	var want []string
	for i, n := range rand.Perm(300) {
		pk := fmt.Sprintf("a1order%04d", n)
		if i%37 == 5 {
			items = append(items, client.BatchItem{ProductKey: "bad key!"}) // rejected
			continue
		}
		items = append(items, client.BatchItem{ProductKey: pk})
		want = append(want, pk)
	}
	b, _, err := c.SubmitBatch(ctx, client.BatchRequest{Items: items, SourceInstanceID: "iotx-oxssharez200", TargetInstanceID: "iot-cn-6ja1a2b3c4d"}, "")
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range []client.ListOptions{{Limit: 7}, {Limit: 1000}} {
		var got, viaFilter []string
		for d, err := range c.All(ctx, client.ListOptions{BatchID: b.Batch.ID, Limit: o.Limit}) {
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, d.ProductKey)
		}
		page, err := c.BatchDistributions(ctx, b.Batch.ID, client.ListOptions{Limit: 1000})
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range page.Items {
			viaFilter = append(viaFilter, d.ProductKey)
		}
		if !slices.Equal(got, want) || !slices.Equal(viaFilter, want) {
			t.Fatalf("pages of %d: ?batch_id= lists as\n%v\n/v1/batches/{id}/distributions as\n%v\nwant the items' order\n%v", o.Limit, got, viaFilter, want)
		}
	}
}
