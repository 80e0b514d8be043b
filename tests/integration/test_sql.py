#!/usr/bin/python3
"""Integration tests of the SQL capability: libpq uprobes in real processes, real drivers, a real
PostgreSQL 15 cluster of our own (harness.Cluster), checked against the workloads' own counts
and latencies and against pg_stat_statements.

Workloads (tests/integration/workloads/sql_*.py):
  sql_psycopg2.py  psycopg2 on /usr/bin/python3 (PQexec, literals inlined, one failing statement)
  sql_psycopg3.py  psycopg 3 on /usr/bin/python3: params, prepare_threshold, pipeline, ClientCursor,
                   AsyncConnection x4 under asyncio; the driver is imported after the tracer started
  sql_ctypes.py    libpq through ctypes on every interpreter: Debian's, pyenv 3.8-3.13, Debian
                   unstable's 3.13/3.14/3.15 in a chroot (scripts/sid-root.sh; TCP to the cluster)
  sql_nolibpq.py   no libpq at all
Also: the slow log (--slow-ms 0), --show-literals, a statement with invalid UTF-8, and a workload that
exits right after its last statement (its call sites must still be resolved). A chroot workload whose
libpq is not found is run again with ChrootAlias, so the rest can still be checked on 3.13-3.15.

Run as root from the repository: tests/integration/test_sql.py [-k SUBSTRING] [-v]
(PYTRACE_BPF=/path/to/pytrace-bpf tests another build of the tool.)
Ends with a line "N passed, N failed"; exits non-zero if anything failed.
"""
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import PGBIN, REPO, TOOL, WORKLOADS, Cluster, find_interpreters, log, marker_lines, record  # noqa: E402,F401

# Durations are printed with 3 decimals; the client's clock reads around the tool's probes.
SLACK_MS = 0.002


def norm_text(q):
    """Compare a tool pattern with pg_stat_statements' text: placeholders ($n, ?) as one token."""
    q = re.sub(r"\$\d+|\?", "?", q)
    q = re.sub(r"\s+", " ", q).strip().rstrip(";").lower()
    # The tool folds VALUES lists (any length) into one pattern: (...). pg_stat_statements does not.
    q = re.sub(r"\bvalues \((?:\s*\?\s*,)*\s*\?\s*\)", "values (...)", q)
    return q


# ---------------------------------------------------------------------------------------------
# Running a workload under the tool

class Spec:
    """One statement pattern of a workload."""

    def __init__(self, key, regex, func, errors=0, in_pgss=True):
        self.key, self.regex, self.func, self.errors, self.in_pgss = key, re.compile(regex, re.I), func, errors, in_pgss


PSYCOPG2 = [
    Spec("pg2_select", r"\bpg2_select\b", "select_loop"),
    Spec("pg2_insert", r"^\s*insert\s+into\s+pg2_items\b", "insert_loop"),
    # A failed statement never reaches pg_stat_statements.
    Spec("pg2_fail", r"\bpg2_nosuchcolumn\b", "fail_once", errors=1, in_pgss=False),
]
PSYCOPG3 = [
    Spec("pg3_plain", r"\bpg3_plain\b", "plain"),
    Spec("pg3_prep", r"\bpg3_prep\b", "prepared"),
    Spec("pg3_pipe", r"\bpg3_pipe\b", "pipelined"),
    Spec("pg3_client", r"\bpg3_client\b", "client_cursor"),
    Spec("pg3_async", r"\bpg3_async\b", "async_worker"),
]
CTYPES = [
    Spec("ct_exec", r"\bct_exec\b", "run_exec"),
    Spec("ct_params", r"\bct_params\b", "run_params"),
    Spec("ct_fail", r"\bct_nosuchtable\b", "run_fail", errors=1, in_pgss=False),
    # Rejected by the server before parsing: invalid byte sequence for encoding "UTF8".
    Spec("ct_badutf8", r"\bct_badutf8\b", "run_badutf8", errors=1, in_pgss=False),
]
# Literal values the workloads put in their statements: never in a report without --show-literals.
LITERALS = ["98765", "secret-", "65432", "lit-canary-4242"]


