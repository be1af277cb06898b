package nuvlatest

import (
	"regexp"
	"strconv"
	"strings"
	"time"
)

// evalEnv carries what evaluation needs besides the document.
type evalEnv struct {
	now time.Time
}

// match implements Elasticsearch semantics on the stored document: a path
// through arrays collects every element, a comparison matches if any value
// does, "!=" is the negation of "=", null means absent.
func (c *compNode) match(doc map[string]any, env *evalEnv) bool {
	vals := collect(doc, c.path)
	if !c.list && c.value.kind == fNull {
		switch c.op {
		case "=":
			return len(vals) == 0
		case "!=":
			return len(vals) != 0
		}
		return false
	}
	var candidates []filterValue
	if c.list {
		candidates = c.values
	} else {
		candidates = []filterValue{c.value}
	}
	anyMatch := func(pred func(v any, f filterValue) bool) bool {
		for _, v := range vals {
			for _, f := range candidates {
				if pred(v, f) {
					return true
				}
			}
		}
		return false
	}
	switch c.op {
	case "=":
		return anyMatch(func(v any, f filterValue) bool { return compare(v, f, env) == 0 })
	case "!=":
		return !anyMatch(func(v any, f filterValue) bool { return compare(v, f, env) == 0 })
	case "<":
		return anyMatch(func(v any, f filterValue) bool { return ordered(v, f, env, func(c int) bool { return c < 0 }) })
	case "<=":
		return anyMatch(func(v any, f filterValue) bool { return ordered(v, f, env, func(c int) bool { return c <= 0 }) })
	case ">":
		return anyMatch(func(v any, f filterValue) bool { return ordered(v, f, env, func(c int) bool { return c > 0 }) })
	case ">=":
		return anyMatch(func(v any, f filterValue) bool { return ordered(v, f, env, func(c int) bool { return c >= 0 }) })
	case "^=":
		return anyMatch(func(v any, f filterValue) bool {
			s, ok := v.(string)
			return ok && strings.HasPrefix(s, f.s)
		})
	case "==":
		return anyMatch(func(v any, f filterValue) bool {
			s, ok := v.(string)
			return ok && strings.Contains(strings.ToLower(s), strings.ToLower(f.s))
		})
	}
	return false
}

// collect returns the non-null values at path, flattening arrays.
func collect(v any, path []string) []any {
	if len(path) == 0 {
		switch x := v.(type) {
		case nil:
			return nil
		case []any:
			var out []any
			for _, e := range x {
				out = append(out, collect(e, nil)...)
			}
			return out
		}
		return []any{v}
	}
	switch x := v.(type) {
	case map[string]any:
		return collect(x[path[0]], path[1:])
	case []any:
		var out []any
		for _, e := range x {
			out = append(out, collect(e, path)...)
		}
		return out
	}
	return nil
}

// uncomparable is returned by compare when types do not match.
const uncomparable = 2

func ordered(v any, f filterValue, env *evalEnv, ok func(int) bool) bool {
	c := compare(v, f, env)
	return c != uncomparable && ok(c)
}

// compare orders a document value against a filter value: -1, 0, 1, or
// uncomparable.
func compare(v any, f filterValue, env *evalEnv) int {
	switch f.kind {
	case fBool:
		b, ok := v.(bool)
		if !ok {
			return uncomparable
		}
		if b == f.b {
			return 0
		}
		return uncomparable
	case fInt:
		if n, ok := asFloat(v); ok {
			return cmpFloat(n, f.n)
		}
		if s, ok := v.(string); ok {
			if n, err := strconv.ParseFloat(s, 64); err == nil {
				return cmpFloat(n, f.n)
			}
		}
		return uncomparable
	case fDate:
		return compareTime(v, f.s, env)
	case fString:
		if isDateMath(f.s) {
			return compareTime(v, f.s, env)
		}
		switch x := v.(type) {
		case string:
			if tv, ok := parseTime(x); ok {
				if tf, ok := parseTime(f.s); ok {
					return cmpTime(tv, tf)
				}
			}
			return strings.Compare(x, f.s)
		case bool:
			if f.s == strconv.FormatBool(x) {
				return 0
			}
		default:
			if n, ok := asFloat(x); ok {
				if m, err := strconv.ParseFloat(f.s, 64); err == nil {
					return cmpFloat(n, m)
				}
			}
		}
	}
	return uncomparable
}

func compareTime(v any, expr string, env *evalEnv) int {
	s, ok := v.(string)
	if !ok {
		return uncomparable
	}
	tv, ok := parseTime(s)
	if !ok {
		return uncomparable
	}
	tf, ok := resolveDate(expr, env.now)
	if !ok {
		return uncomparable
	}
	return cmpTime(tv, tf)
}

func cmpFloat(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func cmpTime(a, b time.Time) int {
	switch {
	case a.Before(b):
		return -1
	case a.After(b):
		return 1
	}
	return 0
}

// dateMathRE matches Elasticsearch date math anchored at now, e.g. "now",
// "now-60s", "now+1d/d".
var dateMathRE = regexp.MustCompile(`^now((?:[+-]\d+[yMwdhHms])*)(?:/([yMwdhHms]))?$`)
var dateMathStepRE = regexp.MustCompile(`([+-])(\d+)([yMwdhHms])`)

func isDateMath(s string) bool { return dateMathRE.MatchString(s) }

// resolveDate turns a date-math expression or a timestamp into a time.
func resolveDate(expr string, now time.Time) (time.Time, bool) {
	m := dateMathRE.FindStringSubmatch(expr)
	if m == nil {
		return parseTime(expr)
	}
	t := now.UTC()
	for _, step := range dateMathStepRE.FindAllStringSubmatch(m[1], -1) {
		n, _ := strconv.Atoi(step[2])
		if step[1] == "-" {
			n = -n
		}
		switch step[3] {
		case "y":
			t = t.AddDate(n, 0, 0)
		case "M":
			t = t.AddDate(0, n, 0)
		case "w":
			t = t.AddDate(0, 0, 7*n)
		case "d":
			t = t.AddDate(0, 0, n)
		case "h", "H":
			t = t.Add(time.Duration(n) * time.Hour)
		case "m":
			t = t.Add(time.Duration(n) * time.Minute)
		case "s":
			t = t.Add(time.Duration(n) * time.Second)
		}
	}
	switch m[2] {
	case "y":
		t = time.Date(t.Year(), 1, 1, 0, 0, 0, 0, time.UTC)
	case "M":
		t = time.Date(t.Year(), t.Month(), 1, 0, 0, 0, 0, time.UTC)
	case "w":
		wd := (int(t.Weekday()) + 6) % 7 // Monday first
		t = time.Date(t.Year(), t.Month(), t.Day()-wd, 0, 0, 0, 0, time.UTC)
	case "d":
		t = time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)
	case "h", "H":
		t = t.Truncate(time.Hour)
	case "m":
		t = t.Truncate(time.Minute)
	case "s":
		t = t.Truncate(time.Second)
	}
	return t, true
}
