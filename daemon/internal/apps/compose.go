package apps

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/compose-spec/compose-go/v2/loader"
	"github.com/compose-spec/compose-go/v2/types"
)

// ComposeFileName is the name the compose file is written under, next to
// the module's files.
const ComposeFileName = "docker-compose.yaml"

// Application is the content of a Nuvla module of subtype "application":
// a compose file and what goes with it. Fields that do not shape the
// containers (author, commit, architectures...) are accepted and ignored.
type Application struct {
	DockerCompose         string            `json:"docker-compose"`
	EnvironmentVariables  []EnvironmentVar  `json:"environmental-variables"`
	OutputParameters      []OutputParameter `json:"output-parameters"`
	URLs                  [][]string        `json:"urls"`
	Files                 []ApplicationFile `json:"files"`
	PrivateRegistries     []string          `json:"private-registries"`
	RegistriesCredentials []string          `json:"registries-credentials"`
}

// ApplicationFile is a file the module ships next to its compose file.
type ApplicationFile struct {
	FileName    string `json:"file-name"`
	FileContent string `json:"file-content"`
}

// ParseApplication decodes an application module's content and checks
// what can be checked without the file system: a compose file is there,
// the file names stay inside the project directory.
func ParseApplication(raw json.RawMessage) (*Application, error) {
	var a Application
	if len(raw) == 0 || string(raw) == "null" {
		return nil, &ValidationError{What: "compose application", Problems: []string{"the module has no content"}}
	}
	if err := json.Unmarshal(raw, &a); err != nil {
		return nil, &ValidationError{What: "compose application", Problems: []string{"module content: " + describeJSONError(err)}}
	}
	var problems []string
	if strings.TrimSpace(a.DockerCompose) == "" {
		problems = append(problems, "docker-compose: the module has no compose file")
	}
	for i, f := range a.Files {
		name := filepath.Clean(f.FileName)
		if f.FileName == "" || filepath.IsAbs(name) || name == "." || name == ".." || strings.HasPrefix(name, "../") || name == ComposeFileName {
			problems = append(problems, fmt.Sprintf("files[%d]: file-name %q must be a relative path inside the app directory (and not %s)", i, f.FileName, ComposeFileName))
		}
	}
	for i, v := range a.EnvironmentVariables {
		if !envNameRE.MatchString(v.Name) {
			problems = append(problems, fmt.Sprintf("environmental-variables[%d]: bad name %q", i, v.Name))
		}
	}
	if len(problems) > 0 {
		return nil, &ValidationError{What: "compose application", Problems: problems}
	}
	return &a, nil
}

// Env returns the module's environment variables that have a value.
func (a *Application) Env() map[string]string {
	env := map[string]string{}
	for _, v := range a.EnvironmentVariables {
		if v.Value != nil {
			env[v.Name] = *v.Value
		}
	}
	return env
}

// ComposeInput is what FromCompose needs.
type ComposeInput struct {
	// AppID is the project name (for Nuvla apps, the deployment uuid).
	AppID string
	Name  string
	// Dir holds the compose file (ComposeFileName) and the module's files;
	// relative paths in the compose file are relative to it.
	Dir string
	// Env is the interpolation environment: the module's variables and the
	// NUVLA_* ones. It reaches containers only where the file references it.
	Env     map[string]string
	Outputs []OutputParameter
	URLs    [][]string
	// Swarm converts for a swarm stack (module compatibility swarm): the
	// deploy: section is honoured, and keys Swarm services lack are errors.
	Swarm bool
}

// FromCompose loads the compose file in in.Dir with the compose-spec loader
// and converts the project into an App. It reads nothing but the files
// under in.Dir (the compose file, env_file, configs and secrets paths are
// only resolved, not read, except env files) and does no other I/O.
//
// Every key berthd cannot honour is an error, listed per service: nothing
// is silently dropped.
func FromCompose(ctx context.Context, in ComposeInput) (*App, error) {
	p, err := LoadCompose(ctx, in.AppID, in.Dir, in.Env)
	if err != nil {
		return nil, err
	}
	return ConvertProject(p, in)
}

