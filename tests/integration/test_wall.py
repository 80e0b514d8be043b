#!/usr/bin/python3
"""Integration tests of --idle (wall-clock profiles: off-CPU time of blocked threads, weighted
by the time between the scheduler's switch-out and switch-in) and --gil (only samples of the
thread holding the GIL), on every interpreter the sampling suite runs on (Debian's python3,
each pyenv version, Debian unstable's 3.13-3.15 in the sid root).

Per interpreter:
  - wall.py under --idle: the main thread's wall time (about the trace's duration) is > 95% in
    its sleep line, under an [off-cpu: sleep] leaf; a list comprehension split across lines
    around a sleep shows the sleep's line (in <listcomp> up to 3.11, inlined from 3.12); the SVG
    says wall-clock and its tooltips give times, speedscope and JSON say microseconds and wall;
    a thread that blocks thousands of times a second reading a pipe (above --idle-walks'
    default rate: 1 in k of its blocks walked, counted k times) still adds up to its wall time,
    over 90% of it in its read line, and the JSON counts the blocks left unwalked;
  - gil_mix.py (two threads hashing with the GIL released, the main thread spinning in Python)
    traced twice at once, with and without --gil: --gil leaves the hashing threads out, keeps
    the spinner, and totals at most about one core.
Then, once: a thread blocked on SELECT pg_sleep(0.2) through psycopg2 (own PostgreSQL) shows
that time, and the option checks (--gil with --idle refused).

Run as root from the repository: tests/integration/test_wall.py [-k SUBSTRING] [-v]
Ends with a line "N passed, N failed"; exits non-zero if anything failed.
"""
import collections
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import xml.dom.minidom

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import TOOL, WORKLOADS, find_interpreters, log, marker_lines, record  # noqa: E402
from test_sampling import Workload, fname, parse_frame, read_folded, run_tool  # noqa: E402

DURATION = 2.0
RATE = 99


def thread_of(frames):
    """'[thread python3 tid=N main]' of a stack under --threads."""
    return frames[0] if frames[0].startswith("[thread ") else None


