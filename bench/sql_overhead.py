#!/usr/bin/python3
"""SQL tracing overhead: a tight loop of `SELECT 1` over a Unix socket, untraced and traced
in alternating runs of the same script, per driver (psycopg2, psycopg 3, asyncpg; pg8000 on demand).

Reports, per driver and configuration (medians over rounds, with the range):
  - added wall time per statement: 1/qps(traced) - 1/qps(untraced); and the same from each run's
    fastest 2000 statements in a row ("best chunk"), which the host's noise disturbs least;
  - added CPU per statement of everything under test: the clients and the cluster (one cgroup v2)
    and the tracer (another), from cpu.stat over the middle of the window, against the same
    round's untraced run: the figure noise moves least (other work slows a run down but does not
    add to its CPU time);
  - the tracer's own CPU per statement, and its BPF programs' run time per statement
    (kernel.bpf_stats_enabled; host-wide: what every other process's syscalls cost it included);
  - events lost, and a load run with two clients at once (0 lost expected);
  - with --compare PATH, another build of the tool in the same rotation (before/after a change);
  - with --floor, bpftrace with empty bodies on the libpq probes of the driver (psycopg2: entry and
    return of PQexec; psycopg 3: entry of PQsendQueryParams, entry and return of PQgetResult): the
    traps alone, the floor under any tool that times each statement with uprobes.

Usage: sudo bench/sql_overhead.py [--rounds N] [--window SEC] [--drivers psycopg2,psycopg,asyncpg,pg8000]
       [--tool-args '--no-http'] [--compare PATH] [--cpu N] [--floor] [--tls] [--https-beside]
       [--json FILE]
--https-beside: the clients' process also holds a TLS connection to another local server
(tests/integration/workloads/tls_sink.py), opened before the tracer starts and written on once by each client, as a
service that calls another over HTTPS does: its TLS records must not cost the PostgreSQL
connections anything (they are not PostgreSQL's).
--tls: over TCP with TLS (the cluster's ssl = on, sslmode=require), untraced and traced alike:
libpq's probes then serve psycopg2 and psycopg 3, OpenSSL's asyncpg (the wire cannot be read).
The tracer runs with its defaults (SQL from the wire, HTTP following, CPU sampling at 99 Hz), not
pinned: what users get. --cpu N pins the cluster and the client to CPU N and the tracer to the
others, for a micro-figure beside it; --tool-args '--sql-source libpq' reads the statements with
libpq's uprobes instead (asyncpg is seen only on the wire).
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
COMPARE = None	# --compare: another build of the tool, run as a fourth configuration
sys.path.insert(0, HERE)
from benchlib import Cgroup, bpf_prog_stats, pg_cluster_start, tool_prog_ids  # noqa: E402
# The cluster and the clients in one cgroup v2, the tracer in another: CPU per statement of
# everything under test, which noise moves far less than it moves throughput.
SVC_CG, TOOL_CG = None, None
# CPU placement: on a 2-CPU VM, a client and its server backend on different CPUs wake each other
# with cross-CPU interrupts, and whether the scheduler puts them together or apart changes the
# untraced rate 4x from run to run. --cpu N pins the cluster and the client to CPU N and the
# tracer to the other CPUs, so the figure is the tracer's cost in the client's thread.
PIN = {"db": [], "tool": []}


def pg_tls(d, env):
    """ssl = on, with a self-signed certificate: the clients then connect over TCP, encrypted."""
    data = os.path.join(d, "data")
    key, crt = os.path.join(data, "server.key"), os.path.join(data, "server.crt")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=localhost",
                    "-keyout", key, "-out", crt], capture_output=True, check=True)
    subprocess.run(["chown", "postgres", key, crt], check=True)
    os.chmod(key, 0o600)
    for sql in ("ALTER SYSTEM SET ssl = on", "SELECT pg_reload_conf()"):
        subprocess.run(["psql", "-qAtX", "-c", sql], env=env, check=True, stdout=subprocess.DEVNULL)
    time.sleep(0.5)
    env["PGHOST"] = "127.0.0.1"
    env["PGSSLMODE"] = "require"


def pg_start(d):
    return pg_cluster_start(d, PIN["db"], SVC_CG.enter)


WARMUP = 1.5	# seconds of the loop before the timed window (see sql_work.py)


def start_clients(driver, window, env, nprocs):
    p = subprocess.Popen(PIN["db"] + [PY, os.path.join(HERE, "sql_work.py"), driver, str(window), str(nprocs), str(WARMUP)],
                         stdout=subprocess.PIPE, text=True, env=env, preexec_fn=SVC_CG.enter)
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
LIBSSL = "/usr/lib/x86_64-linux-gnu/libssl.so.3"
FLOOR_PROBES = {"psycopg2": ["uprobe:%s:PQexec", "uretprobe:%s:PQexec"],
                "psycopg": ["uprobe:%s:PQsendQueryParams", "uprobe:%s:PQgetResult", "uretprobe:%s:PQgetResult"]}
# --tls: asyncpg's OpenSSL calls, probed at the exported functions (whose first instruction the
# kernel single-steps; the tool probes the internal functions they call: src/pgtls.c)
TLS_FLOOR_PROBES = {"asyncpg": ["uprobe:%s:SSL_write_ex", "uprobe:%s:SSL_read_ex", "uretprobe:%s:SSL_read_ex"]}
TLS = False


def bpftrace_floor(driver):
    """bpftrace with empty bodies on the driver's probes, attached once it says so."""
    probes, lib = (TLS_FLOOR_PROBES, LIBSSL) if TLS and driver in TLS_FLOOR_PROBES else (FLOOR_PROBES, LIBPQ)
    lib = os.path.realpath(lib)
    script = " ".join(p % lib + " {}" for p in probes[driver])
    out = tempfile.TemporaryFile(mode="w+")
    bt = subprocess.Popen(PIN["tool"] + ["bpftrace", "-e", script], stdout=out, stderr=subprocess.STDOUT, text=True,
                          preexec_fn=TOOL_CG.enter)
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