class Run:
    pass


def libpq_mapped(pid):
    """The libpq path /proc/PID/maps names (seen from here), or None."""
    try:
        with open("/proc/%d/maps" % pid) as f:
            for line in f:
                if "/libpq" in line:
                    return line.split(None, 5)[-1].strip()
    except OSError:
        pass
    return None


def trace(cluster, it, script, tag, tmp, env=None, tool_args=(), tcp=False, timeout=60, tool_env=None):
    """Start the workload, trace it until it exits, collect everything. Returns a Run."""
    r = Run()
    r.tag = tag
    r.script_path = it.workload(script)
    r.marks = marker_lines(os.path.join(WORKLOADS, script))
    r.json_path = os.path.join(tmp, re.sub(r"[^\w.-]+", "_", tag) + ".json")
    cluster.pgss_reset()
    e = dict(os.environ)
    e.update(cluster.client_env(tcp=tcp))
    e.update(env or {})
    e["PYTHONDONTWRITEBYTECODE"] = "1"
    e["PT_GO"] = "stdin"
    proc = subprocess.Popen(it.argv(r.script_path), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=e, cwd="/")
    try:
        line = proc.stdout.readline().split()
        if not line or line[0] != "ready":
            proc.kill()
            raise RuntimeError("workload %s did not start: %s" % (script, proc.stderr.read()[-800:]))
        r.pid = int(line[1])
        r.maps_libpq = None
        tool = harness.Tracer(["--pid", str(r.pid), "--duration", "30", "--json", r.json_path, "--sql-source", "libpq"]
                              + list(tool_args),
                              env=dict(os.environ, **(tool_env or {})))
        tool.wait_tracing(timeout)
        try:
            proc.stdin.write("go\n")
            proc.stdin.close()
        except BrokenPipeError:
            pass
        proc.stdin = None  # communicate() below must not touch it again
        deadline = time.time() + timeout
        while tool.proc.poll() is None and time.time() < deadline:
            if r.maps_libpq is None:
                r.maps_libpq = libpq_mapped(r.pid)
            time.sleep(0.2)
        rc, tool_out, tool_err = tool.finish(0)
        r.tool = subprocess.CompletedProcess(tool.proc.args, rc, tool_out, tool_err)
        r.tool_stderr = tool_err
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    r.workload_rc = proc.returncode
    r.workload_err = err
    r.workload_out = out
    r.client = None
    for l in out.splitlines():
        if l.startswith("{"):
            r.client = json.loads(l)["patterns"]
    r.pgss = cluster.pgss()
    r.report = None
    r.report_error = None
    try:
        with open(r.json_path, "rb") as f:
            r.report = json.loads(f.read().decode("utf-8"))  # strict: a JSON text is UTF-8
    except Exception as ex:  # noqa: BLE001 - reported as a check
        r.report_error = repr(ex)
    return r


def check_run_basics(r, orphans_ok=0):
    """Exit status, JSON, capture counters. Returns False when nothing else can be checked.
    orphans_ok: results whose statement the run is known to miss."""
    ok = record(r.tag + ": tool exits 0", r.tool.returncode == 0, r.tool_stderr[-1500:])
    record(r.tag + ": workload ran", r.workload_rc == 0 and r.client is not None,
           "exit %s: %s" % (r.workload_rc, r.workload_err[-800:]))
    if not record(r.tag + ": JSON report parses (strict UTF-8)", r.report is not None, r.report_error or ""):
        return False
    cap = r.report.get("sql_capture", {})
    record(r.tag + ": no lost events, no results without a statement, none unfinished",
           cap.get("lost_events") == 0 and cap.get("results_without_statement", -1) <= orphans_ok and
           cap.get("unfinished_statements") == 0, json.dumps(cap))
    return ok and r.client is not None


def find_query(r, spec):
    hits = [q for q in r.report.get("queries", []) if spec.regex.search(q.get("pattern", ""))]
    return hits