def check_idle(it, tmp):
    tag = it.label + " --idle"
    marks = marker_lines(os.path.join(WORKLOADS, "wall.py"))
    folded, svg, speed, js = (os.path.join(tmp, it.label + "-idle" + ext)
                              for ext in (".folded", ".svg", ".json", ".report.json"))
    w = Workload(it, "wall.py")
    try:
        time.sleep(0.2)
        out = run_tool(["--pid", str(w.pid), "--duration", str(DURATION), "--idle", "--threads", "--no-sql",
                        "--no-http", "--collapsed", folded, "--flame", svg, "--speedscope", speed, "--json", js])
    finally:
        w.stop()
    if not record(tag + ": tool exits 0", out.returncode == 0, out.stderr[-2000:]):
        return
    # the threads' own unflushed and still-open blocked time is read at the end (iter/task)
    record(tag + ": the threads' own blocked time was read at the end", "--idle: " not in out.stderr,
           out.stderr[-1000:])
    stacks = read_folded(folded)
    per_thread = collections.Counter()
    for f, c in stacks:
        per_thread[thread_of(f)] += c
    main = [(f, c) for f, c in stacks if any(fname(x) == "sleeper" for x in f)]
    n_main = sum(c for _, c in main)
    in_sleep = sum(c for f, c in main if f[-1] == "[off-cpu: sleep]" and fname(f[-2]) == "sleeper" and
                   parse_frame(f[-2])[2] == marks["sleep_line"])
    # wall time: the main thread's stacks add up to about the trace's duration (microseconds)
    record(tag + ": the sleeping thread's weights add up to its wall time",
           0.8 * DURATION * 1e6 <= n_main <= 1.1 * DURATION * 1e6,
           "%.3f s for a %.1f s trace; per thread %s" % (n_main / 1e6, DURATION, dict(per_thread)))
    record(tag + ": > 95%% of the sleeping thread's wall time in its sleep line (%d)" % marks["sleep_line"],
           n_main and in_sleep > 0.95 * n_main,
           "%d of %d us; stacks %s" % (in_sleep, n_main, sorted(main, key=lambda x: -x[1])[:4]))

    # sampled blocks: the reader blocks ~5,000+ times a second, k-fold weights keep its total
    rd = [(f, c) for f, c in stacks if any(fname(x) == "reader" for x in f)]
    n_rd = sum(c for _, c in rd)
    in_read = sum(c for f, c in rd if f[-1] == "[off-cpu: io]" and fname(f[-2]) == "reader" and
                  parse_frame(f[-2])[2] == marks["pipe_read"])
    try:
        with open(js) as f:
            sam = json.load(f)["samples"]
    except (OSError, ValueError, KeyError):
        sam = {}
    record(tag + ": a thread blocking thousands of times a second: sampled walks, weights add up to its wall time, "
           "> 90%% in its read line (%d)" % marks["pipe_read"],
           sam.get("offcpu_blocks_unwalked", 0) > 0 and 0.8 * DURATION * 1e6 <= n_rd <= 1.15 * DURATION * 1e6 and
           in_read > 0.9 * n_rd,
           "%.3f s for a %.1f s trace, %d us in the read line; blocks walked %s, unwalked %s; stacks %s" %
           (n_rd / 1e6, DURATION, in_read, sam.get("offcpu_blocks"), sam.get("offcpu_blocks_unwalked"),
            sorted(rd, key=lambda x: -x[1])[:3]))

    comp = [(f, c) for f, c in stacks if any(fname(x) == "comprehension" for x in f)]
    n_comp = sum(c for _, c in comp)
    good = 0
    seen = collections.Counter()
    for f, c in comp:
        py = [parse_frame(x) for x in f if not x.startswith("[")]
        if not py:
            continue
        leaf = py[-1]
        seen[(leaf[0], leaf[2], f[-1])] += c
        outer = [p for p in py if p[0] == "comprehension"]
        inner_ok = leaf[2] == marks["comp_sleep"] and (leaf[0].endswith("<listcomp>") if it.version <= (3, 11)
                                                      else leaf[0] == "comprehension")
        outer_ok = outer and marks["comp_open"] <= outer[0][2] <= marks["comp_for"]
        # asleep there, or on the CPU at that line (entering or leaving the sleep: on a loaded
        # host a woken thread may run its line when a sample lands); what is checked is the line
        if (f[-1] == "[off-cpu: sleep]" or not f[-1].startswith("[")) and inner_ok and outer_ok:
            good += c
    record(tag + ": list comprehension across lines: the sleep's line %d%s" %
           (marks["comp_sleep"], " in <listcomp>" if it.version <= (3, 11) else " (inlined)"),
           n_comp > 0.5 * DURATION * 1e6 and good > 0.95 * n_comp,
           "%d of %d us; seen %s" % (good, n_comp, seen.most_common(4)))

    try:
        doc = xml.dom.minidom.parse(svg)
        texts = {t.getAttribute("id"): t.firstChild.data for t in doc.getElementsByTagName("text")
                 if t.getAttribute("id") and t.firstChild}
        titles = [t.firstChild.data for t in doc.getElementsByTagName("title") if t.firstChild]
        timed = [t for t in titles if t.rstrip(")").rsplit("(", 1)[-1].split(",")[0].split()[-1] in ("us", "ms", "s")]
        record(tag + ": SVG says wall-clock and its tooltips give time",
               "wall-clock" in texts.get("title", "") and "wall-clock" in texts.get("subtitle", "") and
               titles and len(timed) == len(titles) and not any("samples" in t for t in titles),
               "title %r, subtitle %r, tooltips %s" % (texts.get("title"), texts.get("subtitle"), titles[:4]))
    except Exception as e:  # noqa: BLE001 - report whatever the parser says
        record(tag + ": SVG says wall-clock and its tooltips give time", False, repr(e))
    try:
        with open(speed) as f:
            sp = json.load(f)
        # with --threads, one profile per thread (speedscope__write_threads)
        units = {prof["unit"] for prof in sp["profiles"]}
        got = sum(sum(prof["weights"]) for prof in sp["profiles"])
        total = sum(c for _, c in stacks)
        record(tag + ": speedscope in microseconds, same total", units == {"microseconds"} and got == total,
               "units %s, %d vs %d" % (sorted(units), got, total))
        with open(js) as f:
            rep = json.load(f)
        p = rep["profile"]
        record(tag + ": JSON profile says wall and us", p.get("mode") == "wall" and p.get("unit") == "us" and
               p.get("total") == total and rep["samples"].get("offcpu_us", 0) > 0,
               "profile %s, samples %s" % ({k: p.get(k) for k in ("mode", "unit", "total")}, rep["samples"]))
    except Exception as e:  # noqa: BLE001
        record(tag + ": speedscope and JSON", False, repr(e))


