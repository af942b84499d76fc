package main

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"strings"

	"github.com/distq/distq/client"
)

// Input formats of submit --file.
const (
	formatAuto  = "auto"
	formatCSV   = "csv"
	formatJSONL = "jsonl"
)

// columns are the per-row fields a file may give, as the API names them.
var columns = []string{"product_key", "source_instance_id", "target_instance_id", "target_uid", "target_aliyun_id", "account"}

// item is one product of an input file, with its line number (1-based).
type item struct {
	Line int
	Req  client.DistributionRequest
}

// lineError is a bad line of an input file: it is reported and skipped.
type lineError struct {
	Line    int    `json:"line"`
	Message string `json:"message"`
}

func (e lineError) String() string { return fmt.Sprintf("line %d: %s", e.Line, e.Message) }

// detectFormat picks the format of a file from its name, then from its
// first non-blank line ('{' means JSON lines).
func detectFormat(name string, data []byte) string {
	switch strings.ToLower(filepath.Ext(name)) {
	case ".csv", ".txt":
		return formatCSV
	case ".jsonl", ".ndjson", ".json":
		return formatJSONL
	}
	for line := range bytes.Lines(data) {
		if t := bytes.TrimSpace(line); len(t) > 0 && !bytes.HasPrefix(t, []byte("#")) {
			if t[0] == '{' {
				return formatJSONL
			}
			return formatCSV
		}
	}
	return formatCSV
}

// parseItems reads the items of an input file. Bad lines are returned as
// lineErrors and skipped; the error is for a file that cannot be read at
// all (unknown format, bad CSV header).
//
// CSV: an optional header row naming columns (see columns, and
// reportColumns, which are ignored); without one, each line holds one
// product key. Blank lines and lines starting with '#'
// are skipped; fields are trimmed. Each line is one record (no quoted
// newlines), so that a bad line never hides the lines after it.
//
// JSON lines: one object per line with the same field names.
func parseItems(data []byte, format string) ([]item, []lineError, error) {
	switch format {
	case formatCSV:
		return parseCSV(data)
	case formatJSONL:
		return parseJSONL(data)
	}
	return nil, nil, usagef("unknown input format %q: want csv or jsonl", format)
}

// lines calls fn with every line that is not blank or a comment.
func lines(data []byte, fn func(n int, line string) error) error {
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	n := 0
	for sc.Scan() {
		n++
		line := strings.TrimSpace(sc.Text())
		if n == 1 {
			line = strings.TrimPrefix(line, "\ufeff") // a BOM from spreadsheet exports
		}
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if err := fn(n, line); err != nil {
			return err
		}
	}
	if err := sc.Err(); err != nil {
		return usagef("line %d: %v", n+1, err)
	}
	return nil
}

func parseCSV(data []byte) ([]item, []lineError, error) {
	var (
		items  []item
		bad    []lineError
		header []string
		first  = true
	)
	err := lines(data, func(n int, line string) error {
		r := csv.NewReader(strings.NewReader(line))
		r.TrimLeadingSpace = true
		rec, err := r.Read()
		if err != nil {
			var pe *csv.ParseError
			if errors.As(err, &pe) {
				err = pe.Err
			}
			if first {
				return usagef("line %d: not CSV: %v", n, err)
			}
			bad = append(bad, lineError{n, fmt.Sprintf("not CSV: %v", err)})
			return nil
		}
		for i := range rec {
			rec[i] = strings.TrimSpace(rec[i])
		}
		if first {
			first = false
			if slices.Contains(rec, "product_key") {
				for i, c := range rec {
					if !slices.Contains(columns, c) && !slices.Contains(reportColumns, c) {
						return usagef("line %d: unknown column %q in the header (known: %s; ignored: %s)", n, c, strings.Join(columns, ", "), strings.Join(reportColumns, ", "))
					}
					if slices.Contains(rec[:i], c) {
						return usagef("line %d: column %q appears twice in the header", n, c)
					}
				}
				header = rec
				return nil
			}
			header = []string{"product_key"}
		}
		if len(rec) != len(header) {
			what := "a product key"
			if len(header) > 1 {
				what = fmt.Sprintf("%d fields (%s)", len(header), strings.Join(header, ","))
			}
			bad = append(bad, lineError{n, fmt.Sprintf("has %d fields, want %s", len(rec), what)})
			return nil
		}
		var req client.DistributionRequest
		for i, c := range header {
			if slices.Contains(columns, c) { // the report columns of --failed-csv are ignored
				*field(&req, c) = rec[i]
			}
		}
		items = append(items, item{Line: n, Req: req})
		return nil
	})
	return items, bad, err
}

