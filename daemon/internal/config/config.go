// Package config defines berthd's configuration: one TOML file, decoded
// strictly (an unknown key is an error that names it), then overridden by the
// NuvlaEdge-compatible environment variables, then by command-line flags, and
// finally validated as a whole.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/pelletier/go-toml/v2"
)

// Defaults.
const (
	DefaultPath      = "/etc/berth/config.toml"
	DefaultStateDir  = "/var/lib/berth"
	DefaultSocket    = "/run/berth/berthd.sock"
	DefaultWebListen = "127.0.0.1:8484"
	DefaultGroup     = "berth"
	DefaultSSHUser   = "root"
	// DefaultProfilesDir holds the admin-defined session profiles.
	DefaultProfilesDir = "/etc/berth/profiles.d"
	// DefaultAdminGroup's members see and manage every user's sessions.
	DefaultAdminGroup = "berth-admin"
)

// Config is the whole configuration.
type Config struct {
	// StateDir holds the state file (state.db) and the web UI token.
	StateDir string `toml:"state-dir"`
	// Socket is the local API's unix socket.
	Socket string `toml:"socket"`
	// SocketGroup owns the socket (mode 0660); members may use the local API.
	SocketGroup string `toml:"socket-group"`
	// LogLevel is debug, info, warn or error.
	LogLevel string   `toml:"log-level"`
	Docker   Docker   `toml:"docker"`
	Nuvla    Nuvla    `toml:"nuvla"`
	Web      Web      `toml:"web"`
	Host     Host     `toml:"host"`
	Sessions Sessions `toml:"sessions"`
	Catalog  Catalog  `toml:"catalog"`
}

// Sessions configures the sessions people at the box launch.
type Sessions struct {
	// MaxInteractive is how many interactive (non-headless) sessions one
	// user may have Pending or Running at once.
	MaxInteractive int `toml:"max-interactive"`
	// Expiry is an interactive session's lifetime; renew extends it to
	// this long from now.
	Expiry Duration `toml:"expiry"`
	// HeadlessExpiry is a headless session's lifetime.
	HeadlessExpiry Duration `toml:"headless-expiry"`
	// IdleTimeout stops a web session with no traffic through the proxy
	// for this long; 0 never culls.
	IdleTimeout Duration `toml:"idle-timeout"`
	// AdminGroup's members (and root) see and manage every user's sessions.
	AdminGroup string `toml:"admin-group"`
	// WebUser is the user (name or uid) that requests from the loopback
	// web listener act for; empty: the user berthd runs as, or SUDO_UID
	// when that is root. Sessions never run as root.
	WebUser string `toml:"web-user"`
	// ProfilesDir holds the admin profiles (<name>.toml or <name>.yaml).
	ProfilesDir string `toml:"profiles-dir"`
	// MaxCores and MaxMemoryGB cap what a session may ask for (0: the
	// host's CPUs and RAM).
	MaxCores    int `toml:"max-cores"`
	MaxMemoryGB int `toml:"max-memory-gb"`
}

// Catalog configures where launchable images are listed from, besides
// local images labelled berth.types.
type Catalog struct {
	// Registries are listed through the Registry v2 or Harbor API.
	Registries []CatalogRegistry `toml:"registry"`
	// Refresh is how often the registries are listed again.
	Refresh Duration `toml:"refresh"`
}

// CatalogRegistry is one registry of the catalog ([[catalog.registry]]).
type CatalogRegistry struct {
	// Name identifies the registry in the catalog ("registry:<name>").
	Name string `toml:"name"`
	// URL is the registry's base URL (https://host[:port]).
	URL string `toml:"url"`
	// Kind is "registry" (the Registry v2 API) or "harbor".
	Kind string `toml:"kind"`
	// Credential names a stored registry credential (berth registry add).
	Credential string `toml:"credential"`
	// Insecure skips TLS verification.
	Insecure bool `toml:"insecure"`
	// Projects limits a Harbor listing to these projects (empty: all).
	Projects []string `toml:"projects"`
}

