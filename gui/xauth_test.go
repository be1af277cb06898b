package main

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// xauthRecord encodes one Xauthority record.
func xauthRecord(family uint16, address, number, name string, data []byte) []byte {
	var b bytes.Buffer
	_ = binary.Write(&b, binary.BigEndian, family)
	for _, f := range [][]byte{[]byte(address), []byte(number), []byte(name), data} {
		_ = binary.Write(&b, binary.BigEndian, uint16(len(f)))
		b.Write(f)
	}
	return b.Bytes()
}

func TestParseXauthority(t *testing.T) {
	cookie := []byte{0xde, 0xad, 0xbe, 0xef, 0x01, 0x02}
	two := append(xauthRecord(familyLocal, "box", "0", cookieName, cookie), xauthRecord(0, "\x7f\x00\x00\x01", "10", "XDM-AUTHORIZATION-1", []byte{1})...)
	for _, c := range []struct {
		name    string
		in      []byte
		want    int
		wantErr string
	}{
		{"empty file", nil, 0, ""},
		{"one record", xauthRecord(familyLocal, "box", "0", cookieName, cookie), 1, ""},
		{"two records", two, 2, ""},
		{"truncated family", []byte{0x01}, 0, "record 1"},
		{"truncated field", two[:len(two)-1], 0, "record 2 is truncated"},
		{"length past the end", []byte{0x01, 0x00, 0x00, 0x09, 'b'}, 0, "record 1 is truncated"},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := parseXauthority(bytes.NewReader(c.in))
			if c.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, c.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != c.want {
				t.Fatalf("%d records, want %d: %+v", len(got), c.want, got)
			}
		})
	}
	got, _ := parseXauthority(bytes.NewReader(two))
	if e := got[0]; e.Family != familyLocal || e.Address != "box" || e.Number != "0" || e.Name != cookieName || !bytes.Equal(e.Data, cookie) {
		t.Errorf("record 1 = %+v", e)
	}
}

func TestDisplayNumber(t *testing.T) {
	for _, c := range []struct {
		display string
		num     string
		local   bool
		bad     bool
	}{
		{":0", "0", true, false},
		{":1.0", "1", true, false},
		{"unix:2", "2", true, false},
		{"localhost:10.0", "10", false, false},
		{"box:3", "3", false, false},
		{"", "", false, true},
		{"0", "", false, true},
		{":", "", false, true},
		{":x", "", false, true},
		{"::1:0", "", false, true},
	} {
		num, local, err := displayNumber(c.display)
		if (err != nil) != c.bad || num != c.num || local != c.local {
			t.Errorf("displayNumber(%q) = %q, %v, %v; want %q, %v, error %v", c.display, num, local, err, c.num, c.local, c.bad)
		}
	}
}

func TestCookieFor(t *testing.T) {
	a, b, w := []byte{0xaa}, []byte{0xbb}, []byte{0xcc}
	entries := []xauthEntry{
		{Family: familyLocal, Address: "other", Number: "0", Name: cookieName, Data: a},
		{Family: familyLocal, Address: "box", Number: "0", Name: cookieName, Data: b},
		{Family: familyLocal, Address: "box", Number: "1", Name: "XDM-AUTHORIZATION-1", Data: a},
		{Family: familyWild, Number: "2", Name: cookieName, Data: w},
		{Family: 0, Address: "\x7f\x00\x00\x01", Number: "5", Name: cookieName, Data: a},
	}
	for _, c := range []struct {
		display, host, want, wantErr string
	}{
		{":0", "box", "bb", ""},            // this host's record
		{":0.0", "box", "bb", ""},          // the screen does not matter
		{"unix:0", "box", "bb", ""},        // unix: is local
		{":0", "elsewhere", "aa", ""},      // no record for this host: the first local one
		{":2", "box", "cc", ""},            // FamilyWild
		{":1", "box", "", "no MIT-MAGIC"},  // only another protocol
		{":5", "box", "", "no MIT-MAGIC"},  // only a TCP record
		{":7", "box", "", "no MIT-MAGIC"},  // nothing
		{"localhost:0", "box", "", "TCP"},  // sessions reach local displays only
		{"nonsense", "box", "", "DISPLAY"}, // not a display
	} {
		got, err := cookieFor(entries, c.display, c.host)
		if c.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), c.wantErr) {
				t.Errorf("cookieFor(%q, %q) = %q, %v; want an error containing %q", c.display, c.host, got, err, c.wantErr)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("cookieFor(%q, %q) = %q, %v; want %q", c.display, c.host, got, err, c.want)
		}
	}
}

// TestDisplayCookieFromFile reads a file written by xauth(1) itself when
// it is installed, else one written by xauthRecord.
func TestDisplayCookieFromFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "Xauthority")
	cookie := "0123456789abcdef0123456789abcdef"
	host, _ := os.Hostname()
	data, _ := hex.DecodeString(cookie)
	if err := os.WriteFile(path, xauthRecord(familyLocal, host, "42", cookieName, data), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("XAUTHORITY", path)
	t.Setenv("DISPLAY", ":42")
	display, got, err := displayCookie()
	if err != nil || display != ":42" || got != cookie {
		t.Fatalf("displayCookie() = %q, %q, %v; want :42, %s", display, got, err, cookie)
	}
	t.Setenv("XAUTHORITY", filepath.Join(dir, "missing"))
	if display, got, err := displayCookie(); err != nil || display != ":42" || got != "" {
		t.Errorf("no Xauthority file: %q, %q, %v; want :42 and no cookie", display, got, err)
	}
	t.Setenv("DISPLAY", "")
	if _, _, err := displayCookie(); err == nil || !strings.Contains(err.Error(), "DISPLAY") {
		t.Errorf("no DISPLAY: err = %v", err)
	}
}

func TestXauthCompatibleWithXauthTool(t *testing.T) {
	xauth, err := lookTool("xauth")
	if err != nil {
		t.Skip("SKIP: xauth(1) not installed (apt-get install xauth)")
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "Xauthority")
	cookie := "00112233445566778899aabbccddeeff"
	if out, err := runTool(xauth, "-f", path, "add", ":31", ".", cookie); err != nil {
		t.Fatalf("xauth add: %v\n%s", err, out)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	entries, err := parseXauthority(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	host, _ := os.Hostname()
	got, err := cookieFor(entries, ":31", host)
	if err != nil || got != cookie {
		t.Fatalf("cookie from xauth's file = %q, %v; want %s (%+v)", got, err, cookie, entries)
	}
}
