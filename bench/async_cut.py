#!/usr/bin/python3
"""What a statement sent from an asyncio task costs, with the walk cut at the route frame: an
asyncio HTTP server whose requests each run in a task of their own, DEPTH coroutine frames of
"middleware" above a Starlette-shaped Route.handle, then an N+1 (13 statements a request, over
asyncio streams speaking PostgreSQL's protocol: tests/integration/workloads/web_async_stdlib.py,
standard library only, so it runs on every interpreter, Debian unstable's 3.14 and 3.15 included).

At each statement's write the tool walks the sender's Python stack for its call site and its
task. Where the task is read directly (3.11-3.13: asyncio's running tasks, a dict; 3.14+: the
thread state, where _asyncio's .AsyncioDebug section says), the walk stops at Route.handle
instead of reading every coroutine frame of the chain, each a user-memory read of its own. This
benchmark measures that walk as users get it: the tool's defaults, unpinned, side by side with
untraced runs and, with --compare, another build (one without the cut on that version) in the
same rotation.

Reports per configuration (medians over rounds, with the range): throughput, CPU per request of
the server and PostgreSQL (one cgroup v2) and of the tracer (another), and the BPF run time per
statement of the tracer's programs (BPF_ENABLE_STATS for the traced windows only: two clock reads
per program run, so these figures read high by about that, alike for both builds; --no-bpf-stats
leaves them off, as users run, with no BPF figures).

Usage: sudo bench/async_cut.py [--python sid-python3.14] [--depth 12] [--rounds 5] [--seconds 5]
       [--compare PATH] [--no-bpf-stats]
--python: a label of tests/integration/harness.py's interpreters (debian-python3.11,
pyenv-3.12.1, sid-python3.14, ...); the default is Debian unstable's 3.14.
"""
import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
TOOL = os.environ.get("PYTRACE_BPF") or os.path.join(REPO, "build", "pytrace-bpf")
PG_CLUSTER = os.path.join(REPO, "scripts", "pg-cluster.sh")
PSQL = "/usr/lib/postgresql/15/bin/psql"
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(REPO, "tests", "integration"))
from benchlib import Cgroup, bpf_ns, enable_bpf_stats, log  # noqa: E402
import harness  # noqa: E402
from test_async import K, SCHEMA  # noqa: E402  (the tests' tables: K owners, K items)

STATEMENTS = K + 1	# per /n1/ request


def wrk(url, seconds, conns):
    out = subprocess.run(["wrk", "-t1", "-c%d" % conns, "-d%ds" % seconds, url], capture_output=True, text=True,
                         timeout=seconds + 60)
    m = re.search(r"Requests/sec:\s+([\d.]+)", out.stdout)
    if not m or "Non-2xx" in out.stdout:
        raise RuntimeError("wrk failed: " + out.stdout + out.stderr)
    return float(m.group(1))


