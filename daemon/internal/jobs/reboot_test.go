package jobs

import (
	"context"
	"testing"
	"time"
)

func TestRebootRefusedByDefault(t *testing.T) {
	called := make(chan struct{}, 1)
	h := newHostRig(t, HostOptions{Reboot: func(context.Context) error { called <- struct{}{}; return nil }}, nil)
	job := h.action("reboot", nil)
	expectJob(t, h.run(job), "FAILED", "reboot is disabled on this box: set host.allow-reboot = true in /etc/berth/config.toml")
	select {
	case <-called:
		t.Fatal("the host was rebooted although reboots are disabled")
	case <-time.After(200 * time.Millisecond):
	}
}

func TestRebootAfterSuccessIsReported(t *testing.T) {
	// The reboot function reads the job as the control plane has it; h and
	// job are set before the job is submitted.
	var (
		h   *hostRig
		job string
	)
	stateAtReboot := make(chan any, 1)
	h = newHostRig(t, HostOptions{AllowReboot: true, RebootDelay: 50 * time.Millisecond, Reboot: func(context.Context) error {
		doc, _ := h.srv.Resource(job)
		stateAtReboot <- doc["state"]
		return nil
	}}, nil)
	job = h.action("reboot", nil)
	msg := expectJob(t, h.run(job), "SUCCESS", "rebooting the host in 50ms")
	select {
	case st := <-stateAtReboot:
		if st != "SUCCESS" {
			t.Fatalf("rebooted while the job was %v; it must be reported SUCCESS first", st)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("the host was never rebooted (job said %q)", msg)
	}
	doc, _ := h.srv.Resource(job)
	if doc["progress"] != 100.0 || doc["return-code"] != 0.0 {
		t.Fatalf("job = %v", doc)
	}
	// A journaled, reported reboot is never run again (no reboot loop).
	h.runner.Submit(job)
	select {
	case <-stateAtReboot:
		t.Fatal("a finished reboot job rebooted again")
	case <-time.After(300 * time.Millisecond):
	}
}

// TestOtherBoxActionsStayUnsupported: the box actions berthd does not run
// fail with a clear message, like any unknown action.
func TestOtherBoxActionsStayUnsupported(t *testing.T) {
	h := newHostRig(t, HostOptions{}, nil)
	job := h.action("cluster-nuvlabox", map[string]any{"cluster-action": "join-worker", "token": "x"})
	expectJob(t, h.run(job), "FAILED", "not supported by berthd: nuvlabox_cluster_join_worker")
}
