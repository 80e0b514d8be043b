#!/usr/bin/python3
"""What each probed libpq call costs, measured without a server: a Python process calls
PQsendQuery(NULL, "SELECT 1"), PQgetResult(NULL) and PQexec(NULL, "SELECT 1") through ctypes
(libpq returns at once for a NULL connection, after the probes have fired), untraced and traced
by pytrace-bpf on each probe set (--libpq-probes=send, --libpq-probes=exec), and with bpftrace
holding an empty uprobe and uretprobe on PQexec (the traps alone: the floor under the exec probes),
in rotated order.

What a statement costs from that:
- psycopg2 (synchronous cursors): PQexec, which is PQgetResult (draining), PQsendQuery, then
  PQgetResult until NULL: on the send probes cost(send) + 3 x cost(result); on the exec probes,
  where the tool moves such a process, cost(exec).
- psycopg 3: PQsendQueryParams or PQsendQueryPrepared, then PQgetResult twice (result, NULL):
  cost(send) + 2 x cost(result), on the send probes (it uses the asynchronous API).
(Counted with bpftrace on Debian's psycopg2 2.9.5 and psycopg 3.1.7: docs/PERFORMANCE.md.)
This is free of the server's and the scheduler's noise; bench/sql_overhead.py is the end-to-end loop.

Usage: sudo bench/libpq_probe_cost.py [--rounds N] [--calls N] [--json FILE]
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
TOOL = os.path.join(os.path.dirname(HERE), "build", "pytrace-bpf")

WORKER = r"""
import ctypes, os, sys, time
pq = ctypes.CDLL("libpq.so.5")
pq.PQsendQuery.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
pq.PQgetResult.argtypes = [ctypes.c_void_p]
pq.PQgetResult.restype = ctypes.c_void_p
pq.PQexec.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
pq.PQexec.restype = ctypes.c_void_p
pq.PQlibVersion.restype = ctypes.c_int
n = int(sys.argv[1])
print("ready", os.getpid(), flush=True)
sys.stdin.readline()                      # the harness says go once the tracer is attached
def timed(fn):
    best = None
    for _ in range(5):
        t0 = time.perf_counter_ns()
        fn()
        dt = (time.perf_counter_ns() - t0) / n
        best = dt if best is None else min(best, dt)
    return best
def base():
    f = pq.PQlibVersion
    for _ in range(n): f()
def send():
    f = pq.PQsendQuery
    for _ in range(n): f(None, b"SELECT 1")
def result():
    f = pq.PQgetResult
    for _ in range(n): f(None)
def exec_():
    f = pq.PQexec
    for _ in range(n): f(None, b"SELECT 1")
b = timed(base)
print(f"{timed(send) - b:.1f} {timed(result) - b:.1f} {timed(exec_) - b:.1f}", flush=True)
"""


CONFIGS = ["untraced", "send", "exec", "floor"]
LIBPQ = "/usr/lib/x86_64-linux-gnu/libpq.so.5"


def one(calls, config):
    w = subprocess.Popen([sys.executable, "-c", WORKER, str(calls)], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, text=True)
    pid = int(w.stdout.readline().split()[1])
    t = None
    if config == "floor":
        lib = os.path.realpath(LIBPQ)
        t = subprocess.Popen(["bpftrace", "-e", "uprobe:%s:PQexec {} uretprobe:%s:PQexec {}" % (lib, lib)],
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for line in t.stdout:
            if "Attaching" in line:
                break
        time.sleep(0.3)
    elif config != "untraced":
        t = subprocess.Popen([TOOL, "--pid", str(pid), "--json", "/dev/null", "-v", "--libpq-probes=" + config],
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        for line in t.stderr:
            if "probing libpq" in line:
                break
        time.sleep(0.2)
    w.stdin.write("go\n")
    w.stdin.flush()
    costs = [float(x) for x in w.stdout.readline().split()]
    w.wait()
    if t and config == "floor":
        t.send_signal(2)
        try:
            t.wait(timeout=10)
        except subprocess.TimeoutExpired:
            t.kill()
            t.wait()
    elif t:
        t.wait(timeout=30)
    return costs


def rng(xs):
    return "%.0f-%.0f" % (min(xs), max(xs))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--calls", type=int, default=100000)
    ap.add_argument("--json")
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("run as root: the tracer loads BPF programs")
    add = {k: [] for k in ("send", "result", "exec", "floor", "psycopg2_send_probes", "psycopg2_exec_probes",
                           "psycopg3")}
    for r in range(args.rounds):
        k = r % len(CONFIGS)
        order = CONFIGS[k:] + CONFIGS[:k]
        got = {c: one(args.calls, c) for c in order}
        base = got["untraced"]
        s = got["send"][0] - base[0]
        g = got["send"][1] - base[1]
        e = got["exec"][2] - base[2]
        add["send"].append(s)
        add["result"].append(g)
        add["exec"].append(e)
        add["floor"].append(got["floor"][2] - base[2])
        add["psycopg2_send_probes"].append(s + 3 * g)
        add["psycopg2_exec_probes"].append(e)
        add["psycopg3"].append(s + 2 * g)
        print("  round %d: send probes: PQsendQuery +%.0f ns, PQgetResult +%.0f ns; exec probes: PQexec +%.0f ns "
              "; traps alone: PQexec +%.0f ns (untraced calls %.0f / %.0f / %.0f ns)" % (r + 1, s, g, e, add["floor"][-1], *base),
              flush=True)
    res = {k + "_ns_median": statistics.median(v) for k, v in add.items()}
    res.update({k + "_ns_range": [min(v), max(v)] for k, v in add.items()})
    res["rounds"] = args.rounds
    print("\nadded per call, median of %d rounds (range):" % args.rounds)
    print("  send probes: PQsendQuery %.0f ns (%s), PQgetResult %.0f ns (%s)" % (
        res["send_ns_median"], rng(add["send"]), res["result_ns_median"], rng(add["result"])))
    print("  exec probes: PQexec %.0f ns (%s)" % (res["exec_ns_median"], rng(add["exec"])))
    print("  traps alone (bpftrace, empty uprobe + uretprobe on PQexec): %.0f ns (%s)" % (
        res["floor_ns_median"], rng(add["floor"])))
    print("added per statement:")
    print("  psycopg2 on the exec probes (what auto moves it to): %.2f us (%.2f-%.2f)" % (
        res["psycopg2_exec_probes_ns_median"] / 1000, *(x / 1000 for x in res["psycopg2_exec_probes_ns_range"])))
    print("  psycopg2 on the send probes: %.2f us (%.2f-%.2f)" % (
        res["psycopg2_send_probes_ns_median"] / 1000, *(x / 1000 for x in res["psycopg2_send_probes_ns_range"])))
    print("  psycopg 3 (send probes): %.2f us (%.2f-%.2f)" % (
        res["psycopg3_ns_median"] / 1000, *(x / 1000 for x in res["psycopg3_ns_range"])))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(res, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
