#!/usr/bin/env python3
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
"""A workload that blocks about 10,000 times a second, for bench/flame_overhead.py --idle.

The same protocol as cpu_work.py: prints "ready <pid>", (with --wait-go: waits for a line on
stdin), sleeps --settle seconds, prints "start <CLOCK_MONOTONIC>", then runs units for
--seconds and prints "result units=N elapsed=S cpu=S throughput=U/s blocks_per_s=B"; with
--hold it then waits for stdin to close.

A unit is --spin iterations of a pure-Python loop (about 0.25 ms at the default 8000 on
CPython 3.11 here), then a one-byte round trip through pipes to a forked child that echoes
it: the parent blocks in read() once per unit, and so does the child, so the traced
processes block about twice per unit (two threads' worth of switch-outs and switch-ins).
blocks_per_s counts those two per unit; pick --spin so that it is near 10,000.
"""
import argparse
import os
import sys
import time


def child(rfd, wfd):
    while True:
        b = os.read(rfd, 1)
        if not b:
            os._exit(0)
        os.write(wfd, b)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=4.0)
    ap.add_argument("--settle", type=float, default=0.5)
    ap.add_argument("--spin", type=int, default=8000, help="loop iterations per unit (CPU between blocks)")
    ap.add_argument("--hold", action="store_true", help="after the result, wait for stdin to close")
    ap.add_argument("--wait-go", action="store_true", help="after 'ready', wait for a line on stdin before settling")
    args = ap.parse_args()
    from_parent, to_child = os.pipe()
    from_child, to_parent = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(to_child)
        os.close(from_child)
        child(from_parent, to_parent)
    os.close(from_parent)
    os.close(to_parent)
    print("ready", os.getpid(), flush=True)
    if args.wait_go:
        sys.stdin.readline()
    time.sleep(args.settle)
    print("start %.6f" % time.monotonic(), flush=True)
    spin = args.spin
    units = 0
    c0 = time.process_time()
    t0 = time.monotonic()
    end = t0 + args.seconds
    while True:
        x = 0
        for i in range(spin):
            x += i
        os.write(to_child, b"x")
        os.read(from_child, 1)
        units += 1
        if not units & 63 and time.monotonic() >= end:
            break
    elapsed = time.monotonic() - t0
    cpu = time.process_time() - c0
    print("result units=%d elapsed=%.6f cpu=%.6f throughput=%.3f blocks_per_s=%.0f"
          % (units, elapsed, cpu, units / elapsed, 2 * units / elapsed), flush=True)
    if args.hold:
        sys.stdin.read()
    os.close(to_child)
    os.waitpid(pid, 0)


if __name__ == "__main__":
    main()
