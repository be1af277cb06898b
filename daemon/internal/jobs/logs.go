package jobs

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/berth-edge/berth/daemon/internal/apps"
)

// BerthdComponent is the log component of berthd itself.
const BerthdComponent = "berthd"

// defaultLogLines is how many lines per component a fetch sends when the
// resource-log does not say.
const defaultLogLines = 200

// maxLogLines bounds what one fetch sends per component.
const maxLogLines = 10000

// logTimeFormat is the timestamp of every line and of last-timestamp.
const logTimeFormat = "2006-01-02T15:04:05.000000000Z"

// resourceLog is the part of a resource-log berthd reads.
type resourceLog struct {
	ID            string   `json:"id"`
	Parent        string   `json:"parent"`
	Components    []string `json:"components"`
	Since         string   `json:"since"`
	LastTimestamp string   `json:"last-timestamp"`
	Lines         int      `json:"lines"`
}

// logTarget checks that the job targets a resource-log.
func logTarget(job *Job) (string, error) {
	t := job.TargetResource.Href
	uuid, ok := strings.CutPrefix(t, "resource-log/")
	if !ok || uuid == "" || strings.ContainsAny(uuid, "/ ") {
		return "", fmt.Errorf("%s needs a resource-log as target-resource, got %q", job.Action, t)
	}
	return t, nil
}

// loadLog reads the resource-log and works out where to start and how many
// lines to send: after last-timestamp (the previous fetch) or since.
func (r *Runner) loadLog(ctx context.Context, jc *jobContext) (*resourceLog, time.Time, int, error) {
	target, err := logTarget(jc.job)
	if err != nil {
		return nil, time.Time{}, 0, err
	}
	if err := decodePayload(jc.job.Payload, &struct{}{}); err != nil {
		return nil, time.Time{}, 0, err
	}
	var l resourceLog
	if err := r.opts.Box.Get(ctx, target, &l); err != nil {
		return nil, time.Time{}, 0, fmt.Errorf("read %s: %w", target, err)
	}
	if l.ID != target {
		return nil, time.Time{}, 0, fmt.Errorf("read %s: the server answered with %q", target, l.ID)
	}
	var since time.Time
	for _, s := range []struct{ name, v string }{{"last-timestamp", l.LastTimestamp}, {"since", l.Since}} {
		if s.v == "" {
			continue
		}
		t, err := time.Parse(time.RFC3339Nano, s.v)
		if err != nil {
			return nil, time.Time{}, 0, fmt.Errorf("%s of %s is %q, not a timestamp like 2026-01-02T15:04:05Z", s.name, target, s.v)
		}
		since = t
		break
	}
	lines := l.Lines
	switch {
	case lines <= 0:
		lines = defaultLogLines
	case lines > maxLogLines:
		lines = maxLogLines
	}
	return &l, since, lines, nil
}

// logResult collects the lines of every component.
type logResult struct {
	log     map[string][]string
	last    time.Time
	missing []string
}

func newLogResult(since time.Time) *logResult {
	return &logResult{log: map[string][]string{}, last: since}
}

func (lr *logResult) add(component string, t time.Time, text string) {
	lr.log[component] = append(lr.log[component], t.UTC().Format(logTimeFormat)+" "+text)
	if t.After(lr.last) {
		lr.last = t
	}
}

// send writes the lines and the new last-timestamp to the resource-log.
func (r *Runner) sendLog(ctx context.Context, jc *jobContext, l *resourceLog, lr *logResult) (string, error) {
	body := map[string]any{"log": lr.log}
	if !lr.last.IsZero() {
		body["last-timestamp"] = lr.last.UTC().Format(logTimeFormat)
	}
	if err := jc.step("send", l.ID); err != nil {
		return "", err
	}
	if err := r.opts.Box.Edit(ctx, l.ID, body, nil); err != nil {
		return "", fmt.Errorf("send the log lines to %s: %w", l.ID, err)
	}
	var parts []string
	for _, c := range apps.SortedKeys(lr.log) {
		parts = append(parts, fmt.Sprintf("%s: %d lines", c, len(lr.log[c])))
	}
	msg := "sent " + strings.Join(parts, ", ")
	if len(parts) == 0 {
		msg = "no component to send logs of"
	}
	if len(lr.missing) > 0 {
		msg += "; nothing runs on this box for " + strings.Join(lr.missing, ", ")
	}
	return msg, nil
}

