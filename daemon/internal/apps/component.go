package apps

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"regexp"
	"runtime"
	"sort"
	"strings"

	"github.com/distribution/reference"
)

// Component is the content of a Nuvla module of subtype "component": one
// image with its ports, mounts, environment and limits. Fields Nuvla's closed
// schema has but that do not shape the container (author, commit,
// minimum-requirements...) are accepted and ignored.
type Component struct {
	Image                 ComponentImage    `json:"image"`
	Architectures         []string          `json:"architectures"`
	Ports                 []ComponentPort   `json:"ports"`
	Mounts                []ComponentMount  `json:"mounts"`
	EnvironmentVariables  []EnvironmentVar  `json:"environmental-variables"`
	OutputParameters      []OutputParameter `json:"output-parameters"`
	URLs                  [][]string        `json:"urls"`
	CPUs                  *float64          `json:"cpus"`
	Memory                *int64            `json:"memory"`
	RestartPolicy         *ComponentRestart `json:"restart-policy"`
	PrivateRegistries     []string          `json:"private-registries"`
	RegistriesCredentials []string          `json:"registries-credentials"`
}

// ComponentImage names the image as Nuvla splits it.
type ComponentImage struct {
	Registry   string `json:"registry"`
	Repository string `json:"repository"`
	ImageName  string `json:"image-name"`
	Tag        string `json:"tag"`
}

// ComponentPort is a container port, optionally with a fixed host port.
type ComponentPort struct {
	TargetPort    int    `json:"target-port"`
	PublishedPort int    `json:"published-port"`
	Protocol      string `json:"protocol"`
}

// ComponentMount is a bind, volume or tmpfs mount.
type ComponentMount struct {
	MountType     string            `json:"mount-type"`
	Source        string            `json:"source"`
	Target        string            `json:"target"`
	ReadOnly      bool              `json:"read-only"`
	VolumeOptions map[string]string `json:"volume-options"`
}

// EnvironmentVar is a module environment variable.
type EnvironmentVar struct {
	Name        string  `json:"name"`
	Value       *string `json:"value"`
	Description string  `json:"description"`
	Required    bool    `json:"required"`
}

// OutputParameter is a value the app publishes back to Nuvla.
type OutputParameter struct {
	Name        string `json:"name"`
	Description string `json:"description"`
}

// ComponentRestart is Nuvla's (Swarm-style) restart policy.
type ComponentRestart struct {
	Condition   string `json:"condition"`
	Delay       *int   `json:"delay"`
	MaxAttempts *int   `json:"max-attempts"`
	Window      *int   `json:"window"`
}

// ComponentInput is everything the converter needs for one deployment.
type ComponentInput struct {
	// AppID is the deployment uuid.
	AppID string
	// Name is a human-readable name, e.g. the module name.
	Name string
	// Content is module.content, as JSON.
	Content json.RawMessage
	// Env holds the variables berth adds (NUVLA_*, DATE_TIME, TIMESTAMP).
	// They win over module variables, which cannot start with NUVLA_ anyway.
	Env map[string]string
	// Arch is the host's architecture in Go's naming; empty means runtime.GOARCH.
	Arch string
}

// ValidationError lists everything wrong with an input, so the person who
// wrote the module can fix it in one go.
type ValidationError struct {
	What     string
	Problems []string
}

func (e *ValidationError) Error() string {
	return fmt.Sprintf("invalid %s: %s", e.What, strings.Join(e.Problems, "; "))
}