// LoadCompose loads and validates the compose file of dir, interpolated
// with env, as project name.
func LoadCompose(ctx context.Context, name, dir string, env map[string]string) (*types.Project, error) {
	if name == "" {
		return nil, &ValidationError{What: "compose application", Problems: []string{"no project name"}}
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("compose directory %s: %w", dir, err)
	}
	file := filepath.Join(abs, ComposeFileName)
	details := types.ConfigDetails{
		WorkingDir:  abs,
		ConfigFiles: []types.ConfigFile{{Filename: file}},
		Environment: types.Mapping(env),
	}
	p, err := loader.LoadWithContext(ctx, details, func(o *loader.Options) {
		o.SetProjectName(name, true)
		o.ResolvePaths = true
	})
	if err != nil {
		return nil, &ValidationError{What: "compose application", Problems: []string{"compose file: " + err.Error()}}
	}
	p, err = p.WithServicesEnvironmentResolved(true)
	if err != nil {
		return nil, &ValidationError{What: "compose application", Problems: []string{"compose file: " + err.Error()}}
	}
	// As docker compose up: networks, volumes, configs and secrets no
	// service uses are not created.
	return p.WithoutUnnecessaryResources(), nil
}

// supportedServiceKeys are the service keys berthd honours. Keys handled
// by the loader itself (extends, profiles, env_file, label_file) are
// accepted too: after loading they are resolved into other keys.
var supportedServiceKeys = setOf(
	"name", "image", "command", "entrypoint", "environment", "env_file", "label_file", "extends", "profiles",
	"ports", "expose", "volumes", "tmpfs", "networks", "network_mode", "depends_on", "healthcheck",
	"restart", "user", "working_dir", "labels", "cpus", "mem_limit", "mem_reservation", "pids_limit",
	"deploy", "devices", "cap_add", "cap_drop", "privileged", "extra_hosts", "dns", "logging", "sysctls",
	"init", "tty", "stdin_open", "read_only", "stop_signal", "stop_grace_period", "shm_size",
	"security_opt", "group_add", "hostname", "configs", "secrets", "pull_policy",
	"build", "scale", // rejected (or accepted) with their own messages
)

// ConvertProject converts a loaded compose project into an App.
func ConvertProject(p *types.Project, in ComposeInput) (*App, error) {
	var problems []string
	bad := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }

	if len(p.Models) > 0 {
		bad("top-level key models is not supported")
	}
	if len(p.Jobs) > 0 {
		bad("top-level key jobs is not supported")
	}

	app := &App{ID: in.AppID, Kind: KindNuvlaApplication, Name: in.Name}
	if in.Swarm {
		app.Kind = KindNuvlaSwarm
	}
	if app.Name == "" {
		app.Name = in.AppID
	}
	for _, o := range in.Outputs {
		app.Outputs = append(app.Outputs, o.Name)
	}
	for i, u := range in.URLs {
		if len(u) != 2 {
			bad("urls[%d]: want [name, template], got %d elements", i, len(u))
			continue
		}
		app.URLs = append(app.URLs, [2]string{u[0], u[1]})
	}

	// Networks and volumes the project declares.
	for _, key := range SortedKeys(p.Networks) {
		n := p.Networks[key]
		if in.Swarm && n.Driver == "" && !bool(n.External) {
			n.Driver = "overlay" // docker stack deploy's default
		}
		net := Network{Key: key, Name: n.Name, Driver: n.Driver, DriverOpts: copyMap(n.DriverOpts),
			Internal: n.Internal, Attachable: n.Attachable, External: bool(n.External)}
		if net.Name == "" {
			net.Name = p.Name + "_" + key
		}
		if n.EnableIPv6 != nil && *n.EnableIPv6 {
			net.EnableIPv6 = true
		}
		if n.EnableIPv4 != nil && !*n.EnableIPv4 {
			bad("network %s: enable_ipv4: false is not supported", key)
		}
		if n.Ipam.Driver != "" && n.Ipam.Driver != "default" {
			bad("network %s: ipam.driver %q is not supported", key, n.Ipam.Driver)
		}
		if len(n.Ipam.Options) > 0 {
			bad("network %s: ipam.options is not supported", key)
		}
		for _, pool := range n.Ipam.Config {
			if pool == nil {
				continue
			}
			if pool.Gateway != "" || pool.IPRange != "" || len(pool.AuxiliaryAddresses) > 0 {
				bad("network %s: ipam.config gateway, ip_range and aux_addresses are not supported (subnet is)", key)
			}
			if pool.Subnet != "" {
				net.Subnets = append(net.Subnets, pool.Subnet)
			}
		}
		if !net.External {
			net.Labels = composeLabels(n.Labels, p.Name, LabelComposeNetwork, key)
		}
		app.Networks = append(app.Networks, net)
	}
	for _, key := range SortedKeys(p.Volumes) {
		v := p.Volumes[key]
		vol := Volume{Key: key, Name: v.Name, Driver: v.Driver, DriverOpts: copyMap(v.DriverOpts), External: bool(v.External)}
		if vol.Name == "" {
			vol.Name = p.Name + "_" + key
		}
		if !vol.External {
			vol.Labels = composeLabels(v.Labels, p.Name, LabelComposeVolume, key)
		}
		app.Volumes = append(app.Volumes, vol)
	}

	for _, name := range p.ServiceNames() {
		sc := p.Services[name]
		svc, errs := convertService(p, app, sc)
		if in.Swarm {
			errs = swarmService(sc, &svc, errs)
		}
		for _, e := range errs {
			bad("service %s: %s", name, e)
		}
		app.Services = append(app.Services, svc)
	}
	if len(app.Services) == 0 {
		bad("the compose file has no services")
	}
	if len(problems) > 0 {
		return nil, &ValidationError{What: "compose application", Problems: problems}
	}
	return app, nil
}

