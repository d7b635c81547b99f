#!/usr/bin/env python3
"""Parse a Prometheus text exposition (stdin) with the reference parser (prometheus_client)
and check it against Prometheus' naming conventions. Prints one JSON object:
{"families": {name: {"type", "help", "labels", "samples": [[name, labels, value], ...]}}, "problems": [...]}
and exits 0 even with problems (the caller asserts on them); exit 3 when prometheus_client is missing.

Conventions checked (https://prometheus.io/docs/practices/naming/):
- every family has # HELP and # TYPE, a weft_ prefix and snake_case name;
- counters end in _total, nothing else does;
- a unit word (bytes, seconds) is the suffix (before _total), base units only (no ms, kb);
- no family mixes units (bytes and packets) or uses a label named like the family's values ("counter");
- label names are snake_case; direction labels are in/out;
- histograms have _bucket (with le="+Inf"), _sum and _count.
"""
import json
import re
import sys

try:
    from prometheus_client.parser import text_string_to_metric_families
except ImportError:
    print(json.dumps({"error": "prometheus_client is not installed (run bootstrap/setup)"}))
    sys.exit(3)

text = sys.stdin.read()
problems = []
families = {}

helps = set(re.findall(r"^# HELP (\S+) ", text, re.M))
types = dict(re.findall(r"^# TYPE (\S+) (\S+)$", text, re.M))
for name in types:
    if name not in helps:
        problems.append(f"{name}: # TYPE without # HELP")

for fam in text_string_to_metric_families(text):
    # prometheus_client names counter families without _total; the exposed name has it.
    exposed = fam.name + "_total" if fam.type == "counter" else fam.name
    labels = sorted({k for s in fam.samples for k in s.labels if k != "le"})
    families[exposed] = {
        "type": fam.type,
        "help": fam.documentation,
        "labels": labels,
        "samples": [[s.name, s.labels, s.value] for s in fam.samples],
    }
    if not re.fullmatch(r"weft_[a-z][a-z0-9_]*", exposed):
        problems.append(f"{exposed}: not a snake_case weft_ name")
    if not fam.documentation:
        problems.append(f"{exposed}: no help text")
    if exposed not in types:
        problems.append(f"{exposed}: no # TYPE line")
    if fam.type not in ("counter", "gauge", "histogram"):
        problems.append(f"{exposed}: type {fam.type} (untyped or unexpected)")
    if fam.type == "counter":
        for s in fam.samples:
            if not (s.name.endswith("_total") or s.name.endswith("_created")):
                problems.append(f"{exposed}: counter sample {s.name} does not end in _total")
    elif exposed.endswith("_total"):
        problems.append(f"{exposed}: a {fam.type} must not end in _total")
    base = exposed[:-len("_total")] if exposed.endswith("_total") else exposed
    for unit in ("bytes", "seconds"):
        if unit in base.split("_") and not base.endswith("_" + unit):
            problems.append(f"{exposed}: unit '{unit}' must be the name's suffix")
    for bad in ("milliseconds", "ms", "kb", "kib", "mb", "millis", "micros"):
        if bad in base.split("_"):
            problems.append(f"{exposed}: non-base unit '{bad}'")
    words = base.split("_")
    if "bytes" in words and "packets" in words:
        problems.append(f"{exposed}: mixes bytes and packets")
    for s in fam.samples:
        for k, v in s.labels.items():
            if not re.fullmatch(r"[a-z_][a-z0-9_]*", k):
                problems.append(f"{exposed}: label name {k!r} is not snake_case")
            if k == "counter":
                problems.append(f"{exposed}: label 'counter' hides what is counted; use one family per unit")
            if k == "direction" and v not in ("in", "out"):
                problems.append(f"{exposed}: direction={v!r} (want in or out)")
    if fam.type == "histogram":
        names = {s.name for s in fam.samples}
        for suffix in ("_bucket", "_sum", "_count"):
            if fam.name + suffix not in names:
                problems.append(f"{exposed}: histogram without {suffix}")
        if not any(s.name.endswith("_bucket") and s.labels.get("le") == "+Inf" for s in fam.samples):
            problems.append(f"{exposed}: histogram without le=\"+Inf\" bucket")

print(json.dumps({"families": families, "problems": problems}))
