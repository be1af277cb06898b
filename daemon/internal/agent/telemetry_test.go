package agent

import (
	"context"
	"errors"
	"fmt"
	"net"
	"testing"

	"github.com/berth-edge/berth/daemon/internal/nuvla"
)

func TestCollectPaths(t *testing.T) {
	item := func(children ...metadataAttr) metadataAttr { return metadataAttr{Name: "item", ChildTypes: children} }
	attrs := []metadataAttr{
		{Name: "coe-resources"},
		{Name: "resources", ChildTypes: []metadataAttr{{Name: "container-stats", ChildTypes: []metadataAttr{item(metadataAttr{Name: "cpu-usage"})}}}},
		{Name: "network", ChildTypes: []metadataAttr{{Name: "interfaces", ChildTypes: []metadataAttr{item(metadataAttr{Name: "ips", ChildTypes: []metadataAttr{item(metadataAttr{Name: "type"})}})}}}},
	}
	got := map[string]bool{}
	collectPaths(attrs, "", got)
	for _, p := range []string{"coe-resources", "resources/container-stats/cpu-usage", "network/interfaces/ips/type"} {
		if !got[p] {
			t.Errorf("path %s not found in %v", p, got)
		}
	}
}

func TestErrorKind(t *testing.T) {
	for _, c := range []struct {
		err  error
		want string
	}{
		{&nuvla.APIError{StatusCode: 500}, "http_5xx"},
		{&nuvla.APIError{StatusCode: 403}, "forbidden"},
		{&nuvla.APIError{StatusCode: 400}, "http_4xx"},
		{&nuvla.APIError{StatusCode: 409}, "conflict"},
		{fmt.Errorf("put: %w", context.DeadlineExceeded), "timeout"},
		{&net.OpError{Op: "dial", Err: errors.New("connection refused")}, "network"},
		{errors.New("odd"), "other"},
	} {
		if got := errorKind(c.err); got != c.want {
			t.Errorf("errorKind(%v) = %s, want %s", c.err, got, c.want)
		}
	}
	if !refused(&nuvla.APIError{StatusCode: 400}) || refused(&nuvla.APIError{StatusCode: 403}) || refused(&nuvla.APIError{StatusCode: 500}) {
		t.Error("refused")
	}
}
