#!/usr/bin/python3
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
"""Overhead of pytrace-bpf's stack sampling (the flame-graph capability) on a CPU-bound
pure-Python program, measured side by side with untraced runs of the same program.

Each round runs the workload (bench/cpu_work.py) untraced, traced at 99 Hz and traced at
999 Hz, in an order rotated every round. A traced run's throughput is divided by that of
the nearest untraced run in the sequence (the mean of both when two are equally near), per
wall-clock second and per CPU-second of the workload. Reported per configuration: median,
min-max and IQR of those ratios, and the noise floor (untraced runs against their median);
the collector's own CPU time (user+sys from wait4, as % of one core over its wall time; and
over the measured window alone, from /proc/PID/task/*/schedstat), its start-up CPU time and
wakeups; the BPF program's run time per sample (kernel.bpf_stats_enabled is set for the run
and restored after); samples and samples lost (from the tracer's summary line). A final
probe (a clock-reading loop, untraced and at the highest rate) gives the time each sample
takes from the sampled thread, interrupt included, which noise from other load hides less.

The verdict on the goal (at 99 Hz: >= 99% of the untraced throughput, collector < 1% of a
core, no sample lost) is MET, NOT MET, or INCONCLUSIVE when the untraced runs alone spread by
more than 2% (IQR) both per wall-clock second and per CPU-second.

With --idle, the same rounds measure wall-clock profiling instead: the workload is
bench/block_work.py (a pure-Python loop that blocks about 10,000 times a second in one-byte
pipe round trips with a forked child, both traced), traced at 99 Hz with --idle, whose
sched_switch program walks the stack of every blocking traced thread; the BPF figures are
those of that program (idle_switch). Then the cost of that program to a process the tool does
NOT trace: bench/pingpong.c (two C processes ping-ponging a byte through pipes, both pinned to
one CPU: two context switches per round trip) run alternately with no tracer and with
`pytrace-bpf --idle` tracing another process (a sleeping Python), --switch-pairs times; the
difference in ns per round trip, halved, is what the program costs each context switch of an
untraced task, beside the program's own run time per call from bpf_stats.

Needs root. Exits 0 when the benchmark ran, whatever the verdict; 1 if it could not run.
Example:  bench/flame_overhead.py --rounds 7 --json /tmp/flame.json
          bench/flame_overhead.py --idle --rounds 7 --json /tmp/idle.json
"""
import argparse
import datetime
import glob
import hashlib
import json
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
BPF_STATS = "/proc/sys/kernel/bpf_stats_enabled"
PROG_NAME = "sample_stack"
GOAL_RATIO = 0.99       # traced/untraced throughput at the goal rate
GOAL_COLLECTOR = 1.0    # % of one core
GOAL_RATE = 99
# The tracer's line saying it has attached ("Sampling pid N ..." or "Tracing pid N ...").
STARTED_RE = re.compile(r"^(Sampling|Tracing) pid \d+")
# Fields of the tracer's summary line on stderr, e.g. "2946 samples in 1 process (1 Python), deepest
# stack 24 frames; lost 0, native 0, ..." (the wording around them may change: each is found alone).
SUMMARY_FIELDS = {
    "samples": r"(\d+) samples", "max_depth": r"deepest stack (\d+) frames", "lost": r"\blost (\d+)",
    "native": r"native (\d+)", "not_python": r"not Python (\d+)", "truncated": r"truncated (\d+)",
    "unresolved": r"unresolved frames (\d+)", "dropped": r"dropped \(stack cap\) (\d+)",
}


def parse_summary(lines):
    """The tracer's sample counts, from the first stderr line naming both samples and lost."""
    for line in lines:
        if re.search(SUMMARY_FIELDS["samples"], line) and re.search(SUMMARY_FIELDS["lost"], line):
            out = {}
            for k, rx in SUMMARY_FIELDS.items():
                m = re.search(rx, line)
                out[k] = int(m.group(1)) if m else None
            return out
    return None


def die(msg):
    print("flame_overhead: " + msg, file=sys.stderr)
    sys.exit(1)


# ---------------------------------------------------------------- /proc and bpftool readers