def check_patterns(r, specs, show_literals=False):
    marks = r.marks
    for spec in specs:
        name = "%s: %s" % (r.tag, spec.key)
        hits = find_query(r, spec)
        client = r.client.get(spec.key)
        if not record(name + ": one pattern in the report", len(hits) == 1 and client is not None,
                      "%d patterns match %s: %s" % (len(hits), spec.regex.pattern,
                                                   [h.get("pattern") for h in hits])):
            continue
        q = hits[0]
        pg = [(t, c) for t, c in r.pgss if spec.regex.search(t)]
        pg_calls = sum(c for _, c in pg)
        if spec.in_pgss:
            ok = q["count"] == client["count"] == pg_calls
            detail = "tool %d, workload %d, pg_stat_statements %d (%s)" % (
                q["count"], client["count"], pg_calls, [t for t, _ in pg])
        else:
            ok = q["count"] == client["count"]
            detail = "tool %d, workload %d (failed: not in pg_stat_statements, which has %d)" % (
                q["count"], client["count"], pg_calls)
        record(name + ": count = workload's = pg_stat_statements calls", ok, detail)
        if spec.in_pgss and len(pg) == 1:
            record(name + ": pattern matches pg_stat_statements' normalized text",
                   norm_text(q["pattern"]) == norm_text(pg[0][0]),
                   "tool %r vs pg_stat_statements %r" % (q["pattern"], pg[0][0]))
        record(name + ": errors = %d" % spec.errors, q["errors"] == spec.errors == client["errors"],
               "tool %d, workload %d" % (q["errors"], client["errors"]))
        record(name + ": latency > 0, total and max within the client's",
               q["p50_ms"] > 0 and q["max_ms"] > 0 and q["total_ms"] <= client["total_ms"] + SLACK_MS and
               q["max_ms"] <= client["max_ms"] + SLACK_MS,
               "tool p50 %.3f max %.3f total %.3f ms; client max %.3f total %.3f ms" % (
                   q["p50_ms"], q["max_ms"], q["total_ms"], client["max_ms"], client["total_ms"]))
        want = "%s (%s:%d)" % (spec.func, r.script_path, marks[spec.key])
        sites = q.get("call_sites", [])
        record(name + ": call site is the workload's line",
               len(sites) == 1 and sites[0]["frame"] == want and sites[0]["count"] == q["count"],
               "want %r x%d, got %s" % (want, q["count"], sites))
    examples = [q.get("example", "") for q in r.report.get("queries", [])]
    leaked = [e for e in examples if any(l in e for l in LITERALS)]
    if show_literals:
        ex = [q.get("example", "") for q in find_query(r, CTYPES[0])]
        record(r.tag + ": --show-literals keeps the literal in the example",
               bool(ex) and "'lit-canary-4242'" in ex[0], "examples %s" % ex)
    else:
        record(r.tag + ": examples carry no literal values", not leaked, "leaked: %s" % leaked)


# ---------------------------------------------------------------------------------------------
# The cases

def case_psycopg2(cluster, it, tmp):
    slow = os.path.join(tmp, "psycopg2-slow.jsonl")
    r = trace(cluster, it, "sql_psycopg2.py", "psycopg2/" + it.label, tmp,
              tool_args=["--slow-ms", "0", "--slow-log", slow])
    if not check_run_basics(r):
        return
    check_patterns(r, PSYCOPG2)
    # The slow log: one JSON line per statement, no literal text without --show-literals.
    try:
        with open(slow, "rb") as f:
            lines = [json.loads(l.decode("utf-8")) for l in f.read().splitlines() if l.strip()]
    except Exception as ex:  # noqa: BLE001
        record(r.tag + ": slow log is JSON lines", False, repr(ex))
        return
    n = r.report["sql"]["statements"]
    sel = [l for l in lines if PSYCOPG2[0].regex.search(l.get("pattern", ""))]
    want_site = "select_loop (%s:%d)" % (r.script_path, r.marks["pg2_select"])
    record(r.tag + ": slow log (--slow-ms 0) has one line per statement",
           len(lines) == n and len(sel) == r.client["pg2_select"]["count"],
           "%d lines, %d statements in the report, %d pg2_select lines" % (len(lines), n, len(sel)))
    record(r.tag + ": slow log lines have duration, pattern, call site and stack, no text",
           all("duration_ms" in l and "stack" in l and "text" not in l for l in lines) and
           all(l.get("call_site") == want_site and l["stack"] and l["stack"][-1] == want_site for l in sel),
           "first pg2_select line: %s" % (sel[:1],))


