// Package telemetry samples the host and builds the nuvlabox-status
// document Nuvla expects: CPU (cores and load), RAM in MiB, disks in bytes,
// network counters, and the host facts (OS, architecture, hostname, boot
// time, addresses). Facts that are costly to read and never change, like
// the OS release, are read once.
package telemetry

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"runtime"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/shirou/gopsutil/v3/cpu"
	"github.com/shirou/gopsutil/v3/disk"
	"github.com/shirou/gopsutil/v3/host"
	"github.com/shirou/gopsutil/v3/load"
	"github.com/shirou/gopsutil/v3/mem"
	psnet "github.com/shirou/gopsutil/v3/net"
)

// EngineVersion is the NuvlaEdge version whose protocol berthd speaks. Nuvla
// gates features on it (coe-resource-actions needs 2.17.0 or later), so it
// is plain semver with no suffix.
const EngineVersion = "2.19.0"

// Sampler reads host metrics.
type Sampler struct {
	// DockerVersion returns the engine's version ("" if unknown).
	DockerVersion func(ctx context.Context) string

	once  sync.Once
	facts facts
}

type facts struct {
	os, arch, hostname string
	boot               time.Time
	cores              int
}

func (s *Sampler) hostFacts(ctx context.Context) facts {
	s.once.Do(func() {
		f := facts{arch: goArchToNuvla(runtime.GOARCH), cores: runtime.NumCPU()}
		f.hostname, _ = os.Hostname()
		if info, err := host.InfoWithContext(ctx); err == nil {
			f.os = strings.TrimSpace(fmt.Sprintf("%s %s %s", prettyOS(info.Platform, info.PlatformVersion), info.KernelVersion, ""))
			if info.KernelArch != "" {
				f.arch = info.KernelArch
			}
			f.boot = time.Unix(int64(info.BootTime), 0).UTC()
		}
		if n, err := cpu.CountsWithContext(ctx, true); err == nil && n > 0 {
			f.cores = n
		}
		s.facts = f
	})
	return s.facts
}

// prettyOS prefers /etc/os-release's PRETTY_NAME ("Debian GNU/Linux 12 (bookworm)").
func prettyOS(platform, version string) string {
	if b, err := os.ReadFile("/etc/os-release"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(l, "PRETTY_NAME="); ok {
				return strings.Trim(v, `"`)
			}
		}
	}
	return strings.TrimSpace(platform + " " + version)
}

func goArchToNuvla(a string) string {
	switch a {
	case "amd64":
		return "x86_64"
	case "arm64":
		return "aarch64"
	}
	return a
}

// Status samples the host and returns a complete nuvlabox-status document
// body: only keys of Nuvla's closed schema, no nulls.
func (s *Sampler) Status(ctx context.Context, now time.Time) (map[string]any, error) {
	f := s.hostFacts(ctx)
	doc := map[string]any{
		"status":                  "OPERATIONAL",
		"current-time":            now.UTC().Format("2006-01-02T15:04:05Z"),
		"nuvlabox-engine-version": EngineVersion,
		"architecture":            f.arch,
		"hostname":                f.hostname,
	}
	if f.os != "" {
		doc["operating-system"] = f.os
	}
	if !f.boot.IsZero() {
		doc["last-boot"] = f.boot.Format("2006-01-02T15:04:05Z")
	}
	if s.DockerVersion != nil {
		if v := s.DockerVersion(ctx); v != "" {
			doc["docker-server-version"] = v
		}
	}
	res, err := resources(ctx, f.cores)
	if err != nil {
		return nil, err
	}
	doc["resources"] = res
	gw, ip := defaultRoute()
	netDoc := map[string]any{"ips": map[string]any{"local": ip, "public": "", "swarm": "", "vpn": ""}}
	if gw != "" {
		netDoc["default-gw"] = gw
	}
	if ifs := interfaces(); len(ifs) > 0 {
		netDoc["interfaces"] = ifs
	}
	doc["network"] = netDoc
	if ip != "" {
		doc["ip"] = ip
	}
	return doc, nil
}