// Host configures what control-plane jobs may do to the host itself.
type Host struct {
	// AllowReboot lets a reboot_nuvlabox job reboot the machine.
	AllowReboot bool `toml:"allow-reboot"`
	// SSHUser is the account whose ~/.ssh/authorized_keys the ssh-key jobs
	// edit.
	SSHUser string `toml:"ssh-user"`
}

// Docker configures the engine connection.
type Docker struct {
	// Host is a Docker endpoint (unix:///var/run/docker.sock); empty uses
	// DOCKER_HOST or the default socket.
	Host string `toml:"host"`
	// ResyncInterval is how often berthd compares Docker with the desired
	// state even without events.
	ResyncInterval Duration `toml:"resync-interval"`
}

// Nuvla configures the control plane. An empty Endpoint means standalone.
type Nuvla struct {
	Endpoint   string `toml:"endpoint"`
	Insecure   bool   `toml:"insecure"`
	NuvlaboxID string `toml:"nuvlabox-id"`
	// APIKey and APISecret are a pre-provisioned key of the box; normally
	// they come from activation and live in the state file.
	APIKey    string `toml:"api-key"`
	APISecret string `toml:"api-secret"`
}

// Web configures the loopback listener that serves the web UI.
type Web struct {
	// Listen is a loopback address; empty disables the web UI.
	Listen string `toml:"listen"`
}

// Duration is a time.Duration written as "30s" or "5m" in the file.
type Duration struct{ time.Duration }

// UnmarshalText parses a Go duration string.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("%q is not a duration like \"30s\" or \"5m\"", b)
	}
	d.Duration = v
	return nil
}

// MarshalText writes the duration as Go formats it.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// Default returns the configuration used when no file exists.
func Default() Config {
	return Config{
		StateDir:    DefaultStateDir,
		Socket:      DefaultSocket,
		SocketGroup: DefaultGroup,
		LogLevel:    "info",
		Docker:      Docker{ResyncInterval: Duration{5 * time.Minute}},
		Web:         Web{Listen: DefaultWebListen},
		Host:        Host{SSHUser: DefaultSSHUser},
		Sessions: Sessions{
			MaxInteractive: 5,
			Expiry:         Duration{96 * time.Hour},
			HeadlessExpiry: Duration{14 * 24 * time.Hour},
			IdleTimeout:    Duration{0},
			AdminGroup:     DefaultAdminGroup,
			ProfilesDir:    DefaultProfilesDir,
		},
		Catalog: Catalog{Refresh: Duration{30 * time.Minute}},
	}
}

// Load reads path over the defaults. A missing file is not an error when
// optional is true (the default path may simply not exist).
func Load(path string, optional bool) (Config, error) {
	c := Default()
	b, err := os.ReadFile(path)
	if err != nil {
		if optional && errors.Is(err, os.ErrNotExist) {
			return c, nil
		}
		return c, fmt.Errorf("read config: %w", err)
	}
	if err := Decode(b, &c); err != nil {
		return c, fmt.Errorf("config %s: %w", path, err)
	}
	return c, nil
}

// Decode decodes TOML strictly into c, keeping c's values for absent keys.
func Decode(b []byte, c *Config) error { return DecodeStrict(b, c) }

// DecodeStrict decodes TOML into v, keeping v's values for absent keys;
// an unknown key is an error naming it and its line, and a value of the
// wrong type an error naming the key, line and column. The profiles use it
// too, so every file an administrator writes is read the same way.
func DecodeStrict(b []byte, v any) error {
	dec := toml.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	var strict *toml.StrictMissingError
	var derr *toml.DecodeError
	switch {
	case errors.As(err, &strict):
		var msgs []string
		for _, e := range strict.Errors {
			row, _ := e.Position()
			msgs = append(msgs, fmt.Sprintf("unknown key %q (line %d)", strings.Join(e.Key(), "."), row))
		}
		return errors.New(strings.Join(msgs, "; "))
	case errors.As(err, &derr):
		row, col := derr.Position()
		if key := strings.Join(derr.Key(), "."); key != "" {
			return fmt.Errorf("%s (line %d, column %d): %s", key, row, col, derr.Error())
		}
		return fmt.Errorf("line %d, column %d: %s", row, col, derr.Error())
	case err != nil:
		return err
	}
	return nil
}

