package distribution

import (
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"
)

const uid = "1234567890123456"

func valid() Request {
	return Request{ProductKey: "a1BwAGV1234", SourceInstanceID: "iotx-oxssharez200", TargetInstanceID: "iot-cn-6ja1a2b3c4d"}
}

func with(f func(r *Request)) Request {
	r := valid()
	f(&r)
	return r
}

func TestValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		req  Request
		// want is the request after Validate when it is valid.
		want *Request
		// errs lists every problem when it is not.
		errs []FieldError
	}{
		{name: "minimal: target is the account's UID", req: valid(),
			want: new(with(func(r *Request) { r.TargetUID = uid }))},
		{name: "target_uid the account's", req: with(func(r *Request) { r.TargetUID = uid }),
			want: new(with(func(r *Request) { r.TargetUID = uid }))},
		{name: "target_aliyun_id alone", req: with(func(r *Request) { r.TargetAliyunID = "ops@example.com" }),
			want: new(with(func(r *Request) { r.TargetAliyunID = "ops@example.com" }))},
		{name: "both targets", req: with(func(r *Request) { r.TargetUID, r.TargetAliyunID = uid, "ops@example.com" }),
			want: new(with(func(r *Request) { r.TargetUID, r.TargetAliyunID = uid, "ops@example.com" }))},
		{name: "account name is not checked here", req: with(func(r *Request) { r.Account = "main" }),
			want: new(with(func(r *Request) { r.Account, r.TargetUID = "main", uid }))},
		{name: "longest product key and instance ids", req: with(func(r *Request) {
			r.ProductKey, r.SourceInstanceID, r.TargetInstanceID = strings.Repeat("p", 64), strings.Repeat("s", 64), strings.Repeat("t", 64)
		}), want: new(with(func(r *Request) {
			r.ProductKey, r.SourceInstanceID, r.TargetInstanceID, r.TargetUID = strings.Repeat("p", 64), strings.Repeat("s", 64), strings.Repeat("t", 64), uid
		}))},
		{name: "everything missing", req: Request{}, errs: []FieldError{
			{"product_key", "is required"}, {"source_instance_id", "is required"}, {"target_instance_id", "is required"},
		}},
		{name: "product key too long for the pattern", req: with(func(r *Request) { r.ProductKey = strings.Repeat("p", 65) }),
			errs: []FieldError{{"product_key", "is not a valid product key (letters, digits, '_' or '-', at most 64)"}}},
		{name: "product key over the byte limit", req: with(func(r *Request) { r.ProductKey = strings.Repeat("p", 129) }),
			errs: []FieldError{{"product_key", "is longer than 128 bytes"}}},
		{name: "product key with a space", req: with(func(r *Request) { r.ProductKey = "a1 X" }),
			errs: []FieldError{{"product_key", "is not a valid product key (letters, digits, '_' or '-', at most 64)"}}},
		{name: "product key with NUL", req: with(func(r *Request) { r.ProductKey = "a1\x00" }),
			errs: []FieldError{{"product_key", "contains invalid characters"}}},
		{name: "product key not UTF-8", req: with(func(r *Request) { r.ProductKey = "a1\xff" }),
			errs: []FieldError{{"product_key", "contains invalid characters"}}},
		{name: "instance id starting with a dash", req: with(func(r *Request) { r.SourceInstanceID = "-iotx" }),
			errs: []FieldError{{"source_instance_id", "is not a valid instance id"}}},
		{name: "instance id with a newline", req: with(func(r *Request) { r.TargetInstanceID = "iotx-b\n" }),
			errs: []FieldError{{"target_instance_id", "contains invalid characters"}}},
		{name: "same source and target", req: with(func(r *Request) { r.TargetInstanceID = r.SourceInstanceID }),
			errs: []FieldError{{"target_instance_id", "must differ from source_instance_id"}}},
		{name: "cross-account", req: with(func(r *Request) { r.TargetUID = "999999" }),
			errs: []FieldError{{"target_uid", "cross-account distribution is not allowed: target_uid must be the account's own UID " + uid}}},
		{name: "cross-account with target_aliyun_id too", req: with(func(r *Request) { r.TargetUID, r.TargetAliyunID = "999999", "ops" }),
			errs: []FieldError{{"target_uid", "cross-account distribution is not allowed: target_uid must be the account's own UID " + uid}}},
		{name: "target_uid not digits", req: with(func(r *Request) { r.TargetUID = "12ab" }), errs: []FieldError{
			{"target_uid", "is not a valid UID (digits only)"},
			{"target_uid", "cross-account distribution is not allowed: target_uid must be the account's own UID " + uid},
		}},
		{name: "target_aliyun_id over the byte limit", req: with(func(r *Request) { r.TargetAliyunID = strings.Repeat("x", 129) }),
			errs: []FieldError{{"target_aliyun_id", "is longer than 128 bytes"}}},
		{name: "target_aliyun_id with a control character", req: with(func(r *Request) { r.TargetAliyunID = "ops\x7f" }),
			errs: []FieldError{{"target_aliyun_id", "contains invalid characters"}}},
		{name: "every problem at once", req: Request{ProductKey: "a b", SourceInstanceID: "x", TargetInstanceID: "x", TargetUID: "1", TargetAliyunID: "\t"}, errs: []FieldError{
			{"product_key", "is not a valid product key (letters, digits, '_' or '-', at most 64)"},
			{"target_aliyun_id", "contains invalid characters"},
			{"target_instance_id", "must differ from source_instance_id"},
			{"target_uid", "cross-account distribution is not allowed: target_uid must be the account's own UID " + uid},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := tt.req
			err := got.Validate(uid)
			if tt.want != nil {
				if err != nil {
					t.Fatalf("Validate: %v, want nil", err)
				}
				if diff := cmp.Diff(*tt.want, got); diff != "" {
					t.Errorf("request after Validate (-want +got):\n%s", diff)
				}
				return
			}
			ve, ok := err.(*ValidationError)
			if !ok {
				t.Fatalf("Validate: %v, want a *ValidationError", err)
			}
			if diff := cmp.Diff(tt.errs, ve.Fields); diff != "" {
				t.Errorf("fields (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.req, got); diff != "" {
				t.Errorf("an invalid request was changed (-before +after):\n%s", diff)
			}
			if msg := ve.Error(); !strings.HasPrefix(msg, "invalid request: "+tt.errs[0].Field+": ") {
				t.Errorf("message %q", msg)
			}
		})
	}
}

