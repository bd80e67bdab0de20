#!/usr/bin/env bash
# The README's first command works and leaves nothing behind.
set -uo pipefail
source "$(dirname "$0")/../lib/ward.sh"
OUT=$(mktemp /tmp/wg-quickstart.XXXXXX)
trap 'rm -f "$OUT"' EXIT

run_quickstart() { "$REPO/deploy/quickstart.sh" --no-build >"$OUT" 2>&1 || { tail -30 "$OUT"; return 1; }; }
check "deploy/quickstart.sh succeeds" run_quickstart
check "quickstart: HL7, DICOM and ping steps reported ok" bash -c \
  "grep -qi 'hl7.*ok\|ok.*hl7' '$OUT' && grep -qi 'echo.*ok\|ok.*echo' '$OUT' && grep -qi 'ping.*ok\|ok.*ping' '$OUT'"
check "quickstart: the zone policy denied the office's Telnet to the pump" \
  grep -qE 'ok +policy +workstation .* denied' "$OUT"
check "quickstart: the isolated pump's HL7 got no answer, and did after the release" bash -c \
  "grep -qE 'ok +quarantine +isolated pump' '$OUT' && grep -qE 'ok +release +pump -> ehr' '$OUT'"
check "quickstart: printed the gateway's port table" grep -q "net_af_packet0" "$OUT"
check "quickstart: final counters show no leaked mbuf" grep -q '"mbufs_in_use_at_exit": 0' "$OUT"
check "quickstart: no ward namespace left" bash -c "! ip netns list | grep -q '^wg-'"
check "quickstart: no wardgate-dp left running" bash -c "! pgrep -x wardgate-dp"
finish
