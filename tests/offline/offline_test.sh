#!/usr/bin/env bash
# Offline mode: captures in, the same frames out (byte for byte, same timestamps),
# counters that add up, and clear errors for bad input. Run as: tests/offline/offline_test.sh
set -uo pipefail
source "$(dirname "$0")/../lib/ward.sh"
DP=$WARDGATE_BUILD/wardgate-dp
PY=/usr/bin/python3
HERE=$(cd "$(dirname "$0")" && pwd)
SHARED=${SHARED:-$REPO/../shared}
WORK=$(mktemp -d /tmp/wg-offline.XXXXXX)
trap 'rm -rf "$WORK"' EXIT

# run_to FILE CMD...: CMD with stdout into FILE.
run_to() {
  local file=$1
  shift
  "$@" >"$file"
}

# same_frames NAME IN: run IN through wardgate-dp, compare output frames and counters.
same_frames() {
  local name=$1 in=$2 out=$WORK/$1.out.pcap json=$WORK/$1.json frames
  check "offline $name: exits 0" run_to "$json" "$DP" --pcap "$in" --pcap-out "$out"
  check "offline $name: same frames out" "$PY" "$HERE/compare_pcaps.py" "$in" "$out"
  frames=$(capinfos -Mc "$in" | awk '/Number of packets/ {print $NF}')
  check "offline $name: counted $frames in and out, no mbuf leaked" jq -e --argjson n "$frames" \
    '.ports[0].rx_packets == $n and .ports[1].tx_packets == $n and .mbufs_in_use_at_exit == 0' "$json"
}

"$PY" "$HERE/make_mix.py" "$WORK/mix.pcap"
same_frames mix "$WORK/mix.pcap"
check "offline mix: malformed frames counted by reason" jq -e \
  '.malformed.ipv4_truncated == 1 and .malformed.ipv4_bad_header_length == 1 and .malformed.udp_bad_length == 1' \
  "$WORK/mix.json"

# Real captures shipped in shared/ (FTP, HTTP auth, SMBv1, SNMP, UPnP, VNC, Suricata's cases).
if [[ -d $SHARED/data/captures ]]; then
  for f in "$SHARED"/data/captures/*.pcap "$SHARED"/conformance/suricata-verify/tests/*/*.pcap; do
    [[ -f $f ]] || continue
    [[ $(capinfos -ME "$f" 2>/dev/null | awk -F': *' '/encapsulation/ {print $2}') == ether ]] || continue
    same_frames "$(basename "$(dirname "$f")")-$(basename "$f" .pcap)" "$f"
  done
else
  echo "note: $SHARED/data/captures not found; real captures skipped" >&2
fi

# Without --pcap-out the frames are counted, not written.
check "offline without --pcap-out counts" bash -c "'$DP' --pcap '$WORK/mix.pcap' 2>/dev/null | jq -e '.ports[1].tx_packets == 18'"

# Errors: clear message and exit code, never a crash.
expect_exit() {  # expect_exit CODE PATTERN CMD...: exit code and a message on stderr
  local code=$1 pattern=$2 rc
  shift 2
  "$@" >/dev/null 2>"$WORK/err"
  rc=$?
  [[ $rc == "$code" ]] || { echo "exit $rc, expected $code: $(cat "$WORK/err")"; return 1; }
  grep -q -- "$pattern" "$WORK/err" || { echo "stderr lacks '$pattern': $(cat "$WORK/err")"; return 1; }
}
check "missing capture: exit 1, says so" expect_exit 1 "cannot read capture" "$DP" --pcap "$WORK/nope.pcap"
printf 'not a pcap at all' >"$WORK/garbage.pcap"
check "garbage capture: exit 1" expect_exit 1 "cannot read capture" "$DP" --pcap "$WORK/garbage.pcap"
head -c 100 "$WORK/mix.pcap" >"$WORK/cut.pcap"
check "capture cut mid-frame: exit 1, frames before it counted" expect_exit 1 "truncated" "$DP" --pcap "$WORK/cut.pcap"
"$PY" -c "from scapy.all import IP, wrpcap; wrpcap('$WORK/raw.pcap', [IP()], linktype=101)"
check "non-Ethernet capture: exit 1, names link type" expect_exit 1 "not Ethernet" "$DP" --pcap "$WORK/raw.pcap"
check "unwritable output: exit 1" expect_exit 1 "cannot write capture" "$DP" --pcap "$WORK/mix.pcap" --pcap-out /nonexistent/x.pcap
printf 'pairs: []\n' >"$WORK/bad.yaml"
check "bad config: exit 2 naming the key" expect_exit 2 "config error: pairs" "$DP" --pcap "$WORK/mix.pcap" --config "$WORK/bad.yaml"
check "unknown option: exit 2" expect_exit 2 "unknown argument" "$DP" --pcap "$WORK/mix.pcap" --frobnicate
check "--pcap-out without --pcap: exit 2" expect_exit 2 "need --pcap" "$DP" --pcap-out x.pcap --config "$REPO/deploy/examples/ward.yaml"

# Live mode refuses a bad configuration before EAL starts (so before any port is touched).
no_eal() {  # no_eal CMD...: exit 2, "config error" on stderr, and no EAL output at all
  "$@" >/dev/null 2>"$WORK/err"
  local rc=$?
  [[ $rc == 2 ]] || { echo "exit $rc: $(cat "$WORK/err")"; return 1; }
  grep -q "config error" "$WORK/err" || { echo "no 'config error': $(cat "$WORK/err")"; return 1; }
  ! grep -q "EAL" "$WORK/err" || { echo "EAL ran: $(cat "$WORK/err")"; return 1; }
}
sed 's/^workers: 1 /wrokers: 1 /' "$REPO/deploy/examples/ward.yaml" >"$WORK/typo.yaml"
check "live: misspelt key refused before EAL, exit 2" no_eal "$DP" --config "$WORK/typo.yaml"
sed 's/^workers: 1 /workers: 4 /' "$REPO/deploy/examples/ward.yaml" >"$WORK/lcores.yaml"
check "live: more workers than lcores refused before EAL" no_eal "$DP" --config "$WORK/lcores.yaml"
sed 's/net_af_packet1,iface=wg-net0/net_af_packet0,iface=wg-net0/' "$REPO/deploy/examples/ward.yaml" >"$WORK/dup.yaml"
check "live: one port in two places refused before EAL" no_eal "$DP" --config "$WORK/dup.yaml"
for ex in "$REPO"/deploy/examples/*.yaml; do
  check "--check-config accepts $(basename "$ex")" "$DP" --config "$ex" --check-config
done

# wardctl: usage errors exit 2, an unreachable dataplane exits 1 with the reason.
check "wardctl without a command: exit 2" expect_exit 2 "usage" "$WARDGATE_BUILD/wardctl" --dataplane /tmp/x.sock
check "wardctl to a missing socket: exit 1" expect_exit 1 "dataplane at $WORK/none.sock" \
  "$WARDGATE_BUILD/wardctl" --dataplane "$WORK/none.sock" --timeout 2 status

finish
