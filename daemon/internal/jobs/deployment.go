package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/berth-edge/berth/daemon/internal/apps"
	"github.com/berth-edge/berth/daemon/internal/engine"
	"github.com/berth-edge/berth/daemon/internal/nuvla"
	"github.com/berth-edge/berth/daemon/internal/store"
)

// Deployment states berthd sets.
const (
	DeploymentStarted = "STARTED"
	DeploymentStopped = "STOPPED"
	DeploymentError   = "ERROR"
)

// Deployment is the part of a Nuvla deployment resource berthd reads.
type Deployment struct {
	ID          string `json:"id"`
	State       string `json:"state"`
	Owner       string `json:"owner"`
	APIEndpoint string `json:"api-endpoint"`
	Nuvlabox    string `json:"nuvlabox"`
	// DeploymentSet is set when the deployment belongs to a deployment group.
	DeploymentSet  string          `json:"deployment-set"`
	APICredentials *APICredentials `json:"api-credentials"`
	Module         Module          `json:"module"`
}

// APICredentials are a deployment's own api key.
type APICredentials struct {
	APIKey    string `json:"api-key"`
	APISecret string `json:"api-secret"`
}

// Module is the resolved module copied into a deployment.
type Module struct {
	ID            string          `json:"id"`
	Name          string          `json:"name"`
	Path          string          `json:"path"`
	Subtype       string          `json:"subtype"`
	Compatibility string          `json:"compatibility"`
	Content       json.RawMessage `json:"content"`
}

// UUID returns the deployment's uuid, the app id.
func (d *Deployment) UUID() string { return strings.TrimPrefix(d.ID, "deployment/") }

// stopPayload is the payload of stop_deployment.
type stopPayload struct {
	RemoveVolumes bool `json:"remove-volumes"`
	RemoveImages  bool `json:"remove-images"`
	Delete        bool `json:"delete"`
}

// deploymentTarget checks that the job targets a deployment and returns its id.
func deploymentTarget(job *Job) (string, error) {
	t := job.TargetResource.Href
	uuid, ok := strings.CutPrefix(t, "deployment/")
	if !ok || uuid == "" || strings.ContainsAny(uuid, "/ ") {
		return "", fmt.Errorf("%s needs a deployment as target-resource, got %q", job.Action, t)
	}
	return t, nil
}

// loadDeployment reads the deployment with the box session.
func (r *Runner) loadDeployment(ctx context.Context, id string) (*Deployment, error) {
	var d Deployment
	if err := r.opts.Box.Get(ctx, id, &d); err != nil {
		return nil, fmt.Errorf("read %s: %w", id, err)
	}
	if d.ID != id {
		return nil, fmt.Errorf("read %s: the server answered with %q", id, d.ID)
	}
	return &d, nil
}

// session opens the deployment's own session: deployment and parameter
// writes are made as the deployment, as Nuvla's job engine makes them.
func (r *Runner) session(ctx context.Context, d *Deployment) (*nuvla.Client, error) {
	if d.APICredentials == nil || d.APICredentials.APIKey == "" || d.APICredentials.APISecret == "" {
		return nil, fmt.Errorf("%s has no api-credentials: start it again from Nuvla", d.ID)
	}
	s, err := r.deploymentSession(ctx, d.APICredentials.APIKey, d.APICredentials.APISecret)
	if err != nil {
		return nil, fmt.Errorf("log in as %s: %w", d.ID, err)
	}
	return s, nil
}

// jobContextDocs is the answer to job/<J>/get-context: resources by id.
type jobContextDocs map[string]json.RawMessage

func (r *Runner) jobContextDocs(ctx context.Context, jobID string, log *slog.Logger) jobContextDocs {
	var docs jobContextDocs
	if err := r.opts.Box.Operation(ctx, jobID, "get-context", nil, &docs); err != nil {
		log.Warn("cannot read the job context; going on without it", "err", err)
		return nil
	}
	return docs
}

// boxNetwork is the nuvlabox-status part the context carries.
type boxNetwork struct {
	IP      string `json:"ip"`
	Network struct {
		IPs map[string]string `json:"ips"`
	} `json:"network"`
}

func (docs jobContextDocs) network() boxNetwork {
	var n boxNetwork
	for id, raw := range docs {
		if strings.HasPrefix(id, "nuvlabox-status/") {
			_ = json.Unmarshal(raw, &n)
		}
	}
	return n
}

