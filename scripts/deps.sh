#!/usr/bin/env bash
# Installs the Debian/Ubuntu packages gradlab needs, only those that are missing (idempotent).
# Runs apt-get as root, or through sudo when run by a user.
set -euo pipefail
if [ "$(uname -s)" = Darwin ]; then
  echo "deps: this script installs Debian/Ubuntu packages; on macOS use the Homebrew commands in README.md (Platforms)" >&2
  exit 1
fi
packages=(cmake g++ make doctest-dev libstb-dev nlohmann-json3-dev fonts-dejavu-core libbenchmark-dev "$@")
missing=()
for p in "${packages[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "deps: all packages present (${packages[*]})"
  exit 0
fi
echo "deps: installing ${missing[*]}"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "deps: need root or sudo to install: ${missing[*]}" >&2; exit 1; }
  SUDO="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" </dev/null