func convertService(p *types.Project, app *App, sc types.ServiceConfig) (Service, []string) {
	var errs []string
	bad := func(format string, args ...any) { errs = append(errs, fmt.Sprintf(format, args...)) }
	for _, k := range unsupportedKeys(reflect.ValueOf(sc), supportedServiceKeys) {
		bad("key %s is not supported", k)
	}
	s := Service{
		Name:       sc.Name,
		Image:      sc.Image,
		Command:    []string(sc.Command),
		Entrypoint: []string(sc.Entrypoint),
		User:       sc.User,
		WorkingDir: sc.WorkingDir,
		Hostname:   sc.Hostname,
		CapAdd:     sortedCopy(sc.CapAdd),
		CapDrop:    sortedCopy(sc.CapDrop),
		Privileged: sc.Privileged,
		DNS:        []string(sc.DNS),
		Init:       sc.Init != nil && *sc.Init,
		Tty:        sc.Tty,
		StdinOpen:  sc.StdinOpen,
		ReadOnly:   sc.ReadOnly,
		StopSignal: sc.StopSignal,
		PidsLimit:  sc.PidsLimit,
		SecurityOpt: append([]string(nil),
			sc.SecurityOpt...),
		GroupAdd:               append([]string(nil), sc.GroupAdd...),
		MemoryBytes:            int64(sc.MemLimit),
		MemoryReservationBytes: int64(sc.MemReservation),
		ShmSizeBytes:           int64(sc.ShmSize),
		CPUs:                   float64(sc.CPUS),
		Labels:                 copyMap(sc.Labels),
	}
	if sc.Build != nil {
		bad("key build is not supported: berthd cannot build images; push the image to a registry and name it in image:")
	} else if sc.Image == "" {
		bad("has no image")
	}
	if sc.PullPolicy != "" && sc.PullPolicy != types.PullPolicyMissing && sc.PullPolicy != types.PullPolicyIfNotPresent {
		bad("pull_policy %q is not supported (only missing / if_not_present)", sc.PullPolicy)
	}
	if sc.StopGracePeriod != nil {
		s.StopGracePeriod = int((time.Duration(*sc.StopGracePeriod) + time.Second - 1) / time.Second)
	}
	if len(sc.Sysctls) > 0 {
		s.Sysctls = copyMap(sc.Sysctls)
	}
	for _, k := range SortedKeys(sc.Environment) {
		if v := sc.Environment[k]; v != nil {
			if s.Env == nil {
				s.Env = map[string]string{}
			}
			s.Env[k] = *v
		}
	}
	if len(sc.ExtraHosts) > 0 {
		s.ExtraHosts = sc.ExtraHosts.AsList(":")
		sort.Strings(s.ExtraHosts)
	}
	for _, e := range sc.Expose {
		s.Expose = append(s.Expose, e)
	}
	if sc.Logging != nil {
		s.Logging = &Logging{Driver: sc.Logging.Driver, Options: copyMap(sc.Logging.Options)}
	}
	for _, d := range sc.Devices {
		s.Devices = append(s.Devices, Device{Host: d.Source, Container: d.Target, Permissions: d.Permissions})
	}

	// restart and deploy
	s.Restart, errs = composeRestart(sc.Restart, errs)
	if sc.Scale != nil && *sc.Scale != 1 && app.Kind != KindNuvlaSwarm {
		bad("scale %d is not supported (one container per service)", *sc.Scale)
	}
	if d := sc.Deploy; d != nil && app.Kind != KindNuvlaSwarm {
		errs = convertDeploy(d, &s, errs)
	}

	// ports
	for _, pc := range sc.Ports {
		port := Port{Target: int(pc.Target), Protocol: strings.ToLower(pc.Protocol), HostIP: pc.HostIP}
		if port.Protocol == "" {
			port.Protocol = "tcp"
		}
		if pc.Published != "" {
			n, err := strconv.Atoi(pc.Published)
			if err != nil {
				bad("port %d: published %q is not supported (a single port number, or none for an ephemeral one)", pc.Target, pc.Published)
				continue
			}
			port.Published = n
		}
		s.Ports = append(s.Ports, port)
	}

	// volumes, tmpfs, configs, secrets
	for _, v := range sc.Volumes {
		m, err := composeMount(p, v)
		if err != "" {
			bad("volume %s: %s", v.Target, err)
			continue
		}
		s.Mounts = append(s.Mounts, m)
	}
	for _, t := range sc.Tmpfs {
		target, _, _ := strings.Cut(t, ":")
		if target != t {
			bad("tmpfs %s: options are not supported, use the long volume syntax with type: tmpfs", t)
			continue
		}
		s.Mounts = append(s.Mounts, Mount{Type: MountTmpfs, Target: target})
	}
	for _, c := range sc.Configs {
		m, err := fileObjectMount("config", types.FileReferenceConfig(c), configObject(p, c.Source), "/"+c.Source)
		if err != "" {
			bad("%s", err)
			continue
		}
		s.Mounts = append(s.Mounts, m)
	}
	for _, c := range sc.Secrets {
		m, err := fileObjectMount("secret", types.FileReferenceConfig(c), secretObject(p, c.Source), "/run/secrets/"+c.Source)
		if err != "" {
			bad("%s", err)
			continue
		}
		s.Mounts = append(s.Mounts, m)
	}

	// networks
	s.NetworkMode = sc.NetworkMode
	if strings.HasPrefix(s.NetworkMode, "service:") {
		bad("network_mode %q is not supported", s.NetworkMode)
	}
	for _, key := range sc.NetworksByPriority() {
		sn := sc.Networks[key]
		decl, ok := p.Networks[key]
		if !ok {
			bad("network %s is not declared", key)
			continue
		}
		name := decl.Name
		if name == "" {
			name = p.Name + "_" + key
		}
		att := ServiceNetwork{Name: name}
		if sn == nil || sn.ServiceNameAliasEnabled() {
			att.Aliases = append(att.Aliases, sc.Name)
		}
		if sn != nil {
			att.Aliases = append(att.Aliases, sn.Aliases...)
			att.IPv4Address = sn.Ipv4Address
			if sn.Ipv6Address != "" || len(sn.DriverOpts) > 0 || sn.GatewayPriority != 0 || sn.InterfaceName != "" ||
				len(sn.LinkLocalIPs) > 0 || sn.MacAddress != "" {
				bad("network %s: only aliases and ipv4_address are supported", key)
			}
		}
		s.Networks = append(s.Networks, att)
	}

	// depends_on and healthcheck
	for _, dep := range SortedKeys(sc.DependsOn) {
		d := sc.DependsOn[dep]
		if d.Restart && !containsLink(sc.Links, dep) {
			bad("depends_on %s: restart: true is not supported", dep)
		}
		cond := d.Condition
		if cond == "" {
			cond = ConditionStarted
		}
		switch cond {
		case ConditionStarted, ConditionHealthy, ConditionCompleted:
		default:
			bad("depends_on %s: unknown condition %q", dep, cond)
		}
		if _, ok := p.Services[dep]; !ok {
			if d.Required {
				bad("depends_on %s: no such service", dep)
			}
			continue
		}
		s.DependsOn = append(s.DependsOn, Dependency{Service: dep, Condition: cond})
	}
	if h := sc.HealthCheck; h != nil {
		hc := &Healthcheck{Test: []string(h.Test)}
		if h.Disable {
			hc = &Healthcheck{Test: []string{"NONE"}}
		} else {
			if h.StartInterval != nil {
				bad("healthcheck: start_interval is not supported")
			}
			hc.Interval = durationNanos(h.Interval)
			hc.Timeout = durationNanos(h.Timeout)
			hc.StartPeriod = durationNanos(h.StartPeriod)
			if h.Retries != nil {
				hc.Retries = int(*h.Retries)
			}
		}
		s.Healthcheck = hc
	}

	// The compose labels docker compose itself puts on containers, beyond
	// the ones every App's containers carry.
	if s.Labels == nil {
		s.Labels = map[string]string{}
	}
	s.Labels[LabelComposeWorkDir] = p.WorkingDir
	s.Labels[LabelComposeFiles] = filepath.Join(p.WorkingDir, ComposeFileName)
	if len(s.DependsOn) > 0 {
		var ds []string
		for _, d := range s.DependsOn {
			ds = append(ds, d.Service+":"+d.Condition+":false")
		}
		s.Labels[LabelComposeDependsOn] = strings.Join(ds, ",")
	}
	return s, errs
}

