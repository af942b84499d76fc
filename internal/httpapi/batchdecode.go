package httpapi

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"reflect"

	"github.com/labstack/echo/v4"

	"github.com/distq/distq/internal/distribution"
)

// batchBody is a batch request as read by readBatch.
type batchBody struct {
	// Raw is the body as received, for the Idempotency-Key hash.
	Raw []byte
	// Defaults are the top-level fields, which fill what an item leaves out.
	Defaults distribution.Request
	// Items are the decoded items, in order; ItemErrors[i] is set (and
	// Items[i] is empty) when item i did not decode.
	Items      []distribution.Request
	ItemErrors []*Error
}

var requestNames = jsonNames(reflect.TypeFor[distribution.Request]())

// readBatch reads a batch body and decodes it as a stream: the items array
// is walked item by item and reading stops at item MaxBatchItems+1 with a
// 413, so a body of millions of tiny items (`{"items":[0,0,…]}`) costs the
// 8 MiB of the body and no more than MaxBatchItems decoded items, instead
// of a slice of millions. The checks are readJSON's (media type, UTF-8,
// unknown, duplicate or case-folded keys, trailing data), for the top
// level and each item; an item that does not decode is an item error,
// not a refusal of the batch.
func readBatch(c echo.Context) (*batchBody, error) {
	raw, err := readBody(c)
	if err != nil {
		return nil, err
	}
	release, err := acquireDecode(c.Request().Context())
	if err != nil {
		return nil, err
	}
	defer release()
	b := &batchBody{Raw: raw}
	dec := json.NewDecoder(bytes.NewReader(raw))
	if t, err := dec.Token(); err != nil {
		return nil, decodeError(err)
	} else if t != json.Delim('{') {
		return nil, errorf(http.StatusBadRequest, "malformed_json", "want a JSON object with an items array")
	}
	seen := map[string]bool{}
	defaults := []byte{'{'}
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return nil, decodeError(err)
		}
		key := t.(string)
		names := requestNames
		if key == "items" {
			names = nil
		}
		if e := checkKey(key, seen, names); e != nil {
			return nil, e
		}
		if key == "items" {
			if err := b.readItems(dec); err != nil {
				return nil, err
			}
			continue
		}
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, decodeError(err)
		}
		if e := checkUTF8(key, v); e != nil {
			return nil, e
		}
		k, _ := json.Marshal(key)
		if len(defaults) > 1 {
			defaults = append(defaults, ',')
		}
		defaults = append(append(append(defaults, k...), ':'), v...)
	}
	if _, err := dec.Token(); err != nil { // the closing brace
		return nil, decodeError(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errorf(http.StatusBadRequest, "malformed_json", "unexpected data after the JSON object")
	}
	d := json.NewDecoder(bytes.NewReader(append(defaults, '}')))
	d.DisallowUnknownFields()
	if err := d.Decode(&b.Defaults); err != nil {
		return nil, decodeError(err)
	}
	return b, nil
}

// readItems reads the items array from dec, stopping past MaxBatchItems.
func (b *batchBody) readItems(dec *json.Decoder) error {
	t, err := dec.Token()
	if err != nil {
		return decodeError(err)
	}
	if t == nil { // "items": null, no items
		return nil
	}
	if t != json.Delim('[') {
		e := errorf(http.StatusBadRequest, "malformed_json", "field items: want an array of objects")
		e.Details = append(e.Details, map[string]string{"field": "items", "message": "want an array"})
		return e
	}
	for dec.More() {
		if len(b.Items) == MaxBatchItems {
			return errorf(http.StatusRequestEntityTooLarge, "too_many_items", "a batch holds at most %d items, got more: split it", MaxBatchItems)
		}
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return decodeError(err)
		}
		var item distribution.Request
		var ie *Error
		d := json.NewDecoder(bytes.NewReader(raw))
		d.DisallowUnknownFields()
		if err := d.Decode(&item); err != nil {
			ie = decodeError(err)
		} else {
			ie = checkKeys(raw, requestNames)
		}
		if ie != nil {
			item = distribution.Request{}
		}
		b.Items = append(b.Items, item)
		b.ItemErrors = append(b.ItemErrors, ie)
	}
	if _, err := dec.Token(); err != nil { // the closing bracket
		return decodeError(err)
	}
	return nil
}
