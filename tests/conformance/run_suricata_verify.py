#!/usr/bin/python3
"""Runs Suricata's public test cases (shared/conformance/suricata-verify) through
wardgate-dp's offline mode and checks the `filter` checks on alert and drop events.

    tests/conformance/run_suricata_verify.py [--build build] [--cases DIR] [CASE ...]

Prints one line per check: PASS:, FAIL: or SKIP: (with the reason), then a summary.
A check is in scope when it is a `filter` on event_type alert or drop whose match keys
are all fields wardgate emits; a case whose rules need keywords wardgate does not
support (xbits, stream-event, app-layer-event) is skipped as a whole, and a check on a
rule that needs app-layer buffers is skipped. A case's threshold.config is passed with
--threshold-file and its suricata.yaml `action-order` as rules.action_order. One translation: wardgate inspects TCP streams inline as the data
passes, so an alert Suricata (in IDS mode) raises late with pkt_src
"stream (flow timeout)" is raised by wardgate with pkt_src "stream"; such checks
compare against "stream" and say so.
Exit status 1 if any in-scope check failed.
"""
import argparse
import json
import os
import re
import subprocess
import sys
import tempfile

import yaml

# Fields wardgate's EVE records carry (dotted paths); anything else is out of scope.
EMITTED = {
    "timestamp", "event_type", "flow_id", "src_ip", "src_port", "dest_ip", "dest_port",
    "proto", "pkt_src", "payload", "payload_printable", "packet", "pcap_cnt", "alert",
    "alert.action", "alert.gid", "alert.signature_id", "alert.rev", "alert.signature",
    "alert.category", "alert.severity",
}
# Where wardgate differs from Suricata by design; the checks that depend on it are
# reported as skipped with the reason (case -> (check numbers, reason)).
KNOWN_DIFFERENCES = {
    "util-action-tests/util-action-04": (
        {2, 4},
        "wardgate drops every later packet of a flow after a drop verdict (the signatures issue's rule);"
        " Suricata 7 drops only the packet when the rule matched a packet rather than the stream"),
    "threshold/threshold-config-suppress-bysrc-ip": (
        {1, 2},
        "counts per-packet drops of a packet-only drop rule (dsize:0) on one flow; wardgate drops the"
        " flow at the first drop verdict, so later packets are neither inspected nor logged"),
    "detect-flowbits": (
        {6, 7, 10, 13},
        "the capture is one mid-session TCP packet: Suricata keeps a flow (and its flowbits) for it"
        " even without stream pickup; wardgate tracks no flow for a TCP packet without a SYN unless"
        " stream.midstream is on, so the packet has no flowbits"),
    "threshold/threshold-config-rate-filter-drop-hostsrc": (
        {4},
        "the drops come from sid 1000001, an http rule (app-layer parsers)"),
}

# Keywords wardgate does not support: cases using them are skipped whole.
UNSUPPORTED_KEYWORDS = ("stream-event", "app-layer-event", "xbits")


APP_LAYER_PROTOCOLS = ("http", "http2", "dns", "tls", "smb", "ftp", "ftp-data", "smtp", "ssh", "dcerpc", "krb5",
                       "nfs", "tftp", "ike", "rdp", "sip", "snmp", "mqtt", "modbus", "dnp3", "enip", "quic")


def app_layer_needs(rule):
    """Why a rule needs app-layer parsing (not in this version), or None."""
    head = rule.split("(", 1)[0].split()
    if len(head) > 1 and head[1].lower() in APP_LAYER_PROTOCOLS:
        return f"protocol {head[1]}"
    m = re.search(r"\b(http[._]\w+|dns[._]\w+|tls[._]\w+|file[._]data|app-layer-\w+)\b", rule)
    if m:
        return f"keyword {m.group(1)}"
    for flags in re.findall(r'pcre:\s*!?\s*"/.*?/([A-Za-z]*)"', rule):
        http = set(flags) & set("UHPCMSYIDVWZQ")
        if http:
            return f"pcre /{''.join(sorted(http))} (HTTP buffers)"
    return None


def rules_needing_app_layer(text):
    """{sid: reason} for the rules of a case that need app-layer buffers."""
    out = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        sid = re.search(r"\bsid\s*:\s*(\d+)", line)
        why = app_layer_needs(line)
        if sid and why:
            out[int(sid.group(1))] = why
    return out


