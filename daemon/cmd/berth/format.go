package main

import (
	"fmt"
	"io"
	"net"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/berth-edge/berth/daemon/client"
)

// newTable is the tabwriter every table and key/value block uses.
func newTable(w io.Writer) *tabwriter.Writer {
	return tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
}

// clean makes a value from berthd safe for a table cell on a terminal:
// control characters (tabs, newlines, escape sequences) become spaces.
func clean(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			return ' '
		}
		return r
	}, s)
}

// orDash is s, or "-" when s is empty.
func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return clean(s)
}

// human writes a duration the way people read it: 12s, 5m, 2h5m, 3d4h.
func human(d time.Duration) string {
	if d < 0 {
		d = 0
	}
	s := int64(d / time.Second)
	switch {
	case s < 60:
		return fmt.Sprintf("%ds", s)
	case s < 3600:
		if s%60 != 0 && s < 600 {
			return fmt.Sprintf("%dm%ds", s/60, s%60)
		}
		return fmt.Sprintf("%dm", s/60)
	case s < 86400:
		if m := (s % 3600) / 60; m != 0 {
			return fmt.Sprintf("%dh%dm", s/3600, m)
		}
		return fmt.Sprintf("%dh", s/3600)
	default:
		if h := (s % 86400) / 3600; h != 0 {
			return fmt.Sprintf("%dd%dh", s/86400, h)
		}
		return fmt.Sprintf("%dd", s/86400)
	}
}

// ago is "12s ago", or "never" for the zero time.
func ago(now, t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return human(now.Sub(t)) + " ago"
}

// age is the age column: "5m", or "-" for the zero time.
func age(now, t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return human(now.Sub(t))
}

// portString writes a published port as proto/target->hostport, with the
// host address when it is not the wildcard.
func portString(p client.Port) string {
	proto := strings.ToLower(p.Protocol)
	if proto == "" {
		proto = "tcp"
	}
	s := proto + "/" + strconv.Itoa(p.Target)
	if p.HostPort == 0 {
		return s
	}
	host := ""
	if ip := net.ParseIP(p.HostIP); ip != nil && !ip.IsUnspecified() {
		host = net.JoinHostPort(p.HostIP, "")
	}
	return s + "->" + host + strconv.Itoa(p.HostPort)
}

// servicePorts lists a service's ports once each (Docker reports the same
// port for IPv4 and IPv6).
func servicePorts(svcs ...client.Service) []string {
	var out []string
	for _, s := range svcs {
		for _, p := range s.Ports {
			ps := portString(p)
			if !slices.Contains(out, ps) {
				out = append(out, ps)
			}
		}
	}
	return out
}

// appState is the STATE column: the observed state, and the desired one
// when they differ.
func appState(a client.App) string {
	st := orDash(a.State)
	if a.Desired != "" && a.Desired != a.State {
		st += " (wanted " + clean(a.Desired) + ")"
	}
	return st
}

// servicesSummary is "running/total".
func servicesSummary(a client.App) string {
	running := 0
	for _, s := range a.Services {
		if s.State == "running" {
			running++
		}
	}
	return fmt.Sprintf("%d/%d", running, len(a.Services))
}
