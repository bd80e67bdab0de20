#!/usr/bin/env bash
# quickstart.sh - from a fresh Debian 12 machine to clinical traffic across wardgate.
#
# Installs the packages, builds wardgate, reserves hugepages, builds a simulated hospital
# ward in network namespaces (deploy/ward-sim.sh), starts wardgate-dp as the bridge
# between its clinical device segment and the hospital network, and sends real clinical
# traffic across it:
#   ping                 infusion pump -> EHR server
#   HL7 v2 ADT^A01       infusion pump -> EHR server (MLLP, port 2575), ACK expected
#   DICOM C-ECHO         modality -> PACS (storescp, port 11112)
# then shows the gateway's counters, stops wardgate-dp (final counters) and removes the
# ward again (also on Ctrl-C or failure).
#
# Usage (root): deploy/quickstart.sh [--keep] [--no-build]
#   --keep       leave the ward, wardgate-dp and the HL7/DICOM listeners running and
#                print how to use and stop them
#   --no-build   use the binaries already in build/ (skip meson setup/compile)
# Exits non-zero if any step failed.

# cleanup/on_signal run from traps, die exits: shellcheck takes them for unreachable.
# shellcheck disable=SC2317
set -uo pipefail

readonly PROG=${0##*/}
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
readonly REPO
readonly BUILD=$REPO/build
readonly CONFIG=$REPO/deploy/examples/ward.yaml
readonly WARD_SIM=$REPO/deploy/ward-sim.sh
readonly LISTENER=$REPO/tests/e2e/mllp_listener.py
readonly PY=/usr/bin/python3          # Debian's python3-hl7 imports only with this one

readonly PUMP=10.77.0.11 EHR=10.77.0.21 PACS=10.77.0.22 WORKSTATION=10.77.0.23
readonly PUMP_MAC=02:77:00:00:00:11
readonly HL7_PORT=2575 DICOM_PORT=11112

KEEP=no
BUILD_STEP=yes
DP_PID=""
LISTENER_PID=""
STORESCP_PID=""
WARD_UP=no
SUCCESS=no
FAILURES=0
LOGDIR=""
SOCKET=""

usage() { sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//'; }

# ---------------------------------------------------------------- output

if [[ -t 1 ]]; then
  C_OK=$'\e[32m' C_BAD=$'\e[31m' C_DIM=$'\e[2m' C_B=$'\e[1m' C_0=$'\e[0m'
else
  C_OK="" C_BAD="" C_DIM="" C_B="" C_0=""
fi
STEP=0
readonly STEPS=9
step() { STEP=$((STEP + 1)); printf '\n%s[%d/%d] %s%s\n' "$C_B" "$STEP" "$STEPS" "$*" "$C_0"; }
ok()   { printf '      %sok%s   %s\n' "$C_OK" "$C_0" "$*"; }
bad()  { printf '      %sFAIL%s %s\n' "$C_BAD" "$C_0" "$*"; FAILURES=$((FAILURES + 1)); }
info() { printf '           %s\n' "$*"; }
# show_log FILE [N]: the last N lines of a log, indented, after a failure.
show_log() { tail -n "${2:-15}" "$1" 2>/dev/null | sed "s/^/           ${C_DIM}| /; s/\$/${C_0}/"; }
die() { bad "$*"; exit 1; }

# ---------------------------------------------------------------- cleanup

stop_pid() {  # PID [SIGNAL]: signal a process we started and wait for it (10 s at most)
  local pid=$1 t
  [[ -n $pid ]] || return 0
  kill -"${2:-TERM}" "$pid" 2>/dev/null || return 0
  for ((t = 0; t < 100; t++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  if [[ $KEEP == yes && $SUCCESS == yes ]]; then
    exit "$rc"
  fi
  if [[ -n $DP_PID || -n $LISTENER_PID || -n $STORESCP_PID || $WARD_UP == yes ]]; then
    printf '\nCleaning up: '
    [[ -z $DP_PID ]] || { printf 'wardgate-dp, '; stop_pid "$DP_PID"; }
    [[ -z $LISTENER_PID ]] || { printf 'HL7 listener, '; stop_pid "$LISTENER_PID"; }
    [[ -z $STORESCP_PID ]] || { printf 'storescp, '; stop_pid "$STORESCP_PID"; }
    if [[ $WARD_UP == yes ]]; then
      printf 'ward'
      "$WARD_SIM" down >>"$LOGDIR/ward-sim.log" 2>&1 || printf ' (ward-sim.sh down failed, see %s)' "$LOGDIR/ward-sim.log"
    fi
    printf ' ... done\n'
  fi
  if ((rc != 0)) && [[ -n $LOGDIR ]]; then
    printf 'Logs: %s\n' "$LOGDIR"
  elif [[ -n $LOGDIR ]]; then
    rm -rf "$LOGDIR"
  fi
  exit "$rc"
}

on_signal() {
  printf '\n%sInterrupted.%s\n' "$C_BAD" "$C_0"
  exit 130
}

# ---------------------------------------------------------------- steps

install_deps() {
  step "Debian packages (deploy/install-deps.sh)"
  local out
  if out=$("$REPO/deploy/install-deps.sh" --check 2>&1); then
    ok "${out#install-deps.sh: }"
    return
  fi
  info "${out#install-deps.sh: }"
  info "installing them now; this can take a few minutes (log: $LOGDIR/install-deps.log)"
  "$REPO/deploy/install-deps.sh" >"$LOGDIR/install-deps.log" 2>&1 \
    || { show_log "$LOGDIR/install-deps.log"; die "package installation failed"; }
  ok "$(tail -n 1 "$LOGDIR/install-deps.log" | sed 's/^install-deps.sh: //')"
}

build() {
  step "Build (meson + ninja)"
  if [[ $BUILD_STEP == no ]]; then
    info "skipped (--no-build), using $BUILD"
  else
    cd "$REPO" || die "cannot cd to $REPO"
    if [[ ! -f $BUILD/meson-private/coredata.dat ]]; then
      info "meson setup build"
      meson setup "$BUILD" >"$LOGDIR/meson-setup.log" 2>&1 \
        || { show_log "$LOGDIR/meson-setup.log"; die "meson setup failed"; }
    fi
    info "meson compile -C build (a few minutes the first time)"
    meson compile -C "$BUILD" >"$LOGDIR/build.log" 2>&1 \
      || { show_log "$LOGDIR/build.log" 25; die "build failed"; }
  fi
  [[ -x $BUILD/wardgate-dp && -x $BUILD/wardctl ]] \
    || die "$BUILD/wardgate-dp or $BUILD/wardctl missing"
  ok "$("$BUILD/wardgate-dp" --version 2>/dev/null | head -n 1): build/wardgate-dp, build/wardctl"
}

hugepages() {
  step "Hugepages (deploy/hugepages.sh)"
  local out
  out=$("$REPO/deploy/hugepages.sh" reserve 2>&1) || true
  ok "$(grep '^got ' <<<"$out" || echo "$out" | tail -n 1)"
  info "(with 'hugepages: auto' wardgate-dp uses them if 512 MiB are free, else runs with --no-huge)"
}

ward_up() {
  step "Simulated ward (deploy/ward-sim.sh up)"
  WARD_UP=yes
  "$WARD_SIM" up >"$LOGDIR/ward-sim.log" 2>&1 \
    || { show_log "$LOGDIR/ward-sim.log"; die "ward-sim.sh up failed"; }
  ok "clinical segment: pump .11, monitor .12, modality .13 (10.77.0.0/24, fd77::/64)"
  info "hospital network: ehr .21, pacs .22, workstation .23"
  info "gateway ports:    wg-dev0 (device side), wg-net0 (network side) in namespace wg-gw"
  if ip netns exec wg-pump ping -c1 -W1 "$EHR" >/dev/null 2>&1; then
    bad "the pump reaches the ehr without wardgate-dp: the ward is not isolated"
  else
    info "no wardgate-dp yet: the pump cannot reach the ehr (the gateway is the only path)"
  fi
}

start_dp() {
  step "wardgate-dp in namespace wg-gw (deploy/examples/ward.yaml)"
  SOCKET=$(sed -n 's/^[[:space:]]*socket:[[:space:]]*\([^[:space:]#]*\).*/\1/p' "$CONFIG" | head -n 1)
  [[ -n $SOCKET ]] || die "no control socket in $CONFIG"
  "$BUILD/wardgate-dp" --config "$CONFIG" --check-config >"$LOGDIR/check-config.log" 2>&1 \
    || { show_log "$LOGDIR/check-config.log"; die "wardgate-dp refuses $CONFIG"; }
  # A fresh simulated ward: no quarantine left over from an earlier run (the snapshot
  # is what keeps quarantines across restarts of a real gateway).
  local snapshot
  snapshot=$(sed -n 's/^[[:space:]]*snapshot:[[:space:]]*\([^[:space:]#]*\).*/\1/p' "$CONFIG" | head -n 1)
  [[ -z $snapshot ]] || rm -f "$snapshot"
  info "ip netns exec wg-gw build/wardgate-dp --config deploy/examples/ward.yaml"
  ip netns exec wg-gw "$BUILD/wardgate-dp" --config "$CONFIG" \
    >"$LOGDIR/wardgate-dp.stats.json" 2>"$LOGDIR/wardgate-dp.log" </dev/null &
  DP_PID=$!
  local t
  # Ready when the control API answers (a socket file left by a crash does not count).
  for ((t = 0; t < 200; t++)); do
    kill -0 "$DP_PID" 2>/dev/null || {
      wait "$DP_PID"; local rc=$?; DP_PID=""
      show_log "$LOGDIR/wardgate-dp.log"; die "wardgate-dp exited with status $rc at start"
    }
    "$BUILD/wardctl" --dataplane "$SOCKET" --timeout 1 status >/dev/null 2>&1 && break
    sleep 0.1
  done
  ((t < 200)) || { show_log "$LOGDIR/wardgate-dp.log"; die "wardgate-dp's control API did not answer within 20 s"; }
  sleep 1   # the af_packet ports need a moment before the first ARP gets through
  ok "running, pid $DP_PID, control socket $SOCKET"
}

traffic() {
  step "Clinical traffic across the gateway"
  local out

  # ping
  if out=$(timeout --foreground 10 ip netns exec wg-pump ping -c3 -i0.3 -W2 "$EHR" 2>&1); then
    ok "ping    pump $PUMP -> ehr $EHR: $(awk '/received/ {print $4}' <<<"$out")/3 replies, $(awk -F'[ /]' '/^rtt/ {print $8}' <<<"$out") ms avg"
  else
    bad "ping    pump $PUMP -> ehr $EHR: no replies"
    printf '%s\n' "$out" | tail -n 4 | sed 's/^/           | /'
  fi

  # HL7 v2 over MLLP
  local msg=$LOGDIR/adt-a01.hl7 now ack
  now=$(date +%Y%m%d%H%M%S)
  printf '\x0b%s\r%s\r%s\r%s\x1c\x0d' \
    "MSH|^~\\&|INFUSION_PUMP|ICU|EHR|HOSPITAL|$now||ADT^A01|QS$now|P|2.5" \
    "EVN|A01|$now" \
    "PID|1||4711^^^HOSPITAL^MR||DOE^JANE||19700101|F" \
    "PV1|1|I|ICU^12^1" >"$msg"
  ip netns exec wg-ehr "$PY" "$LISTENER" --port "$HL7_PORT" --out "$LOGDIR/hl7-received.bin" \
    >"$LOGDIR/mllp-listener.log" 2>&1 </dev/null &
  LISTENER_PID=$!
  if ! wait_listen wg-ehr "$HL7_PORT"; then
    bad "HL7     the MLLP listener did not start on ehr:$HL7_PORT"
    show_log "$LOGDIR/mllp-listener.log"
  elif ack=$(send_hl7 15) && grep -q '^MSA|AA|' <<<"$ack"; then
    ok "HL7     ADT^A01 pump -> ehr:$HL7_PORT (MLLP): ACK $(grep '^MSA|' <<<"$ack")"
  else
    bad "HL7     ADT^A01 pump -> ehr:$HL7_PORT (MLLP): no ACK (MSA|AA)"
    [[ -z $ack ]] || info "got: $ack"
    show_log "$LOGDIR/mllp_send.log" 6
  fi

  # DICOM C-ECHO
  mkdir -p "$LOGDIR/dicom"
  ip netns exec wg-pacs storescp -dhl -aet PACS --ignore -od "$LOGDIR/dicom" "$DICOM_PORT" \
    >"$LOGDIR/storescp.log" 2>&1 </dev/null &
  STORESCP_PID=$!
  if ! wait_listen wg-pacs "$DICOM_PORT"; then
    bad "DICOM   storescp did not start on pacs:$DICOM_PORT"
    show_log "$LOGDIR/storescp.log"
  elif timeout --foreground 30 ip netns exec wg-modality echoscu -v -aet MODALITY -aec PACS -to 5 -ta 10 -td 10 \
         "$PACS" "$DICOM_PORT" >"$LOGDIR/echoscu.log" 2>&1; then
    ok "DICOM   C-ECHO modality -> pacs:$DICOM_PORT (AE MODALITY -> PACS): $(grep -o 'Echo Response (.*)' "$LOGDIR/echoscu.log")"
  else
    bad "DICOM   C-ECHO modality -> pacs:$DICOM_PORT failed"
    show_log "$LOGDIR/echoscu.log" 6
  fi
}

send_hl7() {  # SECONDS: the pump sends the ADT^A01 to the ehr; prints the ACK
  timeout --foreground "$1" ip netns exec wg-pump mllp_send -p "$HL7_PORT" --file "$LOGDIR/adt-a01.hl7" "$EHR" \
    2>"$LOGDIR/mllp_send.log" | tr '\r\013\034' '\n  '
}

wardctl() { "$BUILD/wardctl" --dataplane "$SOCKET" "$@"; }

# The zone policy of deploy/examples/ward.yaml at work, then a quarantine: the pump is
# isolated (its HL7 feed stops), listed, and released (the feed is back).
segmentation() {
  step "Segmentation and quarantine (zones and policy of deploy/examples/ward.yaml)"
  # Something listening on the pump's Telnet port: only the policy can keep the office out.
  ip netns exec wg-pump "$PY" -c '
import socket
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", 23)); s.listen()
while True: s.accept()[0].close()' >/dev/null 2>&1 </dev/null &
  if ! wait_listen wg-pump 23; then
    bad "policy  no listener on pump:23"
  elif timeout --foreground 5 ip netns exec wg-workstation "$PY" -c \
      "import socket; socket.create_connection(('$PUMP', 23), timeout=2)" 2>/dev/null; then
    bad "policy  workstation -> pump:23 (Telnet) connected: the pumps zone should deny it"
  else
    ok "policy  workstation $WORKSTATION -> pump:23 (Telnet) denied: zone pumps, default deny"
  fi
  local out
  if out=$(wardctl quarantine "$PUMP_MAC" --level isolate --reason "quickstart: suspected compromise" 2>&1); then
    ok "quarantine  $out"
  else
    bad "quarantine  wardctl quarantine failed: $out"
  fi
  if ack=$(send_hl7 6) && grep -q '^MSA|AA|' <<<"$ack"; then
    bad "quarantine  the isolated pump still reached the ehr"
  else
    ok "quarantine  isolated pump -> ehr:$HL7_PORT (HL7): no answer, as it must"
  fi
  wardctl quarantines | sed 's/^/           | /'
  if out=$(wardctl release "$PUMP_MAC" --reason "quickstart: cleared" 2>&1); then
    ok "release     $out"
  else
    bad "release     wardctl release failed: $out"
  fi
  if ack=$(send_hl7 15) && grep -q '^MSA|AA|' <<<"$ack"; then
    ok "release     pump -> ehr:$HL7_PORT (HL7) answered again: $(grep '^MSA|' <<<"$ack")"
  else
    bad "release     pump -> ehr:$HL7_PORT (HL7): no ACK after the release"
  fi
  local denied
  denied=$(wardctl status --json | jq -r '[.drops[] | select(.reason == "policy" or .reason == "quarantine") | "\(.reason) \(.count)"] | join(", ")')
  info "drops by reason: ${denied:-none}"
}

wait_listen() {  # NS PORT: wait (10 s at most) until a TCP socket listens on PORT in NS
  local t
  for ((t = 0; t < 100; t++)); do
    [[ -n $(ip netns exec "$1" ss -Hltn "sport = :$2" 2>/dev/null) ]] && return 0
    sleep 0.1
  done
  return 1
}

status() {
  step "Gateway counters (wardctl --dataplane $SOCKET status)"
  if ! "$BUILD/wardctl" --dataplane "$SOCKET" status >"$LOGDIR/status.txt" 2>&1; then
    bad "wardctl status failed"
    show_log "$LOGDIR/status.txt"
    return
  fi
  echo
  sed '/./s/^/  /' "$LOGDIR/status.txt"
}

stop_dp() {
  step "Stop wardgate-dp (SIGTERM): final counters"
  local pid=$DP_PID rc t stats=$LOGDIR/wardgate-dp.stats.json
  DP_PID=""
  kill -TERM "$pid" 2>/dev/null
  for ((t = 0; t < 100; t++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if ((t >= 100)); then
    kill -KILL "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    bad "wardgate-dp did not stop within 10 s of SIGTERM (killed)"
    return
  fi
  wait "$pid"
  rc=$?
  ((rc == 0)) || bad "wardgate-dp exited with status $rc"
  if ! jq -e 'type == "object"' "$stats" >/dev/null 2>&1; then
    bad "wardgate-dp printed no final counters"
    show_log "$LOGDIR/wardgate-dp.log"
    return
  fi
  echo
  # The essentials; zero malformed-packet counters are left out.
  jq '{mode, uptime_ms, mbufs_in_use_at_exit,
       ports: [.ports[] | {name, role, rx_packets, tx_packets, rx_bytes, tx_bytes}],
       drops, malformed: (.malformed | with_entries(select(.value != 0)))}' "$stats" | sed 's/^/  /'
  if jq -e '.mbufs_in_use_at_exit == 0' "$stats" >/dev/null; then
    ok "stopped cleanly (exit $rc, no packet buffers left in use)"
  else
    bad "wardgate-dp left packet buffers in use at exit"
  fi
}

print_keep_help() {
  local rel_sock=$SOCKET
  cat <<EOF

${C_B}The ward and wardgate-dp keep running (--keep).${C_0}
  gateway counters   build/wardctl --dataplane $rel_sock status
  live events        build/wardctl --dataplane $rel_sock events
  a shell on a host  ip netns exec wg-pump bash      (also wg-monitor, wg-modality,
                                                    wg-ehr, wg-pacs, wg-workstation)
  try                ip netns exec wg-pump ping 10.77.0.21
                     ip netns exec wg-pump mllp_send -p $HL7_PORT --file $LOGDIR/adt-a01.hl7 $EHR
                     ip netns exec wg-modality echoscu -aet MODALITY -aec PACS $PACS $DICOM_PORT
  watch the wire     ip netns exec wg-sw-net tshark -i wg-gw-net0
                     (the hospital-side switch port facing the gateway)
  hosts and MACs     deploy/ward-sim.sh info
  logs               $LOGDIR
                     (HL7 listener on ehr:$HL7_PORT, storescp on pacs:$DICOM_PORT are running)
To stop:
EOF
  printf '  %-26s # %s\n' \
    "kill $DP_PID" "wardgate-dp; it writes its final counters to $LOGDIR/wardgate-dp.stats.json" \
    "deploy/ward-sim.sh down" "removes the ward, ends the HL7 listener and storescp"
}

# ---------------------------------------------------------------- main

main() {
  while (($#)); do
    case $1 in
      --keep) KEEP=yes ;;
      --no-build) BUILD_STEP=no ;;
      -h|--help) usage; exit 0 ;;
      *) printf '%s: unknown option %s\n' "$PROG" "$1" >&2; usage >&2; exit 2 ;;
    esac
    shift
  done
  [[ $EUID -eq 0 ]] || { printf '%s: run me as root (network namespaces, packages): sudo %s\n' "$PROG" "$0" >&2; exit 2; }

  LOGDIR=$(mktemp -d /tmp/wardgate-quickstart.XXXXXX)
  trap cleanup EXIT
  trap on_signal INT TERM

  printf '%swardgate quickstart%s: a simulated hospital ward, wardgate-dp bridging its clinical\n' "$C_B" "$C_0"
  printf 'device segment and the hospital network, and clinical traffic across it.\n'

  install_deps
  build
  hugepages
  ward_up
  start_dp
  traffic
  segmentation
  status
  if [[ $KEEP == no ]]; then
    stop_dp
  else
    step "Stop wardgate-dp: skipped (--keep)"
  fi

  echo
  if ((FAILURES > 0)); then
    printf '%s%d step(s) failed.%s\n' "$C_BAD" "$FAILURES" "$C_0"
    exit 1
  fi
  SUCCESS=yes
  printf '%sAll steps passed:%s the clinical traffic crossed wardgate-dp; the policy and a quarantine held.\n' "$C_OK" "$C_0"
  if [[ $KEEP == yes ]]; then
    print_keep_help
  fi
  exit 0
}

main "$@"
