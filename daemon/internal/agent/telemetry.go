package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"

	"sort"
	"strings"

	"github.com/berth-edge/berth/daemon/client"
	"github.com/berth-edge/berth/daemon/internal/nuvla"
	"github.com/berth-edge/berth/daemon/internal/telemetry"
)

// statusSender keeps the last nuvlabox-status document the control plane
// acknowledged: the baseline of the next JSON patch.
type statusSender struct {
	base     map[string]any // agent keys only; nil = read it from the server first
	patches  int
	puts     int
	features telemetry.Features
}

// TelemetryState is what the agent knows about its telemetry.
type TelemetryState struct {
	// Acknowledged is the last document the control plane accepted (agent
	// keys only); nil before the first send. Never modify it.
	Acknowledged map[string]any
	Patches      int
	Puts         int
	Features     telemetry.Features
}

// Telemetry returns the last acknowledged document and send counts.
func (a *Agent) Telemetry() TelemetryState {
	a.mu.Lock()
	defer a.mu.Unlock()
	return TelemetryState{Acknowledged: a.tel.base, Patches: a.tel.patches, Puts: a.tel.puts, Features: a.tel.features}
}

// metadataAttr is one node of GET resource-metadata/<type>.
type metadataAttr struct {
	Name       string         `json:"name"`
	ChildTypes []metadataAttr `json:"child-types"`
}

// probeFeatures asks the server which optional nuvlabox-status fields it
// knows; any error means none.
func (a *Agent) probeFeatures(ctx context.Context) {
	var meta struct {
		Attributes []metadataAttr `json:"attributes"`
	}
	var f telemetry.Features
	if err := a.box.Get(ctx, "resource-metadata/nuvlabox-status-2", &meta); err != nil {
		a.log.Info("cannot read the status resource-metadata; using the oldest telemetry format", "err", err)
	} else {
		paths := map[string]bool{}
		collectPaths(meta.Attributes, "", paths)
		f = telemetry.Features{
			NewContainerStats: paths["resources/container-stats/cpu-usage"],
			CoeResources:      paths["coe-resources"],
			IPType:            paths["network/interfaces/ips/type"],
		}
	}
	a.log.Info("control plane telemetry features", "new-container-stats", f.NewContainerStats, "coe-resources", f.CoeResources, "ip-type", f.IPType)
	if a.opts.Recorder != nil {
		a.opts.Recorder.Sampler.SetFeatures(f)
	}
	a.mu.Lock()
	a.tel.features = f
	a.mu.Unlock()
}

// collectPaths records every attribute path, skipping the "item" level of
// collections.
func collectPaths(attrs []metadataAttr, prefix string, out map[string]bool) {
	for _, at := range attrs {
		p := prefix
		if at.Name != "item" {
			if p != "" {
				p += "/"
			}
			p += at.Name
			out[p] = true
		}
		collectPaths(at.ChildTypes, p, out)
	}
}

