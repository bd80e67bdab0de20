#!/usr/bin/env bash
# ips_e2e.sh - inline verdicts through wardgate-dp in the simulated ward, with real
# clients: alert (forwarded, logged), drop (the matching packet never arrives),
# reject (both TCP ends reset; UDP sender told port unreachable), EVE events, and a
# hot reload through `wardctl rules load` that changes the verdict, while a refused
# rule set leaves the running one in place.
# Usage (root): tests/e2e/ips_e2e.sh     Prints PASS:/FAIL: lines and "N passed, N failed".
set -uo pipefail
SELF_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=${REPO:-$(cd "$SELF_DIR/../.." && pwd)}
source "$REPO/tests/lib/ward.sh"
[[ $EUID -eq 0 ]] || { echo "ips_e2e.sh: must run as root" >&2; exit 2; }

PY=/usr/bin/python3
WARDCTL=$WARDGATE_BUILD/wardctl
LOGDIR=$(mktemp -d /tmp/wardgate-ips.XXXXXX)
EVE=$LOGDIR/eve.json
EHR=10.77.0.21
BG_PIDS=()
cleanup() {
  local p
  for p in "${BG_PIDS[@]}"; do kill "$p" 2>/dev/null; done
  [[ -z $DP_PID ]] || stop_dp >/dev/null 2>&1
  ward_down >/dev/null 2>&1
  if ((FAILED == 0)); then rm -rf "$LOGDIR"; else echo "logs kept in $LOGDIR" >&2; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

cat >"$LOGDIR/ward.rules" <<'EOF'
alert tcp any any -> any 2575 (msg:"WARDGATE TEST HL7 ADT seen"; flow:to_server; content:"ADT^A01"; classtype:policy-violation; sid:9100001; rev:1;)
drop tcp any any -> any 2575 (msg:"WARDGATE TEST HL7 forbidden command"; content:"EVILCMD"; classtype:attempted-admin; sid:9100002; rev:1;)
reject tcp any any -> any 8080 (msg:"WARDGATE TEST admin page"; content:"GET /admin"; sid:9100003; rev:1;)
reject udp any any -> any 5353 (msg:"WARDGATE TEST bad datagram"; content:"bad-datagram"; sid:9100004; rev:1;)
EOF
# The ward's own config with this test's rules, EVE file and control socket.
sed -e "s|/run/wardgate/ward-dp.sock|$LOGDIR/dp.sock|" \
  -e "s|^  files: \[\]|  files: [\"$LOGDIR/ward.rules\"]|" \
  -e "s|^  file: \"\"|  file: \"$EVE\"|" "$REPO/deploy/examples/ward.yaml" >"$LOGDIR/ward-segmented.yaml"
# Signatures are under test here, not the ward's zones (segmentation_e2e.sh tests those).
unsegmented_config "$LOGDIR/ward-segmented.yaml" "$LOGDIR/ward.yaml"
grep -q "$LOGDIR/ward.rules" "$LOGDIR/ward.yaml" && grep -q "$EVE" "$LOGDIR/ward.yaml" ||
  { echo "ips_e2e.sh: could not derive the config from ward.yaml" >&2; exit 1; }

# A one-connection TCP server in a namespace: prints what it received, or RESET.
PY_SERVER='
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", int(sys.argv[1]))); s.listen(1); s.settimeout(20)
c, _ = s.accept(); c.settimeout(10)
data = b""
try:
    while True:
        d = c.recv(4096)
        if not d: break
        data += d
        c.sendall(b"OK " + d)
except ConnectionResetError:
    print("RESET", flush=True); sys.exit(0)
except socket.timeout:
    pass
print("GOT", data.decode(errors="replace"), flush=True)
'
# A TCP client: sends its argument, prints the reply, or RESET / TIMEOUT.
PY_CLIENT='
import socket, sys
s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=5)
s.sendall(sys.argv[3].encode())
try:
    print("REPLY", s.recv(4096).decode(errors="replace"))
except ConnectionResetError:
    print("RESET")
except socket.timeout:
    print("TIMEOUT")
'
PY_UDP_CLIENT='
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(3)
s.connect((sys.argv[1], int(sys.argv[2]))); s.send(sys.argv[3].encode())
try:
    s.recv(100); print("REPLY")
except ConnectionRefusedError:
    print("UNREACHABLE")
except socket.timeout:
    print("TIMEOUT")
'