def case_exec_probes(cluster, it, tmp):
    """--libpq-probes=exec: every psycopg2 statement from PQexec*'s entry and return alone."""
    r = trace(cluster, it, "sql_psycopg2.py", "psycopg2-exec-probes/" + it.label, tmp,
              tool_args=["--libpq-probes=exec"])
    if not check_run_basics(r):
        return
    cap = r.report["sql_capture"]
    record(r.tag + ": statements came from the exec probes (no move back)",
           cap.get("probes") == "exec" and cap.get("moves_to_send_probes") == 0, json.dumps(cap))
    check_patterns(r, PSYCOPG2)


SWITCH = [Spec("sw_sync", r"\bsw_sync\b", "sync_loop"), Spec("sw_async", r"\bsw_async\b", "async_loop")]


def kernel_has_uprobe_multi():
    """BPF_TRACE_UPROBE_MULTI links came with Linux 6.6."""
    m = re.match(r"(\d+)\.(\d+)", os.uname().release)
    return bool(m) and (int(m.group(1)), int(m.group(2))) >= (6, 6)


def case_probe_switch(cluster, it, tmp, perf_events=False):
    """auto: PQexec-only psycopg2 moves to the exec probes mid-run without losing a statement,
    and back to the send probes when it starts using the asynchronous API. Probes are attached
    as uprobe_multi links where the kernel has them; perf_events forces the fallback (one perf
    event per probe) that older kernels get, through the same moves."""
    tag = "psycopg2-probe-switch%s/%s" % ("-perf-events" if perf_events else "", it.label)
    r = trace(cluster, it, "sql_switch.py", tag, tmp, tool_args=["-v"],
              tool_env={"PYTRACE_UPROBES": "perf"} if perf_events else None)
    # The warm-up statement goes out before the first asynchronous call is seen: its result may
    # then arrive with nothing to pair it with, at most one per such call.
    cap = (r.report or {}).get("sql_capture", {})
    if not check_run_basics(r, orphans_ok=cap.get("async_calls_on_exec_probes", 0)):
        return
    record(r.tag + ": moved to the exec probes once and back once, after asynchronous calls",
           cap.get("probes") == "auto" and cap.get("moves_to_exec_probes") == 1 and
           cap.get("moves_to_send_probes") == 1 and cap.get("async_calls_on_exec_probes", 0) >= 1,
           json.dumps(cap))
    record(r.tag + ": the move back is reported", "asynchronous libpq calls came while only PQexec* was probed"
           in r.tool_stderr, r.tool_stderr[-800:])
    record(r.tag + ": settled on the send probes once the exec probes are gone",
           re.search(r"now from the send probes\n(.*\n)*.*from the send probes for good", r.tool_stderr),
           r.tool_stderr[-800:])
    want = "perf events" if perf_events or not kernel_has_uprobe_multi() else "uprobe_multi links"
    record(r.tag + ": probes attached as " + want, cap.get("attached_as") == want,
           "kernel %s: %s" % (os.uname().release, json.dumps(cap)))
    check_patterns(r, SWITCH)


def case_exit_race(cluster, it, tmp):
    """The workload exits right after its last statement: stacks must still be resolved."""
    r = trace(cluster, it, "sql_psycopg2.py", "psycopg2-exits-at-once/" + it.label, tmp,
              env={"PT_LINGER": "0", "PT_SELECTS": "20", "PT_INSERTS": "5"})
    if not check_run_basics(r):
        return
    bad = {}
    for spec in PSYCOPG2:
        for q in find_query(r, spec):
            want = "%s (%s:%d)" % (spec.func, r.script_path, r.marks[spec.key])
            if [s["frame"] for s in q.get("call_sites", [])] != [want]:
                bad[spec.key] = q.get("call_sites")
    record(r.tag + ": call sites of statements made just before the process exits", not bad,
           "wrong or missing call sites: %s" % bad)


