package store

import (
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"
)

func ids(jobs []JobRecord) []string {
	out := make([]string, len(jobs))
	for i, j := range jobs {
		out[i] = j.ID
	}
	return out
}

func TestJobJournal(t *testing.T) {
	s := openTemp(t)
	clock := time.Date(2026, 5, 6, 7, 0, 0, 0, time.UTC)
	s.now = func() time.Time { clock = clock.Add(time.Second); return clock }

	j, known, err := s.BeginJob("job/1", "start_deployment", "deployment/a")
	if err != nil || known {
		t.Fatalf("BeginJob = %v, %v", known, err)
	}
	if j.State != JobAccepted || j.Received.IsZero() || j.Seq == 0 {
		t.Fatalf("new job = %+v", j)
	}
	// The control plane repeats running jobs: a second BeginJob is a no-op.
	again, known, err := s.BeginJob("job/1", "start_deployment", "deployment/a")
	if err != nil || !known || again.Seq != j.Seq || !again.Received.Equal(j.Received) {
		t.Fatalf("repeated BeginJob = %+v, %v, %v", again, known, err)
	}
	if _, _, err := s.BeginJob("job/2", "stop_deployment", "deployment/b"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.BeginJob("job/3", "reboot", ""); err != nil {
		t.Fatal(err)
	}

	steps := []string{"pull", "create", "start"}
	for _, name := range steps {
		if err := s.JobStep("job/1", name, "detail of "+name); err != nil {
			t.Fatalf("JobStep(%s): %v", name, err)
		}
	}
	if err := s.JobStep("job/2", "stop", "main"); err != nil {
		t.Fatal(err)
	}

	// A daemon restart: the journal is what survives.
	s = reopen(t, s)
	s.now = func() time.Time { clock = clock.Add(time.Second); return clock }

	got, ok, err := s.Job("job/1")
	if err != nil || !ok {
		t.Fatalf("Job = %v, %v", ok, err)
	}
	if got.State != JobRunning || len(got.Steps) != len(steps) {
		t.Fatalf("job/1 = %+v", got)
	}
	for i, st := range got.Steps {
		if st.Name != steps[i] || st.Detail != "detail of "+steps[i] {
			t.Errorf("step %d = %+v, want %s", i, st, steps[i])
		}
		if i > 0 && !st.At.After(got.Steps[i-1].At) {
			t.Errorf("step %d at %v is not after step %d at %v", i, st.At, i-1, got.Steps[i-1].At)
		}
	}

	unfinished, err := s.UnfinishedJobs()
	if err != nil || !slices.Equal(ids(unfinished), []string{"job/1", "job/2", "job/3"}) {
		t.Fatalf("UnfinishedJobs = %v, %v", ids(unfinished), err)
	}
	if unfinished[0].State != JobRunning || unfinished[2].State != JobAccepted {
		t.Fatalf("UnfinishedJobs states = %s, %s", unfinished[0].State, unfinished[2].State)
	}

	if err := s.FinishJob("job/1", JobSucceeded, "started", 0); err != nil {
		t.Fatal(err)
	}
	if err := s.FinishJob("job/2", JobFailed, "no such container", 1); err != nil {
		t.Fatal(err)
	}
	// Finishing again with the same state is idempotent; a different one is not.
	if err := s.FinishJob("job/1", JobSucceeded, "started", 0); err != nil {
		t.Fatalf("repeated FinishJob: %v", err)
	}
	if err := s.FinishJob("job/1", JobFailed, "x", 1); err == nil {
		t.Fatal("FinishJob changed a final state")
	}
	if err := s.FinishJob("job/3", JobRunning, "", 0); err == nil {
		t.Fatal("FinishJob accepted a non-final state")
	}
	if err := s.JobStep("job/1", "late", ""); err == nil {
		t.Fatal("JobStep on a finished job succeeded")
	}
	if err := s.JobStep("job/404", "x", ""); !errors.Is(err, ErrNotFound) {
		t.Fatalf("JobStep on an unknown job = %v, want ErrNotFound", err)
	}
	if err := s.MarkJobReported("job/3"); err == nil {
		t.Fatal("MarkJobReported on an unfinished job succeeded")
	}

	unfinished, _ = s.UnfinishedJobs()
	if !slices.Equal(ids(unfinished), []string{"job/3"}) {
		t.Fatalf("UnfinishedJobs = %v", ids(unfinished))
	}
	unreported, err := s.UnreportedJobs()
	if err != nil || !slices.Equal(ids(unreported), []string{"job/1", "job/2"}) {
		t.Fatalf("UnreportedJobs = %v, %v", ids(unreported), err)
	}
	if err := s.MarkJobReported("job/2"); err != nil {
		t.Fatal(err)
	}
	unreported, _ = s.UnreportedJobs()
	if !slices.Equal(ids(unreported), []string{"job/1"}) {
		t.Fatalf("UnreportedJobs = %v", ids(unreported))
	}
	j2, _, _ := s.Job("job/2")
	if j2.State != JobFailed || j2.Message != "no such container" || j2.ReturnCode != 1 || !j2.Reported {
		t.Fatalf("job/2 = %+v", j2)
	}

	all, err := s.Jobs()
	if err != nil || !slices.Equal(ids(all), []string{"job/3", "job/2", "job/1"}) {
		t.Fatalf("Jobs = %v, %v", ids(all), err)
	}
}

func TestPruneJobs(t *testing.T) {
	s := openTemp(t)
	// job/0 .. job/9: even ones finished and reported, 7 finished but not
	// reported, 9 running, 1 3 5 only accepted.
	for i := range 10 {
		id := fmt.Sprintf("job/%d", i)
		if _, _, err := s.BeginJob(id, "a", ""); err != nil {
			t.Fatal(err)
		}
		switch {
		case i == 9:
			if err := s.JobStep(id, "step", ""); err != nil {
				t.Fatal(err)
			}
		case i == 7:
			if err := s.FinishJob(id, JobSucceeded, "", 0); err != nil {
				t.Fatal(err)
			}
		case i%2 == 0:
			if err := s.FinishJob(id, JobSucceeded, "", 0); err != nil {
				t.Fatal(err)
			}
			if err := s.MarkJobReported(id); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := s.PruneJobs(-1); err == nil {
		t.Fatal("PruneJobs(-1) succeeded")
	}
	if err := s.PruneJobs(2); err != nil {
		t.Fatal(err)
	}
	all, err := s.Jobs()
	if err != nil {
		t.Fatal(err)
	}
	// Reported: 0 2 4 6 8 -> keep 8 and 6; everything unfinished or
	// unreported (1 3 5 7 9) stays.
	want := []string{"job/9", "job/8", "job/7", "job/6", "job/5", "job/3", "job/1"}
	if !slices.Equal(ids(all), want) {
		t.Fatalf("after PruneJobs(2): %v, want %v", ids(all), want)
	}
	if err := s.PruneJobs(0); err != nil {
		t.Fatal(err)
	}
	all, _ = s.Jobs()
	if want := []string{"job/9", "job/7", "job/5", "job/3", "job/1"}; !slices.Equal(ids(all), want) {
		t.Fatalf("after PruneJobs(0): %v, want %v", ids(all), want)
	}
	// A pruned id is new again, and sorts as the newest.
	if _, known, err := s.BeginJob("job/0", "a", ""); err != nil || known {
		t.Fatalf("BeginJob of a pruned id = %v, %v", known, err)
	}
	all, _ = s.Jobs()
	if all[0].ID != "job/0" {
		t.Fatalf("Jobs()[0] = %s", all[0].ID)
	}
}
