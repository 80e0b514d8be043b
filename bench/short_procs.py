#!/usr/bin/python3
"""Short-lived Python processes under the host collector, build against build: each build runs
host-wide (`--prometheus 127.0.0.1:0`, its defaults) while batches of short python3 processes
(a recursive fib of a few hundredths of a second each) start and end, in rotation with the
others (--rounds times); then a one-shot run of the same program under each build
(`-- python3 ...`). Printed per build, median and range: the collector's CPU per process
started (user and system time of the collector, /proc/PID/stat: every thread of it), and the
share of the one-shot runs' samples with a frame left unnamed ([unknown]).

Usage: sudo bench/short_procs.py [--rounds 4] [--seconds 8] [--batch 10] BUILD [BUILD...]
   e.g. sudo bench/short_procs.py /tmp/pytrace-bpf-old build/pytrace-bpf
   (copy a build elsewhere first: a rebuild during the run would change what is measured)
"""
import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time

FIB = """
import sys
def fib(n):
    return n if n < 2 else fib(n - 1) + fib(n - 2)
fib(int(sys.argv[1]))
"""


def cpu_s(pid):
    st = open("/proc/%d/stat" % pid).read().rsplit(")", 1)[1].split()
    return (int(st[11]) + int(st[12])) / os.sysconf("SC_CLK_TCK")


def churn(build, script, seconds, batch):
    """(collector CPU seconds per process started, processes), or None if it never served."""
    p = subprocess.Popen([build, "--prometheus", "127.0.0.1:0"], stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE, text=True)
    for line in p.stderr:
        if line.startswith("Serving metrics"):
            break
    else:
        p.wait()
        return None
    time.sleep(2)		# the start's own work (the /proc scan) is over
    c0, n, end = cpu_s(p.pid), 0, time.monotonic() + seconds
    while time.monotonic() < end:
        kids = [subprocess.Popen(["/usr/bin/python3", script, "25"]) for _ in range(batch)]
        for k in kids:
            k.wait()
        n += batch
    c1 = cpu_s(p.pid)
    p.terminate()
    p.communicate()
    return (c1 - c0) / n, n


def unnamed(build, script, tmp):
    """(samples with an [unknown] frame, samples) of one `-- python3 script` run."""
    folded = os.path.join(tmp, "short.folded")
    if os.path.exists(folded):
        os.unlink(folded)
    subprocess.run([build, "--collapsed", folded, "--", "/usr/bin/python3", script, "26"],
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    u = t = 0
    for line in open(folded) if os.path.exists(folded) else []:
        frames, _, count = line.rstrip("\n").rpartition(" ")
        t += int(count)
        u += int(count) if "[unknown]" in frames.split(";") else 0
    return u, t


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--seconds", type=float, default=8)
    ap.add_argument("--batch", type=int, default=10, help="processes started at once")
    ap.add_argument("builds", nargs="+")
    a = ap.parse_args()
    if os.geteuid():
        sys.exit("run as root: the tool loads BPF programs")
    tmp = tempfile.mkdtemp(prefix="short-procs-")
    script = os.path.join(tmp, "fib.py")
    with open(script, "w") as f:
        f.write(FIB)
    per, procs, unk = {b: [] for b in a.builds}, {b: 0 for b in a.builds}, {b: [0, 0] for b in a.builds}
    for r in range(a.rounds):
        for b in (a.builds if r % 2 == 0 else a.builds[::-1]):
            got = churn(b, script, a.seconds, a.batch)
            if got is None:
                print("%s: the collector did not start" % b)
                continue
            per[b].append(got[0] * 1e6)
            procs[b] += got[1]
            for _ in range(3):
                u, t = unnamed(b, script, tmp)
                unk[b][0] += u
                unk[b][1] += t
            print("round %d %s: %.0f us of collector CPU per process (%d processes)" % (r + 1, b, got[0] * 1e6, got[1]),
                  flush=True)
    print("\nbuild: collector CPU per short process started, median (range); one-shot runs' samples with an "
          "unnamed frame")
    for b in a.builds:
        v = per[b]
        if v:
            print("%s: %.0f us (%.0f-%.0f) over %d processes; %d of %d samples (%.0f%%)" % (
                b, statistics.median(v), min(v), max(v), procs[b], unk[b][0], unk[b][1],
                100.0 * unk[b][0] / unk[b][1] if unk[b][1] else 0))
    subprocess.run(["rm", "-rf", tmp])


if __name__ == "__main__":
    main()
