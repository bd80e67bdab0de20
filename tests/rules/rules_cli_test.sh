#!/usr/bin/env bash
# Tools for rule authors: `wardctl rules check` and the offline mode with --rules,
# --eve and --simulate-ips. Run as: tests/rules/rules_cli_test.sh
set -uo pipefail
source "$(dirname "$0")/../lib/ward.sh"
WARDCTL=$WARDGATE_BUILD/wardctl
DP=$WARDGATE_BUILD/wardgate-dp
PY=/usr/bin/python3
SHARED=${SHARED:-$REPO/../shared}
WORK=$(mktemp -d /tmp/wg-rules-cli.XXXXXX)
trap 'rm -rf "$WORK"' EXIT

cat >"$WORK/good.rules" <<'EOF2'
# HL7 over MLLP
alert tcp any any -> any 2575 (msg:"HL7 ADT"; flow:to_server; content:"ADT^A01"; classtype:policy-violation; sid:1; rev:1;)
drop tcp any any -> any 2575 (msg:"HL7 forbidden"; content:"EVILCMD"; nocase; sid:2; rev:1;)
pass udp any any -> any 123 (msg:"NTP"; sid:3;)
EOF2
cat >"$WORK/bad.rules" <<'EOF2'
alert tcp any any -> any any (msg:"ok"; content:"a"; sid:10;)
alert tcp any any -> any any (msg:"typo"; contnet:"a"; sid:11;)
alert tcp any any -> any any (msg:"depth"; content:"abcdef"; depth:3; sid:12;)
alert tcp any any -> any any (msg:"pcre"; pcre:"/(unclosed/"; sid:13;)
EOF2

check_out() {  # check_out WANT_EXIT PATTERN CMD...: exit code and a line in stdout
  local want=$1 pattern=$2 out rc
  shift 2
  out=$("$@" 2>&1)
  rc=$?
  [[ $rc == "$want" ]] || { echo "exit $rc, expected $want"; echo "$out" | tail -5; return 1; }
  grep -qE -- "$pattern" <<<"$out" || { echo "no line matching '$pattern' in:"; echo "$out" | tail -8; return 1; }
}
check "rules check: a good file passes with a summary" check_out 0 "3 rule\(s\) loaded of 3" "$WARDCTL" rules check "$WORK/good.rules"
check "rules check: summary counts rules by action" check_out 0 "by action:  alert 1  drop 1  pass 1" "$WARDCTL" rules check "$WORK/good.rules"
check "rules check: summary reports compile time and database size" check_out 0 "[0-9]+ database\(s\) of [0-9]+ bytes, [0-9.]+ ms" "$WARDCTL" rules check "$WORK/good.rules"
check "rules check: unknown keyword as file:line: sid N: keyword" check_out 1 "bad.rules:2: sid 11: contnet:" "$WARDCTL" rules check "$WORK/bad.rules"
check "rules check: depth smaller than content" check_out 1 "bad.rules:3: sid 12: depth:" "$WARDCTL" rules check "$WORK/bad.rules"
check "rules check: pcre PCRE2 refuses" check_out 1 "bad.rules:4: sid 13: pcre" "$WARDCTL" rules check "$WORK/bad.rules"
check "rules check: missing file" check_out 1 "nope.rules:0: sid \?: file" "$WARDCTL" rules check "$WORK/nope.rules"

# Tuning on top of a published file: overrides, threshold.config, the database cache.
cat >"$WORK/site.yaml" <<'EOF2'
overrides:
  - sid: 1
    action: drop
  - sid: 99
    disable: true
EOF2
cat >"$WORK/bad-site.yaml" <<'EOF2'
overrides:
  - sid: "5-2"
    action: drop
EOF2
printf 'suppress gen_id 1, sig_id 1, track by_src, ip 10.77.0.11\n' >"$WORK/threshold.config"
printf 'suppress gen_id 1, sig_id 1, track by_color\n' >"$WORK/bad-threshold.config"
check "rules check --overrides: actions changed, counted" check_out 0 "by action:  drop 2  pass 1" \
  "$WARDCTL" rules check --overrides "$WORK/site.yaml" "$WORK/good.rules"
check "rules check --overrides: an entry matching nothing is a warning" check_out 0 "warning: .*site.yaml:4: entry matched no rule" \
  "$WARDCTL" rules check --overrides "$WORK/site.yaml" "$WORK/good.rules"
check "rules check --overrides: a bad range is an error with file:line" check_out 1 "bad-site.yaml:2: sid" \
  "$WARDCTL" rules check --overrides "$WORK/bad-site.yaml" "$WORK/good.rules"
check "rules check --threshold-file: a good file passes" check_out 0 "3 rule\(s\) loaded" \
  "$WARDCTL" rules check --threshold-file "$WORK/threshold.config" "$WORK/good.rules"
check "rules check --threshold-file: a bad line is an error with file:line" check_out 1 "bad-threshold.config:1: .*track" \
  "$WARDCTL" rules check --threshold-file "$WORK/bad-threshold.config" "$WORK/good.rules"
check "rules check --cache-dir: first run stores the databases" check_out 0 "cache: 0 of [0-9]+ database\(s\) loaded from .*, [1-9][0-9]* stored" \
  "$WARDCTL" rules check --cache-dir "$WORK/cache" "$WORK/good.rules"
