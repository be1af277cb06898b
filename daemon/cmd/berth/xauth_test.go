package main

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// xauthRecord encodes one Xauthority record.
func xauthRecord(family uint16, addr, num, name string, data []byte) []byte {
	b := binary.BigEndian.AppendUint16(nil, family)
	for _, f := range [][]byte{[]byte(addr), []byte(num), []byte(name), data} {
		b = binary.BigEndian.AppendUint16(b, uint16(len(f)))
		b = append(b, f...)
	}
	return b
}

func TestParseXauth(t *testing.T) {
	file := append(xauthRecord(xFamilyLocal, "box", "0", mitCookie, []byte{0xde, 0xad}),
		xauthRecord(xFamilyWild, "", "1", "XDM-AUTHORIZATION-1", []byte{1, 2, 3})...)
	tests := []struct {
		name    string
		in      []byte
		want    int
		wantErr string
	}{
		{"empty file", nil, 0, ""},
		{"two records", file, 2, ""},
		{"truncated family", file[:1], 0, "record 1: truncated family"},
		{"truncated field", file[:len(file)-1], 0, "record 2: field of 3 bytes is truncated"},
		{"missing length", file[:3], 0, "record 1: truncated length"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseXauth(tt.in)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || len(got) != tt.want {
				t.Fatalf("parseXauth = %d entries, %v", len(got), err)
			}
		})
	}
	got, _ := parseXauth(file)
	if e := got[0]; e.Family != xFamilyLocal || e.Address != "box" || e.Number != "0" || e.Name != mitCookie || string(e.Data) != "\xde\xad" {
		t.Errorf("first record = %+v", e)
	}
}

func TestDisplayNumber(t *testing.T) {
	tests := []struct{ in, want, err string }{
		{":0", "0", ""},
		{":1.0", "1", ""},
		{"localhost:10.0", "10", ""},
		{"unix:2", "2", ""},
		{"[::1]:3", "3", ""},
		{"0", "", `display "0" has no ":"`},
		{":", "", `display ":" has no display number`},
		{":x", "", `display ":x" has no display number`},
	}
	for _, tt := range tests {
		got, err := displayNumber(tt.in)
		if got != tt.want || (err == nil) != (tt.err == "") || (err != nil && err.Error() != tt.err) {
			t.Errorf("displayNumber(%q) = %q, %v; want %q, %q", tt.in, got, err, tt.want, tt.err)
		}
	}
}

func TestCookieFor(t *testing.T) {
	entries := []xauthEntry{
		{Family: xFamilyLocal, Address: "other", Number: "0", Name: mitCookie, Data: []byte{0x01}},
		{Family: xFamilyWild, Address: "", Number: "", Name: mitCookie, Data: []byte{0x02}},
		{Family: xFamilyLocal, Address: "box", Number: "0", Name: mitCookie, Data: []byte{0x03}},
		{Family: xFamilyLocal, Address: "box", Number: "1", Name: "XDM-AUTHORIZATION-1", Data: []byte{0x04}},
		{Family: xFamilyInternet, Address: "\x7f\x00\x00\x01", Number: "2", Name: mitCookie, Data: []byte{0x05}},
	}
	tests := []struct {
		name, host, display string
		entries             []xauthEntry
		want, err           string
	}{
		{"local entry of this host wins", "box", ":0", entries, "03", ""},
		{"wildcard before another host's", "elsewhere", ":0", entries[:2], "02", ""},
		{"another host's entry of the number as a last resort", "elsewhere", ":0", entries[:1], "01", ""},
		{"only MIT cookies", "box", ":1", entries[3:4], "", "no MIT-MAGIC-COOKIE-1 for display :1"},
		{"internet family by number", "box", "localhost:2.0", entries[4:], "05", ""},
		{"bad display", "box", "nodisplay", entries, "", `display "nodisplay" has no ":"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := cookieFor(tt.entries, tt.host, tt.display)
			if got != tt.want || (err == nil) != (tt.err == "") || (err != nil && err.Error() != tt.err) {
				t.Errorf("cookieFor = %q, %v; want %q, %q", got, err, tt.want, tt.err)
			}
		})
	}
}

func TestDisplayCookieReadsXAUTHORITY(t *testing.T) {
	host, _ := os.Hostname()
	path := filepath.Join(t.TempDir(), "xauth")
	if err := os.WriteFile(path, xauthRecord(xFamilyLocal, host, "7", mitCookie, []byte{0xca, 0xfe}), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"XAUTHORITY": path}
	got, err := displayCookie(func(k string) string { return env[k] }, ":7")
	if err != nil || got != "cafe" {
		t.Errorf("displayCookie = %q, %v", got, err)
	}
	// No file: no cookie, no error.
	env = map[string]string{"HOME": t.TempDir()}
	if got, err := displayCookie(func(k string) string { return env[k] }, ":0"); got != "" || err != nil {
		t.Errorf("without a file: %q, %v", got, err)
	}
	// A damaged file names itself.
	if err := os.WriteFile(path, []byte{0, 1, 0}, 0o600); err != nil {
		t.Fatal(err)
	}
	env = map[string]string{"XAUTHORITY": path}
	if _, err := displayCookie(func(k string) string { return env[k] }, ":0"); err == nil || !strings.Contains(err.Error(), path) {
		t.Errorf("damaged file: %v", err)
	}
}