func resources(ctx context.Context, cores int) (map[string]any, error) {
	vm, err := mem.VirtualMemoryWithContext(ctx)
	if err != nil {
		return nil, fmt.Errorf("read memory: %w", err)
	}
	const mib = 1 << 20
	cpuDoc := map[string]any{"capacity": cores, "load": 0.0}
	if l, err := load.AvgWithContext(ctx); err == nil {
		cpuDoc["load"], cpuDoc["load-1"], cpuDoc["load-5"] = l.Load15, l.Load1, l.Load5
	}
	res := map[string]any{
		"cpu":   cpuDoc,
		"ram":   map[string]any{"capacity": int64(vm.Total / mib), "used": int64((vm.Total - vm.Available) / mib)},
		"disks": disks(ctx),
	}
	if ns := netStats(ctx); len(ns) > 0 {
		res["net-stats"] = ns
	}
	return res, nil
}

// disks reports the filesystems of real block devices, in bytes.
func disks(ctx context.Context) []map[string]any {
	out := []map[string]any{}
	parts, err := disk.PartitionsWithContext(ctx, false)
	if err != nil {
		return out
	}
	seen := map[string]bool{}
	for _, p := range parts {
		if !strings.HasPrefix(p.Device, "/dev/") || seen[p.Device] {
			continue
		}
		u, err := disk.UsageWithContext(ctx, p.Mountpoint)
		if err != nil || u.Total == 0 {
			continue
		}
		seen[p.Device] = true
		out = append(out, map[string]any{"device": strings.TrimPrefix(p.Device, "/dev/"), "capacity": int64(u.Total), "used": int64(u.Used)})
	}
	if len(out) == 0 {
		if u, err := disk.UsageWithContext(ctx, "/"); err == nil && u.Total > 0 {
			out = append(out, map[string]any{"device": "root", "capacity": int64(u.Total), "used": int64(u.Used)})
		}
	}
	return out
}

// virtualIface reports interfaces that belong to containers, not the host.
func virtualIface(name string) bool {
	for _, p := range []string{"veth", "docker", "br-", "lo"} {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	return false
}

func netStats(ctx context.Context) []map[string]any {
	var out []map[string]any
	cs, err := psnet.IOCountersWithContext(ctx, true)
	if err != nil {
		return nil
	}
	for _, c := range cs {
		if virtualIface(c.Name) {
			continue
		}
		out = append(out, map[string]any{"interface": c.Name, "bytes-received": int64(c.BytesRecv), "bytes-transmitted": int64(c.BytesSent)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i]["interface"].(string) < out[j]["interface"].(string) })
	return out
}

func interfaces() []map[string]any {
	ifs, err := net.Interfaces()
	if err != nil {
		return nil
	}
	var out []map[string]any
	for _, i := range ifs {
		if virtualIface(i.Name) {
			continue
		}
		addrs, _ := i.Addrs()
		var ips []map[string]any
		for _, a := range addrs {
			if n, ok := a.(*net.IPNet); ok {
				ips = append(ips, map[string]any{"address": n.IP.String()})
			}
		}
		if len(ips) > 0 {
			out = append(out, map[string]any{"interface": i.Name, "ips": ips})
		}
	}
	return out
}

// defaultRoute returns the interface of the IPv4 default route and its
// first IPv4 address, from /proc/net/route.
func defaultRoute() (iface, ip string) {
	f, err := os.Open("/proc/net/route")
	if err != nil {
		return "", ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		if len(fs) > 2 && fs[1] == "00000000" && fs[0] != "Iface" {
			iface = fs[0]
			break
		}
	}
	if iface == "" {
		return "", ""
	}
	i, err := net.InterfaceByName(iface)
	if err != nil {
		return iface, ""
	}
	addrs, _ := i.Addrs()
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && n.IP.To4() != nil {
			return iface, n.IP.String()
		}
	}
	return iface, ""
}
