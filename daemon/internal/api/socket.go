package api

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"time"

	"golang.org/x/sys/unix"
)

// Peer is the process at the other end of a unix-socket request, from the
// socket's SO_PEERCRED.
type Peer struct {
	UID int
	GID int
	PID int
}

type peerKey struct{}

// PeerFromContext returns the caller of a request that came in on the unix
// socket; ok is false for the web listener (or when the kernel did not say).
func PeerFromContext(ctx context.Context) (Peer, bool) {
	p, ok := ctx.Value(peerKey{}).(Peer)
	return p, ok
}

// peerConnContext stores the peer credentials of a unix connection in the
// context of every request it carries.
func (s *Server) peerConnContext(ctx context.Context, c net.Conn) context.Context {
	uc, ok := c.(*net.UnixConn)
	if !ok {
		return ctx
	}
	p, err := peerCred(uc)
	if err != nil {
		s.log.Warn("reading the peer credentials of a socket connection", "err", err)
		return ctx
	}
	return context.WithValue(ctx, peerKey{}, p)
}

func peerCred(c *net.UnixConn) (Peer, error) {
	raw, err := c.SyscallConn()
	if err != nil {
		return Peer{}, fmt.Errorf("peer credentials: %w", err)
	}
	var cred *unix.Ucred
	var credErr error
	if err := raw.Control(func(fd uintptr) {
		cred, credErr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	}); err != nil {
		return Peer{}, fmt.Errorf("peer credentials: %w", err)
	}
	if credErr != nil {
		return Peer{}, fmt.Errorf("peer credentials: %w", credErr)
	}
	return Peer{UID: int(cred.Uid), GID: int(cred.Gid), PID: int(cred.Pid)}, nil
}

// listenUnix prepares the socket's directory, clears a stale socket, binds,
// and sets the socket's mode and group.
func (s *Server) listenUnix(ctx context.Context) (net.Listener, error) {
	path := s.opts.Socket
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("socket directory: %w", err)
	}
	if err := clearStaleSocket(ctx, path); err != nil {
		return nil, err
	}
	var lc net.ListenConfig
	l, err := lc.Listen(ctx, "unix", path)
	if err != nil {
		return nil, fmt.Errorf("local API socket: %w", err)
	}
	if err := os.Chmod(path, 0o660); err != nil {
		_ = l.Close()
		return nil, fmt.Errorf("local API socket: %w", err)
	}
	s.chownSocket(path)
	return l, nil
}

// chownSocket gives the socket to SocketGroup. A missing group or a failed
// chown leaves the socket to the daemon's own group, with a warning.
func (s *Server) chownSocket(path string) {
	name := s.opts.SocketGroup
	if name == "" {
		s.log.Debug("no socket group configured; the socket stays owner-only", "socket", path)
		return
	}
	g, err := user.LookupGroup(name)
	if err != nil {
		s.log.Warn("socket group not found; only root can use the local API (create the group and restart berthd)",
			"group", name, "socket", path, "err", err)
		return
	}
	gid, err := strconv.Atoi(g.Gid)
	if err != nil {
		s.log.Warn("socket group has a non-numeric gid", "group", name, "gid", g.Gid)
		return
	}
	if err := os.Chown(path, -1, gid); err != nil {
		s.log.Warn("cannot give the socket to its group; only its owner can use the local API",
			"group", name, "socket", path, "err", err)
	}
}

// clearStaleSocket removes a socket file nobody listens on. Anything else at
// path, or a socket with a live listener, is an error.
func clearStaleSocket(ctx context.Context, path string) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("local API socket: %w", err)
	}
	if fi.Mode().Type() != fs.ModeSocket {
		return fmt.Errorf("local API socket: %s exists and is not a socket; remove it or configure another path", path)
	}
	dctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	var d net.Dialer
	if c, err := d.DialContext(dctx, "unix", path); err == nil {
		_ = c.Close()
		return fmt.Errorf("local API socket: another process (another berthd?) is listening on %s", path)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("removing stale socket: %w", err)
	}
	return nil
}

// removeSocket removes the socket file if it is still there.
func removeSocket(path string) error {
	fi, err := os.Lstat(path)
	if err != nil || fi.Mode().Type() != fs.ModeSocket {
		return nil
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("removing socket: %w", err)
	}
	return nil
}
