package agent

import (
	"context"
	"errors"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/berth-edge/berth/daemon/client"
	"github.com/berth-edge/berth/daemon/internal/apps"
	"github.com/berth-edge/berth/daemon/internal/config"
	"github.com/berth-edge/berth/daemon/internal/engine"
	"github.com/berth-edge/berth/daemon/internal/events"
	"github.com/berth-edge/berth/daemon/internal/store"
	"github.com/berth-edge/berth/daemon/internal/telemetry"
)

// Docker is the part of the engine the local API reports on.
type Docker interface {
	ListAll(ctx context.Context) ([]apps.Container, error)
	Ping(ctx context.Context) (engine.ServerInfo, error)
}

// Backend answers the local API from the agent, the store and Docker.
type Backend struct {
	Agent   *Agent
	Store   *store.Store
	Docker  Docker
	Version string
	Started time.Time
	// History is the telemetry history (nil: no telemetry route).
	History *telemetry.History
	// Recorder takes fresh samples on demand.
	Recorder *telemetry.Recorder
	// Hub carries the events of GET /api/v1/events.
	Hub *events.Hub
	// MetricsHandler serves /metrics.
	MetricsHandler http.Handler
}

// Telemetry returns the latest sample, the history and the last status
// document the control plane acknowledged.
// With fresh, it samples now unless the latest sample is under a second
// old (berth top refreshes every second).
func (b *Backend) Telemetry(ctx context.Context, fresh bool) (client.Telemetry, error) {
	t := client.Telemetry{History: []client.Sample{}}
	if fresh && b.Recorder != nil {
		if s, ok := b.History.Latest(); !ok || time.Since(s.Time) >= 900*time.Millisecond {
			if _, err := b.Recorder.Tick(ctx); err != nil {
				return t, err
			}
		}
	}
	if b.History != nil {
		t.History = b.History.Samples()
		if s, ok := b.History.Latest(); ok {
			t.Latest = &s
		}
	}
	if b.Agent != nil {
		ts := b.Agent.Telemetry()
		t.Acknowledged, t.Patches, t.Puts = ts.Acknowledged, ts.Patches, ts.Puts
	}
	return t, nil
}

// Events returns the event hub.
func (b *Backend) Events() *events.Hub { return b.Hub }

// Metrics returns the /metrics handler.
func (b *Backend) Metrics() http.Handler { return b.MetricsHandler }

// Status reports berthd's state.
func (b *Backend) Status(ctx context.Context) client.Status {
	state, msg := b.Agent.State()
	st := client.Status{
		Version: b.Version,
		Mode:    "standalone",
		State:   state,
		Message: msg,
		Since:   b.Agent.Since(),
		Started: b.Started,
		Jobs:    []client.Job{},
		Apps:    map[string]int{},
	}
	if l := b.Agent.Link(); l != nil {
		st.Mode = "nuvla"
		st.Nuvla = l
	}
	cctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	if info, err := b.Docker.Ping(cctx); err != nil {
		st.Docker = client.Docker{Error: err.Error()}
	} else {
		st.Docker = client.Docker{Connected: true, Version: info.Version, APIVersion: info.APIVersion}
	}
	if recs, err := b.Store.Jobs(); err == nil {
		for i, j := range recs {
			if i == 20 {
				break
			}
			st.Jobs = append(st.Jobs, client.Job{ID: j.ID, Action: j.Action, Target: j.Target, State: j.State,
				Message: j.Message, ReturnCode: j.ReturnCode, Received: j.Received, Updated: j.Updated})
		}
	}
	if list, err := b.Apps(cctx); err == nil {
		for _, a := range list {
			st.Apps[a.State]++
		}
	}
	return st
}

// Apps lists every app berthd manages, plus containers labelled by berth
// that no desired state claims (shown as unmanaged, never touched).
func (b *Backend) Apps(ctx context.Context) ([]client.App, error) {
	recs, err := b.Store.Apps()
	if err != nil {
		return nil, err
	}
	cs, err := b.Docker.ListAll(ctx)
	if err != nil {
		return nil, err
	}
	byApp := map[string][]apps.Container{}
	for _, c := range cs {
		byApp[c.AppID] = append(byApp[c.AppID], c)
	}
	out := []client.App{}
	for _, r := range recs {
		out = append(out, view(r, byApp[r.App.ID]))
		delete(byApp, r.App.ID)
	}
	for id, cs := range byApp {
		a := client.App{ID: id, Kind: string(cs[0].Kind), Owner: cs[0].Owner, Source: "unmanaged", Desired: "unknown"}
		for _, c := range cs {
			a.Services = append(a.Services, service(c))
		}
		a.State = summarize(a.Services, len(a.Services))
		a.Created = earliest(cs)
		out = append(out, a)
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].Created.Equal(out[j].Created) {
			return out[i].Created.After(out[j].Created)
		}
		return out[i].ID < out[j].ID
	})
	return out, nil
}