def snapshot(tracer):
    """(time, service CPU s, tracer CPU s, BPF ns of the tracer's programs, {program: (runs, ns)})"""
    progs = {}
    if tracer and tracer.poll() is None:
        try:
            progs = bpf_prog_stats(tool_prog_ids(tracer.pid))
        except OSError:
            pass
    return (time.monotonic(), SVC_CG.cpu_s(), TOOL_CG.cpu_s(), sum(t for _, t in progs.values()), progs)


def run(driver, window, env, traced, nprocs=1):
    """traced: False (untraced), True (the tool), "compare" (the --compare build), or "floor"
    (bpftrace, empty probes)."""
    if traced == "floor" and driver not in FLOOR_PROBES and not (TLS and driver in TLS_FLOOR_PROBES):
        raise SystemExit("--floor: no libpq probes for %s (it does not use libpq; with --tls: OpenSSL's)" % driver)
    floor = tracer = None
    if traced == "floor":
        floor = bpftrace_floor(driver)
    try:
        proc, pid = start_clients(driver, window, env, nprocs)
        if traced in (True, "compare"):
            jpath = tempfile.mktemp(suffix=".json")
            # the tool's defaults; it stops when the clients are done.
            tracer = subprocess.Popen(PIN["tool"] + [COMPARE if traced == "compare" else TOOL, "--pid", str(pid),
                                                     "--json", jpath] + TOOL_ARGS,
                                      stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                                      preexec_fn=TOOL_CG.enter)
            t0 = time.time()
        # Costs over the middle of the measured window, start-up excluded (sql_work.py waits
        # WARMUP seconds after "ready" before its window).
        time.sleep(0.8 + WARMUP + 0.3)
        s0 = snapshot(tracer)
        time.sleep(max(window - 0.6, 0.2))
        s1 = snapshot(tracer)
        qps, best = finish_clients(proc)
    finally:
        if floor:
            floor.send_signal(2)
            try:
                floor.wait(timeout=10)
            except subprocess.TimeoutExpired:	# bpftrace 0.17 at times misses SIGINT; its probes go with it
                floor.kill()
                floor.wait()
    res = {"qps": qps, "best": best}
    nq = qps * (s1[0] - s0[0])
    res["svc_us_per_q"] = (s1[1] - s0[1]) * 1e6 / nq
    res["tool_us_per_q"] = (s1[2] - s0[2]) * 1e6 / nq
    res["bpf_ns_per_q"] = (s1[3] - s0[3]) / nq
    # per program: runs and ns per statement (BPF statistics on only)
    res["progs"] = {name: ((n1 - s0[4].get(name, (0, 0))[0]) / nq, (t1 - s0[4].get(name, (0, 0))[1]) / nq)
                    for name, (n1, t1) in s1[4].items()}
    if tracer:
        if tracer.returncode is not None:
            # it exited before the clients were done (snapshot's poll() reaped it): say why
            raise SystemExit("%s exited during the run (status %d): %s" % (
                COMPARE if traced == "compare" else TOOL, tracer.returncode, tracer.stderr.read()[-2000:]))
        _, status, ru = os.wait4(tracer.pid, 0)
        tracer.returncode = status
        res["collector_cpu_s"] = ru.ru_utime + ru.ru_stime
        res["collector_wall_s"] = time.time() - t0
        with open(jpath) as f:
            doc = json.load(f)
        os.unlink(jpath)
        res["statements"] = doc["sql"]["statements"]
        res["lost"] = doc["sql_capture"]["lost_events"]
    return res


