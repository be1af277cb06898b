package engine

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"
	"sync"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/mount"
	"github.com/docker/docker/api/types/volume"

	"github.com/berth-edge/berth/daemon/internal/apps"
)

// PullProgress is the state of an image pull, summed over its layers.
type PullProgress struct {
	// Current and Total are bytes downloaded and to download (Total 0:
	// not known yet).
	Current, Total int64
	// Layers is how many layers the pull has seen; LayersDone how many
	// are complete (or already present).
	Layers, LayersDone int
}

// EnsureImageProgress pulls ref unless it is present, with cred when not
// nil, else the credential auth has for its registry, calling progress (if
// set) as layers download. It is the path Apply pulls with, plus progress.
func (e *Engine) EnsureImageProgress(ctx context.Context, ref string, cred *Credential, auth Auth, progress func(PullProgress)) error {
	ok, err := e.ImagePresent(ctx, ref)
	if err != nil {
		return err
	}
	if ok {
		return nil
	}
	c, found := Credential{}, false
	if cred != nil {
		c, found = *cred, true
	} else {
		c, found = auth.For(ref)
	}
	var agg pullAggregate
	var fn func(jsonMessage)
	if progress != nil {
		fn = func(m jsonMessage) {
			if agg.add(m) {
				progress(agg.total())
			}
		}
	}
	return e.pullWithProgress(ctx, ref, c, found, fn)
}

// layerProgress is one layer's progress.
type layerProgress struct {
	current, total int64
	done           bool
}

// pullAggregate sums Docker's per-layer progress messages.
type pullAggregate struct {
	order  []string
	layers map[string]*layerProgress
}

// add records one message and reports whether it changed anything.
func (a *pullAggregate) add(m jsonMessage) bool {
	if m.ID == "" || strings.HasPrefix(m.Status, "Pulling from") || strings.HasPrefix(m.Status, "Digest:") {
		return false
	}
	if a.layers == nil {
		a.layers = map[string]*layerProgress{}
	}
	l, ok := a.layers[m.ID]
	if !ok {
		l = &layerProgress{}
		a.layers[m.ID] = l
		a.order = append(a.order, m.ID)
	}
	switch {
	case m.Status == "Downloading":
		l.current, l.total = m.ProgressDetail.Current, m.ProgressDetail.Total
	case m.Status == "Download complete", m.Status == "Verifying Checksum":
		if l.total > 0 {
			l.current = l.total
		}
	case m.Status == "Pull complete", m.Status == "Already exists":
		if l.total > 0 {
			l.current = l.total
		}
		l.done = true
	}
	return true
}

// total sums the layers.
func (a *pullAggregate) total() PullProgress {
	var p PullProgress
	for _, id := range a.order {
		l := a.layers[id]
		p.Layers++
		p.Current += l.current
		p.Total += l.total
		if l.done {
			p.LayersDone++
		}
	}
	return p
}

// ImageInfo is what a session needs to know of an image.
type ImageInfo struct {
	ID string
	// User is the image's USER ("" : root).
	User string
	// Home is the HOME of the image's environment ("" when unset).
	Home       string
	WorkingDir string
}

// InspectImage returns the image's id, user, HOME and working directory.
func (e *Engine) InspectImage(ctx context.Context, ref string) (ImageInfo, error) {
	ins, err := e.cli.ImageInspect(ctx, ref)
	if err != nil {
		return ImageInfo{}, fmt.Errorf("inspect image %s: %w", ref, err)
	}
	info := ImageInfo{ID: ins.ID}
	if ins.Config != nil {
		info.User = ins.Config.User
		info.WorkingDir = ins.Config.WorkingDir
		for _, kv := range ins.Config.Env {
			if v, ok := strings.CutPrefix(kv, "HOME="); ok {
				info.Home = v
			}
		}
	}
	return info, nil
}

