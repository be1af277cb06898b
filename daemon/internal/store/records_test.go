package store

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	"github.com/berth-edge/berth/daemon/internal/apps"
)

func TestIdentityRoundTrip(t *testing.T) {
	s := openTemp(t)
	if _, ok, err := s.Identity(); err != nil || ok {
		t.Fatalf("Identity on a fresh store = %v, %v; want none", ok, err)
	}
	want := Identity{
		NuvlaboxID: "nuvlabox/0b1c", Endpoint: "https://nuvla.io", Insecure: true,
		APIKey: "credential/1234", APISecret: "s3cr3t", StatusID: "nuvlabox-status/77",
		State: "COMMISSIONED", Activated: time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC),
	}
	if err := s.SaveIdentity(want); err != nil {
		t.Fatalf("SaveIdentity: %v", err)
	}
	if err := s.SaveIdentity(Identity{}); err == nil {
		t.Fatal("SaveIdentity without a nuvlabox id succeeded")
	}
	s = reopen(t, s)
	got, ok, err := s.Identity()
	if err != nil || !ok {
		t.Fatalf("Identity = %v, %v", ok, err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Identity = %#v\nwant %#v", got, want)
	}
}

func testApp(id string) AppRecord {
	return AppRecord{
		App: apps.App{
			ID: id, Kind: apps.KindNuvlaComponent, Name: "nginx",
			Services: []apps.Service{{
				Name: "main", Image: "nginx:1.27", Env: map[string]string{"A": "b"},
				Ports:   []apps.Port{{Target: 80, Protocol: "tcp"}},
				Restart: apps.RestartPolicy{Condition: apps.RestartAny},
			}},
			Outputs: []string{"url"},
		},
		Desired:      DesiredRunning,
		Source:       SourceNuvla,
		DeploymentID: "deployment/" + id,
		JobID:        "job/1",
	}
}

func TestAppsRoundTrip(t *testing.T) {
	s := openTemp(t)
	now := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	s.now = func() time.Time { return now }

	a := testApp("b-uuid")
	a.Credentials = &DeploymentCredentials{APIKey: "credential/dep", APISecret: "dep-secret"}
	a.Params = map[string]string{"tcp.80": "32768"}
	b := testApp("a-uuid")
	b.Source, b.Desired, b.DeploymentID = SourceLocal, DesiredStopped, ""
	for _, r := range []AppRecord{a, b} {
		if err := s.PutApp(r); err != nil {
			t.Fatalf("PutApp(%s): %v", r.App.ID, err)
		}
	}

	s = reopen(t, s)
	got, ok, err := s.App("b-uuid")
	if err != nil || !ok {
		t.Fatalf("App = %v, %v", ok, err)
	}
	a.Updated = now
	if !reflect.DeepEqual(got, a) {
		t.Fatalf("App = %+v\nwant %+v", got, a)
	}
	if got.Credentials == nil || got.Credentials.APISecret != "dep-secret" {
		t.Fatalf("credentials lost: %v", got.Credentials)
	}
	list, err := s.Apps()
	if err != nil {
		t.Fatalf("Apps: %v", err)
	}
	if len(list) != 2 || list[0].App.ID != "a-uuid" || list[1].App.ID != "b-uuid" || list[0].Credentials != nil {
		t.Fatalf("Apps = %v", list)
	}

	if err := s.DeleteApp("b-uuid"); err != nil {
		t.Fatalf("DeleteApp: %v", err)
	}
	if err := s.DeleteApp("never-existed"); err != nil {
		t.Fatalf("DeleteApp of a missing app: %v", err)
	}
	if _, ok, err := s.App("b-uuid"); err != nil || ok {
		t.Fatalf("App after delete = %v, %v", ok, err)
	}

	for name, r := range map[string]AppRecord{
		"empty id":    {Desired: DesiredRunning, Source: SourceLocal},
		"bad desired": func() AppRecord { r := testApp("x"); r.Desired = "paused"; return r }(),
		"bad source":  func() AppRecord { r := testApp("x"); r.Source = "ftp"; return r }(),
	} {
		if err := s.PutApp(r); err == nil {
			t.Errorf("PutApp(%s) succeeded", name)
		}
	}
}

