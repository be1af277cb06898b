// Package telemetry samples the host and its berth-managed containers and
// builds the nuvlabox-status document Nuvla expects (protocol §4.4): CPU
// (cores, load, kernel counters), RAM in MiB, disks in bytes, network
// counters, temperatures, host facts (OS, architecture, hostname, boot
// time, addresses), container statistics and the raw Docker lists of
// coe-resources. Facts that are costly to read and never change, like the
// OS release and the number of cores, are read once.
//
// Documents are built from JSON-native values (float64, string, bool,
// []any, map[string]any) so that they compare directly with a document
// decoded from the server, and never hold a null.
package telemetry

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/shirou/gopsutil/v3/cpu"
	"github.com/shirou/gopsutil/v3/disk"
	"github.com/shirou/gopsutil/v3/host"
	"github.com/shirou/gopsutil/v3/load"
	"github.com/shirou/gopsutil/v3/mem"
	psnet "github.com/shirou/gopsutil/v3/net"

	"github.com/berth-edge/berth/daemon/client"
	"github.com/berth-edge/berth/daemon/internal/engine"
)

// EngineVersion is the NuvlaEdge version whose protocol berthd speaks. Nuvla
// gates features on it (coe-resource-actions needs 2.17.0 or later), so it
// is plain semver with no suffix.
const EngineVersion = "2.19.0"

// AgentKeys are the top-level nuvlabox-status keys berthd writes. A
// document read back from the server is reduced to these before it serves
// as the diff baseline; keys the server maintains are never touched.
var AgentKeys = []string{
	"status", "current-time", "nuvlabox-engine-version", "operating-system", "architecture",
	"hostname", "ip", "last-boot", "docker-server-version", "resources", "network",
	"installation-parameters", "temperatures", "coe-resources",
}

// Features are what the server supports, from its resource-metadata.
type Features struct {
	// NewContainerStats: resources.container-stats items have cpu-usage.
	NewContainerStats bool `json:"new-container-stats"`
	// CoeResources: the status has coe-resources.
	CoeResources bool `json:"coe-resources"`
	// IPType: network interface ips have a type (v4/v6).
	IPType bool `json:"ip-type"`
}

// Install describes how berth is installed (installation-parameters).
type Install struct {
	WorkingDir  string
	ConfigFiles []string
}

// Sampler reads host and container metrics. It is safe for concurrent use;
// samples are serialised.
type Sampler struct {
	// DockerVersion returns the engine's version ("" if unknown); it is
	// asked at most every dockerVersionTTL.
	DockerVersion func(ctx context.Context) string
	// Containers returns the berth-managed containers' counters; nil means
	// none.
	Containers func(ctx context.Context) ([]engine.ContainerStat, error)
	// Coe returns the raw Docker lists for coe-resources; nil means none.
	Coe     func(ctx context.Context) (engine.CoeResources, error)
	Install Install

	once  sync.Once
	facts facts

	mu        sync.Mutex
	features  Features
	prevCPU   map[string]cpuMark
	prevHost  hostTicks
	dockerVer string
	dockerAt  time.Time
	parts     []string // mount points of real block devices
	partsDev  []string
	partsAt   time.Time
	sensors   []sensor
	netInfo   netInfo
}

// netInfo caches the addresses: reading them costs a netlink dump per
// interface, and they rarely change.
type netInfo struct {
	at       time.Time
	withType bool
	gw, ip   string
	ifs      []any
}

const (
	dockerVersionTTL = 5 * time.Minute
	partitionsTTL    = 5 * time.Minute
	networkTTL       = 5 * time.Minute
)

type cpuMark struct {
	nanos uint64
	at    time.Time
}

type hostTicks struct{ total, idle uint64 }

type sensor struct{ zone, path string }

type facts struct {
	os, arch, hostname string
	boot               time.Time
	cores              int
	memTotal           uint64
}

