#!/usr/bin/python3
"""SQL tracing overhead: a tight loop of `SELECT 1` over a Unix socket, untraced and traced
(libpq uprobes on, CPU sampling off) in alternating runs of the same script.

Reports, per driver:
  - added latency per query: 1/qps(traced) - 1/qps(untraced), median over rounds, and spread;
    and the same from each run's fastest 2000 queries in a row ("best chunk"), which the host's
    noise disturbs least (noise only ever slows a run down; on a shared VM whose speed moves by
    20% from second to second, the whole-window figure can swing by more than the cost measured);
  - throughput ratio traced/untraced;
  - the collector's CPU, as % of one core per 10k queries/s;
  - BPF time per libpq call (kernel.bpf_stats_enabled);
  - events lost at the load reached (two clients), which must be 0;
  - with --floor, a third configuration in the same rotation: bpftrace with empty bodies on the
    probes the tool ends up using for that driver (psycopg2: entry and return of PQexec; psycopg 3:
    entry of PQsendQueryParams, entry and return of PQgetResult). What that adds is the cost of the
    traps alone: the floor under any tool that times each statement with uprobes.

Usage: sudo bench/sql_overhead.py [--rounds N] [--window SEC] [--drivers psycopg2,psycopg,asyncpg]
       [--tool-args '--no-http'] [--cpu N] [--floor] [--json FILE]
The cluster and the client run on CPU N (default 0), the tracer on the others (see PIN below).
The tracer runs with its defaults (SQL and HTTP following on, CPU sampling at 99 Hz);
--tool-args '--no-http' isolates the SQL capture, --tool-args '--sql-source wire' reads the
statements from the wire protocol instead of libpq's uprobes (asyncpg is seen only that way).
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
TOOL = os.environ.get("PYTRACE_BPF") or os.path.join(REPO, "build", "pytrace-bpf")
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
    """(queries per second over the window, seconds per query of the fastest 2000 in a row)"""
    out = p.stdout.readline()
    p.wait()
    r = json.loads(out)
    return r["queries"] / r["seconds"], r["best_s_per_query"]


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


LIBPQ = "/usr/lib/x86_64-linux-gnu/libpq.so.5"
FLOOR_PROBES = {"psycopg2": ["uprobe:%s:PQexec", "uretprobe:%s:PQexec"],
                "psycopg": ["uprobe:%s:PQsendQueryParams", "uprobe:%s:PQgetResult", "uretprobe:%s:PQgetResult"]}


def bpftrace_floor(driver):
    """bpftrace with empty bodies on the driver's probes, attached once it says so."""
    lib = os.path.realpath(LIBPQ)
    script = " ".join(p % lib + " {}" for p in FLOOR_PROBES[driver])
    out = tempfile.TemporaryFile(mode="w+")
    bt = subprocess.Popen(PIN["tool"] + ["bpftrace", "-e", script], stdout=out, stderr=subprocess.STDOUT, text=True)
    for _ in range(300):
        out.seek(0)
        if "Attaching" in out.read() or bt.poll() is not None:
            break
        time.sleep(0.1)
    if bt.poll() is not None:
        out.seek(0)
        raise RuntimeError("bpftrace failed: " + out.read())
    time.sleep(0.3)
    return bt


