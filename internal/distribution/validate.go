package distribution

import (
	"fmt"
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Request is what a team asks for: the fields of a distribution it may set.
type Request struct {
	Account          string `json:"account,omitempty"`
	ProductKey       string `json:"product_key"`
	SourceInstanceID string `json:"source_instance_id"`
	TargetInstanceID string `json:"target_instance_id"`
	TargetUID        string `json:"target_uid,omitempty"`
	TargetAliyunID   string `json:"target_aliyun_id,omitempty"`
	// NotifyURL is where the completion event goes (checked by the use
	// cases against the webhook settings, not by Validate). A batch's
	// top-level notify_url is the batch's; an item may not set one.
	NotifyURL string `json:"notify_url,omitempty"`
}

// FillFrom sets every empty field of r from d, for batch items that take
// the batch's top-level fields as defaults.
func (r *Request) FillFrom(d Request) {
	fill := func(dst *string, src string) {
		if *dst == "" {
			*dst = src
		}
	}
	fill(&r.Account, d.Account)
	fill(&r.ProductKey, d.ProductKey)
	fill(&r.SourceInstanceID, d.SourceInstanceID)
	fill(&r.TargetInstanceID, d.TargetInstanceID)
	fill(&r.TargetUID, d.TargetUID)
	fill(&r.TargetAliyunID, d.TargetAliyunID)
}

// FieldError names one field of a request and what is wrong with it.
type FieldError struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

// ValidationError lists every problem found in one request.
type ValidationError struct {
	Fields []FieldError
}

func (e *ValidationError) Error() string {
	parts := make([]string, len(e.Fields))
	for i, f := range e.Fields {
		parts[i] = f.Field + ": " + f.Message
	}
	return "invalid request: " + strings.Join(parts, "; ")
}

// errCrossAccount is the message for a target UID other than the account's own:
// Alibaba refuses cross-account distribution.
var errCrossAccount = "cross-account distribution is not allowed: target_uid must be the account's own UID %s"

var (
	// Product keys are short alphanumeric strings (e.g. a1BwAGV****).
	productKeyRE = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)
	// Instance IDs: public instances (iotx-oxssharez200) and Enterprise
	// Edition ones (iot-cn-6ja…, iot-06z00…).
	instanceRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$`)
	uidRE      = regexp.MustCompile(`^[0-9]{1,32}$`)
)

// maxFieldLen bounds every free-text field.
const maxFieldLen = 128

// Validate checks r for an account whose UID is accountUID, and fills
// TargetUID with the account's UID when neither target is given. It returns
// a *ValidationError listing every problem.
func (r *Request) Validate(accountUID string) error {
	var errs []FieldError
	add := func(field, format string, args ...any) {
		errs = append(errs, FieldError{Field: field, Message: fmt.Sprintf(format, args...)})
	}
	check := func(field, v string, re *regexp.Regexp, what string, required bool) {
		switch {
		case v == "" && required:
			add(field, "is required")
		case v == "":
		case !utf8.ValidString(v) || strings.IndexFunc(v, unicode.IsControl) >= 0:
			add(field, "contains invalid characters")
		case len(v) > maxFieldLen:
			add(field, "is longer than %d bytes", maxFieldLen)
		case !re.MatchString(v):
			add(field, "is not a valid %s", what)
		}
	}
	check("product_key", r.ProductKey, productKeyRE, "product key (letters, digits, '_' or '-', at most 64)", true)
	check("source_instance_id", r.SourceInstanceID, instanceRE, "instance id", true)
	check("target_instance_id", r.TargetInstanceID, instanceRE, "instance id", true)
	check("target_uid", r.TargetUID, uidRE, "UID (digits only)", false)
	if r.TargetAliyunID != "" {
		switch {
		case !utf8.ValidString(r.TargetAliyunID) || strings.IndexFunc(r.TargetAliyunID, unicode.IsControl) >= 0:
			add("target_aliyun_id", "contains invalid characters")
		case len(r.TargetAliyunID) > maxFieldLen:
			add("target_aliyun_id", "is longer than %d bytes", maxFieldLen)
		}
	}
	if r.SourceInstanceID != "" && r.SourceInstanceID == r.TargetInstanceID {
		add("target_instance_id", "must differ from source_instance_id")
	}
	if r.TargetUID != "" && accountUID != "" && r.TargetUID != accountUID {
		add("target_uid", errCrossAccount, accountUID)
	}
	if len(errs) > 0 {
		return &ValidationError{Fields: errs}
	}
	if r.TargetUID == "" && r.TargetAliyunID == "" {
		r.TargetUID = accountUID
	}
	return nil
}
