#!/usr/bin/env bash
# Installs what the test suite needs beyond Go: a running Docker engine, the
# command-line tools the documentation examples use, and the packaging tools
# of the installer/ tests (lintian, dpkg-dev, mmdebstrap, systemd-nspawn,
# systemd-analyze, man).
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
)
missing=()
for tool in "${!pkg_of[@]}"; do
  command -v "$tool" >/dev/null 2>&1 || missing+=("${pkg_of[$tool]}")
done
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  # shellcheck disable=SC2046
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
    $(printf '%s\n' "${missing[@]}" | sort -u) >/dev/null
fi
"$here/ensure-docker.sh"
