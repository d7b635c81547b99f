#!/usr/bin/env python3
"""Small traffic and JSON helpers for Weft's namespace tests (stdlib only).

Every network operation has a timeout; nothing here retries forever.

  sink      --bind IP --port P --out FILE --timeout S
            listen on TCP, write FILE.ready once listening, accept one connection, read to EOF,
            write "<bytes> <sha256>" to FILE
  send      --to IP --port P --file PATH --timeout S
            connect (retrying for up to S seconds), send PATH, half-close, wait for the peer to close
  udp-recv  --bind IP --port P --out FILE --marker M --timeout S [--want N]
            count datagrams containing M until N arrived or S passed; write the count to FILE
            (FILE.ready once bound)
  udp-send  --to IP --port P --msg M --count N [--interval S]
  members   [--name N] (stdin: `weft members --json`) print "<alive> <total> <name:state:incarnation,...>"
            and, with --name, then " <state> <incarnation>" of member N ("none -1" when absent)
  status    FIELD (stdin: `weft status --json`) print one top-level field ("" when absent)
  peers     --expect N (stdin: `weft peers --json`) exit 0 when >= N peers have a usable session
            (state established/rekeying) and rxBytes > 0 and txBytes > 0; print a summary line
  pcap      FILE MARKER... print "<packets> <udp-packets> <bytes>" then one "<marker> <0|1>" per
            marker (1 = the marker's bytes occur in some captured packet)
"""
import argparse
import hashlib
import json
import os
import socket
import struct
import sys
import time


def sink(a):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((a.bind, a.port))
    s.listen(1)
    s.settimeout(a.timeout)
    open(a.out + ".ready", "w").close()
    deadline = time.monotonic() + a.timeout
    c, _ = s.accept()
    h = hashlib.sha256()
    n = 0
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise SystemExit("sink: timed out after %d bytes" % n)
        c.settimeout(left)
        b = c.recv(1 << 20)
        if not b:
            break
        n += len(b)
        h.update(b)
    c.close()
    with open(a.out, "w") as f:
        f.write("%d %s\n" % (n, h.hexdigest()))


def send(a):
    deadline = time.monotonic() + a.timeout
    last = None
    while time.monotonic() < deadline:
        try:
            c = socket.create_connection((a.to, a.port), timeout=min(3.0, max(0.1, deadline - time.monotonic())))
            break
        except OSError as e:
            last = e
            time.sleep(0.2)
    else:
        raise SystemExit("send: could not connect to %s:%d: %s" % (a.to, a.port, last))
    c.settimeout(max(0.1, deadline - time.monotonic()))
    with open(a.file, "rb") as f:
        c.sendfile(f)
    c.shutdown(socket.SHUT_WR)
    c.settimeout(max(0.1, deadline - time.monotonic()))
    while c.recv(4096):
        pass
    c.close()


def udp_recv(a):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((a.bind, a.port))
    open(a.out + ".ready", "w").close()
    marker = a.marker.encode()
    got = 0
    deadline = time.monotonic() + a.timeout
    while got < a.want:
        left = deadline - time.monotonic()
        if left <= 0:
            break
        s.settimeout(left)
        try:
            b, _ = s.recvfrom(65535)
        except socket.timeout:
            break
        if marker in b:
            got += 1
    with open(a.out, "w") as f:
        f.write("%d\n" % got)


def udp_send(a):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    payload = a.msg.encode()
    for i in range(a.count):
        try:
            s.sendto(payload + (" #%d" % i).encode(), (a.to, a.port))
        except OSError as e:  # e.g. no route yet: keep going, the receiver counts what arrived
            print("udp-send: %s" % e, file=sys.stderr)
        time.sleep(a.interval)


def members(a):
    try:
        arr = json.load(sys.stdin)
    except ValueError:
        print("0 0 unparsable none -1")
        return
    if not isinstance(arr, list):  # `--json` error object ({"ok": false, "error": ...})
        print("0 0 unparsable none -1")
        return
    alive = sum(1 for m in arr if m.get("state") == "alive")
    desc = ",".join("%s:%s:%s" % (m.get("name", "?"), m.get("state", "?"), m.get("incarnation", "?")) for m in arr)
    line = "%d %d %s" % (alive, len(arr), desc or "-")
    if a.name:
        m = next((m for m in arr if m.get("name") == a.name), None)
        line += " %s %s" % ((m.get("state"), m.get("incarnation")) if m else ("none", -1))
    print(line)


