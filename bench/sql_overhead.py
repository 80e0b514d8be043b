#!/usr/bin/python3
"""SQL tracing overhead: a tight loop of `SELECT 1` over a Unix socket, untraced and traced
(libpq uprobes on, CPU sampling off) in alternating runs of the same script.

Reports, per driver:
  - added latency per query: 1/qps(traced) - 1/qps(untraced), median over rounds, and spread;
  - throughput ratio traced/untraced;
  - the collector's CPU, as % of one core per 10k queries/s;
  - BPF time per libpq call (kernel.bpf_stats_enabled);
  - events lost at the load reached (two clients), which must be 0.

Usage: sudo bench/sql_overhead.py [--rounds N] [--window SEC] [--drivers psycopg2,psycopg]
       [--tool-args '--no-http'] [--cpu N] [--json FILE]
The cluster and the client run on CPU N (default 0), the tracer on the others (see PIN below).
The tracer runs with its defaults (SQL and HTTP following on; CPU sampling off, as only --json
is asked for); --tool-args '--no-http' isolates the SQL capture.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
TOOL = os.path.join(REPO, "build", "pytrace-bpf")
PY = "/usr/bin/python3"
TOOL_ARGS = []
# CPU placement: on a 2-CPU VM, a client and its server backend on different CPUs wake each other
# with cross-CPU interrupts, and whether the scheduler puts them together or apart changes the
# untraced rate 4x from run to run. --cpu N pins the cluster and the client to CPU N and the
# tracer to the other CPUs, so the figure is the tracer's cost in the client's thread.
PIN = {"db": [], "tool": []}


def pg_start(d):
    subprocess.run(PIN["db"] + [os.path.join(REPO, "scripts", "pg-cluster.sh"), "start", d], check=True,
                   stdout=subprocess.DEVNULL)
    out = subprocess.run([os.path.join(REPO, "scripts", "pg-cluster.sh"), "env", d], check=True,
                         capture_output=True, text=True).stdout
    env = {}
    for word in out.replace("export ", " ").split():
        if "=" in word:
            k, v = word.split("=", 1)
            env[k] = v.strip("'\"")
    return env


WARMUP = 1.5	# seconds of the loop before the timed window (see sql_work.py)


def start_clients(driver, window, env, nprocs):
    p = subprocess.Popen(PIN["db"] + [PY, os.path.join(HERE, "sql_work.py"), driver, str(window), str(nprocs), str(WARMUP)],
                         stdout=subprocess.PIPE, text=True, env=env)
    line = p.stdout.readline().split()
    if not line or line[0] != "ready":
        raise RuntimeError("client did not start")
    return p, int(line[1])


def finish_clients(p):
    out = p.stdout.readline()
    p.wait()
    r = json.loads(out)
    return r["queries"] / r["seconds"]


def bpf_stats():
    """run_time_ns and run_cnt of the libpq programs, summed."""
    out = subprocess.run(["bpftool", "prog", "show", "-j"], capture_output=True, text=True)
    ns = cnt = 0
    try:
        for p in json.loads(out.stdout):
            if p.get("name", "").startswith("pq_"):
                ns += p.get("run_time_ns", 0)
                cnt += p.get("run_cnt", 0)
    except ValueError:
        pass
    return ns, cnt


def run(driver, window, env, traced, nprocs=1):
    proc, pid = start_clients(driver, window, env, nprocs)
    tracer = None
    if traced:
        jpath = tempfile.mktemp(suffix=".json")
        # SQL only (no output that needs CPU samples); it stops when the clients are done.
        tracer = subprocess.Popen(PIN["tool"] + [TOOL, "--pid", str(pid), "--json", jpath] + TOOL_ARGS,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        t0 = time.time()
        # BPF's own time per probe hit, sampled mid-window while the programs are loaded.
        time.sleep(0.8 + WARMUP + 0.3)
        ns0, c0 = bpf_stats()
        time.sleep(max(window - 0.6, 0.2))
        ns1, c1 = bpf_stats()
    qps = finish_clients(proc)
    res = {"qps": qps}
    if tracer:
        _, status, ru = os.wait4(tracer.pid, 0)
        tracer.returncode = status
        res["collector_cpu_s"] = ru.ru_utime + ru.ru_stime
        res["collector_wall_s"] = time.time() - t0
        with open(jpath) as f:
            doc = json.load(f)
        os.unlink(jpath)
        res["statements"] = doc["sql"]["statements"]
        res["lost"] = doc["sql_capture"]["lost_events"]
        res["bpf_ns_per_hit"] = (ns1 - ns0) / (c1 - c0) if c1 > c0 else None
    return res


def pct(xs, q):
    xs = sorted(xs)
    k = (len(xs) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--window", type=float, default=3.0)
    ap.add_argument("--drivers", default="psycopg2,psycopg")
    ap.add_argument("--json")
    ap.add_argument("--cpu", type=int, default=0, help="CPU for the cluster and the client (-1: no pinning)")
    ap.add_argument("--tool-args", default="", help="extra tracer options, e.g. '--no-http'")
    args = ap.parse_args()
    TOOL_ARGS.extend(args.tool_args.split())
    if args.cpu >= 0 and os.cpu_count() > 1:
        others = ",".join(str(c) for c in range(os.cpu_count()) if c != args.cpu)
        PIN["db"] = ["taskset", "-c", str(args.cpu)]
        PIN["tool"] = ["taskset", "-c", others]
    if os.geteuid() != 0:
        sys.exit("run as root: the tracer loads BPF programs")
    pgdir = tempfile.mkdtemp(prefix="pytrace-bench-pg-")
    os.chmod(pgdir, 0o755)
    env = dict(os.environ)
    env.update(pg_start(pgdir))
    old_stats = open("/proc/sys/kernel/bpf_stats_enabled").read().strip()
    results = {}
    try:
        open("/proc/sys/kernel/bpf_stats_enabled", "w").write("1")
        for driver in args.drivers.split(","):
            ratios, added_us, cpu_per_10k, lost, calls_ns = [], [], [], [], []
            for r in range(args.rounds):
                order = [False, True] if r % 2 == 0 else [True, False]
                got = {}
                for traced in order:
                    got[traced] = run(driver, args.window, env, traced)
                    if traced and got[traced]["bpf_ns_per_hit"]:
                        calls_ns.append(got[traced]["bpf_ns_per_hit"])
                u, t = got[False], got[True]
                ratios.append(t["qps"] / u["qps"])
                added_us.append((1 / t["qps"] - 1 / u["qps"]) * 1e6)
                cpu = t["collector_cpu_s"] / t["collector_wall_s"]
                cpu_per_10k.append(100 * cpu * 10000 / t["qps"])
                lost.append(t["lost"])
                print("  %-9s round %d: untraced %6.0f q/s, traced %6.0f q/s (ratio %.3f, +%.2f us/query), "
                      "collector %.2f%% of a core, lost %d" %
                      (driver, r + 1, u["qps"], t["qps"], ratios[-1], added_us[-1], 100 * cpu, t["lost"]),
                      flush=True)
            # The load test: two clients at once, traced; no event may be lost.
            load = run(driver, args.window, env, True, nprocs=2)
            results[driver] = {
                "rounds": args.rounds,
                "ratio_median": statistics.median(ratios),
                "ratio_min": min(ratios), "ratio_max": max(ratios),
                "ratio_iqr": [pct(ratios, 0.25), pct(ratios, 0.75)],
                "added_us_median": statistics.median(added_us),
                "added_us_min": min(added_us), "added_us_max": max(added_us),
                "collector_cpu_pct_per_10k_qps_median": statistics.median(cpu_per_10k),
                "bpf_ns_per_probe_hit_median": statistics.median(calls_ns) if calls_ns else None,
                "lost_total": sum(lost),
                "load_qps": load["qps"], "load_lost": load["lost"], "load_statements": load["statements"],
            }
    finally:
        open("/proc/sys/kernel/bpf_stats_enabled", "w").write(old_stats)
        subprocess.run([os.path.join(REPO, "scripts", "pg-cluster.sh"), "stop", pgdir],
                       stdout=subprocess.DEVNULL)
    print()
    print("%-9s %8s %17s %14s %22s %14s %10s" % ("driver", "ratio", "spread (min-max)", "added us/q",
                                                  "collector %/10k q/s", "BPF ns/probe", "lost"))
    for d, r in results.items():
        print("%-9s %8.3f %8.3f-%-8.3f %6.2f (%.2f-%.2f) %14.2f %14s %10d" % (
            d, r["ratio_median"], r["ratio_min"], r["ratio_max"], r["added_us_median"], r["added_us_min"],
            r["added_us_max"], r["collector_cpu_pct_per_10k_qps_median"],
            "%.0f" % r["bpf_ns_per_probe_hit_median"] if r["bpf_ns_per_probe_hit_median"] else "-",
            r["lost_total"]))
        print("%-9s load: %.0f q/s traced, %d statements recorded, %d events lost" %
              ("", r["load_qps"], r["load_statements"], r["load_lost"]))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"date": time.strftime("%Y-%m-%d"), "kernel": os.uname().release, "results": results}, f,
                      indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
