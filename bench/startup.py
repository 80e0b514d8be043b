#!/usr/bin/python3
"""The tool's start and exit, build against build: each build traces a sleeping python3 in
rotation (--rounds times), and the time from its exec to its "Tracing pid ..." line (its BPF
programs verified and attached) and from its SIGINT to its exit (the programs detached, the
outputs written) is printed per build, median and all rounds.

Usage: sudo bench/startup.py [--rounds 6] [--python /usr/bin/python3] BUILD [BUILD...]
   e.g. sudo bench/startup.py /tmp/pytrace-bpf-old build/pytrace-bpf
   (copy a build elsewhere first: a rebuild during the run would change what is measured)
"""
import argparse
import signal
import statistics
import subprocess
import sys
import time


def one(build, pid):
    """(seconds to the "Tracing" line, seconds from SIGINT to exit), or None if it never traced."""
    t0 = time.monotonic()
    p = subprocess.Popen([build, "-p", str(pid), "--json", "/dev/null"], stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE, text=True)
    started = None
    for line in p.stderr:
        if line.startswith("Tracing"):
            started = time.monotonic() - t0
            break
    t1 = time.monotonic()
    p.send_signal(signal.SIGINT)
    p.communicate()
    return None if started is None else (started, time.monotonic() - t1)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--python", default="/usr/bin/python3")
    ap.add_argument("builds", nargs="+")
    a = ap.parse_args()
    target = subprocess.Popen([a.python, "-c", "import time; time.sleep(3600)"])
    try:
        time.sleep(0.5)
        res = {b: [] for b in a.builds}
        for _ in range(a.rounds):
            for b in a.builds:
                r = one(b, target.pid)
                if r is None:
                    sys.exit("%s did not start tracing" % b)
                res[b].append(r)
    finally:
        target.kill()
    print("| build | to \"Tracing\", median (all) | SIGINT to exit, median (all) |")
    print("|---|---|---|")
    for b, v in res.items():
        s, e = [x[0] for x in v], [x[1] for x in v]
        print("| %s | %.3f s (%s) | %.3f s (%s) |" % (b, statistics.median(s), " ".join("%.3f" % x for x in s),
                                                    statistics.median(e), " ".join("%.3f" % x for x in e)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