func composeRestart(r string, errs []string) (RestartPolicy, []string) {
	cond, max, _ := strings.Cut(r, ":")
	switch cond {
	case "", "no":
		return RestartPolicy{Condition: RestartNone}, errs
	case "always":
		return RestartPolicy{Condition: RestartAlways}, errs
	case "unless-stopped":
		return RestartPolicy{Condition: RestartAny}, errs
	case "on-failure":
		rp := RestartPolicy{Condition: RestartOnFailure}
		if max != "" {
			n, err := strconv.Atoi(max)
			if err != nil || n < 0 {
				return rp, append(errs, fmt.Sprintf("restart %q: bad retry count", r))
			}
			rp.MaxAttempts = n
		}
		return rp, errs
	}
	return RestartPolicy{}, append(errs, fmt.Sprintf("restart %q is not supported", r))
}

func convertDeploy(d *types.DeployConfig, s *Service, errs []string) []string {
	bad := func(format string, args ...any) { errs = append(errs, fmt.Sprintf(format, args...)) }
	if d.Mode != "" && d.Mode != "replicated" {
		bad("deploy.mode %q is not supported", d.Mode)
	}
	if d.Replicas != nil && *d.Replicas != 1 {
		bad("deploy.replicas %d is not supported (one container per service; use swarm compatibility)", *d.Replicas)
	}
	if len(d.Labels) > 0 {
		bad("deploy.labels is not supported (swarm only; use labels)")
	}
	if d.UpdateConfig != nil || d.RollbackConfig != nil {
		bad("deploy.update_config / rollback_config are not supported (swarm only)")
	}
	if len(d.Placement.Constraints) > 0 || len(d.Placement.Preferences) > 0 || d.Placement.MaxReplicas != 0 {
		bad("deploy.placement is not supported (swarm only)")
	}
	if d.EndpointMode != "" {
		bad("deploy.endpoint_mode is not supported (swarm only)")
	}
	if l := d.Resources.Limits; l != nil {
		if l.NanoCPUs != 0 {
			s.CPUs = float64(l.NanoCPUs)
		}
		if l.MemoryBytes != 0 {
			s.MemoryBytes = int64(l.MemoryBytes)
		}
		if l.Pids != 0 {
			s.PidsLimit = l.Pids
		}
		if len(l.Devices) > 0 || len(l.GenericResources) > 0 {
			bad("deploy.resources.limits: devices and generic_resources are not supported")
		}
	}
	if r := d.Resources.Reservations; r != nil {
		if r.MemoryBytes != 0 {
			s.MemoryReservationBytes = int64(r.MemoryBytes)
		}
		if r.NanoCPUs != 0 || r.Pids != 0 || len(r.Devices) > 0 || len(r.GenericResources) > 0 {
			bad("deploy.resources.reservations: only memory is supported")
		}
	}
	if rp := d.RestartPolicy; rp != nil {
		switch rp.Condition {
		case "none":
			s.Restart = RestartPolicy{Condition: RestartNone}
		case "on-failure":
			s.Restart = RestartPolicy{Condition: RestartOnFailure}
			if rp.MaxAttempts != nil {
				s.Restart.MaxAttempts = int(*rp.MaxAttempts)
			}
		case "any", "":
			s.Restart = RestartPolicy{Condition: RestartAny}
		default:
			bad("deploy.restart_policy.condition %q is not supported", rp.Condition)
		}
		if rp.Delay != nil || rp.Window != nil {
			bad("deploy.restart_policy: delay and window are not supported")
		}
	}
	return errs
}

