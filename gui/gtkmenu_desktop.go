//go:build desktop && linux

package main

/*
#cgo linux pkg-config: gtk+-3.0
#cgo linux,webkit2_41 pkg-config: webkit2gtk-4.1
#cgo linux,!webkit2_41 pkg-config: webkit2gtk-4.0
#include <stdlib.h>
#include "gtkmenu.h"
*/
import "C"

import (
	"fmt"
	"sync"
	"unsafe"
)

// gtkMenu holds the tree waiting to be shown and the actions of the one
// shown, by the id its GTK items carry.
var gtkMenu struct {
	mu      sync.Mutex
	pending []*menuNode
	has     bool
	actions map[int]func()
	// missing is called when the window has no menu bar to fill.
	missing func()
}

// setNativeMenu shows nodes in the window's menu bar, on GTK's main
// thread.
func setNativeMenu(nodes []*menuNode, missing func()) {
	gtkMenu.mu.Lock()
	gtkMenu.pending, gtkMenu.has, gtkMenu.missing = nodes, true, missing
	gtkMenu.mu.Unlock()
	C.berth_schedule_rebuild()
}

//export berthMenuRebuild
func berthMenuRebuild() C.int {
	gtkMenu.mu.Lock()
	nodes, has, missing := gtkMenu.pending, gtkMenu.has, gtkMenu.missing
	gtkMenu.pending, gtkMenu.has = nil, false
	gtkMenu.mu.Unlock()
	if !has {
		return 0
	}
	bar := C.berth_find_menubar()
	if bar == nil {
		if missing != nil {
			go missing()
		}
		return 0
	}
	C.berth_clear(bar)
	actions := map[int]func(){}
	for _, n := range nodes {
		C.berth_append(bar, gtkItem(n, actions))
	}
	C.berth_show_all(bar)
	gtkMenu.mu.Lock()
	gtkMenu.actions = actions
	gtkMenu.mu.Unlock()
	return 1
}

// gtkItem builds the GTK widget of n (and its submenu), registering its
// action under a new id.
func gtkItem(n *menuNode, actions map[int]func()) *C.GtkWidget {
	if n.Separator {
		return C.berth_separator()
	}
	id := -1
	if n.Action != nil && !n.Disabled {
		id = len(actions)
		actions[id] = n.Action
	}
	label := C.CString(n.Label)
	defer C.free(unsafe.Pointer(label))
	disabled := 0
	if n.Disabled {
		disabled = 1
	}
	it := C.berth_item(label, C.int(id), C.int(disabled))
	if len(n.Children) > 0 {
		sub := C.berth_menu()
		for _, c := range n.Children {
			C.berth_append(sub, gtkItem(c, actions))
		}
		C.berth_set_submenu(it, sub)
	}
	return it
}

//export berthMenuActivated
func berthMenuActivated(id C.int) {
	gtkMenu.mu.Lock()
	fn := gtkMenu.actions[int(id)]
	gtkMenu.mu.Unlock()
	if fn != nil {
		go fn() // never block GTK's main loop
	}
}

// webkitVersion is the WebKitGTK library's version at run time.
func webkitVersion() string {
	var major, minor, micro C.uint
	C.berth_webkit_version(&major, &minor, &micro)
	return fmt.Sprintf("%d.%d.%d", major, minor, micro)
}