// registryAuth returns the registry credentials of the context, by host.
func (docs jobContextDocs) registryAuth() engine.Auth {
	type cred struct {
		Subtype  string `json:"subtype"`
		Parent   string `json:"parent"`
		Username string `json:"username"`
		Password string `json:"password"`
	}
	type service struct {
		Endpoint string `json:"endpoint"`
	}
	auth := engine.Auth{}
	for _, raw := range docs {
		var c cred
		if json.Unmarshal(raw, &c) != nil || c.Subtype != "infrastructure-service-registry" {
			continue
		}
		var s service
		if svc, ok := docs[c.Parent]; !ok || json.Unmarshal(svc, &s) != nil || s.Endpoint == "" {
			continue
		}
		host := engine.RegistryHost(s.Endpoint)
		auth[host] = engine.Credential{Username: c.Username, Password: c.Password, ServerAddress: host}
	}
	return auth
}

// deploymentEnv is what every container of a Nuvla deployment receives.
func deploymentEnv(d *Deployment, fallbackEndpoint string, now time.Time) map[string]string {
	endpoint := d.APIEndpoint
	if endpoint == "" {
		endpoint = fallbackEndpoint
	}
	env := map[string]string{
		"NUVLA_DEPLOYMENT_UUID": d.UUID(),
		"NUVLA_DEPLOYMENT_ID":   d.ID,
		"NUVLA_API_KEY":         d.APICredentials.APIKey,
		"NUVLA_API_SECRET":      d.APICredentials.APISecret,
		"NUVLA_ENDPOINT":        endpoint,
		"DATE_TIME":             now.UTC().Format("060102150405"),
		"TIMESTAMP":             strconv.FormatInt(now.Unix(), 10),
	}
	if d.DeploymentSet != "" {
		env["NUVLA_DEPLOYMENT_GROUP_ID"] = d.DeploymentSet
		env["NUVLA_DEPLOYMENT_GROUP_UUID"] = strings.TrimPrefix(d.DeploymentSet, "deployment-set/")
	}
	return env
}

// toApp converts the deployment's module into an App.
func toApp(d *Deployment, env map[string]string) (*apps.App, error) {
	name := d.Module.Name
	if name == "" {
		name = d.Module.Path
	}
	switch d.Module.Subtype {
	case "component":
		return apps.FromComponent(apps.ComponentInput{AppID: d.UUID(), Name: name, Content: d.Module.Content, Env: env})
	case "application":
		// Runner.deploymentApp converts compose applications: they need
		// their files on disk.
		return nil, fmt.Errorf("module %s is a compose application: convert it with Runner.deploymentApp", d.Module.ID)
	case "":
		return nil, fmt.Errorf("%s carries no module subtype: the deployment document is malformed", d.ID)
	default:
		return nil, fmt.Errorf("module subtype %q cannot run on a Docker box (berthd runs component modules)", d.Module.Subtype)
	}
}

func (r *Runner) startDeployment(ctx context.Context, jc *jobContext) (string, error) {
	return r.runDeployment(ctx, jc, "start")
}

func (r *Runner) updateDeployment(ctx context.Context, jc *jobContext) (string, error) {
	return r.runDeployment(ctx, jc, "update")
}

// openDeployment is how every job that takes no payload begins: check the
// target, read the deployment, and open its own session.
func (r *Runner) openDeployment(ctx context.Context, jc *jobContext) (*Deployment, *nuvla.Client, error) {
	target, err := deploymentTarget(jc.job)
	if err != nil {
		return nil, nil, err
	}
	if err := decodePayload(jc.job.Payload, &struct{}{}); err != nil {
		return nil, nil, err
	}
	d, err := r.loadDeployment(ctx, target)
	if err != nil {
		return nil, nil, err
	}
	sess, err := r.session(ctx, d)
	if err != nil {
		return nil, nil, err
	}
	return d, sess, nil
}

// runDeployment starts or updates a deployment: convert, record the desired
// state, publish the parameters Nuvla expects, converge Docker, read the
// real ports back, and mark the deployment STARTED.
func (r *Runner) runDeployment(ctx context.Context, jc *jobContext, verb string) (string, error) {
	d, sess, err := r.openDeployment(ctx, jc)
	if err != nil {
		return "", err
	}
	msg, err := r.converge(ctx, jc, d, sess, verb)
	if err != nil {
		r.markError(ctx, jc, d, sess, err)
		return "", err
	}
	if err := jc.step("state", DeploymentStarted); err != nil {
		return "", err
	}
	if err := sess.Edit(ctx, d.ID, map[string]any{"state": DeploymentStarted}, nil); err != nil {
		return "", fmt.Errorf("set %s STARTED: %w", d.ID, err)
	}
	return msg, nil
}

