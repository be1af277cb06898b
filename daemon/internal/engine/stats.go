package engine

// Container statistics and raw Docker object lists for telemetry.
//
// Docker's own stats endpoint is expensive: a non-streaming call without
// one-shot waits a second to fill PreCPUStats, and even one-shot stats cost
// a round trip and a JSON document per container. The sampler therefore
// reads the kernel's cgroup files directly (v2: cpu.stat, memory.current,
// io.stat; v1: cpuacct.usage, memory.usage_in_bytes,
// blkio.throttle.io_service_bytes) and the network
// counters from /proc/<pid>/net/dev. Only when no cgroup directory is found
// for a container does it fall back to Docker's one-shot stats. Rates (CPU
// %) are left to the caller, who keeps the previous sample.
//
// Per-container facts that only change when the container changes state
// (pid, start time, restart count, CPU and memory limits, cgroup
// directory) come from one inspect and are cached until the container's
// state changes; the counter files stay open and are re-read with pread,
// one system call each. The raw container list serves both the counters
// and coe-resources; images, volumes and networks are re-listed when the
// set of containers changes, and every rawListsTTL otherwise.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"hash/maphash"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/docker/docker/api/types/container"

	"github.com/berth-edge/berth/daemon/internal/apps"
)

// ContainerStat is the resource usage of one berth-managed container at
// one moment. Counters (CPU time, bytes) are cumulative since the container
// started; the caller derives rates from two samples.
type ContainerStat struct {
	ID      string
	Name    string
	Image   string
	AppID   string
	Service string
	State   string // Docker's: running, exited...
	Status  string // "Up 5 minutes"
	Created time.Time
	// Started is zero when the container never ran.
	Started      time.Time
	RestartCount int
	// CPUNanos is the CPU time used, in nanoseconds.
	CPUNanos uint64
	// CPULimit is the CPU quota in cores; 0 means no limit.
	CPULimit float64
	// MemUsage and MemLimit are bytes; MemLimit 0 means no limit.
	MemUsage, MemLimit uint64
	// DiskRead/DiskWrite and NetRx/NetTx are bytes.
	DiskRead, DiskWrite uint64
	NetRx, NetTx        uint64
	// Source says where the counters came from: "cgroup2", "cgroup1",
	// "docker" or "" (not running: no counters).
	Source string
}

// StatsReader reads container statistics, keeping what inspect says about
// each container until its state changes. It is safe for concurrent use.
type StatsReader struct {
	e       *Engine
	mu      sync.Mutex
	entries map[string]*inspectEntry

	// The raw lists of the last Read and RawLists.
	rawContainers []any
	rawAt         time.Time
	idSet         string // sorted container ids of rawContainers
	others        CoeResources
	othersIDs     string
	othersAt      time.Time
	// itemCache holds the decoded items of the last container list, so
	// that items whose JSON did not change are not decoded again.
	itemCache *itemCache
	hc        *http.Client // nil: the Docker client's
}

// rawListsTTL bounds how stale the image, volume and network lists may be
// while the set of containers does not change.
const rawListsTTL = 5 * time.Minute

// NewStatsReader returns a StatsReader over e. Close releases its files.
func NewStatsReader(e *Engine) *StatsReader {
	return &StatsReader{e: e, entries: map[string]*inspectEntry{}, itemCache: newItemCache(), hc: e.plainHTTP()}
}

// Close closes the counter files kept open.
func (sc *StatsReader) Close() {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	for id, ent := range sc.entries {
		ent.close()
		delete(sc.entries, id)
	}
	if sc.hc != nil {
		sc.hc.CloseIdleConnections()
	}
}

type inspectEntry struct {
	state        string
	status       string
	pid          int
	started      time.Time
	restartCount int
	cpuLimit     float64
	memLimit     uint64
	cgroup       cgroupDirs
	// Open counter files (-1: none): CPU, memory, block I/O, net/dev.
	fds    [4]int
	opened bool
	// Block I/O counters are the costliest file for the kernel to
	// generate and the least urgent: they are re-read every ioEvery reads.
	reads               int
	diskRead, diskWrite uint64
}

// ioEvery is how often (in reads) the block I/O counters are refreshed.
const ioEvery = 4

const (
	fdCPU = iota
	fdMem
	fdIO
	fdNet
)

func (ent *inspectEntry) close() {
	if !ent.opened {
		return
	}
	for i, fd := range ent.fds {
		if fd >= 0 {
			_ = syscall.Close(fd)
		}
		ent.fds[i] = -1
	}
	ent.opened = false
}

