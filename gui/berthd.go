package main

import (
	"bufio"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/berth-edge/berth/daemon/client"
)

// berthd is what berth-desktop asks berthd directly (the menu's data,
// launching, the event stream); the window's page goes through Forwarder.
type berthd struct {
	socket string
	get    *client.Client
	http   *http.Client
}

func newBerthd(socket string) *berthd {
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", socket)
		},
		MaxIdleConns:       4,
		IdleConnTimeout:    30 * time.Second,
		DisableCompression: true,
	}
	return &berthd{socket: socket, get: client.New(socket), http: &http.Client{Transport: tr}}
}

// menuData reads the catalog menu, the caller's sessions and the apps.
func (b *berthd) menuData(ctx context.Context) menuData {
	var d menuData
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	if err := b.get.Get(ctx, "/api/v1/menu", &d.Catalog); err != nil {
		d.CatalogErr = describe(err)
	}
	var errs []string
	if err := b.get.Get(ctx, "/api/v1/session", &d.Sessions); err != nil {
		// berthd without the session API still lists its apps.
		if ae, ok := errors.AsType[*client.APIError](err); !ok || ae.Status != http.StatusNotFound {
			errs = append(errs, describe(err))
		}
	}
	if err := b.get.Get(ctx, "/api/v1/apps", &d.Apps); err != nil {
		errs = append(errs, describe(err))
	}
	if len(errs) > 0 {
		d.AppsErr = errs[0]
	}
	return d
}

// describe words an API error for a menu entry or a dialog.
func describe(err error) string {
	if _, ok := errors.AsType[*client.UnreachableError](err); ok {
		return "berthd is not running: start it with systemctl start berthd"
	}
	return err.Error()
}

// launchForm is the POST /api/v1/session form for item as type typ.
// display and xauth are sent for desktop-app sessions only.
func launchForm(item client.MenuItem, typ, name, display, xauth string) url.Values {
	v := url.Values{}
	v.Set("name", name)
	v.Set("type", typ)
	if item.Profile != "" {
		v.Set("profile", item.Profile)
	} else {
		v.Set("image", item.Image)
	}
	if typ == client.TypeDesktopApp {
		if display != "" {
			v.Set("display", display)
		}
		if xauth != "" {
			v.Set("xauth", xauth)
		}
	}
	return v
}

var notName = regexp.MustCompile(`[^A-Za-z0-9-]+`)

// sessionName derives a skaha-valid session name ([A-Za-z0-9-]+) from an
// image reference: its last path component without the tag, with suffix.
func sessionName(image, suffix string) string {
	ref := image
	if i := strings.LastIndex(ref, "/"); i >= 0 {
		ref = ref[i+1:]
	}
	ref, _, _ = strings.Cut(ref, "@")
	ref, _, _ = strings.Cut(ref, ":")
	name := strings.Trim(notName.ReplaceAllString(ref, "-"), "-")
	name = cmp.Or(name, "session")
	if len(name) > 40 {
		name = strings.TrimRight(name[:40], "-")
	}
	if suffix != "" {
		name += "-" + suffix
	}
	return name
}

// launch starts a session and returns its id.
func (b *berthd) launch(ctx context.Context, form url.Values) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://berthd/api/v1/session", strings.NewReader(form.Encode()))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("User-Agent", "berth-desktop")
	resp, err := b.http.Do(req)
	if err != nil {
		return "", fmt.Errorf("launching %s: %s", form.Get("name"), unreachableMessage(b.socket, err))
	}
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return "", fmt.Errorf("reading berthd's answer: %w", err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		var e client.Error
		if json.Unmarshal(body, &e) == nil && e.Message != "" {
			return "", errors.New(e.Message)
		}
		return "", fmt.Errorf("berthd answered %s: %s", resp.Status, strings.TrimSpace(string(body)))
	}
	id := strings.TrimSpace(string(body))
	if id == "" {
		return "", errors.New("berthd answered no session id")
	}
	return id, nil
}

// session reads one session.
func (b *berthd) session(ctx context.Context, id string) (client.Session, error) {
	var s client.Session
	err := b.get.Get(ctx, "/api/v1/session/"+url.PathEscape(id), &s)
	return s, err
}

// watchEvents reads berthd's event stream and calls fn with each event's
// type, until ctx ends or the stream breaks (the error says why).
func (b *berthd) watchEvents(ctx context.Context, fn func(typ string)) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://berthd/api/v1/events", nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "text/event-stream")
	resp, err := b.http.Do(req)
	if err != nil {
		return err
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET /api/v1/events: %s", resp.Status)
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	for sc.Scan() {
		if typ, ok := strings.CutPrefix(sc.Text(), "event:"); ok {
			fn(strings.TrimSpace(typ))
		}
	}
	if err := sc.Err(); err != nil {
		return err
	}
	return io.ErrUnexpectedEOF
}
