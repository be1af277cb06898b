package jobs

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/berth-edge/berth/daemon/internal/apps"
	"github.com/berth-edge/berth/daemon/internal/nuvla"
)

// Module compatibilities of application modules.
const (
	CompatibilityCompose = "docker-compose"
	CompatibilitySwarm   = "swarm"
)

// appsDirName is the directory, next to the state file, that holds one
// directory per compose app: its compose file and the module's files, so
// relative paths in the compose file (bind mounts, env_file, configs) work
// and keep working after the job, as long as the app runs.
const appsDirName = "apps"

// appDir is where a compose app's files live.
func (r *Runner) appDir(uuid string) string {
	return filepath.Join(filepath.Dir(r.opts.Store.Path()), appsDirName, uuid)
}

// deploymentApp converts the deployment's module into an App: compose
// applications here, components by toApp.
func (r *Runner) deploymentApp(ctx context.Context, d *Deployment, env map[string]string) (*apps.App, error) {
	if d.Module.Subtype != "application" {
		return toApp(d, env)
	}
	switch d.Module.Compatibility {
	case "", CompatibilityCompose, CompatibilitySwarm:
	default:
		return nil, fmt.Errorf("module %s: compatibility %q is not supported (docker-compose or swarm)", d.Module.ID, d.Module.Compatibility)
	}
	content, err := apps.ParseApplication(d.Module.Content)
	if err != nil {
		return nil, fmt.Errorf("module %s: %w", d.Module.ID, err)
	}
	dir := r.appDir(d.UUID())
	if err := writeAppFiles(dir, content); err != nil {
		return nil, err
	}
	// The interpolation environment: the module's variables, then the
	// NUVLA_* ones (module variables cannot start with NUVLA_).
	ienv := content.Env()
	for k, v := range env {
		ienv[k] = v
	}
	name := d.Module.Name
	if name == "" {
		name = d.Module.Path
	}
	in := apps.ComposeInput{AppID: d.UUID(), Name: name, Dir: dir, Env: ienv, Outputs: content.OutputParameters, URLs: content.URLs}
	if d.Module.Compatibility == CompatibilitySwarm {
		return r.swarmApp(ctx, in)
	}
	app, err := apps.FromCompose(ctx, in)
	if err != nil {
		return nil, fmt.Errorf("module %s: %w", d.Module.ID, err)
	}
	return app, nil
}

// writeAppFiles writes the compose file and the module's files into dir.
// Files of an earlier version are overwritten, never deleted: directories
// a relative bind mount created there may hold the app's data.
func writeAppFiles(dir string, a *apps.Application) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("create app directory: %w", err)
	}
	write := func(name, content string) error {
		p := filepath.Join(dir, filepath.Clean(name))
		if !strings.HasPrefix(p, dir+string(filepath.Separator)) {
			return fmt.Errorf("file %q is outside the app directory", name)
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return fmt.Errorf("write %s: %w", name, err)
		}
		tmp := p + ".tmp"
		if err := os.WriteFile(tmp, []byte(content), 0o644); err != nil {
			return fmt.Errorf("write %s: %w", name, err)
		}
		if err := os.Rename(tmp, p); err != nil {
			_ = os.Remove(tmp)
			return fmt.Errorf("write %s: %w", name, err)
		}
		return nil
	}
	for _, f := range a.Files {
		if err := write(f.FileName, f.FileContent); err != nil {
			return err
		}
	}
	return write(apps.ComposeFileName, a.DockerCompose)
}

// removeAppDir removes a compose app's directory; it is kept on a stop
// that keeps volumes, since relative bind mounts keep data there.
func (r *Runner) removeAppDir(uuid string) error {
	dir := r.appDir(uuid)
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("remove app directory %s: %w", dir, err)
	}
	return nil
}

// publishContainerParams publishes what Nuvla's job engine publishes for
// the running containers: for a component, "<proto>.<port>" with the
// deployment uuid as node-id; for a compose application, per service
// "<svc>.node-id", "<svc>.service-id", "<svc>.image" and
// "<svc>.<proto>.<port>", with node-id = <svc>.
func publishContainerParams(ctx context.Context, sess *nuvla.Client, d *Deployment, cs []apps.Container, acl map[string]any) (map[string]string, error) {
	if d.Module.Subtype != "application" {
		return publishPorts(ctx, sess, d, cs, acl)
	}
	out := map[string]string{}
	for _, c := range cs {
		if c.Service == "" {
			continue
		}
		for _, kv := range serviceParams(c) {
			out[kv[0]] = kv[1]
			p := nuvla.Parameter{Name: kv[0], NodeID: c.Service, Value: nuvla.StrPtr(kv[1]), Description: kv[2]}
			if err := sess.SetParameter(ctx, d.ID, p, acl); err != nil {
				return nil, err
			}
		}
	}
	return out, nil
}

// serviceParams are the [name, value, description] triples of one
// compose service's container.
func serviceParams(c apps.Container) [][3]string {
	s := c.Service
	ps := [][3]string{
		{s + ".node-id", s, "node id of service " + s},
		{s + ".service-id", c.ID, "container id of service " + s},
		{s + ".image", c.Image, "image of service " + s},
	}
	for _, b := range c.Ports {
		if b.HostPort == 0 {
			continue
		}
		name := s + "." + b.Protocol + "." + strconv.Itoa(b.Target)
		ps = append(ps, [3]string{name, strconv.Itoa(b.HostPort), "host port published for " + name})
	}
	return ps
}
