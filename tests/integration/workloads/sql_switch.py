# psycopg2 (Debian's python3-psycopg2): synchronous statements (PQexec) long enough for the
# tracer to move the process to its exec probes, then psycopg2's asynchronous API (async_=1:
# PQsendQuery, PQflush, PQconsumeInput), which must bring it back to the send probes.
# Prints "ready PID", runs, prints its own per-pattern counts (JSON, one line), lingers, exits.
import json
import os
import select
import time

import psycopg2
import psycopg2.extensions as ext

from tracer_go import wait_for_tracer

STATS = {}


def account(key, t0):
    dt = (time.perf_counter() - t0) * 1000.0
    s = STATS.setdefault(key, {"count": 0, "errors": 0, "max_ms": 0.0, "total_ms": 0.0})
    s["count"] += 1
    s["max_ms"] = max(s["max_ms"], dt)
    s["total_ms"] += dt


def wait(conn):
    while True:
        state = conn.poll()
        if state == ext.POLL_OK:
            return
        if state == ext.POLL_WRITE:
            select.select([], [conn.fileno()], [])
        elif state == ext.POLL_READ:
            select.select([conn.fileno()], [], [])


def sync_loop(cur, n):
    for i in range(n):
        t0 = time.perf_counter()
        cur.execute("SELECT %s::int8 AS sw_sync", (i,))  # @sw_sync
        account("sw_sync", t0)
        cur.fetchall()
        if i % 50 == 49:
            time.sleep(0.15)


def async_loop(acur, aconn, n):
    for i in range(n):
        t0 = time.perf_counter()
        acur.execute("SELECT %s::int2 AS sw_async", (i,))  # @sw_async
        wait(aconn)
        account("sw_async", t0)
        acur.fetchall()


def main():
    print("ready", os.getpid(), flush=True)
    wait_for_tracer()
    conn = psycopg2.connect("")
    conn.autocommit = True
    sync_loop(conn.cursor(), 400)
    # Statements sent before the tracer sees the first asynchronous call are not recorded: give it
    # time to change probes before the counted ones.
    aconn = psycopg2.connect("", async_=1)
    wait(aconn)
    acur = aconn.cursor()
    acur.execute("SELECT 1::text AS sw_warmup")
    wait(aconn)
    time.sleep(1.5)
    async_loop(acur, aconn, 100)
    aconn.close()
    conn.close()
    print(json.dumps({"patterns": STATS}), flush=True)
    time.sleep(float(os.environ.get("PT_LINGER", "1")))


if __name__ == "__main__":
    main()
