// Command xwindow is a minimal X11 client for berth's desktop-app tests:
// it connects to $DISPLAY through its unix socket (authenticating with the
// MIT-MAGIC-COOKIE-1 of $XAUTHORITY when there is one), creates and maps a
// window named by its first argument, and stays until the server closes
// the connection or it gets SIGTERM. It speaks the X11 protocol with the
// standard library only, so it builds statically into images FROM scratch.
//
//	xwindow NAME
package main

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"
)

func main() {
	name := "xwindow"
	if len(os.Args) > 1 {
		name = os.Args[1]
	}
	if err := run(name); err != nil {
		fmt.Fprintln(os.Stderr, "xwindow:", err)
		os.Exit(1)
	}
}

func run(name string) error {
	display := os.Getenv("DISPLAY")
	num, ok := strings.CutPrefix(display, ":")
	if !ok || num == "" {
		return fmt.Errorf("DISPLAY %q is not a local display (:N)", display)
	}
	num, _, _ = strings.Cut(num, ".")
	conn, err := net.Dial("unix", "/tmp/.X11-unix/X"+num)
	if err != nil {
		return fmt.Errorf("connect to display %s: %w", display, err)
	}
	defer conn.Close()
	authName, authData := cookie(os.Getenv("XAUTHORITY"), num)
	r := bufio.NewReader(conn)
	setup, err := handshake(conn, r, authName, authData)
	if err != nil {
		return err
	}
	wid := setup.idBase | 1
	var req []byte
	le := binary.LittleEndian
	// CreateWindow: depth CopyFromParent, 320x200, InputOutput, BackPixel.
	req = append(req, 1, 0)
	req = le.AppendUint16(req, 9)
	req = le.AppendUint32(req, wid)
	req = le.AppendUint32(req, setup.root)
	req = le.AppendUint16(req, 10)
	req = le.AppendUint16(req, 10)
	req = le.AppendUint16(req, 320)
	req = le.AppendUint16(req, 200)
	req = le.AppendUint16(req, 0)
	req = le.AppendUint16(req, 1)
	req = le.AppendUint32(req, 0)
	req = le.AppendUint32(req, 0x2)
	req = le.AppendUint32(req, setup.white)
	// ChangeProperty WM_NAME (39) of type STRING (31), format 8.
	data := pad([]byte(name))
	req = append(req, 18, 0)
	req = le.AppendUint16(req, uint16(6+len(data)/4))
	req = le.AppendUint32(req, wid)
	req = le.AppendUint32(req, 39)
	req = le.AppendUint32(req, 31)
	req = append(req, 8, 0, 0, 0)
	req = le.AppendUint32(req, uint32(len(name)))
	req = append(req, data...)
	// MapWindow, then GetInputFocus as a round trip.
	req = append(req, 8, 0)
	req = le.AppendUint16(req, 2)
	req = le.AppendUint32(req, wid)
	req = append(req, 43, 0)
	req = le.AppendUint16(req, 1)
	if _, err := conn.Write(req); err != nil {
		return fmt.Errorf("send requests: %w", err)
	}
	reply := make([]byte, 32)
	if _, err := io.ReadFull(r, reply); err != nil {
		return fmt.Errorf("read reply: %w", err)
	}
	if reply[0] == 0 {
		return fmt.Errorf("X error %d on request %d", reply[1], reply[10])
	}
	fmt.Printf("mapped window 0x%x %q on %s\n", wid, name, display)

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	closed := make(chan error, 1)
	go func() {
		_, err := io.Copy(io.Discard, r) // events until the server hangs up
		closed <- err
	}()
	select {
	case <-sig:
		return nil
	case err := <-closed:
		if err == nil {
			err = errors.New("the X server closed the connection")
		}
		return err
	}
}

type setupInfo struct {
	idBase, root, white uint32
}

func handshake(w io.Writer, r io.Reader, authName, authData []byte) (setupInfo, error) {
	le := binary.LittleEndian
	req := []byte{'l', 0}
	req = le.AppendUint16(req, 11)
	req = le.AppendUint16(req, 0)
	req = le.AppendUint16(req, uint16(len(authName)))
	req = le.AppendUint16(req, uint16(len(authData)))
	req = append(req, 0, 0)
	req = append(req, pad(authName)...)
	req = append(req, pad(authData)...)
	if _, err := w.Write(req); err != nil {
		return setupInfo{}, fmt.Errorf("send setup: %w", err)
	}
	head := make([]byte, 8)
	if _, err := io.ReadFull(r, head); err != nil {
		return setupInfo{}, fmt.Errorf("read setup: %w", err)
	}
	body := make([]byte, int(le.Uint16(head[6:]))*4)
	if _, err := io.ReadFull(r, body); err != nil {
		return setupInfo{}, fmt.Errorf("read setup: %w", err)
	}
	if head[0] != 1 {
		return setupInfo{}, fmt.Errorf("the X server refused the connection: %s", strings.TrimRight(string(body[:min(int(head[1]), len(body))]), "\x00"))
	}
	vlen := int(le.Uint16(body[16:]))
	nformats := int(body[21])
	off := 32 + len(pad(make([]byte, vlen))) + 8*nformats
	if len(body) < off+12 {
		return setupInfo{}, errors.New("short setup reply")
	}
	return setupInfo{idBase: le.Uint32(body[4:]), root: le.Uint32(body[off:]), white: le.Uint32(body[off+8:])}, nil
}

// cookie reads the MIT-MAGIC-COOKIE-1 for display num from an Xauthority
// file; none when the file is absent or has no matching entry.
func cookie(file, num string) ([]byte, []byte) {
	if file == "" {
		return nil, nil
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, nil
	}
	field := func() ([]byte, bool) {
		if len(b) < 2 {
			return nil, false
		}
		n := int(binary.BigEndian.Uint16(b))
		if len(b) < 2+n {
			return nil, false
		}
		v := b[2 : 2+n]
		b = b[2+n:]
		return v, true
	}
	for len(b) >= 2 {
		b = b[2:] // family
		_, ok1 := field()
		dnum, ok2 := field()
		name, ok3 := field()
		data, ok4 := field()
		if !(ok1 && ok2 && ok3 && ok4) {
			return nil, nil
		}
		if string(name) == "MIT-MAGIC-COOKIE-1" && (string(dnum) == num || len(dnum) == 0) {
			return name, data
		}
	}
	return nil, nil
}

func pad(b []byte) []byte {
	if n := len(b) % 4; n != 0 {
		return append(append([]byte(nil), b...), make([]byte, 4-n)...)
	}
	return b
}
