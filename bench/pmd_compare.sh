#!/usr/bin/env bash
# Forwarding through PMDs, side by side in one run: dpdk-testpmd --forward-mode=mac
# --tx-first and wardgate's worker loop (bench/pmd_forward), each on one worker core
# between the same two net_ring vdevs. testpmd only swaps MAC addresses, so it marks
# the ceiling of DPDK forwarding on this machine; wardgate also parses every header
# and keeps its counters. Run on an otherwise idle machine:
#   bench/pmd_compare.sh [SECONDS=5] [BUILD=build]
set -euo pipefail
SECONDS_RUN=${1:-5}
BUILD=${2:-$(cd "$(dirname "$0")/.." && pwd)/build}
LOG=$(mktemp /tmp/wg-testpmd.XXXXXX)
trap 'rm -f "$LOG"' EXIT

# testpmd's non-interactive mode prints stats every period until SIGINT.
timeout -s INT $((SECONDS_RUN + 2)) dpdk-testpmd -l 0-1 --no-huge -m 1024 --no-shconf --no-pci \
  --vdev=net_ring0 --vdev=net_ring1 --file-prefix="wg-testpmd-$$" --log-level=lib.eal:error -- \
  --forward-mode=mac --tx-first --stats-period=1 --nb-cores=1 --total-num-mbufs=16384 >"$LOG" 2>&1 || true
# The last full stats block: one Rx-pps line per port.
testpmd_pps=$(grep -E '^ +Rx-pps:' "$LOG" | tail -2 | awk '{s += $2} END {print s + 0}')
[[ $testpmd_pps -gt 0 ]] || { echo "testpmd produced no rate:" >&2; tail -20 "$LOG" >&2; exit 1; }

wardgate_json=$("$BUILD/bench/pmd_forward" --seconds "$SECONDS_RUN" --inject 32 --size 64 2>/dev/null | tail -1)
wardgate_mpps=$(jq -r .mpps <<<"$wardgate_json")

awk -v t="$testpmd_pps" -v w="$wardgate_mpps" 'BEGIN {
  printf "%-34s %10s\n", "engine (1 worker core, net_ring x2)", "Mpps"
  printf "%-34s %10.2f\n", "dpdk-testpmd --forward-mode=mac", t / 1e6
  printf "%-34s %10.2f\n", "wardgate worker (parse+counters)", w
  printf "%-34s %9.0f%%\n", "wardgate / testpmd", 100 * w / (t / 1e6)
}'
echo "wardgate: $wardgate_json"