// HomeVolume describes a user's persistent home volume.
type HomeVolume struct {
	// Name of the Docker volume, e.g. berth-home-1000.
	Name string
	// UID and GID own the volume's files.
	UID, GID int
	// Labels are put on the volume when it is created.
	Labels map[string]string
}

// seedTimeout bounds the seeding of a home volume.
const seedTimeout = 5 * time.Minute

// seedMount is where the seeding container mounts the home volume.
const seedMount = "/.berth-home-seed"

var seedLocks sync.Map // volume name -> *sync.Mutex

// EnsureHome creates the home volume unless it exists. A volume created
// now is seeded with the files of the image's home directory (so files
// baked into the image are not hidden by the volume), re-owned to
// UID:GID, through the Docker API: a created, never started container of
// the image gives its home as a tar, and the same container, which mounts
// the volume, takes it back. The volume's root is owned by UID:GID even
// when the image has no such directory. A seed that fails removes the
// fresh volume, so the next launch seeds again. It reports whether it
// created the volume.
func (e *Engine) EnsureHome(ctx context.Context, hv HomeVolume, image, home string) (bool, error) {
	if hv.Name == "" || !path.IsAbs(home) {
		return false, fmt.Errorf("home volume %q at %q: need a name and an absolute path", hv.Name, home)
	}
	l, _ := seedLocks.LoadOrStore(hv.Name, &sync.Mutex{})
	mu := l.(*sync.Mutex)
	mu.Lock()
	defer mu.Unlock()
	if _, err := e.cli.VolumeInspect(ctx, hv.Name); err == nil {
		return false, nil
	} else if !IsNotFound(err) {
		return false, fmt.Errorf("inspect volume %s: %w", hv.Name, err)
	}
	labels := map[string]string{apps.LabelManaged: apps.ManagedValue}
	for k, v := range hv.Labels {
		labels[k] = v
	}
	if _, err := e.cli.VolumeCreate(ctx, volume.CreateOptions{Name: hv.Name, Labels: labels}); err != nil {
		return false, fmt.Errorf("create volume %s: %w", hv.Name, err)
	}
	// Seeding is short and must not be cut half-way by the caller: a
	// half-seeded volume would pass for a seeded one.
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), seedTimeout)
	defer cancel()
	if err := e.seedHome(sctx, hv, image, home); err != nil {
		rctx := sctx
		if rerr := e.cli.VolumeRemove(rctx, hv.Name, true); rerr != nil && !IsNotFound(rerr) {
			err = errors.Join(err, fmt.Errorf("remove volume %s: %w", hv.Name, rerr))
		}
		return false, fmt.Errorf("seed home volume %s from %s:%s: %w", hv.Name, image, home, err)
	}
	e.log.Info("created home volume", "volume", hv.Name, "image", image, "home", home, "uid", hv.UID)
	return true, nil
}

func (e *Engine) seedHome(ctx context.Context, hv HomeVolume, image, home string) error {
	resp, err := e.cli.ContainerCreate(ctx, &container.Config{
		Image:           image,
		Entrypoint:      []string{"/berth-home-seed-never-started"},
		Labels:          map[string]string{apps.LabelManaged: apps.ManagedValue, "berth.home-seed": hv.Name},
		NetworkDisabled: true,
	}, &container.HostConfig{
		NetworkMode: "none",
		Mounts:      []mount.Mount{{Type: mount.TypeVolume, Source: hv.Name, Target: seedMount}},
	}, nil, nil, "")
	if err != nil {
		return fmt.Errorf("create seeding container: %w", err)
	}
	defer func() {
		rctx := context.WithoutCancel(ctx)
		if err := e.cli.ContainerRemove(rctx, resp.ID, container.RemoveOptions{Force: true}); err != nil && !IsNotFound(err) {
			e.log.Warn("cannot remove seeding container", "container", shortID(resp.ID), "err", err)
		}
	}()

	var src io.ReadCloser
	rc, _, err := e.cli.CopyFromContainer(ctx, resp.ID, home)
	switch {
	case err == nil:
		src = rc
		defer rc.Close()
	case IsNotFound(err):
		// The image has no home directory: only the root is re-owned.
	default:
		return fmt.Errorf("copy %s out of the image: %w", home, err)
	}
	pr, pw := io.Pipe()
	var wg sync.WaitGroup
	wg.Go(func() {
		pw.CloseWithError(reownTar(src, pw, strings.TrimPrefix(seedMount, "/"), hv.UID, hv.GID))
	})
	err = e.cli.CopyToContainer(ctx, resp.ID, "/", pr, container.CopyToContainerOptions{})
	_ = pr.CloseWithError(errors.New("copy ended"))
	wg.Wait()
	if err != nil {
		return fmt.Errorf("copy the home into the volume: %w", err)
	}
	return nil
}

