package nuvlatest

import (
	"fmt"
	"sort"
	"strings"
)

// A validator checks one value of a document; path names it in errors.
type validator func(path string, v any) error

type schemaError struct{ msg string }

func (e *schemaError) Error() string { return e.msg }

func schemaErr(path, format string, args ...any) error {
	return &schemaError{msg: path + ": " + fmt.Sprintf(format, args...)}
}

func notNull(path string, v any) error {
	if v == nil {
		return schemaErr(path, "must not be null")
	}
	return nil
}

func vString(path string, v any) error {
	if err := notNull(path, v); err != nil {
		return err
	}
	if _, ok := v.(string); !ok {
		return schemaErr(path, "must be a string, got %s", jsonType(v))
	}
	return nil
}

func vNonBlank(path string, v any) error {
	if err := vString(path, v); err != nil {
		return err
	}
	if strings.TrimSpace(v.(string)) == "" {
		return schemaErr(path, "must not be blank")
	}
	return nil
}

func vBool(path string, v any) error {
	if err := notNull(path, v); err != nil {
		return err
	}
	if _, ok := v.(bool); !ok {
		return schemaErr(path, "must be a boolean, got %s", jsonType(v))
	}
	return nil
}

func vAny(string, any) error { return nil }

func vTimestamp(path string, v any) error {
	if err := vString(path, v); err != nil {
		return err
	}
	if _, ok := parseTime(v.(string)); !ok {
		return schemaErr(path, "must be an ISO-8601 timestamp, got %q", v)
	}
	return nil
}

func vEnum(vals ...string) validator {
	return func(path string, v any) error {
		if err := vString(path, v); err != nil {
			return err
		}
		if !containsStr(vals, v.(string)) {
			return schemaErr(path, "must be one of %s, got %q", strings.Join(vals, ", "), v)
		}
		return nil
	}
}

func vPrefix(prefix string) validator {
	return func(path string, v any) error {
		if err := vString(path, v); err != nil {
			return err
		}
		if !strings.HasPrefix(v.(string), prefix) {
			return schemaErr(path, "must start with %q, got %q", prefix, v)
		}
		return nil
	}
}

// vInt accepts JSON integers >= lo.
func vInt(lo int64) validator {
	return func(path string, v any) error {
		if err := notNull(path, v); err != nil {
			return err
		}
		n, ok := asInt(v)
		if !ok {
			return schemaErr(path, "must be an integer, got %s", jsonType(v))
		}
		if n < lo {
			return schemaErr(path, "must be >= %d, got %d", lo, n)
		}
		return nil
	}
}

func vIntRange(lo, hi int64) validator {
	return func(path string, v any) error {
		if err := vInt(lo)(path, v); err != nil {
			return err
		}
		if n, _ := asInt(v); n > hi {
			return schemaErr(path, "must be <= %d, got %d", hi, n)
		}
		return nil
	}
}

// vNumber accepts any JSON number >= lo.
func vNumber(lo float64) validator {
	return func(path string, v any) error {
		if err := notNull(path, v); err != nil {
			return err
		}
		f, ok := asFloat(v)
		if !ok {
			return schemaErr(path, "must be a number, got %s", jsonType(v))
		}
		if f < lo {
			return schemaErr(path, "must be >= %v, got %v", lo, f)
		}
		return nil
	}
}

// vList checks an array of at least lo items.
func vList(lo int, item validator) validator {
	return func(path string, v any) error {
		if err := notNull(path, v); err != nil {
			return err
		}
		l, ok := v.([]any)
		if !ok {
			return schemaErr(path, "must be an array, got %s", jsonType(v))
		}
		if len(l) < lo {
			return schemaErr(path, "must have at least %d item(s)", lo)
		}
		for i, e := range l {
			if err := item(fmt.Sprintf("%s/%d", path, i), e); err != nil {
				return err
			}
		}
		return nil
	}
}

func vStrings(lo int) validator { return vList(lo, vString) }

// vMap checks an open map: known fields are typed, required must be present.
func vMap(fields map[string]validator, required ...string) validator {
	return func(path string, v any) error {
		if err := notNull(path, v); err != nil {
			return err
		}
		m, ok := v.(map[string]any)
		if !ok {
			return schemaErr(path, "must be a map, got %s", jsonType(v))
		}
		for _, k := range required {
			if _, ok := m[k]; !ok {
				return schemaErr(path, "missing required key %q", k)
			}
		}
		for _, k := range sortedKeys(m) {
			if f, ok := fields[k]; ok {
				if err := f(path+"/"+k, m[k]); err != nil {
					return err
				}
			}
		}
		return nil
	}
}

// closedDoc validates a whole document against a closed schema: unknown
// top-level keys are errors.
func closedDoc(doc map[string]any, fields map[string]validator, required ...string) error {
	for _, k := range required {
		if _, ok := doc[k]; !ok {
			return &schemaError{msg: fmt.Sprintf("missing required key %q", k)}
		}
	}
	for _, k := range sortedKeys(doc) {
		f, ok := fields[k]
		if !ok {
			return &schemaError{msg: fmt.Sprintf("unknown key %q is not allowed", k)}
		}
		if err := f(k, doc[k]); err != nil {
			return err
		}
	}
	return nil
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func jsonType(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case string:
		return "string"
	case bool:
		return "boolean"
	case map[string]any:
		return "map"
	case []any:
		return "array"
	}
	if isNumber(v) {
		return "number"
	}
	return fmt.Sprintf("%T", v)
}

// commonAttrs are the attributes every resource may carry.
func commonAttrs() map[string]validator {
	return map[string]validator{
		"id": vString, "resource-type": vString, "created": vTimestamp, "updated": vTimestamp,
		"created-by": vString, "updated-by": vString, "acl": vMap(nil), "name": vString,
		"description": vString, "tags": vStrings(0), "parent": vString,
		"resource-metadata": vString, "operations": vList(0, vAny),
	}
}

// vAll checks every validator in turn.
func vAll(vs ...validator) validator {
	return func(path string, v any) error {
		for _, f := range vs {
			if err := f(path, v); err != nil {
				return err
			}
		}
		return nil
	}
}

// vNotAbove checks, in a map, that the number at key lo is not above the
// one at key hi (both present).
func vNotAbove(lo, hi string) validator {
	return func(path string, v any) error {
		m, _ := v.(map[string]any)
		a, okA := asFloat(m[lo])
		b, okB := asFloat(m[hi])
		if okA && okB && a > b {
			return schemaErr(path, "%s (%v) must not exceed %s (%v)", lo, a, hi, b)
		}
		return nil
	}
}
