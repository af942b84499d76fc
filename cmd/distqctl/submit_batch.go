package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/distq/distq/client"
)

// submittedBatch is one batch a submit created (or found, on a replay).
type submittedBatch struct {
	ID             string `json:"id"`
	Items          int    `json:"items"`
	Accepted       int    `json:"accepted"`
	Rejected       int    `json:"rejected"`
	IdempotencyKey string `json:"idempotency_key,omitempty"`
	// Replayed: an earlier run already submitted it with this key; this
	// run submitted nothing new.
	Replayed bool `json:"replayed"`
}

// rejection is an item the API refused.
type rejection struct {
	Line       int    `json:"line,omitempty"`
	ProductKey string `json:"product_key"`
	Code       string `json:"code"`
	Message    string `json:"message"`
	ExistingID string `json:"existing_id,omitempty"`
	// req is the item's request, for --failed-csv.
	req client.DistributionRequest
}

// sendBatch posts one batch. It returns nil and the rejections when the API
// refused every item; lineOf learns the line of every accepted item's id.
func (a *app) sendBatch(ctx context.Context, c *client.Client, shared client.DistributionRequest, chunk []item, key string, lineOf map[string]int) (*submittedBatch, []rejection, error) {
	body := client.BatchRequest{Items: make([]client.BatchItem, len(chunk)), Account: shared.Account, ProductKey: shared.ProductKey,
		SourceInstanceID: shared.SourceInstanceID, TargetInstanceID: shared.TargetInstanceID, TargetUID: shared.TargetUID, TargetAliyunID: shared.TargetAliyunID, NotifyURL: shared.NotifyURL}
	for i, it := range chunk {
		r := it.Req
		body.Items[i] = client.BatchItem{Account: r.Account, ProductKey: r.ProductKey, SourceInstanceID: r.SourceInstanceID,
			TargetInstanceID: r.TargetInstanceID, TargetUID: r.TargetUID, TargetAliyunID: r.TargetAliyunID}
	}
	created, replayed, err := c.SubmitBatch(ctx, body, key)
	var ae *client.Error
	if errors.As(err, &ae) && ae.Code == "idempotency_key_reused" {
		return nil, nil, fmt.Errorf("%w: Idempotency-Key %q was used for a different request; pass another --idempotency-key", err, key)
	}
	var results []client.ItemResult
	switch {
	case errors.As(err, &ae) && ae.Code == "validation_failed" && len(ae.ItemResults()) == len(chunk):
		// No item was valid: no batch, one error per item.
		results, created = ae.ItemResults(), &client.BatchCreated{}
	case err != nil:
		return nil, nil, apiError(err)
	default:
		results = created.Results
	}
	var rejected []rejection
	for _, r := range results {
		if r.Index < 0 || r.Index >= len(chunk) {
			return nil, nil, fmt.Errorf("the API answered about item %d of a batch of %d", r.Index, len(chunk))
		}
		it := chunk[r.Index]
		if r.Error != nil {
			rejected = append(rejected, rejection{Line: it.Line, ProductKey: it.Req.ProductKey, Code: r.Error.Code, Message: r.Error.Message, ExistingID: r.ExistingID, req: it.Req})
			continue
		}
		lineOf[r.ID] = it.Line
	}
	if created.Batch.ID == "" {
		return nil, rejected, nil
	}
	return &submittedBatch{
		ID: created.Batch.ID, Items: len(chunk), Accepted: created.Accepted, Rejected: created.Rejected,
		IdempotencyKey: key, Replayed: replayed,
	}, rejected, nil
}