func (r *Runner) converge(ctx context.Context, jc *jobContext, d *Deployment, sess *nuvla.Client, verb string) (string, error) {
	jc.progress(ctx, 10)
	app, err := r.deploymentApp(ctx, d, deploymentEnv(d, r.opts.Box.Endpoint(), time.Now()))
	if err != nil {
		return "", err
	}
	if app.Kind == apps.KindNuvlaSwarm {
		return r.convergeSwarm(ctx, jc, d, sess, verb, app)
	}
	docs, auth, rec, err := r.recordDesired(ctx, jc, d, app, verb)
	if err != nil {
		return "", err
	}

	// The parameters Nuvla expects before the app runs (hostname, ip.*,
	// the app's output parameters) are published while Docker creates the
	// containers: neither waits for the other.
	if err := jc.step("parameters", "hostname, ip, outputs"); err != nil {
		return "", err
	}
	if err := jc.step("converge", verb); err != nil {
		return "", err
	}
	acl := parameterACL(d)
	var (
		wg         sync.WaitGroup
		hostParams map[string]string
		paramErr   error
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		hostParams, paramErr = publishHostParams(ctx, sess, d.ID, docs.network(), acl)
		for _, name := range app.Outputs {
			if paramErr != nil {
				return
			}
			paramErr = sess.CreateParameter(ctx, d.ID, nuvla.Parameter{Name: name, Description: "output parameter of the app"}, acl)
		}
	}()
	containers, err := r.opts.Recon.Converge(ctx, app, apps.ModeStart, auth)
	wg.Wait()
	if err != nil {
		return "", err
	}
	if paramErr != nil {
		return "", paramErr
	}
	if err := r.checkRunning(ctx, app, containers); err != nil {
		return "", err
	}
	jc.progress(ctx, 80)

	if err := jc.step("ports", ""); err != nil {
		return "", err
	}
	ports, err := publishContainerParams(ctx, sess, d, containers, acl)
	if err != nil {
		return "", err
	}
	rec.Params = hostParams
	for k, v := range ports {
		rec.Params[k] = v
	}
	if err := r.opts.Store.PutApp(rec); err != nil {
		return "", fmt.Errorf("record parameters of %s: %w", app.ID, err)
	}
	jc.progress(ctx, 90)
	return summarize(verb, containers, ports), nil
}

// recordDesired reads the job context, keeps its registry credentials for
// later resyncs, and journals then records the app as wanted running: the
// first steps of every start or update, whatever runs the app.
func (r *Runner) recordDesired(ctx context.Context, jc *jobContext, d *Deployment, app *apps.App, verb string) (jobContextDocs, engine.Auth, store.AppRecord, error) {
	docs := r.jobContextDocs(ctx, jc.job.ID, jc.log)
	auth := docs.registryAuth()
	for host, c := range auth {
		if err := r.opts.Store.PutRegistry(store.RegistryCredential{Name: host, Server: host, Username: c.Username, Password: c.Password}); err != nil {
			return nil, nil, store.AppRecord{}, fmt.Errorf("store registry credentials for %s: %w", host, err)
		}
	}
	rec, _, err := r.opts.Store.App(app.ID)
	if err != nil {
		return nil, nil, rec, fmt.Errorf("read desired state of %s: %w", app.ID, err)
	}
	if err := jc.step("desired", verb); err != nil {
		return nil, nil, rec, err
	}
	rec.App, rec.Desired, rec.Source, rec.DeploymentID, rec.JobID, rec.Error = *app, store.DesiredRunning, store.SourceNuvla, d.ID, jc.job.ID, ""
	rec.Credentials = &store.DeploymentCredentials{APIKey: d.APICredentials.APIKey, APISecret: d.APICredentials.APISecret}
	if err := r.opts.Store.PutApp(rec); err != nil {
		return nil, nil, rec, fmt.Errorf("record desired state of %s: %w", app.ID, err)
	}
	return docs, auth, rec, nil
}

