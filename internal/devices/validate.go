package devices

import (
	"fmt"
	"regexp"
	"slices"

	"github.com/distq/distq/internal/distribution"
)

// Request is what a team asks for: one product's devices, from one
// instance to one target instance (strategy "single") or to the nearest of
// several (strategy "nearest").
type Request struct {
	Account          string `json:"account,omitempty"`
	ProductKey       string `json:"product_key"`
	SourceInstanceID string `json:"source_instance_id"`
	// TargetInstanceID is the one target of strategy "single"; or else
	// TargetInstanceIDs, the targets of strategy "nearest".
	TargetInstanceID  string   `json:"target_instance_id,omitempty"`
	TargetInstanceIDs []string `json:"target_instance_ids,omitempty"`
	Strategy          Strategy `json:"strategy,omitempty"`
	TargetUID         string   `json:"target_uid,omitempty"`
	TargetAliyunID    string   `json:"target_aliyun_id,omitempty"`
	DeviceNames       []string `json:"device_names"`
	// NotifyURL is where the device_distribution.finished event goes (the
	// service checks it like a distribution's notify_url).
	NotifyURL string `json:"notify_url,omitempty"`
}

// deviceNameRE is the remote's rule for device names: 4 to 32 characters,
// letters, digits and '-', '_', '@', '.', ':'.
var deviceNameRE = regexp.MustCompile(`^[A-Za-z0-9_.:@-]{4,32}$`)

// ValidDeviceName reports whether name follows the remote's device-name rule.
func ValidDeviceName(name string) bool { return deviceNameRE.MatchString(name) }

// maxNameErrors bounds the device-name problems one refusal lists.
const maxNameErrors = 20

// Validate checks r for an account whose UID is accountUID. It fills
// Strategy ("single" unless given), TargetInstanceIDs (from
// TargetInstanceID for "single") and TargetUID (the account's, when
// neither target account is given). It returns a
// *distribution.ValidationError listing the problems: the product and
// instance fields as a product distribution's, every device name against
// the remote's rule (the first 20 bad ones by index), and duplicates (a
// name is sent once). More than MaxDevices names is for the caller to
// refuse before (TooMany reports it).
func (r *Request) Validate(accountUID string) error {
	var errs []distribution.FieldError
	add := func(field, format string, args ...any) {
		errs = append(errs, distribution.FieldError{Field: field, Message: fmt.Sprintf(format, args...)})
	}
	switch r.Strategy {
	case "":
		if r.TargetInstanceID == "" && len(r.TargetInstanceIDs) > 1 {
			add("strategy", `must be "nearest" to name several target instances`)
			break
		}
		r.Strategy = StrategySingle
	case StrategySingle, StrategyNearest:
	default:
		add("strategy", `must be "single" or "nearest", got %q`, r.Strategy)
	}
	targets := r.TargetInstanceIDs
	switch {
	case r.TargetInstanceID != "" && len(targets) > 0:
		add("target_instance_ids", "give target_instance_id or target_instance_ids, not both")
	case r.TargetInstanceID != "":
		targets = []string{r.TargetInstanceID}
	case len(targets) == 0:
		add("target_instance_id", "is required (or target_instance_ids with strategy \"nearest\")")
	}
	if r.Strategy == StrategySingle && len(targets) > 1 {
		add("target_instance_ids", `strategy "single" takes one target instance; use "nearest" for several`)
	}
	if len(targets) > MaxTargets {
		add("target_instance_ids", "at most %d target instances", MaxTargets)
	}
	// The product and instance fields follow a product distribution's
	// rules: the shared ones once, each target on its own.
	base := distribution.Request{ProductKey: r.ProductKey, SourceInstanceID: r.SourceInstanceID,
		TargetUID: r.TargetUID, TargetAliyunID: r.TargetAliyunID, TargetInstanceID: "placeholder-target"}
	collect(&errs, base.Validate(accountUID), func(f string) (string, bool) { return f, f != "target_instance_id" })
	for i, t := range targets {
		field := "target_instance_id"
		if r.TargetInstanceID == "" {
			field = fmt.Sprintf("target_instance_ids[%d]", i)
		}
		q := base
		q.TargetInstanceID = t
		collect(&errs, q.Validate(accountUID), func(f string) (string, bool) { return field, f == "target_instance_id" })
		if slices.Contains(targets[:i], t) {
			add(field, "names target instance %q twice", t)
		}
	}
	errs = append(errs, checkNames(r.DeviceNames)...)
	if len(errs) > 0 {
		return &distribution.ValidationError{Fields: errs}
	}
	r.TargetInstanceIDs, r.TargetInstanceID = targets, ""
	if r.TargetUID == "" && r.TargetAliyunID == "" {
		r.TargetUID = accountUID
	}
	return nil
}

// collect appends the fields of a product request's validation error that
// keep says to keep, under the name keep gives.
func collect(errs *[]distribution.FieldError, err error, keep func(field string) (string, bool)) {
	ve, ok := err.(*distribution.ValidationError)
	if !ok {
		return
	}
	for _, f := range ve.Fields {
		if name, ok := keep(f.Field); ok {
			f.Field = name
			*errs = append(*errs, f)
		}
	}
}

// checkNames checks device names: at least one, each by the remote's rule,
// none twice.
func checkNames(names []string) []distribution.FieldError {
	if len(names) == 0 {
		return []distribution.FieldError{{Field: "device_names", Message: "is required: at least one device name"}}
	}
	var errs []distribution.FieldError
	bad := 0
	seen := make(map[string]int, len(names))
	for i, n := range names {
		msg := ""
		if !ValidDeviceName(n) {
			msg = "is not a valid device name (4 to 32 of letters, digits, '-', '_', '@', '.', ':')"
		} else if first, dup := seen[n]; dup {
			msg = fmt.Sprintf("repeats device_names[%d] %q: each device is sent once", first, n)
		} else {
			seen[n] = i
			continue
		}
		if bad++; bad <= maxNameErrors {
			errs = append(errs, distribution.FieldError{Field: fmt.Sprintf("device_names[%d]", i), Message: msg})
		}
	}
	if bad > maxNameErrors {
		errs = append(errs, distribution.FieldError{Field: "device_names",
			Message: fmt.Sprintf("%d device names are invalid or repeated; the first %d are listed", bad, maxNameErrors)})
	}
	return errs
}
