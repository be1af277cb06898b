package telemetry

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"

	"github.com/berth-edge/berth/daemon/internal/engine"
	"github.com/berth-edge/berth/daemon/internal/engine/enginetest"
)

// benchBox is a real engine with n labelled, running test containers.
func benchBox(b *testing.B, n int) *Sampler {
	b.Helper()
	cli := enginetest.Docker(b)
	img := enginetest.BuildTestImage(b, enginetest.TestImage)
	eng, err := engine.New(context.Background(), engine.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = eng.Close() })
	app := fmt.Sprintf("bench-%d-%d", n, time.Now().UnixNano())
	enginetest.CleanupApp(b, cli, app)
	ctx := context.Background()
	for i := range n {
		labels := map[string]string{"berth.managed": "true", "berth.app": app, "com.docker.compose.project": app,
			"com.docker.compose.service": fmt.Sprintf("s%d", i)}
		c, err := cli.ContainerCreate(ctx, &container.Config{Image: img, Labels: labels}, nil, nil, nil, fmt.Sprintf("%s-%d", app, i))
		if err != nil {
			b.Fatal(err)
		}
		if err := cli.ContainerStart(ctx, c.ID, container.StartOptions{}); err != nil {
			b.Fatal(err)
		}
	}
	stats := engine.NewStatsReader(eng)
	b.Cleanup(stats.Close)
	s := &Sampler{
		DockerVersion: func(ctx context.Context) string {
			v, _ := eng.Ping(ctx)
			return v.Version
		},
		Containers: stats.Read,
		Coe:        stats.RawLists,
		Install:    Install{WorkingDir: "/var/lib/berth", ConfigFiles: []string{"/etc/berth/berthd.toml"}},
	}
	s.SetFeatures(Features{NewContainerStats: true, CoeResources: true, IPType: true})
	return s
}

// cpuTime is this process's user+system CPU time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkTick measures one telemetry tick (sample everything and diff
// against the previous document) with 0 and 50 containers. cpu-ms/tick is
// berthd's own CPU time (Docker's is not counted); the target is < 5 ms
// with 50 containers.
func BenchmarkTick(b *testing.B) {
	for _, n := range []int{0, 50} {
		b.Run(fmt.Sprintf("containers=%d", n), func(b *testing.B) {
			s := benchBox(b, n)
			ctx := context.Background()
			now := time.Now()
			prev, err := s.Sample(ctx, now)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.ResetTimer()
			start := cpuTime()
			for i := range b.N {
				r, err := s.Sample(ctx, now.Add(time.Duration(i+1)*time.Minute))
				if err != nil {
					b.Fatal(err)
				}
				if _, _, err := Diff(prev.Doc, r.Doc); err != nil {
					b.Fatal(err)
				}
				prev = r
			}
			b.ReportMetric(float64(cpuTime()-start)/float64(b.N)/1e6, "cpu-ms/tick")
		})
	}
}

// wireSize is what the nuvla client puts on the wire: gzip above 1 KiB
// when it shrinks the body.
func wireSize(p []byte) int {
	if len(p) <= 1024 {
		return len(p)
	}
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	_, _ = zw.Write(p)
	_ = zw.Close()
	return min(buf.Len(), len(p))
}

// BenchmarkBytesPerMinute measures the status update sent per telemetry
// interval (one a minute by default): JSON patches between consecutive
// samples taken a second apart in real time and a minute apart on the
// document's clock. The target idle is < 1 KiB a minute.
func BenchmarkBytesPerMinute(b *testing.B) {
	for _, n := range []int{0, 50} {
		b.Run(fmt.Sprintf("containers=%d", n), func(b *testing.B) {
			s := benchBox(b, n)
			ctx := context.Background()
			now := time.Now()
			prev, err := s.Sample(ctx, now)
			if err != nil {
				b.Fatal(err)
			}
			full, wire, ticks := 0, 0, 0
			for i := range b.N {
				for j := range 3 {
					time.Sleep(time.Second)
					r, err := s.Sample(ctx, now.Add(time.Duration(i*3+j+1)*time.Minute))
					if err != nil {
						b.Fatal(err)
					}
					p, _, err := Diff(prev.Doc, r.Doc)
					if err != nil {
						b.Fatal(err)
					}
					full += len(p)
					wire += wireSize(p)
					ticks++
					prev = r
				}
			}
			b.ReportMetric(float64(full)/float64(ticks), "patch-B/min")
			b.ReportMetric(float64(wire)/float64(ticks), "wire-B/min")
		})
	}
}

