package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/labstack/echo/v4"

	"github.com/distq/distq/internal/distribution"
)

// FuzzDecodeDistribution feeds request bodies and media types through what
// the create routes do before they touch Redis: readJSON, the batch items'
// decoding, FillFrom and Validate. Nothing may panic, and every refusal is a
// 4xx *Error with a code and a message.
func FuzzDecodeDistribution(f *testing.F) {
	const uid = "1234567890123456"
	for _, seed := range []struct{ ct, body string }{
		{"application/json", `{"product_key":"a1BwAGV1234","source_instance_id":"iotx-oxssharez200","target_instance_id":"iot-cn-6ja1a2b3c4d"}`},
		{"application/json; charset=utf-8", `{"product_key":"a1X","source_instance_id":"iotx-a","target_instance_id":"iotx-b","target_uid":"1234567890123456"}`},
		{"application/json", `{"product_key":"a1X","source_instance_id":"iotx-a","target_instance_id":"iotx-b","target_aliyun_id":"ops@example.com"}`},
		{"application/json", `{"product_key":"a1X","source_instance_id":"iotx-a","target_instance_id":"iotx-b","target_uid":"999"}`},
		{"application/json", `{"source_instance_id":"iotx-a","target_instance_id":"iotx-b","items":[{"product_key":"a1"},{"product_key":"a2","target_uid":"1"},7,null,"x",{"devices":[]}]}`},
		{"application/json", `{"product_key":"a1X","source_instance_id":"iotx-a","target_instance_id":"iotx-b"}}`},
		{"application/json", `{"product_key":"a1X"} trailing`},
		{"application/json", `{"product_key":`},
		{"application/json", `{"product_key":12}`},
		{"application/json", `{"unknown":true}`},
		{"application/json", `{"product_key":"a1\u0000","source_instance_id":"iotx-a","target_instance_id":"iotx-a"}`},
		{"application/json", "{\"product_key\":\"\xff\xfe\"}"},
		{"application/json", `[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]`},
		{"application/json", `null`},
		{"application/json", ``},
		{"application/json", `{"items":` + strings.Repeat(`[`, 100) + `}`},
		{"application/json", `{"target_aliyun_id":"` + strings.Repeat("x", MaxSingleBody) + `"}`},
		{"text/plain", `{}`},
		{"", `{}`},
		{"application/json; charset", `{}`},
	} {
		f.Add(seed.ct, []byte(seed.body))
	}
	e := echo.New()
	f.Fuzz(func(t *testing.T, ct string, body []byte) {
		read := func(dst any) ([]byte, error) {
			req := httptest.NewRequest(http.MethodPost, "/v1/distributions", bytes.NewReader(body))
			req.Header.Set(echo.HeaderContentType, ct)
			rec := httptest.NewRecorder()
			req.Body = http.MaxBytesReader(rec, req.Body, MaxSingleBody)
			return readJSON(e.NewContext(req, rec), dst)
		}
		refused := func(err error) {
			t.Helper()
			var he *Error
			if !errors.As(err, &he) {
				t.Fatalf("error %T %v is not an *Error", err, err)
			}
			if he.Status < 400 || he.Status >= 500 || he.Code == "" || he.Message == "" {
				t.Fatalf("refusal %+v: want a 4xx with a code and a message", he)
			}
			if _, err := json.Marshal(errorBody{Error: he}); err != nil {
				t.Fatalf("error body does not encode: %v", err)
			}
		}
		validate := func(r distribution.Request) {
			t.Helper()
			err := r.Validate(uid)
			if err != nil {
				var ve *distribution.ValidationError
				if !errors.As(err, &ve) || len(ve.Fields) == 0 {
					t.Fatalf("Validate: %v, want a *ValidationError with fields", err)
				}
				refused(toError(ve))
				return
			}
			if r.ProductKey == "" || r.SourceInstanceID == "" || r.TargetInstanceID == "" {
				t.Fatalf("valid request %+v lacks a required field", r)
			}
			if r.TargetUID != uid && (r.TargetUID != "" || r.TargetAliyunID == "") {
				t.Fatalf("valid request %+v: target_uid must be the account's or absent with target_aliyun_id", r)
			}
		}

		var r distribution.Request
		raw, err := read(&r)
		if err != nil {
			refused(err)
		} else {
			if !bytes.Equal(raw, body) {
				t.Fatalf("readJSON returned %q, want the body", raw)
			}
			validate(r)
		}

		var b batchRequest
		if _, err := read(&b); err != nil {
			refused(err)
			return
		}
		for _, item := range b.Items {
			var it distribution.Request
			dec := json.NewDecoder(bytes.NewReader(item))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&it); err != nil {
				refused(decodeError(err))
				continue
			}
			it.FillFrom(b.Request)
			validate(it)
		}
	})
}
