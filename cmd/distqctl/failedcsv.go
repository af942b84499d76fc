package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"fmt"
	"os"
	"slices"
	"strconv"

	"github.com/distq/distq/client"
)

// reportColumns are the columns submit --failed-csv adds after the request
// columns: what happened to the item. submit --file ignores them, so the
// file goes back in as it is; any other unknown column is still an error.
var reportColumns = []string{"outcome", "code", "message", "request_id", "line", "distribution_id"}

// failedRow is one item of a --failed-csv file.
type failedRow struct {
	req                               client.DistributionRequest
	outcome, code, message, requestID string
	line                              int
	id                                string
}

// failedRows gathers the items that did not go through: those the API
// rejected at submission, and, after a wait, every distribution of ids
// (batches or distributions) that failed, however many (the summary lists
// only the first few).
func (a *app) failedRows(ctx context.Context, c *client.Client, shared client.DistributionRequest, rejected []rejection, ids []string, waited bool, lineOf map[string]int) ([]failedRow, error) {
	var rows []failedRow
	for _, r := range rejected {
		req := r.req
		req.FillFrom(shared)
		// A duplicate names the team's own active distribution: the row
		// carries its id, and its account and target UID where the request
		// left them to the server (the duplicate is of the same account).
		// Another team's is never named, and then only the request is known.
		if r.ExistingID != "" && (req.Account == "" || req.TargetUID == "") {
			if d, err := c.Get(ctx, r.ExistingID); err == nil {
				req.FillFrom(client.DistributionRequest{Account: d.Account, TargetUID: d.TargetUID})
			} else if ctx.Err() != nil {
				return nil, ctx.Err()
			}
		}
		rows = append(rows, failedRow{req: req, outcome: "rejected", code: r.Code, message: r.Message, line: r.Line, id: r.ExistingID})
	}
	if !waited {
		return rows, nil
	}
	err := eachFailed(ctx, c, ids, func(d client.Distribution) bool {
		row := failedRow{outcome: string(d.State), line: lineOf[d.ID], id: d.ID, req: client.DistributionRequest{
			Account: d.Account, ProductKey: d.ProductKey, SourceInstanceID: d.SourceInstanceID, TargetInstanceID: d.TargetInstanceID,
			TargetUID: d.TargetUID, TargetAliyunID: d.TargetAliyunID}}
		if d.Error != nil {
			row.code, row.message, row.requestID = d.Error.Code, d.Error.Message, d.Error.RequestID
		}
		rows = append(rows, row)
		return true
	})
	if err != nil {
		return nil, err
	}
	slices.SortStableFunc(rows, func(x, y failedRow) int { return x.line - y.line })
	return rows, nil
}

// writeFailedCSV writes rows as a CSV that submit --file takes back: the
// request columns, then the report columns.
func writeFailedCSV(path string, rows []failedRow) error {
	var buf bytes.Buffer
	w := csv.NewWriter(&buf)
	_ = w.Write(append(slices.Clone(columns), reportColumns...))
	for _, r := range rows {
		line := ""
		if r.line > 0 {
			line = strconv.Itoa(r.line)
		}
		rec := make([]string, 0, len(columns)+len(reportColumns))
		for _, col := range columns {
			rec = append(rec, *field(&r.req, col))
		}
		// One record per line: submit --file reads line by line.
		rec = append(rec, r.outcome, r.code, oneLine(r.message), r.requestID, line, r.id)
		_ = w.Write(rec)
	}
	w.Flush()
	if err := w.Error(); err != nil {
		return err
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		return fmt.Errorf("--failed-csv: %w", err)
	}
	return nil
}

// saveFailed writes the --failed-csv file, when asked, and says so.
func (a *app) saveFailed(ctx context.Context, c *client.Client, o *submitOptions, rejected []rejection, ids []string, waited bool, lineOf map[string]int) error {
	if o.failedCSV == "" {
		return nil
	}
	rows, err := a.failedRows(ctx, c, o.shared, rejected, ids, waited, lineOf)
	if err != nil {
		return err
	}
	if err := writeFailedCSV(o.failedCSV, rows); err != nil {
		return err
	}
	if !a.jsonOutput() {
		fmt.Fprintf(a.stdout, "%s: %d failed or rejected items, to submit again with: distqctl submit --file %s\n", o.failedCSV, len(rows), o.failedCSV)
	}
	return nil
}
