#!/usr/bin/env bash
# bridge_e2e.sh - end-to-end test of wardgate-dp (net_af_packet) in the simulated ward.
#
# Builds the ward (deploy/ward-sim.sh), starts wardgate-dp in wg-gw with
# deploy/examples/ward.yaml and sends real traffic across it in both directions:
#   ICMP/ICMPv6 and ARP, VLAN 100 (802.1Q tag checked on the wire with tshark),
#   UDP, HL7 v2 over MLLP (mllp_send -> tests/e2e/mllp_listener.py), DICOM C-ECHO
#   (echoscu -> storescp), 20 MB TCP transfers both ways (sha256 compared),
#   counters (wardctl status --json, final JSON on SIGTERM), and restarts: traffic must
#   stop while wardgate-dp is down and work again after a SIGTERM restart and after a
#   SIGKILL restart (stale control socket left in place for wardgate-dp to handle).
#
# Usage (root): tests/e2e/bridge_e2e.sh
#   WARDGATE_BUILD  build directory with wardgate-dp and wardctl (default: build/)
#   KEEP_LOGS=1     keep the log directory even when everything passed
# Prints PASS:/FAIL: per check and "N passed, N failed"; exits 1 if anything failed.
# The ward and wardgate-dp are always torn down (also on Ctrl-C or an error).

# Check bodies run through `check` (indirectly) and finish exits: not unreachable.
# shellcheck disable=SC2317,SC2119
set -uo pipefail

SELF_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=${REPO:-$(cd "$SELF_DIR/../.." && pwd)}
# shellcheck source-path=SCRIPTDIR source=../lib/ward.sh
source "$REPO/tests/lib/ward.sh"

CONFIG=${CONFIG:-}
WARDCTL="$WARDGATE_BUILD/wardctl"
PY=/usr/bin/python3                 # Debian's python3-hl7 imports only with this one
LISTENER="$SELF_DIR/mllp_listener.py"

# Ward addresses (deploy/ward-sim.sh).
PUMP=10.77.0.11 MONITOR=10.77.0.12
EHR=10.77.0.21 PACS=10.77.0.22
MONITOR6=fd77::12 EHR6=fd77::21
PUMP_VLAN=10.77.100.11 EHR_VLAN=10.77.100.21
MAC_PUMP=02:77:00:00:00:11 MAC_MONITOR=02:77:00:00:00:12 MAC_EHR=02:77:00:00:00:21

HL7_PORT=2575 DICOM_PORT=11112 UDP_PORT=7777 TCP_PORT=5001
TRANSFER_MB=20

[[ $EUID -eq 0 ]] || { echo "bridge_e2e.sh: must run as root" >&2; exit 2; }
for tool in jq tshark mllp_send storescp echoscu sha256sum timeout "$PY"; do
  command -v "$tool" >/dev/null || { echo "bridge_e2e.sh: $tool not found (run deploy/install-deps.sh)" >&2; exit 2; }
done
for bin in wardgate-dp wardctl; do
  [[ -x $WARDGATE_BUILD/$bin ]] || { echo "bridge_e2e.sh: $WARDGATE_BUILD/$bin missing (meson compile -C build)" >&2; exit 2; }
done

LOGDIR=$(mktemp -d /tmp/wardgate-e2e.XXXXXX)
if [[ -z $CONFIG ]]; then  # the shipped ward, forwarding only (its zones would deny the test traffic)
  CONFIG=$LOGDIR/ward.yaml
  unsegmented_config "$REPO/deploy/examples/ward.yaml" "$CONFIG"
fi
BG_PIDS=()
CLEANED=no
INTERRUPTED=no
T0=$SECONDS
# The script's own stdout/stderr: a trap may run while `check` has them redirected.
exec 3>&1 4>&2

