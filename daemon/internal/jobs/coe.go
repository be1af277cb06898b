package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	cerrdefs "github.com/containerd/errdefs"

	"github.com/berth-edge/berth/daemon/internal/engine"
	"github.com/berth-edge/berth/daemon/internal/store"
)

// coePayload is the payload of coe_resource_actions.
type coePayload struct {
	Docker []coeItem `json:"docker"`
}

// coeItem is one operation on one Docker object.
type coeItem struct {
	Resource   string `json:"resource"`
	Action     string `json:"action"`
	ID         string `json:"id"`
	Credential string `json:"credential,omitempty"`
}

// coeResult is one item's outcome, in payload order, as NuvlaEdge reports it.
type coeResult struct {
	Success    bool   `json:"success"`
	ReturnCode int    `json:"return-code"`
	Message    string `json:"message"`
}

// validate names every problem of the payload.
func (p *coePayload) validate() error {
	if len(p.Docker) == 0 {
		return errors.New(`coe_resource_actions payload has no "docker" actions (kubernetes resources are not supported by berthd)`)
	}
	var problems []string
	for i, it := range p.Docker {
		bad := func(format string, args ...any) {
			problems = append(problems, fmt.Sprintf("docker[%d]: ", i)+fmt.Sprintf(format, args...))
		}
		switch it.Resource {
		case "image":
			if it.Action != "pull" && it.Action != "remove" {
				bad("action %q on an image is not pull or remove", it.Action)
			}
		case "container", "volume", "network":
			if it.Action != "remove" {
				bad("action %q on a %s is not remove (only images can be pulled)", it.Action, it.Resource)
			}
		default:
			bad("resource %q is not image, container, volume or network", it.Resource)
		}
		if strings.TrimSpace(it.ID) == "" {
			bad("id is missing")
		}
		if it.Credential != "" && (!strings.HasPrefix(it.Credential, "credential/") || it.Action != "pull") {
			bad("credential %q is only for pulling images and must be a credential/… id", it.Credential)
		}
	}
	if len(problems) > 0 {
		return errors.New("invalid coe_resource_actions payload: " + strings.Join(problems, "; "))
	}
	return nil
}

// coeResourceActions runs each item in turn, never stopping at a failure;
// the status message is NuvlaEdge's JSON list of results, and the job fails
// if any item failed.
func (r *Runner) coeResourceActions(ctx context.Context, jc *jobContext) (string, error) {
	if _, err := boxTarget(jc.job); err != nil {
		return "", err
	}
	var p coePayload
	if err := decodePayload(jc.job.Payload, &p); err != nil {
		return "", err
	}
	if err := p.validate(); err != nil {
		return "", err
	}
	if r.opts.Host.Docker == nil {
		return "", errors.New("Docker actions are not available: berthd runs without Docker")
	}
	var docs jobContextDocs
	for _, it := range p.Docker {
		if it.Credential != "" {
			docs = r.jobContextDocs(ctx, jc.job.ID, jc.log)
			break
		}
	}
	if err := jc.step("docker", fmt.Sprintf("%d actions", len(p.Docker))); err != nil {
		return "", err
	}
	results := make([]coeResult, len(p.Docker))
	failed := 0
	for i, it := range p.Docker {
		results[i] = r.coeItem(ctx, it, docs)
		if !results[i].Success {
			failed++
		}
		jc.progress(ctx, 10+80*(i+1)/len(p.Docker))
	}
	b, err := json.Marshal(map[string][]coeResult{"docker": results})
	if err != nil {
		return "", fmt.Errorf("encode results: %w", err)
	}
	if failed > 0 {
		return "", errors.New(string(b))
	}
	return string(b), nil
}

// coeItem runs one validated item.
func (r *Runner) coeItem(ctx context.Context, it coeItem, docs jobContextDocs) coeResult {
	d := r.opts.Host.Docker
	what := it.Resource + " " + it.ID
	var err error
	note := ""
	switch {
	case it.Resource == "image" && it.Action == "pull":
		var cred *engine.Credential
		if it.Credential != "" {
			c, cerr := docs.credential(it.Credential)
			if cerr != nil {
				return coeResult{ReturnCode: 1, Message: fmt.Sprintf("pull %s: %v", what, cerr)}
			}
			cred = &c
		}
		err = d.PullImage(ctx, it.ID, cred, r.storedAuth())
	case it.Resource == "image":
		err = d.RemoveImage(ctx, it.ID)
	case it.Resource == "container":
		note = r.managedNote(ctx, it.ID)
		err = d.RemoveContainer(ctx, it.ID)
	case it.Resource == "volume":
		err = d.RemoveVolume(ctx, it.ID)
	case it.Resource == "network":
		err = d.RemoveNetwork(ctx, it.ID)
	}
	verb := it.Action + "ed"
	if it.Action == "remove" {
		verb = "removed"
	}
	if err != nil {
		return coeResult{ReturnCode: dockerCode(err), Message: err.Error()}
	}
	return coeResult{Success: true, ReturnCode: 0, Message: verb + " " + what + note}
}

// managedNote warns that removing a container berth runs for an app that
// should be running is undone by the reconciler.
func (r *Runner) managedNote(ctx context.Context, id string) string {
	c, err := r.opts.Host.Docker.Inspect(ctx, id)
	if err != nil || c.AppID == "" {
		return ""
	}
	rec, ok, err := r.opts.Store.App(c.AppID)
	if err != nil || !ok || rec.Desired != store.DesiredRunning {
		return fmt.Sprintf(" (it belonged to berth app %s)", c.AppID)
	}
	return fmt.Sprintf(" (it belongs to berth app %s, which should be running: berthd will create it again; stop the app to remove it for good)", c.AppID)
}

// storedAuth is the registry credentials berthd keeps, for pulls without a
// credential of their own.
func (r *Runner) storedAuth() engine.Auth {
	if r.opts.Recon == nil {
		return nil
	}
	return r.opts.Recon.Auth()
}

// dockerCode maps a Docker error to the HTTP status Docker answered with,
// the return code NuvlaEdge reports for a failed item.
func dockerCode(err error) int {
	switch {
	case cerrdefs.IsNotFound(err):
		return 404
	case cerrdefs.IsConflict(err):
		return 409
	case cerrdefs.IsUnauthorized(err):
		return 401
	case cerrdefs.IsPermissionDenied(err):
		return 403
	case cerrdefs.IsInvalidArgument(err):
		return 400
	}
	return 500
}

// credential returns a registry credential of the job context with the
// registry it is for.
func (docs jobContextDocs) credential(id string) (engine.Credential, error) {
	raw, ok := docs[id]
	if !ok {
		return engine.Credential{}, fmt.Errorf("credential %s is not in the job context (deleted, or not shared with this box)", id)
	}
	var c struct {
		Parent   string `json:"parent"`
		Username string `json:"username"`
		Password string `json:"password"`
	}
	if err := json.Unmarshal(raw, &c); err != nil || c.Username == "" {
		return engine.Credential{}, fmt.Errorf("credential %s is not a registry credential with a username and password", id)
	}
	cred := engine.Credential{Username: c.Username, Password: c.Password}
	var svc struct {
		Endpoint string `json:"endpoint"`
	}
	if s, ok := docs[c.Parent]; ok && json.Unmarshal(s, &svc) == nil && svc.Endpoint != "" {
		cred.ServerAddress = engine.RegistryHost(svc.Endpoint)
	}
	return cred, nil
}
