#!/usr/bin/env python3
"""Load without loss (issue 13): `SELECT 1` through psycopg2 at PT_LOAD_RATE statements/s (default
20,000) for PT_LOAD_SECS s (default 60) from PT_LOAD_PROCS processes (default 4), each with its
own connection over the Unix socket to the suite's own cluster, traced with the default SQL source
(--sql-source auto: the wire protocol). Asserts: the workload kept the rate (at least 97% of
it), no event lost (the wire's ring-buffer losses, its framing, every counter named lost or
dropped in the report), and the tool's statement count equal to pg_stat_statements' calls and to
the driver's, with the tool stopped (SIGSTOP) for PT_LOAD_STALL s (default 1) halfway through:
the ring buffer holds what comes meanwhile. Prints the achieved rate, the tool's CPU and the host's CPU use over the window.
"""
import json
import os
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import Cluster, log, record, summary, start  # noqa: E402

WORKLOAD = os.path.join(harness.WORKLOADS, "sql_load.py")
PY = "/usr/bin/python3"
RATE = float(os.environ.get("PT_LOAD_RATE", "20000"))
SECS = float(os.environ.get("PT_LOAD_SECS", "60"))
PROCS = int(os.environ.get("PT_LOAD_PROCS", "4"))
STALL = float(os.environ.get("PT_LOAD_STALL", "1"))
HZ = os.sysconf("SC_CLK_TCK")


def cpu_of(pid):
    """User and system CPU seconds of a process, from /proc/PID/stat."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) / HZ, int(fields[12]) / HZ


def host_cpu():
    """(busy, total) jiffies of all CPUs, from /proc/stat."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    idle = v[3] + v[4]
    return sum(v) - idle, sum(v)


def losses(report):
    """Every counter of the report whose name says lost or dropped, with its path, if not 0."""
    out = []

    def walk(x, path):
        if isinstance(x, dict):
            for k, v in x.items():
                walk(v, path + "." + k if path else k)
        elif isinstance(x, (int, float)) and not isinstance(x, bool):
            leaf = path.rsplit(".", 1)[-1]
            if ("lost" in leaf or "dropped" in leaf) and x:
                out.append("%s=%s" % (path, x))
    walk(report, "")
    return out


def main():
    args, rc = start()
    if rc is not None:
        return rc
    tmp = tempfile.mkdtemp(prefix="pytrace-load-")
    cluster = Cluster(prefix="pytrace-pg-load-", ports=(54560, 54600))
    cluster.start()
    e = dict(os.environ, **cluster.client_env())
    e["PYTHONDONTWRITEBYTECODE"] = "1"
    e["PT_GO"] = "stdin"
    json_path = os.path.join(tmp, "load.json")
    proc = subprocess.Popen([PY, WORKLOAD, str(PROCS), str(RATE), str(SECS)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=e, cwd="/")
    tool = None
    try:
        line = proc.stdout.readline().split()
        if not line or line[0] != "ready":
            proc.kill()
            record("load: workload connected", False, proc.stderr.read()[-800:])
            return summary()
        pid = int(line[1])
        cluster.pgss_reset()  # after the children connected
        tool = harness.Tracer(["--pid", str(pid), "--no-samples", "--json", json_path])
        if not record("load: tracing started", tool.wait_tracing(60) and tool.proc.poll() is None,
                      tool.stderr()[-800:]):
            return summary()
        t0, h0 = time.monotonic(), host_cpu()
        c0 = cpu_of(tool.pid)
        proc.stdin.write("go\n")
        proc.stdin.close()
        proc.stdin = None
        if STALL:
            # the collector stopped mid-run, as a loaded host may deschedule it: the ring buffer
            # must hold what comes meanwhile
            time.sleep(SECS / 2)
            os.kill(tool.pid, signal.SIGSTOP)
            time.sleep(STALL)
            os.kill(tool.pid, signal.SIGCONT)
        out, err = proc.communicate(timeout=SECS + 120)
        c1, h1, t1 = cpu_of(tool.pid), host_cpu(), time.monotonic()
        time.sleep(0.5)  # the last replies' events reach the ring buffer
        trc, _, terr = tool.stop(120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if tool and tool.proc.poll() is None:
            tool.stop(30)
    client = None
    for l in out.splitlines():
        if l.startswith("{"):
            client = json.loads(l)
    record("load: workload ran", proc.returncode == 0 and client is not None, err[-800:])
    record("load: tool exits 0", trc == 0, terr[-800:])
    try:
        report = json.load(open(json_path))
    except (OSError, ValueError) as ex:
        record("load: JSON report", False, repr(ex))
        return summary()
    if client is None:
        return summary()
    pgss = [(q, c) for q, c in cluster.pgss(toplevel_only=True) if "pg_stat_statements" not in q]
    pgss_calls = sum(c for _, c in pgss)
    sql = report.get("sql", {})
    wire = report.get("sql_wire", {})
    seen = sql.get("statements", 0)
    tool_cpu = (c1[0] - c0[0]) + (c1[1] - c0[1])
    busy = (h1[0] - h0[0]) / max(1, h1[1] - h0[1])
    log("load: collector stopped %.1f s mid-run; %d processes, %d statements in %.1f s = %d/s (target %d/s); tool CPU %.2f s user + %.2f s sys "
        "= %.1f%% of one core; host CPU busy %.0f%% of %d cores; tool: %d statements, %d errors; "
        "pg_stat_statements: %d calls; wire: %s" %
        (STALL, PROCS, client["ok"], client["secs"], client["rate"], RATE, c1[0] - c0[0], c1[1] - c0[1],
         100 * tool_cpu / (t1 - t0), 100 * busy, os.cpu_count(), seen, sql.get("errors", 0), pgss_calls,
         json.dumps({k: v for k, v in wire.items() if isinstance(v, int)})))
    record("load: the workload kept %d statements/s for %d s (at least 97%%: %d/s)" % (RATE, SECS, client["rate"]),
           client["errors"] == 0 and client["rate"] >= 0.97 * RATE and client["secs"] >= SECS - 1,
           json.dumps(client)[:400])
    record("load: every statement read from the wire (--sql-source auto, no TLS: no libpq probe counts)",
           wire.get("statements") == seen and not wire.get("libpq_statements"),
           json.dumps(report.get("sql_capture"))[:400])
    lost = losses(report)
    record("load: no lost events, no lost framing, nothing dropped",
           not lost and wire.get("lost_events") == 0 and wire.get("framing_lost") == 0,
           ", ".join(lost)[:800] or json.dumps(wire)[:600])
    record("load: the tool's statements (%d) equal pg_stat_statements' calls (%d) and the driver's count (%d)" %
           (seen, pgss_calls, client["ok"]), seen == pgss_calls == client["ok"] and not sql.get("errors", 0),
           "pgss: %s" % pgss[:8])
    return summary()


if __name__ == "__main__":
    sys.exit(main())