// open opens the counter files of the container's cgroup.
func (ent *inspectEntry) open() {
	ent.opened = true
	ent.fds = [4]int{-1, -1, -1, -1}
	d := ent.cgroup
	var paths [4]string
	switch d.version {
	case 2:
		paths = [4]string{filepath.Join(d.cpu, "cpu.stat"), filepath.Join(d.mem, "memory.current"), filepath.Join(d.io, "io.stat")}
	case 1:
		paths = [4]string{filepath.Join(d.cpu, "cpuacct.usage"), filepath.Join(d.mem, "memory.usage_in_bytes"), filepath.Join(d.io, "blkio.throttle.io_service_bytes")}
	default:
		return
	}
	if ent.pid > 0 {
		paths[fdNet] = "/proc/" + strconv.Itoa(ent.pid) + "/net/dev"
	}
	for i, p := range paths {
		if p == "" {
			continue
		}
		if fd, err := syscall.Open(p, syscall.O_RDONLY|syscall.O_CLOEXEC, 0); err == nil {
			ent.fds[i] = fd
		}
	}
}

// pread reads a counter file from its start.
func (ent *inspectEntry) pread(i int, buf []byte) ([]byte, bool) {
	fd := ent.fds[i]
	if fd < 0 {
		return nil, false
	}
	n, err := syscall.Pread(fd, buf, 0)
	if err != nil || n <= 0 {
		return nil, false
	}
	return buf[:n], true
}

// cgroupDirs are the directories holding one container's counters.
type cgroupDirs struct {
	version      int // 0 unknown/none, 1, 2
	cpu, mem, io string
}

// CgroupRoot is where the cgroup filesystem is mounted; tests may point it
// elsewhere before any stats are read.
var CgroupRoot = "/sys/fs/cgroup"

