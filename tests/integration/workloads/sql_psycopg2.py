# psycopg2 (Debian's python3-psycopg2) on /usr/bin/python3: PQexec with literals inlined by the
# driver. Imported before "ready": libpq is mapped when the tracer starts.
# Prints "ready PID", waits for the tracer (wait_for_tracer), runs, prints its own per-pattern
# counts and latencies (JSON, one line), lingers PT_LINGER s, exits.
import json
import os
import time

import psycopg2

from tracer_go import wait_for_tracer

STATS = {}


def select_loop(cur, n):
    for i in range(n):
        t0 = time.perf_counter()
        cur.execute("SELECT %s + 1 AS pg2_select", (987650 + i,))  # @pg2_select
        account("pg2_select", t0)
        cur.fetchall()


def insert_loop(cur, n):
    for i in range(n):
        t0 = time.perf_counter()
        cur.execute("INSERT INTO pg2_items (name, n) VALUES (%s, %s)", ("secret-%d" % i, 987650 + i))  # @pg2_insert
        account("pg2_insert", t0)


def fail_once(conn, cur):
    t0 = time.perf_counter()
    try:
        cur.execute("SELECT pg2_nosuchcolumn FROM pg2_items")  # @pg2_fail
    except psycopg2.Error:
        account("pg2_fail", t0, error=True)
        conn.rollback()
    else:
        account("pg2_fail", t0)


def account(key, t0, error=False):
    dt = (time.perf_counter() - t0) * 1000.0
    s = STATS.setdefault(key, {"count": 0, "errors": 0, "max_ms": 0.0, "total_ms": 0.0})
    s["count"] += 1
    s["errors"] += int(error)
    s["max_ms"] = max(s["max_ms"], dt)
    s["total_ms"] += dt


def main():
    print("ready", os.getpid(), flush=True)
    wait_for_tracer()
    conn = psycopg2.connect("")
    cur = conn.cursor()
    cur.execute("CREATE TEMP TABLE pg2_items (name text, n int)")
    conn.commit()
    select_loop(cur, int(os.environ.get("PT_SELECTS", "150")))
    insert_loop(cur, int(os.environ.get("PT_INSERTS", "40")))
    conn.commit()
    fail_once(conn, cur)
    conn.close()
    print(json.dumps({"patterns": STATS}), flush=True)
    time.sleep(float(os.environ.get("PT_LINGER", "1")))


if __name__ == "__main__":
    main()
