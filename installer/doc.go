// Package installer builds Berth's Debian packages with nfpm used as a
// library (github.com/goreleaser/nfpm/v2, pinned at v2.45.2), so no debian/
// directory or dpkg-buildpackage is needed. `make deb` runs cmd/mkdeb.
//
// The berth package holds berthd (/usr/sbin), the berth CLI (/usr/bin),
// systemd/berthd.service, the default /etc/berth/config.toml (a conffile,
// every setting commented out at its default), bash completion generated
// by `berth completion bash`, man pages generated from the programs'
// --help, and docs/operations.md. Its maintainer scripts (files/postinst,
// prerm, postrm) are debhelper's systemd snippets plus the berth group
// (postinst) and the removal of /var/lib/berth on purge (postrm).
//
// The berth-desktop package holds the Wails app (/usr/bin/berth-desktop,
// built with cgo against GTK 3 and WebKitGTK 4.1, so only for the build
// machine's architecture), its man page, desktop entry
// (build/berth-desktop.desktop), icons (build/berth-desktop.svg and the
// 256x256 build/appicon.png in the hicolor theme) and the XDG autostart
// entry systemd/berth-desktop-autostart.desktop as the conffile
// /etc/xdg/autostart/berth-desktop.desktop. Its Depends come from
// dpkg-shlibdeps, plus berth of the same version; its maintainer scripts
// (files/desktop-postinst, desktop-postrm) refresh the icon cache and the
// desktop database when those tools are installed.
//
// Versions come from git describe (GitVersion, VersionFromDescribe).
//
// Each package is one entry of specs.
//
// The tests build the packages twice (two versions), check their metadata,
// run lintian and systemd-analyze, and, as root, install, upgrade and purge
// them in a mmdebstrap'd Debian root (berth-desktop with its GTK and
// WebKitGTK dependencies fetched from the Debian mirror), then boot such a
// root with systemd-nspawn to test berthd.service under a real systemd. See
// docs/operations.md, "Building and testing the package".
package installer
