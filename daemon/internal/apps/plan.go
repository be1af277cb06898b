package apps

import (
	"sort"
	"strings"
)

// Mode says how eagerly the planner starts containers that exist but do not run.
type Mode int

const (
	// ModeStart is used by an explicit start or update: every service must end
	// up running, whatever state its container is in.
	ModeStart Mode = iota
	// ModeResync is used by the periodic resync: missing containers are
	// recreated and never-started ones started, but a container that exited
	// is left alone unless its restart policy says Docker should have
	// restarted it. A one-shot that finished stays finished.
	ModeResync
)

// Plan compares the desired App with the containers Docker has for it and
// returns the actions that converge the two, removals first. A nil desired
// App means the app must not exist: every container is removed.
//
// Plan is pure: the same inputs always give the same actions, and applying
// them then planning again gives no actions.
func Plan(desired *App, actual []Container, mode Mode) []Action {
	byService := map[string][]Container{}
	for _, c := range actual {
		byService[c.Service] = append(byService[c.Service], c)
	}

	var removes, creates, starts []Action
	if desired == nil {
		for _, c := range sortedContainers(actual) {
			removes = append(removes, Action{Type: ActionRemove, Service: c.Service, ContainerID: c.ID, Reason: "app is no longer wanted"})
		}
		return removes
	}

	// Containers of services the app no longer has.
	for _, c := range sortedContainers(actual) {
		if desired.Service(c.Service) == nil {
			removes = append(removes, Action{Type: ActionRemove, Service: c.Service, ContainerID: c.ID, Reason: "service is no longer part of the app"})
		}
	}

	for i := range desired.Services {
		s := &desired.Services[i]
		hash := s.SpecHash()
		keep, extra := pickContainer(byService[s.Name], hash)
		for _, c := range extra {
			reason := "duplicate container for the service"
			if c.SpecHash != hash {
				reason = "service spec changed"
			}
			removes = append(removes, Action{Type: ActionRemove, Service: s.Name, ContainerID: c.ID, Reason: reason})
		}
		if keep == nil {
			creates = append(creates, Action{Type: ActionCreate, Service: s.Name, Reason: "no container for the service"})
			starts = append(starts, Action{Type: ActionStart, Service: s.Name, Reason: "new container"})
			continue
		}
		if needsStart(keep, s, mode) {
			starts = append(starts, Action{Type: ActionStart, Service: s.Name, ContainerID: keep.ID, Reason: "container is " + keep.State})
		}
	}
	order := ServiceOrder(desired)
	byOrder := func(as []Action) {
		sort.SliceStable(as, func(i, j int) bool { return order[as[i].Service] < order[as[j].Service] })
	}
	byOrder(creates)
	byOrder(starts)
	out := append(removes, creates...)
	return append(out, starts...)
}

// ServiceOrder ranks the app's services so that every service comes after
// the services it depends on; services without dependencies between them
// keep the order the app lists them in. A dependency cycle (which the
// converters reject) leaves the services of the cycle in listed order.
func ServiceOrder(app *App) map[string]int {
	rank := make(map[string]int, len(app.Services))
	state := make(map[string]int, len(app.Services)) // 1 visiting, 2 done
	var visit func(s *Service)
	visit = func(s *Service) {
		if state[s.Name] != 0 {
			return
		}
		state[s.Name] = 1
		for _, d := range s.DependsOn {
			if dep := app.Service(d.Service); dep != nil {
				visit(dep)
			}
		}
		state[s.Name] = 2
		rank[s.Name] = len(rank)
	}
	for i := range app.Services {
		visit(&app.Services[i])
	}
	return rank
}

// pickContainer chooses the container to keep for a service: one with the
// current spec, running if possible. Every other container is extra.
func pickContainer(cs []Container, hash string) (*Container, []Container) {
	var keep *Container
	var extra []Container
	cs = sortedContainers(cs)
	for i := range cs {
		c := cs[i]
		switch {
		case c.SpecHash != hash || c.State == "removing" || c.State == "dead":
			extra = append(extra, c)
		case keep == nil:
			keep = &cs[i]
		case keep.State != StateRunning && c.State == StateRunning:
			extra = append(extra, *keep)
			keep = &cs[i]
		default:
			extra = append(extra, c)
		}
	}
	return keep, extra
}

func needsStart(c *Container, s *Service, mode Mode) bool {
	switch c.State {
	case StateRunning, "restarting":
		return false
	case StateCreated:
		return true
	}
	if mode == ModeStart {
		return true
	}
	return s.Restart.Condition == RestartAny || s.Restart.Condition == RestartAlways
}

// sortedContainers returns a copy sorted by name then id, so plans are
// deterministic and the caller's slice is left as it was.
func sortedContainers(in []Container) []Container {
	cs := append([]Container(nil), in...)
	sort.SliceStable(cs, func(i, j int) bool {
		if c := strings.Compare(cs[i].Name, cs[j].Name); c != 0 {
			return c < 0
		}
		return cs[i].ID < cs[j].ID
	})
	return cs
}