def task_cpu_ns(pid):
    """CPU time (ns) and voluntary context switches of every thread of pid, or None."""
    cpu, vcsw = 0, 0
    try:
        for task in glob.glob("/proc/%d/task/*" % pid):
            with open(task + "/schedstat") as f:
                cpu += int(f.read().split()[0])
            with open(task + "/status") as f:
                for line in f:
                    if line.startswith("voluntary_ctxt_switches:"):
                        vcsw += int(line.split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return cpu, vcsw


def prog_ids_of(pid):
    """Ids of the BPF programs pid holds file descriptors to (from fdinfo)."""
    ids = set()
    for fdinfo in glob.glob("/proc/%d/fdinfo/*" % pid):
        try:
            with open(fdinfo) as f:
                for line in f:
                    if line.startswith("prog_id:"):
                        ids.add(int(line.split()[1]))
        except OSError:
            pass
    return ids


def bpftool_progs():
    """`bpftool prog show -j`, as a list (empty on failure)."""
    try:
        out = subprocess.run(["bpftool", "prog", "show", "-j"], capture_output=True, text=True,
                             timeout=10).stdout
        return json.loads(out or "[]")
    except (OSError, subprocess.SubprocessError, ValueError):
        return []


def sampler_stats(tracer_pid):
    """(run_time_ns, run_cnt) of the tracer's sample_stack program. bpftool runs on every
    call, traced or not, so that untraced runs pay the same harness activity."""
    for attempt in range(3):  # a listing can fail while other programs come and go
        progs = bpftool_progs()
        if tracer_pid is None:
            return None
        ids = prog_ids_of(tracer_pid)
        for p in progs if isinstance(progs, list) else []:
            if p.get("id") in ids and p.get("name") == PROG_NAME:
                return p.get("run_time_ns", 0), p.get("run_cnt", 0)
    return None


def hold_bpf_stats():
    """An fd from bpf(BPF_ENABLE_STATS): run-time stats stay on while it is open, whatever
    another process writes to kernel.bpf_stats_enabled meanwhile. None if unavailable."""
    import ctypes
    import struct
    if platform.machine() != "x86_64":
        return None
    libc = ctypes.CDLL(None, use_errno=True)
    attr = ctypes.create_string_buffer(struct.pack("I", 0), 8)  # BPF_STATS_RUN_TIME
    fd = libc.syscall(321, 32, attr, 4)  # SYS_bpf, BPF_ENABLE_STATS
    return fd if fd >= 0 else None


def cpu_times():
    """Aggregate (busy, steal, total) jiffies from /proc/stat."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    total = sum(v[:8])
    idle = v[3] + v[4]
    return total - idle, v[7], total


def irq_time_accounting():
    """'y', 'n' or '?' for CONFIG_IRQ_TIME_ACCOUNTING of the running kernel."""
    import gzip
    for path, opener in (("/proc/config.gz", gzip.open), ("/boot/config-" + platform.release(), open)):
        try:
            with opener(path, "rt") as f:
                return "y" if "CONFIG_IRQ_TIME_ACCOUNTING=y" in f.read() else "n"
        except OSError:
            pass
    return "?"


def proc_cpu():
    """{pid: (comm, utime+stime ticks)} of every process."""
    out = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                st = f.read()
        except OSError:
            continue
        comm = st[st.index("(") + 1:st.rindex(")")]
        v = st[st.rindex(")") + 2:].split()
        out[int(d)] = (comm, int(v[11]) + int(v[12]))
    return out


def other_busy(before, after, wall):
    """Processes, other than this benchmark's, that used >= 5% of a CPU during the run."""
    hz = os.sysconf("SC_CLK_TCK")
    busy = []
    for pid, (comm, t1) in after.items():
        if pid == os.getpid() or pid not in before:
            continue
        pct = 100.0 * (t1 - before[pid][1]) / hz / wall
        if pct >= 5:
            busy.append({"pid": pid, "comm": comm, "pct": round(pct)})
    return sorted(busy, key=lambda o: -o["pct"])


def loadavg():
    with open("/proc/loadavg") as f:
        return [float(x) for x in f.read().split()[:3]]


# ---------------------------------------------------------------- one run

class StderrReader(threading.Thread):
    """Collects a process's stderr lines with the CLOCK_MONOTONIC time they arrived."""

    def __init__(self, stream):
        super().__init__(daemon=True)
        self.stream, self.lines = stream, []

    def run(self):
        for line in self.stream:
            self.lines.append((time.monotonic(), line.rstrip("\n")))


def expect(proc, prefix, what):
    line = proc.stdout.readline()
    if not line.startswith(prefix):
        raise RuntimeError("workload: expected %r, got %r (%s)" % (prefix, line, what))
    return line.split()


def one_run(args, rate, outdir, index, live, gaps=False):
    """Run the workload once, traced at rate Hz (or untraced if rate is 0); with gaps, its
    interruption-measuring loop instead of the work units."""
    cmd = [args.python, "-E", "-s", os.path.join(HERE, args.workload), "--seconds",
           str(args.gap_seconds if gaps else args.seconds), "--settle", str(args.settle), "--hold", "--wait-go"]
    cmd += args.workload_args
    if gaps:
        cmd.append("--gaps")

    def preexec():
        if args.pin is not None:
            os.sched_setaffinity(0, {args.pin})
        if args.nice:
            os.nice(args.nice)

    work = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                            preexec_fn=preexec)
    live.append(work)
    run = {"index": index, "config": "untraced" if not rate else "%d Hz" % rate, "rate": rate}
    tracer = reader = None
    try:
        wpid = int(expect(work, "ready", "startup")[1])
        if rate:
            svg = os.path.join(outdir, "run%02d-%dhz.svg" % (index, rate))
            t_launch = time.monotonic()
            tracer = subprocess.Popen([args.tracer, "--pid", str(wpid), "--rate", str(rate), "--flame", svg]
                                      + args.tracer_args,
                                      stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                      stderr=subprocess.PIPE, text=True)
            live.append(tracer)
            reader = StderrReader(tracer.stderr)
            reader.start()
            # Start the window only once the tracer samples (attach time varies with load).
            while not any(STARTED_RE.search(l) for _, l in reader.lines):
                if tracer.poll() is not None or time.monotonic() - t_launch > 60:
                    reader.join(timeout=2)
                    raise RuntimeError("tracer did not start: %s" % " | ".join(l for _, l in reader.lines))
                time.sleep(0.01)
        work.stdin.write("go\n")
        work.stdin.flush()
        t_start = float(expect(work, "start", "settle")[1])
        c0 = task_cpu_ns(tracer.pid) if tracer else None
        b0 = sampler_stats(tracer.pid if tracer else None)
        res = dict(kv.split("=") for kv in expect(work, "result", "window")[1:])
        t_end = time.monotonic()
        c1 = task_cpu_ns(tracer.pid) if tracer else None
        b1 = sampler_stats(tracer.pid if tracer else None)
        work.stdin.close()
        work.wait(timeout=30)
        live.remove(work)
        run["units"] = int(res["units"])
        run["window_s"] = float(res["elapsed"])
        run["throughput"] = float(res["throughput"])
        run["cpu_s"] = float(res["cpu"])
        run["units_per_cpu_s"] = run["units"] / run["cpu_s"]
        run["cpu_share"] = run["cpu_s"] / run["window_s"]
        for k in ("gaps", "gap_ns", "big", "big_ns"):
            if k in res:
                run[k] = int(res[k])
        if "blocks_per_s" in res:
            run["blocks_per_s"] = float(res["blocks_per_s"])
        if not tracer:
            return run

        _, status, ru = os.wait4(tracer.pid, 0)
        t_exit = time.monotonic()
        tracer.returncode = os.waitstatus_to_exitcode(status)
        live.remove(tracer)
        reader.join(timeout=5)
        lines = [l for _, l in reader.lines]
        run["tracer_rc"] = tracer.returncode
        run["tracer_wall_s"] = t_exit - t_launch
        run["tracer_cpu_s"] = ru.ru_utime + ru.ru_stime
        run["tracer_utime_s"], run["tracer_stime_s"] = ru.ru_utime, ru.ru_stime
        run["collector_pct"] = 100.0 * run["tracer_cpu_s"] / run["tracer_wall_s"]
        attached = [t for t, l in reader.lines if STARTED_RE.search(l)]
        run["attach_lead_ms"] = round(1000 * (t_start - attached[0]), 1) if attached else None
        if c0 and c1:
            win = t_end - t_start
            run["startup_cpu_ms"] = c0[0] / 1e6
            run["window_collector_pct"] = 100.0 * (c1[0] - c0[0]) / 1e9 / win
            run["window_wakeups_per_s"] = (c1[1] - c0[1]) / win
        m = parse_summary(lines)
        if m:
            run.update(m)
            run["samples_per_s"] = run["samples"] / run["window_s"]
        else:
            run["lost"] = None
        run["tracer_stderr"] = lines[-8:]
        if b0 and b1 and b1[1] > b0[1]:
            dt, dn = b1[0] - b0[0], b1[1] - b0[1]
            run["bpf_runs"] = dn
            run["bpf_ns_per_run"] = dt / dn
            run["bpf_pct_of_core"] = 100.0 * dt / 1e9 / (t_end - t_start)
            run["bpf_pct_of_workload"] = 100.0 * dt / 1e9 / run["cpu_s"]
            if m and run["samples"]:
                # Samples are taken only while the workload runs, i.e. in the window.
                run["bpf_us_per_sample"] = dt / 1e3 / run["samples"]
        run["svg_kb"] = os.path.getsize(svg) / 1024 if os.path.exists(svg) else 0
        return run
    finally:
        for p in (work, tracer):
            if p and p.poll() is None and p in live:
                p.kill()
                p.wait()
                live.remove(p)