// Read returns the usage of every berth-managed container, sorted
// by name: one list call, an inspect only for containers whose state
// changed since the last call, and a few small file reads per running
// container.
func (sc *StatsReader) Read(ctx context.Context) ([]ContainerStat, error) {
	e := sc.e
	sc.mu.Lock()
	defer sc.mu.Unlock()
	raw, err := e.rawContainers(ctx, sc.hc, sc.itemCache)
	if err != nil {
		return nil, err
	}
	sc.setRaw(raw)
	seen := make(map[string]bool, len(raw))
	out := make([]ContainerStat, 0, len(raw))
	var buf [4096]byte
	for _, it := range raw {
		m, _ := it.(map[string]any)
		cs := fromRaw(m)
		if cs.ID == "" {
			continue
		}
		seen[cs.ID] = true
		ent := sc.entries[cs.ID]
		if ent == nil || ent.state != cs.State || (cs.State == "running" && ent.pid == 0) || restarted(ent.status, cs.Status) {
			fresh, err := e.inspectForStats(ctx, cs.ID, cs.State)
			if err != nil {
				if IsNotFound(err) {
					continue // removed between list and inspect
				}
				return nil, err
			}
			if ent != nil {
				ent.close()
			}
			ent = fresh
			sc.entries[cs.ID] = ent
		}
		ent.status = cs.Status
		cs.Started, cs.RestartCount, cs.CPULimit, cs.MemLimit = ent.started, ent.restartCount, ent.cpuLimit, ent.memLimit
		if cs.State == "running" {
			e.readCounters(ctx, &cs, ent, buf[:])
		}
		out = append(out, cs)
	}
	for id, ent := range sc.entries {
		if !seen[id] {
			ent.close()
			delete(sc.entries, id)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// fromRaw reads the fields of a raw /containers/json item.
func fromRaw(m map[string]any) ContainerStat {
	str := func(k string) string { v, _ := m[k].(string); return v }
	cs := ContainerStat{ID: str("Id"), Image: str("Image"), State: str("State"), Status: str("Status")}
	if names, _ := m["Names"].([]any); len(names) > 0 {
		n, _ := names[0].(string)
		cs.Name = strings.TrimPrefix(n, "/")
	}
	if labels, _ := m["Labels"].(map[string]any); labels != nil {
		cs.AppID, _ = labels[apps.LabelApp].(string)
		cs.Service, _ = labels[apps.LabelComposeService].(string)
	}
	if c, ok := m["Created"].(float64); ok {
		cs.Created = time.Unix(int64(c), 0).UTC()
	}
	return cs
}

// setRaw records the raw container list of this tick.
func (sc *StatsReader) setRaw(raw []any) {
	ids := make([]string, 0, len(raw))
	for _, it := range raw {
		if m, ok := it.(map[string]any); ok {
			id, _ := m["Id"].(string)
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	sc.rawContainers, sc.rawAt, sc.idSet = raw, time.Now(), strings.Join(ids, ",")
}

// RawLists returns the raw lists for coe-resources: the containers of the
// last Read when it is recent (else listed now), and the images, volumes
// and networks, re-listed when the containers changed or every
// rawListsTTL.
func (sc *StatsReader) RawLists(ctx context.Context) (CoeResources, error) {
	sc.mu.Lock()
	raw, at := sc.rawContainers, sc.rawAt
	sc.mu.Unlock()
	if raw == nil || time.Since(at) > 2*time.Second {
		sc.mu.Lock()
		var err error
		raw, err = sc.e.rawContainers(ctx, sc.hc, sc.itemCache)
		if err == nil {
			sc.setRaw(raw)
		}
		sc.mu.Unlock()
		if err != nil {
			return CoeResources{}, err
		}
	}
	sc.mu.Lock()
	ids, others, othersIDs, othersAt := sc.idSet, sc.others, sc.othersIDs, sc.othersAt
	sc.mu.Unlock()
	if others.Images == nil || ids != othersIDs || time.Since(othersAt) > rawListsTTL {
		fresh, err := sc.e.rawOthers(ctx, sc.hc)
		if err != nil {
			return CoeResources{}, err
		}
		others = fresh
		sc.mu.Lock()
		sc.others, sc.othersIDs, sc.othersAt = fresh, ids, time.Now()
		sc.mu.Unlock()
	}
	others.Containers = raw
	return others, nil
}

// restarted reports a restart the state alone would not show: "Up 2 hours"
// becoming "Up 1 second".
func restarted(old, cur string) bool {
	return old != "" && strings.HasPrefix(cur, "Up Less than") && !strings.HasPrefix(old, "Up Less than")
}

func (e *Engine) inspectForStats(ctx context.Context, id, state string) (*inspectEntry, error) {
	ins, err := e.cli.ContainerInspect(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("inspect container %s: %w", shortID(id), err)
	}
	ent := &inspectEntry{state: state, restartCount: ins.RestartCount}
	if ins.State != nil {
		ent.pid = ins.State.Pid
		if t, err := time.Parse(time.RFC3339Nano, ins.State.StartedAt); err == nil && t.Year() > 1 {
			ent.started = t.UTC()
		}
	}
	if hc := ins.HostConfig; hc != nil {
		if hc.Memory > 0 {
			ent.memLimit = uint64(hc.Memory)
		}
		switch {
		case hc.NanoCPUs > 0:
			ent.cpuLimit = float64(hc.NanoCPUs) / 1e9
		case hc.CPUQuota > 0 && hc.CPUPeriod > 0:
			ent.cpuLimit = float64(hc.CPUQuota) / float64(hc.CPUPeriod)
		}
	}
	if ent.pid > 0 {
		ent.cgroup = findCgroup(id, ent.pid)
	}
	ent.open()
	return ent, nil
}

// findCgroup locates the container's cgroup directories from the process's
// /proc/<pid>/cgroup, falling back to the usual paths of both drivers.
func findCgroup(id string, pid int) cgroupDirs {
	root := CgroupRoot
	if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid)); err == nil {
		var d cgroupDirs
		for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
			parts := strings.SplitN(line, ":", 3)
			if len(parts) != 3 {
				continue
			}
			ctrl, p := parts[1], parts[2]
			switch {
			case parts[0] == "0" && ctrl == "":
				if dir := filepath.Join(root, p); fileExists(filepath.Join(dir, "cpu.stat")) {
					return cgroupDirs{version: 2, cpu: dir, mem: dir, io: dir}
				}
			case hasCtrl(ctrl, "cpuacct"):
				d.cpu = filepath.Join(root, "cpuacct", p)
			case hasCtrl(ctrl, "memory"):
				d.mem = filepath.Join(root, "memory", p)
			case hasCtrl(ctrl, "blkio"):
				d.io = filepath.Join(root, "blkio", p)
			}
		}
		if d.cpu != "" && fileExists(filepath.Join(d.cpu, "cpuacct.usage")) {
			d.version = 1
			return d
		}
	}
	for _, dir := range []string{
		filepath.Join(root, "system.slice", "docker-"+id+".scope"),
		filepath.Join(root, "docker", id),
	} {
		if fileExists(filepath.Join(dir, "cpu.stat")) {
			return cgroupDirs{version: 2, cpu: dir, mem: dir, io: dir}
		}
	}
	for _, sub := range []string{filepath.Join("docker", id), filepath.Join("system.slice", "docker-"+id+".scope")} {
		if fileExists(filepath.Join(root, "cpuacct", sub, "cpuacct.usage")) {
			return cgroupDirs{version: 1, cpu: filepath.Join(root, "cpuacct", sub),
				mem: filepath.Join(root, "memory", sub), io: filepath.Join(root, "blkio", sub)}
		}
	}
	return cgroupDirs{}
}

func hasCtrl(list, name string) bool {
	for _, c := range strings.Split(list, ",") {
		if c == name {
			return true
		}
	}
	return false
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// readCounters fills the counters from the open cgroup files, else from
// Docker's one-shot stats.
func (e *Engine) readCounters(ctx context.Context, cs *ContainerStat, ent *inspectEntry, buf []byte) {
	ok := false
	if b, got := ent.pread(fdCPU, buf); got {
		switch ent.cgroup.version {
		case 2:
			cs.CPUNanos, ok = parseCPUStat(b), true
			cs.Source = "cgroup2"
		case 1:
			cs.CPUNanos, _ = strconv.ParseUint(string(bytes.TrimSpace(b)), 10, 64)
			ok = true
			cs.Source = "cgroup1"
		}
	}
	if ok {
		if b, got := ent.pread(fdMem, buf); got {
			cs.MemUsage, _ = strconv.ParseUint(string(bytes.TrimSpace(b)), 10, 64)
		}
		if ent.reads%ioEvery == 0 {
			if b, got := ent.pread(fdIO, buf); got {
				if ent.cgroup.version == 2 {
					ent.diskRead, ent.diskWrite = parseIOStat(b)
				} else {
					ent.diskRead, ent.diskWrite = parseBlkio(b)
				}
			}
		}
		ent.reads++
		cs.DiskRead, cs.DiskWrite = ent.diskRead, ent.diskWrite
		if b, got := ent.pread(fdNet, buf); got {
			cs.NetRx, cs.NetTx = parseNetDev(b)
		}
		return
	}
	if err := e.oneShot(ctx, cs); err != nil {
		e.log.Debug("container stats unavailable", "container", shortID(cs.ID), "err", err)
		cs.Source = ""
		return
	}
	cs.Source = "docker"
}

func parseCPUStat(b []byte) uint64 {
	for line := range bytes.SplitSeq(b, []byte{'\n'}) {
		if v, ok := bytes.CutPrefix(line, []byte("usage_usec ")); ok {
			n, _ := strconv.ParseUint(string(v), 10, 64)
			return n * 1000
		}
	}
	return 0
}

func parseIOStat(b []byte) (rd, wr uint64) {
	for _, f := range bytes.Fields(b) {
		if v, ok := bytes.CutPrefix(f, []byte("rbytes=")); ok {
			n, _ := strconv.ParseUint(string(v), 10, 64)
			rd += n
		} else if v, ok := bytes.CutPrefix(f, []byte("wbytes=")); ok {
			n, _ := strconv.ParseUint(string(v), 10, 64)
			wr += n
		}
	}
	return rd, wr
}

func parseBlkio(b []byte) (rd, wr uint64) {
	for line := range bytes.SplitSeq(b, []byte{'\n'}) {
		f := bytes.Fields(line)
		if len(f) != 3 {
			continue
		}
		n, _ := strconv.ParseUint(string(f[2]), 10, 64)
		switch string(f[1]) {
		case "Read":
			rd += n
		case "Write":
			wr += n
		}
	}
	return rd, wr
}

// parseNetDev sums the counters of every interface but lo in a
// /proc/<pid>/net/dev file (the container's network namespace).
func parseNetDev(b []byte) (rx, tx uint64) {
	for line := range bytes.SplitSeq(b, []byte{'\n'}) {
		name, rest, ok := bytes.Cut(line, []byte{':'})
		if !ok || string(bytes.TrimSpace(name)) == "lo" {
			continue
		}
		f := bytes.Fields(rest)
		if len(f) < 9 {
			continue
		}
		r, _ := strconv.ParseUint(string(f[0]), 10, 64)
		t, _ := strconv.ParseUint(string(f[8]), 10, 64)
		rx += r
		tx += t
	}
	return rx, tx
}

// unlimitedV1 is what cgroup v1 reports as the memory limit when none is set
// (a page-rounded int64 max); anything above 2^62 counts as no limit.
const unlimitedV1 = 1 << 62

// oneShot reads Docker's one-shot stats (no second-long wait for
// PreCPUStats: the caller computes rates against its previous sample).
func (e *Engine) oneShot(ctx context.Context, cs *ContainerStat) error {
	resp, err := e.cli.ContainerStatsOneShot(ctx, cs.ID)
	if err != nil {
		return fmt.Errorf("stats of %s: %w", shortID(cs.ID), err)
	}
	defer resp.Body.Close()
	var st container.StatsResponse
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		return fmt.Errorf("decode stats of %s: %w", shortID(cs.ID), err)
	}
	cs.CPUNanos = st.CPUStats.CPUUsage.TotalUsage
	cs.MemUsage = st.MemoryStats.Usage
	if st.MemoryStats.Limit < unlimitedV1 {
		cs.MemLimit = st.MemoryStats.Limit
	}
	for _, b := range st.BlkioStats.IoServiceBytesRecursive {
		switch strings.ToLower(b.Op) {
		case "read":
			cs.DiskRead += b.Value
		case "write":
			cs.DiskWrite += b.Value
		}
	}
	for _, n := range st.Networks {
		cs.NetRx += n.RxBytes
		cs.NetTx += n.TxBytes
	}
	return nil
}

// CoeResources are raw Docker Engine API list objects, exactly as Docker
// returns them (PascalCase keys), with JSON nulls dropped: Nuvla derives
// deployment parameters from them (containers need Id, Image, ImageID,
// Labels, Ports, Mounts and NetworkSettings.Networks.*.NetworkID).
type CoeResources struct {
	Containers []any `json:"containers"`
	Images     []any `json:"images"`
	Volumes    []any `json:"volumes"`
	Networks   []any `json:"networks"`
}

// rawContainers lists the berth-managed containers (all states) raw.
// With a cache, items whose JSON did not change since the last call are
// not decoded again (most do not change from one tick to the next).
func (e *Engine) rawContainers(ctx context.Context, hc *http.Client, cache *itemCache) ([]any, error) {
	filter, _ := json.Marshal(map[string][]string{"label": {apps.LabelManaged + "=" + apps.ManagedValue}})
	return e.rawList(ctx, hc, "/containers/json", url.Values{"all": {"1"}, "filters": {string(filter)}}, "", "Id", cache)
}

// plainHTTP is an HTTP client straight to Docker's unix socket, without
// the Docker client's tracing transport (measurably cheaper per tick), or
// nil when Docker is not on a unix socket.
func (e *Engine) plainHTTP() *http.Client {
	u, err := url.Parse(e.cli.DaemonHost())
	if err != nil || u.Scheme != "unix" {
		return nil
	}
	sock := u.Path
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", sock)
		},
		MaxIdleConns:    2,
		IdleConnTimeout: time.Minute,
	}
	return &http.Client{Transport: tr}
}

