package main

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/distq/distq/client"
)

func TestParseCSV(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		in        string
		wantItems []item
		wantBad   []lineError
		wantErr   string
	}{{
		name: "one key per line, no header",
		in:   "a1one\n\n# a comment\n  a1two  \n",
		wantItems: []item{
			{Line: 1, Req: client.DistributionRequest{ProductKey: "a1one"}},
			{Line: 4, Req: client.DistributionRequest{ProductKey: "a1two"}},
		},
	}, {
		name: "header with per-row fields",
		in:   "\ufeffproduct_key, target_instance_id ,account\na1one,iot-t1,acme\n\"a1two\",iot-t2,\n",
		wantItems: []item{
			{Line: 2, Req: client.DistributionRequest{ProductKey: "a1one", TargetInstanceID: "iot-t1", Account: "acme"}},
			{Line: 3, Req: client.DistributionRequest{ProductKey: "a1two", TargetInstanceID: "iot-t2"}},
		},
	}, {
		name:      "wrong field counts and a broken quote are bad lines",
		in:        "product_key,target_instance_id\na1one,iot-t1\na1two\na1three,iot-t3,extra\n\"a1four,iot-t4\na1five,iot-t5\n",
		wantItems: []item{{Line: 2, Req: client.DistributionRequest{ProductKey: "a1one", TargetInstanceID: "iot-t1"}}, {Line: 6, Req: client.DistributionRequest{ProductKey: "a1five", TargetInstanceID: "iot-t5"}}},
		wantBad: []lineError{
			{3, "has 1 fields, want 2 fields (product_key,target_instance_id)"},
			{4, "has 3 fields, want 2 fields (product_key,target_instance_id)"},
			{5, `not CSV: extraneous or missing " in quoted-field`},
		},
	}, {
		name:    "unknown header column",
		in:      "product_key,colour\na1one,red\n",
		wantErr: `line 1: unknown column "colour" in the header`,
	}, {
		name: "the report columns of --failed-csv are ignored",
		in: "product_key,source_instance_id,target_instance_id,target_uid,target_aliyun_id,account,outcome,code,message,request_id,line,distribution_id\n" +
			"a1one,iotx-s,iot-t1,,,acme,failed,iot.prod.NotExistedProduct,\"no such product, sorry\",RID-1,7,d_01a2199fe5e4_0000000001\n",
		wantItems: []item{{Line: 2, Req: client.DistributionRequest{ProductKey: "a1one", SourceInstanceID: "iotx-s", TargetInstanceID: "iot-t1", Account: "acme"}}},
	}, {
		name:    "repeated header column",
		in:      "product_key,product_key\n",
		wantErr: `line 1: column "product_key" appears twice`,
	}, {
		name:      "no header, two fields",
		in:        "a1one\na1two,iot-t2\n",
		wantItems: []item{{Line: 1, Req: client.DistributionRequest{ProductKey: "a1one"}}},
		wantBad:   []lineError{{2, "has 2 fields, want a product key"}},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			items, bad, err := parseItems([]byte(tt.in), formatCSV)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.wantItems, items); diff != "" {
				t.Errorf("items (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.wantBad, bad); diff != "" {
				t.Errorf("bad lines (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseJSONL(t *testing.T) {
	t.Parallel()
	in := strings.Join([]string{
		`{"product_key":"a1one","target_instance_id":"iot-t1"}`,
		``,
		`{"product_key":"a1two",`,
		`{"product_key":"a1three","colour":"red"}`,
		`["a1four"]`,
		`{"product_key":5}`,
		`{"product_key":"a1six"} {"product_key":"a1seven"}`,
		`# a comment`,
		`{"product_key":"a1eight","source_instance_id":"iotx-s"}`,
	}, "\n")
	items, bad, err := parseItems([]byte(in), formatJSONL)
	if err != nil {
		t.Fatal(err)
	}
	wantItems := []item{
		{Line: 1, Req: client.DistributionRequest{ProductKey: "a1one", TargetInstanceID: "iot-t1"}},
		{Line: 9, Req: client.DistributionRequest{ProductKey: "a1eight", SourceInstanceID: "iotx-s"}},
	}
	if diff := cmp.Diff(wantItems, items); diff != "" {
		t.Errorf("items (-want +got):\n%s", diff)
	}
	wantBad := []lineError{
		{3, "not JSON: the object is not closed"},
		{4, `unknown field "colour" (known: product_key, source_instance_id, target_instance_id, target_uid, target_aliyun_id, account)`},
		{5, "want a JSON object, got array"},
		{6, "field product_key: want a string, got number"},
		{7, "more than one JSON value on the line"},
	}
	if diff := cmp.Diff(wantBad, bad); diff != "" {
		t.Errorf("bad lines (-want +got):\n%s", diff)
	}
}

func TestDetectFormat(t *testing.T) {
	t.Parallel()
	tests := []struct{ name, data, want string }{
		{"p.csv", `{"product_key":"x"}`, formatCSV}, // the extension wins
		{"p.jsonl", "a1one", formatJSONL},
		{"p.NDJSON", "", formatJSONL},
		{"-", "\n# c\n  {\"product_key\":\"x\"}", formatJSONL},
		{"products", "product_key\na1one", formatCSV},
		{"empty", "", formatCSV},
	}
	for _, tt := range tests {
		if got := detectFormat(tt.name, []byte(tt.data)); got != tt.want {
			t.Errorf("detectFormat(%q, %q) = %s, want %s", tt.name, tt.data, got, tt.want)
		}
	}
}

func TestPrepare(t *testing.T) {
	t.Parallel()
	shared := client.DistributionRequest{SourceInstanceID: "iotx-src", TargetInstanceID: "iot-dst"}
	items := []item{
		{Line: 2, Req: client.DistributionRequest{ProductKey: "a1one"}},
		{Line: 3, Req: client.DistributionRequest{ProductKey: "bad key!"}},
		{Line: 4, Req: client.DistributionRequest{ProductKey: "a1one"}},                            // repeats line 2
		{Line: 5, Req: client.DistributionRequest{ProductKey: "a1one", TargetInstanceID: "iot-2"}}, // another target: fine
		{Line: 6, Req: client.DistributionRequest{ProductKey: "a1six", TargetInstanceID: "iotx-src"}},
		{Line: 7, Req: client.DistributionRequest{ProductKey: "a1seven", TargetUID: "12ab"}},
	}
	ok, bad := prepare(items, shared)
	var lines []int
	for _, it := range ok {
		lines = append(lines, it.Line)
	}
	if diff := cmp.Diff([]int{2, 5}, lines); diff != "" {
		t.Errorf("valid lines (-want +got):\n%s", diff)
	}
	if ok[0].Req.SourceInstanceID != "" {
		t.Errorf("prepare filled an item from the shared fields: %+v; the server does that", ok[0].Req)
	}
	wantBad := []lineError{
		{3, "product_key is not a valid product key (letters, digits, '_' or '-', at most 64)"},
		{4, "product a1one to iot-dst repeats line 2"},
		{6, "target_instance_id must differ from source_instance_id"},
		{7, "target_uid is not a valid UID (digits only)"},
	}
	if diff := cmp.Diff(wantBad, bad); diff != "" {
		t.Errorf("bad lines (-want +got):\n%s", diff)
	}
}

func TestDeriveKey(t *testing.T) {
	t.Parallel()
	a := deriveKey("submit-file/v1", "csv", "a1one\n", "iotx-s")
	if a != deriveKey("submit-file/v1", "csv", "a1one\n", "iotx-s") {
		t.Fatal("the derived key is not stable")
	}
	for _, other := range [][]string{
		{"submit-file/v1", "csv", "a1one\n", "iotx-t"},
		{"submit-file/v1", "csv", "a1one\n\n", "iotx-s"},
		{"submit-file/v1", "csv", "a1one\n", "iotx", "-s"}, // parts are length-prefixed
	} {
		if deriveKey(other...) == a {
			t.Errorf("deriveKey(%q) = the key of other input", other)
		}
	}
	if len(a) > 255 {
		t.Errorf("key %q is longer than the API's 255", a)
	}
}