def check_gil(it, tmp):
    tag = it.label + " --gil"
    marks = marker_lines(os.path.join(WORKLOADS, "gil_mix.py"))
    plain, gil = os.path.join(tmp, it.label + "-all.folded"), os.path.join(tmp, it.label + "-gil.folded")
    w = Workload(it, "gil_mix.py")
    try:
        time.sleep(0.3)
        # both at once, on the same threads at the same time
        procs = [subprocess.Popen([TOOL, "--pid", str(w.pid), "--duration", str(DURATION), "--no-sql", "--no-http",
                                   "-F", str(RATE), "--collapsed", path] + extra, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True)
                 for path, extra in ((plain, []), (gil, ["--gil"]))]
        outs = [p.communicate(timeout=60) for p in procs]
    finally:
        w.stop()
    for p, (o, e) in zip(procs, outs):
        harness.check_sanitizer("pytrace-bpf --gil", p.returncode, e)
    if not record(tag + ": both tools exit 0", all(p.returncode == 0 for p in procs),
                  " | ".join(e[-600:] for _, e in outs)):
        return

    def split(path):
        hashing = spin = other = 0
        for f, c in read_folded(path):
            names = [fname(x) for x in f]
            if "hasher" in names:
                hashing += c
            elif "spin" in names:
                spin += c
            else:
                other += c
        return hashing, spin, other

    h0, s0, o0 = split(plain)
    h1, s1, o1 = split(gil)
    detail = "without --gil: hash %d, spin %d, other %d; with: hash %d, spin %d, other %d; stderr %s" % (
        h0, s0, o0, h1, s1, o1, outs[1][1][-300:])
    record(tag + ": without --gil the GIL-free hashing threads are sampled", h0 >= 20, detail)
    record(tag + ": --gil leaves out the threads not holding the GIL", h1 <= max(3, 0.1 * h0), detail)
    record(tag + ": --gil keeps the holder (the spinning thread) and totals at most about one core",
           s1 >= 20 and s1 >= 0.95 * (h1 + s1 + o1) and h1 + s1 + o1 <= 1.15 * RATE * DURATION and
           h0 + s0 + o0 > h1 + s1 + o1, detail)
    m = [ln for ln in outs[1][1].splitlines() if "not holding the GIL left out" in ln]
    record(tag + ": the summary counts what --gil left out", bool(m) and int(m[0].split()[1]) >= h0 // 2,
           "%s; %s" % (m, detail))
    _ = marks


def check_sql_wait(tmp):
    """A thread blocked on SELECT pg_sleep(0.2) shows that time under --idle."""
    tag = "--idle SQL wait"
    cluster = harness.Cluster(prefix="pytrace-wall-pg-")
    folded = os.path.join(tmp, "sqlwait.folded")
    script = os.path.join(tmp, "sqlwait.py")
    with open(script, "w") as f:
        f.write("import os, psycopg2\n"
                "conn = psycopg2.connect('')\n"
                "cur = conn.cursor()\n"
                "print('ready', os.getpid(), flush=True)\n"
                "def wait_db():\n"
                "    while True:\n"
                "        cur.execute('SELECT pg_sleep(0.2)')  # the wait\n"
                "        cur.fetchall()\n"
                "wait_db()\n")
    try:
        cluster.start()
        env = dict(os.environ, **cluster.client_env())
        p = subprocess.Popen(["/usr/bin/python3", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True, env=env)
        try:
            line = p.stdout.readline().split()
            if not line or line[0] != "ready":
                record(tag + ": workload starts", False, p.stderr.read()[-500:] if p.poll() is not None else "")
                return
            out = run_tool(["--pid", line[1], "--duration", str(DURATION), "--idle", "--no-http",
                            "--collapsed", folded])
        finally:
            p.kill()
            p.wait()
            p.stdout.close()
            p.stderr.close()
    finally:
        cluster.stop()
    if not record(tag + ": tool exits 0", out.returncode == 0, out.stderr[-1500:]):
        return
    stacks = read_folded(folded)
    total = sum(c for _, c in stacks)
    sql = sum(c for f, c in stacks if f[-1].startswith("[sql] SELECT pg_sleep") and
              any(fname(x) == "wait_db" for x in f))
    offcpu_sock = sum(c for f, c in stacks if f[-1] in ("[off-cpu: socket]", "[off-cpu: sql]"))
    record(tag + ": the statement's time is an [sql] leaf under its caller, > 80% of wall time",
           sql > 0.8 * total and sql > 0.7 * DURATION * 1e6,
           "[sql] %d us, socket waits %d us, of %d us; stacks %s" %
           (sql, offcpu_sock, total, sorted(stacks, key=lambda x: -x[1])[:4]))
    record(tag + ": its wait is not counted twice (no socket wait beside it)", offcpu_sock < 0.05 * total,
           "socket waits %d of %d us" % (offcpu_sock, total))


def check_options():
    out = subprocess.run([TOOL, "--pid", "1", "--idle", "--gil"], capture_output=True, text=True)
    record("--gil with --idle refused", out.returncode != 0 and "choose one" in out.stderr, out.stderr[-300:])


def main():
    args, status = harness.start("run only interpreters whose label contains this (or one of these, comma-separated)")
    if status is not None:
        return status
    interps = [i for i in find_interpreters() if any(k in i.label for k in args.k.split(","))]
    log("Interpreters: " + ", ".join("%s (%d.%d)" % (i.label, *i.version) for i in interps))
    tmp = tempfile.mkdtemp(prefix="pytrace-wall-")
    ran = []
    for it in interps:
        try:
            check_idle(it, tmp)
            check_gil(it, tmp)
            ran.append(it.label)
        except Exception as e:  # noqa: BLE001 - one interpreter's failure must not hide the rest
            record(it.label + ": ran", False, repr(e))
    if not args.k:
        check_sql_wait(tmp)
        check_options()
    shutil.rmtree(tmp, ignore_errors=True)
    log("Interpreters that ran: " + ", ".join(ran))
    return harness.summary()


if __name__ == "__main__":
    sys.exit(main())