func vmRSSKiB() int {
	b, _ := os.ReadFile("/proc/self/status")
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			n, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
			return n
		}
	}
	return 0
}

// BenchmarkDay runs 24 hours of one-minute ticks (1440 samples and diffs,
// 50 synthetic containers, bounded history) on a fake clock and checks that
// the live heap does not grow between the first hour and the end of the day.
func BenchmarkDay(b *testing.B) {
	for range b.N {
		tick := 0
		s := &Sampler{Containers: func(context.Context) ([]engine.ContainerStat, error) { return fakeContainers(50, tick), nil }}
		s.SetFeatures(Features{NewContainerStats: true, IPType: true})
		h := NewHistory(60)
		ctx := context.Background()
		start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
		var prev map[string]any
		heap := func() uint64 {
			runtime.GC()
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			return ms.HeapAlloc
		}
		var hourHeap uint64
		for tick = 0; tick < 24*60; tick++ {
			r, err := s.Sample(ctx, start.Add(time.Duration(tick)*time.Minute))
			if err != nil {
				b.Fatal(err)
			}
			if prev != nil {
				if _, _, err := Diff(prev, r.Doc); err != nil {
					b.Fatal(err)
				}
			}
			prev = r.Doc
			h.Add(r.Sample)
			if tick == 60 {
				hourHeap = heap()
			}
		}
		dayHeap := heap()
		growth := int64(dayHeap) - int64(hourHeap)
		b.ReportMetric(float64(growth)/1024, "heap-growth-KiB")
		b.ReportMetric(float64(dayHeap)/1024, "heap-KiB")
		b.ReportMetric(float64(vmRSSKiB())/1024, "rss-MiB")
		if growth > 256<<10 {
			b.Fatalf("live heap grew by %d KiB over the day", growth/1024)
		}
		runtime.KeepAlive(prev)
		runtime.KeepAlive(h)
	}
}

// BenchmarkDiff measures the differ alone on two consecutive documents with
// 50 synthetic containers and their raw Docker objects, where the sampler
// shares unchanged objects between documents.
func BenchmarkDiff(b *testing.B) {
	tick := 0
	items := make([]any, 50)
	for i := range items {
		items[i] = map[string]any{"Id": fmt.Sprintf("%064d", i), "Image": "testapp:1", "Status": "Up 5 minutes",
			"Labels": map[string]any{"berth.app": fmt.Sprintf("app%d", i)}, "NetworkSettings": map[string]any{"Networks": map[string]any{"bridge": map[string]any{"NetworkID": "n1", "IPAddress": "172.17.0.2"}}}}
	}
	s := &Sampler{
		Containers: func(context.Context) ([]engine.ContainerStat, error) { return fakeContainers(50, tick), nil },
		Coe: func(context.Context) (engine.CoeResources, error) {
			c := slices.Clone(items)
			c[tick%50] = map[string]any{"Id": fmt.Sprintf("%064d", tick%50), "Status": fmt.Sprintf("Up %d minutes", tick)}
			return engine.CoeResources{Containers: c, Images: items[:10]}, nil
		},
	}
	s.SetFeatures(Features{NewContainerStats: true, CoeResources: true, IPType: true})
	now := time.Now()
	a, _ := s.Sample(context.Background(), now)
	tick++
	c, _ := s.Sample(context.Background(), now.Add(time.Minute))
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if _, _, err := Diff(a.Doc, c.Doc); err != nil {
			b.Fatal(err)
		}
	}
}
