#!/usr/bin/python3
"""Where the wire programs' time goes, per traced chunk: reads the pg_phases map of a build made
with `make OUTPUT=build-phases PHASES=1` while it traces something, twice, --seconds apart, and
prints the mean time of each phase of a client chunk (a statement's write) and of a server chunk
(a result's read) over that window.

Usage: sudo bench/wire_phases.py [--seconds 5]
   with build-phases/pytrace-bpf tracing a workload meanwhile, e.g.
   PYTRACE_BPF=build-phases/pytrace-bpf bench/requests_overhead.py --configs untraced,pytrace-bpf ...

Each phase runs from the previous mark to its own (bpf/pgwire.bpf.c, PT_PHASE); a mark costs a
clock read and a map lookup (some 30-50 ns here), so each phase reads high by about that much:
compare builds with the same marks, not these figures with an unmarked build's.
  pre          the connection's lookup and the chunk's address, from the syscall's registers
  event+copy   the event's header (and the PGconn of a libpq-probed process), one copy of a chunk
               of at most 512 bytes
  messages     the messages walked and the records kept
  walk: reads  the Python stack walk's reads before its frames (3.11+: the thread state, the
               frame it runs, the data stack's part in use copied at once; client chunks with a
               statement only), and the bytes of that copy
  walk: frames the rest of the walk: its frames (those outside the copy read one by one) and
               the reads after them (3.8-3.10: the whole walk)
  stack map    the stack's entry in pg_stacks, unless this CPU's last statement had the same stack
  flush        the ring buffer's output
"""
import argparse
import json
import subprocess
import sys
import time

SLOTS = {"pre": 0, "event+copy": 1, "messages": 2, "walk: reads": 22, "walk: frames": 3, "stack map": 4,
         "flush": 5}
COUNT, SERVER, WALKS, FRAMES, COPIED = 6, 10, 20, 21, 23


def dump():
    """Slot -> sum over CPUs, or None while no such map is loaded."""
    r = subprocess.run(["bpftool", "-j", "map", "dump", "name", "pg_phases"], capture_output=True, text=True)
    if r.returncode:
        return None
    try:
        entries = json.loads(r.stdout)
    except ValueError:
        return None

    def num(x):
        return x if isinstance(x, int) else int.from_bytes(bytes(int(b, 16) for b in x), "little")
    return {num(e["key"]): sum(num(v["value"]) for v in e["values"]) for e in entries}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--wait", type=float, default=120.0, help="seconds to wait for the map to appear")
    a = ap.parse_args()
    deadline = time.monotonic() + a.wait
    first = dump()
    while first is None:
        if time.monotonic() > deadline:
            sys.exit("no pg_phases map: is a build made with PHASES=1 tracing?")
        time.sleep(0.5)
        first = dump()
    time.sleep(a.seconds)
    last = dump()
    if last is None:
        sys.exit("pg_phases went away during the window: the tracer stopped")
    d = {k: last.get(k, 0) - first.get(k, 0) for k in set(first) | set(last)}
    client, server, walks = d.get(COUNT, 0), d.get(SERVER + COUNT, 0), d.get(WALKS, 0)
    print("window %.1f s: %d client chunks, %d server chunks, %d stack walks (%.1f frames, %.0f bytes of "
          "data stack copied each)" % (a.seconds, client, server, walks, d.get(FRAMES, 0) / walks if walks else 0,
                                      d.get(COPIED, 0) / walks if walks else 0))
    print("| phase | client chunk, ns | server chunk, ns |")
    print("|---|---|---|")
    for name, k in SLOTS.items():
        c = d.get(k, 0) / client if client else 0
        s = d.get(SERVER + k, 0) / server if server else 0
        if name.startswith("walk") or name == "stack map":
            c = d.get(k, 0) / walks if walks else 0
            print("| %s (per walk) | %.0f | - |" % (name, c))
        else:
            print("| %s | %.0f | %.0f |" % (name, c, s))
    if not client and not server:
        print("(no traced chunk in the window)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