# ---------------------------------------------------------------- statistics and report

def spread(xs):
    xs = sorted(xs)
    if len(xs) >= 2:
        q = statistics.quantiles(xs, n=4, method="inclusive")
        q1, q3 = q[0], q[2]
    else:
        q1 = q3 = xs[0]
    return {"n": len(xs), "median": statistics.median(xs), "min": xs[0], "max": xs[-1], "q1": q1, "q3": q3}


def pair_ratios(runs):
    """Traced throughput / throughput of the nearest untraced run(s) in the run sequence,
    per wall-clock second ("ratio") and per CPU-second of the workload ("cpu_ratio")."""
    base = [r for r in runs if not r["rate"]]
    for r in runs:
        if not r["rate"]:
            continue
        d = min(abs(b["index"] - r["index"]) for b in base)
        near = [b for b in base if abs(b["index"] - r["index"]) == d]
        r["ratio"] = r["throughput"] / statistics.mean(b["throughput"] for b in near)
        r["cpu_ratio"] = r["units_per_cpu_s"] / statistics.mean(b["units_per_cpu_s"] for b in near)


def gap_summary(gap_runs):
    """Per-sample cost as the sampled thread sees it: the extra interruption time (gaps of
    1.5-200 us in a clock-reading loop) of traced runs over untraced ones, per sample."""
    base = [r for r in gap_runs if not r["rate"]]
    traced = [r for r in gap_runs if r["rate"] and r.get("samples")]
    if not base or not traced:
        return None
    per_s = lambda r, k: r[k] / r["window_s"]
    b_ns, b_n = (statistics.mean(per_s(r, k) for r in base) for k in ("gap_ns", "gaps"))
    t_ns, t_n = (statistics.mean(per_s(r, k) for r in traced) for k in ("gap_ns", "gaps"))
    smpl = statistics.mean(per_s(r, "samples") for r in traced)
    return {"rate": traced[0]["rate"], "samples_per_s": smpl, "untraced_gaps_per_s": b_n,
            "traced_gaps_per_s": t_n, "untraced_gap_ms_per_s": b_ns / 1e6, "traced_gap_ms_per_s": t_ns / 1e6,
            "us_per_sample": (t_ns - b_ns) / 1e3 / smpl,
            "bpf_us_per_sample": median_of(traced, "bpf_us_per_sample")}


def median_of(runs, key):
    xs = [r[key] for r in runs if r.get(key) is not None]
    return statistics.median(xs) if xs else None


def summarize(runs, rates):
    out = {}
    base = [r["throughput"] for r in runs if not r["rate"]]
    med = statistics.median(base)
    # Noise floor: each untraced run against the median untraced run.
    cbase = [r["units_per_cpu_s"] for r in runs if not r["rate"]]
    cmed = statistics.median(cbase)
    out["untraced"] = {"runs": len(base), "throughput_median": med, "cpu_throughput_median": cmed,
                       "relative": spread([b / med for b in base]),
                       "cpu_relative": spread([b / cmed for b in cbase]),
                       "cpu_share_median": median_of([r for r in runs if not r["rate"]], "cpu_share")}
    for rate in rates:
        rs = [r for r in runs if r["rate"] == rate]
        out["%d Hz" % rate] = {
            "runs": len(rs),
            "ratio": spread([r["ratio"] for r in rs]),
            "cpu_ratio": spread([r["cpu_ratio"] for r in rs]),
            "cpu_share_median": median_of(rs, "cpu_share"),
            "collector_pct_median": median_of(rs, "collector_pct"),
            "collector_pct_max": max((r["collector_pct"] for r in rs), default=None),
            "window_collector_pct_median": median_of(rs, "window_collector_pct"),
            "window_wakeups_per_s_median": median_of(rs, "window_wakeups_per_s"),
            "startup_cpu_ms_median": median_of(rs, "startup_cpu_ms"),
            "bpf_us_per_sample_median": median_of(rs, "bpf_us_per_sample"),
            "bpf_ns_per_run_median": median_of(rs, "bpf_ns_per_run"),
            "bpf_pct_of_core_median": median_of(rs, "bpf_pct_of_core"),
            "bpf_pct_of_workload_median": median_of(rs, "bpf_pct_of_workload"),
            "samples_per_s_median": median_of(rs, "samples_per_s"),
            "svg_kb_median": median_of(rs, "svg_kb"),
            "max_depth": max((r.get("max_depth") or 0 for r in rs), default=0),
            "lost_total": sum(r.get("lost") or 0 for r in rs),
            "lost_unknown": sum(1 for r in rs if r.get("lost") is None),
            "tracer_failures": sum(1 for r in rs if r.get("tracer_rc")),
            "attach_late": sum(1 for r in rs if r.get("attach_lead_ms") is None or r["attach_lead_ms"] < 0),
        }
    return out