def status(a):
    try:
        d = json.load(sys.stdin)
    except ValueError:
        print("")
        return
    v = d.get(a.field)
    print("" if v is None else (json.dumps(v) if isinstance(v, (dict, list)) else v))


def peers(a):
    try:
        arr = json.load(sys.stdin)
    except ValueError:
        print("unparsable weft peers output")
        raise SystemExit(1)
    if not isinstance(arr, list):  # `--json` error object ({"ok": false, "error": ...})
        print("weft peers failed: %s" % (arr.get("error") or {}).get("message", arr))
        raise SystemExit(1)
    good = 0
    desc = []
    for p in arr:
        state = str(p.get("state", ""))
        rx, tx = p.get("rxBytes") or 0, p.get("txBytes") or 0
        usable = state.startswith("established") or state.startswith("rekeying")
        if usable and rx > 0 and tx > 0:
            good += 1
        drops = p.get("drops") or {}
        desc.append("%s[%s rx=%s tx=%s%s]" % (p.get("name") or str(p.get("id", "?"))[:8], state, rx, tx,
                                             (" drops=" + json.dumps(drops, separators=(",", ":"))) if drops else ""))
    print("%d/%d usable with traffic: %s" % (good, len(arr), " ".join(desc)))
    raise SystemExit(0 if good >= a.expect else 1)


def pcap(a):
    data = open(a.file, "rb").read()
    markers = [m.encode() for m in a.markers]
    found = [0] * len(markers)
    packets = udp = total = 0
    if len(data) >= 24 and data[:4] in (b"\xd4\xc3\xb2\xa1", b"\xa1\xb2\xc3\xd4", b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\x3c\x4d"):
        le = data[:4] in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1")
        linktype = struct.unpack(("<" if le else ">") + "I", data[20:24])[0]
        off = 24
        while off + 16 <= len(data):
            _, _, incl, _ = struct.unpack(("<" if le else ">") + "IIII", data[off:off + 16])
            pkt = data[off + 16:off + 16 + incl]
            off += 16 + incl
            packets += 1
            total += len(pkt)
            # find the IPv4 header: Linux cooked v1 (113) = 16-byte header, v2 (276) = 20, Ethernet (1) = 14
            ip_off = {113: 16, 276: 20, 1: 14}.get(linktype)
            if ip_off is not None and len(pkt) > ip_off + 9 and pkt[ip_off] >> 4 == 4 and pkt[ip_off + 9] == 17:
                udp += 1
            for i, m in enumerate(markers):
                if m in pkt:
                    found[i] = 1
    else:  # unknown format: search the raw bytes, count nothing
        total = len(data)
        for i, m in enumerate(markers):
            found[i] = int(m in data)
    print("%d %d %d" % (packets, udp, total))
    for m, f in zip(a.markers, found):
        print("%s %d" % (m, f))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    x = sub.add_parser("sink"); x.add_argument("--bind", required=True); x.add_argument("--port", type=int, required=True)
    x.add_argument("--out", required=True); x.add_argument("--timeout", type=float, default=60); x.set_defaults(f=sink)
    x = sub.add_parser("send"); x.add_argument("--to", required=True); x.add_argument("--port", type=int, required=True)
    x.add_argument("--file", required=True); x.add_argument("--timeout", type=float, default=60); x.set_defaults(f=send)
    x = sub.add_parser("udp-recv"); x.add_argument("--bind", required=True); x.add_argument("--port", type=int, required=True)
    x.add_argument("--out", required=True); x.add_argument("--marker", required=True)
    x.add_argument("--timeout", type=float, default=10); x.add_argument("--want", type=int, default=1); x.set_defaults(f=udp_recv)
    x = sub.add_parser("udp-send"); x.add_argument("--to", required=True); x.add_argument("--port", type=int, required=True)
    x.add_argument("--msg", required=True); x.add_argument("--count", type=int, default=10)
    x.add_argument("--interval", type=float, default=0.05); x.set_defaults(f=udp_send)
    x = sub.add_parser("members"); x.add_argument("--name"); x.set_defaults(f=members)
    x = sub.add_parser("status"); x.add_argument("field"); x.set_defaults(f=status)
    x = sub.add_parser("peers"); x.add_argument("--expect", type=int, required=True); x.set_defaults(f=peers)
    x = sub.add_parser("pcap"); x.add_argument("file"); x.add_argument("markers", nargs="+"); x.set_defaults(f=pcap)
    a = p.parse_args()
    a.f(a)


if __name__ == "__main__":
    main()
