package engine

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/docker/docker/api/types/volume"

	"github.com/berth-edge/berth/daemon/internal/apps"
)

// nfsPort is the port of an NFS server when the mount options name none.
const nfsPort = 2049

// nfsPreflightTimeout bounds Apply's check that an NFS server answers.
const nfsPreflightTimeout = 5 * time.Second

// IsNFS reports whether m is a volume backed by NFS through the local driver.
func IsNFS(m apps.Mount) bool {
	if m.Type != apps.MountVolume && m.Type != "" {
		return false
	}
	switch strings.ToLower(m.VolumeOptions["type"]) {
	case "nfs", "nfs4":
		return true
	}
	return false
}

// NFSServer returns the host and port of an NFS volume's server, taken from
// the addr= and port= entries of its "o" option.
func NFSServer(m apps.Mount) (host string, port int, err error) {
	port = nfsPort
	for _, opt := range strings.Split(m.VolumeOptions["o"], ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(opt), "=")
		switch k {
		case "addr":
			host = strings.Trim(v, "[]")
		case "port":
			p, perr := strconv.Atoi(v)
			if perr != nil || p < 0 || p > 65535 {
				return "", 0, fmt.Errorf("NFS mount %s: bad port option %q", m.Target, v)
			}
			if p != 0 {
				port = p
			}
		}
	}
	if host == "" {
		return "", 0, fmt.Errorf("NFS mount %s: volume option \"o\" has no addr=<server>", m.Target)
	}
	return host, port, nil
}

// CheckNFS checks, before anything is created, that the NFS server behind an
// NFS volume answers on TCP. Other mounts pass unchecked.
func CheckNFS(ctx context.Context, m apps.Mount, timeout time.Duration) error {
	if !IsNFS(m) {
		return nil
	}
	host, port, err := NFSServer(m)
	if err != nil {
		return err
	}
	addr := net.JoinHostPort(host, strconv.Itoa(port))
	d := net.Dialer{Timeout: timeout}
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("NFS server %s:%d for mount %s does not answer: %w", host, port, m.Target, err)
	}
	_ = conn.Close()
	return nil
}

// ensureVolume creates a named volume with berth's labels unless a volume of
// that name exists already (which is then used as it is, and left alone by
// RemoveApp unless it carries the app's label).
func (e *Engine) ensureVolume(ctx context.Context, app *apps.App, m apps.Mount) error {
	if m.Source == "" {
		return nil // anonymous: Docker creates it with the container
	}
	if _, err := e.cli.VolumeInspect(ctx, m.Source); err == nil {
		return nil
	} else if !IsNotFound(err) {
		return fmt.Errorf("inspect volume %s: %w", m.Source, err)
	}
	decl := app.Volume(m.Source)
	if decl != nil && decl.External {
		return fmt.Errorf("external volume %s does not exist: create it first", m.Source)
	}
	opts := volume.CreateOptions{
		Name: m.Source,
		Labels: map[string]string{
			apps.LabelApp:            app.ID,
			apps.LabelManaged:        apps.ManagedValue,
			apps.LabelComposeProject: app.ID,
		},
	}
	if decl != nil {
		for k, v := range decl.Labels {
			opts.Labels[k] = v
		}
		opts.Driver = decl.Driver
		if len(decl.DriverOpts) > 0 {
			opts.DriverOpts = make(map[string]string, len(decl.DriverOpts))
			for k, v := range decl.DriverOpts {
				opts.DriverOpts[k] = v
			}
		}
	}
	if opts.DriverOpts == nil && len(m.VolumeOptions) > 0 {
		opts.Driver = "local"
		opts.DriverOpts = make(map[string]string, len(m.VolumeOptions))
		for k, v := range m.VolumeOptions {
			opts.DriverOpts[k] = v
		}
	}
	if _, err := e.cli.VolumeCreate(ctx, opts); err != nil {
		return fmt.Errorf("create volume %s: %w", m.Source, err)
	}
	e.log.Info("created volume", "app", app.ID, "volume", m.Source, "driver-type", m.VolumeOptions["type"])
	return nil
}
