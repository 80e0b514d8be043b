# psycopg 3 (Debian's python3-psycopg 3.1.7, libpq through ctypes) on /usr/bin/python3.
# The driver is imported only once the tracer is tracing: its libpq is mapped after the tracer
# started, and the tracer must find it (dynamic-linker watch, or the 0.5 s rescan) before the
# first statement, PT_LOAD_DELAY s later.
# Patterns, each with its own tag:
#   pg3_plain   server-side params (PQsendQueryParams), never prepared
#   pg3_prep    prepare_threshold reached: PQsendPrepare once, then PQsendQueryPrepared
#   pg3_pipe    pipeline mode: many PQsendQueryParams before results, PQpipelineSync
#   pg3_client  ClientCursor: literals merged client-side
#   pg3_async   AsyncConnection x PT_ASYNC_CONNS, concurrent on one thread under asyncio
# Prints "ready PID", its own counts and client-measured latencies (JSON, one line), exits.
import asyncio
import json
import os
import time

from tracer_go import wait_for_tracer

STATS = {}


def account(key, t0, n=1, error=False):
    """n statements, each of which lies within [t0, now]."""
    dt = (time.perf_counter() - t0) * 1000.0
    s = STATS.setdefault(key, {"count": 0, "errors": 0, "max_ms": 0.0, "total_ms": 0.0})
    s["count"] += n
    s["errors"] += int(error)
    s["max_ms"] = max(s["max_ms"], dt)
    s["total_ms"] += dt * n


def plain(conn, n):
    cur = conn.cursor()
    for i in range(n):
        t0 = time.perf_counter()
        cur.execute("SELECT %s::int * 2 AS pg3_plain", (i,))  # @pg3_plain
        account("pg3_plain", t0)
        cur.fetchone()


def prepared(conn, n):
    cur = conn.cursor()
    for i in range(n):
        t0 = time.perf_counter()
        cur.execute("SELECT %s::int + 7 AS pg3_prep", (i,))  # @pg3_prep
        account("pg3_prep", t0)
        cur.fetchone()


def pipelined(conn, n):
    cur = conn.cursor()
    t0 = time.perf_counter()
    with conn.pipeline():
        for i in range(n):
            cur.execute("SELECT %s::int AS pg3_pipe", (i,))  # @pg3_pipe
    account("pg3_pipe", t0, n)


def client_cursor(conn, n, psycopg):
    cur = psycopg.ClientCursor(conn)
    for i in range(n):
        t0 = time.perf_counter()
        cur.execute("SELECT %s AS pg3_client", (654320 + i,))  # @pg3_client
        account("pg3_client", t0)
        cur.fetchone()


async def async_worker(aconn, n):
    cur = aconn.cursor()
    for i in range(n):
        t0 = time.perf_counter()
        await cur.execute("SELECT %s::int - 1 AS pg3_async", (i,))  # @pg3_async
        account("pg3_async", t0)
        await cur.fetchone()


async def run_async(psycopg, nconns, n):
    conns = [await psycopg.AsyncConnection.connect("", autocommit=True, prepare_threshold=None)
             for _ in range(nconns)]
    await asyncio.gather(*(async_worker(c, n) for c in conns))
    for c in conns:
        await c.close()


def main():
    print("ready", os.getpid(), flush=True)
    wait_for_tracer()
    import psycopg
    time.sleep(float(os.environ.get("PT_LOAD_DELAY", "1")))

    conn = psycopg.connect("", autocommit=True, prepare_threshold=None)
    plain(conn, 60)
    pipelined(conn, 50)
    client_cursor(conn, 20, psycopg)
    conn.close()

    pconn = psycopg.connect("", autocommit=True)
    pconn.prepare_threshold = 2
    prepared(pconn, 30)
    pconn.close()

    asyncio.run(run_async(psycopg, int(os.environ.get("PT_ASYNC_CONNS", "4")), 25))
    print(json.dumps({"patterns": STATS}), flush=True)
    time.sleep(float(os.environ.get("PT_LINGER", "1")))


if __name__ == "__main__":
    main()
