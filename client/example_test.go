package client_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/distq/distq/client"
)

// A team submits a batch, follows it until it is done, and lists what
// failed. (This example needs a running api, so it is compiled, not run.)
func Example() {
	ctx := context.Background()
	c := client.New("http://127.0.0.1:8080", "dev-token-0123456789")

	items := []client.BatchItem{{ProductKey: "a1BwAGV0001"}, {ProductKey: "a1BwAGV0002"}}
	created, replayed, err := c.SubmitBatch(ctx, client.BatchRequest{
		Items:            items,
		SourceInstanceID: "iotx-oxssharez200",
		TargetInstanceID: "iot-cn-6ja1a2b3c4d",
	}, "rollout-2026-11-30") // the same key again submits nothing new
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("batch %s: %d accepted, %d rejected (replay: %t)\n", created.Batch.ID, created.Accepted, created.Rejected, replayed)
	for _, r := range created.Results {
		if r.Error != nil {
			fmt.Printf("item %d refused: %s\n", r.Index, r.Error.Message)
		}
	}

	for {
		b, err := c.GetBatch(ctx, created.Batch.ID)
		if err != nil {
			log.Fatal(err)
		}
		if b.Done {
			break
		}
		time.Sleep(time.Second)
	}

	for d, err := range c.All(ctx, client.ListOptions{BatchID: created.Batch.ID, State: client.StateFailed}) {
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(d.ID, d.Error.Code, d.Error.Message)
	}
}

// Poll waits for a distribution to leave the state the caller knows.
func ExampleClient_Poll() {
	ctx := context.Background()
	c := client.New("http://127.0.0.1:8080", "dev-token-0123456789")
	d, err := c.Get(ctx, "d_018f3a2b4c5d_0a1b2c3d4e")
	for err == nil && !d.State.Terminal() {
		d, err = c.Poll(ctx, d.ID, d.State, 30*time.Second)
	}
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(d.ID, d.State)
}

// An error answer is a *client.Error with the API's code and details.
func ExampleError() {
	// A stand-in for the api, answering as it does for a duplicate.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusConflict)
		io.WriteString(w, `{"error":{"code":"duplicate_active","message":"distribution d_018f3a2b4c5d_0a1b2c3d4e of product a1BwAGV0001 to instance iot-cn-6ja1a2b3c4d is still active; this one was not created","details":[{"existing_id":"d_018f3a2b4c5d_0a1b2c3d4e"}]}}`)
	}))
	defer srv.Close()

	c := client.New(srv.URL, "dev-token-0123456789")
	_, _, err := c.Submit(context.Background(), client.DistributionRequest{
		ProductKey: "a1BwAGV0001", SourceInstanceID: "iotx-oxssharez200", TargetInstanceID: "iot-cn-6ja1a2b3c4d",
	}, "")
	var apiErr *client.Error
	if errors.As(err, &apiErr) && apiErr.Code == "duplicate_active" {
		fmt.Println("already active:", apiErr.ExistingID(), "HTTP", apiErr.Status)
	}
	// Output: already active: d_018f3a2b4c5d_0a1b2c3d4e HTTP 409
}