// rawOthers lists every image, volume and network raw.
func (e *Engine) rawOthers(ctx context.Context, hc *http.Client) (CoeResources, error) {
	var r CoeResources
	var err error
	if r.Images, err = e.rawList(ctx, hc, "/images/json", nil, "", "Id", nil); err != nil {
		return r, err
	}
	if r.Volumes, err = e.rawList(ctx, hc, "/volumes", nil, "Volumes", "Name", nil); err != nil {
		return r, err
	}
	if r.Networks, err = e.rawList(ctx, hc, "/networks", nil, "", "Id", nil); err != nil {
		return r, err
	}
	return r, nil
}

// RawLists reads the raw lists now: berth-managed containers (all
// states), every image, volume and network, each sorted by id (or name)
// so that consecutive samples diff cleanly. StatsReader.RawLists is the
// cheaper, cached variant the sampler uses.
func (e *Engine) RawLists(ctx context.Context) (CoeResources, error) {
	r, err := e.rawOthers(ctx, nil)
	if err != nil {
		return r, err
	}
	r.Containers, err = e.rawContainers(ctx, nil, nil)
	return r, err
}

// rawList GETs an engine API list; wrap names the object key holding the
// array ("Volumes" for /volumes), sortKey the key to order items by.
func (e *Engine) rawList(ctx context.Context, hc *http.Client, path string, q url.Values, wrap, sortKey string, cache *itemCache) ([]any, error) {
	if hc == nil {
		hc = e.cli.HTTPClient()
	}
	base := "http://api.moby.localhost"
	if u, err := url.Parse(e.cli.DaemonHost()); err == nil && (u.Scheme == "tcp" || u.Scheme == "http" || u.Scheme == "https") {
		scheme := "http"
		if u.Scheme == "https" {
			scheme = "https"
		}
		base = scheme + "://" + u.Host
	}
	full := base + "/v" + e.cli.ClientVersion() + path
	if len(q) > 0 {
		full += "?" + q.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, full, nil)
	if err != nil {
		return nil, fmt.Errorf("docker %s: %w", path, err)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("docker %s: %w", path, err)
	}
	defer resp.Body.Close()
	buf := bodyBuffers.Get().(*bytes.Buffer)
	buf.Reset()
	defer bodyBuffers.Put(buf)
	if _, err := buf.ReadFrom(io.LimitReader(resp.Body, 64<<20)); err != nil {
		return nil, fmt.Errorf("docker %s: %w", path, err)
	}
	body := buf.Bytes() // decoded below into copies; buf is reused

	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("docker %s: %s: %s", path, resp.Status, bytes.TrimSpace(body))
	}
	var rawItems []json.RawMessage
	if wrap != "" {
		var m map[string]json.RawMessage
		if err := json.Unmarshal(body, &m); err != nil {
			return nil, fmt.Errorf("docker %s: %w", path, err)
		}
		if raw := m[wrap]; len(raw) > 0 {
			err = json.Unmarshal(raw, &rawItems)
		}
	} else {
		err = json.Unmarshal(body, &rawItems)
	}
	if err != nil {
		return nil, fmt.Errorf("docker %s: %w", path, err)
	}
	out := make([]any, 0, len(rawItems))
	for _, ri := range rawItems {
		if v, ok := cache.get(ri); ok {
			out = append(out, v)
			continue
		}
		var it any
		if err := json.Unmarshal(ri, &it); err != nil {
			return nil, fmt.Errorf("docker %s: %w", path, err)
		}
		if v := dropNulls(it); v != nil {
			cache.put(ri, v)
			out = append(out, v)
		}
	}
	cache.swap()
	sort.SliceStable(out, func(i, j int) bool {
		a, _ := out[i].(map[string]any)
		b, _ := out[j].(map[string]any)
		x, _ := a[sortKey].(string)
		y, _ := b[sortKey].(string)
		return x < y
	})
	return out, nil
}

