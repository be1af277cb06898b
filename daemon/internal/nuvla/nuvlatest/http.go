package nuvlatest

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// call is one request being served, with mu held.
type call struct {
	r      *http.Request
	who    *authn
	body   []byte
	typ    string
	uuid   string
	action string
}

func (c *call) id() string { return c.typ + "/" + c.uuid }

func (c *call) mediaType() string {
	mt, _, err := mime.ParseMediaType(c.r.Header.Get("Content-Type"))
	if err != nil {
		return ""
	}
	return mt
}

// object decodes the body as a JSON object; an empty body is {}.
func (c *call) object() (map[string]any, error) {
	if len(bytes.TrimSpace(c.body)) == 0 {
		return map[string]any{}, nil
	}
	m, err := decodeObject(c.body)
	if err != nil {
		return nil, errBadRequest("%v", err)
	}
	return m, nil
}

// params are the CIMI parameters: the query string, plus the form body of a
// search sent with PUT.
func (c *call) params() (url.Values, error) {
	v := c.r.URL.Query()
	if c.r.Method == http.MethodPut && c.mediaType() == "application/x-www-form-urlencoded" {
		form, err := url.ParseQuery(string(c.body))
		if err != nil {
			return nil, errBadRequest("invalid form body: %v", err)
		}
		for k, vals := range form {
			v[k] = append(v[k], vals...)
		}
	}
	return v, nil
}

// reply is a response to write.
type reply struct {
	status  int
	body    any
	header  map[string]string
	cookies []*http.Cookie
}

func okReply(body any) *reply { return &reply{status: http.StatusOK, body: body} }

func created(id string, extra map[string]any) *reply {
	body := map[string]any{"status": 201, "message": id + " created", "resource-id": id}
	for k, v := range extra {
		body[k] = v
	}
	return &reply{status: http.StatusCreated, body: body, header: map[string]string{"Location": id}}
}

func accepted(id, jobID, msg string) *reply {
	return &reply{
		status: http.StatusAccepted,
		body:   map[string]any{"status": 202, "message": msg, "resource-id": id, "location": jobID},
		header: map[string]string{"Location": jobID},
	}
}

func messageReply(status int, msg, id string) *reply {
	body := map[string]any{"status": status, "message": msg}
	if id != "" {
		body["resource-id"] = id
	}
	return &reply{status: status, body: body}
}

func (rp *reply) write(w http.ResponseWriter) {
	for k, v := range rp.header {
		w.Header().Set(k, v)
	}
	for _, ck := range rp.cookies {
		http.SetCookie(w, ck)
	}
	writeJSON(w, rp.status, rp.body)
}

