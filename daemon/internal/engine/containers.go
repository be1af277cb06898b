package engine

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/go-connections/nat"

	"github.com/berth-edge/berth/daemon/internal/apps"
)

// List returns the containers of one app, in every state.
func (e *Engine) List(ctx context.Context, appID string) ([]apps.Container, error) {
	cs, err := e.list(ctx, apps.LabelApp+"="+appID)
	if err != nil {
		return nil, fmt.Errorf("list containers of app %s: %w", appID, err)
	}
	return cs, nil
}

// ListAll returns every container berth manages, in every state.
func (e *Engine) ListAll(ctx context.Context) ([]apps.Container, error) {
	cs, err := e.list(ctx, apps.LabelManaged+"="+apps.ManagedValue)
	if err != nil {
		return nil, fmt.Errorf("list managed containers: %w", err)
	}
	return cs, nil
}

func (e *Engine) list(ctx context.Context, label string) ([]apps.Container, error) {
	sums, err := e.cli.ContainerList(ctx, container.ListOptions{
		All:     true,
		Filters: filters.NewArgs(filters.Arg("label", label)),
	})
	if err != nil {
		return nil, err
	}
	out := make([]apps.Container, 0, len(sums))
	for i := range sums {
		out = append(out, fromSummary(&sums[i]))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// Inspect returns one container by id or name. A missing container gives an
// error for which IsNotFound is true.
func (e *Engine) Inspect(ctx context.Context, id string) (apps.Container, error) {
	ins, err := e.cli.ContainerInspect(ctx, id)
	if err != nil {
		return apps.Container{}, fmt.Errorf("inspect container %s: %w", id, err)
	}
	return fromInspect(&ins), nil
}

func fromSummary(s *container.Summary) apps.Container {
	c := fromLabels(s.Labels)
	c.ID = s.ID
	if len(s.Names) > 0 {
		c.Name = strings.TrimPrefix(s.Names[0], "/")
	}
	c.Image = s.Image
	c.State = s.State
	c.Status = s.Status
	c.Created = time.Unix(s.Created, 0).UTC()
	var bs []apps.PortBinding
	for _, p := range s.Ports {
		if p.PublicPort == 0 {
			continue
		}
		bs = append(bs, apps.PortBinding{
			Target:   int(p.PrivatePort),
			Protocol: p.Type,
			HostIP:   p.IP,
			HostPort: int(p.PublicPort),
		})
	}
	c.Ports = dedupePorts(bs)
	return c
}

func fromInspect(ins *container.InspectResponse) apps.Container {
	var labels map[string]string
	if ins.Config != nil {
		labels = ins.Config.Labels
	}
	c := fromLabels(labels)
	if ins.ContainerJSONBase != nil {
		c.ID = ins.ID
		c.Name = strings.TrimPrefix(ins.Name, "/")
		if t, err := time.Parse(time.RFC3339Nano, ins.Created); err == nil {
			c.Created = t.UTC()
		}
		if st := ins.State; st != nil {
			c.State = st.Status
			c.Status = inspectStatus(st)
		}
	}
	if ins.Config != nil {
		c.Image = ins.Config.Image
	}
	if ins.NetworkSettings != nil {
		c.Ports = portsFromMap(ins.NetworkSettings.Ports)
	}
	return c
}

// inspectStatus renders a short human status like the one `docker ps` shows.
func inspectStatus(st *container.State) string {
	switch st.Status {
	case container.StateRunning:
		if st.Restarting {
			return "Restarting"
		}
		return "Up since " + st.StartedAt
	case container.StateExited, container.StateDead:
		s := fmt.Sprintf("Exited (%d) at %s", st.ExitCode, st.FinishedAt)
		if st.OOMKilled {
			s += ", OOM killed"
		}
		if st.Error != "" {
			s += ": " + st.Error
		}
		return s
	case container.StateCreated:
		if st.Error != "" {
			return "Created: " + st.Error
		}
		return "Created"
	default:
		return string(st.Status)
	}
}

func fromLabels(l map[string]string) apps.Container {
	c := apps.Container{
		AppID:    l[apps.LabelApp],
		Service:  l[apps.LabelComposeService],
		Kind:     apps.Kind(l[apps.LabelKind]),
		Owner:    l[apps.LabelOwner],
		SpecHash: l[apps.LabelSpecHash],
	}
	if len(l) > 0 {
		c.Labels = make(map[string]string, len(l))
		for k, v := range l {
			c.Labels[k] = v
		}
	}
	return c
}

func portsFromMap(pm nat.PortMap) []apps.PortBinding {
	var bs []apps.PortBinding
	for port, hbs := range pm {
		for _, hb := range hbs {
			hp, err := strconv.Atoi(hb.HostPort)
			if err != nil || hp == 0 {
				continue
			}
			bs = append(bs, apps.PortBinding{
				Target:   port.Int(),
				Protocol: port.Proto(),
				HostIP:   hb.HostIP,
				HostPort: hp,
			})
		}
	}
	return dedupePorts(bs)
}

// dedupePorts drops the IPv6 twin of a binding Docker makes for both
// families, preferring the IPv4 one: a [::] binding goes when a 0.0.0.0
// binding publishes the same container port. The twin usually has the same
// host port (0.0.0.0:32768 and [::]:32768), but Docker 20.10 may give an
// ephemeral one a different port per family, and the port berthd reports
// (and publishes to Nuvla as tcp.<port>) must be one. It also turns the
// wildcard addresses into "" (all addresses), and sorts the result.
func dedupePorts(bs []apps.PortBinding) []apps.PortBinding {
	if len(bs) == 0 {
		return nil
	}
	type key struct {
		target int
		proto  string
	}
	v4 := map[key]bool{}
	for _, b := range bs {
		if b.HostIP == "0.0.0.0" {
			v4[key{b.Target, b.Protocol}] = true
		}
	}
	out := make([]apps.PortBinding, 0, len(bs))
	for _, b := range bs {
		switch b.HostIP {
		case "::":
			if v4[key{b.Target, b.Protocol}] {
				continue
			}
			b.HostIP = ""
		case "0.0.0.0":
			b.HostIP = ""
		}
		out = append(out, b)
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.Target != b.Target {
			return a.Target < b.Target
		}
		if a.Protocol != b.Protocol {
			return a.Protocol < b.Protocol
		}
		if a.HostPort != b.HostPort {
			return a.HostPort < b.HostPort
		}
		return a.HostIP < b.HostIP
	})
	return out
}
