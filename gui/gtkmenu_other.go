//go:build !(desktop && linux)

package main

// setNativeMenu has no window to fill outside a desktop build.
func setNativeMenu(nodes []*menuNode, missing func()) {}

// webkitVersion is unknown outside a desktop build.
func webkitVersion() string { return "unknown" }