def run(driver, window, env, traced, nprocs=1):
    """traced: False (untraced), True (the tool), or "floor" (bpftrace, empty probes)."""
    if traced == "floor" and driver not in FLOOR_PROBES:
        raise SystemExit("--floor: no libpq probes for %s (it does not use libpq)" % driver)
    if traced == "floor":
        floor = bpftrace_floor(driver)
        try:
            qps, best = finish_clients(start_clients(driver, window, env, nprocs)[0])
            return {"qps": qps, "best": best}
        finally:
            floor.send_signal(2)
            try:
                floor.wait(timeout=10)
            except subprocess.TimeoutExpired:	# bpftrace 0.17 at times misses SIGINT; its probes go with it
                floor.kill()
                floor.wait()
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
    qps, best = finish_clients(proc)
    res = {"qps": qps, "best": best}
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
    ap.add_argument("--floor", action="store_true", help="also bpftrace with empty probes (the traps alone)")
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
            ratios, added_us, cpu_per_10k, lost, calls_ns, floor_us = [], [], [], [], [], []
            best_us, floor_best_us = [], []
            for r in range(args.rounds):
                configs = [False, True] + (["floor"] if args.floor else [])
                order = configs[r % len(configs):] + configs[:r % len(configs)]
                got = {}
                for traced in order:
                    got[traced] = run(driver, args.window, env, traced)
                    if traced is True and got[traced]["bpf_ns_per_hit"]:
                        calls_ns.append(got[traced]["bpf_ns_per_hit"])
                u, t = got[False], got[True]
                ratios.append(t["qps"] / u["qps"])
                added_us.append((1 / t["qps"] - 1 / u["qps"]) * 1e6)
                cpu = t["collector_cpu_s"] / t["collector_wall_s"]
                cpu_per_10k.append(100 * cpu * 10000 / t["qps"])
                lost.append(t["lost"])
                best_us.append((t["best"] - u["best"]) * 1e6)
                fl = ""
                if args.floor:
                    floor_us.append((1 / got["floor"]["qps"] - 1 / u["qps"]) * 1e6)
                    floor_best_us.append((got["floor"]["best"] - u["best"]) * 1e6)
                    fl = ", traps alone %6.0f q/s (+%.2f us/query, best chunk +%.2f)" % (
                        got["floor"]["qps"], floor_us[-1], floor_best_us[-1])
                print("  %-9s round %d: untraced %6.0f q/s, traced %6.0f q/s (ratio %.3f, +%.2f us/query, "
                      "best chunk +%.2f)%s, collector %.2f%% of a core, lost %d" %
                      (driver, r + 1, u["qps"], t["qps"], ratios[-1], added_us[-1], best_us[-1], fl, 100 * cpu,
                       t["lost"]), flush=True)
            # The load test: two clients at once, traced; no event may be lost.
            load = run(driver, args.window, env, True, nprocs=2)
            results[driver] = {
                "rounds": args.rounds,
                "ratio_median": statistics.median(ratios),
                "ratio_min": min(ratios), "ratio_max": max(ratios),
                "ratio_iqr": [pct(ratios, 0.25), pct(ratios, 0.75)],
                "added_us_median": statistics.median(added_us),
                "added_us_min": min(added_us), "added_us_max": max(added_us),
                "best_chunk_added_us_median": statistics.median(best_us),
                "best_chunk_added_us_min": min(best_us), "best_chunk_added_us_max": max(best_us),
                "collector_cpu_pct_per_10k_qps_median": statistics.median(cpu_per_10k),
                "bpf_ns_per_probe_hit_median": statistics.median(calls_ns) if calls_ns else None,
                "lost_total": sum(lost),
                "load_qps": load["qps"], "load_lost": load["lost"], "load_statements": load["statements"],
            }
            if floor_us:
                results[driver].update({"floor_added_us_median": statistics.median(floor_us),
                                        "floor_added_us_min": min(floor_us), "floor_added_us_max": max(floor_us),
                                        "floor_best_chunk_added_us_median": statistics.median(floor_best_us),
                                        "floor_best_chunk_added_us_min": min(floor_best_us),
                                        "floor_best_chunk_added_us_max": max(floor_best_us)})
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
        print("%-9s best 2000-query chunk: +%.2f us/query (%.2f-%.2f)" %
              ("", r["best_chunk_added_us_median"], r["best_chunk_added_us_min"], r["best_chunk_added_us_max"]))
        if "floor_added_us_median" in r:
            print("%-9s traps alone (bpftrace, empty probes): +%.2f us/query (%.2f-%.2f); best chunk +%.2f (%.2f-%.2f)" %
                  ("", r["floor_added_us_median"], r["floor_added_us_min"], r["floor_added_us_max"],
                   r["floor_best_chunk_added_us_median"], r["floor_best_chunk_added_us_min"],
                   r["floor_best_chunk_added_us_max"]))
        print("%-9s load: %.0f q/s traced, %d statements recorded, %d events lost" %
              ("", r["load_qps"], r["load_statements"], r["load_lost"]))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"date": time.strftime("%Y-%m-%d"), "kernel": os.uname().release, "results": results}, f,
                      indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
