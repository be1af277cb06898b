// Package sessions runs the sessions people at the box launch (notebook,
// contributed, carta, desktop-app, headless), with CANFAR skaha v1's API:
// launch, list, inspect, logs, events, renew and delete under /api/v1 and
// /skaha/v1, and the resource context.
//
// A launch request becomes an apps.App of kind session (Build, a pure
// function), persisted as a store.AppRecord with a store.SessionMeta, and
// run through the reconciler like every other app. Sessions run as the
// caller's uid/gid (never root), with every capability dropped,
// no-new-privileges, and HOME on a per-user volume (berth-home-<uid>)
// seeded from the image's home the first time. Web sessions publish their
// port on 127.0.0.1 only; berthd's proxy reaches them (Target) and
// reports their traffic (Touch) for idle culling.
//
// Two launch parameters are berth's own, for desktop-app sessions:
// display (the caller's X display, e.g. ":0") and xauth (the hex
// MIT-MAGIC-COOKIE-1 of that display). The X11 socket directory
// /tmp/.X11-unix is bind-mounted, and the cookie is written to an
// Xauthority file under the session's directory in the state directory,
// mounted read-only with XAUTHORITY pointing at it.
package sessions

import (
	"errors"
	"fmt"
	"path"
	"regexp"
	"strconv"
	"strings"

	"github.com/berth-edge/berth/daemon/client"
	"github.com/berth-edge/berth/daemon/internal/apps"
)

// Labels on a session's container, besides apps.App.Labels.
const (
	LabelType    = "berth.session.type"
	LabelName    = "berth.session.name"
	LabelUser    = "berth.session.user"
	LabelProfile = "berth.session.profile"
	// LabelHome marks a user's home volume (value: the uid).
	LabelHome = "berth.home"
)

// ServiceName is the name of a session's one service.
const ServiceName = "session"

// Container paths of a desktop-app session.
const (
	X11SocketDir   = "/tmp/.X11-unix"
	XauthorityPath = "/tmp/.berth-xauthority"
)

// Web ports of each web session type.
var webPorts = map[string]int{
	client.TypeNotebook:    8888,
	client.TypeContributed: 5000,
	client.TypeCarta:       6901,
}

// IsWeb reports whether sessions of type typ serve HTTP through the proxy.
func IsWeb(typ string) bool { _, ok := webPorts[typ]; return ok }

// IsInteractive reports whether typ counts against the interactive limit.
func IsInteractive(typ string) bool { return typ != client.TypeHeadless }

var nameRE = regexp.MustCompile(`^[A-Za-z0-9-]+$`)

// LaunchRequest is a launch as the API receives it (skaha's parameters
// plus berth's profile, display and xauth).
type LaunchRequest struct {
	Name  string
	Image string
	Type  string
	// Cores and RAM (GB) are 0 when not given (flexible resources).
	Cores int
	RAM   int
	GPUs  int
	// Cmd, Args and Env are for headless sessions: Cmd replaces the
	// image's entrypoint, Args (space separated) its command, Env
	// (KEY=VALUE) is added.
	Cmd  string
	Args string
	Env  []string
	// Profile names an admin profile to launch.
	Profile string
	// Display and Xauth are a desktop-app's X display and hex cookie.
	Display string
	Xauth   string
}

// Spec is everything Build needs: a validated request and what berthd
// resolved for it.
type Spec struct {
	ID    string
	Token string
	Req   LaunchRequest
	// UID, GID, Groups and UserName are the caller's.
	UID, GID int
	Groups   []int
	UserName string
	// Hostname is the box's name (skaha_hostname).
	Hostname string
	// Home is HOME in the container; HomeVolume the volume mounted there.
	Home       string
	HomeVolume string
	// Cores and RAMGB are the limits to apply (0: none); RequestCores
	// sizes OMP_NUM_THREADS and friends.
	Cores        int
	RAMGB        int
	RequestCores int
	// Command is a profile's command (headless: entrypoint and args;
	// others: the command).
	Command []string
	// ProfileEnv is a profile's environment.
	ProfileEnv map[string]string
	// Storages are a profile's storages that exist.
	Storages []client.ProfileStorage
	// RetryLimit > 0 restarts a failed container that many times.
	RetryLimit int
	// XauthFile is the host file holding the desktop-app's cookie ("": none).
	XauthFile string
	// X11Dir is the host's X11 socket directory (default /tmp/.X11-unix).
	X11Dir string
}

