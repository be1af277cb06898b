package main

import (
	"cmp"
	"fmt"
	"slices"
	"strings"

	"github.com/berth-edge/berth/daemon/client"
)

// menuNode is one entry of the native menu bar: a submenu (Children), an
// action (Action), a separator, or a disabled line of text. buildMenu
// produces the tree from data alone; the desktop layer turns it into GTK
// widgets.
type menuNode struct {
	Label     string
	Children  []*menuNode
	Action    func()
	Disabled  bool
	Separator bool
}

// menuData is what the menu shows.
type menuData struct {
	// Catalog is GET /api/v1/menu; CatalogErr why it could not be read.
	Catalog    []client.MenuProject
	CatalogErr string
	// Sessions is GET /api/v1/session, Apps GET /api/v1/apps.
	Sessions []client.Session
	Apps     []client.App
	AppsErr  string
	// Loading is true before the first refresh.
	Loading bool
}

// menuActions are what choosing an entry does.
type menuActions interface {
	// launchItem starts item as a session of type typ.
	launchItem(item client.MenuItem, typ string)
	// open opens url in the default browser.
	open(url string)
	// refreshMenu reloads the menu's data.
	refreshMenu()
	// about shows the versions.
	about()
	// quit ends the program.
	quit()
}

// Top-level menu labels.
const (
	menuBerth    = "Berth"
	menuSoftware = "Astro Software"
	menuApps     = "Apps"
	menuHelp     = "Help"
)

// buildMenu is the menu bar for d: Berth (refresh, quit), Astro Software →
// project → name:tag (→ type, when an image offers several), Apps (the
// caller's sessions and every other app, opening their connect URLs) and
// Help → About.
func buildMenu(d menuData, a menuActions) []*menuNode {
	return []*menuNode{
		{Label: menuBerth, Children: []*menuNode{
			{Label: "Refresh menus", Action: a.refreshMenu},
			{Separator: true},
			{Label: "Quit", Action: a.quit},
		}},
		{Label: menuSoftware, Children: softwareMenu(d, a)},
		{Label: menuApps, Children: appsMenu(d, a)},
		{Label: menuHelp, Children: []*menuNode{
			{Label: "About Berth Desktop", Action: a.about},
		}},
	}
}

func note(label string) *menuNode { return &menuNode{Label: label, Disabled: true} }

func softwareMenu(d menuData, a menuActions) []*menuNode {
	switch {
	case d.Loading:
		return []*menuNode{note("Loading…")}
	case d.CatalogErr != "":
		return []*menuNode{note(oneLine(d.CatalogErr))}
	case len(d.Catalog) == 0:
		return []*menuNode{note("No software in the catalog")}
	}
	var out []*menuNode
	for _, p := range d.Catalog {
		proj := &menuNode{Label: p.Name}
		for _, it := range p.Items {
			proj.Children = append(proj.Children, itemNode(it, a))
		}
		if len(proj.Children) == 0 {
			proj.Children = []*menuNode{note("No images")}
		}
		out = append(out, proj)
	}
	return out
}

// itemNode is one catalog entry: launching it directly when it has one
// type, a submenu of its types otherwise.
func itemNode(it client.MenuItem, a menuActions) *menuNode {
	types := sortedTypes(it.Types)
	switch len(types) {
	case 0:
		return note(it.Label + " (no session type)")
	case 1:
		typ := types[0]
		return &menuNode{Label: it.Label, Action: func() { a.launchItem(it, typ) }}
	}
	n := &menuNode{Label: it.Label}
	for _, typ := range types {
		n.Children = append(n.Children, &menuNode{Label: typ, Action: func() { a.launchItem(it, typ) }})
	}
	return n
}

// sortedTypes orders types as client.SessionTypes does (unknown types
// last, by name) and drops duplicates.
func sortedTypes(types []string) []string {
	rank := func(t string) int {
		if i := slices.Index(client.SessionTypes, t); i >= 0 {
			return i
		}
		return len(client.SessionTypes)
	}
	out := slices.Clone(types)
	slices.SortFunc(out, func(x, y string) int { return cmp.Or(cmp.Compare(rank(x), rank(y)), cmp.Compare(x, y)) })
	return slices.Compact(out)
}

func appsMenu(d menuData, a menuActions) []*menuNode {
	if d.Loading {
		return []*menuNode{note("Loading…")}
	}
	var out []*menuNode
	for _, s := range d.Sessions {
		label := fmt.Sprintf("%s (%s, %s)", cmp.Or(s.Name, s.ID), s.Type, s.Status)
		n := &menuNode{Label: label}
		if url := s.ConnectURL; url != "" && s.Status == client.StatusRunning {
			n.Action = func() { a.open(url) }
		} else {
			n.Disabled = true
		}
		out = append(out, n)
	}
	var others []*menuNode
	for _, app := range d.Apps {
		if app.Kind == "session" {
			continue // listed above, with their connect URLs
		}
		label := fmt.Sprintf("%s (%s)", cmp.Or(app.Name, app.ID), app.State)
		n := &menuNode{Label: label}
		names := make([]string, 0, len(app.URLs))
		for name := range app.URLs {
			names = append(names, name)
		}
		slices.Sort(names)
		switch len(names) {
		case 0:
			n.Disabled = true
		case 1:
			url := app.URLs[names[0]]
			n.Action = func() { a.open(url) }
		default:
			for _, name := range names {
				url := app.URLs[name]
				n.Children = append(n.Children, &menuNode{Label: name, Action: func() { a.open(url) }})
			}
		}
		others = append(others, n)
	}
	if len(out) > 0 && len(others) > 0 {
		out = append(out, &menuNode{Separator: true})
	}
	out = append(out, others...)
	if d.AppsErr != "" {
		out = append(out, note(oneLine(d.AppsErr)))
	} else if len(out) == 0 {
		out = append(out, note("No running apps"))
	}
	return out
}

// oneLine shortens an error for a menu entry.
func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); len(r) > 90 {
		s = string(r[:89]) + "…"
	}
	return s
}

// menuLabel is the JSON form of a menu tree (the BERTH_DESKTOP_MENU_DUMP
// hook and the tests).
type menuLabel struct {
	Label    string      `json:"label"`
	Disabled bool        `json:"disabled,omitempty"`
	Items    []menuLabel `json:"items,omitempty"`
}

// menuLabels returns the labels of a tree; separators are "-".
func menuLabels(nodes []*menuNode) []menuLabel {
	out := make([]menuLabel, 0, len(nodes))
	for _, n := range nodes {
		l := menuLabel{Label: n.Label, Disabled: n.Disabled, Items: menuLabels(n.Children)}
		if n.Separator {
			l.Label = "-"
		}
		if len(l.Items) == 0 {
			l.Items = nil
		}
		out = append(out, l)
	}
	return out
}

// findNode follows a path of labels from the top of a tree.
func findNode(nodes []*menuNode, path ...string) *menuNode {
	var cur *menuNode
	for _, label := range path {
		i := slices.IndexFunc(nodes, func(n *menuNode) bool { return n.Label == label })
		if i < 0 {
			return nil
		}
		cur = nodes[i]
		nodes = cur.Children
	}
	return cur
}