func composeMount(p *types.Project, v types.ServiceVolumeConfig) (Mount, string) {
	m := Mount{Target: v.Target, ReadOnly: v.ReadOnly}
	if v.Consistency != "" || v.Image != nil {
		return m, "consistency and image options are not supported"
	}
	switch v.Type {
	case types.VolumeTypeBind:
		m.Type, m.Source = MountBind, v.Source
		if b := v.Bind; b != nil {
			if b.Propagation != "" || b.SELinux != "" || b.Recursive != "" {
				return m, "bind propagation, selinux and recursive options are not supported"
			}
			m.CreateHostPath = bool(b.CreateHostPath)
		}
	case types.VolumeTypeVolume:
		m.Type = MountVolume
		if vv := v.Volume; vv != nil && (vv.NoCopy || vv.Subpath != "" || len(vv.Labels) > 0) {
			return m, "volume nocopy, subpath and labels options are not supported"
		}
		if v.Source != "" {
			decl, ok := p.Volumes[v.Source]
			if !ok {
				return m, fmt.Sprintf("volume %q is not declared under volumes:", v.Source)
			}
			m.Source = decl.Name
			if m.Source == "" {
				m.Source = p.Name + "_" + v.Source
			}
			if !bool(decl.External) && (decl.Driver == "" || decl.Driver == "local") && len(decl.DriverOpts) > 0 {
				m.VolumeOptions = copyMap(decl.DriverOpts)
			}
		}
	case types.VolumeTypeTmpfs:
		m.Type = MountTmpfs
		if t := v.Tmpfs; t != nil {
			m.TmpfsSizeBytes = int64(t.Size)
			m.TmpfsMode = t.Mode
		}
	default:
		return m, fmt.Sprintf("volume type %q is not supported", v.Type)
	}
	return m, ""
}

