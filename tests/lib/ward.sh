# shellcheck shell=bash
# tests/lib/ward.sh - helpers for end-to-end tests in the simulated ward.
#
# Source it from a test script (run as root):
#
#   source "$(dirname "$0")/../lib/ward.sh"
#   ward_up
#   start_dp "$REPO/deploy/examples/ward.yaml" "$LOGDIR/dp.log" || finish
#   check "pump pings ehr" in_ns wg-pump ping -c1 -W2 10.77.0.21
#   stop_dp
#   ward_down
#   finish                      # prints "N passed, N failed", exits 1 if any failed
#
# Variables:
#   REPO            repository root (default: two levels above this file)
#   WARDGATE_BUILD  build directory holding wardgate-dp (default: $REPO/build)
#   PASSED, FAILED  counters kept by check (and by start_dp/stop_dp on failure)
#   DP_PID          pid of the running wardgate-dp (empty when none)
#   DP_LOG          its stderr (log lines), the LOG given to start_dp
#   DP_STATS        its stdout: the final JSON counters, "${LOG%.log}.stats.json"
#   DP_SOCKET       its control socket (control.socket of the config)
#   DP_STATUS       its exit status, set by stop_dp
#
# The wardgate-dp contract these helpers rely on: `wardgate-dp --config FILE` runs in
# the foreground until SIGINT/SIGTERM, logs to stderr, prints one JSON object with its
# counters to stdout on exit, and serves its control API on the unix socket named by
# `control.socket` in the config.
#
# The helpers do not `set -e` for you; check never returns non-zero, so a failing check
# does not end a script that runs under `set -e`.