func view(r store.AppRecord, cs []apps.Container) client.App {
	a := client.App{
		ID: r.App.ID, Name: r.App.Name, Kind: string(r.App.Kind), Owner: r.App.Owner,
		Source: r.Source, Desired: r.Desired, DeploymentID: r.DeploymentID,
		Params: map[string]string{},
	}
	if r.Error != "" {
		a.Desired = "error"
	}
	for k, v := range r.Params {
		a.Params[k] = v
	}
	for _, s := range r.App.Services {
		found := false
		for _, c := range cs {
			if c.Service == s.Name {
				a.Services = append(a.Services, service(c))
				found = true
			}
		}
		if !found {
			a.Services = append(a.Services, client.Service{Name: s.Name, Image: s.Image, State: "missing"})
		}
	}
	a.State = summarize(a.Services, len(r.App.Services))
	a.Created = earliest(cs)
	a.URLs = resolveURLs(r.App.URLs, a.Params)
	return a
}

func service(c apps.Container) client.Service {
	s := client.Service{Name: c.Service, Image: c.Image, ContainerID: c.ID, State: c.State, Status: c.Status, Created: c.Created}
	for _, p := range c.Ports {
		s.Ports = append(s.Ports, client.Port{Target: p.Target, Protocol: p.Protocol, HostIP: p.HostIP, HostPort: p.HostPort})
	}
	return s
}

// summarize gives one word for an app's containers.
func summarize(ss []client.Service, want int) string {
	running := 0
	for _, s := range ss {
		if s.State == apps.StateRunning {
			running++
		}
	}
	switch {
	case want == 0 || len(ss) == 0:
		return "missing"
	case running == want:
		return "running"
	case running == 0:
		return "stopped"
	default:
		return "partial"
	}
}

func earliest(cs []apps.Container) time.Time {
	var t time.Time
	for _, c := range cs {
		if t.IsZero() || c.Created.Before(t) {
			t = c.Created
		}
	}
	return t
}

// resolveURLs fills ${param} placeholders of the module's URL templates
// with the published parameters; templates with unknown names are dropped.
func resolveURLs(tmpls [][2]string, params map[string]string) map[string]string {
	if len(tmpls) == 0 {
		return nil
	}
	out := map[string]string{}
	for _, t := range tmpls {
		u, ok := expand(t[1], params)
		if ok {
			out[t[0]] = u
		}
	}
	return out
}

func expand(s string, params map[string]string) (string, bool) {
	var sb strings.Builder
	for {
		i := strings.Index(s, "${")
		if i < 0 {
			sb.WriteString(s)
			return sb.String(), true
		}
		j := strings.Index(s[i:], "}")
		if j < 0 {
			return "", false
		}
		v, ok := params[s[i+2:i+j]]
		if !ok {
			return "", false
		}
		sb.WriteString(s[:i])
		sb.WriteString(v)
		s = s[i+j+1:]
	}
}

// Activate links a standalone box to the control plane act names; the
// agent then activates and commissions it in the background. The request
// is validated as the configuration file's [nuvla] section would be.
func (b *Backend) Activate(ctx context.Context, act client.Activation) (client.Status, error) {
	c := config.Default()
	c.Nuvla = config.Nuvla{Endpoint: strings.TrimSpace(act.Endpoint), NuvlaboxID: strings.TrimSpace(act.NuvlaboxID), Insecure: act.Insecure}
	if c.Nuvla.Endpoint == "" {
		return client.Status{}, &InputError{Msg: "endpoint is required (the control plane's URL, e.g. https://nuvla.io)"}
	}
	if c.Nuvla.NuvlaboxID == "" {
		return client.Status{}, &InputError{Msg: "nuvlabox-id is required (nuvlabox/<uuid>, from the control plane)"}
	}
	c.Normalize()
	if err := c.Validate(); err != nil {
		return client.Status{}, &InputError{Msg: strings.TrimPrefix(err.Error(), "invalid configuration: ")}
	}
	if err := b.Agent.Configure(c.Nuvla); err != nil {
		if errors.Is(err, ErrAlreadyLinked) {
			return client.Status{}, &InputError{Msg: err.Error(), Code: http.StatusConflict}
		}
		return client.Status{}, err
	}
	return b.Status(ctx), nil
}

// InputError is a request the caller must correct; Code is its HTTP
// status (400 when zero).
type InputError struct {
	Msg  string
	Code int
}

func (e *InputError) Error() string { return e.Msg }

// StatusCode is the HTTP status the local API answers with.
func (e *InputError) StatusCode() int {
	if e.Code == 0 {
		return http.StatusBadRequest
	}
	return e.Code
}