def fmt(x, spec, none="-"):
    return none if x is None else format(x, spec)


def rng(s, key_lo, key_hi):
    return "%.3f-%.3f" % (s[key_lo], s[key_hi])


def report(meta, summary, rates, f=sys.stdout):
    def p(*a):
        print(*a, file=f)
    p("\npytrace-bpf flame-graph overhead  (%s)" % meta["date"])
    p("  machine: %d CPUs, kernel %s (irq time accounting: %s); workload: %s (Python %s)" %
      (meta["cpus"], meta["kernel"], meta["irq_time_accounting"], meta["python"], meta["python_version"]))
    p("  tracer: %s (built %s, sha256 %s; tree %s)" % (meta["tracer"], meta["tracer_mtime"],
                                                      meta["tracer_sha256"], meta["git"] or "not git"))
    p("  %d rounds x (untraced, %s), %.1f s windows, order rotated each round, %.0f s in all; "
      "workload nice %d, %s" % (meta["rounds"], ", ".join("%d Hz" % r for r in rates), meta["seconds"],
                                meta["wall_s"], meta["nice"],
                                "pinned to CPU %d" % meta["pin"] if meta["pin"] is not None else "not pinned"))
    p("  load avg %.2f -> %.2f, steal %.1f%%; other busy processes: %s" %
      (meta["loadavg_before"][0], meta["loadavg_after"][0], meta["steal_pct"],
       ", ".join("%s %d%%" % (o["comm"], o["pct"]) for o in meta["other_busy"]) or "none"))
    u = summary["untraced"]
    p("\n  Throughput of traced runs / nearest untraced run (per wall-clock second; per CPU-second of the workload)")
    p("  %-9s %4s  %6s %13s %13s   %6s %13s %13s  %6s" %
      ("config", "runs", "wall", "min-max", "IQR", "cpu", "min-max", "IQR", "share"))
    s, c = u["relative"], u["cpu_relative"]
    p("  %-9s %4d  %6.3f %13s %13s   %6.3f %13s %13s  %6.2f" %
      ("untraced", u["runs"], 1.0, rng(s, "min", "max"), rng(s, "q1", "q3"), 1.0, rng(c, "min", "max"),
       rng(c, "q1", "q3"), u["cpu_share_median"]))
    for rate in rates:
        x = summary["%d Hz" % rate]
        s, c = x["ratio"], x["cpu_ratio"]
        p("  %-9s %4d  %6.3f %13s %13s   %6.3f %13s %13s  %6.2f" %
          ("%d Hz" % rate, x["runs"], s["median"], rng(s, "min", "max"), rng(s, "q1", "q3"), c["median"],
           rng(c, "min", "max"), rng(c, "q1", "q3"), x["cpu_share_median"]))
    p("  (untraced row: each untraced run / the median untraced run, i.e. the noise floor; %.0f units/s,"
      "\n   %.0f units per CPU-second; share = workload CPU time / window)" %
      (u["throughput_median"], u["cpu_throughput_median"]))
    p("\n  Costs (medians over runs)")
    p("  %-9s  %7s %7s %8s %7s  %9s %9s %7s  %7s %5s %5s" %
      ("config", "life%", "win%", "start ms", "wake/s", "bpf us/s.", "bpf %core", "smpl/s", "depth", "lost",
       "svg KB"))
    for rate in rates:
        x = summary["%d Hz" % rate]
        p("  %-9s  %7s %7s %8s %7s  %9s %9s %7s  %7d %5s %5s" %
          ("%d Hz" % rate, fmt(x["collector_pct_median"], ".2f"), fmt(x["window_collector_pct_median"], ".2f"),
           fmt(x["startup_cpu_ms_median"], ".1f"), fmt(x["window_wakeups_per_s_median"], ".1f"),
           fmt(x["bpf_us_per_sample_median"], ".2f"), fmt(x["bpf_pct_of_core_median"], ".3f"),
           fmt(x["samples_per_s_median"], ".0f"), x["max_depth"],
           str(x["lost_total"]) + ("?" if x["lost_unknown"] else ""), fmt(x["svg_kb_median"], ".0f")))
    p("  life% = collector (pytrace-bpf) user+sys from wait4 / its wall time, start-up and SVG writing"
      "\n  included; win% = its CPU time within the window only; start ms = its CPU time to attach;"
      "\n  bpf us/s. = sample_stack run time / samples; bpf %core = sample_stack run time / window, all"
      "\n  CPUs (charged to whatever task was running, mostly the workload); depth = deepest stack."
      .replace("sample_stack", PROG_NAME))
    for rate in rates:
        x = summary["%d Hz" % rate]
        if x["tracer_failures"] or x["lost_unknown"] or x["attach_late"]:
            p("  WARNING %d Hz: %d tracer failures, %d runs without a summary line, %d runs attached after "
              "the window began (raise --settle)" % (rate, x["tracer_failures"], x["lost_unknown"],
                                                     x["attach_late"]))
    gi = summary.get("interruptions")
    if gi:
        p("\n  Interruption probe (clock-reading loop, %d Hz): %.0f gaps/s untraced, %.0f traced; extra %.2f ms/s"
          "\n  for %.0f samples/s: %.1f us per sample as the sampled thread sees it (BPF program alone %s us);"
          "\n  at %d Hz that is %.2f%% of the sampled thread's time" %
          (gi["rate"], gi["untraced_gaps_per_s"], gi["traced_gaps_per_s"],
           gi["traced_gap_ms_per_s"] - gi["untraced_gap_ms_per_s"], gi["samples_per_s"], gi["us_per_sample"],
           fmt(gi["bpf_us_per_sample"], ".1f"), GOAL_RATE, GOAL_RATE * gi["us_per_sample"] / 1e4))
    g = summary.get("goal")
    if g:
        p("\n  Goal at %d Hz: throughput ratio >= %.2f and collector < %.0f%% of a core: %s" %
          (GOAL_RATE, GOAL_RATIO, GOAL_COLLECTOR, g["verdict"]))
        for why in g["notes"]:
            p("    - " + why)


