#!/usr/bin/env bash
# Installs what the test suite needs beyond Go: a running Docker engine and
# the command-line tools the documentation examples use.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)

missing=()
for tool in curl md5sum; do
  command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq curl coreutils >/dev/null
fi
"$here/ensure-docker.sh"