// bodyBuffers are reused for the answers of the list calls, which are
// read every tick.
var bodyBuffers = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// itemCache maps the JSON of each item of the last list to its decoded
// value. Items are keyed by a hash of their JSON and checked against the
// JSON itself, so a hit costs no allocation. Decoded values are shared
// between documents and never modified. A nil *itemCache caches nothing.
type itemCache struct {
	seed      maphash.Seed
	cur, next map[uint64]cachedItem
}

type cachedItem struct {
	raw string
	v   any
}

func newItemCache() *itemCache {
	return &itemCache{seed: maphash.MakeSeed(), cur: map[uint64]cachedItem{}, next: map[uint64]cachedItem{}}
}

// get returns the decoded value of raw from the last list, keeping it for
// the next.
func (c *itemCache) get(raw []byte) (any, bool) {
	if c == nil {
		return nil, false
	}
	h := maphash.Bytes(c.seed, raw)
	it, ok := c.cur[h]
	if !ok || it.raw != string(raw) {
		return nil, false
	}
	c.next[h] = it
	return it.v, true
}

// put records the decoded value of raw for the next list.
func (c *itemCache) put(raw []byte, v any) {
	if c == nil {
		return
	}
	c.next[maphash.Bytes(c.seed, raw)] = cachedItem{raw: string(raw), v: v}
}

// swap makes this list's items the ones the next list is compared with.
func (c *itemCache) swap() {
	if c == nil {
		return
	}
	c.cur, c.next = c.next, c.cur
	clear(c.next)
}

// dropNulls removes null values from maps and arrays, recursively.
func dropNulls(v any) any {
	switch t := v.(type) {
	case map[string]any:
		for k, x := range t {
			if x == nil {
				delete(t, k)
				continue
			}
			t[k] = dropNulls(x)
		}
		return t
	case []any:
		out := t[:0]
		for _, x := range t {
			if x != nil {
				out = append(out, dropNulls(x))
			}
		}
		return out
	}
	return v
}
