package main

import (
	"context"
	"encoding/json"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/client"

	"github.com/berth-edge/berth/daemon/berthdtest"
)

// The harness runs the real berthd binary, as a user or systemd would.

// TestMain removes the berthd binary the tests built.
func TestMain(m *testing.M) {
	code := m.Run()
	berthdtest.RemoveBinary()
	os.Exit(code)
}

// startDaemon runs berthd with its state in dir and the given extra
// arguments and environment, and waits until its socket answers.
func startDaemon(t testing.TB, dir string, env []string, args ...string) *berthdtest.Daemon {
	t.Helper()
	return berthdtest.Start(t, berthdtest.Config{StateDir: dir, Env: env, Args: args})
}

// bridgeGateway is the address containers reach the host at.
func bridgeGateway(t testing.TB, cli *client.Client) string {
	t.Helper()
	n, err := cli.NetworkInspect(context.Background(), "bridge", network.InspectOptions{})
	if err != nil {
		t.Skipf("docker bridge network not available: %v", err)
	}
	for _, c := range n.IPAM.Config {
		if ip := net.ParseIP(c.Gateway); ip != nil && ip.To4() != nil {
			return c.Gateway
		}
	}
	// The default bridge often lists no gateway: it is the bridge
	// interface's own address.
	name := n.Options["com.docker.network.bridge.name"]
	if name == "" {
		name = "docker0"
	}
	if iface, err := net.InterfaceByName(name); err == nil {
		addrs, _ := iface.Addrs()
		for _, a := range addrs {
			if ipn, ok := a.(*net.IPNet); ok && ipn.IP.To4() != nil {
				return ipn.IP.String()
			}
		}
	}
	t.Skipf("docker bridge network has no IPv4 gateway (interface %s)", name)
	return ""
}

// eventually polls cond until it holds or the timeout passes.
func eventually(t testing.TB, timeout time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	last := ""
	for time.Now().Before(deadline) {
		ok, detail := cond()
		if ok {
			return
		}
		last = detail
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("timed out after %s waiting for %s (last: %s)", timeout, what, last)
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if strings.Contains(x, s) {
			return true
		}
	}
	return false
}
