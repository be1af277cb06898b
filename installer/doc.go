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
// Versions come from git describe (GitVersion, VersionFromDescribe).
//
// Each package is one entry of specs; berth-desktop will be the next one
// (see DefaultPackages).
//
// The tests build the package twice (two versions), check its metadata,
// run lintian and systemd-analyze, and, as root, install, upgrade and purge
// it in a mmdebstrap'd Debian root, then boot such a root with
// systemd-nspawn to test berthd.service under a real systemd. See
// docs/operations.md, "Building and testing the package".
package installer