func writeJSON(w http.ResponseWriter, status int, body any) {
	b, err := jsonMarshal(body)
	if err != nil {
		status = http.StatusInternalServerError
		b = []byte(`{"status":500,"message":"unexpected error occurred: cannot encode response"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

func writeError(w http.ResponseWriter, err error) {
	var e *Error
	if !errors.As(err, &e) {
		e = newError(http.StatusInternalServerError, "", "unexpected error occurred: "+err.Error())
	}
	writeJSON(w, e.Status, e)
}

// jsonMarshal encodes without HTML escaping, like the api-server.
func jsonMarshal(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimRight(buf.Bytes(), "\n"), nil
}

func newGzipReader(r io.Reader) (io.ReadCloser, error) { return gzip.NewReader(r) }

// builtinTypes are the resource types served even when empty.
var builtinTypes = map[string]bool{
	"cloud-entry-point": true, "resource-metadata": true, "session": true, "nuvlabox": true,
	"nuvlabox-status": true, "nuvlabox-peripheral": true, "nuvlabox-cluster": true, "nuvlabox-release": true,
	"job": true, "deployment": true, "deployment-parameter": true, "deployment-set": true, "credential": true,
	"infrastructure-service": true, "infrastructure-service-group": true, "resource-log": true, "module": true,
}

// knownType reports whether a type is served: a builtin one, or one that
// CreateResource has stored documents of.
func (s *Server) knownType(typ string) bool {
	return builtinTypes[typ] || s.st.hasType(typ)
}

// anonymousAllowed lists what can be called without credentials.
func anonymousAllowed(c *call) bool {
	switch c.typ {
	case "session", "cloud-entry-point", "resource-metadata":
		return true
	case "nuvlabox":
		return c.action == "activate"
	}
	return false
}

// route dispatches a request under /api/.
func (s *Server) route(c *call) (*reply, error) {
	p := c.r.URL.Path
	if !strings.HasPrefix(p, "/api/") {
		return nil, newError(http.StatusNotFound, "", "not found: "+p)
	}
	parts := strings.Split(strings.Trim(strings.TrimPrefix(p, "/api/"), "/"), "/")
	for _, part := range parts {
		if part == "" {
			return nil, newError(http.StatusNotFound, "", "not found: "+p)
		}
	}
	c.typ = parts[0]
	if len(parts) > 1 {
		c.uuid = parts[1]
	}
	if len(parts) > 2 {
		c.action = parts[2]
	}
	if len(parts) > 3 {
		return nil, newError(http.StatusNotFound, "", "not found: "+p)
	}
	if !s.knownType(c.typ) {
		return nil, errNotFound(c.typ)
	}
	if c.who.anon() && !anonymousAllowed(c) {
		return nil, errUnauthorized("")
	}
	switch len(parts) {
	case 1:
		return s.serveCollection(c)
	case 2:
		return s.serveResource(c)
	}
	if c.r.Method != http.MethodPost {
		return nil, errBadMethod(c.r)
	}
	return s.serveAction(c)
}

func (s *Server) serveCollection(c *call) (*reply, error) {
	switch c.typ {
	case "cloud-entry-point":
		if c.r.Method != http.MethodGet {
			return nil, errBadMethod(c.r)
		}
		return okReply(map[string]any{
			"id": "cloud-entry-point", "resource-type": "cloud-entry-point",
			"base-uri": s.url + "/api/", "collections": map[string]any{},
		}), nil
	case "resource-metadata":
		if c.r.Method != http.MethodGet {
			return nil, errBadMethod(c.r)
		}
		return okReply(map[string]any{"count": 1, "resource-type": "resource-metadata-collection",
			"id": "resource-metadata", "resources": []any{statusMetadata()}}), nil
	}
	switch c.r.Method {
	case http.MethodGet, http.MethodPut:
		return s.serveSearch(c)
	case http.MethodPost:
		if c.typ == "session" {
			return s.login(c)
		}
		return s.add(c)
	}
	return nil, errBadMethod(c.r)
}

func (s *Server) serveResource(c *call) (*reply, error) {
	if c.typ == "resource-metadata" {
		if c.r.Method != http.MethodGet {
			return nil, errBadMethod(c.r)
		}
		if c.uuid != "nuvlabox-status-2" {
			return nil, errNotFound(c.id())
		}
		return okReply(statusMetadata()), nil
	}
	if c.typ == "cloud-entry-point" {
		return nil, errNotFound(c.id())
	}
	switch c.r.Method {
	case http.MethodGet:
		return s.serveGet(c)
	case http.MethodPut:
		return s.serveEdit(c)
	case http.MethodDelete:
		return s.serveDelete(c)
	}
	return nil, errBadMethod(c.r)
}

func (s *Server) serveAction(c *call) (*reply, error) {
	if c.typ == "nuvlabox" && c.action == "activate" {
		return s.activate(c)
	}
	doc, ok := s.st.get(c.id())
	if !ok {
		return nil, errNotFound(c.id())
	}
	var fn actionFunc
	switch c.typ {
	case "nuvlabox":
		fn = nuvlaboxActions[c.action]
	case "deployment":
		fn = deploymentActions[c.action]
	case "job":
		fn = jobActions[c.action]
	case "resource-log":
		fn = resourceLogActions[c.action]
	}
	if fn == nil {
		return nil, errBadAction(c.r, c.action)
	}
	return fn(s, c, doc)
}

// actionFunc runs a resource action on a private copy of the document.
type actionFunc func(s *Server, c *call, doc map[string]any) (*reply, error)