def attach(tool, pid, cg, tmp):
    """The tool with its defaults on pid, in cgroup cg, once it says it traces."""
    errf = open(os.path.join(tmp, "tool.err"), "w+")
    p = subprocess.Popen([tool, "-p", str(pid), "--json", os.path.join(tmp, "out.json")], stdout=subprocess.DEVNULL,
                         stderr=errf, preexec_fn=cg.enter)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        errf.seek(0)
        if "Tracing" in errf.read():
            return p
        if p.poll() is not None:
            errf.seek(0)
            raise RuntimeError("the tool exited: " + errf.read()[-800:])
        time.sleep(0.1)
    p.kill()
    raise RuntimeError("the tool did not start tracing within 60 s")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--python", default="sid-python3.14")
    ap.add_argument("--depth", type=int, default=12, help="middleware frames above Route.handle (12)")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--seconds", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--connections", type=int, default=8)
    ap.add_argument("--compare", help="another build of the tool, in the same rotation")
    ap.add_argument("--no-bpf-stats", action="store_true",
                    help="BPF statistics off, as users run (no BPF figures then)")
    a = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("run as root")
    for exe in [TOOL, "/usr/bin/wrk", PSQL] + ([a.compare] if a.compare else []):
        if not os.path.exists(exe):
            sys.exit("missing " + exe)
    its = [it for it in harness.find_interpreters() if it.label == a.python]
    if not its:
        sys.exit("--python %s: no such interpreter (%s)" % (a.python, ", ".join(
            it.label for it in harness.find_interpreters())))
    it = its[0]
    configs = ["untraced", "pytrace-bpf"] + (["pytrace-bpf-compare"] if a.compare else [])
    tools = {"pytrace-bpf": TOOL, "pytrace-bpf-compare": a.compare}

    svc, tcg = Cgroup("pytrace-bench-async-service"), Cgroup("pytrace-bench-async-tracer")
    if not svc.path or not tcg.path:
        sys.exit("cgroup v2 is needed for the CPU-per-request figures")
    tmp = tempfile.mkdtemp(prefix="pytrace-bench-async-")
    os.chmod(tmp, 0o755)
    pgdir, pgport = os.path.join(tmp, "pg"), harness.free_port(54520, 54560)
    pgenv = dict(os.environ, PYTRACE_PG_PORT=str(pgport), PYTRACE_PG_TCP="1")
    server = None
    rows = {c: [] for c in configs}
    try:
        subprocess.run([PG_CLUSTER, "start", pgdir], env=pgenv, check=True, capture_output=True, timeout=120,
                       preexec_fn=svc.enter)
        env = dict(os.environ, PGHOST="127.0.0.1", PGPORT=str(pgport), PGDATABASE="pytrace", PGUSER="postgres")
        subprocess.run([PSQL, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-c", SCHEMA], env=env, check=True,
                       capture_output=True, cwd="/")
        port = harness.free_port(18700, 18800)
        script = it.workload("web_async_stdlib.py")
        server = subprocess.Popen(it.argv(script) + [str(port), str(K), str(a.depth)], env=env,
                                  stdout=subprocess.DEVNULL, stderr=open(os.path.join(tmp, "server.log"), "w"),
                                  preexec_fn=svc.enter, start_new_session=True)
        if not harness.wait_http(port, "/health/", 30):
            raise RuntimeError("the server did not start: " + open(os.path.join(tmp, "server.log")).read()[-800:])
        url = "http://127.0.0.1:%d/n1/1/" % port
        log("%s (%s), %d middleware frames, %d statements a request; configurations: %s" %
            (it.label, it.exe, a.depth, STATEMENTS, ", ".join(configs)))
        for r in range(a.rounds):
            order = configs[r % len(configs):] + configs[:r % len(configs)]	# rotate: no one always first
            for c in order:
                tool, stats_fd = None, -1
                if c != "untraced":
                    tool = attach(tools[c], server.pid, tcg, tmp)
                wrk(url, a.warmup, a.connections)
                if tool and not a.no_bpf_stats:
                    stats_fd = enable_bpf_stats()
                    b0 = bpf_ns(tool.pid)
                s0, t0 = svc.cpu_s(), tcg.cpu_s()
                rps = wrk(url, a.seconds, a.connections)
                s1, t1 = svc.cpu_s(), tcg.cpu_s()
                bpf = None
                if tool:
                    if stats_fd >= 0:
                        bpf = bpf_ns(tool.pid) - b0
                        os.close(stats_fd)
                    tool.terminate()
                    tool.wait(timeout=60)
                n = rps * a.seconds
                row = {"rps": rps, "svc_us": (s1 - s0) * 1e6 / n, "tool_us": (t1 - t0) * 1e6 / n if tool else 0.0,
                       "bpf_ns_stmt": bpf / (n * STATEMENTS) if bpf is not None and stats_fd >= 0 else None}
                rows[c].append(row)
                log("  round %d %-20s %7.1f req/s  service+PostgreSQL %7.0f us/req  tracer %6.1f us/req%s" %
                    (r + 1, c, rps, row["svc_us"], row["tool_us"],
                     "  BPF %5.0f ns/statement" % row["bpf_ns_stmt"] if row["bpf_ns_stmt"] is not None else ""))
    except Exception:
        log("server log: " + open(os.path.join(tmp, "server.log")).read()[-1500:])
        raise
    finally:
        if server:
            try:
                os.killpg(server.pid, 15)
                server.wait(timeout=15)
            except (OSError, subprocess.TimeoutExpired):
                os.killpg(server.pid, 9)
        subprocess.run([PG_CLUSTER, "stop", pgdir], env=pgenv, capture_output=True, timeout=120)
        shutil.rmtree(tmp, ignore_errors=True)
        for cg in (svc, tcg):
            cg.remove()

    def med(c, k):
        v = [x[k] for x in rows[c] if x[k] is not None]
        return (statistics.median(v), min(v), max(v)) if v else None

    base = med("untraced", "rps")[0]
    base_cpu = med("untraced", "svc_us")[0]
    print("\n%s, %d middleware frames above Route.handle, %d statements a request, %d rounds of %d s, wrk -t1 -c%d\n" %
          (it.label, a.depth, STATEMENTS, a.rounds, a.seconds, a.connections))
    print("| configuration | req/s (range) | throughput ratio | CPU per request: service + PostgreSQL | tracer | "
          "added to untraced | BPF per statement |")
    print("|---|---|---|---|---|---|---|")
    for c in configs:
        rps, cpu, tool, bpf = med(c, "rps"), med(c, "svc_us"), med(c, "tool_us"), med(c, "bpf_ns_stmt")
        added = cpu[0] + tool[0] - base_cpu
        print("| %s | %.1f (%.1f-%.1f) | %.1f%% | %.0f us (%.0f-%.0f) | %.1f us | %+.0f us (%+.2f%%) | %s |" %
              (c, rps[0], rps[1], rps[2], 100 * rps[0] / base, cpu[0], cpu[1], cpu[2], tool[0], added,
               100 * added / base_cpu, "%.0f ns (%.0f-%.0f)" % bpf if bpf else "-"))
    if a.compare:
        # paired by round: the same round's runs of the two builds, which the host's drift moves alike
        d = [(x["svc_us"] + x["tool_us"]) - (y["svc_us"] + y["tool_us"])
             for x, y in zip(rows["pytrace-bpf"], rows["pytrace-bpf-compare"])]
        b = [x["bpf_ns_stmt"] - y["bpf_ns_stmt"] for x, y in zip(rows["pytrace-bpf"], rows["pytrace-bpf-compare"])
             if x["bpf_ns_stmt"] is not None and y["bpf_ns_stmt"] is not None]
        print("\npytrace-bpf minus pytrace-bpf-compare, paired by round: CPU per request %+.0f us (%+.0f..%+.0f, "
              "lower in %d of %d rounds)%s" %
              (statistics.median(d), min(d), max(d), sum(1 for x in d if x < 0), len(d),
               "; BPF per statement %+.0f ns (%+.0f..%+.0f)" % (statistics.median(b), min(b), max(b)) if b else ""))


if __name__ == "__main__":
    main()
