#!/usr/bin/env python3
"""tests/e2e/lib/ipam-oracle.py — the IPAM oracle of tests/e2e/ipam-storm.sh and ipam-partition.sh.

Reads every node's `weft ipam --json` (one file per node, NAME.json, in --dir) and the list of
acknowledged allocations (--acked FILE: lines "NODE HANDLE ADDRESS", NODE = the json file's NAME)
and prints one line per check, "ok NAME: detail" or "FAIL NAME: detail", for the calling script
to count. Checks:

  distinct   no address is held by two (node, handle) pairs across all nodes' allocations and
             conflicts (a conflict is still held by a running container)
  acked      every acknowledged allocation is still in its node's allocations or conflicts with
             the same address; the missing ones are also written to --missing FILE
  owners     (--rings) the ranges tile the subnet (no gap, no overlap): one owner per address;
             with --live ID,ID,... every owner is one of those nodes
  rings      (--rings) every node reports the same ring (start, end, owner, version)
"""
import argparse
import ipaddress
import json
import os
import sys


def load(d):
    nodes = {}
    for f in sorted(os.listdir(d)):
        if f.endswith(".json"):
            try:
                with open(os.path.join(d, f)) as fh:
                    nodes[f[:-5]] = json.load(fh)
            except (OSError, ValueError) as e:
                nodes[f[:-5]] = {"error": str(e)}
    return nodes


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", required=True)
    ap.add_argument("--acked", required=True)
    ap.add_argument("--missing", default=os.devnull)
    ap.add_argument("--rings", action="store_true")
    ap.add_argument("--live", default="")
    a = ap.parse_args()
    nodes = load(a.dir)
    bad = [n for n, j in nodes.items() if "error" in j or "allocations" not in j]
    if bad or not nodes:
        print(f"FAIL ipam-json: no usable `weft ipam --json` from {bad or 'any node'}")
    holders = {}
    for n, j in nodes.items():
        for kind in ("allocations", "conflicts"):
            for e in j.get(kind, []):
                holders.setdefault(e["address"], []).append(f"{n}/{e['handle']}({kind[:5]})")
    dups = {addr: hs for addr, hs in holders.items() if len(hs) > 1}
    held = sum(len(v) for v in holders.values())
    if dups:
        sample = "; ".join(f"{addr}: {' '.join(hs)}" for addr, hs in sorted(dups.items())[:6])
        print(f"FAIL distinct: {len(dups)} address(es) held by two handles at once (of {held} held): {sample}")
    else:
        print(f"ok distinct: {held} held addresses over {len(nodes)} nodes, no address held twice")

    acked = []
    with open(a.acked) as fh:
        for line in fh:
            p = line.split()
            if len(p) == 3:
                acked.append(p)
    missing = []
    for node, handle, addr in acked:
        j = nodes.get(node, {})
        have = {e["handle"]: e["address"] for k in ("allocations", "conflicts") for e in j.get(k, [])}
        if have.get(handle) != addr:
            missing.append(f"{node} {handle} {addr} {have.get(handle, '-')}")
    with open(a.missing, "w") as fh:
        fh.write("".join(m + "\n" for m in missing))
    if missing:
        print(f"FAIL acked: {len(missing)} of {len(acked)} acknowledged allocations are gone or moved "
              f"(node handle acked now): {'; '.join(missing[:6])}")
    else:
        print(f"ok acked: all {len(acked)} acknowledged allocations still held by their node")

    if a.rings:
        live = set(x for x in a.live.split(",") if x)
        views = {}
        for n, j in nodes.items():
            views[n] = [(r["start"], r["end"], r["owner"], r["version"]) for r in j.get("ranges", [])]
        for n, j in nodes.items():
            problems = []
            subnet = j.get("subnet")
            if not subnet:
                problems.append("no ring")
            else:
                net = ipaddress.ip_network(subnet)
                nxt = int(net.network_address)
                for s, e, owner, _ in views[n]:
                    si, ei = int(ipaddress.ip_address(s)), int(ipaddress.ip_address(e))
                    if si != nxt:
                        problems.append(f"{'gap' if si > nxt else 'overlap'} at {s}")
                    nxt = ei + 1
                    if live and owner not in live:
                        problems.append(f"{s}-{e} owned by {owner[:12]}, not a live node")
                if nxt != int(net.broadcast_address) + 1:
                    problems.append(f"ring ends at {ipaddress.ip_address(nxt - 1)}, subnet at {net.broadcast_address}")
            if problems:
                print(f"FAIL owners: {n}: {'; '.join(problems[:5])}")
            else:
                print(f"ok owners: {n}: {len(views[n])} ranges tile {subnet}, one owner each"
                      + (", all live" if live else ""))
        distinct = {tuple(v) for v in views.values()}
        if len(distinct) == 1:
            print(f"ok rings: all {len(views)} nodes report the same ring ({len(next(iter(distinct)))} ranges)")
        else:
            sizes = ", ".join(f"{n}:{len(v)}" for n, v in views.items())
            print(f"FAIL rings: {len(distinct)} different rings among {len(views)} nodes (ranges per node {sizes})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
