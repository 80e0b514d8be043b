#!/usr/bin/python3
"""What each probed libpq call costs, measured without a server: a Python process calls
PQsendQuery(NULL, "SELECT 1") and PQgetResult(NULL) through ctypes (libpq returns at once for a
NULL connection, after the probes have fired), untraced and traced by pytrace-bpf, alternating.

A psycopg2 statement makes one PQsendQuery and two PQgetResult calls (PQexec = PQsendQuery +
PQgetResult until NULL), so the added latency per statement is cost(send) + 2 x cost(result).
This is the figure the end-to-end loop in bench/sql_overhead.py also shows, but free of the
server's and the scheduler's noise.

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
b = timed(base)
print(f"{timed(send) - b:.1f} {timed(result) - b:.1f}", flush=True)
"""


def one(calls, traced):
    w = subprocess.Popen([sys.executable, "-c", WORKER, str(calls)], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, text=True)
    pid = int(w.stdout.readline().split()[1])
    t = None
    if traced:
        t = subprocess.Popen([TOOL, "--pid", str(pid), "--json", "/dev/null", "-v"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        for line in t.stderr:
            if "probing libpq" in line:
                break
        time.sleep(0.2)
    w.stdin.write("go\n")
    w.stdin.flush()
    send, result = (float(x) for x in w.stdout.readline().split())
    w.wait()
    if t:
        t.wait(timeout=30)
    return send, result


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--calls", type=int, default=100000)
    ap.add_argument("--json")
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("run as root: the tracer loads BPF programs")
    add_send, add_result, per_stmt = [], [], []
    for r in range(args.rounds):
        order = [False, True] if r % 2 == 0 else [True, False]
        got = {tr: one(args.calls, tr) for tr in order}
        s = got[True][0] - got[False][0]
        g = got[True][1] - got[False][1]
        add_send.append(s)
        add_result.append(g)
        per_stmt.append(s + 2 * g)
        print("  round %d: PQsendQuery +%.0f ns, PQgetResult +%.0f ns -> +%.2f us per psycopg2 statement "
              "(untraced call overheads %.0f / %.0f ns)" % (r + 1, s, g, per_stmt[-1] / 1000, got[False][0],
                                                          got[False][1]), flush=True)
    res = {
        "send_ns_median": statistics.median(add_send), "send_ns_range": [min(add_send), max(add_send)],
        "result_ns_median": statistics.median(add_result), "result_ns_range": [min(add_result), max(add_result)],
        "per_statement_us_median": statistics.median(per_stmt) / 1000,
        "per_statement_us_range": [min(per_stmt) / 1000, max(per_stmt) / 1000],
    }
    print("\nadded per call: PQsendQuery %.0f ns (%.0f-%.0f), PQgetResult %.0f ns (%.0f-%.0f); "
          "per psycopg2 statement %.2f us (%.2f-%.2f), median of %d rounds" % (
              res["send_ns_median"], *res["send_ns_range"], res["result_ns_median"], *res["result_ns_range"],
              res["per_statement_us_median"], *res["per_statement_us_range"], args.rounds))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(res, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
