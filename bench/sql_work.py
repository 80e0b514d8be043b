# A tight loop of a trivial query over a Unix socket, for bench/sql_overhead.py.
# usage: sql_work.py DRIVER WINDOW_S PROCS [WARMUP_S]
# Prints "ready PID", waits for the tracer to attach, forks PROCS clients (traced as children),
# each runs `SELECT 1` for WINDOW_S seconds on its own connection, and prints one JSON line:
# {"queries": N, "seconds": S} summed over the clients.
import json
import os
import sys
import time

driver = sys.argv[1] if len(sys.argv) > 1 else "psycopg2"
window = float(sys.argv[2]) if len(sys.argv) > 2 else 3.0
nprocs = int(sys.argv[3]) if len(sys.argv) > 3 else 1
warmup = float(sys.argv[4]) if len(sys.argv) > 4 else 1.5

if driver == "psycopg2":
    import psycopg2 as drv
else:
    import psycopg as drv


def client(wfd):
    conn = drv.connect("")
    conn.autocommit = True
    cur = conn.cursor()
    cur.execute("SELECT 1")
    # Warm-up: the same loop for WARMUP_S before the timed window, so that the tracer's per-process
    # choice of libpq probes (--libpq-probes=auto moves a PQexec-only process to the exec probes
    # after its first statements) is made before timing starts, traced or not.
    end = time.perf_counter() + warmup
    while time.perf_counter() < end:
        for _ in range(100):
            cur.execute("SELECT 1")
            cur.fetchone()
    n = 0
    t0 = time.perf_counter()
    end = t0 + window
    while True:
        for _ in range(100):
            cur.execute("SELECT 1")
            cur.fetchone()
        n += 100
        if time.perf_counter() >= end:
            break
    os.write(wfd, ("%d %f\n" % (n, time.perf_counter() - t0)).encode())
    os._exit(0)


print("ready", os.getpid(), flush=True)
time.sleep(0.8)
r, w = os.pipe()
kids = []
for _ in range(nprocs):
    pid = os.fork()
    if pid == 0:
        client(w)
    kids.append(pid)
os.close(w)
for k in kids:
    os.waitpid(k, 0)
data = os.read(r, 65536).decode().split()
queries = sum(int(x) for x in data[0::2])
secs = max(float(x) for x in data[1::2])
print(json.dumps({"queries": queries, "seconds": secs}), flush=True)