cleanup() {
  [[ $CLEANED == yes ]] && return 0
  CLEANED=yes
  local pid
  for pid in "${BG_PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  if [[ -n $DP_PID ]]; then _dp_kill "$DP_PID"; DP_PID=""; fi
  ward_down >/dev/null 2>&1 || true
  for pid in "${BG_PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  if ((FAILED == 0)) && [[ -z ${KEEP_LOGS:-} && $INTERRUPTED == no ]]; then
    rm -rf "$LOGDIR"
  else
    echo "logs kept in $LOGDIR" >&4
  fi
}
on_signal() {
  INTERRUPTED=yes
  echo "interrupted after $PASSED passed, $FAILED failed; cleaning up" >&4
  exit 130
}
trap cleanup EXIT
trap on_signal INT TERM

section() { printf '\n== %s (%ds)\n' "$*" $((SECONDS - T0)); }

# bg NAME CMD...: run CMD in the background, output to $LOGDIR/NAME.log; pid in LAST_BG.
bg() {
  local name=$1
  shift
  "$@" >"$LOGDIR/$name.log" 2>&1 </dev/null &
  LAST_BG=$!
  BG_PIDS+=("$LAST_BG")
}

wardctl_json() { "$WARDCTL" --dataplane "$DP_SOCKET" --timeout 3 status --json; }
boot_id() { wardctl_json 2>/dev/null | jq -er .boot_id; }

# Foreground commands run under `timeout --foreground`, so a Ctrl-C reaches them (plain
# timeout puts its command in a process group of its own) and the script's trap can
# clean up at once instead of after the command's own timeout.

# ---------------------------------------------------------------- python helpers

# udp: "server PORT OUT TIMEOUT" echoes one datagram back and writes it to OUT;
#      "client HOST PORT PAYLOAD TIMEOUT" sends PAYLOAD (3 tries), prints the reply.
PY_UDP='
import socket, sys
if sys.argv[1] == "server":
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("0.0.0.0", int(sys.argv[2]))); s.settimeout(float(sys.argv[4]))
    data, peer = s.recvfrom(65535)
    open(sys.argv[3], "wb").write(data)
    s.sendto(data, peer)
else:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(float(sys.argv[5]) / 3)
    for attempt in range(3):
        s.sendto(sys.argv[4].encode(), (sys.argv[2], int(sys.argv[3])))
        try:
            print(s.recv(65535).decode()); break
        except socket.timeout:
            continue
    else:
        sys.exit("no UDP reply")
'

# tcp: "recv PORT OUT TIMEOUT" accepts one connection and stores the stream in OUT;
#      "send HOST PORT FILE TIMEOUT" sends FILE, half-closes, waits for the receiver
#      to close (so the receiver has everything when it returns).
PY_TCP='
import socket, sys
if sys.argv[1] == "recv":
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", int(sys.argv[2]))); s.listen(1); s.settimeout(float(sys.argv[4]))
    c, _ = s.accept(); c.settimeout(float(sys.argv[4]))
    with open(sys.argv[3], "wb") as f:
        while True:
            d = c.recv(1 << 16)
            if not d:
                break
            f.write(d)
    c.close()
else:
    c = socket.create_connection((sys.argv[2], int(sys.argv[3])), timeout=float(sys.argv[5]))
    with open(sys.argv[4], "rb") as f:
        c.sendfile(f)
    c.shutdown(socket.SHUT_WR)
    c.recv(1)
    c.close()
'

# hl7 record check: "LISTENER_OUT SENT_FILE": the last message the listener stored is
# exactly the message between the MLLP framing bytes of SENT_FILE.
# One MLLP session across a gateway restart: send, wait for FLAG to appear, send again
# on the same TCP connection; print both ACKs. Args: HOST PORT FLAG ID1 ID2
PY_HL7_SESSION='
import os, socket, sys, time
host, port, flag, ids = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4:6]
def msg(i):
    return ("\x0bMSH|^~\\&|INFUSION_PUMP|ICU|EHR|HOSPITAL|20261130||ORU^R01|%s|P|2.5\r"
            "OBX|1|NM|RATE^Infusion rate||12.5|mL/h\r\x1c\r" % i).encode()
def ack(s):
    buf = b""
    while not buf.endswith(b"\x1c\r"):
        d = s.recv(4096)
        if not d: raise SystemExit("connection closed")
        buf += d
    return buf.decode(errors="replace").replace("\r", " ").strip("\x0b\x1c ")
