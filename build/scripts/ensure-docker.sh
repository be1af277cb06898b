#!/usr/bin/env bash
# Makes sure a Docker engine answers on this machine: installs Debian's
# docker.io when there is none, and starts dockerd when it is not running
# (through systemd when systemd is PID 1, directly otherwise).
set -euo pipefail

log() { printf 'ensure-docker: %s\n' "$*" >&2; }

if docker info >/dev/null 2>&1; then
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
    log "Docker is not running and this script needs root to install or start it."
    exit 1
  fi
fi

if ! command -v dockerd >/dev/null 2>&1; then
  log "installing docker.io from Debian"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq docker.io >/dev/null
fi

if [ "$(ps -o comm= -p 1)" = "systemd" ]; then
  log "starting docker.service"
  $SUDO systemctl start docker
else
  if ! pgrep -x dockerd >/dev/null; then
    log "starting dockerd (log: /var/log/dockerd.log)"
    $SUDO sh -c 'nohup setsid dockerd >/var/log/dockerd.log 2>&1 </dev/null &'
  fi
fi

for _ in $(seq 1 60); do
  if docker info >/dev/null 2>&1; then
    log "Docker $(docker version --format '{{.Server.Version}}') is running"
    exit 0
  fi
  sleep 0.5
done
log "dockerd did not come up; see /var/log/dockerd.log"
exit 1
