# A tight loop of a trivial query over a Unix socket, for bench/sql_overhead.py.
# usage: sql_work.py DRIVER WINDOW_S PROCS [WARMUP_S]
# Prints "ready PID", waits for the tracer to attach, forks PROCS clients (traced as children),
# each runs `SELECT 1` for WINDOW_S seconds on its own connection, and prints one JSON line:
# {"queries": N, "seconds": S, "best_s_per_query": B} summed over the clients; B is the time per
# query of the fastest CHUNK queries in a row of the first client: what host noise, which only ever
# slows a run down, disturbs least.
import json
import os
import sys
import time

driver = sys.argv[1] if len(sys.argv) > 1 else "psycopg2"
window = float(sys.argv[2]) if len(sys.argv) > 2 else 3.0
nprocs = int(sys.argv[3]) if len(sys.argv) > 3 else 1
warmup = float(sys.argv[4]) if len(sys.argv) > 4 else 1.5
CHUNK = 2000
# PT_SQL_DEPTH=N: send from N Python frames deeper (a web framework's stack is 40-100 frames)
DEPTH = int(os.environ.get("PT_SQL_DEPTH", "0"))
# PT_HTTPS_BESIDE=PORT: a TLS connection to 127.0.0.1:PORT (tests/integration/workloads/tls_sink.py), opened before the
# tracer starts, on which each client writes once: an HTTPS connection of the service beside its
# PostgreSQL ones, as a service calling another over HTTPS has
HTTPS_BESIDE = os.environ.get("PT_HTTPS_BESIDE")

if driver == "psycopg2":
    import psycopg2 as drv
elif driver == "pg8000":
    import pg8000
elif driver == "asyncpg":
    import asyncio
    import asyncpg
else:
    import psycopg as drv


def asyncpg_client(wfd):
    """The same loop on asyncpg (its own protocol code, no libpq: seen on the wire only)."""
    async def run():
        conn = await asyncpg.connect(host=os.environ["PGHOST"], port=int(os.environ.get("PGPORT", 5432)),
                                     user=os.environ.get("PGUSER"), database=os.environ.get("PGDATABASE"))
        await conn.fetchval("SELECT 1")
        end = time.perf_counter() + warmup
        while time.perf_counter() < end:
            for _ in range(100):
                await conn.fetchval("SELECT 1")
        n = 0
        t0 = chunk_t0 = time.perf_counter()
        end = t0 + window
        best = None
        while True:
            for _ in range(100):
                await conn.fetchval("SELECT 1")
            n += 100
            now = time.perf_counter()
            if n % CHUNK == 0:
                best = min(best or 1e9, (now - chunk_t0) / CHUNK)
                chunk_t0 = now
            if now >= end:
                break
        return n, time.perf_counter() - t0, best
    n, secs, best = asyncio.run(run())
    os.write(wfd, ("%d %f %.9f\n" % (n, secs, best or 0)).encode())
    os._exit(0)


def deep(n, f, *a):
    return f(*a) if n <= 0 else deep(n - 1, f, *a)


def client(wfd):
    if tls_beside:
        try:   # several clients share the socket: the peer may have given up on it
            tls_beside.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
        except OSError:
            pass
    if driver == "asyncpg":
        asyncpg_client(wfd)
    deep(DEPTH, client_loop, wfd)


def connect():
    if driver != "pg8000":
        return drv.connect("")
    # pure Python, no libpq (seen on the wire only); Debian 12's 1.10 closes each statement's
    # portal in a round trip of its own
    host, port = os.environ["PGHOST"], os.environ.get("PGPORT", "5432")
    kw = dict(user=os.environ.get("PGUSER"), database=os.environ.get("PGDATABASE"))
    if host.startswith("/"):
        kw["unix_sock"] = os.path.join(host, ".s.PGSQL." + port)
    else:
        kw.update(host=host, port=int(port))
    return pg8000.connect(**kw)


def client_loop(wfd):
    conn = connect()
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
    t0 = chunk_t0 = time.perf_counter()
    end = t0 + window
    best = None	# seconds per query of the fastest CHUNK queries in a row
    while True:
        for _ in range(100):
            cur.execute("SELECT 1")
            cur.fetchone()
        n += 100
        now = time.perf_counter()
        if n % CHUNK == 0:
            best = min(best or 1e9, (now - chunk_t0) / CHUNK)
            chunk_t0 = now
        if now >= end:
            break
    os.write(wfd, ("%d %f %.9f\n" % (n, time.perf_counter() - t0, best or 0)).encode())
    os._exit(0)


tls_beside = None
if HTTPS_BESIDE:
    import socket
    import ssl
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    tls_beside = ctx.wrap_socket(socket.create_connection(("127.0.0.1", int(HTTPS_BESIDE))))
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
queries = sum(int(x) for x in data[0::3])
secs = max(float(x) for x in data[1::3])
print(json.dumps({"queries": queries, "seconds": secs, "best_s_per_query": float(data[2])}), flush=True)