def pct(xs, q):
    xs = sorted(xs)
    k = (len(xs) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)


def main():
    global COMPARE, SVC_CG, TOOL_CG, TLS
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--window", type=float, default=3.0)
    ap.add_argument("--drivers", default="psycopg2,psycopg,asyncpg")
    ap.add_argument("--json")
    ap.add_argument("--cpu", type=int, default=-1,
                    help="pin the cluster and the client to CPU N, the tracer to the others (default: no pinning)")
    ap.add_argument("--tool-args", default="", help="extra tracer options, e.g. '--no-http'")
    ap.add_argument("--compare", metavar="PATH", help="another build of the tool, run beside it in every round")
    ap.add_argument("--floor", action="store_true", help="also bpftrace with empty probes (the traps alone)")
    ap.add_argument("--depth", type=int, default=0,
                    help="psycopg2/psycopg: send from N Python frames deeper (a web framework's stack: 40-100)")
    ap.add_argument("--https-beside", action="store_true",
                    help="the clients' process holds an HTTPS-like TLS connection opened before tracing")
    ap.add_argument("--tls", action="store_true",
                    help="over TCP with TLS: libpq's probes serve psycopg2/psycopg, OpenSSL's asyncpg")
    ap.add_argument("--no-bpf-stats", dest="bpf_stats", action="store_false",
                    help="leave kernel.bpf_stats_enabled as it is (off: what users get). Stats cost every BPF "
                         "program run two clock reads, over 100 ns on this VM; BPF ns/q then reads 0")
    args = ap.parse_args()
    TOOL_ARGS.extend(args.tool_args.split())
    COMPARE = args.compare
    if args.cpu >= 0 and os.cpu_count() > 1:
        others = ",".join(str(c) for c in range(os.cpu_count()) if c != args.cpu)
        PIN["db"] = ["taskset", "-c", str(args.cpu)]
        PIN["tool"] = ["taskset", "-c", others]
    if os.geteuid() != 0:
        sys.exit("run as root: the tracer loads BPF programs")
    SVC_CG, TOOL_CG = Cgroup("pytrace-bench-sql-service"), Cgroup("pytrace-bench-sql-tracer")
    if not SVC_CG.path or not TOOL_CG.path:
        sys.exit("cgroup v2 is needed for the CPU-per-statement figures (mounted at /sys/fs/cgroup or .../unified)")
    pgdir = tempfile.mkdtemp(prefix="pytrace-bench-pg-")
    os.chmod(pgdir, 0o755)
    env = dict(os.environ)
    TLS = args.tls
    if args.tls:
        os.environ["PYTRACE_PG_TCP"] = "1"
    env.update(pg_start(pgdir))
    if args.tls:
        pg_tls(pgdir, env)
    env["PT_SQL_DEPTH"] = str(args.depth)
    sink = None
    if args.https_beside:
        sink = subprocess.Popen([PY, os.path.join(REPO, "tests", "integration", "workloads", "tls_sink.py"), pgdir],
                                stdout=subprocess.PIPE, text=True)
        env["PT_HTTPS_BESIDE"] = sink.stdout.readline().split()[1]
    old_stats = open("/proc/sys/kernel/bpf_stats_enabled").read().strip()
    configs = [False, True] + (["compare"] if COMPARE else []) + (["floor"] if args.floor else [])
    label = {False: "untraced", True: "pytrace-bpf", "compare": "compare", "floor": "traps alone"}
    results = {}
    try:
        if args.bpf_stats:
            open("/proc/sys/kernel/bpf_stats_enabled", "w").write("1")
        for driver in args.drivers.split(","):
            per = {c: {"added_us": [], "best_us": [], "cpu_us": [], "added_cpu_us": [], "bpf_ns": [],
                       "tool_us": [], "ratio": [], "lost": []} for c in configs}
            progs = {c: {} for c in configs}
            for r in range(args.rounds):
                order = configs[r % len(configs):] + configs[:r % len(configs)]
                got = {c: run(driver, args.window, env, c) for c in order}
                u = got[False]
                line = []
                for c in configs:
                    g, d = got[c], per[c]
                    cpu = g["svc_us_per_q"] + g["tool_us_per_q"]
                    d["cpu_us"].append(cpu)
                    d["bpf_ns"].append(g["bpf_ns_per_q"])
                    d["tool_us"].append(g["tool_us_per_q"])
                    for name, v in g.get("progs", {}).items():
                        progs[c].setdefault(name, []).append(v)
                    if c is not False:
                        d["ratio"].append(g["qps"] / u["qps"])
                        d["added_us"].append((1 / g["qps"] - 1 / u["qps"]) * 1e6)
                        d["best_us"].append((g["best"] - u["best"]) * 1e6)
                        d["added_cpu_us"].append(cpu - u["svc_us_per_q"] - u["tool_us_per_q"])
                        d["lost"].append(g.get("lost", 0))
                    line.append("%s %.0f q/s, CPU %.2f us/q%s" % (
                        label[c], g["qps"], cpu, "" if c is False else
                        " (+%.2f), BPF %.0f ns/q" % (d["added_cpu_us"][-1], g["bpf_ns_per_q"])))
                print("  %-9s round %d: %s" % (driver, r + 1, "; ".join(line)), flush=True)
            # The load test: two clients at once, traced; no event may be lost.
            load = run(driver, args.window, env, True, nprocs=2)
            res = {"rounds": args.rounds, "load_qps": load["qps"], "load_lost": load["lost"],
                   "load_statements": load["statements"],
                   "untraced_cpu_us_per_q_median": statistics.median(per[False]["cpu_us"])}
            for c in configs[1:]:
                d = per[c]
                res[label[c]] = {k: {"median": statistics.median(v), "min": min(v), "max": max(v)}
                                 for k, v in d.items() if v}
                res[label[c]]["programs"] = {name: {"runs": statistics.median(r for r, _ in v),
                                                    "ns": statistics.median(t for _, t in v)}
                                             for name, v in progs[c].items()}
            results[driver] = res
    finally:
        if sink:
            sink.kill()
            sink.wait()
        open("/proc/sys/kernel/bpf_stats_enabled", "w").write(old_stats)
        subprocess.run([os.path.join(REPO, "scripts", "pg-cluster.sh"), "stop", pgdir],
                       stdout=subprocess.DEVNULL)
        for cg in (SVC_CG, TOOL_CG):
            cg.remove()
    print()
    print("| driver | configuration | added us per statement (wall) | best 2000-statement chunk | "
          "added CPU us per statement (client + server + tracer) | tracer's own CPU | BPF per statement | lost |")
    print("|---|---|---|---|---|---|---|---|")
    for drv, res in results.items():
        for c in configs[1:]:
            d = res[label[c]]

            def f(k, fmt="%+.2f"):
                return (fmt + " (" + fmt + " to " + fmt + ")") % (d[k]["median"], d[k]["min"], d[k]["max"])
            print("| %s | %s | %s | %s | %s | %.2f us | %s | %d |" % (
                drv, label[c], f("added_us"), f("best_us"), f("added_cpu_us"), d["tool_us"]["median"],
                "%.0f ns" % d["bpf_ns"]["median"] if c != "floor" else "-", d["lost"]["max"]))
        print("| %s | load: 2 clients traced | %.0f statements/s | | | | | %d lost of %d |" % (
            drv, res["load_qps"], res["load_lost"], res["load_statements"]))
    if args.bpf_stats:
        for drv, res in results.items():
            for c in configs[1:]:
                progs = {n: v for n, v in res[label[c]].get("programs", {}).items() if v["runs"] >= 0.01}
                if not progs:
                    continue
                print("\n%s, %s: BPF per statement by program (medians over rounds; every process's runs "
                      "counted, the cluster's included)" % (drv, label[c]))
                print("| program | runs per statement | ns per statement | ns per run |")
                print("|---|---|---|---|")
                for n, v in sorted(progs.items(), key=lambda kv: -kv[1]["ns"]):
                    print("| %s | %.2f | %.0f | %.0f |" % (n, v["runs"], v["ns"], v["ns"] / v["runs"]))
    print("\nuntraced CPU per statement (client + server): " + ", ".join(
        "%s %.2f us" % (d, r["untraced_cpu_us_per_q_median"]) for d, r in results.items()))
    print("%d rounds of %.1f s per configuration, alternating; tool %s%s; %s" % (
        args.rounds, args.window, TOOL, " with " + " ".join(TOOL_ARGS) if TOOL_ARGS else " (defaults)",
        "unpinned" if args.cpu < 0 else "pinned: cluster and client on CPU %d" % args.cpu))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
