#!/usr/bin/env bash
# hugepages.sh - reserve 2 MiB hugepages for DPDK and report them.
#
#   hugepages.sh reserve [N]   ask the kernel for N (default 512) 2 MiB hugepages in
#                              total and mount hugetlbfs at /dev/hugepages if nothing is
#                              mounted there; prints how many it got. Exits 0 even if it
#                              got fewer (or none, e.g. in a container): wardgate's
#                              `eal.hugepages: auto` then falls back to --no-huge.
#   hugepages.sh status        prints free/total 2 MiB hugepages and the mount.
#
# Only raises the reservation (never lowers one someone else made).

set -euo pipefail

readonly PROG=${0##*/}
readonly SYSFS=/sys/kernel/mm/hugepages/hugepages-2048kB
readonly MOUNTPOINT=/dev/hugepages

usage() {
  cat <<EOF
Usage: $PROG reserve [N]   reserve N (default 512) 2 MiB hugepages, mount $MOUNTPOINT
       $PROG status        print free/total 2 MiB hugepages
EOF
}

warn() { printf '%s: warning: %s\n' "$PROG" "$*" >&2; }
die()  { printf '%s: error: %s\n' "$PROG" "$*" >&2; exit 1; }

read_count() { cat "$SYSFS/$1" 2>/dev/null || echo 0; }

hugetlbfs_mounted() {  # DIR
  findmnt -n -t hugetlbfs -M "$1" >/dev/null 2>&1
}

status() {
  if [[ ! -d $SYSFS ]]; then
    echo "2 MiB hugepages: not supported by this kernel"
    return 0
  fi
  local mounts
  mounts=$(findmnt -n -t hugetlbfs -o TARGET 2>/dev/null | paste -sd' ' - || true)
  echo "2 MiB hugepages: $(read_count free_hugepages) free / $(read_count nr_hugepages) total"
  echo "hugetlbfs: ${mounts:-not mounted}"
}

reserve() {  # N
  local want=$1 have got
  [[ $want =~ ^[0-9]+$ ]] || die "N must be a number of 2 MiB pages, got '$want'"
  [[ $EUID -eq 0 ]] || die "must run as root"
  if [[ ! -d $SYSFS ]]; then
    warn "this kernel has no 2 MiB hugepages; DPDK will need --no-huge"
    echo "got 0 of $want 2 MiB hugepages"
    return 0
  fi

  have=$(read_count nr_hugepages)
  if ((have < want)); then
    # The kernel may grant fewer than asked (fragmented memory) or refuse the write
    # (read-only sysfs in a container); either way we report what is there.
    if ! { echo "$want" >"$SYSFS/nr_hugepages"; } 2>/dev/null; then
      warn "could not write $SYSFS/nr_hugepages (read-only sysfs or no permission)"
    fi
  fi
  got=$(read_count nr_hugepages)

  if ((got > 0)) && ! hugetlbfs_mounted "$MOUNTPOINT"; then
    mkdir -p "$MOUNTPOINT" 2>/dev/null || true
    mount -t hugetlbfs -o pagesize=2M nodev "$MOUNTPOINT" 2>/dev/null \
      || warn "could not mount hugetlbfs at $MOUNTPOINT"
  fi

  echo "got $got 2 MiB hugepages (asked for $want), $(read_count free_hugepages) free"
  ((got >= want)) || warn "fewer hugepages than asked; wardgate with 'hugepages: auto' falls back to --no-huge when none are free"
  return 0
}

case ${1:-} in
  reserve)
    (($# <= 2)) || { usage >&2; exit 2; }
    reserve "${2:-512}"
    ;;
  status)
    (($# == 1)) || { usage >&2; exit 2; }
    status
    ;;
  -h|--help|help) usage ;;
  *) usage >&2; exit 2 ;;
esac