// field returns the field of r named by a column.
func field(r *client.DistributionRequest, column string) *string {
	switch column {
	case "product_key":
		return &r.ProductKey
	case "source_instance_id":
		return &r.SourceInstanceID
	case "target_instance_id":
		return &r.TargetInstanceID
	case "target_uid":
		return &r.TargetUID
	case "target_aliyun_id":
		return &r.TargetAliyunID
	case "account":
		return &r.Account
	}
	panic("distqctl: unknown column " + column)
}

func parseJSONL(data []byte) ([]item, []lineError, error) {
	var (
		items []item
		bad   []lineError
	)
	err := lines(data, func(n int, line string) error {
		dec := json.NewDecoder(strings.NewReader(line))
		dec.DisallowUnknownFields()
		var req client.DistributionRequest
		if err := dec.Decode(&req); err != nil {
			bad = append(bad, lineError{n, jsonProblem(err)})
			return nil
		}
		if _, err := dec.Token(); !errors.Is(err, io.EOF) {
			bad = append(bad, lineError{n, "more than one JSON value on the line"})
			return nil
		}
		items = append(items, item{Line: n, Req: req})
		return nil
	})
	return items, bad, err
}

func jsonProblem(err error) string {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		return fmt.Sprintf("not JSON: %v (at byte %d)", se, se.Offset)
	case errors.As(err, &te) && te.Field == "":
		return fmt.Sprintf("want a JSON object, got %s", te.Value)
	case errors.As(err, &te):
		return fmt.Sprintf("field %s: want a %s, got %s", te.Field, te.Type, te.Value)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "not JSON: the object is not closed"
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		return fmt.Sprintf("unknown field %s (known: %s)", strings.TrimPrefix(err.Error(), "json: unknown field "), strings.Join(columns, ", "))
	}
	return "not JSON: " + err.Error()
}

// prepare fills every item from the shared fields, validates it as the API
// would, and reports invalid items and repeats of an earlier line as bad
// lines. It returns the items to send, without the fields the shared ones
// give (the batch's top-level fields fill them on the server).
func prepare(items []item, shared client.DistributionRequest) ([]item, []lineError) {
	var (
		ok   []item
		bad  []lineError
		seen = map[[3]string]int{}
	)
	for _, it := range items {
		r := it.Req
		r.FillFrom(shared)
		if err := r.Validate(); err != nil {
			var ve *client.ValidationError
			msg := err.Error()
			if errors.As(err, &ve) {
				parts := make([]string, len(ve.Fields))
				for i, f := range ve.Fields {
					parts[i] = f.Field + " " + f.Message
				}
				msg = strings.Join(parts, "; ")
			}
			bad = append(bad, lineError{it.Line, msg})
			continue
		}
		key := [3]string{r.Account, r.ProductKey, r.TargetInstanceID}
		if prev, dup := seen[key]; dup {
			bad = append(bad, lineError{it.Line, fmt.Sprintf("product %s to %s repeats line %d", r.ProductKey, r.TargetInstanceID, prev)})
			continue
		}
		seen[key] = it.Line
		ok = append(ok, it)
	}
	return ok, bad
}
