package nuvlatest

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"
)

// The store keeps every document as the JSON decoder with UseNumber would
// produce it: map[string]any, []any, string, bool, nil and json.Number. That
// keeps integers distinguishable from floats for schema validation, and lets
// documents be copied by a JSON round trip.

const timeLayout = "2006-01-02T15:04:05.000Z"

// store is the in-memory database. All access happens with Server.mu held.
type store struct {
	docs map[string]map[string]any
	seq  map[string]uint64 // insertion order, breaks ties between equal timestamps
	next uint64
}

func newStore() *store {
	return &store{docs: map[string]map[string]any{}, seq: map[string]uint64{}}
}

// get returns a private copy of the stored document.
func (st *store) get(id string) (map[string]any, bool) {
	d, ok := st.docs[id]
	if !ok {
		return nil, false
	}
	return clone(d), true
}

// put stores a normalised copy of doc under doc["id"].
func (st *store) put(doc map[string]any) {
	id := str(doc["id"])
	if _, ok := st.docs[id]; !ok {
		st.next++
		st.seq[id] = st.next
	}
	st.docs[id] = clone(doc)
}

func (st *store) del(id string) bool {
	if _, ok := st.docs[id]; !ok {
		return false
	}
	delete(st.docs, id)
	delete(st.seq, id)
	return true
}

// hasType reports whether any document of the type exists.
func (st *store) hasType(typ string) bool {
	prefix := typ + "/"
	for id := range st.docs {
		if strings.HasPrefix(id, prefix) {
			return true
		}
	}
	return false
}

// ofType returns copies of all documents of a type in insertion order.
func (st *store) ofType(typ string) []map[string]any {
	prefix := typ + "/"
	var ids []string
	for id := range st.docs {
		if strings.HasPrefix(id, prefix) {
			ids = append(ids, id)
		}
	}
	sort.Slice(ids, func(i, j int) bool { return st.seq[ids[i]] < st.seq[ids[j]] })
	out := make([]map[string]any, 0, len(ids))
	for _, id := range ids {
		out = append(out, clone(st.docs[id]))
	}
	return out
}

// clone deep-copies a document, normalising numbers to json.Number.
func clone(doc map[string]any) map[string]any {
	if doc == nil {
		return nil
	}
	m, _ := normalize(doc).(map[string]any)
	return m
}

// normalize deep-copies any JSON-encodable value into its stored form:
// map[string]any, []any, string, bool, nil and json.Number. Values that JSON
// cannot represent (NaN, channels, ...) become nil.
func normalize(v any) any {
	switch x := v.(type) {
	case nil, string, bool:
		return x
	case json.Number:
		return x
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return nil
		}
		return json.Number(strconv.FormatFloat(x, 'f', -1, 64))
	case float32:
		return normalize(float64(x))
	case int:
		return json.Number(strconv.Itoa(x))
	case int64:
		return json.Number(strconv.FormatInt(x, 10))
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = normalize(e)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = normalize(e)
		}
		return out
	case []string:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = e
		}
		return out
	case []map[string]any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = normalize(e)
		}
		return out
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil
	}
	var out any
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if err := dec.Decode(&out); err != nil {
		return nil
	}
	return out
}

// export deep-copies a stored document into what json.Unmarshal would give
// a caller: numbers become float64.
func export(doc map[string]any) map[string]any {
	if doc == nil {
		return nil
	}
	m, _ := exportValue(doc).(map[string]any)
	return m
}

func exportValue(v any) any {
	switch x := v.(type) {
	case json.Number:
		f, _ := x.Float64()
		return f
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = exportValue(e)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = exportValue(e)
		}
		return out
	}
	return v
}

// decodeObject decodes a JSON object with UseNumber; anything else is an error.
func decodeObject(b []byte) (map[string]any, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("malformed JSON: %w", err)
	}
	if dec.More() {
		return nil, fmt.Errorf("malformed JSON: trailing data")
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("JSON body must be an object")
	}
	return m, nil
}

func newUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // never fails since Go 1.24
	b[6] = (b[6] & 0x0f) | 0x40
	b[8] = (b[8] & 0x3f) | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

func fmtTime(t time.Time) string { return t.UTC().Format(timeLayout) }

// parseTime accepts the timestamp forms Nuvla accepts (with or without
// fractional seconds, Z or an offset) and plain dates.
func parseTime(s string) (time.Time, bool) {
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05Z07:00", "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, true
		}
	}
	return time.Time{}, false
}

// --- small accessors for documents holding normalised JSON ---

func str(v any) string {
	s, _ := v.(string)
	return s
}

func mapOf(v any) map[string]any {
	m, _ := v.(map[string]any)
	return m
}

func listOf(v any) []any {
	l, _ := v.([]any)
	return l
}

func strList(v any) []string {
	var out []string
	for _, e := range listOf(v) {
		if s, ok := e.(string); ok {
			out = append(out, s)
		}
	}
	return out
}

func asFloat(v any) (float64, bool) {
	switch n := v.(type) {
	case json.Number:
		f, err := n.Float64()
		return f, err == nil
	case float64:
		return n, true
	case int:
		return float64(n), true
	case int64:
		return float64(n), true
	}
	return 0, false
}

// asInt reports whether v is a JSON integer (no fraction, no exponent).
func asInt(v any) (int64, bool) {
	switch n := v.(type) {
	case json.Number:
		if strings.ContainsAny(string(n), ".eE") {
			return 0, false
		}
		i, err := strconv.ParseInt(string(n), 10, 64)
		return i, err == nil
	case int:
		return int64(n), true
	case int64:
		return n, true
	case float64:
		if n == float64(int64(n)) {
			return int64(n), true
		}
	}
	return 0, false
}

func isNumber(v any) bool {
	_, ok := asFloat(v)
	return ok
}

func intField(doc map[string]any, key string, def int64) int64 {
	if i, ok := asInt(doc[key]); ok {
		return i
	}
	return def
}

func uuidOf(id string) string {
	if i := strings.IndexByte(id, '/'); i >= 0 {
		return id[i+1:]
	}
	return id
}

func typeOf(id string) string {
	if i := strings.IndexByte(id, '/'); i >= 0 {
		return id[:i]
	}
	return id
}

func containsStr(list []string, s string) bool {
	for _, e := range list {
		if e == s {
			return true
		}
	}
	return false
}
