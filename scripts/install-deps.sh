#!/usr/bin/env bash
# Installs everything insitu needs to build and test, from Debian's archive. Idempotent: packages
# already present are left alone, and apt is not touched when nothing is missing.
set -euo pipefail

packages=(
  build-essential cmake pkg-config git python3 python3-pip python3-venv ccache
  nlohmann-json3-dev libcli11-dev libfmt-dev libspdlog-dev libpcre2-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  libcpp-httplib-dev libtomlplusplus-dev libyaml-cpp-dev pybind11-dev
  clang libclang-rt-14-dev unzip ca-certificates
  chromium chromium-driver
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if ((${#missing[@]})); then
  echo "install-deps: installing ${missing[*]}" >&2
  if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
else
  echo "install-deps: all Debian packages present" >&2
fi