func configObject(p *types.Project, key string) *types.FileObjectConfig {
	if c, ok := p.Configs[key]; ok {
		f := types.FileObjectConfig(c)
		return &f
	}
	return nil
}

func secretObject(p *types.Project, key string) *types.FileObjectConfig {
	if c, ok := p.Secrets[key]; ok {
		f := types.FileObjectConfig(c)
		return &f
	}
	return nil
}

// fileObjectMount mounts a config or secret read-only from its file, as
// docker compose does outside swarm.
func fileObjectMount(kind string, ref types.FileReferenceConfig, obj *types.FileObjectConfig, defTarget string) (Mount, string) {
	if obj == nil {
		return Mount{}, fmt.Sprintf("%s %s is not declared", kind, ref.Source)
	}
	if obj.File == "" {
		return Mount{}, fmt.Sprintf("%s %s: only file: sources are supported (not environment, content or external)", kind, ref.Source)
	}
	if ref.UID != "" || ref.GID != "" || ref.Mode != nil {
		return Mount{}, fmt.Sprintf("%s %s: uid, gid and mode are not supported", kind, ref.Source)
	}
	target := ref.Target
	switch {
	case target == "":
		target = defTarget
	case kind == "secret" && !strings.HasPrefix(target, "/"):
		target = "/run/secrets/" + target
	}
	return Mount{Type: MountBind, Source: obj.File, Target: target, ReadOnly: true}, ""
}

// unsupportedKeys returns the yaml names of the fields of struct v that are
// set but not in supported, walking inline (embedded) structs.
func unsupportedKeys(v reflect.Value, supported map[string]bool) []string {
	var out []string
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		tag := f.Tag.Get("yaml")
		name, opts, _ := strings.Cut(tag, ",")
		if name == "" && strings.Contains(opts, "inline") && f.Type.Kind() == reflect.Struct {
			out = append(out, unsupportedKeys(v.Field(i), supported)...)
			continue
		}
		if name == "" || name == "-" || strings.HasPrefix(name, "#") {
			continue
		}
		if !supported[name] && !v.Field(i).IsZero() {
			out = append(out, name)
		}
	}
	sort.Strings(out)
	return out
}

// composeLabels are a network's or volume's labels plus the ones docker
// compose puts on them.
func composeLabels(own map[string]string, project, kindLabel, key string) map[string]string {
	l := copyMap(own)
	if l == nil {
		l = map[string]string{}
	}
	l[LabelComposeProject] = project
	l[kindLabel] = key
	return l
}