s = socket.create_connection((host, port), timeout=30)
s.sendall(msg(ids[0])); print(ack(s), flush=True)
deadline = time.time() + 60
while not os.path.exists(flag):
    if time.time() > deadline: raise SystemExit("flag never came")
    time.sleep(0.1)
s.sendall(msg(ids[1])); print(ack(s), flush=True)
'

PY_HL7_SAME='
import sys
got = open(sys.argv[1], "rb").read().split(b"\x1c")
got = [m for m in got if m]
sent = open(sys.argv[2], "rb").read()
sent = sent[sent.index(b"\x0b") + 1:sent.index(b"\x1c")]
if not got or got[-1] != sent:
    sys.exit("listener got %r, sent %r" % (got[-1] if got else None, sent))
'

# ---------------------------------------------------------------- check bodies

ping_ok() {  # NS ADDR [IFACE]
  in_ns "$1" ping -c2 -i0.2 -W2 ${3:+-I "$3"} "$2"
}

ping_fails() {  # NS ADDR: no reply at all within 3 s
  ! in_ns "$1" ping -c3 -i0.3 -W1 "$2"
}

# arp_resolves NS IP MAC: after a neighbour flush, a ping makes NS learn MAC for IP.
arp_resolves() {
  local ns=$1 ip=$2 mac=$3 got
  in_ns "$ns" ip -4 neigh flush dev eth0 || return 1
  got=$(in_ns "$ns" ip -4 -j neigh show "$ip" dev eth0 | jq -r '.[0].lladdr // empty')
  [[ -z $got ]] || { echo "neighbour entry for $ip survived the flush: $got"; return 1; }
  in_ns "$ns" ping -c1 -W2 "$ip" || return 1
  in_ns "$ns" ip -4 neigh show "$ip" dev eth0
  got=$(in_ns "$ns" ip -4 -j neigh show "$ip" dev eth0 | jq -r '.[0].lladdr // empty')
  [[ $got == "$mac" ]] || { echo "$ns resolved $ip to '$got', expected $mac"; return 1; }
}

# vlan_tag_on_wire: VLAN 100 ping pump -> ehr; tshark on the switch ports facing the
# gateway (the far ends of wg-net0 and wg-dev0) must see the frames wardgate-dp sent
# out of wg-net0 (from the pump) and wg-dev0 (from the ehr) tagged with VID 100.
# (A capture on wg-net0 itself, inside wg-gw, does not show frames wardgate-dp sends:
# the af_packet PMD bypasses the qdisc layer where taps see outgoing frames.)
vlan_tag_on_wire() {
  local pcap_net=$LOGDIR/vlan-net.pcap pcap_dev=$LOGDIR/vlan-dev.pcap pid_net pid_dev t ids_net ids_dev
  rm -f "$pcap_net" "$pcap_dev"
  # Everything the pump sent that left wg-net0, everything the ehr sent that left
  # wg-dev0; -a duration bounds a capture that is never stopped.
  ip netns exec wg-sw-net tshark -q -n -i wg-gw-net0 -a duration:20 \
    -f "ether src $MAC_PUMP" -w "$pcap_net" >"$LOGDIR/tshark-net.log" 2>&1 </dev/null &
  pid_net=$!
  ip netns exec wg-sw-dev tshark -q -n -i wg-gw-dev0 -a duration:20 \
    -f "ether src $MAC_EHR" -w "$pcap_dev" >"$LOGDIR/tshark-dev.log" 2>&1 </dev/null &
  pid_dev=$!
  for ((t = 0; t < 100; t++)); do
    grep -q "Capturing on" "$LOGDIR/tshark-net.log" 2>/dev/null \
      && grep -q "Capturing on" "$LOGDIR/tshark-dev.log" 2>/dev/null && break
    sleep 0.1
  done
  ((t < 100)) || echo "tshark did not report 'Capturing on' within 10 s"
  in_ns wg-pump ping -c3 -i0.2 -W2 -I eth0.100 "$EHR_VLAN"
  sleep 0.5
  kill -INT "$pid_net" "$pid_dev" 2>/dev/null
  wait "$pid_net"; wait "$pid_dev"
  ids_net=$(tshark -n -r "$pcap_net" -T fields -e vlan.id -e ip.dst -e _ws.col.Info 2>/dev/null)
  ids_dev=$(tshark -n -r "$pcap_dev" -T fields -e vlan.id -e ip.dst -e _ws.col.Info 2>/dev/null)
  printf 'left wg-net0 (sent by the pump), VID / dst / info:\n%s\n' "${ids_net:-nothing}"
  printf 'left wg-dev0 (sent by the ehr), VID / dst / info:\n%s\n' "${ids_dev:-nothing}"
  grep -q $'^100\t'"$EHR_VLAN"$'\tEcho (ping) request' <<<"$ids_net" \
    && grep -q $'^100\t'"$PUMP_VLAN"$'\tEcho (ping) reply' <<<"$ids_dev"
}

