package sessions

import (
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"strconv"
	"strings"

	"github.com/berth-edge/berth/daemon/internal/api"
	"github.com/berth-edge/berth/daemon/internal/caller"
	"github.com/berth-edge/berth/daemon/internal/httpjson"
)

// Prefixes are where the session routes are mounted: berth's API and
// skaha's, so skaha scripts work unchanged.
var Prefixes = []string{"/api/v1", "/skaha/v1"}

// Routes returns the session API:
//
//	GET    session                 list (type, status filters; view=interactive);
//	                               admins see every user's sessions
//	POST   session                 launch: name, image, type, cores, ram, gpus,
//	                               cmd, args, env (repeated), profile, display, xauth;
//	                               answers the id as text
//	GET    session/{id}            one session (view=logs: text logs; view=events: text table)
//	POST   session/{id}            action=renew
//	DELETE session/{id}            delete
//	GET    context                 resource options
//
// POST takes form or query parameters (curl -d k=v), or a JSON object.
func (m *Manager) Routes() api.Routes {
	return api.Routes{
		Prefixes: Prefixes,
		Handlers: map[string]http.Handler{
			"GET /session":         http.HandlerFunc(m.handleList),
			"POST /session":        http.HandlerFunc(m.handleLaunch),
			"GET /session/{id}":    http.HandlerFunc(m.handleGet),
			"POST /session/{id}":   http.HandlerFunc(m.handleAction),
			"DELETE /session/{id}": http.HandlerFunc(m.handleDelete),
			"GET /context":         http.HandlerFunc(m.handleContext),
		},
	}
}

// who returns the request's caller or answers 403.
func who(w http.ResponseWriter, r *http.Request) (caller.Caller, bool) {
	c, ok := caller.FromContext(r.Context())
	if !ok {
		if api.FromWeb(r.Context()) {
			httpjson.Error(w, http.StatusForbidden, "the web listener acts for no user: set sessions.web-user in berthd's configuration")
		} else {
			httpjson.Error(w, http.StatusForbidden, "unknown caller: berthd could not tell who is calling")
		}
		return c, false
	}
	return c, true
}

func writeErr(w http.ResponseWriter, err error) {
	var e *Error
	if errors.As(err, &e) {
		httpjson.Error(w, e.Code, e.Msg)
		return
	}
	httpjson.Error(w, http.StatusInternalServerError, err.Error())
}

func (m *Manager) handleContext(w http.ResponseWriter, r *http.Request) {
	httpjson.Write(w, http.StatusOK, m.Context())
}

func (m *Manager) handleList(w http.ResponseWriter, r *http.Request) {
	c, ok := who(w, r)
	if !ok {
		return
	}
	q := r.URL.Query()
	view := q.Get("view")
	switch view {
	case "", "all", "interactive":
	default:
		httpjson.Error(w, http.StatusBadRequest, fmt.Sprintf("unknown view %q (all or interactive)", view))
		return
	}
	ss, err := m.List(r.Context(), c, q.Get("type"), q.Get("status"), view == "all")
	if err != nil {
		writeErr(w, err)
		return
	}
	if view == "interactive" {
		out := ss[:0]
		for _, s := range ss {
			if IsInteractive(s.Type) {
				out = append(out, s)
			}
		}
		ss = out
	}
	httpjson.Write(w, http.StatusOK, ss)
}

// launchJSON is a launch as a JSON body.
type launchJSON struct {
	Name    string   `json:"name"`
	Image   string   `json:"image"`
	Type    string   `json:"type"`
	Cores   any      `json:"cores"`
	RAM     any      `json:"ram"`
	GPUs    any      `json:"gpus"`
	Cmd     string   `json:"cmd"`
	Args    string   `json:"args"`
	Env     []string `json:"env"`
	Profile string   `json:"profile"`
	Display string   `json:"display"`
	Xauth   string   `json:"xauth"`
}