check "rules check --cache-dir: second run loads them all" check_out 0 "cache: ([0-9]+) of \1 database\(s\) loaded from .*, 0 stored" \
  "$WARDCTL" rules check --cache-dir "$WORK/cache" "$WORK/good.rules"
check "rules check: commented-out rules are counted as disabled" check_out 0 "disabled: 1 " \
  bash -c "printf '# alert tcp any any -> any any (content:\"x\"; sid:50;)\n' | cat - '$WORK/good.rules' >'$WORK/with-disabled.rules' && '$WARDCTL' rules check '$WORK/with-disabled.rules'"

if [[ -d $SHARED/data/et-open ]]; then
  check "rules check --lenient: ET Open loads, skipped keywords counted" check_out 0 "skipped \(lenient\), by unsupported keyword:.*protocol:http" \
    "$WARDCTL" rules check --lenient "$SHARED"/data/et-open/*.rules
  check "rules check strict: ET Open refused for unsupported keywords" check_out 1 "unsupported" \
    "$WARDCTL" rules check "$SHARED"/data/et-open/emerging-scan.rules
fi

# Offline with rules: an HL7 exchange with a forbidden command, IDS vs simulated IPS.
"$PY" - "$WORK/hl7.pcap" <<'EOF2'
import sys
from scapy.all import IP, TCP, Ether, Raw, wrpcap
c, s = ("10.77.0.11", 40000), ("10.77.0.21", 2575)
e = Ether(src="02:77:00:00:00:11", dst="02:77:00:00:00:21")
r = Ether(src="02:77:00:00:00:21", dst="02:77:00:00:00:11")
msg1 = b"\x0bMSH|^~\\&|PUMP|ICU|EHR|HOSP|20261130||ADT^A01|1|P|2.5\r\x1c\r"
msg2 = b"\x0bMSH|^~\\&|PUMP|ICU|EHR|HOSP|20261130||ADT^A08|2|P|2.5\rNTE|1||evilcmd\r\x1c\r"
p = [e / IP(src=c[0], dst=s[0]) / TCP(sport=c[1], dport=s[1], flags="S", seq=100),
     r / IP(src=s[0], dst=c[0]) / TCP(sport=s[1], dport=c[1], flags="SA", seq=500, ack=101),
     e / IP(src=c[0], dst=s[0]) / TCP(sport=c[1], dport=s[1], flags="A", seq=101, ack=501),
     e / IP(src=c[0], dst=s[0]) / TCP(sport=c[1], dport=s[1], flags="PA", seq=101, ack=501) / Raw(msg1),
     r / IP(src=s[0], dst=c[0]) / TCP(sport=s[1], dport=c[1], flags="A", seq=501, ack=101 + len(msg1)),
     e / IP(src=c[0], dst=s[0]) / TCP(sport=c[1], dport=s[1], flags="PA", seq=101 + len(msg1), ack=501) / Raw(msg2),
     r / IP(src=s[0], dst=c[0]) / TCP(sport=s[1], dport=c[1], flags="A", seq=501, ack=101 + len(msg1) + len(msg2))]
wrpcap(sys.argv[1], p)
EOF2
run_offline() {  # run_offline NAME ARGS...: EVE in $WORK/NAME.eve, stats in NAME.json, frames in NAME.pcap
  local name=$1
  shift
  "$DP" --pcap "$WORK/hl7.pcap" --rules "$WORK/good.rules" --eve "$WORK/$name.eve" --pcap-out "$WORK/$name.pcap" "$@" \
    >"$WORK/$name.json" 2>"$WORK/$name.err"
}
check "offline IDS: runs" run_offline ids
check "offline IDS: alert for sid 1 with flow_id, and sid 2 allowed" bash -c "jq -e -s '
  any(.[]; .event_type == \"alert\" and .alert.signature_id == 1 and .flow_id > 0 and .alert.action == \"allowed\")
  and any(.[]; .event_type == \"alert\" and .alert.signature_id == 2 and .alert.action == \"allowed\")
  and all(.[]; .event_type != \"drop\")' '$WORK/ids.eve'"
check "offline IDS: every frame written out" bash -c "[[ \$(capinfos -Mc '$WORK/ids.pcap' | awk '/Number of packets/ {print \$NF}') == 7 ]]"
check "offline --simulate-ips: runs" run_offline ips --simulate-ips
check "offline --simulate-ips: sid 2 blocked, drop event, same flow_id as sid 1" bash -c "jq -e -s '
  (map(select(.event_type == \"alert\" and .alert.signature_id == 1))[0].flow_id) as \$f
  | any(.[]; .event_type == \"alert\" and .alert.signature_id == 2 and .alert.action == \"blocked\" and .flow_id == \$f)
  and any(.[]; .event_type == \"drop\" and .flow_id == \$f)' '$WORK/ips.eve'"
check "offline --simulate-ips: the matching packet and the rest of its flow are not written" bash -c \
  "[[ \$(capinfos -Mc '$WORK/ips.pcap' | awk '/Number of packets/ {print \$NF}') == 5 ]]"
check "offline --simulate-ips: drops counted by reason" jq -e '.drops.rule == 2 and .events.drops >= 1' "$WORK/ips.json"
check "offline: a rule file with errors is refused, exit 1" check_out 1 "rule set refused" \
  "$DP" --pcap "$WORK/hl7.pcap" --rules "$WORK/bad.rules"
finish