// Getenv reads one environment variable; tests pass their own.
type Getenv func(string) string

// ApplyEnv applies the NuvlaEdge-compatible variables: NUVLA_ENDPOINT,
// NUVLA_ENDPOINT_INSECURE, NUVLAEDGE_UUID (or the older NUVLABOX_UUID),
// NUVLAEDGE_API_KEY and NUVLAEDGE_API_SECRET.
func (c *Config) ApplyEnv(getenv Getenv) error {
	if v := getenv("NUVLA_ENDPOINT"); v != "" {
		c.Nuvla.Endpoint = v
	}
	if v := getenv("NUVLA_ENDPOINT_INSECURE"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return fmt.Errorf("NUVLA_ENDPOINT_INSECURE=%q is not true or false", v)
		}
		c.Nuvla.Insecure = b
	}
	if v := getenv("NUVLAEDGE_UUID"); v != "" {
		c.Nuvla.NuvlaboxID = v
	} else if v := getenv("NUVLABOX_UUID"); v != "" {
		c.Nuvla.NuvlaboxID = v
	}
	if v := getenv("NUVLAEDGE_API_KEY"); v != "" {
		c.Nuvla.APIKey = v
	}
	if v := getenv("NUVLAEDGE_API_SECRET"); v != "" {
		c.Nuvla.APISecret = v
	}
	return nil
}

// Standalone reports whether no control plane is configured.
func (c *Config) Standalone() bool { return c.Nuvla.Endpoint == "" }

// StatePath is the bbolt state file.
func (c *Config) StatePath() string { return filepath.Join(c.StateDir, "state.db") }

// Normalize fills derived values: the endpoint gets a scheme and loses a
// trailing /api, and the box id gets its "nuvlabox/" prefix.
func (c *Config) Normalize() {
	if e := strings.TrimSpace(c.Nuvla.Endpoint); e != "" {
		if !strings.Contains(e, "://") {
			e = "https://" + e
		}
		e = strings.TrimSuffix(strings.TrimSuffix(e, "/"), "/api")
		c.Nuvla.Endpoint = e
	}
	if id := strings.TrimSpace(c.Nuvla.NuvlaboxID); id != "" && !strings.HasPrefix(id, "nuvlabox/") {
		c.Nuvla.NuvlaboxID = "nuvlabox/" + id
	}
}

