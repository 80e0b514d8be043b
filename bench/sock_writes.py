#!/usr/bin/python3
"""Writes on a socket that is not PostgreSQL's, for docs/PERFORMANCE.md ("Writes on sockets that
are not PostgreSQL's"): a socket pair made before the tracer starts, then a loop of a 36-byte
Redis-style command sent on one end and received on the other.
usage: sock_writes.py SETTLE_S SECONDS   (prints "ready PID", waits SETTLE_S, loops SECONDS)"""
import socket, sys, time, os
a, b = socket.socketpair()
print("ready", os.getpid(), flush=True)
time.sleep(float(sys.argv[1]))
msg = b"*3\r\n$3\r\nSET\r\n$3\r\nkey\r\n$5\r\nvalue\r\n"
n = 0
t0 = time.perf_counter()
while time.perf_counter() - t0 < float(sys.argv[2]):
    for _ in range(1000):
        a.send(msg)
        b.recv(4096)
    n += 1000
print("writes", n, "per_s", n / (time.perf_counter() - t0), flush=True)