// Build turns a validated launch into the App that runs it. It is pure.
func Build(s Spec) (*apps.App, error) {
	r := s.Req
	if s.ID == "" || s.Token == "" {
		return nil, errors.New("session needs an id and a token")
	}
	if s.UID <= 0 {
		return nil, fmt.Errorf("sessions never run as root (uid %d)", s.UID)
	}
	if !nameRE.MatchString(r.Name) {
		return nil, fmt.Errorf("bad session name %q: use letters, digits and -", r.Name)
	}
	if r.Image == "" {
		return nil, errors.New("no image")
	}
	if !path.IsAbs(s.Home) {
		return nil, fmt.Errorf("home %q is not an absolute path", s.Home)
	}
	svc := apps.Service{
		Name:        ServiceName,
		Image:       r.Image,
		User:        fmt.Sprintf("%d:%d", s.UID, s.GID),
		CapDrop:     []string{"ALL"},
		SecurityOpt: []string{"no-new-privileges:true"},
		Restart:     apps.RestartPolicy{Condition: apps.RestartNone},
		CPUs:        float64(s.Cores),
		MemoryBytes: int64(s.RAMGB) << 30,
		Labels: map[string]string{
			LabelType: r.Type,
			LabelName: r.Name,
			LabelUser: s.UserName,
		},
		Env: map[string]string{},
	}
	for _, g := range s.Groups {
		if g != s.GID {
			svc.GroupAdd = append(svc.GroupAdd, strconv.Itoa(g))
		}
	}
	if s.RetryLimit > 0 {
		svc.Restart = apps.RestartPolicy{Condition: apps.RestartOnFailure, MaxAttempts: s.RetryLimit}
	}
	if r.Profile != "" {
		svc.Labels[LabelProfile] = r.Profile
	}
	for k, v := range s.ProfileEnv {
		svc.Env[k] = v
	}
	threads := strconv.Itoa(max(1, s.RequestCores))
	for _, k := range []string{"OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMEXPR_NUM_THREADS"} {
		svc.Env[k] = threads
	}
	svc.Env["HOME"] = s.Home
	svc.Env["USER"] = s.UserName
	svc.Env["skaha_hostname"] = s.Hostname
	svc.Env["skaha_username"] = s.UserName
	svc.Env["skaha_sessionid"] = s.ID
	if s.HomeVolume != "" {
		svc.Mounts = append(svc.Mounts, apps.Mount{Type: apps.MountVolume, Source: s.HomeVolume, Target: s.Home})
	}
	for _, st := range s.Storages {
		m := apps.Mount{Type: apps.MountVolume, Source: st.Name, Target: st.Target, ReadOnly: st.ReadOnly}
		if path.IsAbs(st.Name) {
			m.Type = apps.MountBind
		}
		svc.Mounts = append(svc.Mounts, m)
	}
	if port, ok := webPorts[r.Type]; ok {
		svc.Ports = []apps.Port{{Target: port, Protocol: "tcp", HostIP: "127.0.0.1"}}
	}
	prefix := "/session/" + r.Type + "/" + s.ID + "/"

	switch r.Type {
	case client.TypeNotebook:
		svc.Env["JUPYTER_TOKEN"] = s.Token
		svc.Env["NB_USER"] = s.UserName
		svc.Env["NB_UID"] = strconv.Itoa(s.UID)
		svc.Env["JUPYTER_CONFIG_DIR"] = path.Join(s.Home, ".jupyter")
		svc.Entrypoint = []string{"jupyter", "lab"}
		svc.Command = []string{
			"--ServerApp.base_url=" + prefix,
			"--ServerApp.port=8888",
			"--ServerApp.ip=0.0.0.0",
			"--ServerApp.token=" + s.Token,
			"--ServerApp.root_dir=" + s.Home,
			"--no-browser",
		}
	case client.TypeContributed:
		svc.Command = s.Command
	case client.TypeCarta:
		svc.Env["CARTA_PORT"] = "6901"
		svc.Env["SKAHA_SESSION_URL_PATH"] = prefix
		svc.Command = s.Command
	case client.TypeDesktopApp:
		if r.Display == "" {
			return nil, errors.New("a desktop-app session needs the X display to draw on (parameter display, e.g. :0)")
		}
		x11 := s.X11Dir
		if x11 == "" {
			x11 = X11SocketDir
		}
		svc.Env["DISPLAY"] = r.Display
		svc.Mounts = append(svc.Mounts, apps.Mount{Type: apps.MountBind, Source: x11, Target: X11SocketDir})
		if s.XauthFile != "" {
			svc.Env["XAUTHORITY"] = XauthorityPath
			svc.Mounts = append(svc.Mounts, apps.Mount{Type: apps.MountBind, Source: s.XauthFile, Target: XauthorityPath, ReadOnly: true})
		}
		svc.Entrypoint = []string{"/bin/sh", "-c", desktopAppScript, "berth-desktop-app", r.Name}
		svc.Command = nil
	case client.TypeHeadless:
		if len(s.Command) > 0 {
			svc.Entrypoint = s.Command[:1]
			svc.Command = s.Command[1:]
			if len(svc.Command) == 0 {
				svc.Command = nil
			}
		}
		if r.Cmd != "" {
			svc.Entrypoint = []string{r.Cmd}
			svc.Command = nil
		}
		if f := strings.Fields(r.Args); len(f) > 0 {
			svc.Command = f
		}
		for _, kv := range r.Env {
			k, v, ok := strings.Cut(kv, "=")
			if !ok || k == "" {
				return nil, fmt.Errorf("env %q is not KEY=VALUE", kv)
			}
			svc.Env[k] = v
		}
	default:
		return nil, fmt.Errorf("unknown session type %q (known: %s)", r.Type, strings.Join(client.SessionTypes, ", "))
	}
	return &apps.App{
		ID:       s.ID,
		Kind:     apps.KindSession,
		Name:     r.Name,
		Owner:    strconv.Itoa(s.UID),
		Services: []apps.Service{svc},
	}, nil
}

// desktopAppScript starts a desktop-app as skaha does, ignoring the
// image's entrypoint: /skaha/init.sh if present (it must not block), then
// /skaha/startup.sh with the xterm launcher as its arguments if present
// (it ends with exec "$@"), else the xterm itself. $1 is the session name.
const desktopAppScript = `name="$1"
if [ -f /skaha/init.sh ]; then
  if [ -x /skaha/init.sh ]; then /skaha/init.sh; else /bin/sh /skaha/init.sh; fi
fi
if [ -x /skaha/startup.sh ]; then
  exec /skaha/startup.sh xterm -fg white -bg black -title "$name"
elif [ -f /skaha/startup.sh ]; then
  exec /bin/sh /skaha/startup.sh xterm -fg white -bg black -title "$name"
fi
exec xterm -fg white -bg black -title "$name"
`

// ConnectPath is the path (and query) that opens a web session through
// berthd's proxy, token included; "" for other types.
func ConnectPath(typ, id, token string) string {
	switch typ {
	case client.TypeNotebook:
		return "/session/notebook/" + id + "/lab?token=" + token
	case client.TypeContributed, client.TypeCarta:
		return "/session/" + typ + "/" + id + "/?token=" + token
	}
	return ""
}