// Validate checks the whole configuration and names every bad field.
func (c *Config) Validate() error {
	var problems []string
	bad := func(field, format string, args ...any) {
		problems = append(problems, field+": "+fmt.Sprintf(format, args...))
	}
	if c.StateDir == "" || !filepath.IsAbs(c.StateDir) {
		bad("state-dir", "%q must be an absolute path", c.StateDir)
	}
	if c.Socket == "" || !filepath.IsAbs(c.Socket) {
		bad("socket", "%q must be an absolute path", c.Socket)
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		bad("log-level", "%q is not debug, info, warn or error", c.LogLevel)
	}
	if c.Docker.ResyncInterval.Duration < time.Second {
		bad("docker.resync-interval", "%s is shorter than 1s", c.Docker.ResyncInterval)
	}
	if h := c.Docker.Host; h != "" && !strings.HasPrefix(h, "unix://") && !strings.HasPrefix(h, "tcp://") {
		bad("docker.host", "%q must start with unix:// or tcp://", h)
	}
	if e := c.Nuvla.Endpoint; e != "" {
		u, err := url.Parse(e)
		switch {
		case err != nil:
			bad("nuvla.endpoint", "%q is not a URL: %v", e, err)
		case u.Scheme != "http" && u.Scheme != "https":
			bad("nuvla.endpoint", "%q must be an http or https URL", e)
		case u.Host == "":
			bad("nuvla.endpoint", "%q has no host", e)
		}
		if c.Nuvla.NuvlaboxID == "" && c.Nuvla.APIKey == "" {
			bad("nuvla.nuvlabox-id", "is required with an endpoint (set it, NUVLAEDGE_UUID or --nuvlabox-id)")
		}
	} else if c.Nuvla.NuvlaboxID != "" {
		bad("nuvla.endpoint", "is required when nuvla.nuvlabox-id is set (set it, NUVLA_ENDPOINT or --nuvla-endpoint)")
	}
	if id := c.Nuvla.NuvlaboxID; id != "" && !validUUIDish(strings.TrimPrefix(id, "nuvlabox/")) {
		bad("nuvla.nuvlabox-id", "%q is not nuvlabox/<uuid>", id)
	}
	if (c.Nuvla.APIKey == "") != (c.Nuvla.APISecret == "") {
		bad("nuvla.api-key", "api-key and api-secret must be given together")
	}
	if l := c.Web.Listen; l != "" {
		host, port, err := net.SplitHostPort(l)
		if err != nil {
			bad("web.listen", "%q is not host:port: %v", l, err)
		} else if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
			bad("web.listen", "%q is not a loopback address; the web UI is only served on loopback", l)
		} else if _, err := strconv.ParseUint(port, 10, 16); err != nil {
			bad("web.listen", "port %q is not a number", port)
		}
	}
	if u := c.Host.SSHUser; !validUserName(u) {
		bad("host.ssh-user", "%q is not a user name", u)
	}
	if c.Sessions.MaxInteractive < 1 {
		bad("sessions.max-interactive", "%d is less than 1", c.Sessions.MaxInteractive)
	}
	if c.Sessions.Expiry.Duration < time.Minute {
		bad("sessions.expiry", "%s is shorter than 1m", c.Sessions.Expiry)
	}
	if c.Sessions.HeadlessExpiry.Duration < time.Minute {
		bad("sessions.headless-expiry", "%s is shorter than 1m", c.Sessions.HeadlessExpiry)
	}
	if d := c.Sessions.IdleTimeout.Duration; d != 0 && d < time.Minute {
		bad("sessions.idle-timeout", "%s is shorter than 1m (0 disables idle culling)", d)
	}
	if c.Sessions.ProfilesDir != "" && !filepath.IsAbs(c.Sessions.ProfilesDir) {
		bad("sessions.profiles-dir", "%q must be an absolute path", c.Sessions.ProfilesDir)
	}
	if c.Sessions.MaxCores < 0 || c.Sessions.MaxMemoryGB < 0 {
		bad("sessions.max-cores", "limits must not be negative")
	}
	if c.Catalog.Refresh.Duration < 10*time.Second {
		bad("catalog.refresh", "%s is shorter than 10s", c.Catalog.Refresh)
	}
	names := map[string]bool{}
	for i, r := range c.Catalog.Registries {
		field := fmt.Sprintf("catalog.registry[%d]", i)
		if r.Name == "" {
			bad(field+".name", "is required")
		} else if names[r.Name] {
			bad(field+".name", "%q is used twice", r.Name)
		}
		names[r.Name] = true
		if u, err := url.Parse(r.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			bad(field+".url", "%q is not an http(s)://host[:port] URL", r.URL)
		}
		switch r.Kind {
		case "", "registry", "harbor":
		default:
			bad(field+".kind", "%q is not registry or harbor", r.Kind)
		}
	}
	if len(problems) > 0 {
		return errors.New("invalid configuration: " + strings.Join(problems, "; "))
	}
	return nil
}

func validUUIDish(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i, r := range s {
		switch i {
		case 8, 13, 18, 23:
			if r != '-' {
				return false
			}
		default:
			if !strings.ContainsRune("0123456789abcdefABCDEF", r) {
				return false
			}
		}
	}
	return true
}

// validUserName accepts the names useradd accepts (and numeric uids): no
// empty name, no path separators, no spaces or colons.
func validUserName(s string) bool {
	if s == "" || len(s) > 32 || s[0] == '-' {
		return false
	}
	for _, r := range s {
		ok := r == '_' || r == '-' || r == '.' || r == '$' || (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z') || (r >= '0' && r <= '9')
		if !ok {
			return false
		}
	}
	return true
}