def judge(summary):
    """MET / NOT MET / INCONCLUSIVE for the goal at GOAL_RATE, with the reasons."""
    c = summary.get("%d Hz" % GOAL_RATE)
    if not c:
        return None
    r, cr, coll = c["ratio"]["median"], c["cpu_ratio"]["median"], c["collector_pct_median"]
    iqr = lambda s: s["q3"] - s["q1"]
    noise_iqr, cpu_noise_iqr = iqr(summary["untraced"]["relative"]), iqr(summary["untraced"]["cpu_relative"])
    limit = 2 * (1 - GOAL_RATIO)
    # Wall-clock throughput is the goal's measure. When other load makes it swing by more than
    # the effect, the throughput per CPU-second of the workload is the fallback: on a kernel
    # without IRQ time accounting it still pays for the sampler's interrupts and BPF time,
    # but not for CPU time lost to other tasks (the collector's own share is reported apart).
    if noise_iqr <= limit:
        basis, value = "wall-clock", r
    elif cpu_noise_iqr <= limit and summary.get("irq_time_accounting") != "y":
        basis, value = "per CPU-second (wall-clock too noisy)", cr
    else:
        basis, value = None, None
    tput = "inconclusive" if basis is None else ("met" if value >= GOAL_RATIO else "not met")
    notes = ["throughput %s%s: median ratio %.3f wall-clock (IQR %.3f-%.3f), %.3f per CPU-second "
             "(IQR %.3f-%.3f); goal >= %.2f" % (tput, " " + basis if basis else "", r, c["ratio"]["q1"],
                                                c["ratio"]["q3"], cr, c["cpu_ratio"]["q1"], c["cpu_ratio"]["q3"],
                                                GOAL_RATIO)]
    if noise_iqr > limit:
        notes.append("noise floor: untraced runs alone spread by %.1f%% wall-clock, %.1f%% per CPU-second "
                     "(IQR of run / median run), against the %.0f%% being measured"
                     % (100 * noise_iqr, 100 * cpu_noise_iqr, 100 * (1 - GOAL_RATIO)))
    coll_ok = coll is not None and coll < GOAL_COLLECTOR
    lost_ok = c["lost_total"] == 0 and not c["lost_unknown"]
    notes.append("collector %s: %.2f%% of a core over its lifetime (worst run %.2f%%), %.2f%% within the "
                 "window" % ("met" if coll_ok else "not met", coll, c["collector_pct_max"],
                             c["window_collector_pct_median"] or 0))
    if c["bpf_pct_of_workload_median"] is not None:
        notes.append("direct cost: " + PROG_NAME + "'s BPF run time is %.2f%% of the workload's CPU time (%.1f us x "
                     "%.0f samples/s), a lower bound of the slowdown that noise cannot hide"
                     % (c["bpf_pct_of_workload_median"], c["bpf_us_per_sample_median"],
                        c["samples_per_s_median"]))
    notes.append("samples lost: %d%s" % (c["lost_total"], " (some runs had no summary)" if c["lost_unknown"] else ""))
    if not coll_ok or not lost_ok or tput == "not met":
        verdict = "NOT MET"
    elif tput == "inconclusive":
        verdict = "INCONCLUSIVE"
    else:
        verdict = "MET"
    return {"verdict": verdict, "met": verdict == "MET", "throughput": tput, "collector_ok": coll_ok,
            "lost_ok": lost_ok, "basis": basis, "noise_iqr": noise_iqr, "cpu_noise_iqr": cpu_noise_iqr,
            "notes": notes}


# ---------------------------------------------------------------- --idle: cost to untraced processes

def set_bpf_stats(on, state):
    """Turn BPF run-time stats on or off. They cost each program run two clock reads, which a
    user does not pay: the timed runs of switch_cost run with them off."""
    if state.get("fd") is not None:
        os.close(state["fd"])
        state["fd"] = None
    with open(BPF_STATS, "w") as f:
        f.write("1" if on else "0")
    if on:
        state["fd"] = hold_bpf_stats()