def case_sql_in_flame(cluster, it, tmp):
    """--sql-in-flame: each pattern's time as an [sql] leaf under the line that sent it."""
    folded = os.path.join(tmp, "sql-in-flame.folded")
    r = trace(cluster, it, "sql_psycopg2.py", "sql-in-flame/" + it.label, tmp,
              tool_args=["--sql-in-flame", "--collapsed", folded])
    if not check_run_basics(r):
        return
    spec = PSYCOPG2[0]
    q = find_query(r, spec)
    leaf_us = 0
    parent_ok = True
    want = "%s (%s:%d)" % (spec.func, r.script_path, r.marks[spec.key])
    with open(folded) as f:
        for line in f:
            frames, _, count = line.rstrip("\n").rpartition(" ")
            frames = frames.split(";")
            if frames[-1] == "[sql] " + (q[0]["pattern"] if q else "?"):
                leaf_us += int(count)
                parent_ok = parent_ok and frames[-2] == want
    total_us = q[0]["total_ms"] * 1000 if q else 0
    record(r.tag + ": [sql] leaves under the sending line, weighted by the statements' time",
           q and parent_ok and leaf_us > 0 and abs(leaf_us - total_us) <= q[0]["count"] + 1,
           "leaf %d us vs total %.0f us over %d statements, parent ok %s" %
           (leaf_us, total_us, q[0]["count"] if q else 0, parent_ok))


def case_psycopg3(cluster, it, tmp, late=False, perf_events=False):
    """psycopg 3 (plain, prepared, pipeline, ClientCursor, async), imported after the tracer
    started. late, with uprobe_multi links: its first statement goes out as soon as the import
    returns, with no pause: the system's libpq must have been probed ahead, armed by the kernel
    as the import maps it, for every statement to be counted. late without them (kernels before
    6.6, or perf_events forcing the fallback here): nothing is probed ahead and no dynamic linker
    is watched, since each perf event would cost the process at every context switch; the 0.5 s
    rescan must find libpq before the first statement, 1.5 s after the import."""
    multi = kernel_has_uprobe_multi() and not perf_events
    tag = ("psycopg3-late-import%s/" % ("-perf-events" if perf_events else "") if late else "psycopg3/") + it.label
    env = {"PT_LOAD_DELAY": "0" if multi else "1.5"} if late else None
    r = trace(cluster, it, "sql_psycopg3.py", tag, tmp, env=env, tool_args=["-v"] if late else (),
              tool_env={"PYTRACE_UPROBES": "perf"} if perf_events else None)
    if not check_run_basics(r):
        return
    record(r.tag + ": libpq loaded after the tracer started is found",
           r.report["sql_capture"].get("libpq_files", 0) >= 1 and r.report["sql"]["statements"] > 0,
           json.dumps(r.report["sql_capture"]))
    mine = stderr_lines(r, r"pid %d: .*(libpq|dynamic linker)" % r.pid)
    ahead = re.search(r"pid %d: libpq \S+ mapped, probed ahead" % r.pid, r.tool_stderr)
    if late and multi:
        record(r.tag + ": its libpq was probed before it was mapped", ahead, mine)
    elif late:
        record(r.tag + ": perf events: not probed ahead, no dynamic-linker watch, found by the rescan",
               not ahead and "watching its dynamic linker" not in r.tool_stderr and
               "pid %d: probing libpq " % r.pid in r.tool_stderr and
               r.report["sql_capture"].get("attached_as") == "perf events", mine)
    if late:
        record(r.tag + ": settled on the send probes (psycopg 3 calls PQsend* itself)",
               "libpq statements from the send probes for good" in r.tool_stderr, r.tool_stderr[-800:])
    check_patterns(r, PSYCOPG3)


def stderr_lines(r, pattern):
    """The tool's stderr lines that match pattern, for a failure's detail."""
    return "\n".join(l for l in r.tool_stderr.splitlines() if re.search(pattern, l))[-1500:] or \
        r.tool_stderr[-800:]