// reownTar writes to w the tar stream of src (nil: empty) with every entry
// moved under dir (src's top directory becomes dir itself), owned by
// uid:gid, without setuid or setgid bits. dir's own entry always comes
// first.
func reownTar(src io.Reader, w io.Writer, dir string, uid, gid int) error {
	tw := tar.NewWriter(w)
	root := &tar.Header{Name: dir + "/", Typeflag: tar.TypeDir, Mode: 0o755, Uid: uid, Gid: gid}
	wroteRoot := false
	if src != nil {
		tr := tar.NewReader(src)
		for {
			h, err := tr.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				return fmt.Errorf("read home tar: %w", err)
			}
			name := strings.TrimPrefix(h.Name, "./")
			_, rest, _ := strings.Cut(name, "/")
			rest = strings.TrimSuffix(rest, "/")
			h.Uid, h.Gid, h.Uname, h.Gname = uid, gid, "", ""
			h.Mode &^= 0o6000 // no setuid or setgid files in a home
			if rest == "" {
				if h.Typeflag != tar.TypeDir {
					continue // the home is not a directory
				}
				root.Mode = h.Mode
				h = root
				wroteRoot = true
			} else {
				if h.Typeflag == tar.TypeDir {
					h.Name = dir + "/" + rest + "/"
				} else {
					h.Name = dir + "/" + rest
				}
				if h.Typeflag == tar.TypeLink {
					_, lrest, _ := strings.Cut(strings.TrimPrefix(h.Linkname, "./"), "/")
					h.Linkname = dir + "/" + lrest
				}
				if !wroteRoot {
					if err := tw.WriteHeader(root); err != nil {
						return err
					}
					wroteRoot = true
				}
			}
			if err := tw.WriteHeader(h); err != nil {
				return fmt.Errorf("write home tar: %w", err)
			}
			if h.Typeflag == tar.TypeReg {
				if _, err := io.Copy(tw, tr); err != nil {
					return fmt.Errorf("copy home tar: %w", err)
				}
			}
		}
	}
	if !wroteRoot {
		if err := tw.WriteHeader(root); err != nil {
			return fmt.Errorf("write home tar: %w", err)
		}
	}
	return tw.Close()
}

// ContainerExit returns a stopped container's exit code; running is true
// (and code 0) while it runs.
func (e *Engine) ContainerExit(ctx context.Context, id string) (code int, running bool, err error) {
	ins, err := e.cli.ContainerInspect(ctx, id)
	if err != nil {
		return 0, false, fmt.Errorf("inspect container %s: %w", id, err)
	}
	if ins.State == nil {
		return 0, false, nil
	}
	if ins.State.Running || ins.State.Restarting {
		return 0, true, nil
	}
	return ins.State.ExitCode, false, nil
}

// VolumeExists reports whether a Docker volume of that name exists.
func (e *Engine) VolumeExists(ctx context.Context, name string) (bool, error) {
	if _, err := e.cli.VolumeInspect(ctx, name); err != nil {
		if IsNotFound(err) {
			return false, nil
		}
		return false, fmt.Errorf("inspect volume %s: %w", name, err)
	}
	return true, nil
}
