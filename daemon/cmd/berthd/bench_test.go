package main

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/go-connections/nat"

	"github.com/berth-edge/berth/daemon/berthdtest"
	"github.com/berth-edge/berth/daemon/internal/engine/enginetest"
	"github.com/berth-edge/berth/daemon/internal/nuvla/nuvlatest"
)

// The benchmarks run the real berthd against nuvlatest and the real Docker
// engine. `make bench` runs them; docs/benchmarks.md records the figures.

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// jobTimes returns when berthd first read the job and when it reported it
// final, as the control plane saw the requests.
func jobTimes(cp *nuvlatest.Server, jobID string) (pickup, done time.Time) {
	for _, r := range cp.Requests() {
		if r.Path != "/api/"+jobID {
			continue
		}
		if r.Method == "GET" && pickup.IsZero() {
			pickup = r.Received
		}
		if r.Method == "PUT" && strings.Contains(r.Body, `"SUCCESS"`) {
			done = r.Done
		}
	}
	return pickup, done
}

// BenchmarkStartComponent measures, per start_deployment of a component
// whose image is present, the time from job pickup to job SUCCESS, next to
// raw Docker API create+start of the same container (the floor).
func BenchmarkStartComponent(b *testing.B) {
	e := newE2E(b)
	e.start()
	e.waitOnline()
	var berthd, raw, diff []time.Duration
	for i := 0; b.Loop(); i++ {
		dep := e.cp.CreateDeployment(e.box, e.component(nil))
		enginetest.CleanupApp(b, e.docker, strings.TrimPrefix(dep, "deployment/"))
		jobID, err := e.cp.StartDeployment(dep)
		if err != nil {
			b.Fatal(err)
		}
		if job := e.waitJob(jobID); job["state"] != "SUCCESS" {
			b.Fatalf("job %v: %v", job["state"], job["status-message"])
		}
		pickup, done := jobTimes(e.cp, jobID)
		berthd = append(berthd, done.Sub(pickup))
		stop, _ := e.cp.StopDeployment(dep, nil)
		e.waitJob(stop)

		raw = append(raw, rawCreateStart(b, e, i))
		diff = append(diff, berthd[i]-raw[i])
	}
	b.ReportMetric(ms(median(berthd)), "ms-berthd-job")
	b.ReportMetric(ms(median(raw)), "ms-docker-create+start")
	// The median of the paired differences: each start is compared with
	// the raw create+start that ran right after it.
	b.ReportMetric(ms(median(diff)), "ms-overhead")
	b.ReportMetric(0, "ns/op")
}

// rawCreateStart creates and starts the same container with the Docker API
// alone, then removes it (not timed).
func rawCreateStart(b *testing.B, e *e2e, i int) time.Duration {
	ctx := context.Background()
	name := fmt.Sprintf("berth-bench-raw-%d-%d", os.Getpid(), i)
	port := nat.Port("8080/tcp")
	start := time.Now()
	cr, err := e.docker.ContainerCreate(ctx,
		&container.Config{Image: e.image, Env: []string{"GREETING=hello"}, ExposedPorts: nat.PortSet{port: {}},
			Labels: map[string]string{"berth.bench": "raw"}},
		&container.HostConfig{PortBindings: nat.PortMap{port: {{HostPort: ""}}}, RestartPolicy: container.RestartPolicy{Name: "unless-stopped"}},
		nil, nil, name)
	if err != nil {
		b.Fatal(err)
	}
	if err := e.docker.ContainerStart(ctx, cr.ID, container.StartOptions{}); err != nil {
		b.Fatal(err)
	}
	d := time.Since(start)
	if err := e.docker.ContainerRemove(ctx, cr.ID, container.RemoveOptions{Force: true}); err != nil {
		b.Fatal(err)
	}
	return d
}

// BenchmarkIdleRSS20 measures berthd's resident memory while idle with 20
// deployments running.
func BenchmarkIdleRSS20(b *testing.B) {
	e := newE2E(b)
	d := e.start()
	e.waitOnline()
	for i := 0; i < 20; i++ {
		dep := e.cp.CreateDeployment(e.box, e.component(nil))
		enginetest.CleanupApp(b, e.docker, strings.TrimPrefix(dep, "deployment/"))
		jobID, err := e.cp.StartDeployment(dep)
		if err != nil {
			b.Fatal(err)
		}
		if job := e.waitJob(jobID); job["state"] != "SUCCESS" {
			b.Fatalf("job %v: %v", job["state"], job["status-message"])
		}
	}
	// Back to Nuvla's default cadence, then let it settle.
	e.cp.SetNuvlaboxField(e.box, "heartbeat-interval", 20)
	e.cp.SetNuvlaboxField(e.box, "refresh-interval", 60)
	time.Sleep(5 * time.Second)
	var rss []float64
	for b.Loop() {
		time.Sleep(100 * time.Millisecond)
		rss = append(rss, rssMiB(b, d.Cmd.Process.Pid))
	}
	slices.Sort(rss)
	b.ReportMetric(rss[len(rss)/2], "MiB-rss")
	b.ReportMetric(0, "ns/op")
}

func rssMiB(b *testing.B, pid int) float64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		b.Fatal(err)
	}
	for _, l := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			kb, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
			return float64(kb) / 1024
		}
	}
	b.Fatal("no VmRSS")
	return 0
}

// BenchmarkReady measures the time from exec to READY=1 (standalone, fresh
// state file).
func BenchmarkReady(b *testing.B) {
	berthdtest.Binary(b)
	var ds []time.Duration
	for b.Loop() {
		n := listenNotify(b)
		dir := b.TempDir()
		start := time.Now()
		d := startDaemon(b, dir, []string{"NOTIFY_SOCKET=" + n.path})
		eventually(b, 10*time.Second, "READY=1", func() (bool, string) { return n.count("READY=1") > 0, "" })
		at, _ := n.first("READY=1")
		ds = append(ds, at.Sub(start))
		d.Stop()
	}
	b.ReportMetric(ms(median(ds)), "ms-to-ready")
	b.ReportMetric(0, "ns/op")
}
