package nuvlatest

import (
	"fmt"
	"regexp"
	"strings"
	"unicode"
)

// This file parses the CIMI filter language with the grammar of the
// api-server (resources/sixsq/nuvla/db/filter/cimi-filter-grammar.txt):
//
//	Filter  = Or
//	Or      = And {'or' And}
//	And     = Comp {'and' Comp} | '(' Or ')'
//	Comp    = Attribute Op Value | Value Op Attribute
//	Op      = '=' | '!=' | '<' | '<=' | '>' | '>=' | '^=' | '=='
//	Value   = 'str' | "str" | digits | date | true | false | null | '[' Value ... ']'
//	Attribute = term(':'term)? {'/' term(':'term)?}
//
// Geo operators are not supported (parse error).

// filterNode is a parsed filter.
type filterNode interface {
	match(doc map[string]any, env *evalEnv) bool
}

type andNode []filterNode

func (n andNode) match(doc map[string]any, env *evalEnv) bool {
	for _, c := range n {
		if !c.match(doc, env) {
			return false
		}
	}
	return true
}

type orNode []filterNode

func (n orNode) match(doc map[string]any, env *evalEnv) bool {
	for _, c := range n {
		if c.match(doc, env) {
			return true
		}
	}
	return false
}

type valueKind int

const (
	fString valueKind = iota
	fInt
	fDate
	fBool
	fNull
)

type filterValue struct {
	kind valueKind
	s    string // raw text for strings, ints and dates
	n    float64
	b    bool
}

func (v filterValue) String() string {
	switch v.kind {
	case fString:
		return fmt.Sprintf("%q", v.s)
	case fBool:
		return fmt.Sprint(v.b)
	case fNull:
		return "null"
	}
	return v.s
}

type compNode struct {
	path   []string
	op     string
	value  filterValue
	values []filterValue // list form: attr=["a" "b"]
	list   bool
}

// --- lexer ---

type tokKind int

const (
	tEOF tokKind = iota
	tIdent
	tString
	tNumber // digits, or a date such as 2025-08-21T10:15:00Z
	tOp
	tLParen
	tRParen
	tLBrack
	tRBrack
	tComma
)

type token struct {
	kind tokKind
	text string // identifiers, operators, unquoted numbers/dates, unescaped strings
	pos  int
}

var (
	termRE = regexp.MustCompile(`^([a-zA-Z][\w-]*\w|[a-zA-Z])(:([a-zA-Z][\w-]*\w|[a-zA-Z]))?$`)
	intRE  = regexp.MustCompile(`^\d+$`)
	dateRE = regexp.MustCompile(`^\d+-\d+(-\d+)?(T\d+:\d+:\d+(\.\d+)?(Z|[+-]\d+:\d+))?$`)
)

func lex(src string) ([]token, error) {
	var toks []token
	i := 0
	for i < len(src) {
		c := src[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
		case c == '(':
			toks = append(toks, token{tLParen, "(", i})
			i++
		case c == ')':
			toks = append(toks, token{tRParen, ")", i})
			i++
		case c == '[':
			toks = append(toks, token{tLBrack, "[", i})
			i++
		case c == ']':
			toks = append(toks, token{tRBrack, "]", i})
			i++
		case c == ',':
			toks = append(toks, token{tComma, ",", i})
			i++
		case c == '\'' || c == '"':
			s, n, err := lexString(src[i:])
			if err != nil {
				return nil, fmt.Errorf("at %d: %w", i, err)
			}
			toks = append(toks, token{tString, s, i})
			i += n
		case strings.HasPrefix(src[i:], "!=") || strings.HasPrefix(src[i:], "<=") ||
			strings.HasPrefix(src[i:], ">=") || strings.HasPrefix(src[i:], "^=") ||
			strings.HasPrefix(src[i:], "=="):
			toks = append(toks, token{tOp, src[i : i+2], i})
			i += 2
		case c == '=' || c == '<' || c == '>':
			toks = append(toks, token{tOp, src[i : i+1], i})
			i++
		case c >= '0' && c <= '9':
			j := i
			for j < len(src) && (isAlnum(src[j]) || strings.IndexByte("-:.+", src[j]) >= 0) {
				j++
			}
			text := src[i:j]
			if !intRE.MatchString(text) && !dateRE.MatchString(text) {
				return nil, fmt.Errorf("at %d: invalid number or date %q", i, text)
			}
			toks = append(toks, token{tNumber, text, i})
			i = j
		case c < 0x80 && unicode.IsLetter(rune(c)):
			j := i
			for j < len(src) && (isAlnum(src[j]) || src[j] == '_' || src[j] == '-' || src[j] == ':' || src[j] == '/') {
				j++
			}
			toks = append(toks, token{tIdent, src[i:j], i})
			i = j
		default:
			return nil, fmt.Errorf("at %d: unexpected character %q", i, c)
		}
	}
	return append(toks, token{tEOF, "", len(src)}), nil
}

