package main

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// Xauthority address families (Xau's FamilyLocal and FamilyWild; the
// others, such as FamilyInternet 0, are for TCP displays).
const (
	familyLocal = 256
	familyWild  = 65535
)

// cookieName is the only authorization protocol sessions can use.
const cookieName = "MIT-MAGIC-COOKIE-1"

// xauthEntry is one record of an Xauthority file.
type xauthEntry struct {
	Family  uint16
	Address string
	Number  string // the display number, as text
	Name    string
	Data    []byte
}

// parseXauthority decodes an Xauthority file: a sequence of records, each a
// big-endian uint16 family followed by four counted strings (address,
// display number, authorization name, authorization data), every count a
// big-endian uint16.
func parseXauthority(r io.Reader) ([]xauthEntry, error) {
	var out []xauthEntry
	readField := func() ([]byte, error) {
		var n uint16
		if err := binary.Read(r, binary.BigEndian, &n); err != nil {
			return nil, err
		}
		b := make([]byte, n)
		if _, err := io.ReadFull(r, b); err != nil {
			return nil, err
		}
		return b, nil
	}
	for {
		var e xauthEntry
		if err := binary.Read(r, binary.BigEndian, &e.Family); err != nil {
			if errors.Is(err, io.EOF) {
				return out, nil
			}
			return nil, fmt.Errorf("xauthority record %d: %w", len(out)+1, err)
		}
		var fields [4][]byte
		for i := range fields {
			b, err := readField()
			if err != nil {
				if errors.Is(err, io.EOF) {
					err = io.ErrUnexpectedEOF
				}
				return nil, fmt.Errorf("xauthority record %d is truncated: %w", len(out)+1, err)
			}
			fields[i] = b
		}
		e.Address, e.Number, e.Name, e.Data = string(fields[0]), string(fields[1]), string(fields[2]), fields[3]
		out = append(out, e)
	}
}

// displayNumber extracts the display number of a DISPLAY value (":0",
// ":1.0", "unix:2", "localhost:10.0") and whether the display is local
// (reached through the /tmp/.X11-unix socket).
func displayNumber(display string) (num string, local bool, err error) {
	host, rest, ok := strings.Cut(display, ":")
	if !ok || strings.HasPrefix(rest, ":") { // "::1:0" DECnet-style: unsupported
		return "", false, fmt.Errorf("DISPLAY %q is not host:number[.screen]", display)
	}
	num, _, _ = strings.Cut(rest, ".")
	if num == "" || strings.Trim(num, "0123456789") != "" {
		return "", false, fmt.Errorf("DISPLAY %q has no display number", display)
	}
	return num, host == "" || host == "unix", nil
}

// cookieFor returns the hex MIT-MAGIC-COOKIE-1 for display among entries:
// a local display matches FamilyLocal records of this host (or any host,
// when none names it) and FamilyWild records; the first match wins, as
// in Xlib.
func cookieFor(entries []xauthEntry, display, hostname string) (string, error) {
	num, local, err := displayNumber(display)
	if err != nil {
		return "", err
	}
	if !local {
		return "", fmt.Errorf("DISPLAY %q is a TCP display: sessions can only reach local displays", display)
	}
	var fallback *xauthEntry
	for i := range entries {
		e := &entries[i]
		if e.Name != cookieName || e.Number != num {
			continue
		}
		switch {
		case e.Family == familyWild:
			return hex.EncodeToString(e.Data), nil
		case e.Family == familyLocal && e.Address == hostname:
			return hex.EncodeToString(e.Data), nil
		case e.Family == familyLocal && fallback == nil:
			fallback = e
		}
	}
	if fallback != nil {
		return hex.EncodeToString(fallback.Data), nil
	}
	return "", fmt.Errorf("no %s for display %s", cookieName, display)
}

// xauthorityPath is $XAUTHORITY, else ~/.Xauthority.
func xauthorityPath() string {
	if p := os.Getenv("XAUTHORITY"); p != "" {
		return p
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return ""
	}
	return filepath.Join(home, ".Xauthority")
}

// displayCookie returns $DISPLAY and the hex cookie for it. A display
// without an Xauthority file (Xvfb -ac, xhost +local:) gives an empty
// cookie and no error.
func displayCookie() (display, cookie string, err error) {
	display = os.Getenv("DISPLAY")
	if display == "" {
		return "", "", errors.New("DISPLAY is not set: desktop-app sessions need an X display")
	}
	path := xauthorityPath()
	if path == "" {
		return display, "", nil
	}
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return display, "", nil
	}
	if err != nil {
		return display, "", fmt.Errorf("reading %s: %w", path, err)
	}
	entries, err := parseXauthority(bytes.NewReader(b))
	if err != nil {
		return display, "", fmt.Errorf("%s: %w", path, err)
	}
	hostname, _ := os.Hostname()
	cookie, err = cookieFor(entries, display, hostname)
	if err != nil {
		return display, "", fmt.Errorf("%s: %w", path, err)
	}
	return display, cookie, nil
}
