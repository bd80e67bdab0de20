#!/usr/bin/python3
"""rule_lint.py RULES [--list | --enable-policy OUT]: checks the house rules of
rules/clinical.rules that the parser does not know about, printing PASS:/FAIL: lines:
every rule (enabled, or published disabled as "# alert ...") has msg "WARDGATE ...",
a sid in 9100000-9199999 (unique), rev, a Suricata classtype, a reference, and
metadata wardgate_device_class / wardgate_advisory / wardgate_tier; threat rules are
enabled and policy rules disabled; only tcp/udp/icmp/ip and no app-layer keyword.

--list prints "sid tier msg" per rule instead. --enable-policy OUT writes a copy with
the policy rules enabled (the leading "# " removed), for the positive tests until
site overrides can enable them by metadata."""

import re
import sys

CLASSTYPES = set("""not-suspicious unknown bad-unknown attempted-recon successful-recon-limited
successful-recon-largescale attempted-dos successful-dos attempted-user unsuccessful-user successful-user
attempted-admin successful-admin rpc-portmap-decode shellcode-detect string-detect suspicious-filename-detect
suspicious-login system-call-detect tcp-connection trojan-activity unusual-client-port-connection network-scan
denial-of-service non-standard-protocol protocol-command-decode web-application-activity web-application-attack
misc-activity misc-attack icmp-event inappropriate-content policy-violation default-login-attempt
targeted-activity exploit-kit external-ip-check domain-c2 pup-activity credential-theft social-engineering
coin-mining command-and-control""".split())
DEVICE_CLASSES = {"infusion-pump", "patient-monitor", "imaging", "lab", "workstation", "any"}
PROTOCOLS = {"tcp", "udp", "icmp", "ip"}
APP_LAYER = re.compile(r"(?:^|;)\s*(?:http\.|http_|dns\.|dns_|tls\.|tls_|ssh\.|file\.|file_data|smb\.|dcerpc\.|"
                       r"krb5_|snmp\.|sip\.|ja3|app-layer-protocol|filestore|lua)")
RULE = re.compile(r"^(# )?(alert|drop|reject|pass) (\S+) .*?\((.*)\)\s*$")


def options(body):
    """Splits 'k:v; k2:v2;' honouring quotes and backslash escapes."""
    out, cur, quoted, esc = [], "", False, False
    for ch in body:
        if esc:
            cur += ch
            esc = False
        elif ch == "\\":
            cur += ch
            esc = True
        elif ch == '"':
            cur += ch
            quoted = not quoted
        elif ch == ";" and not quoted:
            if cur.strip():
                out.append(cur.strip())
            cur = ""
        else:
            cur += ch
    if cur.strip():
        out.append(cur.strip())
    pairs = []
    for o in out:
        k, _, v = o.partition(":")
        pairs.append((k.strip(), v.strip()))
    return pairs


def parse(path):
    rules = []
    with open(path) as f:
        for n, line in enumerate(f, 1):
            m = RULE.match(line.rstrip("\n"))
            if not m:
                continue
            opts = options(m.group(4))
            rules.append({"line": n, "enabled": m.group(1) is None, "proto": m.group(3), "opts": opts,
                          "text": line})
    return rules


def first(opts, key):
    for k, v in opts:
        if k == key:
            return v
    return None


def lint(rules):
    failed = 0
    sids = {}

    def report(ok, text):
        nonlocal failed
        print(("PASS: " if ok else "FAIL: ") + text)
        failed += 0 if ok else 1

    problems = []
    for r in rules:
        o = r["opts"]
        where = f"line {r['line']}"
        sid = first(o, "sid")
        msg = (first(o, "msg") or "").strip('"')
        if not sid or not sid.isdigit() or not 9100000 <= int(sid) <= 9199999:
            problems.append(f"{where}: sid {sid} outside 9100000-9199999")
        elif sid in sids:
            problems.append(f"{where}: sid {sid} also on line {sids[sid]}")
        else:
            sids[sid] = r["line"]
        where = f"sid {sid}"
        if not msg.startswith("WARDGATE "):
            problems.append(f"{where}: msg does not start with 'WARDGATE '")
        if not (first(o, "rev") or "").isdigit():
            problems.append(f"{where}: no rev")
        if first(o, "classtype") not in CLASSTYPES:
            problems.append(f"{where}: classtype {first(o, 'classtype')} not in Suricata's classification.config")
        refs = [v for k, v in o if k == "reference"]
        if not refs or not all(re.match(r"^(url|cve),\S+$", v) for v in refs):
            problems.append(f"{where}: needs reference:url,... or reference:cve,... ({refs})")
        meta = {}
        for k, v in o:
            if k == "metadata":
                for item in v.split(","):
                    key, _, val = item.strip().partition(" ")
                    meta[key] = val.strip()
        if meta.get("wardgate_device_class") not in DEVICE_CLASSES:
            problems.append(f"{where}: wardgate_device_class {meta.get('wardgate_device_class')!r}")
        if not meta.get("wardgate_advisory"):
            problems.append(f"{where}: no wardgate_advisory")
        tier = meta.get("wardgate_tier")
        if tier not in ("threat", "policy"):
            problems.append(f"{where}: wardgate_tier {tier!r}")
        elif (tier == "threat") != r["enabled"]:
            problems.append(f"{where}: tier {tier} but {'enabled' if r['enabled'] else 'disabled'}")
        if tier == "policy" and not msg.startswith("WARDGATE POLICY "):
            problems.append(f"{where}: policy rule msg should start 'WARDGATE POLICY '")
        if r["proto"] not in PROTOCOLS:
            problems.append(f"{where}: protocol {r['proto']}")
        for k, _ in o:
            if APP_LAYER.search(k):
                problems.append(f"{where}: app-layer keyword {k}")
    for p in problems:
        print("    | " + p, file=sys.stderr)
    threat = sum(1 for r in rules if r["enabled"])
    report(not problems, f"lint: {len(rules)} rules have msg, sid, rev, classtype, reference and wardgate metadata")
    report(len(rules) >= 40, f"lint: at least 40 rules ({len(rules)}: {threat} threat, {len(rules) - threat} policy)")
    return failed


def main():
    rules = parse(sys.argv[1])
    if len(sys.argv) > 2 and sys.argv[2] == "--list":
        for r in rules:
            meta = first(r["opts"], "metadata") or ""
            tier = "threat" if "wardgate_tier threat" in meta else "policy"
            print(f"{first(r['opts'], 'sid')}\t{tier}\t{first(r['opts'], 'msg').strip(chr(34))}")
        return 0
    if len(sys.argv) > 3 and sys.argv[2] == "--enable-policy":
        with open(sys.argv[1]) as f, open(sys.argv[3], "w") as out:
            for line in f:
                if RULE.match(line.rstrip("\n")) and line.startswith("# ") and "wardgate_tier policy" in line:
                    line = line[2:]
                out.write(line)
        return 0
    return 1 if lint(rules) else 0


if __name__ == "__main__":
    sys.exit(main())