func (s *Sampler) hostFacts(ctx context.Context) facts {
	s.once.Do(func() {
		f := facts{arch: goArchToNuvla(runtime.GOARCH), cores: runtime.NumCPU()}
		f.hostname, _ = os.Hostname()
		// host.Info forks lsb_release on Debian (114 ms): read the pieces
		// it would give cheaply instead.
		f.os = prettyOS()
		if k, err := host.KernelVersionWithContext(ctx); err == nil && k != "" {
			f.os = strings.TrimSpace(f.os + " " + k)
		}
		if a, err := host.KernelArch(); err == nil && a != "" {
			f.arch = a
		}
		if bt, err := host.BootTimeWithContext(ctx); err == nil && bt > 0 {
			f.boot = time.Unix(int64(bt), 0).UTC()
		}
		if n, err := cpu.CountsWithContext(ctx, true); err == nil && n > 0 {
			f.cores = n
		}
		s.facts = f
		s.sensors = findSensors()
	})
	return s.facts
}

// prettyOS is /etc/os-release's PRETTY_NAME ("Debian GNU/Linux 12 (bookworm)").
func prettyOS() string {
	if b, err := os.ReadFile("/etc/os-release"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(l, "PRETTY_NAME="); ok {
				return strings.Trim(v, `"`)
			}
		}
	}
	return runtime.GOOS
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

// SetFeatures records what the server supports; later documents use it.
func (s *Sampler) SetFeatures(f Features) {
	s.mu.Lock()
	s.features = f
	s.mu.Unlock()
}

// Features returns what SetFeatures recorded.
func (s *Sampler) Features() Features {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.features
}

// Result is one sample: the nuvlabox-status document and the same figures
// for the local API.
type Result struct {
	Doc    map[string]any
	Sample client.Sample
}

// Status samples and returns the nuvlabox-status document body: only keys
// of Nuvla's closed schema, no nulls.
func (s *Sampler) Status(ctx context.Context, now time.Time) (map[string]any, error) {
	r, err := s.Sample(ctx, now)
	return r.Doc, err
}

// Sample reads the host and the containers once.
func (s *Sampler) Sample(ctx context.Context, now time.Time) (Result, error) {
	f := s.hostFacts(ctx)
	s.mu.Lock()
	defer s.mu.Unlock()
	feat := s.features
	now = now.UTC()
	smp := client.Sample{Time: now, Containers: []client.ContainerUsage{}}
	doc := map[string]any{
		"status":                  "OPERATIONAL",
		"current-time":            now.Format("2006-01-02T15:04:05Z"),
		"nuvlabox-engine-version": EngineVersion,
		"architecture":            f.arch,
		"hostname":                f.hostname,
		"installation-parameters": map[string]any{
			"project-name": "berth",
			"working-dir":  s.Install.WorkingDir,
			"config-files": strs(s.Install.ConfigFiles),
			"environment":  []any{},
		},
	}
	if f.os != "" {
		doc["operating-system"] = f.os
	}
	if !f.boot.IsZero() {
		doc["last-boot"] = f.boot.Format("2006-01-02T15:04:05Z")
	}
	if v := s.dockerVersion(ctx, now); v != "" {
		doc["docker-server-version"] = v
	}
	res, err := s.resources(ctx, f, &smp)
	if err != nil {
		return Result{}, err
	}
	if s.Containers != nil {
		cs, err := s.Containers(ctx)
		if err != nil {
			return Result{}, fmt.Errorf("container stats: %w", err)
		}
		if stats := s.containerStats(cs, now, f, feat, &smp); len(stats) > 0 {
			res["container-stats"] = stats
		}
	}
	doc["resources"] = res
	ni := &s.netInfo
	if ni.at.IsZero() || ni.withType != feat.IPType || now.Sub(ni.at) > networkTTL || now.Before(ni.at) {
		ni.gw, ni.ip, ni.ifs = addresses(feat.IPType)
		ni.withType, ni.at = feat.IPType, now
	}
	gw, ip := ni.gw, ni.ip
	netDoc := map[string]any{"ips": map[string]any{"local": ip, "public": "", "swarm": "", "vpn": ""}}
	if gw != "" {
		netDoc["default-gw"] = gw
	}
	if len(ni.ifs) > 0 {
		// Documents are never modified once built, so sharing is safe.
		netDoc["interfaces"] = ni.ifs
	}
	doc["network"] = netDoc
	if ip != "" {
		doc["ip"] = ip
	}
	if temps := s.temperatures(&smp); len(temps) > 0 {
		doc["temperatures"] = temps
	}
	if feat.CoeResources && s.Coe != nil {
		coe, err := s.Coe(ctx)
		if err != nil {
			return Result{}, fmt.Errorf("coe-resources: %w", err)
		}
		doc["coe-resources"] = map[string]any{"docker": map[string]any{
			"containers": orEmpty(coe.Containers), "images": orEmpty(coe.Images),
			"volumes": orEmpty(coe.Volumes), "networks": orEmpty(coe.Networks),
		}}
	}
	smp.Apps = appUsage(smp.Containers)
	return Result{Doc: doc, Sample: smp}, nil
}

