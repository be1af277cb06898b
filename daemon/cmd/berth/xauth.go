package main

import (
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// X authority families (Xau.h).
const (
	xFamilyInternet  = 0
	xFamilyLocal     = 256
	xFamilyWild      = 65535
	xFamilyInternet6 = 6
)

// mitCookie is the only authorisation scheme berth passes on.
const mitCookie = "MIT-MAGIC-COOKIE-1"

// xauthEntry is one record of an Xauthority file.
type xauthEntry struct {
	Family  uint16
	Address string
	Number  string
	Name    string
	Data    []byte
}

// parseXauth decodes an Xauthority file: records of a big-endian uint16
// family and four uint16-length-prefixed fields (address, display number,
// auth name, auth data).
func parseXauth(b []byte) ([]xauthEntry, error) {
	var out []xauthEntry
	field := func() ([]byte, error) {
		if len(b) < 2 {
			return nil, errors.New("truncated length")
		}
		n := int(binary.BigEndian.Uint16(b))
		if len(b) < 2+n {
			return nil, fmt.Errorf("field of %d bytes is truncated", n)
		}
		f := b[2 : 2+n]
		b = b[2+n:]
		return f, nil
	}
	for len(b) > 0 {
		if len(b) < 2 {
			return nil, fmt.Errorf("record %d: truncated family", len(out)+1)
		}
		e := xauthEntry{Family: binary.BigEndian.Uint16(b)}
		b = b[2:]
		var fs [4][]byte
		for i := range fs {
			f, err := field()
			if err != nil {
				return nil, fmt.Errorf("record %d: %w", len(out)+1, err)
			}
			fs[i] = f
		}
		e.Address, e.Number, e.Name = string(fs[0]), string(fs[1]), string(fs[2])
		e.Data = append([]byte(nil), fs[3]...)
		out = append(out, e)
	}
	return out, nil
}

// displayNumber is the display number of an X display name:
// ":0" → "0", "host:10.0" → "10", "unix:1" → "1".
func displayNumber(display string) (string, error) {
	i := strings.LastIndexByte(display, ':')
	if i < 0 {
		return "", fmt.Errorf("display %q has no \":\"", display)
	}
	num, _, _ := strings.Cut(display[i+1:], ".")
	if num == "" || strings.Trim(num, "0123456789") != "" {
		return "", fmt.Errorf("display %q has no display number", display)
	}
	return num, nil
}

// cookieFor picks the MIT-MAGIC-COOKIE-1 of display for this host from
// entries, the way xauth does for a local display: an entry of the local
// family with this host name first, then a wildcard entry, then any entry
// of that display number. It returns the cookie in hex.
func cookieFor(entries []xauthEntry, hostname, display string) (string, error) {
	num, err := displayNumber(display)
	if err != nil {
		return "", err
	}
	rank := func(e xauthEntry) int {
		if e.Name != mitCookie || len(e.Data) == 0 || (e.Number != num && e.Family != xFamilyWild) {
			return 0
		}
		switch {
		case e.Family == xFamilyLocal && e.Address == hostname:
			return 3
		case e.Family == xFamilyWild:
			return 2
		default:
			return 1
		}
	}
	best, bestRank := -1, 0
	for i, e := range entries {
		if r := rank(e); r > bestRank {
			best, bestRank = i, r
		}
	}
	if best < 0 {
		return "", fmt.Errorf("no %s for display %s", mitCookie, display)
	}
	return hex.EncodeToString(entries[best].Data), nil
}

// xauthFile is $XAUTHORITY, else ~/.Xauthority.
func xauthFile(getenv func(string) string) string {
	if f := getenv("XAUTHORITY"); f != "" {
		return f
	}
	home := getenv("HOME")
	if home == "" {
		if h, err := os.UserHomeDir(); err == nil {
			home = h
		}
	}
	return filepath.Join(home, ".Xauthority")
}

// displayCookie reads the cookie of display from the user's Xauthority
// file. A missing file is no error: the display may need no cookie.
func displayCookie(getenv func(string) string, display string) (string, error) {
	path := xauthFile(getenv)
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("reading the X authority file: %w", err)
	}
	entries, err := parseXauth(b)
	if err != nil {
		return "", fmt.Errorf("X authority file %s: %w", path, err)
	}
	host, _ := os.Hostname()
	cookie, err := cookieFor(entries, host, display)
	if err != nil {
		return "", nil // no cookie for this display: send none
	}
	return cookie, nil
}
