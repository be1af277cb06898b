package store

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/berth-edge/berth/daemon/internal/apps"
)

func TestSessionMetaPersistsTokenButNeverShowsIt(t *testing.T) {
	s := openTemp(t)
	const token = "feedfacefeedfacefeedfacefeedface"
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	rec := AppRecord{
		App:     apps.App{ID: "abcd1234", Kind: apps.KindSession, Owner: "1000"},
		Desired: DesiredRunning, Source: SourceLocal,
		Session: &SessionMeta{Type: "notebook", Name: "nb", Image: "img", UID: 1000, GID: 1000, Token: token,
			Started: at, Expiry: at.Add(time.Hour), Phase: PhaseStarted, Addr: "127.0.0.1:1234",
			Events: []SessionEvent{{Type: "Normal", Reason: "Started", First: at, Last: at}}},
	}
	if err := s.PutApp(rec); err != nil {
		t.Fatal(err)
	}
	s = reopen(t, s)
	got, ok, err := s.App("abcd1234")
	if err != nil || !ok || got.Session == nil {
		t.Fatalf("App = %+v, %v, %v", got, ok, err)
	}
	if got.Session.Token != token || got.Session.Addr != "127.0.0.1:1234" || !got.Session.Expiry.Equal(at.Add(time.Hour)) ||
		len(got.Session.Events) != 1 {
		t.Errorf("session = %+v", got.Session)
	}
	b, _ := json.Marshal(got)
	var logs strings.Builder
	slog.New(slog.NewTextHandler(&logs, nil)).Info("x", "session", *got.Session, "rec", got)
	for name, out := range map[string]string{
		"json": string(b), "string": got.Session.String(), "gostring": fmt.Sprintf("%#v", *got.Session),
		"record": got.String(), "log": logs.String(),
	} {
		if strings.Contains(out, token) {
			t.Errorf("%s shows the token: %s", name, out)
		}
	}
}