func isAlnum(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

// lexString reads a quoted string with backslash escapes; it returns the
// unescaped content and the number of bytes consumed.
func lexString(src string) (string, int, error) {
	q := src[0]
	var b strings.Builder
	for i := 1; i < len(src); i++ {
		switch src[i] {
		case '\\':
			if i+1 >= len(src) {
				return "", 0, fmt.Errorf("unterminated string")
			}
			i++
			b.WriteByte(src[i])
		case q:
			return b.String(), i + 1, nil
		default:
			b.WriteByte(src[i])
		}
	}
	return "", 0, fmt.Errorf("unterminated string")
}

// --- parser ---

type parser struct {
	toks []token
	pos  int
}

// parseFilter parses a CIMI filter. An empty filter matches everything.
func parseFilter(src string) (filterNode, error) {
	if strings.TrimSpace(src) == "" {
		return andNode{}, nil
	}
	toks, err := lex(src)
	if err != nil {
		return nil, err
	}
	p := &parser{toks: toks}
	n, err := p.or()
	if err != nil {
		return nil, err
	}
	if t := p.peek(); t.kind != tEOF {
		return nil, fmt.Errorf("at %d: unexpected %q", t.pos, t.text)
	}
	return n, nil
}

func (p *parser) peek() token { return p.toks[p.pos] }

func (p *parser) next() token {
	t := p.toks[p.pos]
	if t.kind != tEOF {
		p.pos++
	}
	return t
}

func (p *parser) keyword(word string) bool {
	t := p.peek()
	if t.kind == tIdent && t.text == word {
		p.pos++
		return true
	}
	return false
}

func (p *parser) or() (filterNode, error) {
	nodes, err := p.chain("or", p.and)
	if err != nil || len(nodes) == 1 {
		return first(nodes), err
	}
	return orNode(nodes), nil
}

func (p *parser) and() (filterNode, error) {
	nodes, err := p.chain("and", p.primary)
	if err != nil || len(nodes) == 1 {
		return first(nodes), err
	}
	return andNode(nodes), nil
}

// chain parses operand (keyword operand)*.
func (p *parser) chain(keyword string, operand func() (filterNode, error)) ([]filterNode, error) {
	n, err := operand()
	if err != nil {
		return nil, err
	}
	nodes := []filterNode{n}
	for p.keyword(keyword) {
		if n, err = operand(); err != nil {
			return nil, err
		}
		nodes = append(nodes, n)
	}
	return nodes, nil
}

func first(nodes []filterNode) filterNode {
	if len(nodes) == 0 {
		return nil
	}
	return nodes[0]
}

func (p *parser) primary() (filterNode, error) {
	if p.peek().kind == tLParen {
		p.next()
		n, err := p.or()
		if err != nil {
			return nil, err
		}
		if t := p.next(); t.kind != tRParen {
			return nil, fmt.Errorf("at %d: expected ')', got %q", t.pos, t.text)
		}
		return n, nil
	}
	return p.comparison()
}

func (p *parser) comparison() (filterNode, error) {
	t := p.peek()
	if t.kind == tIdent && !isLiteralWord(t.text) {
		path, err := p.attribute()
		if err != nil {
			return nil, err
		}
		op, err := p.op()
		if err != nil {
			return nil, err
		}
		return p.operand(path, op)
	}
	// Reversed form: Value Op Attribute.
	var c *compNode
	if t.kind == tLBrack {
		vals, err := p.list()
		if err != nil {
			return nil, err
		}
		c = &compNode{values: vals, list: true}
	} else {
		v, err := p.value()
		if err != nil {
			return nil, err
		}
		c = &compNode{value: v}
	}
	op, err := p.op()
	if err != nil {
		return nil, err
	}
	path, err := p.attribute()
	if err != nil {
		return nil, err
	}
	c.path = path
	c.op = flipOp(op)
	return c, c.check()
}

func (p *parser) operand(path []string, op string) (filterNode, error) {
	c := &compNode{path: path, op: op}
	if p.peek().kind == tLBrack {
		vals, err := p.list()
		if err != nil {
			return nil, err
		}
		c.values, c.list = vals, true
	} else {
		v, err := p.value()
		if err != nil {
			return nil, err
		}
		c.value = v
	}
	return c, c.check()
}

// check enforces which value kinds each operator takes, as the grammar does.
func (c *compNode) check() error {
	switch c.op {
	case "=", "!=":
		for _, v := range c.values {
			if v.kind == fBool || v.kind == fNull {
				return fmt.Errorf("list values must be strings, integers or dates")
			}
		}
	case "<", "<=", ">", ">=":
		if c.list || c.value.kind == fBool || c.value.kind == fNull {
			return fmt.Errorf("operator %s needs a string, integer or date", c.op)
		}
	case "^=", "==":
		if c.list || c.value.kind != fString {
			return fmt.Errorf("operator %s needs a string", c.op)
		}
	}
	return nil
}

func flipOp(op string) string {
	switch op {
	case "<":
		return ">"
	case "<=":
		return ">="
	case ">":
		return "<"
	case ">=":
		return "<="
	}
	return op
}

func isLiteralWord(s string) bool { return s == "true" || s == "false" || s == "null" }

func (p *parser) attribute() ([]string, error) {
	t := p.next()
	if t.kind != tIdent || isLiteralWord(t.text) {
		return nil, fmt.Errorf("at %d: expected attribute, got %q", t.pos, t.text)
	}
	parts := strings.Split(t.text, "/")
	for _, part := range parts {
		if !termRE.MatchString(part) {
			return nil, fmt.Errorf("at %d: invalid attribute %q", t.pos, t.text)
		}
	}
	return parts, nil
}

func (p *parser) op() (string, error) {
	t := p.next()
	if t.kind != tOp {
		return "", fmt.Errorf("at %d: expected operator, got %q", t.pos, t.text)
	}
	return t.text, nil
}

func (p *parser) value() (filterValue, error) {
	t := p.next()
	switch t.kind {
	case tString:
		return filterValue{kind: fString, s: t.text}, nil
	case tNumber:
		if intRE.MatchString(t.text) {
			var n float64
			if _, err := fmt.Sscan(t.text, &n); err != nil {
				return filterValue{}, fmt.Errorf("at %d: invalid integer %q", t.pos, t.text)
			}
			return filterValue{kind: fInt, s: t.text, n: n}, nil
		}
		return filterValue{kind: fDate, s: t.text}, nil
	case tIdent:
		switch t.text {
		case "true", "false":
			return filterValue{kind: fBool, b: t.text == "true"}, nil
		case "null":
			return filterValue{kind: fNull}, nil
		}
	}
	return filterValue{}, fmt.Errorf("at %d: expected value, got %q", t.pos, t.text)
}

func (p *parser) list() ([]filterValue, error) {
	p.next() // '['
	var vals []filterValue
	for {
		if p.peek().kind == tRBrack {
			p.next()
			if len(vals) == 0 {
				return nil, fmt.Errorf("empty value list")
			}
			return vals, nil
		}
		if p.peek().kind == tComma && len(vals) > 0 {
			p.next()
			continue
		}
		v, err := p.value()
		if err != nil {
			return nil, err
		}
		vals = append(vals, v)
	}
}
