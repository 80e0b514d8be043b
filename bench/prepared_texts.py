#!/usr/bin/python3
"""What the texts of statements prepared before tracing cost while the programs copy them.

A driver's connection is opened and its statement prepared before the tool starts (a warm pool):
the wire then carries the statement's name only, and the tool has the programs copy the text that
the driver's sending frame holds, from the first Execute of a name it does not know until 5 s
after the last one (struct pt_proc's text_want; README, "SQL from the wire"). Here the loop runs
one statement as fast as it can: its name is learned at once, and the copies stop 5 s later.

Per round, one traced run (the tool's defaults but --no-samples, unpinned): the BPF run time of
all the tool's programs per statement while texts are copied (0.5 s to 3.5 s after the loop
starts) against the same after they stopped (7 s to 10 s), each window's statements per second,
and from the report the statements named by text and by name only.

Usage: sudo bench/prepared_texts.py [--rounds N] [--drivers asyncpg,psycopg]
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
TOOL = os.environ.get("PYTRACE_BPF") or os.path.join(REPO, "build", "pytrace-bpf")
PY = "/usr/bin/python3"
sys.path.insert(0, HERE)
from benchlib import bpf_ns, enable_bpf_stats, pg_cluster_start  # noqa: E402

# The loop, prepared before the tool: "ready PID", then "go" on stdin; each "?" line on stdin is
# answered with the statements run so far.
WORKLOAD = r'''
import asyncio, os, sys, threading
driver = sys.argv[1]
count = [0]

def answer():
    for line in sys.stdin:
        print(count[0], flush=True)

async def run_asyncpg():
    import asyncpg
    conn = await asyncpg.connect(host=os.environ["PGHOST"], port=int(os.environ["PGPORT"]),
                                 user=os.environ["PGUSER"], database=os.environ["PGDATABASE"])
    for i in range(3):
        await conn.fetchval("SELECT $1::int + 1", i)
    print("ready", os.getpid(), flush=True)
    sys.stdin.readline()
    threading.Thread(target=answer, daemon=True).start()
    k = 1
    while True:
        await conn.fetchval(f"SELECT $1::int + {k}", count[0])   # a str made per call
        count[0] += 1

def run_psycopg():
    import psycopg
    conn = psycopg.connect("", autocommit=True)
    for i in range(6):   # prepared at the fifth
        conn.execute("SELECT %s::int + 1", (i,)).fetchall()
    print("ready", os.getpid(), flush=True)
    sys.stdin.readline()
    threading.Thread(target=answer, daemon=True).start()
    while True:
        conn.execute("SELECT %s::int + 1", (count[0],)).fetchall()
        count[0] += 1

if driver == "asyncpg":
    asyncio.run(run_asyncpg())
else:
    run_psycopg()
'''

MARKS = (0.5, 3.5, 7.0, 10.0)   # seconds after the loop starts: copying, then not


def one(driver, env, tmp):
    w = subprocess.Popen([PY, "-c", WORKLOAD, driver], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                         env=dict(os.environ, **env))
    try:
        line = w.stdout.readline().split()
        if not line or line[0] != "ready":
            raise RuntimeError("workload did not start")
        pid = int(line[1])
        report = os.path.join(tmp, "%s.json" % driver)
        tool = subprocess.Popen([TOOL, "--pid", str(pid), "--duration", "14", "--no-samples", "--json", report],
                                stderr=subprocess.PIPE, text=True)
        # tracing once its stderr says so
        err = ""
        while "tracing" not in err.lower():
            chunk = tool.stderr.readline()
            if not chunk:
                raise RuntimeError("tool did not start: " + err[-400:])
            err += chunk
        time.sleep(0.5)
        w.stdin.write("go\n")
        w.stdin.flush()
        t0 = time.monotonic()
        got = []
        for m in MARKS:
            time.sleep(max(0.0, t0 + m - time.monotonic()))
            w.stdin.write("?\n")
            w.stdin.flush()
            n = int(w.stdout.readline())
            got.append((time.monotonic() - t0, n, bpf_ns(tool.pid)))
        tool.wait(timeout=30)
        rep = json.load(open(report))
    finally:
        w.kill()
        w.wait()
    (t1, n1, b1), (t2, n2, b2), (t3, n3, b3), (t4, n4, b4) = got
    queries = rep.get("queries", [])
    named = sum(q.get("count", 0) for q in queries if not q.get("pattern", "").startswith("EXECUTE"))
    unnamed = sum(q.get("count", 0) for q in queries if q.get("pattern", "").startswith("EXECUTE"))
    return {"copy_ns": (b2 - b1) / max(1, n2 - n1), "after_ns": (b4 - b3) / max(1, n4 - n3),
            "copy_qps": (n2 - n1) / (t2 - t1), "after_qps": (n4 - n3) / (t4 - t3),
            "named": named, "unnamed": unnamed,
            "texts": rep.get("sql_wire", {}).get("prepared_before_tracing", {}).get("texts_from_driver", 0)}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--drivers", default="asyncpg,psycopg")
    a = ap.parse_args()
    if os.geteuid():
        sys.exit("prepared_texts.py: run as root (BPF)")
    stats_fd = enable_bpf_stats()
    tmp = tempfile.mkdtemp(prefix="pytrace-bench-prep.")
    os.chmod(tmp, 0o755)	# the cluster's user reaches its directory through it
    d = os.path.join(tmp, "pg")
    env = pg_cluster_start(d)
    rows = []
    try:
        for r in range(a.rounds):
            for drv in a.drivers.split(","):
                x = one(drv, env, tmp)
                x["driver"] = drv
                rows.append(x)
                print("  %-8s round %d: while copying %5.0f ns/statement (%5.0f/s), after %5.0f ns/statement "
                      "(%5.0f/s); by text %d, by name only %d, texts %d" %
                      (drv, r + 1, x["copy_ns"], x["copy_qps"], x["after_ns"], x["after_qps"], x["named"],
                       x["unnamed"], x["texts"]), flush=True)
    finally:
        subprocess.run([os.path.join(REPO, "scripts", "pg-cluster.sh"), "stop", d], stdout=subprocess.DEVNULL)
        if stats_fd >= 0:
            os.close(stats_fd)
    print("\n| driver | BPF per statement while copying | after | added (paired by round) | by name only |")
    print("|---|---|---|---|---|")
    for drv in a.drivers.split(","):
        xs = [x for x in rows if x["driver"] == drv]
        on = [x["copy_ns"] for x in xs]
        off = [x["after_ns"] for x in xs]
        diff = [x["copy_ns"] - x["after_ns"] for x in xs]
        print("| %s | %.0f ns (%.0f-%.0f) | %.0f ns (%.0f-%.0f) | %+.0f ns (%+.0f..%+.0f) | %s |" %
              (drv, statistics.median(on), min(on), max(on), statistics.median(off), min(off), max(off),
               statistics.median(diff), min(diff), max(diff), ", ".join(str(x["unnamed"]) for x in xs)))
    print("%d rounds; tool %s (--no-samples), unpinned" % (a.rounds, TOOL))


if __name__ == "__main__":
    main()