func orEmpty(l []any) []any {
	if l == nil {
		return []any{}
	}
	return l
}

func strs(l []string) []any {
	out := make([]any, len(l))
	for i, s := range l {
		out[i] = s
	}
	return out
}

func (s *Sampler) dockerVersion(ctx context.Context, now time.Time) string {
	if s.DockerVersion == nil {
		return ""
	}
	if s.dockerVer == "" || now.Sub(s.dockerAt) > dockerVersionTTL || now.Before(s.dockerAt) {
		if v := s.DockerVersion(ctx); v != "" {
			s.dockerVer, s.dockerAt = v, now
		}
	}
	return s.dockerVer
}

// round keeps d decimals.
func round(v float64, d int) float64 {
	p := math.Pow10(d)
	return math.Round(v*p) / p
}

func (s *Sampler) resources(ctx context.Context, f facts, smp *client.Sample) (map[string]any, error) {
	vm, err := mem.VirtualMemoryWithContext(ctx)
	if err != nil {
		return nil, fmt.Errorf("read memory: %w", err)
	}
	const mib = 1 << 20
	s.facts.memTotal = vm.Total
	cpuDoc := map[string]any{"capacity": float64(f.cores), "load": 0.0}
	smp.CPU.Cores = f.cores
	if l, err := load.AvgWithContext(ctx); err == nil {
		cpuDoc["load"], cpuDoc["load-1"], cpuDoc["load-5"] = round(l.Load15, 2), round(l.Load1, 2), round(l.Load5, 2)
		smp.CPU.Load1, smp.CPU.Load5, smp.CPU.Load15 = round(l.Load1, 2), round(l.Load5, 2), round(l.Load15, 2)
	}
	if ps, ok := readProcStat(); ok {
		cpuDoc["context-switches"] = float64(ps.ctxt)
		cpuDoc["interrupts"] = float64(ps.intr)
		cpuDoc["software-interrupts"] = float64(ps.softirq)
		if s.prevHost.total > 0 && ps.total > s.prevHost.total {
			dt := float64(ps.total - s.prevHost.total)
			di := float64(ps.idle - min(ps.idle, s.prevHost.idle))
			smp.CPU.Percent = round(100*(1-di/dt), 1)
		}
		s.prevHost = hostTicks{ps.total, ps.idle}
	}
	used := int64((vm.Total - vm.Available) / mib)
	smp.RAM = client.RAM{Total: int64(vm.Total / mib), Used: used}
	res := map[string]any{
		"cpu":   cpuDoc,
		"ram":   map[string]any{"capacity": float64(vm.Total / mib), "used": float64(used)},
		"disks": s.disks(ctx, smp),
	}
	if ns := netStats(ctx, smp); len(ns) > 0 {
		res["net-stats"] = ns
	}
	return res, nil
}

type procStat struct {
	total, idle, ctxt, intr, softirq uint64
}

// readProcStat reads the aggregate CPU ticks and the kernel's counters.
// (Linux does not count system calls in /proc/stat, so system-calls is
// never sent.)
func readProcStat() (procStat, bool) {
	var ps procStat
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return ps, false
	}
	for line := range bytes.SplitSeq(b, []byte{'\n'}) {
		f := bytes.Fields(line)
		if len(f) < 2 {
			continue
		}
		switch string(f[0]) {
		case "cpu":
			for i, v := range f[1:] {
				n, _ := strconv.ParseUint(string(v), 10, 64)
				if i >= 8 { // guest time is already in user/nice
					break
				}
				ps.total += n
				if i == 3 || i == 4 { // idle, iowait
					ps.idle += n
				}
			}
		case "ctxt":
			ps.ctxt, _ = strconv.ParseUint(string(f[1]), 10, 64)
		case "intr":
			ps.intr, _ = strconv.ParseUint(string(f[1]), 10, 64)
		case "softirq":
			ps.softirq, _ = strconv.ParseUint(string(f[1]), 10, 64)
		}
	}
	return ps, ps.total > 0
}