// checkRunning fails the job when a container stopped right after it
// started, with the end of its output, which usually says why.
func (r *Runner) checkRunning(ctx context.Context, app *apps.App, cs []apps.Container) error {
	var problems []string
	for _, c := range cs {
		if c.State == apps.StateRunning || c.State == "restarting" {
			continue
		}
		p := fmt.Sprintf("service %s is %s (%s)", c.Service, c.State, c.Status)
		if r.opts.Logs != nil {
			if out, err := r.opts.Logs(ctx, c.ID, 20); err == nil && strings.TrimSpace(out) != "" {
				p += "; its last output:\n" + strings.TrimSpace(out)
			}
		}
		problems = append(problems, p)
	}
	if len(problems) > 0 {
		return errors.New(strings.Join(problems, "\n"))
	}
	for _, s := range app.Services {
		found := false
		for _, c := range cs {
			found = found || c.Service == s.Name
		}
		if !found {
			return fmt.Errorf("service %s has no container after starting it", s.Name)
		}
	}
	return nil
}

// markError records the failure so that resync leaves the app alone, and
// tells Nuvla the deployment is in ERROR.
func (r *Runner) markError(ctx context.Context, jc *jobContext, d *Deployment, sess *nuvla.Client, cause error) {
	if rec, ok, err := r.opts.Store.App(d.UUID()); err == nil && ok {
		rec.Error = cause.Error()
		if err := r.opts.Store.PutApp(rec); err != nil {
			jc.log.Error("cannot record the failure", "err", err)
		}
	}
	if err := sess.Edit(ctx, d.ID, map[string]any{"state": DeploymentError}, nil); err != nil {
		jc.log.Warn("cannot set the deployment to ERROR", "err", err)
	}
}

// parameterACL is the ACL Nuvla's job engine gives the parameters it creates.
func parameterACL(d *Deployment) map[string]any {
	if d.Owner == "" {
		return nil
	}
	return map[string]any{"owners": []string{"group/nuvla-admin"}, "edit-acl": []string{d.Owner}}
}

