package menu

import (
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"

	"github.com/berth-edge/berth/daemon/client"
)

func TestSplit(t *testing.T) {
	tests := []struct {
		id   string
		want Ref
	}{
		{"images.canfar.net/skaha/terminal:1.1.2", Ref{"images.canfar.net", "skaha", "terminal", "1.1.2"}},
		{"host:5000/proj/sub/name:1", Ref{"host:5000", "proj", "sub/name", "1"}},
		{"host.example/proj/a/b/c:2.0", Ref{"host.example", "proj", "a/b/c", "2.0"}},
		{"library/x:1", Ref{"", "library", "x", "1"}},
		{"team/x", Ref{"", "team", "x", "latest"}},
		{"berth-testapp:test", Ref{"", "library", "berth-testapp", "test"}},
		{"127.0.0.1:5000/testapp:v1", Ref{"127.0.0.1:5000", "library", "testapp", "v1"}},
		{"localhost/proj/app", Ref{"localhost", "proj", "app", "latest"}},
		{"localhost:5000/proj/app", Ref{"localhost:5000", "proj", "app", "latest"}},
		{"reg.io/p/app:1@sha256:abcd", Ref{"reg.io", "p", "app", "1"}},
		{"reg.io/p/app@sha256:abcd", Ref{"reg.io", "p", "app", "latest"}},
		{"nginx", Ref{"", "library", "nginx", "latest"}},
	}
	for _, tt := range tests {
		if got := Split(tt.id); got != tt.want {
			t.Errorf("Split(%q) = %+v, want %+v", tt.id, got, tt.want)
		}
	}
	if l := Split("host:5000/proj/sub/name:1").Label(); l != "sub/name:1" {
		t.Errorf("Label = %q", l)
	}
}

func TestCompareTags(t *testing.T) {
	// Each list is in ascending order.
	orders := [][]string{
		{"1.2", "1.9", "1.10", "1.10.1", "2", "10"},
		{"v1.9", "v1.10", "1.11"},
		{"1.2.0-alpha", "1.2.0-alpha.1", "1.2.0-beta", "1.2.0-rc1", "1.2.0-rc2", "1.2.0-rc10", "1.2.0"},
		{"1.2.0rc1", "1.2.0"},
		{"0.9", "1.0", "dev", "latest", "main"},
		{"2024-01-15", "2024-02-01", "2025-01-01"},
		{"1.2", "1.2.0", "v1.2"}, // equal rank: by text
		{"1.0-1", "1.0-beta"},    // numeric pre-release identifiers first
		{"1.0+build5", "1.0.1"},  // build metadata is ignored
		{"99999999999999999999", "latest"},
	}
	for _, order := range orders {
		for i := range order {
			for j := range order {
				got := CompareTags(order[i], order[j])
				want := 0
				if i < j {
					want = -1
				} else if i > j {
					want = 1
				}
				if sign(got) != want {
					t.Errorf("CompareTags(%q, %q) = %d, want %d", order[i], order[j], got, want)
				}
			}
		}
		shuffled := slices.Clone(order)
		rand.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
		slices.SortFunc(shuffled, CompareTags)
		if !slices.Equal(shuffled, order) {
			t.Errorf("sorted %v, want %v", shuffled, order)
		}
	}
}

func sign(n int) int {
	switch {
	case n < 0:
		return -1
	case n > 0:
		return 1
	}
	return 0
}

func TestFilter(t *testing.T) {
	ims := []client.Image{
		{ID: "a", Types: []string{"notebook"}},
		{ID: "b", Types: []string{"headless", "desktop-app"}},
		{ID: "c", Types: []string{"desktop-app"}},
	}
	tests := []struct {
		typ  string
		want []string
	}{
		{"", []string{"a", "b", "c"}},
		{"desktop-app", []string{"b", "c"}},
		{"carta", nil},
	}
	for _, tt := range tests {
		var got []string
		for _, im := range Filter(ims, tt.typ) {
			got = append(got, im.ID)
		}
		if !slices.Equal(got, tt.want) {
			t.Errorf("Filter(%q) = %v, want %v", tt.typ, got, tt.want)
		}
	}
	if Filter(nil, "x") == nil {
		t.Error("Filter returned nil")
	}
}