# udp_exchange CLIENT_NS SERVER_NS SERVER_IP: one datagram there and back, compared.
udp_exchange() {
  local cns=$1 sns=$2 ip=$3 payload reply got pid t
  payload="wardgate-udp-$RANDOM$RANDOM-$(date +%s%N)"
  rm -f "$LOGDIR/udp.rx"
  timeout 15 ip netns exec "$sns" "$PY" -c "$PY_UDP" server "$UDP_PORT" "$LOGDIR/udp.rx" 10 &
  pid=$!
  for ((t = 0; t < 50; t++)); do
    [[ -n $(in_ns "$sns" ss -Hlun "sport = :$UDP_PORT") ]] && break
    sleep 0.1
  done
  reply=$(timeout --foreground 10 ip netns exec "$cns" "$PY" -c "$PY_UDP" client "$ip" "$UDP_PORT" "$payload" 6)
  wait "$pid" || { echo "UDP server failed"; return 1; }
  got=$(cat "$LOGDIR/udp.rx")
  echo "sent '$payload', server got '$got', reply '$reply'"
  [[ $got == "$payload" && $reply == "$payload" ]]
}

# hl7_exchange CONTROL_ID: ADT^A01 pump -> ehr listener; ACK MSA|AA|CONTROL_ID comes
# back and the listener stored exactly the message sent.
hl7_exchange() {
  local id=$1 msg=$LOGDIR/adt-$1.hl7 ack now
  now=$(date +%Y%m%d%H%M%S)
  printf '\x0b%s\r%s\r%s\r%s\x1c\x0d' \
    "MSH|^~\\&|INFUSION_PUMP|ICU|EHR|HOSPITAL|$now||ADT^A01|$id|P|2.5" \
    "EVN|A01|$now" \
    "PID|1||4711^^^HOSPITAL^MR||DOE^JANE||19700101|F" \
    "PV1|1|I|ICU^12^1" >"$msg"
  ack=$(timeout --foreground 15 ip netns exec wg-pump mllp_send -p "$HL7_PORT" --file "$msg" "$EHR" | tr '\r\013\034' '\n  ')
  echo "ACK: $ack"
  grep -q "^MSA|AA|$id\$" <<<"$ack" || { echo "no MSA|AA|$id in the ACK"; return 1; }
  "$PY" -c "$PY_HL7_SAME" "$LOGDIR/hl7-received.bin" "$msg"
}

# tcp_transfer NAME SRC_NS DST_NS DST_IP: TRANSFER_MB of random bytes SRC -> DST,
# sha256 of sent and received compared; 60 s at most.
tcp_transfer() {
  local name=$1 sns=$2 dns=$3 ip=$4 src=$LOGDIR/$1.src dst=$LOGDIR/$1.dst pid s1 s2 rc=0
  head -c "$((TRANSFER_MB * 1024 * 1024))" /dev/urandom >"$src"
  rm -f "$dst"
  timeout 60 ip netns exec "$dns" "$PY" -c "$PY_TCP" recv "$TCP_PORT" "$dst" 30 &
  pid=$!
  wait_for_port "$dns" "$TCP_PORT" 10 || { kill "$pid" 2>/dev/null; return 1; }
  local start=$SECONDS
  if ! timeout --foreground 60 ip netns exec "$sns" "$PY" -c "$PY_TCP" send "$ip" "$TCP_PORT" "$src" 30; then
    rc=1
    kill "$pid" 2>/dev/null   # the receiver would wait for its accept timeout
  fi
  wait "$pid" || rc=1
  [[ -f $dst ]] || : >"$dst"
  s1=$(sha256sum <"$src" | cut -d' ' -f1)
  s2=$(sha256sum <"$dst" | cut -d' ' -f1)
  echo "sent $(stat -c %s "$src") bytes sha256 $s1; received $(stat -c %s "$dst") bytes sha256 $s2 ($((SECONDS - start)) s)"
  rm -f "$src" "$dst"
  ((rc == 0)) && [[ $s1 == "$s2" ]]
}

