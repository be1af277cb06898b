package telemetry

import (
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/wI2L/jsondiff"
)

// Diff computes the RFC 6902 JSON patch turning base (the last document the
// server acknowledged) into doc, and the top-level keys of base that doc
// lacks (sent as ?select= so the server deletes them). Both documents must
// hold JSON-native values only.
//
// Objects are walked key by key, and values shared by reference between
// the two documents (the sampler reuses unchanged decoded Docker objects
// and cached lists) are skipped without being compared. Arrays whose items
// keep their identities (id, device, interface...) are compared item by
// item; other arrays go to jsondiff with the longest common subsequence,
// so a container appearing or leaving is one add or remove, not a replace
// of every later item.
func Diff(base, doc map[string]any) (patch []byte, removed []string, err error) {
	var p jsondiff.Patch
	if err := diffObject(&p, "", base, doc); err != nil {
		return nil, nil, fmt.Errorf("telemetry diff: %w", err)
	}
	for k := range base {
		if _, ok := doc[k]; !ok {
			removed = append(removed, k)
		}
	}
	sort.Strings(removed)
	if len(p) == 0 {
		return nil, removed, nil
	}
	b, err := json.Marshal(p)
	if err != nil {
		return nil, nil, fmt.Errorf("telemetry diff: %w", err)
	}
	return b, removed, nil
}

// diffObject appends the operations turning object a into b at path.
func diffObject(p *jsondiff.Patch, path string, a, b map[string]any) error {
	keys := make([]string, 0, len(a)+len(b))
	for k := range a {
		keys = append(keys, k)
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	for _, k := range keys {
		kp := path + "/" + escapeToken(k)
		av, inA := a[k]
		bv, inB := b[k]
		switch {
		case !inB:
			*p = append(*p, jsondiff.Operation{Type: jsondiff.OperationRemove, Path: kp})
		case !inA:
			*p = append(*p, jsondiff.Operation{Type: jsondiff.OperationAdd, Path: kp, Value: bv})
		case sameRef(av, bv):
		default:
			am, aok := av.(map[string]any)
			bm, bok := bv.(map[string]any)
			if aok && bok {
				if err := diffObject(p, kp, am, bm); err != nil {
					return err
				}
				continue
			}
			al, aok := av.([]any)
			bl, bok := bv.([]any)
			if aok && bok && sameIdentities(al, bl) {
				// The same objects in the same order (containers by id,
				// disks by device...): compare them pairwise.
				for i := range al {
					ip := kp + "/" + strconv.Itoa(i)
					if sameRef(al[i], bl[i]) {
						continue
					}
					if err := diffObject(p, ip, al[i].(map[string]any), bl[i].(map[string]any)); err != nil {
						return err
					}
				}
				continue
			}
			if isScalar(av) && isScalar(bv) {
				*p = append(*p, jsondiff.Operation{Type: jsondiff.OperationReplace, Path: kp, Value: bv})
				continue
			}
			sub, err := jsondiff.CompareWithoutMarshal(map[string]any{"v": av}, map[string]any{"v": bv}, jsondiff.LCS())
			if err != nil {
				return err
			}
			for _, op := range sub {
				op.Path = kp + strings.TrimPrefix(op.Path, "/v")
				if op.From != "" {
					op.From = kp + strings.TrimPrefix(op.From, "/v")
				}
				*p = append(*p, op)
			}
		}
	}
	return nil
}

// identityKeys name what identifies an item of the document's arrays.
var identityKeys = []string{"id", "Id", "Name", "device", "interface", "thermal-zone", "address"}

// sameIdentities reports two arrays of objects whose items have the same
// identities in the same order.
func sameIdentities(a, b []any) bool {
	if len(a) != len(b) || len(a) == 0 {
		return false
	}
	for i := range a {
		x, ok1 := a[i].(map[string]any)
		y, ok2 := b[i].(map[string]any)
		if !ok1 || !ok2 {
			return false
		}
		found := false
		for _, k := range identityKeys {
			xv, okx := x[k].(string)
			yv, oky := y[k].(string)
			if okx || oky {
				if !okx || !oky || xv != yv {
					return false
				}
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// sameRef reports values that are the same object (maps, slices) or equal
// scalars.
func sameRef(a, b any) bool {
	switch x := a.(type) {
	case map[string]any:
		y, ok := b.(map[string]any)
		return ok && reflect.ValueOf(x).UnsafePointer() == reflect.ValueOf(y).UnsafePointer()
	case []any:
		y, ok := b.([]any)
		return ok && len(x) == len(y) && (len(x) == 0 || &x[0] == &y[0])
	case string, float64, bool:
		return a == b
	}
	return false
}

func isScalar(v any) bool {
	switch v.(type) {
	case string, float64, bool:
		return true
	}
	return false
}

// escapeToken escapes a key for a JSON pointer (RFC 6901).
func escapeToken(k string) string {
	if !strings.ContainsAny(k, "~/") {
		return k
	}
	return strings.ReplaceAll(strings.ReplaceAll(k, "~", "~0"), "/", "~1")
}

// Changed returns the top-level keys of doc whose value differs from base,
// sorted: the body of a plain partial PUT.
func Changed(base, doc map[string]any) map[string]any {
	out := map[string]any{}
	for k, v := range doc {
		if bv, ok := base[k]; !ok || !reflect.DeepEqual(bv, v) {
			out[k] = v
		}
	}
	return out
}

// AgentView reduces a document read from the server to the keys berthd
// writes, decoded as JSON-native values.
func AgentView(doc map[string]any) map[string]any {
	out := make(map[string]any, len(AgentKeys))
	for k, v := range doc {
		if slices.Contains(AgentKeys, k) && v != nil {
			out[k] = v
		}
	}
	return out
}
