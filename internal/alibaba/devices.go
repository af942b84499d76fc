package alibaba

import (
	"bufio"
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"unicode/utf8"

	iot "github.com/alibabacloud-go/iot-20180120/v6/client"
	"github.com/alibabacloud-go/tea/tea"
)

// The device distribution actions distq calls.
const (
	ActionCreateDevices = "CreateDeviceDistributeJob"
	ActionDetail        = "QueryDeviceDistributeDetail"
)

// DeviceActions lists them, for metrics and limits.
var DeviceActions = []string{ActionCreateDevices, ActionDetail}

// MaxDevicesPerJob bounds the device names of one CreateDeviceDistributeJob.
const MaxDevicesPerJob = 10000

// Device distribution strategies of CreateDeviceDistributeJob.
const (
	// StrategySingle distributes every device to the one target instance.
	StrategySingle = 0
	// StrategyNearest distributes each device to the nearest of several
	// target instances.
	StrategyNearest = 1
)

// IsDeviceJob reports whether j is a device distribution job: the remote
// lists both kinds together, and a device job counts its devices in Total
// (a product job's Total is 0).
func IsDeviceJob(j Job) bool { return j.Total > 0 }

// DeviceCreateRequest is what CreateDeviceDistributeJob takes.
type DeviceCreateRequest struct {
	ProductKey, SourceInstanceID string
	// TargetInstanceIDs holds one instance for StrategySingle, one or more
	// for StrategyNearest.
	TargetInstanceIDs []string
	Strategy          int
	// DeviceNames are at most MaxDevicesPerJob names.
	DeviceNames               []string
	TargetUID, TargetAliyunID string
}

// CreateDevicesContext calls CreateDeviceDistributeJob (its parameters go in
// the form body, as the SDK sends them) and returns the JobId and the
// remote RequestId. Errors are *APIError, classified as for
// CreateProductDistributeJob: every outcome that may have reached the
// backend is Ambiguous (a Create is not idempotent). ctx ending abandons
// the call.
func (c *Client) CreateDevicesContext(ctx context.Context, r DeviceCreateRequest) (jobID, requestID string, err error) {
	if len(r.DeviceNames) == 0 || len(r.DeviceNames) > MaxDevicesPerJob {
		return "", "", &APIError{Action: ActionCreateDevices, Code: "InvalidDeviceCount", Class: Permanent,
			Message: fmt.Sprintf("%d device names; a job takes 1 to %d", len(r.DeviceNames), MaxDevicesPerJob)}
	}
	req := &iot.CreateDeviceDistributeJobRequest{
		ProductKey:       tea.String(r.ProductKey),
		SourceInstanceId: tea.String(r.SourceInstanceID),
		Strategy:         tea.Int32(int32(r.Strategy)),
		DeviceName:       tea.StringSlice(r.DeviceNames),
	}
	for _, t := range r.TargetInstanceIDs {
		req.TargetInstanceConfig = append(req.TargetInstanceConfig,
			&iot.CreateDeviceDistributeJobRequestTargetInstanceConfig{TargetInstanceId: tea.String(t)})
	}
	if r.TargetUID != "" {
		req.TargetUid = tea.String(r.TargetUID)
	}
	if r.TargetAliyunID != "" {
		req.TargetAliyunId = tea.String(r.TargetAliyunID)
	}
	sdk := c.sdk(ctx)
	resp, err := sdk.sdk.CreateDeviceDistributeJobWithOptions(req, c.runtime)
	held := notSentError(ActionCreateDevices, sdk, err)
	c.put(sdk)
	if held != nil {
		return "", "", held
	}
	if err != nil {
		return "", "", forCreate(c.codes.fromSDK(ActionCreateDevices, err))
	}
	b := resp.Body
	if b == nil {
		return "", "", forCreate(c.codes.businessError(ActionCreateDevices, "", "empty response body", ""))
	}
	if !tea.BoolValue(b.Success) || tea.StringValue(b.JobId) == "" {
		return "", "", forCreate(c.codes.businessError(ActionCreateDevices, tea.StringValue(b.Code), tea.StringValue(b.ErrorMessage), tea.StringValue(b.RequestId)))
	}
	return tea.StringValue(b.JobId), tea.StringValue(b.RequestId), nil
}