def switch_cost(args, live, stats):
    """The cost of --idle's sched_switch program to processes the tool does NOT trace, with BPF
    stats off (as users run): (1) bench/pingpong.c (two C processes pinned to one CPU, two context
    switches per round trip), ns per round trip; (2) bench/block_work.py untraced (a Python loop
    blocking about 10,000 times a second, unpinned), units per second and per CPU-second of its
    main process. Each with no tracer, with `pytrace-bpf --no-sql --no-http` tracing another
    process, and with the same plus --idle, in a rotated order. SQL and HTTP are off so that the
    syscall tracepoints they attach (which every process pays too) do not hide the difference.
    Then one ping-pong run with --idle and stats on gives idle_switch's own run time per call."""
    tmp = tempfile.mkdtemp(prefix="flame_overhead_pp.")
    pp = os.path.join(tmp, "pingpong")
    out = subprocess.run(["cc", "-O2", "-o", pp, os.path.join(HERE, "pingpong.c")], capture_output=True, text=True)
    if out.returncode:
        raise RuntimeError("cannot build bench/pingpong.c: " + out.stderr[-500:])
    cpu = str(args.pin if args.pin is not None else 0)
    target = subprocess.Popen([args.python, "-c", "import time\nwhile True: time.sleep(0.01)"])
    live.append(target)
    rows = []

    def start_tracer(cfg):
        tracer = subprocess.Popen([args.tracer, "--pid", str(target.pid), "--no-sql", "--no-http"] +
                                  (["--idle"] if cfg == "idle" else []), stdin=subprocess.DEVNULL,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        live.append(tracer)
        reader = StderrReader(tracer.stderr)
        reader.start()
        t_launch = time.monotonic()
        while not any(STARTED_RE.search(l) for _, l in reader.lines):
            if tracer.poll() is not None or time.monotonic() - t_launch > 60:
                raise RuntimeError("tracer did not start: %s" % " | ".join(l for _, l in reader.lines))
            time.sleep(0.01)
        time.sleep(args.settle)
        return tracer, reader

    def stop_tracer(tracer, reader):
        tracer.send_signal(signal.SIGINT)
        tracer.wait(timeout=30)
        live.remove(tracer)
        reader.join(timeout=5)

    def one(kind, cfg, with_stats=False):
        traced = cfg != "none"
        tracer = reader = b0 = b1 = None
        set_bpf_stats(with_stats, stats)
        if traced:
            tracer, reader = start_tracer(cfg)
            b0 = sampler_stats(tracer.pid)
        else:
            sampler_stats(None)
        if kind == "pingpong":
            res = subprocess.run([pp, str(args.switch_seconds), cpu, cpu], capture_output=True, text=True,
                                 timeout=args.switch_seconds + 30)
            kv = dict(x.split("=") for x in res.stdout.split())
            row = {"kind": kind, "config": cfg, "ns_per_round_trip": float(kv["ns_per_round_trip"]),
                   "round_trips": int(kv["round_trips"])}
            elapsed = float(kv["elapsed"])
        else:
            res = subprocess.run([args.python, os.path.join(HERE, "block_work.py"), "--seconds",
                                  str(args.switch_seconds), "--settle", "0.2", "--spin", str(args.spin)],
                                 capture_output=True, text=True, timeout=args.switch_seconds + 30)
            kv = dict(x.split("=") for x in res.stdout.split("result", 1)[1].split())
            row = {"kind": kind, "config": cfg, "units_per_s": float(kv["throughput"]),
                   "units_per_cpu_s": float(kv["units"]) / float(kv["cpu"]),
                   "blocks_per_s": float(kv["blocks_per_s"])}
            elapsed = float(kv["elapsed"])
        if traced:
            b1 = sampler_stats(tracer.pid)
            stop_tracer(tracer, reader)
        row["traced_other"] = traced
        row["bpf_stats"] = with_stats
        if b0 and b1 and b1[1] > b0[1]:
            row["bpf_ns_per_run"] = (b1[0] - b0[0]) / (b1[1] - b0[1])
            row["bpf_runs_per_s"] = (b1[1] - b0[1]) / elapsed
        rows.append(row)
        if not args.quiet:
            print("switch %-9s %-8s %s%s" % (
                kind, cfg, "%.0f ns per round trip" % row["ns_per_round_trip"] if kind == "pingpong" else
                "%.0f units/s, %.0f units/cpu-s, %.0f blocks/s" % (row["units_per_s"], row["units_per_cpu_s"],
                                                                  row["blocks_per_s"]),
                "  idle_switch %.0f ns/run, %.0f runs/s (stats on)" % (row["bpf_ns_per_run"], row["bpf_runs_per_s"])
                if "bpf_ns_per_run" in row else ""), file=sys.stderr)

    configs = ["none", "sampler", "idle"]
    try:
        for i in range(args.switch_pairs):
            k = i % len(configs)
            for kind in ("pingpong", "block_work"):
                for cfg in configs[k:] + configs[:k]:
                    one(kind, cfg)
        one("pingpong", "idle", with_stats=True)
    finally:
        set_bpf_stats(True, stats)
        target.kill()
        target.wait()
        live.remove(target)
        shutil.rmtree(tmp, ignore_errors=True)

    def med(kind, key):
        return {c: statistics.median([r[key] for r in rows if r["kind"] == kind and r["config"] == c
                                      and not r["bpf_stats"]]) for c in configs}

    def spr(kind, key):
        return {c: spread([r[key] for r in rows if r["kind"] == kind and r["config"] == c and not r["bpf_stats"]])
                for c in configs}

    pp_med, bw_med, bw_cpu = med("pingpong", "ns_per_round_trip"), med("block_work", "units_per_s"), \
        med("block_work", "units_per_cpu_s")
    bpf = [r["bpf_ns_per_run"] for r in rows if "bpf_ns_per_run" in r]
    return {"pairs": args.switch_pairs, "seconds": args.switch_seconds, "cpu": int(cpu), "rows": rows,
            "median_ns": pp_med, "spread": spr("pingpong", "ns_per_round_trip"),
            # two context switches per round trip (both ends on one CPU)
            "idle_extra_ns_per_switch": (pp_med["idle"] - pp_med["sampler"]) / 2,
            "idle_extra_pct": 100.0 * (pp_med["idle"] / pp_med["sampler"] - 1),
            "tool_extra_pct": 100.0 * (pp_med["idle"] / pp_med["none"] - 1),
            "block_work_units_per_s": bw_med, "block_work_units_per_cpu_s": bw_cpu,
            "block_work_spread": spr("block_work", "units_per_s"),
            "block_work_cpu_spread": spr("block_work", "units_per_cpu_s"),
            "block_work_idle_ratio": bw_med["idle"] / bw_med["sampler"],
            "block_work_idle_cpu_ratio": bw_cpu["idle"] / bw_cpu["sampler"],
            "bpf_ns_per_run": statistics.median(bpf) if bpf else None}


def report_switch(sc, f=sys.stdout):
    print("\n  The sched_switch program (--idle) and a process it does not trace: bench/pingpong.c on CPU %d,"
          "\n  %d rounds x %.1f s; ns per round trip (two context switches), median (min-max):"
          % (sc["cpu"], sc["pairs"], sc["seconds"]), file=f)
    names = {"none": "no tracer", "sampler": "pytrace-bpf --no-sql --no-http on another pid",
             "idle": "the same with --idle"}
    for c in ("none", "sampler", "idle"):
        print("    %-48s %8.0f  (%.0f-%.0f)" % (names[c], sc["median_ns"][c], sc["spread"][c]["min"],
                                               sc["spread"][c]["max"]), file=f)
    print("  --idle: %+.1f%% (%+.0f ns per context switch) over the sampler alone, %+.1f%% over no tracer;"
          "\n  idle_switch's own run time %s ns per call (one more run, bpf_stats on)"
          % (sc["idle_extra_pct"], sc["idle_extra_ns_per_switch"], sc["tool_extra_pct"],
             fmt(sc["bpf_ns_per_run"], ".0f")), file=f)
    print("\n  bench/block_work.py NOT traced (about 10,000 blocks/s, unpinned), median (min-max):", file=f)
    for c in ("none", "sampler", "idle"):
        print("    %-48s %8.0f units/s (%.0f-%.0f)  %8.0f units/cpu-s (%.0f-%.0f)" % (
            names[c], sc["block_work_units_per_s"][c], sc["block_work_spread"][c]["min"],
            sc["block_work_spread"][c]["max"], sc["block_work_units_per_cpu_s"][c],
            sc["block_work_cpu_spread"][c]["min"], sc["block_work_cpu_spread"][c]["max"]), file=f)
    print("  --idle over the sampler alone: throughput ratio %.3f, per CPU-second %.3f" % (
        sc["block_work_idle_ratio"], sc["block_work_idle_cpu_ratio"]), file=f)


# ---------------------------------------------------------------- main

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=7, help="rounds of (untraced, each rate); default 7")
    ap.add_argument("--seconds", type=float, default=4.0, help="measured window per run; default 4")
    ap.add_argument("--settle", type=float, default=0.5, help="pause before the window for attaching; default 0.5")
    ap.add_argument("--rates", default="99,999", help="sampling rates in Hz, comma-separated; default 99,999")
    ap.add_argument("--python", default="/usr/bin/python3", help="interpreter for the workload")
    ap.add_argument("--tracer", default=os.path.join(ROOT, "build", "pytrace-bpf"), help="pytrace-bpf binary")
    ap.add_argument("--json", metavar="FILE", help="write the results as one JSON line ('-' for stdout)")
    ap.add_argument("--keep", metavar="DIR", help="keep the flame graphs in DIR")
    ap.add_argument("--pin", type=int, metavar="CPU", help="pin the workload to CPU (default: not pinned)")
    ap.add_argument("--nice", type=int, default=-20, metavar="N",
                    help="nice level of the workload; the default -20 shields it from other load on a "
                         "shared machine (0: as ordinary processes run)")
    ap.add_argument("--gap-pairs", type=int, default=2, metavar="N",
                    help="pairs of (untraced, traced at the highest rate) runs of the interruption probe; "
                         "default 2, 0 to skip")
    ap.add_argument("--gap-seconds", type=float, default=3.0, help="window of each probe run; default 3")
    ap.add_argument("-q", "--quiet", action="store_true", help="no per-run progress lines")
    ap.add_argument("--idle", action="store_true",
                    help="wall-clock profiling: bench/block_work.py (~10,000 blocks/s) traced with --idle, then the "
                         "sched_switch program's cost to an untraced process (bench/pingpong.c)")
    ap.add_argument("--spin", type=int, default=8000, help="--idle: loop iterations per unit of block_work.py")
    ap.add_argument("--switch-pairs", type=int, default=5, help="--idle: pairs of ping-pong runs; default 5, 0 to skip")
    ap.add_argument("--switch-seconds", type=float, default=3.0, help="--idle: seconds per ping-pong run; default 3")
    ap.add_argument("--no-bpf-stats", action="store_true",
                    help="time the rounds with BPF run-time statistics off, as users run (they add two clock reads "
                         "to every program run); the BPF figures are then missing")
    ap.add_argument("--extra-args", default="", help="more tracer options, e.g. '--idle-walks 0'")
    args = ap.parse_args()
    global PROG_NAME
    args.workload, args.workload_args, args.tracer_args = "cpu_work.py", [], []
    if args.idle:
        args.workload, args.workload_args, args.tracer_args = "block_work.py", ["--spin", str(args.spin)], ["--idle"]
        PROG_NAME = "idle_switch"
        if args.rates == "99,999":
            args.rates = "99"
        args.gap_pairs = 0   # the interruption probe measures the timer's samples, not blocks
    args.tracer_args += args.extra_args.split()
    rates = [int(x) for x in args.rates.split(",") if x]
    if os.geteuid() != 0:
        die("needs root (BPF, perf events, kernel.bpf_stats_enabled)")
    if not os.access(args.tracer, os.X_OK):
        die("no tracer at %s: run make" % args.tracer)
    if not shutil.which("bpftool"):
        die("bpftool not found")
    pyver = subprocess.run([args.python, "-c", "import sys; print(sys.version.split()[0])"],
                           capture_output=True, text=True).stdout.strip()
    if not pyver:
        die("cannot run %s" % args.python)

    configs = [0] + rates
    order = []
    for rnd in range(args.rounds):
        k = rnd % len(configs)
        order += [(rnd, c) for c in configs[k:] + configs[:k]]

    outdir = args.keep or tempfile.mkdtemp(prefix="flame_overhead.")
    os.makedirs(outdir, exist_ok=True)
    # Run a private copy: a concurrent `make` must not swap the binary in the middle of the run.
    with open(args.tracer, "rb") as f:
        tracer_sha = hashlib.sha256(f.read()).hexdigest()[:16]
    tracer_copy = os.path.join(tempfile.mkdtemp(prefix="flame_overhead_bin."), "pytrace-bpf")
    shutil.copy2(args.tracer, tracer_copy)
    tracer_src, args.tracer = args.tracer, tracer_copy
    git = subprocess.run(["git", "-C", os.path.dirname(os.path.dirname(os.path.abspath(tracer_src))),
                          "describe", "--always", "--dirty"], capture_output=True, text=True).stdout.strip()
    live, runs = [], []
    meta = {"date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
            "host": platform.node(), "kernel": platform.release(), "cpus": os.cpu_count(),
            "python": args.python, "python_version": pyver, "tracer": tracer_src, "tracer_sha256": tracer_sha,
            "tracer_mtime": datetime.datetime.fromtimestamp(os.path.getmtime(tracer_src)).astimezone()
            .isoformat(timespec="seconds"), "git": git,
            "rounds": args.rounds, "seconds": args.seconds, "settle": args.settle, "rates": rates,
            "pin": args.pin, "nice": args.nice, "loadavg_before": loadavg(),
            "idle": args.idle, "workload": args.workload, "workload_args": args.workload_args,
            "tracer_args": args.tracer_args}
    with open(BPF_STATS) as f:
        old_stats = f.read().strip()
    stats_fd = None
    stats = {}
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    meta["irq_time_accounting"] = irq_time_accounting()
    cpu0, procs0, t0 = cpu_times(), proc_cpu(), time.monotonic()
    try:
        with open(BPF_STATS, "w") as f:
            f.write("0" if args.no_bpf_stats else "1")
        stats_fd = None if args.no_bpf_stats else hold_bpf_stats()
        meta["bpf_stats"] = not args.no_bpf_stats
        meta["bpf_stats_fd"] = stats_fd is not None
        for i, (rnd, rate) in enumerate(order):
            r = one_run(args, rate, outdir, i, live)
            r["round"] = rnd
            runs.append(r)
            if not args.quiet:
                extra = ""
                if rate:
                    extra = "  samples %s lost %s  collector %.2f%% (window %s%%)  bpf %s us/sample" % (
                        r.get("samples"), r.get("lost"), r["collector_pct"],
                        fmt(r.get("window_collector_pct"), ".2f"), fmt(r.get("bpf_us_per_sample"), ".2f"))
                print("round %d/%d  %-8s  %6.0f units/s  %6.0f units/cpu-s%s" % (
                    rnd + 1, args.rounds, r["config"], r["throughput"], r["units_per_cpu_s"], extra),
                    file=sys.stderr)
        gap_runs = []
        for i in range(args.gap_pairs):
            for rate in (0, max(rates)):
                r = one_run(args, rate, outdir, len(order) + len(gap_runs), live, gaps=True)
                gap_runs.append(r)
                if not args.quiet:
                    print("gaps %d/%d  %-8s  %d interruptions, %.1f ms%s" % (
                        i + 1, args.gap_pairs, r["config"], r["gaps"], r["gap_ns"] / 1e6,
                        "  samples %s  bpf %s us/sample" % (r.get("samples"), fmt(r.get("bpf_us_per_sample"), ".2f"))
                        if rate else ""), file=sys.stderr)
        stats = {"fd": stats_fd}
        stats_fd = None  # switch_cost turns stats off and on: stats["fd"] holds the fd now
        switch = switch_cost(args, live, stats) if args.idle and args.switch_pairs else None
    except (KeyboardInterrupt, RuntimeError) as e:
        for p in live:
            p.kill()
        die(str(e) or "interrupted")
    finally:
        with open(BPF_STATS, "w") as f:
            f.write(old_stats)
        if stats_fd is not None:
            os.close(stats_fd)
        if stats.get("fd") is not None:
            os.close(stats["fd"])
        if not args.keep:
            shutil.rmtree(outdir, ignore_errors=True)
        shutil.rmtree(os.path.dirname(tracer_copy), ignore_errors=True)
    cpu1 = cpu_times()
    meta["loadavg_after"] = loadavg()
    meta["wall_s"] = time.monotonic() - t0
    meta["other_busy"] = other_busy(procs0, proc_cpu(), meta["wall_s"])
    meta["steal_pct"] = 100.0 * (cpu1[1] - cpu0[1]) / max(1, cpu1[2] - cpu0[2])
    meta["busy_pct"] = 100.0 * (cpu1[0] - cpu0[0]) / max(1, cpu1[2] - cpu0[2])

    pair_ratios(runs)
    summary = summarize(runs, rates)
    summary["interruptions"] = gap_summary(gap_runs)
    summary["irq_time_accounting"] = meta["irq_time_accounting"]
    summary["goal"] = judge(summary)
    if args.idle:
        summary["blocks_per_s_untraced"] = median_of([r for r in runs if not r["rate"]], "blocks_per_s")
        summary["blocks_per_s_traced"] = median_of([r for r in runs if r["rate"]], "blocks_per_s")
        summary["idle_switch_ns_per_run"] = median_of([r for r in runs if r["rate"]], "bpf_ns_per_run")
        summary["switch_cost"] = switch
    report(meta, summary, rates)
    if args.idle:
        print("\n  --idle: the traced runs ran with %s; the workload blocked %s times/s untraced, %s traced;"
              "\n  idle_switch (the sched_switch program, host-wide: every switch of every task) %s ns per call"
              % (" ".join(args.tracer_args), fmt(summary["blocks_per_s_untraced"], ".0f"),
                 fmt(summary["blocks_per_s_traced"], ".0f"), fmt(summary["idle_switch_ns_per_run"], ".0f")))
        if switch:
            report_switch(switch)
    if args.json:
        line = json.dumps({"benchmark": "flame_overhead", "meta": meta, "summary": summary, "runs": runs,
                           "gap_runs": gap_runs},
                          sort_keys=True)
        if args.json == "-":
            print(line)
        else:
            with open(args.json, "w") as f:
                f.write(line + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