dicom_echo() {  # C-ECHO modality -> pacs
  timeout --foreground 30 ip netns exec wg-modality echoscu -v -aet MODALITY -aec PACS -to 5 -ta 10 -td 10 \
    "$PACS" "$DICOM_PORT"
}

# Live counters: rx/tx packets > 0 on both ports, no tx_full anywhere.
live_counters_ok() {
  wardctl_json | tee "$LOGDIR/status.json" | jq -e '
    (.ports | length) == 2
    and all(.ports[]; (.counters.rx_packets | tonumber) > 0 and (.counters.tx_packets | tonumber) > 0
                      and (.counters.tx_full | tonumber) == 0)
    and all(.drops[] | select(.reason == "tx_full"); (.count | tonumber) == 0)' \
    || { jq -c '[.ports[] | {name, counters}], .drops' "$LOGDIR/status.json"; return 1; }
}

# Final counters (stdout of wardgate-dp after SIGTERM): no mbuf leaked, nothing lost
# inside the bridge (what one port received the other sent), no drops.
final_mbufs_ok() { dp_stats '.mbufs_in_use_at_exit == 0'; }
final_nothing_lost() {
  dp_stats '.ports | length == 2
            and .[0].rx_packets == .[1].tx_packets and .[1].rx_packets == .[0].tx_packets
            and .[0].rx_packets > 0 and .[1].rx_packets > 0' \
    || { jq -c '[.ports[] | {name, rx_packets, tx_packets}], .drops' "$DP_STATS"; return 1; }
}
final_no_drops() { dp_stats 'all(.drops[]; . == 0)' || { jq -c .drops "$DP_STATS"; return 1; }; }

# after_restart LABEL HL7_CONTROL_ID: the traffic that must work again after a restart.
after_restart() {
  local label=$1 id=$2
  check "$label: ping pump->ehr" ping_ok wg-pump "$EHR"
  check "$label: ping workstation->monitor" ping_ok wg-workstation "$MONITOR"
  check "$label: HL7 ADT^A01 pump->ehr acknowledged (MSA|AA)" hl7_exchange "$id"
  check "$label: TCP ${TRANSFER_MB} MB pump->ehr intact" tcp_transfer "tcp-$RANDOM" wg-pump wg-ehr "$EHR"
}

# start_dp_keep_socket: start wardgate-dp like start_dp, but leave a stale control
# socket in place (wardgate-dp must replace it) and wait until the socket answers with
# a boot id other than OLD_BOOT.
start_dp_keep_socket() {
  local old=$1 log=$2 t id=""
  DP_LOG=$log
  DP_STATS="${log%.log}.stats.json"
  DP_STATUS=""
  ip netns exec "$WARD_GW_NS" "$WARDGATE_BUILD/wardgate-dp" --config "$CONFIG" \
    >"$DP_STATS" 2>"$log" </dev/null &
  DP_PID=$!
  for ((t = 0; t < 200; t++)); do
    if ! kill -0 "$DP_PID" 2>/dev/null; then
      wait "$DP_PID"; echo "wardgate-dp exited with status $? at start"; DP_PID=""
      tail -n 20 "$log"; return 1
    fi
    id=$(boot_id) && [[ $id != "$old" ]] && break
    sleep 0.1
  done
  echo "boot id before SIGKILL $old, now ${id:-none}"
  [[ -n $id && $id != "$old" ]] || { tail -n 20 "$log"; return 1; }
  sleep 1   # like start_dp: let the af_packet PMD settle before the first ARP
}