// containerLines adds the lines of the given containers as one component,
// in time order.
func (r *Runner) containerLines(ctx context.Context, lr *logResult, component string, cs []apps.Container, since time.Time, lines int) error {
	var all []struct {
		t    time.Time
		text string
	}
	for _, c := range cs {
		ls, err := r.opts.Host.Docker.LogLines(ctx, c.ID, since, lines)
		if err != nil {
			return fmt.Errorf("logs of %s: %w", component, err)
		}
		for _, l := range ls {
			all = append(all, struct {
				t    time.Time
				text string
			}{l.Time, l.Text})
		}
	}
	sort.SliceStable(all, func(i, j int) bool { return all[i].t.Before(all[j].t) })
	if len(all) > lines {
		all = all[len(all)-lines:]
	}
	lr.log[component] = []string{}
	for _, l := range all {
		lr.add(component, l.t, l.text)
	}
	return nil
}

// fetchNuvlaboxLog sends berthd's own recent lines (component "berthd")
// and those of berth-managed containers named as components.
func (r *Runner) fetchNuvlaboxLog(ctx context.Context, jc *jobContext) (string, error) {
	l, since, lines, err := r.loadLog(ctx, jc)
	if err != nil {
		return "", err
	}
	if typ, _, _ := strings.Cut(l.Parent, "/"); typ != "nuvlabox" {
		return "", fmt.Errorf("%s belongs to %q, not to a nuvlabox", l.ID, l.Parent)
	}
	comps := l.Components
	if len(comps) == 0 {
		comps = []string{BerthdComponent}
	}
	lr := newLogResult(since)
	var managed []apps.Container
	for _, comp := range comps {
		if comp == BerthdComponent {
			lr.log[comp] = []string{}
			if h := r.opts.Host.Log; h != nil {
				for _, e := range h.Since(since, lines) {
					lr.add(comp, e.Time, e.Line)
				}
			}
			continue
		}
		if r.opts.Host.Docker == nil {
			return "", fmt.Errorf("container logs are not available: berthd runs without Docker")
		}
		if managed == nil {
			if managed, err = r.opts.Host.Docker.ListAll(ctx); err != nil {
				return "", err
			}
		}
		var cs []apps.Container
		for _, c := range managed {
			if strings.TrimPrefix(c.Name, "/") == comp {
				cs = append(cs, c)
			}
		}
		if len(cs) == 0 {
			lr.log[comp] = []string{}
			lr.missing = append(lr.missing, comp)
			continue
		}
		if err := r.containerLines(ctx, lr, comp, cs, since, lines); err != nil {
			return "", err
		}
	}
	jc.progress(ctx, 50)
	return r.sendLog(ctx, jc, l, lr)
}

// fetchDeploymentLog sends the lines of the deployment's services; the
// components are service names (all services when none is given).
func (r *Runner) fetchDeploymentLog(ctx context.Context, jc *jobContext) (string, error) {
	l, since, lines, err := r.loadLog(ctx, jc)
	if err != nil {
		return "", err
	}
	uuid, ok := strings.CutPrefix(l.Parent, "deployment/")
	if !ok || uuid == "" {
		return "", fmt.Errorf("%s belongs to %q, not to a deployment", l.ID, l.Parent)
	}
	if r.opts.Host.Docker == nil {
		return "", fmt.Errorf("container logs are not available: berthd runs without Docker")
	}
	cs, err := r.opts.Recon.Containers(ctx, uuid)
	if err != nil {
		return "", fmt.Errorf("containers of %s: %w", l.Parent, err)
	}
	byService := map[string][]apps.Container{}
	for _, c := range cs {
		byService[c.Service] = append(byService[c.Service], c)
	}
	comps := l.Components
	if len(comps) == 0 {
		comps = apps.SortedKeys(byService)
	}
	lr := newLogResult(since)
	for _, comp := range comps {
		if len(byService[comp]) == 0 {
			lr.log[comp] = []string{}
			lr.missing = append(lr.missing, comp)
			continue
		}
		if err := r.containerLines(ctx, lr, comp, byService[comp], since, lines); err != nil {
			return "", err
		}
	}
	jc.progress(ctx, 50)
	return r.sendLog(ctx, jc, l, lr)
}
