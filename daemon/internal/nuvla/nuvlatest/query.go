package nuvlatest

import (
	"net/url"
	"sort"
	"strconv"
	"strings"
)

// maxLast is the most documents one search returns (Elasticsearch's window).
const maxLast = 10000

type orderKey struct {
	field []string
	desc  bool
}

// cimiParams are the query parameters of a search or a GET.
type cimiParams struct {
	filter  filterNode
	selects []string // nil means every key
	first   int      // 1-based
	last    int      // inclusive
	orderby []orderKey
}

// splitMulti flattens repeated and comma-separated parameter values.
func splitMulti(vals []string) []string {
	var out []string
	for _, v := range vals {
		for _, p := range strings.Split(v, ",") {
			if p = strings.TrimSpace(p); p != "" {
				out = append(out, p)
			}
		}
	}
	return out
}

func parseCimiParams(v url.Values) (*cimiParams, error) {
	p := &cimiParams{first: 1, last: maxLast}
	var filters andNode
	for _, f := range v["filter"] {
		n, err := parseFilter(f)
		if err != nil {
			return nil, errBadRequest("Invalid CIMI filter. %v", err)
		}
		filters = append(filters, n)
	}
	p.filter = filters
	if _, ok := v["select"]; ok {
		p.selects = splitMulti(v["select"])
	}
	if s := v.Get("first"); s != "" {
		if n, err := strconv.Atoi(s); err == nil && n >= 1 {
			p.first = n
		}
	}
	if s := v.Get("last"); s != "" {
		if n, err := strconv.Atoi(s); err == nil && n >= 0 {
			p.last = n
		}
	}
	for _, o := range splitMulti(v["orderby"]) {
		field, dir, _ := strings.Cut(o, ":")
		switch dir {
		case "", "asc":
		case "desc":
		default:
			return nil, errBadRequest("invalid orderby direction %q", dir)
		}
		p.orderby = append(p.orderby, orderKey{field: strings.Split(field, "/"), desc: dir == "desc"})
	}
	return p, nil
}

// selectKeys restricts a document to the selected keys; id is always kept.
func selectKeys(doc map[string]any, selects []string) map[string]any {
	if selects == nil {
		return doc
	}
	out := map[string]any{}
	for _, k := range append([]string{"id"}, selects...) {
		if v, ok := doc[k]; ok {
			out[k] = v
		}
	}
	return out
}

// sortDocs orders documents by the orderby keys; documents missing a field
// sort last in both directions, as in Elasticsearch. The sort is stable, so
// without keys insertion order is kept.
func sortDocs(docs []map[string]any, keys []orderKey) {
	if len(keys) == 0 {
		return
	}
	sort.SliceStable(docs, func(i, j int) bool {
		for _, k := range keys {
			a, b := collect(docs[i], k.field), collect(docs[j], k.field)
			switch {
			case len(a) == 0 && len(b) == 0:
				continue
			case len(a) == 0:
				return false
			case len(b) == 0:
				return true
			}
			c := compareValues(a[0], b[0])
			if c == 0 {
				continue
			}
			if k.desc {
				return c > 0
			}
			return c < 0
		}
		return false
	})
}

func compareValues(a, b any) int {
	if x, ok := asFloat(a); ok {
		if y, ok := asFloat(b); ok {
			return cmpFloat(x, y)
		}
	}
	if x, ok := a.(bool); ok {
		if y, ok := b.(bool); ok {
			switch {
			case x == y:
				return 0
			case !x:
				return -1
			}
			return 1
		}
	}
	return strings.Compare(toString(a), toString(b))
}

func toString(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case nil:
		return ""
	}
	b, _ := jsonMarshal(v)
	return string(b)
}

// page applies first/last (1-based, inclusive) to a sorted result.
func page(docs []map[string]any, p *cimiParams) []map[string]any {
	if p.last < p.first || p.first > len(docs) {
		return []map[string]any{}
	}
	end := p.last
	if end > len(docs) {
		end = len(docs)
	}
	return docs[p.first-1 : end]
}
