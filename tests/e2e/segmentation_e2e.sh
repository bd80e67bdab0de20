#!/usr/bin/env bash
# segmentation_e2e.sh - zone policy and quarantine through wardgate-dp in the simulated
# ward, with real traffic:
#   zones/policy  pump -> ehr HL7 allowed (app hl7), pump -> workstation denied, workstation
#                 -> pump Telnet denied; EVE policy events, drops.policy
#   quarantine    isolate in the middle of a transfer (nothing arrives after wardctl
#                 returns; remediation host and DNS still reachable), release, contain
#                 (established flows and explicitly allowed peers only), TTL expiry,
#                 a rule's quarantine:isolate option, restore after kill -9 + restart
#   inventory     wardctl devices: the configured pump and the learned monitor
#   bad input     malformed MAC, unknown level, bare TTL (exit 2), release of a device
#                 not quarantined (exit 1)
# Usage (root): tests/e2e/segmentation_e2e.sh     Prints PASS:/FAIL: lines and "N passed, N failed".
# Helpers: tests/e2e/seg_traffic.py (MLLP server/stream, TCP, HTTP and DNS endpoints).
# shellcheck disable=SC2317  # functions run through check and traps
set -euo pipefail
SELF_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=${REPO:-$(cd "$SELF_DIR/../.." && pwd)}
source "$REPO/tests/lib/ward.sh"
[[ $EUID -eq 0 ]] || { echo "segmentation_e2e.sh: must run as root" >&2; exit 2; }

PY=/usr/bin/python3
TRAFFIC=$SELF_DIR/seg_traffic.py
WARDCTL=$WARDGATE_BUILD/wardctl
LOGDIR=$(mktemp -d /tmp/wardgate-seg.XXXXXX)
EVE=$LOGDIR/eve.json
SNAPSHOT=$LOGDIR/state.json
HL7LOG=$LOGDIR/ehr-hl7.log   # "<arrival time> <connection> <MSH-10>" per message the ehr got
PUMP=10.77.0.11 MONITOR=10.77.0.12 EHR=10.77.0.21 PACS=10.77.0.22 WORKSTATION=10.77.0.23
PUMP_MAC=02:77:00:00:00:11 MONITOR_MAC=02:77:00:00:00:12
BG_PIDS=()
STARTED=$SECONDS

FINISHED=""
done_() { FINISHED=1; finish; }