// publishHostParams publishes hostname and ip.* from the box's network and
// returns the values it published.
func publishHostParams(ctx context.Context, sess *nuvla.Client, depID string, n boxNetwork, acl map[string]any) (map[string]string, error) {
	out := map[string]string{}
	p := nuvla.Parameter{Name: "hostname", Description: "Hostname or IP to access the service."}
	if n.IP != "" {
		p.Value = nuvla.StrPtr(n.IP)
		out["hostname"] = n.IP
	}
	if err := sess.SetParameter(ctx, depID, p, acl); err != nil {
		return nil, err
	}
	for _, k := range apps.SortedKeys(n.Network.IPs) {
		p := nuvla.Parameter{Name: "ip." + k, Description: k + " IP address of the box."}
		if v := n.Network.IPs[k]; v != "" {
			p.Value = nuvla.StrPtr(v)
			out["ip."+k] = v
		}
		if err := sess.SetParameter(ctx, depID, p, acl); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// publishPorts publishes "<proto>.<target port>" = the host port Docker
// really bound, for every published port. As with Nuvla's own component
// deployments, the node-id is the deployment uuid.
func publishPorts(ctx context.Context, sess *nuvla.Client, d *Deployment, cs []apps.Container, acl map[string]any) (map[string]string, error) {
	out := map[string]string{}
	for _, c := range cs {
		for _, b := range c.Ports {
			if b.HostPort == 0 {
				continue
			}
			name := b.Protocol + "." + strconv.Itoa(b.Target)
			val := strconv.Itoa(b.HostPort)
			out[name] = val
			p := nuvla.Parameter{Name: name, NodeID: d.UUID(), Value: nuvla.StrPtr(val), Description: "host port published for " + name}
			if err := sess.SetParameter(ctx, d.ID, p, acl); err != nil {
				return nil, err
			}
		}
	}
	return out, nil
}

func summarize(verb string, cs []apps.Container, ports map[string]string) string {
	names := make([]string, 0, len(cs))
	for _, c := range cs {
		names = append(names, c.Service+" ("+c.State+")")
	}
	sort.Strings(names)
	var ps []string
	for _, k := range apps.SortedKeys(ports) {
		ps = append(ps, k+"="+ports[k])
	}
	msg := fmt.Sprintf("%s: %s", verb, strings.Join(names, ", "))
	if len(ps) > 0 {
		msg += "; ports " + strings.Join(ps, ", ")
	}
	return msg
}

// stopDeployment removes the deployment's containers first (local
// convergence never waits on the network), then tells Nuvla and deletes the
// deployment's credentials.
func (r *Runner) stopDeployment(ctx context.Context, jc *jobContext) (string, error) {
	target, err := deploymentTarget(jc.job)
	if err != nil {
		return "", err
	}
	var p stopPayload
	if err := decodePayload(jc.job.Payload, &p); err != nil {
		return "", err
	}
	uuid := strings.TrimPrefix(target, "deployment/")
	rec, known, err := r.opts.Store.App(uuid)
	if err != nil {
		return "", fmt.Errorf("read desired state of %s: %w", uuid, err)
	}
	if err := jc.step("desired", "stop"); err != nil {
		return "", err
	}
	if known {
		rec.Desired, rec.JobID = store.DesiredStopped, jc.job.ID
		if err := r.opts.Store.PutApp(rec); err != nil {
			return "", fmt.Errorf("record desired state of %s: %w", uuid, err)
		}
	}
	if err := jc.step("remove", fmt.Sprintf("volumes=%t images=%t", p.RemoveVolumes, p.RemoveImages)); err != nil {
		return "", err
	}
	if err := r.opts.Recon.Remove(ctx, uuid, p.RemoveVolumes, p.RemoveImages); err != nil {
		return "", fmt.Errorf("remove containers of %s: %w", target, err)
	}
	if p.RemoveVolumes {
		if err := r.removeAppDir(uuid); err != nil {
			return "", err
		}
	}
	jc.progress(ctx, 50)

	d, err := r.loadDeployment(ctx, target)
	if err != nil {
		return "", err
	}
	if d.APICredentials == nil && known && rec.Credentials != nil {
		d.APICredentials = &APICredentials{APIKey: rec.Credentials.APIKey, APISecret: rec.Credentials.APISecret}
	}
	writer := r.opts.Box
	if sess, err := r.session(ctx, d); err == nil {
		defer r.dropSession(d.APICredentials.APIKey)
		writer = sess
	} else {
		jc.log.Warn("using the box session to finish the stop", "err", err)
	}
	if err := jc.step("state", DeploymentStopped); err != nil {
		return "", err
	}
	if err := writer.Edit(ctx, d.ID, map[string]any{"state": DeploymentStopped}, nil); err != nil {
		return "", fmt.Errorf("set %s STOPPED: %w", d.ID, err)
	}
	if err := jc.step("credentials", "delete"); err != nil {
		return "", err
	}
	deleted := r.deleteCredentials(ctx, jc, writer, d.ID)
	if err := r.opts.Store.DeleteApp(uuid); err != nil {
		return "", fmt.Errorf("forget %s: %w", uuid, err)
	}
	msg := fmt.Sprintf("stopped: containers removed (volumes removed: %t, images removed: %t); %d deployment credential(s) deleted", p.RemoveVolumes, p.RemoveImages, deleted)
	return msg, nil
}

// deleteCredentials deletes the deployment's api keys, as Nuvla's job engine
// does on stop; failures are logged, not fatal.
func (r *Runner) deleteCredentials(ctx context.Context, jc *jobContext, c *nuvla.Client, depID string) int {
	res, err := c.Search(ctx, "credential", nuvla.Query{Filter: "parent='" + depID + "'", Select: []string{"id"}})
	if err != nil {
		jc.log.Warn("cannot list the deployment's credentials", "err", err)
		return 0
	}
	n := 0
	for _, raw := range res {
		var cred struct {
			ID string `json:"id"`
		}
		if json.Unmarshal(raw, &cred) != nil || cred.ID == "" {
			continue
		}
		if err := c.Delete(ctx, cred.ID); err != nil && !nuvla.IsNotFound(err) {
			jc.log.Warn("cannot delete a deployment credential", "credential", cred.ID, "err", err)
			continue
		}
		n++
	}
	return n
}

// deploymentState refreshes the parameters of a running deployment.
func (r *Runner) deploymentState(ctx context.Context, jc *jobContext) (string, error) {
	d, sess, err := r.openDeployment(ctx, jc)
	if err != nil {
		return "", err
	}
	docs := r.jobContextDocs(ctx, jc.job.ID, jc.log)
	acl := parameterACL(d)
	if _, err := publishHostParams(ctx, sess, d.ID, docs.network(), acl); err != nil {
		return "", err
	}
	if d.Module.Subtype == "application" && d.Module.Compatibility == CompatibilitySwarm {
		return r.stackState(ctx, sess, d, acl)
	}
	cs, err := r.opts.Recon.Containers(ctx, d.UUID())
	if err != nil {
		return "", err
	}
	ports, err := publishContainerParams(ctx, sess, d, cs, acl)
	if err != nil {
		return "", err
	}
	if len(cs) == 0 {
		return "no containers of this deployment run on this box", nil
	}
	return summarize("state", cs, ports), nil
}
