package engine

import (
	"testing"

	"github.com/berth-edge/berth/daemon/internal/apps"
)

func TestNetworkOptions(t *testing.T) {
	app := &apps.App{ID: "d1"}
	n := apps.Network{Name: "d1_back", Labels: map[string]string{apps.LabelComposeProject: "d1", apps.LabelComposeNetwork: "back", "team": "x"}, Subnets: []string{"10.9.0.0/24"}}

	compose := networkOptions(app, n, false)
	if compose.Driver != "" || compose.Scope != "" || compose.Labels[apps.LabelComposeNetwork] != "back" ||
		compose.Labels[apps.LabelComposeProject] != "d1" || compose.Labels[LabelStackNamespace] != "" || compose.Labels["team"] != "x" {
		t.Errorf("compose network options = %+v", compose)
	}
	stack := networkOptions(app, n, true)
	if stack.Driver != "overlay" || stack.Scope != "swarm" || stack.Labels[LabelStackNamespace] != "d1" ||
		stack.Labels[apps.LabelComposeProject] != "" || stack.Labels[apps.LabelComposeNetwork] != "" || stack.Labels["team"] != "x" {
		t.Errorf("stack network options = %+v", stack)
	}
	if len(compose.IPAM.Config) != 1 || compose.IPAM.Config[0].Subnet != "10.9.0.0/24" {
		t.Errorf("subnet lost: %+v", compose.IPAM)
	}
	n.Driver = "macvlan"
	if got := networkOptions(app, n, true).Driver; got != "macvlan" {
		t.Errorf("an explicit stack driver became %q", got)
	}
}
