#!/usr/bin/python3
"""check_eve.py CASES.json EVE.json RULES: compares the alerts of an offline run over
the capture of make_cases.py with what each case expects. Prints one PASS:/FAIL: line
per case (the sids fired on the case's flows are exactly the expected ones), one per
rule (it fired on every case that expects it), and one for alerts that belong to no
case. Exit status 1 when anything failed."""

import json
import re
import sys


def load_alerts(path):
    alerts = []
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            rec = json.loads(line)
            if rec.get("event_type") == "alert":
                alerts.append(rec)
    return alerts


def rule_sids(path):
    """sid -> (tier, noalert) for every rule line, commented out or not."""
    out = {}
    with open(path) as f:
        for line in f:
            m = re.match(r"^(# )?(alert|drop|reject|pass) .*\bsid:(\d+);", line)
            if m:
                tier = "policy" if "wardgate_tier policy" in line else "threat"
                out[int(m.group(3))] = (tier, "flowbits:noalert" in line)
    return out


def main():
    cases = json.load(open(sys.argv[1]))["cases"]
    alerts = load_alerts(sys.argv[2])
    rules = rule_sids(sys.argv[3])
    failed = 0

    def report(ok, text, detail=""):
        nonlocal failed
        print(("PASS: " if ok else "FAIL: ") + text)
        if not ok:
            failed += 1
            if detail:
                print("    | " + detail, file=sys.stderr)

    owner = {}
    for i, case in enumerate(cases):
        for ip in case["owned"]:
            assert ip not in owner, f"address {ip} owned by two cases"
            owner[ip] = i
    fired = [dict() for _ in cases]   # sid -> count
    orphans = []
    for a in alerts:
        idx = owner.get(a.get("src_ip"), owner.get(a.get("dest_ip")))
        sid = a["alert"]["signature_id"]
        if idx is None:
            orphans.append(f"{sid} {a.get('src_ip')}:{a.get('src_port')} -> {a.get('dest_ip')}:{a.get('dest_port')}")
            continue
        fired[idx][sid] = fired[idx].get(sid, 0) + 1

    for i, case in enumerate(cases):
        want = set(case["expect"])
        got = set(fired[i])
        detail = ""
        if want != got:
            detail = f"expected {sorted(want)}, fired {sorted(got)}"
            if got - want:
                detail += f"; unexpected {sorted(got - want)}"
            if want - got:
                detail += f"; missing {sorted(want - got)}"
        for sid, n in case.get("counts", {}).items():
            if fired[i].get(int(sid), 0) != n:
                detail += f"; sid {sid} fired {fired[i].get(int(sid), 0)} times, threshold allows {n}"
        label = ", ".join(str(s) for s in sorted(want)) or "no alert"
        if case.get("counts"):
            label += " (" + ", ".join(f"{s} x{n}" for s, n in case["counts"].items()) + ")"
        report(not detail, f"case '{case['name']}': {label}", detail.lstrip("; "))

    report(not orphans, "every alert belongs to a case", "; ".join(orphans[:10]))

    # Per rule: every rule that can alert has at least one case, and fired on all of them.
    for sid in sorted(rules):
        tier, noalert = rules[sid]
        if noalert:
            continue
        expecting = [i for i, c in enumerate(cases) if sid in c["expect"]]
        hits = [i for i in expecting if sid in fired[i]]
        if not expecting:
            report(False, f"rule {sid} ({tier}) has a positive case", "no case expects it")
            continue
        missed = [cases[i]["name"] for i in expecting if i not in hits]
        report(not missed, f"rule {sid} ({tier}) fires on its {len(expecting)} case(s)",
               "silent on: " + "; ".join(missed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