// telemetry samples and sends the nuvlabox-status: a JSON patch against the
// last acknowledged document, falling back on any 4xx to a plain partial
// PUT after re-reading the server's copy.
func (a *Agent) telemetry(ctx context.Context) error {
	a.mu.Lock()
	statusID := a.boxDoc.NuvlaboxStatus
	a.mu.Unlock()
	if statusID == "" || a.opts.Recorder == nil {
		return nil
	}
	cctx, cancel := context.WithTimeout(ctx, a.exchangeTimeout())
	defer cancel()
	res, err := a.opts.Recorder.Tick(cctx)
	if err != nil {
		a.log.Warn("cannot sample telemetry", "err", err)
		return nil
	}
	doc := res.Doc
	a.mu.Lock()
	base := a.tel.base
	a.mu.Unlock()
	if base == nil {
		if base, err = a.readStatus(cctx, statusID); err != nil {
			return a.statusReadFailed(ctx, err)
		}
	}
	var out struct {
		Jobs []string `json:"jobs"`
	}
	patch, removed, err := telemetry.Diff(base, doc)
	if err != nil {
		a.log.Error("cannot diff telemetry", "err", err)
		return nil
	}
	if patch == nil {
		patch = []byte("[]")
	}
	err = a.box.Patch(cctx, statusID, patch, &out, removed...)
	if err == nil {
		a.sent("patch", len(patch))
		a.acknowledged(doc, true)
		a.markOnline(func(l *client.Nuvla) { l.LastTelemetry = nowFunc() })
		a.runner.Submit(out.Jobs...)
		return nil
	}
	if !refused(err) {
		a.forgetBaseline() // the server may or may not have applied it
		return a.classify(ctx, err)
	}
	// The stored document diverged (or the server cannot patch): re-read
	// it and send the changed top-level keys whole.
	a.log.Warn("telemetry patch refused; sending a plain update", "err", err)
	a.cpError("patch_refused")
	if base, err = a.readStatus(cctx, statusID); err != nil {
		return a.statusReadFailed(ctx, err)
	}
	body, err := json.Marshal(telemetry.Changed(base, doc))
	if err != nil {
		return fmt.Errorf("encode telemetry: %w", err)
	}
	removed = removed[:0]
	for k := range base {
		if _, ok := doc[k]; !ok {
			removed = append(removed, k)
		}
	}
	sort.Strings(removed)
	if err := a.box.Edit(cctx, statusID, body, &out, removed...); err != nil {
		a.forgetBaseline()
		if refused(err) {
			// The server refused the document: a bug to report, not a
			// reason to go offline.
			a.cpError("telemetry_refused")
			a.log.Error("telemetry refused by the control plane", "err", err)
			return nil
		}
		return a.classify(ctx, err)
	}
	a.sent("put", len(body))
	a.acknowledged(doc, false)
	a.markOnline(func(l *client.Nuvla) { l.LastTelemetry = nowFunc() })
	a.runner.Submit(out.Jobs...)
	return nil
}

// statusReadFailed handles a failed read of the status document: a 4xx
// other than 401/403/409 (the document is gone, say) is logged and left to
// the heartbeat, which finds out what happened to the box; anything else
// is an outage.
func (a *Agent) statusReadFailed(ctx context.Context, err error) error {
	if refused(err) {
		a.cpError("telemetry_refused")
		a.log.Error("cannot read the nuvlabox-status document", "err", err)
		return nil
	}
	return a.classify(ctx, err)
}

// refused is a 4xx that is not about the session or the box's state.
func refused(err error) bool {
	s := nuvla.StatusCode(err)
	return s >= 400 && s < 500 && s != 401 && s != 403 && s != 409
}

// readStatus reads the server's copy of the status as the new baseline.
func (a *Agent) readStatus(ctx context.Context, statusID string) (map[string]any, error) {
	var stored map[string]any
	if err := a.box.Get(ctx, statusID, &stored); err != nil {
		return nil, err
	}
	base := telemetry.AgentView(stored)
	a.mu.Lock()
	a.tel.base = base
	a.mu.Unlock()
	return base, nil
}

func (a *Agent) acknowledged(doc map[string]any, patch bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.tel.base = doc
	if patch {
		a.tel.patches++
	} else {
		a.tel.puts++
	}
}

func (a *Agent) forgetBaseline() {
	a.mu.Lock()
	a.tel.base = nil
	a.mu.Unlock()
}

func (a *Agent) sent(form string, n int) {
	if a.opts.TelemetrySent != nil {
		a.opts.TelemetrySent(form, n)
	}
}

func (a *Agent) cpError(kind string) {
	if a.opts.ControlPlaneError != nil {
		a.opts.ControlPlaneError(kind)
	}
}

// errorKind classifies a control-plane failure for the metrics.
func errorKind(err error) string {
	if s := nuvla.StatusCode(err); s != 0 {
		switch {
		case s == 401 || s == 403:
			return "forbidden"
		case s == 409:
			return "conflict"
		case s >= 500:
			return "http_5xx"
		default:
			return "http_4xx"
		}
	}
	if errors.Is(err, context.DeadlineExceeded) || strings.Contains(err.Error(), "Client.Timeout") {
		return "timeout"
	}
	var ne net.Error
	if errors.As(err, &ne) {
		return "network"
	}
	return "other"
}