def case_bundled_late(cluster, it, tmp, perf_events=False):
    """A libpq the tracer has not seen, as a wheel bundles it (libpq-<hash>.so.5), loaded late: no
    probe can be ahead of it. With uprobe_multi links the dynamic-linker watch must find it: its
    first statement goes out 0.25 s after the load, within the 0.5 s rescan period of unwatched
    processes, which a watched one does not get, so every statement counted means the watch had
    it probed in time. Without them (older kernels, or perf_events here) the rescan must: the
    first statement goes out 1.5 s after the load."""
    multi = kernel_has_uprobe_multi() and not perf_events
    tag = "bundled-libpq-late%s/%s" % ("-perf-events" if perf_events else "", it.label)
    system = os.path.realpath("/usr/lib/x86_64-linux-gnu/libpq.so.5")
    wheel = tempfile.mkdtemp(prefix="pytrace-wheel-", dir=tmp)
    copy = os.path.join(wheel, "libpq-5f2a1d0c.so.5.15")
    shutil.copy(system, copy)
    r = trace(cluster, it, "sql_ctypes.py", tag, tmp,
              env={"PT_LIBPQ": copy, "PT_LOAD_DELAY": "0.25" if multi else "1.5"}, tool_args=["-v"],
              tool_env={"PYTRACE_UPROBES": "perf"} if perf_events else None)
    if not check_run_basics(r):
        return
    mine = stderr_lines(r, r"pid %d: .*(libpq|dynamic linker)" % r.pid)
    probed = "pid %d: probing libpq %s " % (r.pid, copy) in r.tool_stderr
    ahead = re.search(r"pid %d: libpq \S+ mapped, probed ahead" % r.pid, r.tool_stderr)
    noticed = re.search(r"pid %d: libpq found [\d.]+ ms after its dynamic linker's last notice" % r.pid,
                        r.tool_stderr)
    if multi:
        record(r.tag + ": found through the dynamic-linker watch, not probed ahead",
               probed and noticed and not ahead, mine)
    else:
        record(r.tag + ": perf events: found by the rescan, with no watch and nothing probed ahead",
               probed and not noticed and not ahead and "watching its dynamic linker" not in r.tool_stderr, mine)
    check_patterns(r, CTYPES)


def case_ctypes(cluster, it, tmp, show_literals=False, suffix=""):
    tag = "ctypes/" + it.label + (" --show-literals" if show_literals else "") + suffix
    r = trace(cluster, it, "sql_ctypes.py", tag, tmp, tcp=bool(it.root),
              tool_args=["--show-literals"] if show_literals else [])
    if not check_run_basics(r):
        return r
    if it.root and not suffix:
        # /proc/PID/maps, read from outside a chroot, names the host's path of the library.
        found = r.report["sql_capture"].get("libpq_files", 0) >= 1
        record(r.tag + ": libpq mapped inside a chroot is probed", found,
               "sql_capture %s; the target maps %s" % (json.dumps(r.report["sql_capture"]), r.maps_libpq))
        if not found:
            return r
    check_patterns(r, CTYPES, show_literals=show_literals)
    record(r.tag + ": the statement with invalid UTF-8 is counted (sql.invalid_utf8 >= 1)",
           r.report["sql"].get("invalid_utf8", 0) >= 1, json.dumps(r.report["sql"]))
    return r


class ChrootAlias:
    """Makes ROOT/<ROOT's host path> lead back to ROOT (a relative symlink), so that
    /proc/PID/root + <host path from /proc/PID/maps> resolves to the right file. A workaround for a
    tracer that prefixes /proc/PID/root to the host paths /proc/PID/maps shows for a chrooted process:
    with it, the rest of the SQL path can still be checked on the chroot's interpreters."""

    def __init__(self, root):
        self.root = root.rstrip("/")
        self.link = None
        self.made = []

    def __enter__(self):
        parts = self.root.strip("/").split("/")
        link = os.path.join(self.root, *parts)
        if os.path.lexists(link):
            return self
        d = self.root
        for p in parts[:-1]:
            d = os.path.join(d, p)
            if not os.path.isdir(d):
                os.mkdir(d)
                self.made.append(d)
        os.symlink("/".join([".."] * (len(parts) - 1)) or ".", link)
        self.link = link
        return self

    def __exit__(self, *exc):
        if self.link:
            os.unlink(self.link)
        for d in reversed(self.made):
            os.rmdir(d)


