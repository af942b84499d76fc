package client

import (
	"fmt"
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"
)

// ValidationError lists every problem Validate found in a request.
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

var (
	productKeyRE = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)
	instanceRE   = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$`)
	uidRE        = regexp.MustCompile(`^[0-9]{1,32}$`)
)

// maxFieldLen bounds every free-text field.
const maxFieldLen = 128

// Validate checks r as the API checks a request before it knows the
// account, with the same messages: required fields, the shapes of product
// keys, instance ids and UIDs, and source differing from target. It
// returns a *ValidationError listing every problem, or nil. The API checks
// more that only it knows: the account exists, and target_uid is the
// account's own UID.
func (r DistributionRequest) Validate() error {
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
	if len(errs) > 0 {
		return &ValidationError{Fields: errs}
	}
	return nil
}
