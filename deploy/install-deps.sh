#!/usr/bin/env bash
# install-deps.sh - install the Debian 12 packages wardgate needs to build and test.
#
# Idempotent: checks every package with dpkg-query and only when something is missing
# runs `apt-get update` and `apt-get install --no-install-recommends` for the missing
# ones. Exits 0 when everything is installed, non-zero with a message otherwise.
#
# Usage: deploy/install-deps.sh [--check]
#   --check   only report missing packages (exit 1 if any), install nothing

set -euo pipefail

readonly PROG=${0##*/}

# Build: compilers, meson/ninja, DPDK, Hyperscan, eBPF/XDP, gRPC/protobuf, test and
# bench frameworks, libraries the data and control plane link.
readonly BUILD_PACKAGES=(
  build-essential g++ clang libclang-rt-14-dev meson ninja-build pkg-config
  dpdk dpdk-dev libdpdk-dev
  libhyperscan-dev libbpf-dev libxdp-dev
  libabsl-dev libgrpc++-dev protobuf-compiler protobuf-compiler-grpc libprotobuf-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  libpcap-dev libsqlite3-dev libyaml-cpp-dev nlohmann-json3-dev libpcre2-dev libssl-dev
)
# Test and run: clinical protocol peers (DICOM, HL7), packet tools, the simulated ward.
readonly RUN_PACKAGES=(
  dcmtk python3-hl7 python3-scapy python3-grpcio python3-yaml
  tshark tcpreplay nmap
  ethtool iproute2 jq curl openssl procps iputils-ping
)

die() { printf '%s: error: %s\n' "$PROG" "$*" >&2; exit 1; }

installed() {  # PKG -> 0 if dpkg says "installed" (any architecture)
  dpkg-query -W -f='${db:Status-Status}\n' "$1" 2>/dev/null | grep -qx installed
}

missing_packages() {
  local p
  for p in "${BUILD_PACKAGES[@]}" "${RUN_PACKAGES[@]}"; do
    installed "$p" || printf '%s\n' "$p"
  done
}

main() {
  local check_only=no
  case ${1:-} in
    "") ;;
    --check) check_only=yes ;;
    -h|--help) sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) printf 'Usage: %s [--check]\n' "$PROG" >&2; exit 2 ;;
  esac

  command -v dpkg-query >/dev/null || die "dpkg-query not found: this script is for Debian 12"

  local -a missing
  mapfile -t missing < <(missing_packages)
  if ((${#missing[@]} == 0)); then
    echo "$PROG: all $((${#BUILD_PACKAGES[@]} + ${#RUN_PACKAGES[@]})) packages are installed"
    exit 0
  fi
  echo "$PROG: missing: ${missing[*]}"
  [[ $check_only == no ]] || exit 1

  [[ $EUID -eq 0 ]] || die "must run as root to install packages (try: sudo $0)"
  command -v apt-get >/dev/null || die "apt-get not found"

  export DEBIAN_FRONTEND=noninteractive
  # tshark pulls in wireshark-common, which otherwise asks whether non-root users may
  # capture packets.
  echo "wireshark-common wireshark-common/install-setuid boolean false" | debconf-set-selections \
    || die "debconf-set-selections failed (is the debconf package installed?)"

  echo "$PROG: apt-get update"
  apt-get update -q || die "apt-get update failed: check the apt sources and the network"

  echo "$PROG: installing: ${missing[*]}"
  apt-get install -y -q --no-install-recommends \
    -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold "${missing[@]}" \
    || die "apt-get install failed for: ${missing[*]}"

  mapfile -t missing < <(missing_packages)
  ((${#missing[@]} == 0)) || die "still missing after install: ${missing[*]}"
  echo "$PROG: done, all packages are installed"
}

main "$@"
