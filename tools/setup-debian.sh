#!/usr/bin/env bash
# Installs the Debian packages pkit needs to build and test, if any is missing.
# Safe to run repeatedly: does nothing (and needs no network) when all are present.
set -euo pipefail

packages=(
  cmake
  make
  g++
  libboost-test-dev
  libcaf-dev
  libssl-dev
  openssl
  libtomlplusplus-dev
  libcli11-dev
  libfmt-dev
  libbenchmark-dev
  libspdlog-dev
  nlohmann-json3-dev
  pkg-config
)

if ! command -v dpkg-query >/dev/null 2>&1; then
  echo "setup-debian.sh: not a Debian-based system; make sure these are installed:" >&2
  echo "  ${packages[*]}" >&2
  exit 0
fi

missing=()
for pkg in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$pkg")
  fi
done

if [ "${#missing[@]}" -eq 0 ]; then
  exit 0
fi

echo "setup-debian.sh: installing ${missing[*]}" >&2
sudo=()
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then
    sudo=(sudo)
  else
    echo "setup-debian.sh: missing packages and not root (no sudo): ${missing[*]}" >&2
    exit 1
  fi
fi

export DEBIAN_FRONTEND=noninteractive
# Wait for another apt/dpkg run to finish instead of failing on its lock.
apt_opts=(-o DPkg::Lock::Timeout=600)
"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get "${apt_opts[@]}" update -qq
"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
  apt-get "${apt_opts[@]}" install -y -qq --no-install-recommends "${missing[@]}"