hl7_file() {  # hl7_file ID EXTRA: an MLLP-framed ADT^A01 with EXTRA in a note
  printf '\x0b%s\r%s\r%s\x1c\x0d' "MSH|^~\\&|PUMP|ICU|EHR|HOSP|20261130||ADT^A01|$1|P|2.5" \
    "PID|1||4711^^^HOSP^MR||DOE^JANE" "NTE|1||$2" >"$LOGDIR/$1.hl7"
}
hl7_acked() {  # hl7_acked ID EXTRA: the EHR acknowledged the message
  hl7_file "$1" "$2"
  timeout --foreground 10 ip netns exec wg-pump mllp_send -p 2575 --file "$LOGDIR/$1.hl7" "$EHR" | tr '\r' '\n' | grep -q "^MSA|AA|$1"
}
hl7_not_delivered() {  # the message never reaches the listener
  hl7_file "$1" "$2"
  timeout --foreground 8 ip netns exec wg-pump mllp_send -p 2575 --file "$LOGDIR/$1.hl7" "$EHR" >/dev/null 2>&1
  ! grep -q "$1" "$LOGDIR/hl7.bin"
}
eve_has() {  # eve_has JQ_FILTER: some EVE record matches
  sleep 0.3
  jq -e -s "any(.[]; $1)" "$EVE" >/dev/null || { echo "no EVE record with $1"; tail -5 "$EVE"; return 1; }
}
tcp_reset_both() {  # reject: the client and the server both see a reset
  timeout 25 ip netns exec wg-ehr "$PY" -c "$PY_SERVER" 8080 >"$LOGDIR/srv8080.out" 2>&1 &
  local pid=$!
  wait_for_port wg-ehr 8080 10 || return 1
  local out
  out=$(timeout --foreground 10 ip netns exec wg-pump "$PY" -c "$PY_CLIENT" "$EHR" 8080 "GET /admin HTTP/1.0")
  wait "$pid"
  echo "client: $out; server: $(cat "$LOGDIR/srv8080.out")"
  [[ $out == RESET ]] && grep -q RESET "$LOGDIR/srv8080.out"
}
tcp_allowed() {  # a benign request on the same port gets its reply
  timeout 25 ip netns exec wg-ehr "$PY" -c "$PY_SERVER" 8080 >"$LOGDIR/srv8080b.out" 2>&1 &
  local pid=$!
  wait_for_port wg-ehr 8080 10 || return 1
  local out
  out=$(timeout --foreground 10 ip netns exec wg-pump "$PY" -c "$PY_CLIENT" "$EHR" 8080 "GET /index.html HTTP/1.0")
  kill "$pid" 2>/dev/null
  wait "$pid" 2>/dev/null
  echo "client: $out"
  [[ $out == "REPLY OK GET /index.html HTTP/1.0" ]]
}
udp_unreachable() {
  local out
  out=$(timeout --foreground 10 ip netns exec wg-pump "$PY" -c "$PY_UDP_CLIENT" "$EHR" 5353 "bad-datagram")
  echo "client: $out"
  [[ $out == UNREACHABLE ]]
}

ward_up >/dev/null
: >"$LOGDIR/hl7.bin"
timeout 300 ip netns exec wg-ehr "$PY" "$REPO/tests/e2e/mllp_listener.py" --port 2575 --out "$LOGDIR/hl7.bin" \
  --timeout 10 >"$LOGDIR/listener.log" 2>&1 &
BG_PIDS+=($!)
wait_for_port wg-ehr 2575 10
start_dp "$LOGDIR/ward.yaml" "$LOGDIR/dp.log" || finish

# WatchEvents: a subscriber gets the alert as it happens.
"$WARDCTL" --dataplane "$DP_SOCKET" events --count 1 >"$LOGDIR/watch.out" 2>&1 &
WATCH_PID=$!
sleep 0.5
check "alert: benign HL7 ADT forwarded and acknowledged" hl7_acked IPS0001 "routine admission"
watch_got_alert() {
  timeout 10 tail --pid="$WATCH_PID" -f /dev/null
  cat "$LOGDIR/watch.out"
  jq -e 'select(.event_type == "alert") | .alert.signature_id == 9100001' "$LOGDIR/watch.out" >/dev/null
}
check "events: wardctl events streams the alert (WatchEvents)" watch_got_alert
check "alert: EVE alert sid 9100001, action allowed" eve_has '.event_type == "alert" and .alert.signature_id == 9100001 and .alert.action == "allowed" and .dest_port == 2575'
check "drop: HL7 carrying EVILCMD never reaches the EHR" hl7_not_delivered IPS0002 "EVILCMD"
check "drop: EVE alert sid 9100002 blocked, and a drop record" eve_has '.event_type == "alert" and .alert.signature_id == 9100002 and .alert.action == "blocked"'
check "drop: EVE drop record" eve_has '.event_type == "drop"'
check "drop: the HL7 session still works for clean messages" hl7_acked IPS0003 "routine discharge"
check "reject: TCP GET /admin resets client and server" tcp_reset_both
check "reject: benign request on the same port is answered" tcp_allowed
check "reject: UDP sender gets ICMP port unreachable" udp_unreachable
check "status: rules loaded and alerts counted" bash -c \
  "'$WARDCTL' --dataplane '$DP_SOCKET' status --json | jq -e '.rules_loaded == 4 and (.alerts | tonumber) >= 3'"

# Hot reload: a set without the drop rule lets EVILCMD through; a broken set is refused.
grep -v 9100002 "$LOGDIR/ward.rules" >"$LOGDIR/nodrop.rules"
check "reload: wardctl rules load replaces the set" "$WARDCTL" --dataplane "$DP_SOCKET" rules load "$LOGDIR/nodrop.rules" --version nodrop
check "reload: EVILCMD now delivered" hl7_acked IPS0004 "EVILCMD"
printf 'alert tcp any any -> any any (msg:"broken"; content:"x"; nosuchkeyword; sid:1;)\n' >"$LOGDIR/broken.rules"
refused() {
  local out rc
  out=$("$WARDCTL" --dataplane "$DP_SOCKET" rules load "$LOGDIR/broken.rules" --version broken)
  rc=$?
  echo "exit $rc: $out"
  [[ $rc == 1 ]] && grep -q "broken.rules:1: sid 1" <<<"$out"
}
check "reload: a broken set is refused (exit 1) with file:line: sid errors" refused
check "reload: after the refusal the running set is still 'nodrop'" bash -c \
  "'$WARDCTL' --dataplane '$DP_SOCKET' status --json | jq -e '.rules_version == \"nodrop\" and .rules_loaded == 3'"
check "reload: the original set back, EVILCMD dropped again" bash -c \
  "'$WARDCTL' --dataplane '$DP_SOCKET' rules load '$LOGDIR/ward.rules' --version again >/dev/null"
check "reload: EVILCMD blocked again" hl7_not_delivered IPS0005 "EVILCMD"
stop_dp
check "final: no mbuf leaked" dp_stats '.mbufs_in_use_at_exit == 0'
check "final: rule drops counted" dp_stats '.drops.rule >= 2'
finish
