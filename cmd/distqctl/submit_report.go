package main

import (
	"fmt"

	"github.com/distq/distq/client"
)

// submitResult is what submit prints with --output json.
type submitResult struct {
	File         string               `json:"file,omitempty"`
	Items        int                  `json:"items"`
	BadLines     []lineError          `json:"bad_lines"`
	Batches      []submittedBatch     `json:"batches"`
	Distribution *client.Distribution `json:"distribution,omitempty"`
	Rejected     []rejection          `json:"rejected"`
	Result       *watchResult         `json:"result,omitempty"`
}

// finishSubmit prints the end of a submit (summary, or the JSON result)
// and returns the command's error: err, or errItems when anything did not
// go through.
func (a *app) finishSubmit(res submitResult, err error) error {
	incomplete := len(res.BadLines) > 0 || len(res.Rejected) > 0 || res.Result != nil && !res.Result.allSucceeded()
	if err == nil && incomplete {
		err = errItems
	}
	if a.jsonOutput() {
		return a.finishJSON(res, err)
	}
	if res.Result != nil {
		a.printWatchSummary(res.Result)
	}
	if len(res.Rejected) > 0 {
		fmt.Fprintf(a.stdout, "rejected by the API (%d):\n", len(res.Rejected))
		for _, r := range res.Rejected {
			where := "  "
			if r.Line > 0 {
				where += fmt.Sprintf("line %d: ", r.Line)
			}
			fmt.Fprintf(a.stdout, "%sproduct %s: %s: %s\n", where, r.ProductKey, r.Code, r.Message)
		}
	}
	if len(res.BadLines) > 0 {
		fmt.Fprintf(a.stdout, "bad lines in %s, skipped (%d):\n", res.File, len(res.BadLines))
		for _, b := range res.BadLines {
			fmt.Fprintf(a.stdout, "  %s\n", b)
		}
	}
	return err
}

// finishJSON prints v as JSON (also when err is set, so a script sees how
// far it went) and returns err.
func (a *app) finishJSON(v any, err error) error {
	if perr := a.printJSON(v); perr != nil && err == nil {
		err = perr
	}
	return err
}
