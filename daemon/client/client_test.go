package client

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
)

func TestUnreachableSocketSaysWhatToCheck(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "missing.sock")
	_, err := New(sock).Status(t.Context())
	var ue *UnreachableError
	if !errors.As(err, &ue) {
		t.Fatalf("err = %v, want *UnreachableError", err)
	}
	want := "cannot reach berthd at " + sock + ": connect: no such file or directory (is berthd running? are you in the berth group?)"
	if err.Error() != want {
		t.Errorf("err = %q\nwant  %q", err, want)
	}
}

func TestHTTPClientSendsTokenAndDecodesErrors(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer s3cret" {
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = w.Write([]byte(`{"status":401,"message":"missing or wrong token"}`))
			return
		}
		switch r.URL.Path {
		case "/api/v1/apps/a%2Fb", "/api/v1/apps/a/b":
			if r.URL.EscapedPath() != "/api/v1/apps/a%2Fb" {
				t.Errorf("id not escaped: %s", r.URL.EscapedPath())
			}
			_, _ = w.Write([]byte(`{"id":"a/b","kind":"session","source":"local","desired":"running","state":"running","services":[]}`))
		default:
			http.Error(w, "plain failure", http.StatusBadGateway)
		}
	}))
	defer srv.Close()

	a, err := NewHTTP(srv.URL+"/", "s3cret").App(t.Context(), "a/b")
	if err != nil || a.ID != "a/b" {
		t.Errorf("App = %+v, %v", a, err)
	}

	_, err = NewHTTP(srv.URL, "wrong").Apps(t.Context())
	var ae *APIError
	if !errors.As(err, &ae) || ae.Status != 401 || ae.Message != "missing or wrong token" {
		t.Errorf("wrong token: %v", err)
	}

	_, err = NewHTTP(srv.URL, "s3cret").Status(t.Context())
	if !errors.As(err, &ae) || ae.Status != http.StatusBadGateway || !strings.Contains(ae.Message, "plain failure") {
		t.Errorf("non-JSON error: %v", err)
	}
}