def case_ctypes_chroot(cluster, it, tmp):
    r = case_ctypes(cluster, it, tmp)
    if r is not None and r.report and r.report["sql_capture"].get("libpq_files", 0) == 0:
        with ChrootAlias(it.root):
            case_ctypes(cluster, it, tmp, suffix=" (with the chroot path workaround)")


def case_ahead_bounds(cluster, it, tmp, perf_events=False):
    """Probes attached ahead stay within their bounds: every consumer on a uprobe costs every hit
    in any process (docs/PERFORMANCE.md), so at most 8 (process, file) pairs at once, each dropped
    once its process has gone its time-to-live (10 s; 2 s here) without mapping the file. As perf
    events (kernels before 6.6, or perf_events here) none at all: each would cost its process at
    every context switch."""
    multi = kernel_has_uprobe_multi() and not perf_events
    tag = "probe-ahead-bounds%s/%s" % ("-perf-events" if perf_events else "", it.label)
    tool_env = {"PYTRACE_AHEAD_TTL_MS": "2000"}
    if perf_events:
        tool_env["PYTRACE_UPROBES"] = "perf"
    r = trace(cluster, it, "sql_nolibpq.py", tag, tmp, env={"PT_KIDS": "10", "PT_SECONDS": "5"},
              tool_args=["-v"], tool_env=tool_env)
    err = r.tool_stderr
    ahead = re.findall(r"pid (\d+): probed 1 libpq file ahead", err)
    refused = re.findall(r"pid (\d+): not probed ahead: 8 slots probed ahead already", err)
    dropped = re.findall(r"pid (\d+): no libpq mapped 2\.0 s after it was probed ahead: probes dropped", err)
    record(r.tag + ": tool exits 0, no statements", r.tool.returncode == 0 and r.report is not None and
           r.report["sql"]["statements"] == 0, err[-800:])
    if not multi:
        watched = re.findall(r"pid (\d+): no libpq yet; watching its dynamic linker", err)
        record(r.tag + ": perf events: no process probed ahead or watched",
               not ahead and not watched and "No libpq in pid" in err,
               "ahead %s, watched %s" % (ahead, watched))
        return
    record(r.tag + ": 8 of the 11 processes probed ahead, the other 3 refused",
           len(set(ahead)) == 8 and len(set(refused)) == 3 and not set(ahead) & set(refused),
           "ahead %s, refused %s" % (ahead, refused))
    record(r.tag + ": each one's probes dropped after its 2 s without libpq",
           sorted(set(dropped)) == sorted(set(ahead)), "ahead %s, dropped %s" % (ahead, dropped))


def case_churn(cluster, it, tmp):
    """A long-running collector keeps room for new processes: the slots of exited ones are freed.
    600 children come and go in about 7 s (one every 10 ms) through a 256-slot table
    (PYTRACE_MAX_PROCS), which a slot held until 1 s after its process exited would leave too
    small by far without the freeing; a child forked after them must still be followed and have
    its libpq probed, and nothing be left unfollowed."""
    tag = "process-churn/" + it.label
    r = trace(cluster, it, "sql_churn.py", tag, tmp, env={"PT_CHILDREN": "600", "PT_GAP_MS": "10"},
              tool_args=["-v"], tool_env={"PYTRACE_MAX_PROCS": "256"})
    m = re.search(r"late child (\d+)", r.workload_out)
    late = int(m.group(1)) if m else -1
    procs = (r.report or {}).get("processes", {})
    record(r.tag + ": tool exits 0, 602 processes traced, none left unfollowed",
           r.tool.returncode == 0 and procs.get("traced") == 602 and procs.get("events_not_followed") == 0,
           "%s; %s" % (json.dumps(procs), r.tool_stderr[-400:]))
    record(r.tag + ": the child forked after the churn has its libpq probed",
           re.search(r"pid %d: (probing libpq|libpq \S+ mapped, probed ahead)" % late, r.tool_stderr),
           "late child %d: %s" % (late, stderr_lines(r, r"pid %d:" % late)))