def flatten(d, prefix=""):
    """{'alert': {'gid': 1}} -> {'alert.gid': 1}; dotted keys stay as they are."""
    out = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(flatten(v, key + "."))
        else:
            out[key] = v
    return out


def lookup(record, path):
    """Value at a dotted path with [i] indices, or a sentinel when absent."""
    cur = record
    for part in re.findall(r"[^.\[\]]+|\[\d+\]", path):
        if part.startswith("["):
            idx = int(part[1:-1])
            if not isinstance(cur, list) or idx >= len(cur):
                return KeyError
            cur = cur[idx]
        else:
            if not isinstance(cur, dict) or part not in cur:
                return KeyError
            cur = cur[part]
    return cur


def matches(record, key, expected):
    """suricata-verify's filter semantics for one key (the operators it documents)."""
    for op in ("__len", "__contains", "__startswith", "__endswith", "__gt", "__gte", "__lt", "__lte"):
        if key.endswith(op):
            val = lookup(record, key[: -len(op)])
            if val is KeyError:
                return False
            if op == "__len":
                return len(val) == expected
            if op == "__contains":
                return expected in val
            if op == "__startswith":
                return str(val).startswith(expected)
            if op == "__endswith":
                return str(val).endswith(expected)
            return {"__gt": val > expected, "__gte": val >= expected,
                    "__lt": val < expected, "__lte": val <= expected}[op]
    if key == "has-key":
        return lookup(record, expected) is not KeyError
    if key == "not-has-key":
        return lookup(record, expected) is KeyError
    val = lookup(record, key)
    return val is not KeyError and val == expected


def field_of(key, expected):
    """The emitted field a match key refers to (for the scope check)."""
    if key in ("has-key", "not-has-key"):
        key = expected
    for op in ("__len", "__contains", "__startswith", "__endswith", "__gt", "__gte", "__lt", "__lte"):
        if key.endswith(op):
            key = key[: -len(op)]
    return re.sub(r"\[\d+\]", "", key)


def out_of_scope(check):
    """Reason a check is out of scope, or None."""
    if "filter" not in check:
        kind = next(iter(check), "?")
        return f"'{kind}' check runs against Suricata's own output files"
    flt = check["filter"]
    if "filename" in flt:
        return f"filter on another output file ({flt['filename']})"
    match = flatten(flt.get("match", {}))
    et = match.get("event_type")
    if et not in ("alert", "drop"):
        return f"event_type {et!r} is not emitted (only alert and drop)"
    for key, expected in match.items():
        field = field_of(key, expected)
        if field not in EMITTED:
            return f"field {field!r} is not emitted"
    return None


def case_dirs(root):
    for dirpath, dirnames, filenames in os.walk(root):
        if "test.yaml" in filenames:
            yield dirpath
        dirnames.sort()


