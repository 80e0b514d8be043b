# libpq through ctypes, no driver: runs on every interpreter (3.8+), including Debian unstable's
# in a chroot. libpq (PT_LIBPQ, else the system's) is loaded once the tracer is tracing, so it is
# mapped after the tracer started; the first statement goes PT_LOAD_DELAY s later. Connection
# parameters come from PG* variables.
# Prints "ready PID", its own counts and client-measured latencies (JSON, one line), exits.
import ctypes
import ctypes.util
import json
import os
import sys
import time

from tracer_go import wait_for_tracer

STATS = {}
PGRES_FATAL_ERROR = 7


def account(key, t0, error=False):
    dt = (time.perf_counter() - t0) * 1000.0
    s = STATS.setdefault(key, {"count": 0, "errors": 0, "max_ms": 0.0, "total_ms": 0.0})
    s["count"] += 1
    s["errors"] += int(error)
    s["max_ms"] = max(s["max_ms"], dt)
    s["total_ms"] += dt


def load_libpq():
    pq = ctypes.CDLL(os.environ.get("PT_LIBPQ") or ctypes.util.find_library("pq") or "libpq.so.5")
    pq.PQconnectdb.restype = ctypes.c_void_p
    pq.PQconnectdb.argtypes = [ctypes.c_char_p]
    pq.PQstatus.argtypes = [ctypes.c_void_p]
    pq.PQerrorMessage.restype = ctypes.c_char_p
    pq.PQerrorMessage.argtypes = [ctypes.c_void_p]
    pq.PQexec.restype = ctypes.c_void_p
    pq.PQexec.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
    pq.PQexecParams.restype = ctypes.c_void_p
    pq.PQexecParams.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int, ctypes.c_void_p,
                                ctypes.POINTER(ctypes.c_char_p), ctypes.c_void_p, ctypes.c_void_p,
                                ctypes.c_int]
    pq.PQresultStatus.argtypes = [ctypes.c_void_p]
    pq.PQclear.argtypes = [ctypes.c_void_p]
    pq.PQfinish.argtypes = [ctypes.c_void_p]
    return pq


def check(pq, res):
    st = pq.PQresultStatus(res)
    pq.PQclear(res)
    return st


def run_exec(pq, conn, n):
    for _ in range(n):
        t0 = time.perf_counter()
        res = pq.PQexec(conn, b"SELECT 'lit-canary-4242' AS ct_exec")  # @ct_exec
        account("ct_exec", t0)
        if check(pq, res) == PGRES_FATAL_ERROR:
            sys.exit("ct_exec failed: %s" % pq.PQerrorMessage(conn))


def run_params(pq, conn, m):
    vals = (ctypes.c_char_p * 1)()
    for i in range(m):
        vals[0] = str(i).encode()
        t0 = time.perf_counter()
        res = pq.PQexecParams(conn, b"SELECT $1::int + 3 AS ct_params", 1, None, vals, None, None, 0)  # @ct_params
        account("ct_params", t0)
        if check(pq, res) == PGRES_FATAL_ERROR:
            sys.exit("ct_params failed: %s" % pq.PQerrorMessage(conn))


def run_fail(pq, conn):
    t0 = time.perf_counter()
    res = pq.PQexec(conn, b"SELECT * FROM ct_nosuchtable")  # @ct_fail
    account("ct_fail", t0, error=check(pq, res) == PGRES_FATAL_ERROR)


def run_badutf8(pq, conn):
    # Not valid UTF-8: the server rejects it (invalid byte sequence for encoding "UTF8").
    t0 = time.perf_counter()
    res = pq.PQexec(conn, b"SELECT 'bad\xff\xfe' AS ct_badutf8")  # @ct_badutf8
    account("ct_badutf8", t0, error=check(pq, res) == PGRES_FATAL_ERROR)


def main():
    print("ready", os.getpid(), flush=True)
    wait_for_tracer()
    pq = load_libpq()
    time.sleep(float(os.environ.get("PT_LOAD_DELAY", "1")))
    conn = pq.PQconnectdb(b"")
    if pq.PQstatus(conn) != 0:
        sys.exit("connection failed: %s" % pq.PQerrorMessage(conn))
    run_exec(pq, conn, int(os.environ.get("PT_EXECS", "25")))
    run_params(pq, conn, int(os.environ.get("PT_PARAMS", "15")))
    run_fail(pq, conn)
    run_badutf8(pq, conn)
    pq.PQfinish(conn)
    print(json.dumps({"patterns": STATS}), flush=True)
    time.sleep(float(os.environ.get("PT_LINGER", "1")))


if __name__ == "__main__":
    main()