var (
	envNameRE     = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_]*$`)
	volumeNameRE  = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]*$`)
	serviceNameRE = regexp.MustCompile(`[^a-z0-9_-]+`)
	paramNameRE   = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]*$`)
)

// FromComponent converts a Nuvla component module into an App with one
// service. It validates everything and reports every problem it finds.
func FromComponent(in ComponentInput) (*App, error) {
	var c Component
	if len(bytes.TrimSpace(in.Content)) == 0 || string(bytes.TrimSpace(in.Content)) == "null" {
		return nil, &ValidationError{What: "component module", Problems: []string{"module has no content"}}
	}
	if err := json.Unmarshal(in.Content, &c); err != nil {
		return nil, &ValidationError{What: "component module", Problems: []string{describeJSONError(err)}}
	}
	v := &ValidationError{What: "component module"}
	bad := func(format string, args ...any) { v.Problems = append(v.Problems, fmt.Sprintf(format, args...)) }

	ref, err := c.Image.Reference()
	if err != nil {
		bad("%v", err)
	}
	if !archSupported(c.Architectures, in.Arch) {
		bad("module supports architectures %s, this host is %s", strings.Join(c.Architectures, ", "), hostArch(in.Arch))
	}

	s := Service{Name: serviceName(c.Image.ImageName), Image: ref, Env: map[string]string{}}

	seenPorts := map[string]bool{}
	for i, p := range c.Ports {
		proto := strings.ToLower(p.Protocol)
		if proto == "" {
			proto = "tcp"
		}
		switch {
		case p.TargetPort < 1 || p.TargetPort > 65535:
			bad("ports[%d]: target-port %d is not between 1 and 65535", i, p.TargetPort)
			continue
		case p.PublishedPort < 0 || p.PublishedPort > 65535:
			bad("ports[%d]: published-port %d is not between 1 and 65535", i, p.PublishedPort)
			continue
		case proto != "tcp" && proto != "udp" && proto != "sctp":
			bad("ports[%d]: protocol %q is not tcp, udp or sctp", i, p.Protocol)
			continue
		}
		port := Port{Target: p.TargetPort, Published: p.PublishedPort, Protocol: proto}
		if seenPorts[port.Key()] {
			bad("ports[%d]: %s is listed twice", i, port.Key())
			continue
		}
		seenPorts[port.Key()] = true
		s.Ports = append(s.Ports, port)
	}

	seenTargets := map[string]bool{}
	for i, m := range c.Mounts {
		mount, err := convertMount(in.AppID, i, m)
		if err != nil {
			bad("mounts[%d]: %v", i, err)
			continue
		}
		if seenTargets[mount.Target] {
			bad("mounts[%d]: target %s is mounted twice", i, mount.Target)
			continue
		}
		seenTargets[mount.Target] = true
		s.Mounts = append(s.Mounts, mount)
	}

	for i, e := range c.EnvironmentVariables {
		switch {
		case !envNameRE.MatchString(e.Name):
			bad("environmental-variables[%d]: name %q is not a valid variable name", i, e.Name)
		case strings.HasPrefix(e.Name, "NUVLA_"):
			bad("environmental-variables[%d]: name %s starts with NUVLA_, which is reserved", i, e.Name)
		case e.Value == nil || *e.Value == "":
			if e.Required {
				bad("environment variable %s is required but has no value", e.Name)
			}
		default:
			s.Env[e.Name] = *e.Value
		}
	}
	for k, val := range in.Env {
		s.Env[k] = val
	}

	if c.CPUs != nil {
		if *c.CPUs < 0 {
			bad("cpus %v is negative", *c.CPUs)
		} else {
			s.CPUs = *c.CPUs
		}
	}
	if c.Memory != nil {
		if *c.Memory < 0 {
			bad("memory %d MiB is negative", *c.Memory)
		} else if *c.Memory > 0 && *c.Memory < 6 {
			bad("memory %d MiB is below Docker's minimum of 6 MiB", *c.Memory)
		} else {
			s.MemoryMiB = *c.Memory
		}
	}
	s.Restart = RestartPolicy{Condition: RestartAny}
	if rp := c.RestartPolicy; rp != nil {
		switch rp.Condition {
		case RestartNone, RestartOnFailure, RestartAny:
			s.Restart.Condition = rp.Condition
		default:
			bad("restart-policy condition %q is not none, on-failure or any", rp.Condition)
		}
		if rp.MaxAttempts != nil {
			if *rp.MaxAttempts < 0 {
				bad("restart-policy max-attempts %d is negative", *rp.MaxAttempts)
			} else if s.Restart.Condition == RestartOnFailure {
				s.Restart.MaxAttempts = *rp.MaxAttempts
			}
		}
	}

	app := &App{ID: in.AppID, Kind: KindNuvlaComponent, Name: in.Name, Services: []Service{s}}
	seenOut := map[string]bool{}
	for i, o := range c.OutputParameters {
		if !paramNameRE.MatchString(o.Name) {
			bad("output-parameters[%d]: name %q is not a valid parameter name", i, o.Name)
			continue
		}
		if !seenOut[o.Name] {
			seenOut[o.Name] = true
			app.Outputs = append(app.Outputs, o.Name)
		}
	}
	for i, u := range c.URLs {
		if len(u) != 2 {
			bad("urls[%d]: expected [name, url], got %d elements", i, len(u))
			continue
		}
		app.URLs = append(app.URLs, [2]string{u[0], u[1]})
	}
	if len(v.Problems) > 0 {
		return nil, v
	}
	return app, nil
}

// Reference joins the image parts into a normalised Docker reference.
func (im ComponentImage) Reference() (string, error) {
	if strings.TrimSpace(im.ImageName) == "" {
		return "", errors.New("image: image-name is required")
	}
	var parts []string
	if im.Registry != "" {
		parts = append(parts, strings.TrimSuffix(strings.TrimPrefix(strings.TrimPrefix(im.Registry, "https://"), "http://"), "/"))
	}
	if im.Repository != "" {
		parts = append(parts, strings.Trim(im.Repository, "/"))
	}
	parts = append(parts, im.ImageName)
	s := strings.Join(parts, "/")
	if im.Tag != "" {
		s += ":" + im.Tag
	}
	named, err := reference.ParseNormalizedNamed(s)
	if err != nil {
		return "", fmt.Errorf("image: %q is not a valid image reference: %w", s, err)
	}
	return reference.FamiliarString(reference.TagNameOnly(named)), nil
}

func convertMount(appID string, i int, m ComponentMount) (Mount, error) {
	out := Mount{Target: m.Target, ReadOnly: m.ReadOnly}
	if !path.IsAbs(m.Target) {
		return out, fmt.Errorf("target %q must be an absolute path", m.Target)
	}
	switch m.MountType {
	case MountBind:
		if !path.IsAbs(m.Source) {
			return out, fmt.Errorf("bind source %q must be an absolute host path", m.Source)
		}
		if len(m.VolumeOptions) > 0 {
			return out, errors.New("volume-options only apply to volume mounts")
		}
		out.Type, out.Source = MountBind, path.Clean(m.Source)
	case MountTmpfs:
		if m.Source != "" || len(m.VolumeOptions) > 0 {
			return out, errors.New("a tmpfs mount takes neither source nor volume-options")
		}
		out.Type = MountTmpfs
	case MountVolume:
		out.Type = MountVolume
		opts, err := volumeOptions(m.VolumeOptions)
		if err != nil {
			return out, err
		}
		out.VolumeOptions = opts
		switch {
		case m.Source == "" && len(opts) == 0:
			// An anonymous volume, removed with the container.
		case len(opts) == 0 && !volumeNameRE.MatchString(m.Source):
			return out, fmt.Errorf("volume name %q may contain only letters, digits, '_', '.' and '-'", m.Source)
		case len(opts) == 0:
			out.Source = appID + "_" + m.Source
		default:
			// A driver-backed volume (NFS...). Its source in Nuvla is often the
			// remote path, which is no volume name: derive one per app.
			out.Source = fmt.Sprintf("%s_mount%d", appID, i)
		}
	case "":
		return out, errors.New("mount-type is required (bind, volume or tmpfs)")
	default:
		return out, fmt.Errorf("mount-type %q is not bind, volume or tmpfs", m.MountType)
	}
	return out, nil
}

// volumeOptions validates local-driver options and normalises NFS ones to
// what Docker's local driver expects: type=nfs, o=addr=<host>[,...],
// device=:<path>.
func volumeOptions(in map[string]string) (map[string]string, error) {
	if len(in) == 0 {
		return nil, nil
	}
	out := make(map[string]string, len(in))
	for k, v := range in {
		out[k] = v
	}
	typ := out["type"]
	if typ != "nfs" && typ != "nfs4" {
		return out, nil
	}
	if _, ok := NFSAddr(out); !ok {
		return nil, fmt.Errorf("NFS volume-options need o=addr=<server> (got o=%q)", out["o"])
	}
	dev := out["device"]
	if dev == "" {
		return nil, errors.New("NFS volume-options need device=:<exported path>")
	}
	if !strings.Contains(dev, ":") {
		dev = ":/" + strings.TrimPrefix(dev, "/")
	}
	out["device"] = dev
	if v := out["vers"]; v != "" && !strings.Contains(out["o"], "vers=") {
		out["o"] += ",vers=" + v
		delete(out, "vers")
	}
	return out, nil
}

// NFSAddr returns the server address from NFS volume options (o=addr=HOST,...).
func NFSAddr(opts map[string]string) (string, bool) {
	for _, kv := range strings.Split(opts["o"], ",") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(kv), "addr="); ok && v != "" {
			return v, true
		}
	}
	return "", false
}

func serviceName(image string) string {
	base := strings.ToLower(path.Base(image))
	base = serviceNameRE.ReplaceAllString(base, "-")
	base = strings.Trim(base, "-")
	if base == "" || base == "." {
		return "app"
	}
	return base
}

func hostArch(arch string) string {
	if arch == "" {
		return runtime.GOARCH
	}
	return arch
}

// archSupported reports whether the host can run a module built for archs.
// Nuvla names architectures as Docker platforms: amd64, arm64, arm/v7, 386...
func archSupported(archs []string, arch string) bool {
	if len(archs) == 0 {
		return true
	}
	host := hostArch(arch)
	for _, a := range archs {
		a = strings.ToLower(a)
		if a == host || strings.HasPrefix(a, host+"/") || (host == "amd64" && a == "x86_64") || (host == "arm64" && a == "aarch64") {
			return true
		}
	}
	return false
}

func describeJSONError(err error) string {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return fmt.Sprintf("field %s: expected %s, got JSON %s", te.Field, te.Type, te.Value)
	}
	return "content is not valid JSON: " + err.Error()
}

// SortedKeys returns the keys of m in order; a small helper for stable output.
func SortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