func TestTree(t *testing.T) {
	da := []string{client.TypeDesktopApp}
	item := func(label, image string, types ...string) client.MenuItem {
		if types == nil {
			types = da
		}
		return client.MenuItem{Label: label, Image: image, Types: types}
	}
	tests := []struct {
		name   string
		images []client.Image
		want   []client.MenuProject
	}{
		{"empty", nil, []client.MenuProject{}},
		{
			"versions and projects",
			[]client.Image{
				{ID: "images.canfar.net/skaha/terminal:1.10", Types: da},
				{ID: "images.canfar.net/skaha/terminal:1.9", Types: da},
				{ID: "images.canfar.net/skaha/terminal:latest", Types: da},
				{ID: "images.canfar.net/skaha/terminal:1.10.0-rc1", Types: da},
				{ID: "images.canfar.net/skaha/ds9:8.2", Types: da},
				{ID: "images.canfar.net/astro/topcat:4.8", Types: da},
			},
			[]client.MenuProject{
				{Name: "astro", Items: []client.MenuItem{item("topcat:4.8", "images.canfar.net/astro/topcat:4.8")}},
				{Name: "skaha", Items: []client.MenuItem{
					item("ds9:8.2", "images.canfar.net/skaha/ds9:8.2"),
					item("terminal:1.9", "images.canfar.net/skaha/terminal:1.9"),
					item("terminal:1.10.0-rc1", "images.canfar.net/skaha/terminal:1.10.0-rc1"),
					item("terminal:1.10", "images.canfar.net/skaha/terminal:1.10"),
					item("terminal:latest", "images.canfar.net/skaha/terminal:latest"),
				}},
			},
		},
		{
			"deep paths, hostless and single-component names",
			[]client.Image{
				{ID: "reg.io/proj/sub/name:2", Types: da},
				{ID: "reg.io/proj/name:1", Types: da},
				{ID: "berth-testapp:test", Types: da},
				{ID: "library/x:1", Types: da},
				{ID: "127.0.0.1:5000/testapp:v1", Types: da},
			},
			[]client.MenuProject{
				{Name: "library", Items: []client.MenuItem{
					item("berth-testapp:test", "berth-testapp:test"),
					item("testapp:v1", "127.0.0.1:5000/testapp:v1"),
					item("x:1", "library/x:1"),
				}},
				{Name: "proj", Items: []client.MenuItem{
					item("name:1", "reg.io/proj/name:1"),
					item("sub/name:2", "reg.io/proj/sub/name:2"),
				}},
			},
		},
		{
			"duplicates merge their types; profiles last",
			[]client.Image{
				{ID: "reg.io/p/app:1", Types: []string{"headless"}, Source: "local"},
				{ID: "reg.io/p/app:1", Types: []string{"notebook", "headless"}, Source: "registry:r"},
				{ID: "reg.io/p/app:1", Types: []string{"notebook"}, Source: "profile", Profile: "zeta"},
				{ID: "reg.io/p/app:1", Types: []string{"headless"}, Source: "profile", Profile: "alpha"},
				{ID: "reg.io/zz/b:1", Types: da},
			},
			[]client.MenuProject{
				{Name: "p", Items: []client.MenuItem{item("app:1", "reg.io/p/app:1", "notebook", "headless")}},
				{Name: "zz", Items: []client.MenuItem{item("b:1", "reg.io/zz/b:1")}},
				{Name: ProfilesProject, Items: []client.MenuItem{
					{Label: "alpha", Image: "reg.io/p/app:1", Types: []string{"headless"}, Profile: "alpha"},
					{Label: "zeta", Image: "reg.io/p/app:1", Types: []string{"notebook"}, Profile: "zeta"},
				}},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Tree(tt.images)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Tree =\n%+v\nwant\n%+v", got, tt.want)
			}
			// The order of the input does not matter.
			rev := slices.Clone(tt.images)
			slices.Reverse(rev)
			if got := Tree(rev); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Tree(reversed) =\n%+v\nwant\n%+v", got, tt.want)
			}
		})
	}
}
