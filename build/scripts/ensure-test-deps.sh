#!/usr/bin/env bash
# Installs what the test suite needs beyond Go: a running Docker engine, the
# command-line tools the documentation examples use, and the packaging tools
# of the installer/ tests (lintian, dpkg-dev, mmdebstrap, systemd-nspawn,
# systemd-analyze, man), and what the session tests run: Xvfb and xwininfo
# for desktop-app sessions, a static busybox for their FROM scratch
# test image, and Chromium for the web UI's browser tests; for berth-desktop
# (gui/): gcc, pkg-config and the GTK 3 and WebKitGTK 4.1 headers to build it,
# xwd for its screenshots, xauth and dbus-daemon for its X cookie and
# single-instance tests, desktop-file-validate for its desktop entries.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)

# command -> Debian package
declare -A pkg_of=(
  [curl]=curl
  [md5sum]=coreutils
  [lintian]=lintian
  [dpkg-deb]=dpkg
  [dpkg-architecture]=dpkg-dev
  [mmdebstrap]=mmdebstrap
  [systemd-nspawn]=systemd-container
  [systemd-analyze]=systemd
  [man]=man-db
  [nsenter]=util-linux
  [runuser]=util-linux
  [Xvfb]=xvfb
  [xwininfo]=x11-utils
  [chromium]=chromium
  [gcc]=gcc
  [pkg-config]=pkg-config
  [xwd]=x11-apps
  [xauth]=xauth
  [dbus-daemon]=dbus-daemon
  [desktop-file-validate]=desktop-file-utils
)
missing=()
for tool in "${!pkg_of[@]}"; do
  command -v "$tool" >/dev/null 2>&1 || missing+=("${pkg_of[$tool]}")
done
# The session tests copy /bin/busybox into an image FROM scratch: it must
# be the static build.
dpkg -s busybox-static >/dev/null 2>&1 || missing+=(busybox-static)
# berth-desktop links GTK 3 and WebKitGTK 4.1 (cgo).
for dev in libgtk-3-dev libwebkit2gtk-4.1-dev; do
  dpkg -s "$dev" >/dev/null 2>&1 || missing+=("$dev")
done
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  # shellcheck disable=SC2046
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
    $(printf '%s\n' "${missing[@]}" | sort -u) >/dev/null
fi
"$here/ensure-docker.sh"