// ParseLaunch reads a launch from form/query parameters or a JSON body.
func ParseLaunch(r *http.Request) (LaunchRequest, error) {
	var req LaunchRequest
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if ct == "application/json" {
		var j launchJSON
		dec := json.NewDecoder(http.MaxBytesReader(nil, r.Body, 1<<20))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&j); err != nil {
			return req, errorf(http.StatusBadRequest, "bad JSON body: %v", err)
		}
		req = LaunchRequest{Name: j.Name, Image: j.Image, Type: j.Type, Cmd: j.Cmd, Args: j.Args, Env: j.Env,
			Profile: j.Profile, Display: j.Display, Xauth: j.Xauth}
		for _, f := range []struct {
			name string
			v    any
			dst  *int
		}{{"cores", j.Cores, &req.Cores}, {"ram", j.RAM, &req.RAM}, {"gpus", j.GPUs, &req.GPUs}} {
			switch v := f.v.(type) {
			case nil:
			case float64:
				if v != float64(int(v)) {
					return req, errorf(http.StatusBadRequest, "%s %v is not an integer", f.name, v)
				}
				*f.dst = int(v)
			case string:
				n, err := intParam(f.name, v)
				if err != nil {
					return req, err
				}
				*f.dst = n
			default:
				return req, errorf(http.StatusBadRequest, "%s must be an integer", f.name)
			}
		}
		return req, nil
	}
	r.Body = http.MaxBytesReader(nil, r.Body, 1<<20)
	if err := r.ParseForm(); err != nil {
		return req, errorf(http.StatusBadRequest, "bad form: %v", err)
	}
	f := r.Form
	req = LaunchRequest{Name: f.Get("name"), Image: f.Get("image"), Type: f.Get("type"), Cmd: f.Get("cmd"),
		Args: f.Get("args"), Env: f["env"], Profile: f.Get("profile"), Display: f.Get("display"), Xauth: f.Get("xauth")}
	var err error
	if req.Cores, err = intParam("cores", f.Get("cores")); err != nil {
		return req, err
	}
	if req.RAM, err = intParam("ram", f.Get("ram")); err != nil {
		return req, err
	}
	if req.GPUs, err = intParam("gpus", f.Get("gpus")); err != nil {
		return req, err
	}
	return req, nil
}

func intParam(name, s string) (int, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		return 0, errorf(http.StatusBadRequest, "%s %q is not a non-negative integer", name, s)
	}
	return n, nil
}

func (m *Manager) handleLaunch(w http.ResponseWriter, r *http.Request) {
	c, ok := who(w, r)
	if !ok {
		return
	}
	req, err := ParseLaunch(r)
	if err != nil {
		writeErr(w, err)
		return
	}
	id, err := m.Launch(r.Context(), c, req)
	if err != nil {
		writeErr(w, err)
		return
	}
	httpjson.Text(w, http.StatusOK, id+"\n")
}

func (m *Manager) handleGet(w http.ResponseWriter, r *http.Request) {
	c, ok := who(w, r)
	if !ok {
		return
	}
	id := r.PathValue("id")
	switch view := r.URL.Query().Get("view"); view {
	case "":
		s, err := m.Get(r.Context(), c, id)
		if err != nil {
			writeErr(w, err)
			return
		}
		httpjson.Write(w, http.StatusOK, s)
	case "logs":
		s, err := m.Logs(r.Context(), c, id)
		if err != nil {
			writeErr(w, err)
			return
		}
		httpjson.Text(w, http.StatusOK, s)
	case "events":
		s, err := m.Events(r.Context(), c, id)
		if err != nil {
			writeErr(w, err)
			return
		}
		httpjson.Text(w, http.StatusOK, s)
	default:
		httpjson.Error(w, http.StatusBadRequest, fmt.Sprintf("unknown view %q (logs or events)", view))
	}
}

func (m *Manager) handleAction(w http.ResponseWriter, r *http.Request) {
	c, ok := who(w, r)
	if !ok {
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 1<<16)
	_ = r.ParseForm()
	switch action := r.Form.Get("action"); action {
	case "renew":
		if err := m.Renew(r.Context(), c, r.PathValue("id")); err != nil {
			writeErr(w, err)
			return
		}
		httpjson.Text(w, http.StatusOK, "")
	case "":
		httpjson.Error(w, http.StatusBadRequest, "missing action (action=renew)")
	default:
		httpjson.Error(w, http.StatusBadRequest, fmt.Sprintf("unknown action %q (renew)", action))
	}
}

func (m *Manager) handleDelete(w http.ResponseWriter, r *http.Request) {
	c, ok := who(w, r)
	if !ok {
		return
	}
	if err := m.Delete(r.Context(), c, r.PathValue("id")); err != nil {
		writeErr(w, err)
		return
	}
	httpjson.Text(w, http.StatusOK, "")
}