# ---------------------------------------------------------------- the test

section "ward up"
ward_up >"$LOGDIR/ward-sim.log" 2>&1 || { cat "$LOGDIR/ward-sim.log" >&2; _ward_fail "ward up"; finish; }
check "ward: VLAN 100 interfaces exist on pump and ehr" \
  bash -c 'ip -n wg-pump link show eth0.100 && ip -n wg-ehr link show eth0.100'

section "servers in the ward"
: >"$LOGDIR/hl7-received.bin"
bg mllp-listener timeout 170 ip netns exec wg-ehr "$PY" "$LISTENER" --port "$HL7_PORT" \
  --out "$LOGDIR/hl7-received.bin" --timeout 10
mkdir -p "$LOGDIR/dicom"
bg storescp timeout 170 ip netns exec wg-pacs storescp -dhl -aet PACS --ignore \
  -od "$LOGDIR/dicom" "$DICOM_PORT"
check "MLLP listener listens on ehr:$HL7_PORT" wait_for_port wg-ehr "$HL7_PORT" 10
check "storescp listens on pacs:$DICOM_PORT" wait_for_port wg-pacs "$DICOM_PORT" 10

section "nothing crosses before wardgate-dp runs"
check "no path without wardgate-dp: ping pump->ehr fails" ping_fails wg-pump "$EHR"

section "wardgate-dp start"
start_dp "$CONFIG" "$LOGDIR/dp1.log" || finish
BOOT1=$(boot_id) || BOOT1=""
check "control socket answers (boot id ${BOOT1:-none})" test -n "$BOOT1"

section "ICMP and ARP"
check "ICMP: ping pump->ehr (IPv4)" ping_ok wg-pump "$EHR"
check "ICMP: ping workstation->monitor (IPv4)" ping_ok wg-workstation "$MONITOR"
check "ICMPv6: ping pump->ehr (IPv6)" ping_ok wg-pump "$EHR6"
check "ICMPv6: ping ehr->monitor (IPv6)" ping_ok wg-ehr "$MONITOR6"
check "ARP: pump resolves ehr to $MAC_EHR after neigh flush" arp_resolves wg-pump "$EHR" "$MAC_EHR"
check "ARP: workstation resolves monitor to $MAC_MONITOR after neigh flush" \
  arp_resolves wg-workstation "$MONITOR" "$MAC_MONITOR"
check "ARP: ehr resolves pump to $MAC_PUMP after neigh flush" arp_resolves wg-ehr "$PUMP" "$MAC_PUMP"

section "VLAN 100"
check "VLAN: ping pump->ehr over eth0.100" ping_ok wg-pump "$EHR_VLAN" eth0.100
check "VLAN: ping ehr->pump over eth0.100" ping_ok wg-ehr "$PUMP_VLAN" eth0.100
check "VLAN: frames leaving wg-net0 and wg-dev0 carry 802.1Q VID 100 (tshark)" vlan_tag_on_wire

section "UDP"
check "UDP: datagram pump->ehr echoed back intact" udp_exchange wg-pump wg-ehr "$EHR"
check "UDP: datagram workstation->monitor echoed back intact" udp_exchange wg-workstation wg-monitor "$MONITOR"

section "HL7 over MLLP, DICOM"
check "HL7: ADT^A01 pump->ehr acknowledged (MSA|AA), listener got the exact message" \
  hl7_exchange MSG00001
check "DICOM: C-ECHO modality->pacs succeeds" dicom_echo

section "TCP ${TRANSFER_MB} MB transfers"
check "TCP: ${TRANSFER_MB} MB pump->ehr, sha256 equal" tcp_transfer tcp-dev2net wg-pump wg-ehr "$EHR"
check "TCP: ${TRANSFER_MB} MB ehr->pump, sha256 equal" tcp_transfer tcp-net2dev wg-ehr wg-pump "$PUMP"

