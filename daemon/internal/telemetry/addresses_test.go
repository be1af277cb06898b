package telemetry

import (
	"net"
	"reflect"
	"testing"
)

// The one-dump reader of interface addresses finds what the standard
// library's per-interface calls find on this host.
func TestAddressesMatchNetInterfaces(t *testing.T) {
	gw := defaultRouteIface()
	ifs, err := net.Interfaces()
	if err != nil {
		t.Skipf("no interfaces: %v", err)
	}
	var want []any
	wantIP := ""
	for _, i := range ifs {
		if virtualIface(i.Name) && i.Name != gw {
			continue
		}
		addrs, _ := i.Addrs()
		var ips []any
		for _, a := range addrs {
			n, ok := a.(*net.IPNet)
			if !ok {
				continue
			}
			if i.Name == gw && wantIP == "" && n.IP.To4() != nil {
				wantIP = n.IP.String()
			}
			if virtualIface(i.Name) {
				continue
			}
			typ := "v6"
			if n.IP.To4() != nil {
				typ = "v4"
			}
			ips = append(ips, map[string]any{"address": n.IP.String(), "type": typ})
		}
		if len(ips) > 0 {
			want = append(want, map[string]any{"interface": i.Name, "ips": ips})
		}
	}
	gotGW, gotIP, got := addresses(true)
	if gotGW != gw || gotIP != wantIP || !reflect.DeepEqual(got, want) {
		t.Fatalf("addresses() = %q %q %v\nwant %q %q %v", gotGW, gotIP, got, gw, wantIP, want)
	}
	if len(want) == 0 {
		t.Log("this host has no non-virtual interface with an address; only the empty result was compared")
	}
	t.Logf("%d interfaces, default route via %q (%s)", len(got), gotGW, gotIP)
}