cleanup() {
  local p
  if [[ -z $FINISHED ]]; then  # set -e ended the script early: say so, still count
    _ward_fail "the script ran to its end"
    echo "$PASSED passed, $FAILED failed"
  fi
  for p in "${BG_PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  if [[ -n $DP_PID ]]; then stop_dp >/dev/null 2>&1 || true; fi
  ward_down >/dev/null 2>&1 || true
  if ((FAILED == 0)); then rm -rf "$LOGDIR"; else echo "logs kept in $LOGDIR" >&2; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM
trap 'echo "segmentation_e2e.sh: line $LINENO: \"$BASH_COMMAND\" failed" >&2' ERR

# ---------------------------------------------------------------- configuration

# flags:S: only a new connection triggers. Without it, the trigger connection's late
# retransmissions (its packets are cut off mid-exchange) would quarantine the monitor
# again after its release, or after the restart below.
cat >"$LOGDIR/seg.rules" <<'EOF'
alert tcp any any -> any 4444 (msg:"e2e backdoor port"; flow:to_server; flags:S; sid:9500001; rev:1; quarantine:isolate;)
EOF
# A config of its own (not derived from deploy/examples/ward.yaml, whose segmentation
# sections would clash): the ward's ports, this test's rules, EVE file, control socket,
# zones, policy, the pump as a static device, and the quarantine settings.
cat >"$LOGDIR/ward.yaml" <<EOF
eal: { lcores: "0-1", hugepages: auto, memory_mb: 512, file_prefix: wardgate-seg-e2e, args: [] }
workers: 1
mtu: 1500
pairs:
  - name: ward
    device: { vdev: "net_af_packet0,iface=wg-dev0,qpairs=1" }
    network: { vdev: "net_af_packet1,iface=wg-net0,qpairs=1" }
mempool: { mbufs: 8191, cache: 256 }
queues: { rx_descriptors: 1024, tx_descriptors: 1024, burst: 32 }
idle: { spin_polls: 64, min_sleep_us: 1, max_sleep_us: 100 }
link: { wait_ms: 3000 }
control: { socket: "$LOGDIR/dp.sock" }
rules:
  files: ["$LOGDIR/seg.rules"]
  cache_dir: ""
eve: { file: "$EVE", payload: true, packet: true }

zones:
  - { name: pumps, classes: [infusion-pump], default: allow }
  - { name: clinical, cidrs: [$EHR/32, $PACS/32] }
  - { name: office, cidrs: [$WORKSTATION/32] }
policy:
  - { from: pumps, to: clinical, proto: tcp, ports: [2575], app: hl7, action: allow }
  - { from: pumps, to: office, action: deny }
  - { from: office, to: pumps, action: deny }
devices:
  - { mac: "$PUMP_MAC", name: pump-1, class: infusion-pump, criticality: life-critical, ips: [$PUMP] }
quarantine:
  remediation: [$PACS/32]
  snapshot: "$SNAPSHOT"
EOF

# ---------------------------------------------------------------- helpers

wctl() { "$WARDCTL" --dataplane "$DP_SOCKET" "$@"; }
traffic() {  # traffic NS ARGS...: seg_traffic.py in namespace NS
  local ns=$1
  shift
  ip netns exec "$ns" "$PY" "$TRAFFIC" "$@"
}
bg() {  # bg LOG CMD...: run CMD in the background (killed on exit)
  local log=$1
  shift
  "$@" >"$log" 2>&1 &
  BG_PIDS+=($!)
}
counter() {  # counter SECTION REASON: a counter of `wardctl status --json` (drops, segmentation)
  wctl status --json | jq -er --arg r "$2" ".$1[] | select(.reason == \$r) | .count | tonumber"
}
eve_has() {  # eve_has JQ_FILTER: some EVE record matches (waits up to 3 s)
  local t
  for ((t = 0; t < 30; t++)); do
    if [[ -s $EVE ]] && jq -e -s "any(.[]; $1)" "$EVE" >/dev/null 2>&1; then return 0; fi
    sleep 0.1
  done
  echo "no EVE record with $1; last records:"
  tail -n 5 "$EVE" 2>/dev/null
  return 1
}
hl7_file() {  # hl7_file ID: an MLLP-framed ADT^A01 with control id ID
  printf '\x0b%s\r%s\r%s\x1c\x0d' "MSH|^~\\&|PUMP|ICU|EHR|HOSP|20261130||ADT^A01|$1|P|2.5" \
    "PID|1||4711^^^HOSP^MR||DOE^JANE" "NTE|1||segmentation e2e" >"$LOGDIR/$1.hl7"
}
hl7_acked() {  # hl7_acked NS ID: mllp_send from NS to the ehr gets MSA|AA|ID back
  local out
  hl7_file "$2"
  out=$(timeout --foreground 5 ip netns exec "$1" mllp_send -p 2575 --file "$LOGDIR/$2.hl7" "$EHR" | tr '\r' '\n') || true
  echo "reply: $out"
  grep -Eq "^MSA\|AA\|$2([^0-9A-Za-z]|\$)" <<<"$out" && grep -q " $2\$" "$HL7LOG"
}
hl7_blocked() {  # hl7_blocked NS ID: mllp_send from NS gets no ACK, the ehr gets nothing
  local out
  hl7_file "$2"
  out=$(timeout --foreground 3 ip netns exec "$1" mllp_send -p 2575 --file "$LOGDIR/$2.hl7" "$EHR" 2>&1 | tr '\r' '\n') || true
  echo "reply: $out"
  ! grep -q "MSA|" <<<"$out" && ! grep -q " $2\$" "$HL7LOG"
}
tcp_ok() {  # tcp_ok NS HOST PORT: a TCP exchange succeeds
  traffic "$1" tcp-client "$2" "$3" --timeout 2 --message "e2e probe"
}
tcp_blocked() {  # tcp_blocked NS HOST PORT: no TCP exchange (connect times out)
  local out
  out=$(traffic "$1" tcp-client "$2" "$3" --timeout 1.5 --message "e2e probe") && { echo "got: $out"; return 1; }
  echo "client: $out"
  [[ $out == TIMEOUT* ]]
}
http_ok() {  # http_ok NS URL: curl gets the remediation page
  local out
  out=$(ip netns exec "$1" curl -sS --max-time 2 "$2" 2>&1) || { echo "curl: $out"; return 1; }
  echo "body: $out"
  [[ $out == remediation-ok ]]
}
http_blocked() {
  local out
  out=$(ip netns exec "$1" curl -sS --max-time 2 "$2" 2>&1) && { echo "got a page: $out"; return 1; }
  echo "curl: $out"
  return 0
}
arrivals_after() {  # arrivals_after PREFIX TIME: messages PREFIX-n the ehr got after TIME
  awk -v p="^$1-" -v t="$2" '$3 ~ p && $1 > t { n++ } END { print n + 0 }' "$HL7LOG"
}
acks_after() {  # acks_after STREAMLOG TIME: ACKs the stream's sender read after TIME
  awk -v t="$2" '$1 == "ack" && $2 > t { n++ } END { print n + 0 }' "$1"
}
start_stream() {  # start_stream PREFIX: pump -> ehr HL7/MLLP, one connection, a message every 20 ms
  : >"$LOGDIR/stream-$1.log"
  timeout 60 ip netns exec wg-pump "$PY" "$TRAFFIC" mllp-stream --host "$EHR" --port 2575 --prefix "$1" \
    --log "$LOGDIR/stream-$1.log" --interval 0.02 --duration 40 >"$LOGDIR/stream-$1.out" 2>&1 &
  STREAM_PID=$!
  BG_PIDS+=("$STREAM_PID")
}
stream_flowing() {  # stream_flowing PREFIX MIN: the ehr got MIN messages of the stream (5 s at most)
  local t n=0
  for ((t = 0; t < 50; t++)); do
    n=$(arrivals_after "$1" 0)
    if ((n >= $2)); then echo "$n messages"; return 0; fi
    sleep 0.1
  done
  echo "only $n messages of stream $1 arrived"
  cat "$LOGDIR/stream-$1.out"
  return 1
}
stop_stream() {
  kill "$STREAM_PID" 2>/dev/null || true
  wait "$STREAM_PID" 2>/dev/null || true
}
now() { date +%s.%N; }
fadd() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.6f\n", a + b }'; }
quarantined_as() {  # quarantined_as DEVICE LEVEL: `wardctl quarantines --json` lists it so
  wctl quarantines --json | tee /dev/stderr |
    jq -e --arg d "$1" --arg l "$2" 'any(.quarantines[]; .device == $d and .level == $l)' >/dev/null
}
no_quarantines() {
  wctl quarantines --json | tee /dev/stderr | jq -e '(.quarantines // []) | length == 0' >/dev/null
}
seg_quarantines_is() {  # status: segmentation.quarantines == N
  local n
  n=$(counter segmentation quarantines)
  echo "segmentation.quarantines = $n"
  ((n == $1))
}
compare() {  # compare DESCRIPTION EXPR: print it, then test the arithmetic EXPR
  echo "$1"
  (($2))
}

# ---------------------------------------------------------------- the ward

ward_up --no-vlan >/dev/null
mkdir -p "$LOGDIR/www"
echo remediation-ok >"$LOGDIR/www/index.html"
: >"$HL7LOG"
bg "$LOGDIR/ehr-mllp.out" timeout 600 ip netns exec wg-ehr "$PY" "$TRAFFIC" mllp-server --port 2575 --log "$HL7LOG"
bg "$LOGDIR/ehr-8080.out" timeout 600 ip netns exec wg-ehr "$PY" "$TRAFFIC" tcp-server --port 8080
bg "$LOGDIR/ehr-4444.out" timeout 600 ip netns exec wg-ehr "$PY" "$TRAFFIC" tcp-server --port 4444
bg "$LOGDIR/ehr-dns.out" timeout 600 ip netns exec wg-ehr "$PY" "$TRAFFIC" dns-server --port 53
bg "$LOGDIR/pacs-http.out" timeout 600 ip netns exec wg-pacs "$PY" "$TRAFFIC" http-server --port 80 --dir "$LOGDIR/www"
bg "$LOGDIR/ws-8080.out" timeout 600 ip netns exec wg-workstation "$PY" "$TRAFFIC" tcp-server --port 8080
bg "$LOGDIR/pump-23.out" timeout 600 ip netns exec wg-pump "$PY" "$TRAFFIC" tcp-server --port 23
servers_up() {
  wait_for_port wg-ehr 2575 && wait_for_port wg-ehr 8080 && wait_for_port wg-ehr 4444 &&
    wait_for_port wg-pacs 80 && wait_for_port wg-workstation 8080 && wait_for_port wg-pump 23
}
check "setup: servers listen in the ward" servers_up
start_dp "$LOGDIR/ward.yaml" "$LOGDIR/dp.log" || done_
sleep 0.5

# ---------------------------------------------------------------- 1-3: zone policy

echo "--- zone policy"
check "policy: pump -> ehr HL7/MLLP on 2575 (policy[0], app hl7) gets its ACK" hl7_acked wg-pump SEG0001
check "policy: monitor (no zone) -> workstation:8080 works (control)" tcp_ok wg-monitor "$WORKSTATION" 8080
check "policy: pump -> workstation:8080 fails (pumps -> office denied)" tcp_blocked wg-pump "$WORKSTATION" 8080
check "policy: EVE policy deny pumps -> office, rule policy[1], enforced" eve_has \
  '.event_type == "policy" and .policy.action == "deny" and .policy.enforced == true and .policy.rule == "policy[1]" and .policy.from_zone == "pumps" and .policy.to_zone == "office" and .src_ip == "'$PUMP'" and .dest_port == 8080'
check "policy: drops.policy > 0" bash -c "(( \$('$WARDCTL' --dataplane '$DP_SOCKET' status --json | jq -r '.drops[] | select(.reason == \"policy\") | .count') > 0 ))"
check "policy: ehr -> pump:23 works (clinical -> pumps: zone defaults allow; control)" tcp_ok wg-ehr "$PUMP" 23
check "policy: workstation -> pump Telnet (23) fails (office -> pumps denied)" tcp_blocked wg-workstation "$PUMP" 23
check "policy: EVE policy deny office -> pumps, rule policy[2]" eve_has \
  '.event_type == "policy" and .policy.action == "deny" and .policy.rule == "policy[2]" and .policy.from_zone == "office" and .policy.to_zone == "pumps" and .dest_port == 23'
check "policy: one policy event per denied flow (SYN retransmissions not reported again)" bash -c \
  "jq -s -e '[.[] | select(.event_type == \"policy\") | .flow_id] | group_by(.) | all(length == 1)' '$EVE'"
check "policy: status segmentation.policy_flows_denied >= 2" bash -c \
  "(( \$('$WARDCTL' --dataplane '$DP_SOCKET' status --json | jq -r '.segmentation[] | select(.reason == \"policy_flows_denied\") | .count') >= 2 ))"

# ---------------------------------------------------------------- 4: isolate mid-transfer

echo "--- isolate in the middle of a transfer"
start_stream A
check "isolate: the pump's HL7 stream to the ehr flows (>= 25 messages)" stream_flowing A 25
Q_DROPS_BEFORE=$(counter drops quarantine || echo -1)
check "isolate: wardctl quarantine $PUMP_MAC --level isolate --reason e2e" bash -c \
  "'$WARDCTL' --dataplane '$DP_SOCKET' quarantine $PUMP_MAC --level isolate --reason e2e --json >'$LOGDIR/q-isolate.json'"
T_ISOLATE=$(now)
ACKS_BEFORE=$(acks_after "$LOGDIR/stream-A.log" 0)
sleep 1.5
check "isolate: the reply says level isolate, changed" jq -e '.quarantine.level == "isolate" and .changed == true and .quarantine.reason == "e2e"' "$LOGDIR/q-isolate.json"
last_arrival() { awk -v p="^$1-" '$3 ~ p && $1 > m { m = $1 } END { printf "%.6f\n", m }' "$HL7LOG"; }
check "isolate: the ehr receives nothing of the stream after wardctl returned" compare \
  "returned at $T_ISOLATE; last arrival $(last_arrival A); $(arrivals_after A 0) received, $(arrivals_after A "$T_ISOLATE") after" \
  "$(arrivals_after A "$T_ISOLATE") == 0"
check "isolate: the sender's transfer stalls (no ACK after return + 0.2 s)" compare \
  "ACKs before: $ACKS_BEFORE, after: $(acks_after "$LOGDIR/stream-A.log" "$(fadd "$T_ISOLATE" 0.2)")" \
  "$ACKS_BEFORE >= 25 && $(acks_after "$LOGDIR/stream-A.log" "$(fadd "$T_ISOLATE" 0.2)") == 0"
Q_DROPS_AFTER=$(counter drops quarantine || echo -1)
check "isolate: drops.quarantine grows ($Q_DROPS_BEFORE -> $Q_DROPS_AFTER)" compare "" "$Q_DROPS_AFTER > $Q_DROPS_BEFORE"
check "isolate: wardctl quarantines lists the pump at level isolate" quarantined_as "$PUMP_MAC" isolate
check "isolate: status segmentation.quarantines == 1" seg_quarantines_is 1
check "isolate: EVE quarantine event (pump-1, isolate, reason e2e, actor wardctl)" eve_has \
  '.event_type == "quarantine" and .quarantine.action == "quarantine" and .quarantine.device == "'$PUMP_MAC'" and .quarantine.level == "isolate" and .quarantine.reason == "e2e" and .quarantine.actor == "wardctl" and .device.name == "pump-1"'
check "isolate: a new HL7 connection pump -> ehr fails" hl7_blocked wg-pump SEG0002
check "isolate: the ehr cannot reach the pump (tcp 23)" tcp_blocked wg-ehr "$PUMP" 23
check "isolate: the remediation host pacs (HTTP) stays reachable" http_ok wg-pump "http://$PACS/index.html"
check "isolate: DNS (udp 53 to the ehr) still answered" traffic wg-pump dns-query "$EHR"
stop_stream

# ---------------------------------------------------------------- 5: release

echo "--- release"
check "release: wardctl release $PUMP_MAC" wctl release "$PUMP_MAC" --reason e2e-done
check "release: a new HL7 exchange pump -> ehr is acknowledged again" hl7_acked wg-pump SEG0003
check "release: no quarantine left" no_quarantines
check "release: EVE release event" eve_has \
  '.event_type == "quarantine" and .quarantine.action == "release" and .quarantine.device == "'$PUMP_MAC'"'

# ---------------------------------------------------------------- 6: contain

echo "--- contain (the life-critical default)"
start_stream B
check "contain: the pump's HL7 stream to the ehr flows (>= 10 messages)" stream_flowing B 10
check "contain: wardctl quarantine $PUMP_MAC (no --level)" bash -c \
  "'$WARDCTL' --dataplane '$DP_SOCKET' quarantine $PUMP_MAC --reason e2e-contain --json >'$LOGDIR/q-contain.json'"
T_CONTAIN=$(now)
check "contain: the level is contain (life-critical default)" jq -e '.quarantine.level == "contain"' "$LOGDIR/q-contain.json"
check "contain: a new HL7 connection to the ehr (peer of an allow rule) is acknowledged" hl7_acked wg-pump SEG0004
check "contain: new TCP pump -> ehr:8080 (allowed only by the zone default) fails" tcp_blocked wg-pump "$EHR" 8080
check "contain: new HTTP pump -> pacs:80 (allowed only by the zone default) fails" http_blocked wg-pump "http://$PACS/index.html"
check "contain: new TCP ehr -> pump:23 (no allow rule) fails" tcp_blocked wg-ehr "$PUMP" 23
T_LATER=$(fadd "$T_CONTAIN" 0.5)
check "contain: the established HL7 stream keeps flowing (ehr gets messages after)" compare \
  "$(arrivals_after B "$T_LATER") messages of stream B after quarantine + 0.5 s" "$(arrivals_after B "$T_LATER") >= 20"
check "contain: the stream's ACKs keep coming back" compare \
  "$(acks_after "$LOGDIR/stream-B.log" "$T_LATER") ACKs after quarantine + 0.5 s" "$(acks_after "$LOGDIR/stream-B.log" "$T_LATER") >= 20"
check "contain: wardctl quarantines lists the pump at level contain" quarantined_as "$PUMP_MAC" contain
stop_stream
check "contain: release" wctl release "$PUMP_MAC"

# ---------------------------------------------------------------- 7: TTL

echo "--- time to live"
check "ttl: wardctl quarantine $PUMP_MAC --level isolate --ttl 3s" bash -c \
  "'$WARDCTL' --dataplane '$DP_SOCKET' quarantine $PUMP_MAC --level isolate --ttl 3s --json >'$LOGDIR/q-ttl.json'"
T_TTL=$(now)
check "ttl: expires 3 s after since" jq -e \
  '(.quarantine.expires_unix_ns | tonumber) - (.quarantine.since_unix_ns | tonumber) == 3000000000' "$LOGDIR/q-ttl.json"
check "ttl: blocked at once (pump -> ehr:8080)" tcp_blocked wg-pump "$EHR" 8080
sleep "$(awk -v a="$T_TTL" -v b="$(now)" 'BEGIN { d = a + 3.5 - b; printf "%.3f\n", (d > 0 ? d : 0) }')"
check "ttl: after 3.5 s the pump's HL7 exchange works again" hl7_acked wg-pump SEG0005
check "ttl: no quarantine left" no_quarantines
check "ttl: EVE expire event" eve_has \
  '.event_type == "quarantine" and .quarantine.action == "expire" and .quarantine.device == "'$PUMP_MAC'"'

# ---------------------------------------------------------------- 9: a rule's quarantine option

# The trigger goes to the ehr, not to pacs: pacs is on the remediation list, which an
# isolated device may still reach on every port.
echo "--- rule quarantine:isolate"
check "rule: monitor -> ehr:8080 works before (control)" tcp_ok wg-monitor "$EHR" 8080
traffic wg-monitor tcp-client "$EHR" 4444 --timeout 1 --message "backdoor" >"$LOGDIR/trigger.out" 2>&1 || true
check "rule: EVE quarantine of the monitor by rule:9500001 with latency_us" eve_has \
  '.event_type == "quarantine" and .quarantine.action == "quarantine" and .quarantine.actor == "rule:9500001" and .quarantine.device == "'$MONITOR_MAC'" and .quarantine.level == "isolate" and (.quarantine.latency_us | type == "number")'
echo "    (match to enforcement: $(jq -r 'select(.event_type == "quarantine" and .quarantine.actor == "rule:9500001") | .quarantine.latency_us' "$EVE" 2>/dev/null | head -n 1) us)"
check "rule: wardctl quarantines lists the monitor at level isolate" quarantined_as "$MONITOR_MAC" isolate
check "rule: the monitor can no longer reach the ehr (tcp 8080)" tcp_blocked wg-monitor "$EHR" 8080
check "rule: the monitor still reaches the remediation host pacs" http_ok wg-monitor "http://$PACS/index.html"

# ---------------------------------------------------------------- 11: bad input

echo "--- bad input"
wctl quarantines --json | jq -S . >"$LOGDIR/quarantines-before.json"
bad_input() {  # bad_input WANT_RC PATTERN ARGS...: exit WANT_RC, stderr matches PATTERN
  local want=$1 pattern=$2 rc=0
  shift 2
  wctl "$@" >"$LOGDIR/bad.out" 2>"$LOGDIR/bad.err" || rc=$?
  echo "exit $rc; stderr: $(cat "$LOGDIR/bad.err")"
  ((rc == want)) && grep -Eqi -- "$pattern" "$LOGDIR/bad.err"
}
check "bad input: quarantine 02:77:00:00:00 (malformed MAC) exits 2" bad_input 2 "02:77:00:00:00.*(MAC|mac)" quarantine 02:77:00:00:00
check "bad input: --level lockdown exits 2" bad_input 2 "lockdown" quarantine "$MONITOR_MAC" --level lockdown
check "bad input: --ttl 30 (no unit) exits 2" bad_input 2 "ttl.*30" quarantine "$PUMP_MAC" --ttl 30
check "bad input: release of a device not quarantined exits 1" bad_input 1 "not quarantined" release "$PUMP_MAC"
quarantines_unchanged() {
  wctl quarantines --json | jq -S . >"$LOGDIR/quarantines-after.json"
  diff "$LOGDIR/quarantines-before.json" "$LOGDIR/quarantines-after.json"
}
check "bad input: wardctl quarantines unchanged" quarantines_unchanged

check "rule: release the monitor" wctl release "$MONITOR_MAC"
check "rule: the monitor reaches the ehr again" tcp_ok wg-monitor "$EHR" 8080

# ---------------------------------------------------------------- 10: inventory

echo "--- inventory"
inventory_ok() {
  local t
  for ((t = 0; t < 30; t++)); do
    wctl devices --json >"$LOGDIR/devices.json"
    if jq -e --arg pm "$PUMP_MAC" --arg mm "$MONITOR_MAC" --arg pip "$PUMP" --arg mip "$MONITOR" '
        any(.devices[]; .mac == $pm and (.ips | index($pip)) and .device_class == "infusion-pump"
            and .criticality == "life-critical" and (.packets_from | tonumber) > 0)
        and any(.devices[]; .mac == $mm and (.ips | index($mip)) and (.packets_from | tonumber) > 0)' \
      "$LOGDIR/devices.json" >/dev/null; then
      return 0
    fi
    sleep 0.1
  done
  jq -c '.devices[]' "$LOGDIR/devices.json"
  return 1
}
check "inventory: the pump (ip, class, criticality, packets_from > 0) and the learned monitor" inventory_ok
check "inventory: wardctl device set gives the monitor a name, class and criticality" \
  wctl device set "$MONITOR_MAC" --name monitor-icu-1 --class patient-monitor --criticality clinical
device_named() {
  wctl devices --json | jq -e --arg mm "$MONITOR_MAC" \
    'any(.devices[]; .mac == $mm and .name == "monitor-icu-1" and .device_class == "patient-monitor"
                     and .criticality == "clinical")' >/dev/null
}
check "inventory: the monitor's record is listed" device_named
refused() { ! "$@" >/dev/null 2>&1; }
check "inventory: device set with an unknown zone is refused" \
  refused wctl device set "$MONITOR_MAC" --zone nowhere