section "counters"
check "counters: wardctl status: rx/tx packets > 0 on both ports, tx_full 0" live_counters_ok
stop_dp
check "final counters: mbufs_in_use_at_exit == 0" final_mbufs_ok
check "final counters: rx_packets of each port == tx_packets of the other" final_nothing_lost
check "final counters: no drops" final_no_drops

section "restart after SIGTERM"
check "while wardgate-dp is down: ping pump->ehr fails" ping_fails wg-pump "$EHR"
check "while wardgate-dp is down: ping workstation->monitor fails" ping_fails wg-workstation "$MONITOR"
start_dp "$CONFIG" "$LOGDIR/dp2.log" || finish
BOOT2=$(boot_id) || BOOT2=""
check "after SIGTERM restart: new boot id ($BOOT1 -> ${BOOT2:-none})" \
  test -n "$BOOT2" -a "$BOOT2" != "$BOOT1"
after_restart "after SIGTERM restart" MSG00002

section "restart after SIGKILL"
kill -KILL "$DP_PID"
wait "$DP_PID" 2>/dev/null
DP_PID=""
check "after SIGKILL: stale control socket left behind (precondition)" test -S "$DP_SOCKET"
check "while wardgate-dp is dead: ping pump->ehr fails" ping_fails wg-pump "$EHR"
check "after SIGKILL: wardgate-dp starts over the stale socket, new boot id" \
  start_dp_keep_socket "$BOOT2" "$LOGDIR/dp3.log"
if [[ -n $DP_PID ]]; then
  after_restart "after SIGKILL restart" MSG00003
  stop_dp
  check "after SIGKILL restart, final counters: mbufs_in_use_at_exit == 0" final_mbufs_ok
  check "after SIGKILL restart, final counters: rx == tx across the bridge" final_nothing_lost
fi

section "restart under an open HL7 session"
# A gateway restart must not break a clinical TCP session: the pump's connection to the
# EHR stays open across it, and the next message on it is delivered (TCP retransmits).
session_across_restart() {
  local flag=$LOGDIR/restart-done out=$LOGDIR/session.out pid
  rm -f "$flag" "$out"
  timeout 90 ip netns exec wg-pump "$PY" -c "$PY_HL7_SESSION" "$EHR" "$HL7_PORT" "$flag" SESS1 SESS2 >"$out" 2>&1 &
  pid=$!
  local t
  for ((t = 0; t < 100; t++)); do grep -q "MSA|AA|SESS1" "$out" 2>/dev/null && break; sleep 0.1; done
  grep -q "MSA|AA|SESS1" "$out" || { echo "first message not acknowledged: $(cat "$out")"; kill "$pid"; return 1; }
  stop_dp
  start_dp "$CONFIG" "$LOGDIR/dp4.log" || { kill "$pid"; return 1; }
  touch "$flag"
  wait "$pid" || { echo "session failed: $(cat "$out")"; return 1; }
  cat "$out"
  grep -q "MSA|AA|SESS2" "$out"
}
if [[ -z $DP_PID ]]; then start_dp "$CONFIG" "$LOGDIR/dp4-pre.log" || finish; fi
check "HL7 session open across a wardgate-dp restart: next message acknowledged" session_across_restart
check "control socket is mode 0600" bash -c "[[ \$(stat -c %a '$DP_SOCKET') == 600 ]]"
# WatchEvents: the stream stays open (no events yet in this version) until the
# dataplane stops, then ends cleanly.
watch_events_until_stop() {
  "$WARDCTL" --dataplane "$DP_SOCKET" events >"$LOGDIR/events.out" 2>&1 &
  local pid=$! rc
  sleep 1
  kill -0 "$pid" 2>/dev/null || { echo "stream ended early: $(cat "$LOGDIR/events.out")"; return 1; }
  stop_dp
  timeout 10 tail --pid="$pid" -f /dev/null
  wait "$pid"
  rc=$?
  echo "wardctl events exit $rc: $(cat "$LOGDIR/events.out")"
  ((rc == 0))
}
check "WatchEvents stream stays open and ends cleanly when wardgate-dp stops" watch_events_until_stop

section "teardown"
cleanup
echo "runtime $((SECONDS - T0)) s"
finish
