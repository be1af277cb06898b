package installer

import (
	"fmt"
	"strings"
	"time"
)

// manPage is a small man(7) page whose long parts are the programs' own
// --help texts, so the page cannot drift from the flags.
type manPage struct {
	Name     string // berthd
	Section  int    // 8
	Summary  string // the NAME line after "\-"
	Source   string // "berth 0.1.0"
	Manual   string // "System Administration"
	Date     time.Time
	Synopsis string       // roff
	Body     []manSection // in order
}

type manSection struct {
	Heading  string
	Text     string // paragraphs separated by blank lines, plain text
	Verbatim string // shown as-is (help output)
}

func (m manPage) render() []byte {
	var b strings.Builder
	fmt.Fprintf(&b, ".TH %s %d %q %q %q\n", strings.ToUpper(m.Name), m.Section,
		m.Date.UTC().Format("2006-01-02"), m.Source, m.Manual)
	fmt.Fprintf(&b, ".SH NAME\n%s \\- %s\n", m.Name, roffText(m.Summary))
	fmt.Fprintf(&b, ".SH SYNOPSIS\n%s\n", m.Synopsis)
	for _, s := range m.Body {
		if strings.HasPrefix(s.Heading, "  ") {
			fmt.Fprintf(&b, ".SS %s\n", strings.TrimSpace(s.Heading))
		} else {
			fmt.Fprintf(&b, ".SH %s\n", strings.ToUpper(s.Heading))
		}
		for i, p := range strings.Split(strings.TrimSpace(s.Text), "\n\n") {
			if p == "" {
				continue
			}
			if i > 0 {
				b.WriteString(".PP\n")
			}
			for _, l := range strings.Split(p, "\n") {
				b.WriteString(roffLine(roffText(strings.TrimSpace(l))))
			}
		}
		if v := strings.TrimRight(s.Verbatim, "\n"); v != "" {
			b.WriteString(".PP\n.nf\n")
			for _, l := range strings.Split(v, "\n") {
				// Tabs in help output (flag tables) become spaces: groff's
				// tab stops differ from a terminal's.
				b.WriteString(roffLine(roffText(strings.ReplaceAll(l, "\t", "        "))))
			}
			b.WriteString(".fi\n")
		}
	}
	return []byte(b.String())
}

// roffText escapes backslashes and minus signs.
func roffText(s string) string {
	s = strings.ReplaceAll(s, `\`, `\e`)
	return strings.ReplaceAll(s, "-", `\-`)
}

// roffLine protects a line that would start with a control character.
func roffLine(s string) string {
	if strings.HasPrefix(s, ".") || strings.HasPrefix(s, "'") {
		s = `\&` + s
	}
	if strings.TrimSpace(s) == "" {
		return "\n"
	}
	return s + "\n"
}
