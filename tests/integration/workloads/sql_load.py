"""Many statements per second through psycopg2, from several processes, for test_load.py.

Usage: sql_load.py PROCS RATE SECONDS. Forks PROCS children, each with its own psycopg2
connection (autocommit, libpq's environment: PGHOST, PGPORT, ...), prints "ready PID" once all
are connected, waits for the tracer (tracer_go), then each child runs `SELECT 1` for SECONDS s
at RATE/PROCS statements per second (RATE 0: as fast as it can), paced in steps of 10 ms.
Prints one JSON line {"ok": N, "errors": N, "secs": S, "rate": R, "children": [N, ...]}.
"""
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from tracer_go import wait_for_tracer  # noqa: E402


def child(rate, secs, ready_w, go_r, out_w):
    import psycopg2
    conn = psycopg2.connect("")
    conn.autocommit = True
    cur = conn.cursor()
    os.write(ready_w, b"r")
    os.read(go_r, 1)
    ok = errors = 0
    t0 = time.monotonic()
    end = t0 + secs
    while True:
        now = time.monotonic()
        if now >= end:
            break
        # statements due by now (paced), or a batch of 50 when unpaced
        due = int((now - t0) * rate) - ok - errors if rate else 50
        if due <= 0:
            time.sleep(0.01)
            continue
        for _ in range(min(due, 200)):
            try:
                cur.execute("SELECT 1")
                cur.fetchall()
                ok += 1
            except psycopg2.Error:
                errors += 1
    elapsed = time.monotonic() - t0
    conn.close()
    os.write(out_w, (json.dumps([ok, errors, elapsed]) + "\n").encode())


def main():
    procs, rate, secs = int(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3])
    ready_r, ready_w = os.pipe()
    go_r, go_w = os.pipe()
    out_r, out_w = os.pipe()
    kids = []
    for _ in range(procs):
        pid = os.fork()
        if pid == 0:
            os.close(ready_r)
            os.close(go_w)
            os.close(out_r)
            try:
                child(rate / procs, secs, ready_w, go_r, out_w)
            finally:
                os._exit(0)
        kids.append(pid)
    os.close(ready_w)
    os.close(go_r)
    os.close(out_w)
    got = 0
    while got < procs:
        b = os.read(ready_r, procs)
        if not b:
            sys.exit("a child died before it connected")
        got += len(b)
    print("ready", os.getpid(), flush=True)
    wait_for_tracer()
    os.write(go_w, b"g" * procs)
    with os.fdopen(out_r) as f:
        lines = [json.loads(line) for line in f]
    for pid in kids:
        os.waitpid(pid, 0)
    ok = sum(x[0] for x in lines)
    errors = sum(x[1] for x in lines)
    secs_max = max((x[2] for x in lines), default=0)
    print(json.dumps({"ok": ok, "errors": errors, "secs": round(secs_max, 3),
                      "rate": round(ok / secs_max) if secs_max else 0, "children": [x[0] for x in lines]}),
          flush=True)


if __name__ == "__main__":
    main()
