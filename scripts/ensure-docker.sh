#!/usr/bin/env bash
# Makes a Docker engine reachable and the node image present, installing what is missing.
#
# Order of preference: an engine that already answers (DOCKER_HOST or the default socket); on a
# Debian/Ubuntu machine run as root with no engine, docker.io installed and dockerd started in the
# background. The node image (default debian:bookworm-slim) is pulled; when no registry is
# reachable it is built from Debian's packages with debootstrap and `docker import`.
set -euo pipefail

image="${1:-debian:bookworm-slim}"
say() { printf 'ensure-docker: %s\n' "$*" >&2; }

engine_up() { docker info >/dev/null 2>&1; }

if ! engine_up; then
  if ! command -v dockerd >/dev/null 2>&1; then
    if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
      say "no Docker engine answers and I can only install one as root on Debian/Ubuntu."
      say "fix: install Docker (https://docs.docker.com/engine/install/) and start it, then retry."
      exit 1
    fi
    say "installing docker.io"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io >/dev/null
  fi
  if ! engine_up; then
    say "starting dockerd (log: /var/log/jobprep-dockerd.log)"
    nohup dockerd >/var/log/jobprep-dockerd.log 2>&1 &
    # Tests that restart the engine do so only when this script started it.
    echo $! >/run/jobprep-dockerd.pid
    for _ in $(seq 1 120); do
      engine_up && break
      sleep 0.5
    done
    engine_up || { say "dockerd did not come up; see /var/log/jobprep-dockerd.log"; exit 1; }
  fi
fi

if ! docker image inspect "$image" >/dev/null 2>&1; then
  if ! timeout 120 docker pull -q "$image" >/dev/null 2>&1; then
    case "$image" in
      debian:bookworm-slim)
        say "no registry reachable: building $image from Debian's packages (debootstrap)"
        if ! command -v debootstrap >/dev/null 2>&1; then
          apt-get update -qq
          DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
        fi
        root=$(mktemp -d)
        trap 'rm -rf "$root"' EXIT
        debootstrap --variant=minbase bookworm "$root" >/dev/null
        rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
        tar -C "$root" -c . | docker import -c 'CMD ["bash"]' - "$image" >/dev/null
        ;;
      *)
        say "the image $image is absent and cannot be pulled; build or load it, then retry."
        exit 1
        ;;
    esac
  fi
fi
say "engine ready, image $image present"
