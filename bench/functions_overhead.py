#!/usr/bin/python3
"""Overhead of --functions on a call-heavy workload, probes on vs off, and of the sampled fallback.

  1. tests/sdt/fake_python (stands in for a CPython with probes): ns per call of a function that
     does not match, untraced vs traced with a narrow pattern (semaphores set: every call traps
     twice) vs traced with a pattern matching that very function (an event per call).
  2. Debian unstable's python3.15 (probes restored), in the sid root: ns per call of a tiny
     Python function, untraced / --functions NARROW (USDT) / --functions-source=sample.
  3. /usr/bin/python3 (3.11: partial probes, so the fallback) and a pyenv 3.12 (no probes):
     untraced vs --functions (sampled on- and off-CPU stacks).
Each figure is the median of --runs runs. Run as root after `make`: bench/functions_overhead.sh
"""
import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
TOOL = os.environ.get("PYTRACE_BPF") or os.path.join(REPO, "build", "pytrace-bpf")
SDT = os.path.join(REPO, "tests", "sdt")

PY_WORK = r'''
import os, sys, time
N = int(os.environ.get("PT_N", "2000000"))
def tiny(i):
    return i + 1
def rare():
    return 0
print("ready", os.getpid(), flush=True)
go = os.environ["PT_GO"]
while not os.path.exists(go):
    time.sleep(0.01)
rare()
t = time.perf_counter_ns()
for i in range(N):
    tiny(i)
dt = time.perf_counter_ns() - t
rare()
print("done %.1f" % (dt / N), flush=True)
'''


def build(tmp):
    fake, harness = os.path.join(tmp, "fake_python"), os.path.join(tmp, "sdt_harness")
    libs = subprocess.run(["pkg-config", "--libs", "libbpf"], capture_output=True, text=True).stdout.split() or ["-lbpf"]
    subprocess.run(["cc", "-O2", "-o", fake, os.path.join(SDT, "fake_python.c")], check=True)
    subprocess.run(["cc", "-O2", "-D_GNU_SOURCE", "-I" + os.path.join(REPO, "build"), "-I" + os.path.join(REPO, "include"),
                    "-I" + os.path.join(REPO, "src"), "-o", harness, os.path.join(SDT, "sdt_harness.c"),
                    os.path.join(REPO, "build", "libpytrace.a")] + libs + ["-lelf", "-lz", "-lpg_query", "-lm"],
                   check=True)
    return fake, harness


def wait_line(stream, want, timeout=30):
    """Read lines from stream until one starts with want (in a thread, so a timeout works)."""
    ev, seen = threading.Event(), []

    def rd():
        for line in stream:
            seen.append(line)
            if line.startswith(want):
                ev.set()
                break
        ev.set()
    threading.Thread(target=rd, daemon=True).start()
    ev.wait(timeout)
    return seen


def run_traced(argv, env, go_host, tracer):
    """Start argv (prints 'ready PID', waits for go_host, prints 'done NS_PER_CALL ...'), optionally
    attach tracer(pid) -> Popen, then let it go. Returns ns per call."""
    if os.path.exists(go_host):
        os.unlink(go_host)
    w = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True, env=dict(os.environ, **env))
    pid = int(w.stdout.readline().split()[1])
    t = None
    if tracer:
        t, ready = tracer(pid)
        wait_line(t.stderr, ready)
        time.sleep(0.3)
    open(go_host, "w").close()
    line = w.stdout.readline().split()
    w.wait()
    if t:
        try:
            t.wait(timeout=30)
        except subprocess.TimeoutExpired:
            t.kill()
            t.wait()
    os.unlink(go_host)
    return float(line[1])


def median(fn, runs):
    vals = [fn() for _ in range(runs)]
    return statistics.median(vals), vals


def tool(args):
    def start(pid):
        return subprocess.Popen([TOOL, "--pid", str(pid), "--no-sql", "--no-http", "--duration", "120",
                                 "--json", "/dev/null"] + args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                text=True), "Tracing pid"
    return start


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--calls", type=int, default=200000, help="C stand-in calls")
    ap.add_argument("--py-calls", type=int, default=2000000, help="Python calls")
    a = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="pytrace-fnbench-")
    fake, harness = build(tmp)
    go = os.path.join(tmp, "go")
    rows = []

    def fake_run(patterns):
        def tracer(pid):
            return subprocess.Popen([harness, str(pid), "120"] + patterns, stdout=subprocess.DEVNULL,
                                    stderr=subprocess.PIPE, text=True), "attached"
        return lambda: run_traced([fake, go, "0", "0", str(a.calls)], {}, go, tracer if patterns else None)

    for label, pats in (("untraced", []), ("--functions app.work (narrow: no match, 2 traps/call)", ["app.work"]),
                        ("--functions app.noise (every call matched: 2 traps + 1 event)", ["app.noise"])):
        m, vals = median(fake_run(pats), a.runs)
        rows.append(("C stand-in (sys/sdt.h)", label, m, vals))
        print("%-28s %-62s %9.1f ns/call  %s" % (rows[-1][0], label, m, vals), flush=True)

    sid = subprocess.run([os.path.join(REPO, "scripts", "sid-root.sh")], capture_output=True, text=True)
    interps = []
    if sid.returncode == 0:
        root = sid.stdout.strip().splitlines()[-1]
        interps.append(("Debian python3.15 (probes)", ["chroot", root, "/usr/bin/python3.15"], root,
                        [("untraced", None), ("--functions rare (USDT, narrow)", ["--functions", "bench.rare"]),
                         ("--functions rare --functions-source=sample", ["--functions", "bench.rare",
                                                                         "--functions-source", "sample"])]))
    interps.append(("Debian python3.11 (partial)", ["/usr/bin/python3"], None,
                    [("untraced", None), ("--functions rare (sampled fallback)", ["--functions", "bench.rare"])]))
    pyenv = os.path.expanduser("~/.pyenv/versions")
    for v in sorted(os.listdir(pyenv)) if os.path.isdir(pyenv) else []:
        if v.startswith("3.12"):
            interps.append(("pyenv %s (no probes)" % v, [os.path.join(pyenv, v, "bin", "python3.12")], None,
                            [("untraced", None), ("--functions rare (sampled fallback)", ["--functions", "bench.rare"])]))
    for name, argv, root, modes in interps:
        if root:
            os.makedirs(os.path.join(root, "tmp"), exist_ok=True)
            script_host = os.path.join(root, "tmp", "bench.py")
            script, go_in, go_host = "/tmp/bench.py", "/tmp/pytrace-bench-go", os.path.join(root, "tmp/pytrace-bench-go")
        else:
            script_host = script = os.path.join(tmp, "bench.py")
            go_in = go_host = go
        with open(script_host, "w") as f:
            f.write(PY_WORK)
        for label, args in modes:
            fn = lambda args=args: run_traced(argv + [script], {"PT_GO": go_in, "PT_N": str(a.py_calls)}, go_host,
                                              tool(args) if args else None)
            m, vals = median(fn, a.runs)
            rows.append((name, label, m, vals))
            print("%-28s %-62s %9.1f ns/call  %s" % (name, label, m, vals), flush=True)
    shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