def case_nolibpq(cluster, it, tmp):
    r = trace(cluster, it, "sql_nolibpq.py", "no-libpq/" + it.label, tmp)
    record(r.tag + ": exit 0 and says there is no libpq",
           r.tool.returncode == 0 and "No libpq" in r.tool_stderr, r.tool_stderr[-800:])
    record(r.tag + ": JSON with zero queries",
           r.report is not None and r.report.get("queries") == [] and r.report["sql"]["statements"] == 0,
           r.report_error or json.dumps(r.report and r.report.get("sql")))


def main():
    args, status = harness.start()
    if status is not None:
        return status
    if not Cluster.installed():
        record("sql: PostgreSQL 15 is installed (%s; scripts/install-deps.sh)" % PGBIN, False)
        return harness.summary()
    t0 = time.time()
    # TCP too: the workloads in the Debian unstable chroot connect over 127.0.0.1.
    cluster = Cluster(prefix="pytrace-sql-", ports=(54340, 54400), tcp=True)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    tmp = tempfile.mkdtemp(prefix="pytrace-sql-out-")
    try:
        cluster.start()
        interps = find_interpreters()
        log("Interpreters: " + ", ".join("%s (%d.%d)" % (i.label, *i.version) for i in interps))
        debian = interps[0]
        cases = [("psycopg2/" + debian.label, lambda: case_psycopg2(cluster, debian, tmp)),
                 ("psycopg3/" + debian.label, lambda: case_psycopg3(cluster, debian, tmp)),
                 ("psycopg3-late-import/" + debian.label, lambda: case_psycopg3(cluster, debian, tmp, late=True)),
                 ("psycopg3-late-import-perf-events/" + debian.label,
                  lambda: case_psycopg3(cluster, debian, tmp, late=True, perf_events=True)),
                 ("bundled-libpq-late/" + debian.label, lambda: case_bundled_late(cluster, debian, tmp)),
                 ("bundled-libpq-late-perf-events/" + debian.label,
                  lambda: case_bundled_late(cluster, debian, tmp, perf_events=True)),
                 ("no-libpq/" + debian.label, lambda: case_nolibpq(cluster, debian, tmp)),
                 ("probe-ahead-bounds/" + debian.label, lambda: case_ahead_bounds(cluster, debian, tmp)),
                 ("probe-ahead-bounds-perf-events/" + debian.label,
                  lambda: case_ahead_bounds(cluster, debian, tmp, perf_events=True)),
                 ("process-churn/" + debian.label, lambda: case_churn(cluster, debian, tmp)),
                 ("psycopg2-exits-at-once/" + debian.label, lambda: case_exit_race(cluster, debian, tmp)),
                 ("psycopg2-exec-probes/" + debian.label, lambda: case_exec_probes(cluster, debian, tmp)),
                 ("psycopg2-probe-switch/" + debian.label, lambda: case_probe_switch(cluster, debian, tmp)),
                 ("psycopg2-probe-switch-perf-events/" + debian.label,
                  lambda: case_probe_switch(cluster, debian, tmp, perf_events=True)),
                 ("sql-in-flame/" + debian.label, lambda: case_sql_in_flame(cluster, debian, tmp)),
                 ("ctypes/%s --show-literals" % debian.label,
                  lambda: case_ctypes(cluster, debian, tmp, show_literals=True))]
        for it in interps:
            fn = case_ctypes_chroot if it.root else case_ctypes
            cases.append(("ctypes/" + it.label, lambda it=it, fn=fn: fn(cluster, it, tmp)))
        for label, fn in cases:
            if args.k not in label:
                continue
            try:
                fn()
            except Exception as e:  # noqa: BLE001 - one case's failure must not hide the rest
                record(label + ": ran", False, repr(e))
    finally:
        cluster.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    log("Took %.0f s" % (time.time() - t0))
    return harness.summary()


if __name__ == "__main__":
    sys.exit(main())