func TestFillFrom(t *testing.T) {
	t.Parallel()
	defaults := Request{Account: "main", ProductKey: "a1Default", SourceInstanceID: "iotx-src", TargetInstanceID: "iotx-dst", TargetUID: uid, TargetAliyunID: "ops"}
	own := Request{Account: "other", ProductKey: "a1Own", SourceInstanceID: "iotx-a", TargetInstanceID: "iotx-b", TargetUID: "42", TargetAliyunID: "me"}
	tests := []struct {
		name           string
		item, defaults Request
		want           Request
	}{
		{name: "empty item takes every default", item: Request{}, defaults: defaults, want: defaults},
		{name: "full item keeps its own", item: own, defaults: defaults, want: own},
		{name: "no defaults", item: Request{ProductKey: "a1Own"}, defaults: Request{}, want: Request{ProductKey: "a1Own"}},
		{name: "both empty", want: Request{}},
		{name: "partial item", item: Request{ProductKey: "a1Own", TargetAliyunID: "me"}, defaults: defaults,
			want: Request{Account: "main", ProductKey: "a1Own", SourceInstanceID: "iotx-src", TargetInstanceID: "iotx-dst", TargetUID: uid, TargetAliyunID: "me"}},
		{name: "partial defaults", item: Request{ProductKey: "a1Own"}, defaults: Request{SourceInstanceID: "iotx-src", TargetInstanceID: "iotx-dst"},
			want: Request{ProductKey: "a1Own", SourceInstanceID: "iotx-src", TargetInstanceID: "iotx-dst"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := tt.item
			got.FillFrom(tt.defaults)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("FillFrom (-want +got):\n%s", diff)
			}
		})
	}
}

