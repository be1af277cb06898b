// Package menu turns the image catalog into the desktop's
// "Astro Software → project → name:tag" menu tree. It is pure (no I/O) and
// public, so the Wails GUI, the CLI (berth images --tree) and berthd's
// GET /menu all build the same tree from the same []client.Image.
//
// # Projects
//
// An image id is split the way Docker splits a reference: the first path
// component is a registry host when it contains a "." or a ":" or is
// "localhost"; otherwise the reference has no host (Docker Hub or a local
// name). The project is the first path component after the host, and the
// item label is the rest of the path with its tag:
//
//	images.example.org/skaha/terminal:1.1.2      → skaha      terminal:1.1.2
//	host:5000/proj/sub/name:1                     → proj       sub/name:1
//	library/x:1                                   → library    x:1
//	berth-testapp:test                            → library    berth-testapp:test
//	127.0.0.1:5000/testapp:v1                     → library    testapp:v1
//
// Skaha's build-menu.sh takes parts[1] as the project and parts[2] as the
// name, dropping deeper components; berth keeps them in the label, so two
// images never share one. A path with a single component has no project of
// its own and goes to "library", Docker's name for top-level repositories.
// A reference without a tag gets "latest"; a digest (@sha256:...) is not
// part of the label.
//
// Entries that launch an admin profile (client.Image.Profile set) are
// grouped in the project "Profiles" (registry projects are lower-case, so
// it never merges with one), labelled with the profile's name, and that
// project comes last.
//
// # Order
//
// Projects are sorted by name. Items are sorted by name (the label without
// its tag), then by tag compared as versions (CompareTags): 1.9 before 1.10,
// "v1.2" equal in rank to "1.2", a pre-release such as 1.2.0-rc1 before
// 1.2.0, and tags that are not versions at all (latest, dev, main) after
// every version, alphabetically among themselves.
package menu

import (
	"cmp"
	"slices"
	"strconv"
	"strings"

	"github.com/berth-edge/berth/daemon/client"
)

// ProfilesProject is the project that holds the entries launching admin
// profiles.
const ProfilesProject = "Profiles"

// DefaultProject holds repositories whose path has a single component.
const DefaultProject = "library"

// Ref is an image reference split for the menu.
type Ref struct {
	// Host is the registry host, "" when the reference has none.
	Host string
	// Project is the first path component after the host (DefaultProject
	// for single-component paths).
	Project string
	// Name is the rest of the path after the project.
	Name string
	// Tag is the tag, "latest" when the reference has none.
	Tag string
}

// Label is "name:tag", the menu item's text.
func (r Ref) Label() string { return r.Name + ":" + r.Tag }

// Split splits an image reference into host, project, name and tag (see
// the package documentation for the rules).
func Split(id string) Ref {
	s := id
	if i := strings.IndexByte(s, '@'); i >= 0 {
		s = s[:i]
	}
	tag := ""
	if i := strings.LastIndexByte(s, ':'); i >= 0 && !strings.Contains(s[i+1:], "/") {
		tag = s[i+1:]
		s = s[:i]
	}
	if tag == "" {
		tag = "latest"
	}
	parts := strings.Split(s, "/")
	var r Ref
	if len(parts) > 1 && isHost(parts[0]) {
		r.Host = parts[0]
		parts = parts[1:]
	}
	if len(parts) == 1 {
		r.Project = DefaultProject
		r.Name = parts[0]
	} else {
		r.Project = parts[0]
		r.Name = strings.Join(parts[1:], "/")
	}
	r.Tag = tag
	return r
}

// isHost applies Docker's rule: a first component is a registry host when
// it has a dot or a port, or is localhost.
func isHost(s string) bool {
	return strings.ContainsAny(s, ".:") || s == "localhost"
}

// Filter returns the images that have type typ, in their order; an empty
// typ returns every image.
func Filter(images []client.Image, typ string) []client.Image {
	out := make([]client.Image, 0, len(images))
	for _, im := range images {
		if typ == "" || slices.Contains(im.Types, typ) {
			out = append(out, im)
		}
	}
	return out
}

// Tree builds the menu: one MenuProject per project, sorted by name
// (Profiles last), each with its items sorted by name then version. The
// same image listed twice (by two sources) becomes one item whose types
// are the union of both. Tree never returns nil.
func Tree(images []client.Image) []client.MenuProject {
	type entry struct {
		ref  Ref
		item client.MenuItem
	}
	byProject := map[string][]*entry{}
	seen := map[string]*entry{}
	for _, im := range images {
		if im.ID == "" {
			continue
		}
		key := im.ID + "\x00" + im.Profile
		if e, ok := seen[key]; ok {
			e.item.Types = unionTypes(e.item.Types, im.Types)
			continue
		}
		ref := Split(im.ID)
		e := &entry{ref: ref, item: client.MenuItem{
			Label:   ref.Label(),
			Image:   im.ID,
			Types:   unionTypes(nil, im.Types),
			Profile: im.Profile,
		}}
		project := ref.Project
		if im.Profile != "" {
			project = ProfilesProject
			e.item.Label = im.Profile
		}
		seen[key] = e
		byProject[project] = append(byProject[project], e)
	}
	out := make([]client.MenuProject, 0, len(byProject))
	for name, entries := range byProject {
		slices.SortFunc(entries, func(a, b *entry) int {
			if a.item.Profile != "" || b.item.Profile != "" {
				return cmp.Or(cmp.Compare(a.item.Label, b.item.Label), cmp.Compare(a.item.Image, b.item.Image))
			}
			return cmp.Or(
				cmp.Compare(a.ref.Name, b.ref.Name),
				CompareTags(a.ref.Tag, b.ref.Tag),
				cmp.Compare(a.item.Image, b.item.Image))
		})
		p := client.MenuProject{Name: name, Items: make([]client.MenuItem, len(entries))}
		for i, e := range entries {
			p.Items[i] = e.item
		}
		out = append(out, p)
	}
	slices.SortFunc(out, func(a, b client.MenuProject) int {
		if (a.Name == ProfilesProject) != (b.Name == ProfilesProject) {
			if a.Name == ProfilesProject {
				return 1
			}
			return -1
		}
		return cmp.Compare(a.Name, b.Name)
	})
	return out
}