def run_case(case, root, build, work):
    name = os.path.relpath(case, root)
    with open(os.path.join(case, "test.yaml")) as f:
        spec = yaml.safe_load(f) or {}
    results = []  # (status, text)

    def skip_all(reason):
        for i, _ in enumerate(spec.get("checks") or [{"case": None}]):
            results.append(("SKIP", f"{name} check {i + 1}: {reason}"))
        return results

    rules_files = [f for f in os.listdir(case) if f.endswith(".rules")]
    pcap = spec.get("pcap")
    pcap = os.path.normpath(os.path.join(case, pcap)) if pcap else None
    if not pcap:
        pcaps = [f for f in os.listdir(case) if f.endswith(".pcap")]
        pcap = os.path.join(case, pcaps[0]) if pcaps else None
    if not pcap or not os.path.exists(pcap):
        return skip_all("no capture in the case")
    threshold_file = os.path.join(case, "threshold.config")
    text = "".join(open(os.path.join(case, f), errors="replace").read() for f in rules_files)
    unsupported = [k for k in UNSUPPORTED_KEYWORDS if re.search(rf"\b{k}\s*:", text)]
    if unsupported:
        return skip_all(f"rules need {', '.join(unsupported)} (not supported)")

    app_layer = rules_needing_app_layer(text)
    suricata_yaml = os.path.join(case, "suricata.yaml")
    # Lenient: rules that need app-layer buffers are skipped (and their checks below).
    config = {"rules": {"lenient": True, "cache_dir": ""}}
    if os.path.exists(suricata_yaml):
        with open(suricata_yaml) as f:
            suricata = yaml.safe_load(f) or {}
        if "action-order" in suricata:
            config["rules"]["action_order"] = list(suricata["action-order"])
    args = " ".join(spec.get("args") or [])
    if "stream.midstream=true" in args:
        config.setdefault("stream", {})["midstream"] = True
    simulate_ips = "--simulate-ips" in args or "ips" in os.path.basename(case)
    eve = os.path.join(work, name.replace("/", "_") + ".eve.json")
    cmd = [os.path.join(build, "wardgate-dp"), "--pcap", pcap, "--eve", eve]
    for f in rules_files:
        cmd += ["--rules", os.path.join(case, f)]
    if True:
        cfg_path = eve + ".yaml"
        with open(cfg_path, "w") as f:
            yaml.safe_dump(config, f)
        cmd += ["--config", cfg_path]
    if simulate_ips:
        cmd.append("--simulate-ips")
    if os.path.exists(threshold_file):
        cmd += ["--threshold-file", threshold_file]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)

    want_exit = spec.get("exit-code", 0)
    if want_exit != 0 or proc.returncode != 0:
        ok = (proc.returncode != 0) == (want_exit != 0)
        results.append(("PASS" if ok else "FAIL",
                        f"{name}: exit code {proc.returncode}, expected {'non-zero' if want_exit else 0}"
                        + ("" if ok else f": {proc.stderr.strip()[-400:]}")))
        if proc.returncode != 0:
            for i, check in enumerate(spec.get("checks") or []):
                reason = out_of_scope(check)
                if reason:
                    results.append(("SKIP", f"{name} check {i + 1}: {reason}"))
            return results

    records = []
    if os.path.exists(eve):
        with open(eve) as f:
            records = [json.loads(line) for line in f if line.strip()]
    for i, check in enumerate(spec.get("checks") or []):
        reason = out_of_scope(check)
        label = f"{name} check {i + 1}"
        if reason:
            results.append(("SKIP", f"{label}: {reason}"))
            continue
        known = KNOWN_DIFFERENCES.get(name)
        if known and i + 1 in known[0]:
            results.append(("SKIP", f"{label}: {known[1]}"))
            continue
        flt = check["filter"]
        match = flatten(flt.get("match", {}))
        sid = match.get("alert.signature_id")
        if sid in app_layer:
            results.append(("SKIP", f"{label}: sid {sid} needs {app_layer[sid]} (app-layer parsers)"))
            continue
        note = ""
        if match.get("pkt_src") == "stream (flow timeout)":
            match["pkt_src"] = "stream"
            note = " (pkt_src 'stream': inspected inline, not at flow timeout)"
        got = sum(1 for r in records if all(matches(r, k, v) for k, v in match.items()))
        want = flt.get("count")
        desc = ", ".join(f"{k}={v}" for k, v in match.items())
        if want is None:
            ok, what = got > 0, f"at least one record with {desc}, got {got}"
        else:
            ok, what = got == want, f"{want} record(s) with {desc}, got {got}"
        results.append(("PASS" if ok else "FAIL", f"{label}: {what}{note}"))
    return results


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    repo = os.path.dirname(os.path.dirname(here))
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=os.path.join(repo, "build"))
    ap.add_argument("--cases", default=os.path.join(repo, "..", "shared", "conformance", "suricata-verify", "tests"))
    ap.add_argument("case", nargs="*")
    opts = ap.parse_args()
    if not os.path.isdir(opts.cases):
        print(f"no cases at {opts.cases}", file=sys.stderr)
        return 1
    counts = {"PASS": 0, "FAIL": 0, "SKIP": 0}
    with tempfile.TemporaryDirectory(prefix="wg-conformance-") as work:
        for case in case_dirs(opts.cases):
            if opts.case and not any(c in case for c in opts.case):
                continue
            for status, text in run_case(case, opts.cases, opts.build, work):
                counts[status] += 1
                print(f"{status}: {text}", flush=True)
    print(f"conformance: {counts['PASS']} passed, {counts['FAIL']} failed, {counts['SKIP']} skipped")
    return 1 if counts["FAIL"] else 0


if __name__ == "__main__":
    sys.exit(main())
