package engine

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/api/types/volume"

	"github.com/berth-edge/berth/daemon/internal/apps"
)

// RemoveApp removes every container of the app (forcefully, with their
// anonymous volumes) and the networks berth created for it; then, if asked, the volumes labelled with the app; then,
// if asked, the images its containers used that no other container uses.
// It carries on past failures and returns them all; things already gone are
// not failures.
func (e *Engine) RemoveApp(ctx context.Context, appID string, removeVolumes, removeImages bool) error {
	if appID == "" {
		return fmt.Errorf("remove app: empty app id")
	}
	appLabel := filters.NewArgs(filters.Arg("label", apps.LabelApp+"="+appID))
	// A swarm app is a stack: its services (and their task containers)
	// and networks go first.
	if err := e.removeStack(ctx, appID); err != nil {
		return fmt.Errorf("remove app %s: %w", appID, err)
	}
	sums, err := e.cli.ContainerList(ctx, container.ListOptions{All: true, Filters: appLabel})
	if err != nil {
		return fmt.Errorf("remove app %s: list containers: %w", appID, err)
	}
	type usedImage struct{ ref, id string }
	var imgs []usedImage
	seen := map[string]bool{}
	var errs []error
	for _, s := range sums {
		if !seen[s.ImageID] {
			seen[s.ImageID] = true
			imgs = append(imgs, usedImage{ref: s.Image, id: s.ImageID})
		}
		err := e.cli.ContainerRemove(ctx, s.ID, container.RemoveOptions{Force: true, RemoveVolumes: true})
		if err != nil && !IsNotFound(err) {
			errs = append(errs, fmt.Errorf("remove container %s: %w", shortID(s.ID), err))
			continue
		}
		e.log.Info("removed container", "app", appID, "container", shortID(s.ID))
	}
	if len(errs) > 0 {
		// Volumes and images are still in use by what could not be removed.
		return fmt.Errorf("remove app %s: %w", appID, errors.Join(errs...))
	}

	if err := e.removeNetworks(ctx, appID); err != nil {
		errs = append(errs, err)
	}

	if removeVolumes {
		vols, err := e.cli.VolumeList(ctx, volume.ListOptions{Filters: appLabel})
		if err != nil {
			errs = append(errs, fmt.Errorf("list volumes: %w", err))
		} else {
			for _, v := range vols.Volumes {
				if err := e.cli.VolumeRemove(ctx, v.Name, false); err != nil && !IsNotFound(err) {
					errs = append(errs, fmt.Errorf("remove volume %s: %w", v.Name, err))
					continue
				}
				e.log.Info("removed volume", "app", appID, "volume", v.Name)
			}
		}
	}

	if removeImages {
		for _, img := range imgs {
			if err := e.removeImageIfUnused(ctx, img.ref, img.id); err != nil {
				errs = append(errs, err)
			}
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("remove app %s: %w", appID, errors.Join(errs...))
	}
	return nil
}

// removeImageIfUnused removes the image reference an app used once no
// container uses it. Docker untags the reference (other tags of the image
// survive) or, for its last tag, deletes the image; it refuses, and the image
// is kept, while a container still uses it. An image in use or gone is no
// error.
func (e *Engine) removeImageIfUnused(ctx context.Context, ref, id string) error {
	if id == "" {
		return nil
	}
	users, err := e.cli.ContainerList(ctx, container.ListOptions{
		All: true, Filters: filters.NewArgs(filters.Arg("ancestor", id)),
	})
	if err != nil {
		return fmt.Errorf("list users of image %s: %w", ref, err)
	}
	target := ref
	if ref == "" || ref == id || strings.HasPrefix(id, "sha256:"+ref) {
		target = id
	} else if ins, err := e.cli.ImageInspect(ctx, ref); err != nil || ins.ID != id {
		// The reference names another image now (or none): ours is dangling.
		target = id
	}
	for _, u := range users {
		if u.Image == ref || target == id {
			e.log.Info("image still in use, keeping it", "image", ref, "container", shortID(u.ID))
			return nil
		}
	}
	_, err = e.cli.ImageRemove(ctx, target, image.RemoveOptions{PruneChildren: true})
	switch {
	case err == nil:
		e.log.Info("removed image", "image", target)
		return nil
	case IsNotFound(err):
		return nil
	case IsConflict(err):
		e.log.Info("image still referenced, keeping it", "image", target, "reason", err.Error())
		return nil
	default:
		return fmt.Errorf("remove image %s: %w", target, err)
	}
}