// FuzzValidate checks that Validate never panics, and that what it accepts
// has every required field, no control characters, and a target in the
// account: target_uid the account's UID, or empty with target_aliyun_id.
func FuzzValidate(f *testing.F) {
	f.Add(uid, "", "a1BwAGV1234", "iotx-oxssharez200", "iot-cn-6ja1a2b3c4d", "", "")
	f.Add(uid, "main", "a1X", "iotx-a", "iotx-b", uid, "")
	f.Add(uid, "", "a1X", "iotx-a", "iotx-b", "", "ops@example.com")
	f.Add(uid, "", "a1X", "iotx-a", "iotx-b", "999", "ops@example.com")
	f.Add(uid, "", "a1X", "iotx-a", "iotx-a", "", "")
	f.Add(uid, "", "", "", "", "", "")
	f.Add(uid, "", "a1\x00", "iotx-\n", "iot\xff", "12ab", "\t")
	f.Add(uid, "", strings.Repeat("p", 200), strings.Repeat("s", 65), "-x", "0", strings.Repeat("x", 129))
	f.Add("42", "", "a1X", "iotx-a", "iotx-b", "042", "")
	f.Add("not digits", "", "a1X", "iotx-a", "iotx-b", "", "")
	f.Fuzz(func(t *testing.T, accountUID, account, pk, src, dst, targetUID, aliyunID string) {
		// Configuration refuses an account without a numeric UID.
		if accountUID == "" || strings.Trim(accountUID, "0123456789") != "" {
			t.Skip()
		}
		r := Request{Account: account, ProductKey: pk, SourceInstanceID: src, TargetInstanceID: dst, TargetUID: targetUID, TargetAliyunID: aliyunID}
		in := r
		err := r.Validate(accountUID)
		if err != nil {
			ve, ok := err.(*ValidationError)
			if !ok || len(ve.Fields) == 0 {
				t.Fatalf("Validate: %v, want a *ValidationError with fields", err)
			}
			if r != in {
				t.Fatalf("an invalid request was changed: %+v -> %+v", in, r)
			}
			_ = ve.Error()
			return
		}
		if r.ProductKey == "" || r.SourceInstanceID == "" || r.TargetInstanceID == "" {
			t.Fatalf("valid %+v lacks a required field", r)
		}
		if r.SourceInstanceID == r.TargetInstanceID {
			t.Fatalf("valid %+v distributes an instance to itself", r)
		}
		if r.TargetUID != accountUID && (r.TargetUID != "" || r.TargetAliyunID == "") {
			t.Fatalf("valid %+v: target_uid must be %s, or empty with target_aliyun_id", r, accountUID)
		}
		for _, v := range []string{r.ProductKey, r.SourceInstanceID, r.TargetInstanceID, r.TargetUID, r.TargetAliyunID} {
			if !utf8.ValidString(v) || strings.IndexFunc(v, unicode.IsControl) >= 0 || len(v) > 128 {
				t.Fatalf("valid %+v has a field with invalid characters or over 128 bytes: %q", r, v)
			}
		}
		if r.Account != in.Account || r.ProductKey != in.ProductKey || r.SourceInstanceID != in.SourceInstanceID ||
			r.TargetInstanceID != in.TargetInstanceID || r.TargetAliyunID != in.TargetAliyunID {
			t.Fatalf("Validate changed more than target_uid: %+v -> %+v", in, r)
		}
	})
}

// The ids of a batch's items are valid, distinct, and sort in the order
// they were made, up to the largest batch.
func TestNewIDsSortInOrder(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, n := range []int{1, 2, 10000} {
		ids := NewIDs(now, n)
		if len(ids) != n {
			t.Fatalf("NewIDs(%d): %d ids", n, len(ids))
		}
		for i, id := range ids {
			if !ValidID(KindDistribution, id) || id < IDFloor(KindDistribution, now) || id >= IDFloor(KindDistribution, now.Add(time.Millisecond)) {
				t.Fatalf("id %q is not a distribution id of %v", id, now)
			}
			if i > 0 && ids[i-1] >= id {
				t.Fatalf("ids %d and %d: %q then %q, want increasing", i-1, i, ids[i-1], id)
			}
		}
	}
}
