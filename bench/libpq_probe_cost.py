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

It also gives the BPF run time of each of the tool's programs per run (kernel.bpf_stats_enabled).

--bystanders K adds a configuration: the send probes again, with K more processes of the traced
tree holding their own probes on the same libpq (children of the worker, asleep: idle gunicorn
workers, or processes probed ahead). The kernel runs every consumer of a uprobe at each hit and
each turns away the processes that are not its own, so each bystander costs every call a little.

Usage: sudo bench/libpq_probe_cost.py [--rounds N] [--calls N] [--bystanders K] [--json FILE]
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
TOOL = os.environ.get("PYTRACE_BPF") or os.path.join(os.path.dirname(HERE), "build", "pytrace-bpf")

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
kids = []
for _ in range(int(os.environ.get("PT_BYSTANDERS", "0"))):
    pid = os.fork()
    if pid == 0:
        time.sleep(600)
        os._exit(0)
    kids.append(pid)
if kids:
    time.sleep(1.5)                       # the tracer attaches each child's probes at its fork
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
sys.stdin.readline()                      # while the harness reads the tracer's BPF run times
for k in kids:
    os.kill(k, 9)
    os.waitpid(k, 0)
"""


sys.path.insert(0, HERE)
sys.dont_write_bytecode = True
from requests_overhead import bpf_prog_stats, enable_bpf_stats, tool_prog_ids  # noqa: E402

CONFIGS = ["untraced", "send", "exec", "floor"]
PROG_NS = {}	# (configuration, program): BPF ns per run, one per round
LIBPQ = "/usr/lib/x86_64-linux-gnu/libpq.so.5"


def one(calls, config, bystanders=0):
    env = dict(os.environ, PT_BYSTANDERS=str(bystanders if config == "send+bystanders" else 0))
    w = subprocess.Popen([sys.executable, "-c", WORKER, str(calls)], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, text=True, env=env)
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
        probes = "send" if config == "send+bystanders" else config
        t = subprocess.Popen([TOOL, "--pid", str(pid), "--json", "/dev/null", "-v", "--libpq-probes=" + probes],
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        for line in t.stderr:
            if "probing libpq" in line:
                break
        time.sleep(0.2)
    w.stdin.write("go\n")
    w.stdin.flush()
    costs = [float(x) for x in w.stdout.readline().split()]
    if t and config != "floor":
        for name, (n, ns) in bpf_prog_stats(tool_prog_ids(t.pid)).items():
            if n:
                PROG_NS.setdefault((config, name), []).append(ns / n)
    w.stdin.write("bye\n")
    w.stdin.flush()
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
    ap.add_argument("--bystanders", type=int, default=0)
    ap.add_argument("--json")
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("run as root: the tracer loads BPF programs")
    add = {k: [] for k in ("send", "result", "exec", "floor", "psycopg2_send_probes", "psycopg2_exec_probes",
                           "psycopg3", "bystander_send", "bystander_result")}
    configs = CONFIGS + (["send+bystanders"] if args.bystanders else [])
    stats_fd = enable_bpf_stats()  # noqa: F841 - counted while open
    for r in range(args.rounds):
        k = r % len(configs)
        order = configs[k:] + configs[:k]
        got = {c: one(args.calls, c, args.bystanders) for c in order}
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
        if args.bystanders:
            by = got["send+bystanders"]
            add["bystander_send"].append((by[0] - got["send"][0]) / args.bystanders)
            add["bystander_result"].append((by[1] - got["send"][1]) / args.bystanders)
            print("  round %d: with %d bystanders: PQsendQuery +%.0f ns, PQgetResult +%.0f ns" % (
                r + 1, args.bystanders, by[0] - base[0], by[1] - base[1]), flush=True)
        print("  round %d: send probes: PQsendQuery +%.0f ns, PQgetResult +%.0f ns; exec probes: PQexec +%.0f ns "
              "; traps alone: PQexec +%.0f ns (untraced calls %.0f / %.0f / %.0f ns)" % (r + 1, s, g, e, add["floor"][-1], *base),
              flush=True)
    res = {k + "_ns_median": statistics.median(v) for k, v in add.items() if v}
    res.update({k + "_ns_range": [min(v), max(v)] for k, v in add.items() if v})
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
    if PROG_NS:
        print("BPF run time per program run (kernel.bpf_stats_enabled), median of rounds (range):")
        for (config, name), v in sorted(PROG_NS.items()):
            print("  %-16s %-22s %5.0f ns (%.0f-%.0f)" % (config, name, statistics.median(v), min(v), max(v)))
        res["bpf_ns_per_run"] = {"%s/%s" % k: statistics.median(v) for k, v in PROG_NS.items()}
    if args.bystanders:
        print("each bystander (another traced process probed on the same libpq) adds per call:")
        print("  PQsendQuery (entry probe) %.1f ns (%.1f-%.1f), PQgetResult (entry + return) %.1f ns (%.1f-%.1f)" % (
            res["bystander_send_ns_median"], *res["bystander_send_ns_range"],
            res["bystander_result_ns_median"], *res["bystander_result_ns_range"]))
        print("  a psycopg 3 statement (send + 2 results): %.0f ns" % (
            res["bystander_send_ns_median"] + 2 * res["bystander_result_ns_median"]))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(res, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
