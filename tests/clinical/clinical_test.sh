#!/usr/bin/env bash
# clinical_test.sh - tests of the shipped clinical rule set, rules/clinical.rules.
#
#   1. the file: `wardctl rules check` accepts it, with the policy rules (published
#      commented out) disabled, and a site override on `wardgate_tier policy` enables
#      exactly those; every rule has msg, sid, rev, classtype, reference and the
#      wardgate metadata (rule_lint.py);
#   2. positive: one generated capture (make_cases.py: complete TCP sessions, UDP, ICMP,
#      tunnels) with a case per rule and near misses, one offline run with the policy
#      tier enabled by that override, then per case exactly the expected sids
#      (check_eve.py); the public captures in shared/data/captures fire what they should;
#   3. benign: real clients in two network namespaces (HL7 ADT/ORU with mllp_send,
#      DICOM C-ECHO and C-STORE with dcmtk, DNS through the system resolver, NTP, HTTPS,
#      HTTP) captured with dumpcap; the shipped rules raise no alert on that capture;
#      then real attack tools (curl with a default credential, storescu with a user
#      identity and a JWT, nmap dicom-ping, mllp_send with MSH-8) fire their rules.
#
# Usage (root): tests/clinical/clinical_test.sh     PASS:/FAIL: lines, "N passed, N failed".
# Traffic goes only between the namespaces wg-cl-a (10.77.9.1) and wg-cl-b (10.77.9.2).
set -uo pipefail
SELF_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=${REPO:-$(cd "$SELF_DIR/../.." && pwd)}
source "$REPO/tests/lib/ward.sh"
[[ $EUID -eq 0 ]] || { echo "clinical_test.sh: must run as root" >&2; exit 2; }

PY=/usr/bin/python3
DP=$WARDGATE_BUILD/wardgate-dp
WARDCTL=$WARDGATE_BUILD/wardctl
RULES=${CLINICAL_RULES:-$REPO/rules/clinical.rules}
SHARED=${SHARED:-$REPO/../shared}
WORK=$(mktemp -d /tmp/wg-clinical.XXXXXX)
NS_A=wg-cl-a
NS_B=wg-cl-b
IF_A=wg-cl-va
IF_B=wg-cl-vb
A=10.77.9.1
B=10.77.9.2
BG_PIDS=()
CAP_PID=""