// DetailContext calls QueryDeviceDistributeDetail and returns the URL of the
// job's result file, valid 10 minutes from now. Errors are *APIError.
func (c *Client) DetailContext(ctx context.Context, jobID string) (file string, err error) {
	sdk := c.sdk(ctx)
	resp, err := sdk.sdk.QueryDeviceDistributeDetailWithOptions(&iot.QueryDeviceDistributeDetailRequest{JobId: tea.String(jobID)}, c.runtime)
	c.put(sdk)
	if err != nil {
		return "", c.codes.fromSDK(ActionDetail, err)
	}
	b := resp.Body
	if b == nil {
		return "", c.codes.businessError(ActionDetail, "", "empty response body", "")
	}
	if !tea.BoolValue(b.Success) {
		return "", c.codes.businessError(ActionDetail, tea.StringValue(b.Code), tea.StringValue(b.ErrorMessage), tea.StringValue(b.RequestId))
	}
	if tea.StringValue(b.File) == "" {
		return "", c.codes.businessError(ActionDetail, CodeBadResponse, "no File in the answer", tea.StringValue(b.RequestId))
	}
	return tea.StringValue(b.File), nil
}

// maxResultFile bounds a result file: 10,000 devices of a few hundred bytes
// each fit many times over.
const maxResultFile = 64 << 20

// ErrUnreadable is wrapped by the errors of a result file that was
// downloaded but could not be read as per-device results: its format is not
// documented, and a file distq cannot read says nothing about the
// distribution itself.
var ErrUnreadable = errors.New("result file unreadable")

// DownloadError is a failed download of a result file: no answer, or an
// HTTP status other than 200 (Expired: 403, as an expired signed URL
// answers). Asking QueryDeviceDistributeDetail again gives a fresh URL.
type DownloadError struct {
	Status  int
	Expired bool
	Err     error
}

func (e *DownloadError) Error() string {
	if e.Status != 0 {
		return fmt.Sprintf("download result file: HTTP %d: %v", e.Status, e.Err)
	}
	return fmt.Sprintf("download result file: %v", e.Err)
}

func (e *DownloadError) Unwrap() error { return e.Err }

// Download fetches a result file (a URL QueryDeviceDistributeDetail gave)
// and parses it with ParseDeviceResults. Errors are *DownloadError, or wrap
// ErrUnreadable. ctx bounds the download.
func (c *Client) Download(ctx context.Context, file string) ([]DeviceResult, error) {
	u, err := url.Parse(file)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("result file URL %q: not an http(s) URL: %w", file, ErrUnreadable)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, &DownloadError{Err: err}
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, &DownloadError{Err: err}
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
		return nil, &DownloadError{Status: resp.StatusCode, Expired: resp.StatusCode == http.StatusForbidden,
			Err: errors.New(strings.TrimSpace(string(b)))}
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxResultFile+1))
	if err != nil {
		return nil, &DownloadError{Status: resp.StatusCode, Err: err}
	}
	if len(body) > maxResultFile {
		return nil, fmt.Errorf("result file larger than %d bytes: %w", maxResultFile, ErrUnreadable)
	}
	return ParseDeviceResults(body)
}

// DeviceCodeOK is the Code of a device that was distributed.
const DeviceCodeOK = "200"

// DeviceResult is one device's line of a result file.
type DeviceResult struct {
	DeviceName string
	// Code is DeviceCodeOK when the device was distributed, else the
	// remote's code for why not.
	Code             string
	Message          string
	TargetInstanceID string
}

// Distributed reports whether the device was distributed.
func (r DeviceResult) Distributed() bool { return r.Code == DeviceCodeOK }

// column maps a normalised column or key name to the field it fills; every
// other name is ignored.
func column(name string) string {
	n := strings.Map(func(r rune) rune {
		switch r {
		case '_', '-', ' ', '.':
			return -1
		}
		return r
	}, strings.ToLower(strings.TrimSpace(name)))
	switch n {
	case "devicename", "device", "name", "iotdevicename":
		return "name"
	case "code", "resultcode", "statuscode", "errorcode", "errcode":
		return "code"
	case "message", "errormessage", "errmessage", "msg", "errmsg", "resultmessage":
		return "message"
	case "targetinstanceid", "targetinstance", "instanceid":
		return "target"
	case "success", "succeeded":
		return "success"
	}
	return ""
}

// ParseDeviceResults reads a result file whose format is not documented, as
// tolerantly as it can: JSON lines (one object per line), a JSON array of
// objects or an object wrapping one, or CSV (comma, semicolon or tab
// separated) with a header line. Column and key names are matched without
// regard to case, '_', '-' or spaces (DeviceName, device_name, deviceName…;
// Code, ResultCode…; Message, ErrorMessage…); unknown ones are ignored. A
// Code may be a number or a string; a record with a boolean Success and no
// Code counts as 200 when true. An empty file lists no device. A file with
// no readable device name and code in some record wraps ErrUnreadable.
func ParseDeviceResults(body []byte) ([]DeviceResult, error) {
	body = bytes.TrimPrefix(body, []byte("\xef\xbb\xbf"))
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) == 0 {
		return nil, nil
	}
	if !utf8.Valid(trimmed) {
		return nil, fmt.Errorf("not UTF-8 text: %w", ErrUnreadable)
	}
	if trimmed[0] == '{' || trimmed[0] == '[' {
		return parseJSONResults(trimmed)
	}
	return parseCSVResults(trimmed)
}