func TestRegistriesRoundTrip(t *testing.T) {
	s := openTemp(t)
	ghcr := RegistryCredential{Name: "ghcr", Server: "ghcr.io", Username: "bot", Password: "hunter2"}
	hub := RegistryCredential{Name: "docker-hub", Server: "docker.io", Username: "me", Password: "pw"}
	for _, c := range []RegistryCredential{ghcr, hub} {
		if err := s.PutRegistry(c); err != nil {
			t.Fatalf("PutRegistry: %v", err)
		}
	}
	if err := s.PutRegistry(RegistryCredential{Server: "x"}); err == nil {
		t.Fatal("PutRegistry without a name succeeded")
	}
	s = reopen(t, s)
	got, ok, err := s.Registry("ghcr")
	if err != nil || !ok || got != ghcr {
		t.Fatalf("Registry = %v, %v, %v", got, ok, err)
	}
	list, err := s.Registries()
	if err != nil || !reflect.DeepEqual(list, []RegistryCredential{hub, ghcr}) {
		t.Fatalf("Registries = %v, %v", list, err)
	}
	if err := s.DeleteRegistry("ghcr"); err != nil {
		t.Fatalf("DeleteRegistry: %v", err)
	}
	if _, ok, err := s.Registry("ghcr"); err != nil || ok {
		t.Fatalf("Registry after delete = %v, %v", ok, err)
	}
}

// A record that does not decode must not hide the others from a listing.
func TestListSkipsUndecodableRecord(t *testing.T) {
	s := openTemp(t)
	if err := s.PutApp(testApp("good")); err != nil {
		t.Fatal(err)
	}
	if err := s.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketApps).Put([]byte("bad"), []byte("{not json"))
	}); err != nil {
		t.Fatal(err)
	}
	list, err := s.Apps()
	if err != nil || len(list) != 1 || list[0].App.ID != "good" {
		t.Fatalf("Apps = %v, %v", list, err)
	}
	if _, _, err := s.App("bad"); err == nil {
		t.Fatal("App of an undecodable record succeeded")
	}
}

func TestBackup(t *testing.T) {
	s := openTemp(t)
	if err := s.PutApp(testApp("app-1")); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	n, err := s.Backup(&buf)
	if err != nil || n != int64(buf.Len()) || n == 0 {
		t.Fatalf("Backup = %d, %v (wrote %d)", n, err, buf.Len())
	}
	path := filepath.Join(t.TempDir(), "restored.db")
	if err := os.WriteFile(path, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	r := openAt(t, path)
	if r.Fresh() || r.Quarantined() != "" {
		t.Fatalf("restored backup: fresh=%v quarantined=%q", r.Fresh(), r.Quarantined())
	}
	if _, ok, err := r.App("app-1"); err != nil || !ok {
		t.Fatalf("App from backup = %v, %v", ok, err)
	}
}

func TestCloseTwiceAndUseAfterClose(t *testing.T) {
	s := openTemp(t)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := s.Apps(); !errors.Is(err, berrors.ErrDatabaseNotOpen) {
		t.Fatalf("Apps after Close = %v", err)
	}
	if !strings.HasSuffix(s.Path(), "state.db") {
		t.Fatalf("Path = %q", s.Path())
	}
}

// Store methods are called from many goroutines (agent, API, reconciler).
func TestConcurrentUse(t *testing.T) {
	s := openTemp(t)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 20 {
				id := fmt.Sprintf("app-%d-%d", g, i)
				if err := s.PutApp(testApp(id)); err != nil {
					t.Error(err)
					return
				}
				job := "job/" + id
				if _, _, err := s.BeginJob(job, "start", id); err != nil {
					t.Error(err)
					return
				}
				if err := s.JobStep(job, "create", ""); err != nil {
					t.Error(err)
					return
				}
				if _, err := s.Apps(); err != nil {
					t.Error(err)
					return
				}
				if _, err := s.UnfinishedJobs(); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	list, err := s.Apps()
	if err != nil || len(list) != 160 {
		t.Fatalf("Apps = %d, %v", len(list), err)
	}
	jobs, _ := s.Jobs()
	seen := map[uint64]bool{}
	for _, j := range jobs {
		if seen[j.Seq] {
			t.Fatalf("sequence %d handed out twice", j.Seq)
		}
		seen[j.Seq] = true
	}
}
