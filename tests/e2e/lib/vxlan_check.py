#!/usr/bin/env python3
"""Checks one node's kernel VXLAN state against what the cluster says (tests/e2e/vxlan.sh).

  vxlan_check.py --ns NS --dev weft0 --ipam IPAM.json --members MEMBERS.json

IPAM.json / MEMBERS.json: `weft ipam --json` and `weft members --json` of the node in NS.
Expected (docs/vxlan.md): one permanent FDB entry `mac(M) dst <M's underlay IP>` per other live
member M and no other; every range owned by another member routes (ip route get of its middle
address) over DEV via a gateway whose permanent neighbour entry is mac(owner); every route this
node installed (proto 241) goes via such a gateway. mac(M) = 02 + the first 5 bytes of M's id.
Prints one line "ok ..." (exit 0) or "FAIL ..." (exit 1).
"""
import argparse, ipaddress, json, subprocess, sys


def mac(node_id):
    h = node_id.lower()
    return "02:" + ":".join(h[i:i + 2] for i in range(0, 10, 2))


def ipj(ns, *args):
    out = subprocess.run(["ip", "-n", ns, "-j"] + list(args), capture_output=True, text=True, timeout=10)
    if out.returncode != 0:
        raise RuntimeError("ip %s: %s" % (" ".join(args), out.stderr.strip()))
    return json.loads(out.stdout or "[]")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--ns", required=True)
    p.add_argument("--dev", default="weft0")
    p.add_argument("--ipam", required=True)
    p.add_argument("--members", required=True)
    a = p.parse_args()
    ipam = json.load(open(a.ipam))
    members = json.load(open(a.members))
    me = next(m for m in members if m.get("isSelf"))
    problems = []

    fdb_out = subprocess.run(["bridge", "-n", a.ns, "-j", "fdb", "show", "dev", a.dev], capture_output=True, text=True, timeout=10)
    fdb = {(e["mac"], e["dst"]) for e in json.loads(fdb_out.stdout or "[]") if "dst" in e}
    want_fdb = {(mac(m["id"]), m["address"].rsplit(":", 1)[0]) for m in members
                if not m.get("isSelf") and m.get("state") in ("alive", "suspect")}
    if fdb != want_fdb:
        problems.append("fdb %s, want %s" % (sorted(fdb), sorted(want_fdb)))

    neigh = {n["dst"]: n.get("lladdr") for n in ipj(a.ns, "neigh", "show", "dev", a.dev, "nud", "permanent")}
    owner_macs = {mac(r["owner"]) for r in ipam.get("ranges", []) if r["owner"] != me["id"]}
    checked = 0
    for r in ipam.get("ranges", []):
        if r["owner"] == me["id"]:
            continue
        lo, hi = int(ipaddress.ip_address(r["start"])), int(ipaddress.ip_address(r["end"]))
        mid = str(ipaddress.ip_address((lo + hi) // 2))
        got = ipj(a.ns, "route", "get", mid)
        g = got[0] if got else {}
        if g.get("type") in ("broadcast", "local"):
            continue  # the subnet's broadcast address (the device holds a /16): never a container's
        gw = g.get("gateway")
        if g.get("dev") != a.dev or gw is None:
            problems.append("%s (owner %s) routes %s" % (mid, r.get("ownerName"), g))
        elif neigh.get(gw) != mac(r["owner"]):
            problems.append("%s (owner %s) via %s whose neighbour is %s, want %s" % (mid, r.get("ownerName"), gw, neigh.get(gw), mac(r["owner"])))
        checked += 1
    routes = ipj(a.ns, "route", "show", "dev", a.dev, "proto", "241")
    for rt in routes:
        if neigh.get(rt.get("gateway")) not in owner_macs:
            problems.append("stale route %s via %s" % (rt.get("dst"), rt.get("gateway")))
    if problems:
        print("FAIL " + "; ".join(problems)[:1500])
        sys.exit(1)
    print("ok %d fdb entries (= live peers), %d routes, %d neighbours, %d ranges of others resolve to their owner's MAC"
          % (len(fdb), len(routes), len(neigh), checked))


if __name__ == "__main__":
    main()