REPO=${REPO:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
WARDGATE_BUILD=${WARDGATE_BUILD:-$REPO/build}
WARD_SIM=${WARD_SIM:-$REPO/deploy/ward-sim.sh}
WARD_GW_NS=wg-gw

PASSED=${PASSED:-0}
FAILED=${FAILED:-0}
DP_PID=${DP_PID:-}
DP_LOG=${DP_LOG:-}
DP_STATS=${DP_STATS:-}
DP_SOCKET=${DP_SOCKET:-}
DP_STATUS=${DP_STATUS:-}

_ward_pass() { PASSED=$((PASSED + 1)); echo "PASS: $1"; }
_ward_fail() { FAILED=$((FAILED + 1)); echo "FAIL: $1"; }
_ward_note() { echo "  $*" >&2; }

# ---------------------------------------------------------------- ward

# ward_up [--no-vlan]: build the simulated ward (tears down leftovers first).
ward_up() {
  "$WARD_SIM" "$@" up
}

# ward_down: stop wardgate-dp if start_dp started one, then remove the ward.
ward_down() {
  [[ -z $DP_PID ]] || stop_dp
  "$WARD_SIM" down
}

# in_ns NS CMD...: run CMD inside network namespace NS.
in_ns() {
  local ns=$1
  shift
  ip netns exec "$ns" "$@"
}

# ward_host FIELD NAME: a field of `ward-sim.sh info` for host NAME, e.g.
#   ward_host ipv4 ehr  ->  10.77.0.21
ward_host() {
  "$WARD_SIM" info | jq -er --arg f "$1" --arg n "$2" '.[] | select(.name == $n) | .[$f]'
}

# wait_for_port NS PORT [TIMEOUT_S=10]: wait until a TCP socket listens on PORT in NS.
wait_for_port() {
  local ns=$1 port=$2 timeout=${3:-10} deadline
  deadline=$((SECONDS + timeout))
  while :; do
    if [[ -n $(ip netns exec "$ns" ss -Hltn "sport = :$port" 2>/dev/null) ]]; then
      return 0
    fi
    if ((SECONDS >= deadline)); then
      echo "wait_for_port: nothing listens on TCP port $port in $ns after ${timeout}s" >&2
      return 1
    fi
    sleep 0.1
  done
}

# ---------------------------------------------------------------- results

# check NAME CMD...: run CMD; print "PASS: NAME" or "FAIL: NAME" and count it. The
# command's output is kept back and shown (last 40 lines) only when it fails. Runs in
# the current shell, so CMD may be a shell function. Always returns 0; the command's
# status is in CHECK_RC.
check() {
  local name=$1 out
  shift
  out=$(mktemp)
  if "$@" >"$out" 2>&1; then
    CHECK_RC=0
    _ward_pass "$name"
  else
    CHECK_RC=$?
    _ward_fail "$name"
    _ward_note "command (exit $CHECK_RC): $*"
    tail -n 40 "$out" | sed 's/^/    | /' >&2
  fi
  rm -f "$out"
  return 0
}

# finish: stop a wardgate-dp still running, print "N passed, N failed", and exit
# (1 if anything failed, else 0).
finish() {
  if [[ -n $DP_PID ]]; then
    _ward_note "finish: wardgate-dp (pid $DP_PID) still running, stopping it"
    stop_dp
  fi
  echo "$PASSED passed, $FAILED failed"
  if ((FAILED > 0)); then
    exit 1
  fi
  exit 0
}

# ---------------------------------------------------------------- wardgate-dp

# unsegmented_config SRC OUT: SRC without zones, policy, devices and inventory, and with
# its quarantine snapshot under OUT's directory: for suites that test forwarding and
# signatures across the ward, not the ward's policy (tests/e2e/segmentation_e2e.sh and
# the quickstart run the shipped segmentation).
unsegmented_config() {
  /usr/bin/python3 - "$1" "$2" <<'EOF'
import os, sys, yaml
with open(sys.argv[1]) as f:
    doc = yaml.safe_load(f) or {}
for key in ("zones", "policy", "devices", "inventory"):
    doc.pop(key, None)
doc["quarantine"] = {"snapshot": os.path.join(os.path.dirname(os.path.abspath(sys.argv[2])), "state.json")}
with open(sys.argv[2], "w") as f:
    yaml.safe_dump(doc, f, sort_keys=False)
EOF
}

# _dp_socket_of CONFIG: print control.socket of a wardgate-dp YAML config.
_dp_socket_of() {
  local config=$1 sock=""
  if sock=$(/usr/bin/python3 - "$config" 2>/dev/null <<'EOF'
import sys, yaml
with open(sys.argv[1]) as f:
    doc = yaml.safe_load(f) or {}
sock = (doc.get("control") or {}).get("socket")
if not sock:
    sys.exit(1)
print(sock)
EOF
  ); then
    printf '%s\n' "$sock"
    return 0
  fi
  # No PyYAML: read the block style used by deploy/examples/*.yaml.
  sock=$(awk '
    /^[^[:space:]#]/ { in_control = ($0 ~ /^control:[[:space:]]*(#.*)?$/) ; next }
    in_control && /^[[:space:]]+socket:/ {
      sub(/^[[:space:]]+socket:[[:space:]]*/, ""); sub(/[[:space:]]+#.*$/, "")
      gsub(/^["'\'']|["'\'']$/, ""); print; exit
    }' "$config")
  [[ -n $sock ]] || return 1
  printf '%s\n' "$sock"
}

# start_dp CONFIG LOG: start wardgate-dp in the gateway namespace with CONFIG, stderr to
# LOG and stdout to DP_STATS; wait (20 s at most) until its control socket exists, then
# 1 s more (the af_packet PMD needs a moment before the first ARP gets through).
# On failure counts a FAIL, shows the log and returns 1.
start_dp() {
  local config=$1 log=$2 bin="$WARDGATE_BUILD/wardgate-dp" deadline
  if [[ -n $DP_PID ]]; then
    _ward_fail "start wardgate-dp: one is already running (pid $DP_PID)"
    return 1
  fi
  if [[ ! -x $bin ]]; then
    _ward_fail "start wardgate-dp: $bin not found or not executable (build it, or set WARDGATE_BUILD)"
    return 1
  fi
  if [[ ! -r $config ]]; then
    _ward_fail "start wardgate-dp: config $config not readable"
    return 1
  fi
  if ! DP_SOCKET=$(_dp_socket_of "$config"); then
    _ward_fail "start wardgate-dp: $config has no control.socket"
    return 1
  fi
  if ! ip netns exec "$WARD_GW_NS" true 2>/dev/null; then
    _ward_fail "start wardgate-dp: namespace $WARD_GW_NS missing (ward_up first)"
    return 1
  fi

  DP_LOG=$log
  DP_STATS="${log%.log}.stats.json"
  DP_STATUS=""
  mkdir -p "$(dirname "$log")" "$(dirname "$DP_SOCKET")"
  # A socket left by a crashed run would look like a ready wardgate-dp.
  if [[ -S $DP_SOCKET ]]; then rm -f "$DP_SOCKET"; fi

  # `ip netns exec` execs the command, so $! is wardgate-dp's own pid.
  ip netns exec "$WARD_GW_NS" "$bin" --config "$config" >"$DP_STATS" 2>"$log" </dev/null &
  DP_PID=$!

  deadline=$((SECONDS + 20))
  until [[ -S $DP_SOCKET ]]; do
    if ! kill -0 "$DP_PID" 2>/dev/null; then
      DP_STATUS=0
      wait "$DP_PID" 2>/dev/null || DP_STATUS=$?
      DP_PID=""
      _ward_fail "start wardgate-dp: exited with status $DP_STATUS before its control socket appeared"
      tail -n 40 "$log" | sed 's/^/    | /' >&2
      return 1
    fi
    if ((SECONDS >= deadline)); then
      _ward_fail "start wardgate-dp: no control socket $DP_SOCKET after 20 s"
      tail -n 40 "$log" | sed 's/^/    | /' >&2
      _dp_kill "$DP_PID"
      DP_PID=""
      return 1
    fi
    sleep 0.1
  done
  sleep 1
  return 0
}

# stop_dp: SIGTERM wardgate-dp and wait for it (10 s at most, then SIGKILL and count a
# failure). Also counts a failure when it exits non-zero or its stdout is not one JSON
# object. Sets DP_STATUS; the counters stay in DP_STATS.
stop_dp() {
  local pid=$DP_PID deadline
  [[ -n $pid ]] || return 0
  DP_PID=""
  kill -TERM "$pid" 2>/dev/null || true
  deadline=$((SECONDS + 10))
  while kill -0 "$pid" 2>/dev/null && ! _dp_is_zombie "$pid"; do
    if ((SECONDS >= deadline)); then
      kill -KILL "$pid" 2>/dev/null || true
      DP_STATUS=0
      wait "$pid" 2>/dev/null || DP_STATUS=$?
      _ward_fail "wardgate-dp (pid $pid) stopped within 10 s of SIGTERM (killed)"
      return 1
    fi
    sleep 0.1
  done
  DP_STATUS=0
  wait "$pid" 2>/dev/null || DP_STATUS=$?
  if [[ $DP_STATUS -ne 0 ]]; then
    _ward_fail "wardgate-dp exited with status 0 on SIGTERM (got $DP_STATUS)"
    tail -n 20 "$DP_LOG" | sed 's/^/    | /' >&2
    return 1
  fi
  if ! jq -se 'length == 1 and (.[0] | type == "object")' "$DP_STATS" >/dev/null 2>&1; then
    _ward_fail "wardgate-dp printed one JSON object of counters on exit ($DP_STATS)"
    return 1
  fi
  return 0
}

# _dp_kill PID: end a wardgate-dp that already failed, without judging how it stops.
_dp_kill() {
  local t
  kill -TERM "$1" 2>/dev/null || true
  for ((t = 0; t < 100; t++)); do
    if ! kill -0 "$1" 2>/dev/null || _dp_is_zombie "$1"; then break; fi
    sleep 0.1
  done
  kill -KILL "$1" 2>/dev/null || true
  DP_STATUS=0
  wait "$1" 2>/dev/null || DP_STATUS=$?
}

# A child that has exited but is not yet reaped still answers kill -0.
_dp_is_zombie() {
  [[ $(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) == Z ]]
}

# dp_stats [JQ_FILTER]: the final counters of the last wardgate-dp, e.g.
#   dp_stats '.ports[] | select(.role == "device") | .rx_packets'
dp_stats() {
  jq -e "${1:-.}" "$DP_STATS"
}