# ---------------------------------------------------------------- 8: restart keeps the quarantine

echo "--- kill -9 and restart"
check "restart: quarantine the pump (isolate)" wctl quarantine "$PUMP_MAC" --level isolate --reason restart-test
check "restart: the snapshot names the pump" grep -qi "$PUMP_MAC" "$SNAPSHOT"
kill -KILL "$DP_PID"
wait "$DP_PID" 2>/dev/null || true
DP_PID=""
EHR_CONN_BEFORE=$(grep -c "connection from $PUMP" "$LOGDIR/ehr-8080.out" || true)
# The pump keeps trying (a connection every ~0.1 s) from before the restart until well after.
ip netns exec wg-pump bash -c "end=\$((SECONDS + 7)); while ((SECONDS < end)); do
  echo \"\$(date +%s.%N) \$('$PY' '$TRAFFIC' tcp-client $EHR 8080 --timeout 0.3 --message restart-probe)\"; done" \
  >"$LOGDIR/restart-probe.out" 2>&1 &
PROBE_PID=$!
BG_PIDS+=("$PROBE_PID")
start_dp "$LOGDIR/ward.yaml" "$LOGDIR/dp2.log" || done_
T_RESTARTED=$(now)
check "restart: the monitor reaches the ehr (the gateway bridges again)" tcp_ok wg-monitor "$EHR" 8080
wait "$PROBE_PID" 2>/dev/null || true
probe_blocked() {  # probes while wardgate-dp started (socket up = T_RESTARTED - 1 s) and after
  local n live
  n=$(grep -c . "$LOGDIR/restart-probe.out" || true)
  live=$(awk -v t="$(fadd "$T_RESTARTED" -1)" '$1 > t { n++ } END { print n + 0 }' "$LOGDIR/restart-probe.out")
  echo "$n probes ($live after the control socket appeared), $(grep -c REPLY "$LOGDIR/restart-probe.out" || true) answered"
  cat "$LOGDIR/restart-probe.out"
  ((live >= 4)) && ! grep -q REPLY "$LOGDIR/restart-probe.out" &&
    (($(grep -c "connection from $PUMP" "$LOGDIR/ehr-8080.out" || true) == EHR_CONN_BEFORE))
}
check "restart: no connection from the pump got through, from the first packets on" probe_blocked
check "restart: drops.quarantine > 0 in the new process" compare "" "$(counter drops quarantine || echo -1) > 0"
check "restart: wardctl quarantines lists the pump at level isolate" quarantined_as "$PUMP_MAC" isolate
check "restart: status segmentation.quarantines == 1, snapshot_path set, no snapshot_error" bash -c \
  "'$WARDCTL' --dataplane '$DP_SOCKET' status --json | jq -e '(.segmentation[] | select(.reason == \"quarantines\") | .count | tonumber) == 1 and .snapshot_path == \"$SNAPSHOT\" and .snapshot_error == \"\"'"
check "restart: EVE restore event for the pump (isolate, reason restart-test)" eve_has \
  '.event_type == "quarantine" and .quarantine.action == "restore" and .quarantine.device == "'$PUMP_MAC'" and .quarantine.level == "isolate" and .quarantine.reason == "restart-test"'
check "restart: a new HL7 connection pump -> ehr fails" hl7_blocked wg-pump SEG0006
check "restart: release" wctl release "$PUMP_MAC"
check "restart: the pump's HL7 exchange works again" hl7_acked wg-pump SEG0007

stop_dp
check "final: no mbuf leaked" dp_stats '.mbufs_in_use_at_exit == 0'
check "final: quarantine drops counted" dp_stats '.drops.quarantine > 0'
echo "segmentation_e2e.sh: $((SECONDS - STARTED)) s"
done_