func durationNanos(d *types.Duration) int64 {
	if d == nil {
		return 0
	}
	return int64(*d)
}

func copyMap[M ~map[string]string](in M) map[string]string {
	if len(in) == 0 {
		return nil
	}
	out := make(map[string]string, len(in))
	for k, v := range in {
		out[k] = v
	}
	return out
}

func sortedCopy(in []string) []string {
	if len(in) == 0 {
		return nil
	}
	out := append([]string(nil), in...)
	sort.Strings(out)
	return out
}

func setOf(keys ...string) map[string]bool {
	m := make(map[string]bool, len(keys))
	for _, k := range keys {
		m[k] = true
	}
	return m
}

// containsLink reports whether links (which the loader also turns into
// depends_on entries) name service.
func containsLink(links []string, service string) bool {
	for _, l := range links {
		if name, _, _ := strings.Cut(l, ":"); name == service {
			return true
		}
	}
	return false
}

// swarmService checks a service against what Swarm services support and
// converts its deploy: section (deploy resources, restart policy, replicas,
// mode, labels, placement constraints).
func swarmService(sc types.ServiceConfig, s *Service, errs []string) []string {
	bad := func(format string, args ...any) { errs = append(errs, fmt.Sprintf(format, args...)) }
	for _, k := range []struct {
		set  bool
		name string
	}{
		{len(s.Devices) > 0, "devices"}, {s.Privileged, "privileged"}, {s.NetworkMode != "", "network_mode"},
		{len(s.DependsOn) > 0, "depends_on"}, {len(s.SecurityOpt) > 0, "security_opt"}, {s.ShmSizeBytes != 0, "shm_size"},
		{len(s.Expose) > 0, "expose"}, {s.MemoryReservationBytes != 0 && sc.Deploy == nil, "mem_reservation"},
	} {
		if k.set {
			bad("key %s is not supported by swarm services", k.name)
		}
	}
	for _, p := range s.Ports {
		if p.HostIP != "" {
			bad("port %d: host_ip is not supported by swarm services", p.Target)
		}
	}
	// Swarm binds need an existing source: there is no create_host_path.
	for i := range s.Mounts {
		s.Mounts[i].CreateHostPath = false
	}
	delete(s.Labels, LabelComposeDependsOn)
	sw := &SwarmDeploy{Mode: "replicated", Replicas: 1}
	// restart: maps onto the swarm restart policy; deploy.restart_policy wins.
	if s.Restart.Condition == RestartAlways || sc.Restart == "" {
		s.Restart = RestartPolicy{Condition: RestartAny} // swarm's default
	}
	if d := sc.Deploy; d != nil {
		switch d.Mode {
		case "", "replicated":
		case "global":
			sw.Mode = "global"
			sw.Replicas = 0
		default:
			bad("deploy.mode %q is not supported", d.Mode)
		}
		if d.Replicas != nil {
			if *d.Replicas < 0 || sw.Mode == "global" {
				bad("deploy.replicas %d is not valid here", *d.Replicas)
			} else {
				sw.Replicas = uint64(*d.Replicas)
			}
		}
		sw.Labels = copyMap(d.Labels)
		sw.Constraints = append([]string(nil), d.Placement.Constraints...)
		if len(d.Placement.Preferences) > 0 || d.Placement.MaxReplicas != 0 {
			bad("deploy.placement: only constraints are supported")
		}
		if d.UpdateConfig != nil || d.RollbackConfig != nil {
			bad("deploy.update_config / rollback_config are not supported")
		}
		if d.EndpointMode != "" {
			bad("deploy.endpoint_mode is not supported")
		}
		d2 := *d
		d2.Mode, d2.Replicas, d2.Labels, d2.Placement, d2.UpdateConfig, d2.RollbackConfig, d2.EndpointMode = "", nil, nil, types.Placement{}, nil, nil, ""
		if d2.RestartPolicy != nil && d2.RestartPolicy.Condition == "" {
			rp := *d2.RestartPolicy
			rp.Condition = "any"
			d2.RestartPolicy = &rp
		}
		errs = convertDeploy(&d2, s, errs)
	}
	if sc.Scale != nil {
		sw.Replicas = uint64(*sc.Scale)
	}
	s.Swarm = sw
	return errs
}
