#!/usr/bin/env bash
# Builds the app's image: `scripts/build-image.sh [TAG] [docker build options...]`
# (TAG defaults to jobprep-release).
#
# On a machine whose containers reach the package index this is just `docker build -t TAG .`.
# Where they cannot (no route, or HTTPS through a network certificate authority that containers
# do not trust), the app's Python dependencies are fetched as wheels on the host (`pip wheel`,
# with the host's trust store) into a directory of the build context and the build installs from
# there (--build-arg WHEELS=...); TLS checks stay on everywhere and nothing of the host's trust
# store reaches the image. The choice is made by asking the image's own Python for the index;
# JOBPREP_IMAGE_WHEELS=1 forces host wheels, =0 forces the plain build.
# The host Python for the wheels: $PYTHON, else python3 (it must match the image's Python, 3.11).
set -euo pipefail
cd "$(dirname "$0")/.."
tag="${1:-jobprep-release}"
[ $# -gt 0 ] && shift
mode="${JOBPREP_IMAGE_WHEELS:-auto}"
index="${JOBPREP_IMAGE_INDEX_PROBE:-https://pypi.org/simple/pip/}"
say() { printf 'build-image: %s\n' "$*" >&2; }

# The engine and debian:bookworm-slim (pulled, or built from Debian's packages offline).
bash scripts/ensure-docker.sh

# The runtime stage (Debian's python3 and CA certificates) is the full build's first layer, so
# building it here costs nothing twice; its Python tells whether the index is reachable.
runtime=$(docker build -q --target runtime .)
index_reachable() {
  timeout 60 docker run --rm --entrypoint python3 "$runtime" -c \
    "import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=20).read(1)" \
    "$index" >/dev/null 2>&1
}

wheels=""
if [ "$mode" = 1 ] || { [ "$mode" = auto ] && ! index_reachable; }; then
  python="${PYTHON:-python3}"
  want=$(docker run --rm --entrypoint python3 "$runtime" -c \
    'import sys; print("%d.%d" % sys.version_info[:2])')
  have=$("$python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
  if [ "$want" != "$have" ]; then
    say "the image's Python is $want but $python is $have; set PYTHON to a python$want."
    exit 1
  fi
  wheels=".image-wheels/$$"
  trap 'rm -rf "$wheels"; rmdir .image-wheels 2>/dev/null || true' EXIT
  say "containers cannot reach the package index: fetching wheels on the host into $wheels"
  mapfile -t requirements < <("$python" - <<'PY'
import tomllib

with open("pyproject.toml", "rb") as file:
    project = tomllib.load(file)
for requirement in [*project["build-system"]["requires"], *project["project"]["dependencies"]]:
    print(requirement)
PY
)
  "$python" -m pip wheel -q --disable-pip-version-check --wheel-dir "$wheels" "${requirements[@]}"
fi

say "building $tag${wheels:+ (dependencies from host-built wheels)}"
docker build -t "$tag" ${wheels:+--build-arg "WHEELS=$wheels"} "$@" .
size=$(docker image inspect -f '{{.Size}}' "$tag")
say "built $tag: $((size / 1000000)) MB"