cleanup() {
  local p
  [[ -z $CAP_PID ]] || kill -INT "$CAP_PID" 2>/dev/null
  for p in "${BG_PIDS[@]}"; do kill "$p" 2>/dev/null; done
  wait 2>/dev/null
  ip netns del "$NS_A" 2>/dev/null
  ip netns del "$NS_B" 2>/dev/null
  rm -rf "/etc/netns/$NS_A"
  rmdir /etc/netns 2>/dev/null  # only when the test created it (empty)
  if ((FAILED == 0)); then rm -rf "$WORK"; else echo "work files kept in $WORK" >&2; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# py_checks CMD...: run a checker that prints PASS:/FAIL: lines and count them; its
# detail lines go to stderr. A checker that fails without a FAIL line counts one.
py_checks() {
  local out rc p f
  out=$("$@" 2>"$WORK/py_checks.err")
  rc=$?
  [[ -z $out ]] || printf '%s\n' "$out"
  sed 's/^/  /' "$WORK/py_checks.err" >&2
  p=$(grep -c '^PASS:' <<<"$out")
  f=$(grep -c '^FAIL:' <<<"$out")
  PASSED=$((PASSED + p))
  FAILED=$((FAILED + f))
  if ((rc != 0 && f == 0)); then _ward_fail "$* (exit $rc)"; fi
}

# offline NAME PCAP ARGS...: one offline run (ARGS: --rules, --overrides, --config ...),
# EVE in $WORK/NAME.eve.json; no compiled-rule cache outside $WORK.
offline() {
  local name=$1 pcap=$2
  shift 2
  rm -f "$WORK/$name.eve.json" "$WORK/$name.stats.json"
  "$DP" --pcap "$pcap" "$@" --cache-dir "" --eve "$WORK/$name.eve.json" >"$WORK/$name.stats.json" \
    2>"$WORK/$name.log" || { echo "wardgate-dp failed:"; tail -5 "$WORK/$name.log"; return 1; }
  touch "$WORK/$name.eve.json"
}

# sids NAME [PORT]: the distinct sids alerted in run NAME (on flows with PORT at either end).
sids() {
  jq -r --arg p "${2:-}" 'select(.event_type == "alert")
    | select($p == "" or .dest_port == ($p | tonumber) or .src_port == ($p | tonumber))
    | .alert.signature_id' "$WORK/$1.eve.json" | sort -n | uniq | tr '\n' ' ' | sed 's/ $//'
}

# sids_are NAME "SID SID..." [PORT]: exactly those sids fired.
sids_are() {
  local got
  [[ -f $WORK/$1.eve.json ]] || { echo "no EVE file for run $1"; return 1; }
  got=$(sids "$1" "${3:-}")
  echo "fired: [$got], expected: [$2]"
  [[ $got == "$2" ]]
}

# ================================================================ 1. the rule file
# A site's override that turns the policy tier on (format: rules/overrides.h).
printf '%s\n' 'overrides:' '  - metadata: "wardgate_tier policy"' '    enable: true' \
  '    comment: "this site also wants the policy tier"' >"$WORK/policy.yaml"
NPOLICY=$(grep -c '^# alert .*wardgate_tier policy' "$RULES")
NTHREAT=$(grep -c '^alert ' "$RULES")
rules_check() {  # rules_check PATTERN ARGS...: wardctl rules check exits 0 and prints PATTERN
  local pattern=$1 out rc
  shift
  out=$("$WARDCTL" rules check "$@" 2>&1)
  rc=$?
  echo "$out"
  [[ $rc == 0 ]] && grep -q -- "$pattern" <<<"$out"
}
check "wardctl rules check accepts rules/clinical.rules ($NTHREAT threat rules loaded, 0 errors)" \
  rules_check "^$NTHREAT rule(s) loaded .* 0 error(s)" "$RULES"
check "wardctl rules check keeps the $NPOLICY commented-out policy rules as disabled" \
  rules_check "^disabled: $NPOLICY " "$RULES"
check "the override 'metadata wardgate_tier policy: enable' enables exactly the $NPOLICY policy rules" \
  rules_check "enabled $NPOLICY, disabled 0" --overrides "$WORK/policy.yaml" "$RULES"
py_checks "$PY" "$SELF_DIR/rule_lint.py" "$RULES"

# ================================================================ 2. positive cases
check "generate the positive cases capture" "$PY" "$SELF_DIR/make_cases.py" "$WORK/cases.pcap" "$WORK/cases.json"
check "offline run over the cases, policy tier enabled by the override" \
  offline cases "$WORK/cases.pcap" --rules "$RULES" --overrides "$WORK/policy.yaml"
py_checks "$PY" "$SELF_DIR/check_eve.py" "$WORK/cases.json" "$WORK/cases.eve.json" "$RULES"
# suricata-update's other way to enable them: the same file with the lines uncommented.
"$PY" "$SELF_DIR/rule_lint.py" "$RULES" --enable-policy "$WORK/all.rules"
same_alerts() {
  offline cases-uncommented "$WORK/cases.pcap" --rules "$WORK/all.rules" || return 1
  diff <(jq -c 'select(.event_type == "alert") | [.timestamp, .alert.signature_id]' "$WORK/cases.eve.json") \
    <(jq -c 'select(.event_type == "alert") | [.timestamp, .alert.signature_id]' "$WORK/cases-uncommented.eve.json")
}
check "policy lines uncommented give the same alerts as the override" same_alerts

# Public captures (nDPI's test data): which rules they must fire, policy tier enabled.
# smbv1.pcap starts after the handshake, so streams are picked up midstream.
printf 'stream:\n  midstream: true\n' >"$WORK/midstream.yaml"
real_capture() {  # real_capture FILE "SIDS"
  local f=$SHARED/data/captures/$1
  offline "real-${1%.pcap}" "$f" --rules "$RULES" --overrides "$WORK/policy.yaml" --config "$WORK/midstream.yaml" &&
    sids_are "real-${1%.pcap}" "$2"
}
if [[ -d $SHARED/data/captures ]]; then
  check "ftp.pcap: FTP session policy only (anonymous login, no password alert)" real_capture ftp.pcap "9100501"
  check "http_auth.pcap: HTTP Basic in the clear" real_capture http_auth.pcap "9100003"
  check "smbv1.pcap: SMBv1 negotiated and the Trans2 SESSION_SETUP implant check" real_capture smbv1.pcap "9100414 9100502"
  check "snmp.pcap: SNMP community public" real_capture snmp.pcap "9100004"
  check "upnp.pcap: WS-Discovery policy" real_capture upnp.pcap "9100505"
  check "vnc.pcap: VNC session policy, no None security (RealVNC type 13)" real_capture vnc.pcap "9100503"
else
  echo "SKIP: $SHARED/data/captures not found; public captures not tested"
fi

# ================================================================ 3. real clients in namespaces
ns_up() {
  ip netns del "$NS_A" 2>/dev/null
  ip netns del "$NS_B" 2>/dev/null
  ip netns add "$NS_A" && ip netns add "$NS_B" &&
    ip link add "$IF_A" netns "$NS_A" type veth peer name "$IF_B" netns "$NS_B" &&
    ip -n "$NS_A" addr add "$A/24" dev "$IF_A" && ip -n "$NS_B" addr add "$B/24" dev "$IF_B" &&
    ip -n "$NS_A" link set "$IF_A" up && ip -n "$NS_B" link set "$IF_B" up &&
    ip -n "$NS_A" link set lo up && ip -n "$NS_B" link set lo up &&
    ip netns exec "$NS_A" ethtool -K "$IF_A" tx off >/dev/null &&
    ip netns exec "$NS_B" ethtool -K "$IF_B" tx off >/dev/null &&
    mkdir -p "/etc/netns/$NS_A" && echo "nameserver $B" >"/etc/netns/$NS_A/resolv.conf" &&
    ip netns exec "$NS_A" ping -c1 -W2 "$B" >/dev/null
}

capture_start() {  # capture_start FILE: dumpcap on B's interface (tcpdump if present)
  rm -f "$1"
  if command -v tcpdump >/dev/null; then
    ip netns exec "$NS_B" tcpdump -i "$IF_B" -U -w "$1" >"$WORK/capture.log" 2>&1 &
  else
    ip netns exec "$NS_B" dumpcap -q -P -i "$IF_B" -w "$1" >"$WORK/capture.log" 2>&1 &
  fi
  CAP_PID=$!
  local i
  for ((i = 0; i < 100; i++)); do
    [[ -s $1 ]] && { sleep 0.5; return 0; }
    sleep 0.1
  done
  cat "$WORK/capture.log"
  return 1
}

capture_stop() {
  sleep 0.5
  kill -INT "$CAP_PID" 2>/dev/null
  wait "$CAP_PID" 2>/dev/null
  CAP_PID=""
}

bg_in_b() {  # bg_in_b LOG CMD...: a server in namespace B
  local log=$1
  shift
  ip netns exec "$NS_B" "$@" >"$log" 2>&1 &
  BG_PIDS+=($!)
}

wait_udp() {  # wait_udp PORT
  local i
  for ((i = 0; i < 50; i++)); do
    [[ -n $(ip netns exec "$NS_B" ss -Hlun "sport = :$1" 2>/dev/null) ]] && return 0
    sleep 0.1
  done
  return 1
}

in_a() { ip netns exec "$NS_A" "$@"; }

hl7_file() {  # hl7_file FILE TYPE ID MSH8 SEGMENT...: one MLLP-framed message
  local file=$1 type=$2 id=$3 sec=$4 msg
  shift 4
  msg="MSH|^~\\&|PUMP|ICU|EHR|HOSP|$(date -u +%Y%m%d%H%M%S)|$sec|$type|$id|P|2.5"
  for seg in "$@"; do msg+=$'\r'"$seg"; done
  printf '\x0b%s\r\x1c\x0d' "$msg" >"$file"
}

hl7_acked() {  # hl7_acked FILE PORT ID
  local out
  out=$(timeout --foreground 15 ip netns exec "$NS_A" mllp_send -p "$2" --file "$1" "$B" | tr '\r' '\n')
  echo "$out"
  grep -q "^MSA|AA|$3" <<<"$out"
}

count_at_least() {  # count_at_least N PCAP TSHARK_ARGS...: frames matching >= N
  local n=$1 pcap=$2 got
  shift 2
  got=$(tshark -r "$pcap" "$@" 2>/dev/null | wc -l)
  echo "$got frames"
  ((got >= n))
}

make_dicom() {  # a 128x128 grey BMP turned into a Secondary Capture image by img2dcm
  "$PY" - "$WORK/image.bmp" <<'EOF'
import struct, sys
w = h = 128
pixels = b"".join(bytes((x * 3 + y * 5) % 256 for x in range(w)) for y in range(h))
palette = b"".join(bytes([i, i, i, 0]) for i in range(256))
off = 14 + 40 + len(palette)
with open(sys.argv[1], "wb") as f:
    f.write(b"BM" + struct.pack("<IHHI", off + len(pixels), 0, 0, off))
    f.write(struct.pack("<IiiHHIIiiII", 40, w, h, 1, 8, 0, len(pixels), 2835, 2835, 256, 0))
    f.write(palette + pixels)
EOF
  img2dcm -i BMP -k "PatientName=DOE^JANE" -k "PatientID=4711" -k "Modality=OT" \
    "$WORK/image.bmp" "$WORK/image.dcm"
}

if ! ns_up; then
  _ward_fail "namespaces $NS_A/$NS_B with a veth pair ($A <-> $B)"
  finish
fi
_ward_pass "namespaces $NS_A/$NS_B with a veth pair ($A <-> $B)"

# Servers in B.
mkdir -p "$WORK/www" "$WORK/store" "$WORK/store2"
printf '<html><head><title>ward</title></head><body><h1>Ward 3 dashboard</h1></body></html>\n' >"$WORK/www/index.html"
printf '{"bed":"ICU-01","hr":72,"spo2":97}\n' >"$WORK/www/vitals.json"
"$PY" -c "import random, sys; random.seed(4711); sys.stdout.buffer.write(random.randbytes(262144))" >"$WORK/www/trend.bin"
base64 -d >"$WORK/www/ward.png" <<<"iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$WORK/key.pem" -out "$WORK/cert.pem" -subj "/CN=ward-ehr" \
  -days 2 >/dev/null 2>&1
check "make a DICOM Secondary Capture image (img2dcm)" make_dicom
: >"$WORK/hl7.bin"
bg_in_b "$WORK/mllp.log" timeout 600 "$PY" "$REPO/tests/e2e/mllp_listener.py" --host "$B" --port 2575 \
  --out "$WORK/hl7.bin" --timeout 10
bg_in_b "$WORK/storescp.log" timeout 600 storescp -dhl -od "$WORK/store" 11112
bg_in_b "$WORK/http.log" timeout 600 "$PY" -c "
import functools, http.server, socketserver, sys
socketserver.TCPServer.allow_reuse_address = True
h = functools.partial(http.server.SimpleHTTPRequestHandler, directory=sys.argv[1])
socketserver.TCPServer(('$B', 8080), h).serve_forever()" "$WORK/www"
bg_in_b "$WORK/https.log" timeout 600 openssl s_server -accept 4443 -cert "$WORK/cert.pem" -key "$WORK/key.pem" -www -quiet
bg_in_b "$WORK/dns.log" timeout 600 "$PY" "$SELF_DIR/udp_services.py" dns-server "$B" "$B"
bg_in_b "$WORK/ntp.log" timeout 600 "$PY" "$SELF_DIR/udp_services.py" ntp-server "$B"
servers_up() {
  local p
  for p in 2575 11112 8080 4443; do wait_for_port "$NS_B" "$p" 10 || return 1; done
  wait_udp 53 && wait_udp 123
}
check "servers up in $NS_B (MLLP, storescp, HTTP, HTTPS, DNS, NTP)" servers_up

# --- benign traffic
check "start capture on $IF_B" capture_start "$WORK/benign.pcap"
hl7_file "$WORK/adt.hl7" "ADT^A01" ADT0001 "" "EVN|A01|20251130120000" \
  "PID|1||4711^^^HOSP^MR||DOE^JANE||19700101|F" "PV1|1|I|ICU^01^01||||1234^WELBY^MARCUS"
hl7_file "$WORK/oru.hl7" "ORU^R01" ORU0001 "" "PID|1||4711^^^HOSP^MR||DOE^JANE" \
  "OBR|1||ORD1|8867-4^Heart rate^LN" "OBX|1|NM|8867-4^Heart rate^LN||72|/min|60-100|N|||F" \
  "OBX|2|NM|2708-6^SpO2^LN||97|%|94-100|N|||F"
check "benign: HL7 ADT^A01 over MLLP acknowledged (mllp_send)" hl7_acked "$WORK/adt.hl7" 2575 ADT0001
check "benign: HL7 ORU^R01 over MLLP acknowledged (mllp_send)" hl7_acked "$WORK/oru.hl7" 2575 ORU0001
check "benign: DICOM C-ECHO (echoscu, default AE titles)" timeout 20 ip netns exec "$NS_A" echoscu "$B" 11112
store_ok() {
  timeout 30 ip netns exec "$NS_A" storescu -aet MODALITY1 -aec STORESCP "$B" 11112 "$WORK/image.dcm" &&
    sleep 0.3 && [[ -n $(ls -A "$WORK/store") ]]
}
check "benign: DICOM C-STORE of an image (storescu to storescp)" store_ok
resolve() {  # resolve NAME: through the glibc resolver of namespace A
  local out
  out=$(timeout 10 ip netns exec "$NS_A" getent ahostsv4 "$1")
  echo "$out"
  grep -q "^$B " <<<"$out"
}
check "benign: DNS lookup of ehr.ward.test through the system resolver" resolve ehr.ward.test
check "benign: DNS lookup of pacs.ward.test through the system resolver" resolve pacs.ward.test
check "benign: NTP client/server exchanges" timeout 20 ip netns exec "$NS_A" "$PY" "$SELF_DIR/udp_services.py" ntp-client "$B" 4
http_code() {  # http_code WANT CURL_ARGS...
  local want=$1 got
  shift
  got=$(timeout 15 ip netns exec "$NS_A" curl -s -o /dev/null -w '%{http_code}' "$@")
  echo "HTTP $got"
  [[ $got == "$want" ]]
}
check "benign: HTTPS page (curl -k to openssl s_server)" http_code 200 -k "https://$B:4443/"
check "benign: HTTP page (curl)" http_code 200 "http://$B:8080/index.html"
check "benign: HTTP image (curl)" http_code 200 "http://$B:8080/ward.png"
check "benign: HTTP JSON (curl)" http_code 200 "http://$B:8080/vitals.json"
check "benign: HTTP 256 KiB binary download (curl)" http_code 200 "http://$B:8080/trend.bin"
capture_stop

# The capture holds the exchanges (so the silence below is not vacuous).
BP=$WORK/benign.pcap
check "benign capture: 2 HL7 ACKs (MSA|AA)" count_at_least 2 "$BP" -Y 'tcp.srcport == 2575 && frame contains "MSA|AA"'
check "benign capture: DICOM P-DATA-TF PDUs (echo and store)" count_at_least 4 "$BP" -d tcp.port==11112,dicom -Y 'dicom.pdu.type == 4'
check "benign capture: DNS answers" count_at_least 2 "$BP" -Y 'dns.flags.response == 1 && dns.count.answers > 0'
check "benign capture: NTP server replies" count_at_least 4 "$BP" -Y 'ntp.flags.mode == 4'
check "benign capture: TLS ServerHello" count_at_least 1 "$BP" -d tcp.port==4443,tls -Y 'tls.handshake.type == 2'
check "benign capture: HTTP 200 responses" count_at_least 4 "$BP" -d tcp.port==8080,http -Y 'http.response.code == 200'

check "benign: offline run with the shipped rules" offline benign "$BP" --rules "$RULES"
check "benign: no alert from the shipped rules (threat tier)" sids_are benign ""
check "benign: offline run with the policy tier enabled" offline benign-all "$BP" --rules "$RULES" --overrides "$WORK/policy.yaml"
check "benign: with the policy tier enabled only HL7-in-clear and ANY-SCP fire (the streams were inspected)" \
  sids_are benign-all "9100100 9100205"

# --- real attack tools: each against its own server port
bg_in_b "$WORK/storescp-user.log" timeout 600 storescp -dhl -od "$WORK/store2" 11113
bg_in_b "$WORK/storescp-jwt.log" timeout 600 storescp -dhl -od "$WORK/store2" 11114
bg_in_b "$WORK/storescp-nmap.log" timeout 600 storescp -dhl -od "$WORK/store2" 4242
bg_in_b "$WORK/mllp2.log" timeout 600 "$PY" "$REPO/tests/e2e/mllp_listener.py" --host "$B" --port 2576 \
  --out "$WORK/hl7-2.bin" --timeout 10
attack_servers_up() { wait_for_port "$NS_B" 11113 && wait_for_port "$NS_B" 11114 && wait_for_port "$NS_B" 4242 &&
  wait_for_port "$NS_B" 2576; }
check "attack-tool servers up" attack_servers_up
check "start capture for the attack tools" capture_start "$WORK/attack.pcap"
check "attack: curl with the Lantronix default admin:PASS" http_code 200 -u admin:PASS "http://$B:8080/index.html"
check "attack: storescu with User Identity username+passcode" timeout 30 ip netns exec "$NS_A" storescu -aet MODALITY1 \
  -aec STORESCP --user radiographer --password 'Sup3rSecret' "$B" 11113 "$WORK/image.dcm"
printf 'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJtb2RhbGl0eTEifQ.c2lnbmF0dXJl' >"$WORK/token.jwt"
check "attack: storescu with a JWT User Identity" timeout 30 ip netns exec "$NS_A" storescu -aet MODALITY1 \
  -aec STORESCP --jwt "$WORK/token.jwt" "$B" 11114 "$WORK/image.dcm"
nmap_ping() {
  local out
  out=$(timeout 60 ip netns exec "$NS_A" nmap -Pn -n -sT -p 4242 --script dicom-ping "$B" 2>&1)
  echo "$out"
  grep -q "DICOM Service Provider discovered" <<<"$out"
}
check "attack: nmap --script dicom-ping finds the SCP" nmap_ping
hl7_file "$WORK/msh8.hl7" "ORU^R01" SEC0001 "pump01:Passw0rd" "PID|1||4711^^^HOSP^MR||DOE^JANE"
check "attack: HL7 with a password in MSH-8 acknowledged" hl7_acked "$WORK/msh8.hl7" 2576 SEC0001
capture_stop
check "attack: offline run with the shipped rules" offline attack "$WORK/attack.pcap" --rules "$RULES"
check "attack: curl admin:PASS fires HTTP Basic and the Lantronix default" sids_are attack "9100003 9100040" 8080
check "attack: storescu --user/--password fires DICOM User Identity type 2" sids_are attack "9100200" 11113
check "attack: storescu --jwt fires DICOM User Identity bearer token" sids_are attack "9100201" 11114
check "attack: nmap dicom-ping fires the nmap fingerprint" sids_are attack "9100203" 4242
check "attack: mllp_send with MSH-8 fires the HL7 MSH-8 rule" sids_are attack "9100101" 2576
check "attack: nothing else fired" sids_are attack "9100003 9100040 9100101 9100200 9100201 9100203"

finish