func parseJSONResults(body []byte) ([]DeviceResult, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var out []DeviceResult
	for n := 1; ; n++ {
		var v any
		err := dec.Decode(&v)
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("JSON value %d: %v: %w", n, err, ErrUnreadable)
		}
		rs, err := jsonRecords(v)
		if err != nil {
			return nil, fmt.Errorf("JSON value %d: %w", n, err)
		}
		out = append(out, rs...)
	}
}

// jsonRecords reads one JSON value: a device object, an array of them, or
// an object wrapping such an array (under any key).
func jsonRecords(v any) ([]DeviceResult, error) {
	switch t := v.(type) {
	case []any:
		var out []DeviceResult
		for i, e := range t {
			rs, err := jsonRecords(e)
			if err != nil {
				return nil, fmt.Errorf("item %d: %w", i, err)
			}
			out = append(out, rs...)
		}
		return out, nil
	case map[string]any:
		fields := map[string]string{}
		var nested []any
		for k, val := range t {
			switch x := val.(type) {
			case []any:
				nested = append(nested, x)
			case map[string]any:
				nested = append(nested, x)
			default:
				if f := column(k); f != "" {
					fields[f] = scalar(val)
				}
			}
		}
		if fields["name"] == "" && len(nested) > 0 {
			var out []DeviceResult
			for _, n := range nested {
				rs, err := jsonRecords(n)
				if err != nil {
					return nil, err
				}
				out = append(out, rs...)
			}
			return out, nil
		}
		r, err := record(fields)
		if err != nil {
			return nil, err
		}
		return []DeviceResult{r}, nil
	}
	return nil, fmt.Errorf("not an object: %w", ErrUnreadable)
}

// scalar renders a JSON scalar as text.
func scalar(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case json.Number:
		if n, err := x.Int64(); err == nil {
			return strconv.FormatInt(n, 10)
		}
		return x.String()
	case bool:
		return strconv.FormatBool(x)
	case nil:
		return ""
	}
	return fmt.Sprint(v)
}

// record builds a DeviceResult from the fields of one record.
func record(f map[string]string) (DeviceResult, error) {
	r := DeviceResult{DeviceName: strings.TrimSpace(f["name"]), Code: strings.TrimSpace(f["code"]),
		Message: f["message"], TargetInstanceID: f["target"]}
	if r.Code == "" {
		switch strings.ToLower(strings.TrimSpace(f["success"])) {
		case "true", "1":
			r.Code = DeviceCodeOK
		case "false", "0":
			r.Code = "Failed"
		}
	}
	if r.DeviceName == "" || r.Code == "" {
		return r, fmt.Errorf("a record without a device name or a code: %w", ErrUnreadable)
	}
	return r, nil
}

func parseCSVResults(body []byte) ([]DeviceResult, error) {
	first, _, _ := bytes.Cut(body, []byte("\n"))
	sep := ','
	for _, c := range []rune{'\t', ';'} {
		if bytes.Count(first, []byte(string(c))) > bytes.Count(first, []byte(string(sep))) {
			sep = c
		}
	}
	cr := csv.NewReader(bufio.NewReader(bytes.NewReader(body)))
	cr.Comma = sep
	cr.FieldsPerRecord = -1
	cr.LazyQuotes = true
	header, err := cr.Read()
	if err != nil {
		return nil, fmt.Errorf("CSV header: %v: %w", err, ErrUnreadable)
	}
	cols := make([]string, len(header))
	has := map[string]bool{}
	for i, h := range header {
		cols[i] = column(h)
		has[cols[i]] = true
	}
	if !has["name"] || !has["code"] && !has["success"] {
		return nil, fmt.Errorf("CSV header %q names no device name and code columns: %w", header, ErrUnreadable)
	}
	var out []DeviceResult
	for line := 2; ; line++ {
		row, err := cr.Read()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("CSV line %d: %v: %w", line, err, ErrUnreadable)
		}
		if len(row) == 1 && strings.TrimSpace(row[0]) == "" {
			continue
		}
		fields := map[string]string{}
		for i, v := range row {
			if i < len(cols) && cols[i] != "" {
				fields[cols[i]] = v
			}
		}
		r, err := record(fields)
		if err != nil {
			return nil, fmt.Errorf("CSV line %d: %w", line, err)
		}
		out = append(out, r)
	}
}
