#!/usr/bin/env bash
# tests/run.sh: installs what is missing, builds, runs every test suite and ends with
# the line "N passed, N failed" (exit 1 if anything failed). Run as root from anywhere.
#
#   tests/run.sh                 everything
#   tests/run.sh unit pipeline   only these suites
#
# Suites: unit, pipeline, sanitize, offline, conformance, clinical, e2e, quickstart, fuzz.
# Environment: FUZZ_SECONDS (per fuzz target, default 30), SKIP_DEPS=1 (no apt check).
set -uo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
cd "$REPO"
BUILD=$REPO/build
SAN_BUILD=$REPO/build-san
FUZZ_SECONDS=${FUZZ_SECONDS:-30}
LOGS=$(mktemp -d /tmp/wardgate-tests.XXXXXX)
PASSED=0
FAILED=0
FAILURES=()
SUITES=("$@")
[[ ${#SUITES[@]} -gt 0 ]] || SUITES=(unit pipeline sanitize offline conformance clinical e2e quickstart fuzz)

want() { [[ " ${SUITES[*]} " == *" $1 "* ]]; }
UNIT_TESTS="parse_test config_test events_test assign_test reject_test eve_test rules_parse_test rules_keywords_test matcher_test threshold_test flow_table_test tcp_stream_test overrides_test db_cache_test device_table_test quarantine_test hygiene_test"
FUZZ_TARGETS="parse config rules quarantine segment"
banner() { printf '\n=== %s ===\n' "$*"; }
record() {  # record PASSED_N FAILED_N [failure description]
  PASSED=$((PASSED + $1))
  FAILED=$((FAILED + $2))
  if [[ $2 -gt 0 && -n ${3:-} ]]; then FAILURES+=("$3"); fi
}
finish() {
  echo
  if [[ ${#FAILURES[@]} -gt 0 ]]; then
    echo "failures (logs in $LOGS):"
    printf '  %s\n' "${FAILURES[@]}"
  fi
  echo "$PASSED passed, $FAILED failed"
  [[ $FAILED -eq 0 ]]
  exit
}

# gtest NAME BINARY [ARGS]: run a GoogleTest binary, count its test cases.
gtest() {
  local name=$1 bin=$2 log=$LOGS/${1//\//-}.log p f
  shift 2
  if [[ ! -x $bin ]]; then
    record 0 1 "$name: $bin not built"
    return
  fi
  timeout 600 "$bin" "$@" >"$log" 2>&1
  local rc=$?
  p=$(sed -n 's/^\[  PASSED  \] \([0-9]*\) test.*/\1/p' "$log" | tail -1)
  f=$(sed -n 's/^\[  FAILED  \] \([0-9]*\) test.*/\1/p' "$log" | tail -1)
  p=${p:-0}
  f=${f:-0}
  if [[ $rc -ne 0 && $f -eq 0 ]]; then f=1; fi  # crashed or timed out outside a test
  grep -E '^\[  FAILED  \] [A-Za-z]' "$log" | sort -u | sed 's/^/  /'
  [[ $rc -eq 0 ]] || tail -20 "$log"
  echo "$name: $p passed, $f failed"
  record "$p" "$f" "$name (see $log)"
}

# script NAME CMD...: run a test script that prints PASS:/FAIL: lines.
script() {
  local name=$1 log=$LOGS/${1//\//-}.log p f rc
  shift
  timeout 1200 "$@" 2>&1 | tee "$log" | grep -E '^(PASS|FAIL|SKIP):|^ {2,}' | grep -v '^PASS:' || true
  rc=${PIPESTATUS[0]}
  p=$(grep -c '^PASS:' "$log")
  f=$(grep -c '^FAIL:' "$log")
  if [[ $rc -ne 0 && $f -eq 0 ]]; then f=1; fi
  echo "$name: $p passed, $f failed (exit $rc)"
  record "$p" "$f" "$name (see $log)"
}

banner "dependencies"
if [[ ${SKIP_DEPS:-0} != 1 ]]; then
  if ! "$REPO/deploy/install-deps.sh"; then
    record 0 1 "installing dependencies"
    finish
  fi
fi

banner "build"
if [[ ! -f $BUILD/build.ninja ]]; then
  meson setup "$BUILD" >"$LOGS/setup.log" 2>&1 || { cat "$LOGS/setup.log"; record 0 1 "meson setup"; finish; }
fi
if ! meson compile -C "$BUILD" >"$LOGS/build.log" 2>&1; then
  grep -E 'error|FAILED' "$LOGS/build.log" | head -40
  record 0 1 "build (see $LOGS/build.log)"
  finish
fi
grep -c 'warning:' "$LOGS/build.log" | sed 's/^/compiler warnings: /'
record 1 0

if want unit; then
  banner "unit"
  for t in $UNIT_TESTS; do gtest "unit/$t" "$BUILD/tests/$t"; done
fi

if want pipeline; then
  banner "pipeline (EAL --no-huge, ring ports)"
  gtest pipeline/bridge_test "$BUILD/tests/bridge_test"
  gtest pipeline/reload_test "$BUILD/tests/reload_test"
  gtest pipeline/ips_pipeline_test "$BUILD/tests/ips_pipeline_test"
  gtest pipeline/policy_classifier_test "$BUILD/tests/policy_classifier_test"
  gtest pipeline/segmentation_pipeline_test "$BUILD/tests/segmentation_pipeline_test"
fi

# One clang build with ASan+UBSan serves the sanitize suite and the fuzzers.
san_build() {
  if [[ ! -f $SAN_BUILD/build.ninja ]]; then
    CC=clang CXX=clang++ meson setup "$SAN_BUILD" -Db_sanitize=address,undefined -Db_lundef=false \
      -Dfuzz=true -Dbench=disabled >"$LOGS/san-setup.log" 2>&1 || return 1
  fi
  # ninja (not meson compile) regenerates itself first when a meson.build changed.
  local targets=()
  for t in $UNIT_TESTS bridge_test reload_test ips_pipeline_test policy_classifier_test segmentation_pipeline_test; do
    targets+=("tests/$t")
  done
  for f in $FUZZ_TARGETS; do targets+=("tests/${f}_fuzz"); done
  ninja -C "$SAN_BUILD" "${targets[@]}" >"$LOGS/san-build.log" 2>&1
}
if want sanitize || want fuzz; then
  banner "sanitize build (clang, ASan+UBSan)"
  if san_build; then
    record 1 0
  else
    grep -E 'error|FAILED' "$LOGS/san-build.log" "$LOGS/san-setup.log" 2>/dev/null | head -20
    record 0 1 "sanitize build (see $LOGS)"
  fi
fi
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

if want sanitize; then
  banner "unit and pipeline under ASan+UBSan"
  for t in $UNIT_TESTS; do gtest "sanitize/$t" "$SAN_BUILD/tests/$t"; done
  # DPDK's EAL keeps allocations for the process lifetime: leaks are not checked here.
  ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 gtest sanitize/bridge_test "$SAN_BUILD/tests/bridge_test"
  ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 gtest sanitize/reload_test "$SAN_BUILD/tests/reload_test"
  ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 gtest sanitize/ips_pipeline_test "$SAN_BUILD/tests/ips_pipeline_test"
  ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 gtest sanitize/policy_classifier_test "$SAN_BUILD/tests/policy_classifier_test"
  ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 gtest sanitize/segmentation_pipeline_test \
    "$SAN_BUILD/tests/segmentation_pipeline_test"
fi

if want offline; then
  banner "offline mode (captures in, same frames out)"
  script offline "$REPO/tests/offline/offline_test.sh"
  script rules-cli "$REPO/tests/rules/rules_cli_test.sh"
fi

if want conformance; then
  banner "conformance (Suricata's public test cases through the offline mode)"
  script conformance /usr/bin/python3 "$REPO/tests/conformance/run_suricata_verify.py" --build "$BUILD"
fi

if want clinical; then
  banner "clinical rule set (generated attacks, public captures, benign clinical traffic in namespaces)"
  script clinical "$REPO/tests/clinical/clinical_test.sh"
fi

if want e2e; then
  banner "end-to-end in network namespaces (net_af_packet)"
  script e2e "$REPO/tests/e2e/bridge_e2e.sh"
  script ips-e2e "$REPO/tests/e2e/ips_e2e.sh"
  script segmentation-e2e "$REPO/tests/e2e/segmentation_e2e.sh"
fi

if want quickstart; then
  banner "README quickstart"
  script quickstart "$REPO/tests/e2e/quickstart_test.sh"
fi

if want fuzz; then
  banner "fuzz (${FUZZ_SECONDS}s per target)"
  for target in $FUZZ_TARGETS; do
    corpus=$(mktemp -d "$LOGS/corpus-$target.XXXX")
    seeds=$target
    [[ $target == segment ]] && seeds=parse  # the segmentation stages read frames too
    cp "$REPO/tests/fuzz/corpus/$seeds/"* "$corpus/" 2>/dev/null
    if [[ -x $SAN_BUILD/tests/${target}_fuzz ]] &&
      "$SAN_BUILD/tests/${target}_fuzz" -max_total_time="$FUZZ_SECONDS" -rss_limit_mb=2048 \
        -artifact_prefix="$LOGS/${target}-" "$corpus" >"$LOGS/fuzz-$target.log" 2>&1; then
      echo "fuzz/$target: $(grep -E '^#[0-9]+.*(DONE|pulse)' "$LOGS/fuzz-$target.log" | tail -1)"
      record 1 0
    else
      tail -30 "$LOGS/fuzz-$target.log" 2>/dev/null
      record 0 1 "fuzz/$target (see $LOGS/fuzz-$target.log)"
    fi
  done
fi

finish
