#!/usr/bin/env bash
# Makes Node.js and npm available for the tests that run Azurite (Microsoft's Azure Storage
# emulator) and the JavaScript Batch SDK: when either is missing, on a Debian/Ubuntu machine run
# as root, Debian's nodejs and npm packages are installed. Elsewhere it says what to install and
# carries on: those tests then skip, saying why. The pinned Azurite itself is installed from the
# npm registry by the first test that needs it (jobprep_release/azurite.py), once per cache dir.
set -euo pipefail
say() { printf 'ensure-node: %s\n' "$*" >&2; }

if command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1; then
  exit 0
fi
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  say "Node.js or npm is missing and I can only install them as root on Debian/Ubuntu;"
  say "the Azurite and JavaScript SDK tests will skip (install nodejs and npm to run them)."
  exit 0
fi
say "installing nodejs and npm (Debian's packages)"
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null