// disks reports the filesystems of real block devices, in bytes. The
// partition list is re-read every few minutes only.
func (s *Sampler) disks(ctx context.Context, smp *client.Sample) []any {
	if s.parts == nil || time.Since(s.partsAt) > partitionsTTL {
		s.parts, s.partsDev = s.parts[:0], s.partsDev[:0]
		if parts, err := disk.PartitionsWithContext(ctx, false); err == nil {
			seen := map[string]bool{}
			for _, p := range parts {
				if !strings.HasPrefix(p.Device, "/dev/") || seen[p.Device] {
					continue
				}
				seen[p.Device] = true
				s.parts = append(s.parts, p.Mountpoint)
				s.partsDev = append(s.partsDev, strings.TrimPrefix(p.Device, "/dev/"))
			}
		}
		if len(s.parts) == 0 {
			s.parts, s.partsDev = []string{"/"}, []string{"root"}
		}
		s.partsAt = time.Now()
	}
	out := []any{}
	for i, mp := range s.parts {
		u, err := disk.UsageWithContext(ctx, mp)
		if err != nil || u.Total == 0 {
			continue
		}
		out = append(out, map[string]any{"device": s.partsDev[i], "capacity": float64(u.Total), "used": float64(u.Used)})
		smp.Disks = append(smp.Disks, client.Disk{Device: s.partsDev[i], Capacity: int64(u.Total), Used: int64(u.Used)})
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

func netStats(ctx context.Context, smp *client.Sample) []any {
	cs, err := psnet.IOCountersWithContext(ctx, true)
	if err != nil {
		return nil
	}
	sort.Slice(cs, func(i, j int) bool { return cs[i].Name < cs[j].Name })
	var out []any
	for _, c := range cs {
		if virtualIface(c.Name) {
			continue
		}
		out = append(out, map[string]any{"interface": c.Name, "bytes-received": float64(c.BytesRecv), "bytes-transmitted": float64(c.BytesSent)})
		smp.Net = append(smp.Net, client.NetStat{Interface: c.Name, RxBytes: int64(c.BytesRecv), TxBytes: int64(c.BytesSent)})
	}
	return out
}

// addresses reads the interface of the IPv4 default route (from
// /proc/net/route) and its first IPv4 address, and the host's interfaces
// with their addresses, with one link dump and one address dump per host
// interface (container veths are skipped).
func addresses(withType bool) (gw, gwIP string, out []any) {
	gw = defaultRouteIface()
	byIndex := addressesByIndex(gw)
	indexes := make([]int, 0, len(byIndex))
	for i := range byIndex {
		indexes = append(indexes, i)
	}
	sort.Ints(indexes)
	for _, i := range indexes {
		ifc := byIndex[i]
		var ips []any
		for _, a := range ifc.ips {
			if ifc.name == gw && gwIP == "" && a.To4() != nil {
				gwIP = a.String()
			}
			if virtualIface(ifc.name) {
				continue
			}
			ip := map[string]any{"address": a.String()}
			if withType {
				if a.To4() != nil {
					ip["type"] = "v4"
				} else {
					ip["type"] = "v6"
				}
			}
			ips = append(ips, ip)
		}
		if len(ips) > 0 {
			out = append(out, map[string]any{"interface": ifc.name, "ips": ips})
		}
	}
	return gw, gwIP, out
}

// ifaceAddrs are one interface's addresses.
type ifaceAddrs struct {
	name string
	ips  []net.IP
}

// addressesByIndex returns the addresses of the host's real interfaces
// (and of gw), by interface index. A host running many containers has a
// veth interface for each, so it names interfaces from /sys/class/net and
// reads every address in one netlink dump, instead of dumping every link
// and then the addresses once per interface (net.Interfaces + Addrs).
func addressesByIndex(gw string) map[int]*ifaceAddrs {
	want := map[int]*ifaceAddrs{}
	entries, err := os.ReadDir("/sys/class/net")
	if err != nil {
		return want
	}
	for _, e := range entries {
		name := e.Name()
		if virtualIface(name) && name != gw {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/sys/class/net", name, "ifindex"))
		if err != nil {
			continue
		}
		if i, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
			want[i] = &ifaceAddrs{name: name}
		}
	}
	if len(want) == 0 {
		return want
	}
	tab, err := syscall.NetlinkRIB(syscall.RTM_GETADDR, syscall.AF_UNSPEC)
	if err != nil {
		return want
	}
	msgs, err := syscall.ParseNetlinkMessage(tab)
	if err != nil {
		return want
	}
	for i := range msgs {
		m := &msgs[i]
		if m.Header.Type != syscall.RTM_NEWADDR || len(m.Data) < syscall.SizeofIfAddrmsg {
			continue
		}
		// struct ifaddrmsg: family, prefixlen, flags, scope (one byte
		// each), then the interface index (native-endian uint32).
		index := int(binary.NativeEndian.Uint32(m.Data[4:8]))
		ifc, ok := want[index]
		if !ok {
			continue
		}
		attrs, err := syscall.ParseNetlinkRouteAttr(m)
		if err != nil {
			continue
		}
		var addr, local net.IP
		for _, a := range attrs {
			switch a.Attr.Type {
			case syscall.IFA_ADDRESS:
				addr = net.IP(append([]byte(nil), a.Value...))
			case syscall.IFA_LOCAL:
				local = net.IP(append([]byte(nil), a.Value...))
			}
		}
		if m.Data[0] == syscall.AF_INET && local != nil {
			addr = local // the local end of a point-to-point link
		}
		if len(addr) == net.IPv4len || len(addr) == net.IPv6len {
			ifc.ips = append(ifc.ips, addr)
		}
	}
	return want
}

// defaultRouteIface returns the interface of the IPv4 default route.
func defaultRouteIface() string {
	f, err := os.Open("/proc/net/route")
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		if len(fs) > 2 && fs[1] == "00000000" && fs[0] != "Iface" {
			return fs[0]
		}
	}
	return ""
}

// findSensors lists the thermal zones, else the hwmon temperature inputs.
func findSensors() []sensor {
	var out []sensor
	zones, _ := filepath.Glob("/sys/class/thermal/thermal_zone*")
	for _, z := range zones {
		if _, err := os.Stat(filepath.Join(z, "temp")); err != nil {
			continue
		}
		name := filepath.Base(z)
		if b, err := os.ReadFile(filepath.Join(z, "type")); err == nil && len(bytes.TrimSpace(b)) > 0 {
			name = string(bytes.TrimSpace(b))
		}
		out = append(out, sensor{zone: name, path: filepath.Join(z, "temp")})
	}
	if len(out) > 0 {
		return out
	}
	inputs, _ := filepath.Glob("/sys/class/hwmon/hwmon*/temp*_input")
	for _, in := range inputs {
		dir := filepath.Dir(in)
		name := filepath.Base(dir)
		if b, err := os.ReadFile(filepath.Join(dir, "name")); err == nil && len(bytes.TrimSpace(b)) > 0 {
			name = string(bytes.TrimSpace(b))
		}
		label := strings.TrimSuffix(filepath.Base(in), "_input")
		if b, err := os.ReadFile(strings.TrimSuffix(in, "_input") + "_label"); err == nil && len(bytes.TrimSpace(b)) > 0 {
			label = string(bytes.TrimSpace(b))
		}
		out = append(out, sensor{zone: name + " " + label, path: in})
	}
	return out
}

// temperatures reads the sensors found at start-up, in °C.
func (s *Sampler) temperatures(smp *client.Sample) []any {
	var out []any
	for _, sn := range s.sensors {
		b, err := os.ReadFile(sn.path)
		if err != nil {
			continue
		}
		milli, err := strconv.ParseFloat(string(bytes.TrimSpace(b)), 64)
		if err != nil {
			continue
		}
		v := round(milli/1000, 1)
		out = append(out, map[string]any{"thermal-zone": sn.zone, "value": v})
		smp.Temperatures = append(smp.Temperatures, client.Temperature{Zone: sn.zone, Value: v})
	}
	return out
}