// unionTypes adds the types of add to have, without duplicates, ordered as
// client.SessionTypes (unknown types after, alphabetically).
func unionTypes(have, add []string) []string {
	out := slices.Clone(have)
	if out == nil {
		out = []string{}
	}
	for _, t := range add {
		if t != "" && !slices.Contains(out, t) {
			out = append(out, t)
		}
	}
	slices.SortFunc(out, func(a, b string) int {
		ia, ib := slices.Index(client.SessionTypes, a), slices.Index(client.SessionTypes, b)
		switch {
		case ia >= 0 && ib >= 0:
			return cmp.Compare(ia, ib)
		case ia >= 0:
			return -1
		case ib >= 0:
			return 1
		}
		return cmp.Compare(a, b)
	})
	return out
}

// version is a tag parsed for ordering.
type version struct {
	ok      bool     // the tag starts with a number (after an optional v)
	release []uint64 // 1.10.2 → [1 10 2]
	pre     []string // the pre-release identifiers ("rc1" → ["rc1"])
}

// parseVersion reads "v1.2.3-rc.1+build": an optional v, dot-separated
// numbers, then anything else as the pre-release (a leading "-", "." or "_"
// dropped), and build metadata ignored.
func parseVersion(tag string) version {
	s := tag
	if i := strings.IndexByte(s, '+'); i >= 0 {
		s = s[:i]
	}
	if len(s) > 1 && (s[0] == 'v' || s[0] == 'V') && isDigit(s[1]) {
		s = s[1:]
	}
	if s == "" || !isDigit(s[0]) {
		return version{}
	}
	var v version
	v.ok = true
	for {
		j := 0
		for j < len(s) && isDigit(s[j]) {
			j++
		}
		n, err := strconv.ParseUint(s[:j], 10, 64)
		if err != nil {
			n = ^uint64(0)
		}
		v.release = append(v.release, n)
		s = s[j:]
		if len(s) >= 2 && s[0] == '.' && isDigit(s[1]) {
			s = s[1:]
			continue
		}
		break
	}
	s = strings.TrimLeft(s, "-._")
	if s != "" {
		v.pre = strings.FieldsFunc(s, func(r rune) bool { return r == '.' || r == '-' || r == '_' })
	}
	return v
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// CompareTags orders two tags as versions: numeric components compared as
// numbers (1.9 < 1.10, missing components count as 0), a leading "v"
// ignored, a pre-release (1.2.0-rc1, 1.2.0rc1) before its release, and tags
// that do not start with a number (latest, dev) after every version,
// alphabetically among themselves. Tags of equal rank ("v1.2", "1.2",
// "1.2.0") are ordered by their text so the order is total.
func CompareTags(a, b string) int {
	va, vb := parseVersion(a), parseVersion(b)
	switch {
	case va.ok && !vb.ok:
		return -1
	case !va.ok && vb.ok:
		return 1
	case !va.ok && !vb.ok:
		return cmp.Compare(a, b)
	}
	n := max(len(va.release), len(vb.release))
	for i := range n {
		var x, y uint64
		if i < len(va.release) {
			x = va.release[i]
		}
		if i < len(vb.release) {
			y = vb.release[i]
		}
		if c := cmp.Compare(x, y); c != 0 {
			return c
		}
	}
	if c := comparePre(va.pre, vb.pre); c != 0 {
		return c
	}
	return cmp.Compare(a, b)
}

// comparePre orders pre-releases as semver does, with identifiers compared
// naturally (rc2 < rc10): none ranks above any.
func comparePre(a, b []string) int {
	switch {
	case len(a) == 0 && len(b) == 0:
		return 0
	case len(a) == 0:
		return 1
	case len(b) == 0:
		return -1
	}
	for i := range min(len(a), len(b)) {
		if c := naturalCompare(a[i], b[i]); c != 0 {
			return c
		}
	}
	return cmp.Compare(len(a), len(b))
}

// naturalCompare compares strings with runs of digits compared as numbers
// ("rc2" < "rc10"); a purely numeric identifier ranks below an alphanumeric
// one, as in semver.
func naturalCompare(a, b string) int {
	an, bn := allDigits(a), allDigits(b)
	if an != bn {
		if an {
			return -1
		}
		return 1
	}
	i, j := 0, 0
	for i < len(a) && j < len(b) {
		if isDigit(a[i]) && isDigit(b[j]) {
			si, sj := i, j
			for i < len(a) && isDigit(a[i]) {
				i++
			}
			for j < len(b) && isDigit(b[j]) {
				j++
			}
			x := strings.TrimLeft(a[si:i], "0")
			y := strings.TrimLeft(b[sj:j], "0")
			if c := cmp.Compare(len(x), len(y)); c != 0 {
				return c
			}
			if c := cmp.Compare(x, y); c != 0 {
				return c
			}
			continue
		}
		if c := cmp.Compare(a[i], b[j]); c != 0 {
			return c
		}
		i++
		j++
	}
	return cmp.Compare(len(a)-i, len(b)-j)
}

func allDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isDigit(s[i]) {
			return false
		}
	}
	return true
}
