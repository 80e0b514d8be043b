#!/usr/bin/env python3
"""SQL read from PostgreSQL's wire protocol (--sql-source wire), against the suite's own cluster:
psycopg2, psycopg 3 (sync with server-side prepared statements, ClientCursor, binary COPY in and
out, a pipeline with an error in the middle, async), asyncpg and pg8000, and a raw client sending
pg8000's portal Close round trips answered three ways (kept in the kernel or not), each over the
Unix socket and over TCP. The statements the tool saw succeed equal pg_stat_statements' calls for the same
window; errors and skipped statements equal what the driver saw; call sites are the workload's
lines. Also: a 100 kB statement, a 100,000-row result, a server-side cursor, LISTEN/NOTIFY, a
connection opened before the tracer, one opened after it, a client killed mid-statement, and an
encrypted connection (ssl = on, sslmode=require) counted as such and not read.
"""
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import Cluster, log, marker_lines, record, summary, start  # noqa: E402

WORKLOAD = os.path.join(harness.WORKLOADS, "wire_drivers.py")
PY = "/usr/bin/python3"


class Run:
    pass


def run(cluster, mode, tcp, tmp, tool_args=(), extra_env=None, source="wire"):
    r = Run()
    r.mode = mode
    r.source = source
    r.tag = "%s/%s" % (mode, "tcp" if tcp else "unix")
    r.json_path = os.path.join(tmp, r.tag.replace("/", "_") + ".json")
    e = dict(os.environ)
    e.update(cluster.client_env(tcp=tcp))
    e.update(extra_env or {})
    e["PYTHONDONTWRITEBYTECODE"] = "1"
    e["PT_GO"] = "stdin"
    proc = subprocess.Popen([PY, WORKLOAD, mode], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=e, cwd="/")
    try:
        line = proc.stdout.readline().split()
        if not line or line[0] != "ready":
            proc.kill()
            raise RuntimeError("workload %s did not start: %s" % (mode, proc.stderr.read()[-800:]))
        r.pid = int(line[1])
        cluster.pgss_reset()  # after the driver's own connect-time statements: they were before tracing
        tool = harness.Tracer(["--pid", str(r.pid), "--duration", "60", "--sql-source", source, "--no-samples",
                               "--json", r.json_path] + list(tool_args))
        tool.wait_tracing(60)
        try:
            proc.stdin.write("go\n")
            proc.stdin.close()
        except BrokenPipeError:
            pass
        proc.stdin = None
        rc, _, r.tool_err = tool.finish(90)
        r.tool_rc = rc
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    r.workload_rc = proc.returncode
    r.workload_err = err
    r.client = None
    for l in out.splitlines():
        if l.startswith("{"):
            r.client = json.loads(l)
    r.pgss = [(q, c) for q, c in cluster.pgss(toplevel_only=True) if "pg_stat_statements" not in q]
    try:
        r.report = json.load(open(r.json_path))
    except (OSError, ValueError) as ex:
        r.report = None
        r.report_err = repr(ex)
    return r


def sites(report):
    out = set()
    for q in report.get("queries", []):
        for s in q.get("call_sites", []):
            out.add(s.get("frame", ""))
    return out


# Statements a driver defers or batches, and the workload line each must be reported at: the stack
# at the write is the flush's (psycopg 3's pipeline, asyncpg's executemany and prepared statements).
DEFERRED = {"psycopg3": [("INSERT INTO t VALUES", "psycopg3_pipeline")],
            "asyncpg": [("INSERT INTO a VALUES", "asyncpg_executemany"), ("SELECT ?::int * ?", "asyncpg_prepared")]}


def pattern_sites(report, prefix):
    """Call sites of the patterns starting with prefix."""
    return {s.get("frame", "") for q in report.get("queries", []) if q.get("pattern", "").startswith(prefix)
            for s in q.get("call_sites", [])}


def check(r, marks, dies=False):
    ok = record(r.tag + ": tool exits 0", r.tool_rc == 0, r.tool_err[-800:])
    if not record(r.tag + ": JSON report", r.report is not None, getattr(r, "report_err", "")):
        return
    if not dies:
        record(r.tag + ": workload ran", r.workload_rc == 0 and r.client is not None, r.workload_err[-800:])
    if r.client is None:
        return
    wire = r.report.get("sql_wire", {})
    sql = r.report.get("sql", {})
    record(r.tag + ": no lost events, no lost framing, source is the wire (auto: the wire, and probes for "
           "encrypted connections)",
           wire.get("lost_events") == 0 and wire.get("framing_lost") == 0 and
           r.report.get("sql_capture", {}).get("source") == r.source,
           json.dumps(wire)[:600])
    seen = sql.get("statements", 0)
    errors = sql.get("errors", 0)
    skipped = wire.get("skipped_after_error", 0)
    want_ok = r.client["ok"]
    if dies:
        record(r.tag + ": the statement before the kill counted, the one killed unfinished (not a success)",
               seen - errors == want_ok and wire.get("unfinished", 0) >= 1, "seen %d errors %d wire %s" %
               (seen, errors, json.dumps(wire)[:400]))
        return
    pgss_calls = sum(c for _, c in r.pgss)
    record(r.tag + ": successes equal pg_stat_statements' calls (%d) and the driver's count (%d)" %
           (pgss_calls, want_ok), seen - errors == pgss_calls == want_ok,
           "tool: %d statements, %d errors; pgss: %s" % (seen, errors, r.pgss[:12]))
    # skipped: the driver knows how many it attempted after the error, not how many it sent
    want_skip_lo = 1 if r.client["skipped"] else 0
    record(r.tag + ": errors as the driver saw them (%d), skipped after an error in a pipeline counted apart "
           "(%d to %d)" % (r.client["errors"], want_skip_lo, r.client["skipped"]),
           errors - skipped == r.client["errors"] and want_skip_lo <= skipped <= r.client["skipped"],
           "errors %d skipped %d" % (errors, skipped))
    mode = r.tag.split("/")[0]
    if mode == "psycopg2":
        big = [q for q in r.report.get("queries", []) if "generate_series" in q.get("pattern", "")]
        record(r.tag + ": rows per pattern from CommandComplete (100,000) and errors by SQLSTATE (22012)",
               big and big[0].get("rows") == 100000 and sql.get("errors_by_sqlstate", {}).get("22012") == 1,
               json.dumps(big[:1])[:300] + json.dumps(sql.get("errors_by_sqlstate")))
    kept = wire.get("portal_close_round_trips_kept_in_kernel")
    if mode == "pg8000":
        # its Close of each statement's portal, a round trip of its own: kept in BPF, not sent
        record(r.tag + ": pg8000's portal Close round trips kept in the kernel (at least %d)" % N_WARM,
               isinstance(kept, int) and kept >= N_WARM, "kept %r" % kept)
    elif mode == "close_pairs":
        # wire_drivers.py's mode_close_pairs: of its 40 pairs, the 20 answered as pg8000's are
        record(r.tag + ": the Close round trips answered whole kept in the kernel (20), the others (20: the "
               "next statement written first, the answer read in pieces) sent, and counts exact", kept == 20,
               "kept %r" % kept)
    mark = marks.get(mode + "_loop")
    if mark:
        want = "wire_drivers.py:%d)" % mark
        got = sites(r.report)
        record(r.tag + ": call site is the workload's line %d" % mark, any(s.endswith(want) for s in got),
               str(sorted(got))[:600])
    for prefix, name in DEFERRED.get(mode, []) if not dies else []:
        want = "wire_drivers.py:%d)" % marks[name]
        got = pattern_sites(r.report, prefix)
        record(r.tag + ": %s... is reported at the line that sent it (%d)" % (prefix, marks[name]),
               bool(got) and all(s.endswith(want) for s in got), str(sorted(got))[:600])


N_WARM = 30   # wire_drivers.py's N: the statements each warm mode runs under the tracer
# the texts as the tool normalizes them (literals and parameters are ?): wire_drivers.py's, their
# column's name not ASCII, in each of CPython's compact forms of a str (Latin-1, UCS-4, UTF-8
# bytes, UCS-2), which the tool copies as they are and makes UTF-8
WARM_TEXT = {"warm_asyncpg": 'SELECT ?::int + ? AS "café"', "warm_uvloop": 'SELECT ?::int + ? AS "\U0001f600"',
             "warm_psycopg3": 'SELECT ?::int + ? AS "naïve €"', "warm_pg8000": 'SELECT ?::int + ? AS "цена"'}


# mode_warm_asyncpg's statement that the app prepared itself (conn.prepare())
WARM_PREPARED = {m: t.replace("+", "*") for m, t in WARM_TEXT.items() if m in ("warm_asyncpg", "warm_uvloop")}


def check_warm(r, marks):
    """Statements prepared before the tracer: named by their texts, read from the driver's frame,
    all but the first few (sent before the tool, which reads its events every 0.1 s or so, had
    asked for them: five here, 30 ms apart); counts unchanged."""
    check(r, marks)
    if r.report is None or r.client is None:
        return
    mode = r.mode
    qs = r.report.get("queries", [])
    named = [q for q in qs if q.get("pattern", "").startswith(WARM_TEXT[mode])]
    unnamed = sum(q.get("count", 0) for q in qs if q.get("pattern", "").startswith("EXECUTE"))
    n = sum(q.get("count", 0) for q in named)
    prepared = WARM_PREPARED.get(mode)
    if prepared:
        # asyncpg's statement that the app prepared (conn.prepare()) and runs after the others:
        # the texts are wanted by then, every run named by its text
        np = sum(q.get("count", 0) for q in qs if q.get("pattern", "").startswith(prepared))
        want = "wire_drivers.py:%d)" % marks["warm_asyncpg_prepared"]
        got = pattern_sites(r.report, prepared)
        record(r.tag + ": a statement the app prepared before tracing (PreparedStatement), named by its text "
               "(%d of 10), at its line" % np, np == 10 and bool(got) and all(s.endswith(want) for s in got),
               json.dumps([(q.get("pattern"), q.get("count")) for q in qs])[:500] + str(sorted(got))[:300])
        n += np
    # read on the wire, or through libpq's probes (an encrypted connection)
    learned = r.report.get("sql_wire", {}).get("prepared_before_tracing", {}).get("texts_from_driver", 0) + \
        r.report.get("sql_capture", {}).get("prepared_before_tracing", {}).get("texts_from_driver", 0)
    record(r.tag + ": statements prepared before tracing named by their text, not ASCII (%d of %d), at most 10 "
           "by their name only (%d)" % (n, r.client["ok"], unnamed),
           n + unnamed == r.client["ok"] and n >= r.client["ok"] - 10 and learned >= 1,
           json.dumps([(q.get("pattern"), q.get("count")) for q in qs])[:600] + " texts read %d" % learned)
    want = "wire_drivers.py:%d)" % marks["warm_asyncpg" if mode == "warm_uvloop" else mode]
    got = pattern_sites(r.report, WARM_TEXT[mode])
    record(r.tag + ": ... at the line that sent them (%s)" % want, bool(got) and all(s.endswith(want) for s in got),
           str(sorted(got))[:600])


def check_pipeline(r, marks):
    """psycopg 3's pipelines and executemany of statements prepared before tracing: named by
    their texts (from _execute_gen's and _executemany_gen_pipeline's frames), at the lines that
    sent them; then statements run through libpq's own calls, whose texts no frame holds: by name,
    and the process given up on once; counts equal pg_stat_statements'."""
    check(r, marks)
    if r.report is None or r.client is None:
        return
    qs = r.report.get("queries", [])
    pbt = r.report.get("sql_capture", {}).get("prepared_before_tracing", {})
    for text, mark, n in (("SELECT ?::int + ?", "warm_pipeline", 60), ("INSERT INTO tp VALUES", "warm_executemany", 40)):
        named = sum(q.get("count", 0) for q in qs if q.get("pattern", "").startswith(text))
        record(r.tag + ": %s... prepared before tracing, sent in pipelines, named by its text (%d of %d, "
               "at most 15 by name only)" % (text, named, n), n - 15 <= named <= n,
               json.dumps([(q.get("pattern"), q.get("count")) for q in qs])[:500])
        want = "wire_drivers.py:%d)" % marks[mark]
        got = pattern_sites(r.report, text)
        record(r.tag + ": ... at the line that sent it (%s)" % want, bool(got) and all(s.endswith(want) for s in got),
               str(sorted(got))[:400])
    raw = sum(q.get("count", 0) for q in qs if q.get("pattern", "") == "EXECUTE raw_stmt")
    learned = r.report.get("sql_wire", {}).get("prepared_before_tracing", {}).get("texts_from_driver", 0)
    record(r.tag + ": a statement run through libpq's own calls goes by its name (%d of 120); the process "
           "given up on once, after its two texts were taken (%d)" % (raw, learned),
           raw == 120 and pbt.get("processes_given_up") == 1 and learned == 2, json.dumps(pbt))
    record(r.tag + ": the summary says so", "texts no longer copied in 1 process" in r.tool_err,
           r.tool_err[-600:])


def check_sslmode(c, tmp, ssl, mode, want_tls):
    """One psycopg2 connection with PGSSLMODE=mode to a server with ssl = on or off."""
    r = run(c, "psycopg2_late", True, tmp, extra_env={"PGSSLMODE": mode})
    wire = (r.report or {}).get("sql_wire", {})
    tag = "tls/ssl = %s, sslmode=%s" % (ssl, mode)
    if want_tls:
        record(tag + ": the connection is counted as encrypted and nothing is read from it",
               r.tool_rc == 0 and wire.get("tls_connections") == 1 and wire.get("statements") == 0,
               json.dumps(wire)[:500] + r.tool_err[-300:])
    else:
        record(tag + ": plaintext, read from the wire (statements as the driver's)",
               r.tool_rc == 0 and wire.get("tls_connections") == 0 and r.client is not None and
               wire.get("statements", 0) - (r.report or {}).get("sql", {}).get("errors", 0) == r.client["ok"],
               json.dumps(wire)[:500] + r.tool_err[-300:])


def tls_peer_known(tag, wire):
    """A TLS socket from before tracing, to the test cluster on a port of its own (not 5432): known
    as PostgreSQL's by the server's unix socket for that port (src/sockpeer.h)."""
    tp = wire.get("tls_plaintext", {})
    record(tag + ": its TLS socket from before tracing is known as PostgreSQL's by where it leads (a local "
           "server's port)", tp.get("unknown_tls_sockets") == 1 and tp.get("unknown_tls_sockets_not_postgres") == 0
           and tp.get("unknown_tls_sockets_unresolved") == 0, json.dumps(tp))


def forwarder(port):
    """A TCP forwarder on 127.0.0.1 to the cluster's port: a PostgreSQL server on a port that no
    local server has its unix socket for, as one on another host is (its listening socket and its
    port; the test process is not traced)."""
    ls = socket.socket()
    ls.bind(("127.0.0.1", 0))
    ls.listen(8)

    def pump(a, b):
        try:
            while True:
                d = a.recv(65536)
                if not d:
                    break
                b.sendall(d)
        except OSError:
            pass
        for s in (a, b):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def serve():
        while True:
            try:
                c, _ = ls.accept()
                u = socket.create_connection(("127.0.0.1", port))
            except OSError:
                return
            threading.Thread(target=pump, args=(c, u), daemon=True).start()
            threading.Thread(target=pump, args=(u, c), daemon=True).start()

    threading.Thread(target=serve, daemon=True).start()
    return ls


def check_pg_ports(c, tmp, marks):
    """asyncpg over TLS, connected before tracing, to a server whose port (a forwarder's) only
    --pg-ports names: read with it, left alone (and said) without it."""
    ls = forwarder(c.port)
    port = ls.getsockname()[1]
    try:
        env = {"PGPORT": str(port), "PT_TLS_WARM": "1"}
        r = run(c, "asyncpg", True, tmp, tool_args=["--pg-ports", "5432,%d" % port], extra_env=env, source="auto")
        r.tag = "asyncpg/tls, --pg-ports"
        warm = [i for i, (q, n) in enumerate(r.pgss) if q == "SELECT $1"]
        if warm:
            q, n = r.pgss[warm[0]]
            r.pgss[warm[0]] = (q, n - 1)
        check(r, marks)
        tp = (r.report or {}).get("sql_wire", {}).get("tls_plaintext", {})
        record(r.tag + ": a server on a port only --pg-ports names: its TLS socket probed, read",
               tp.get("processes_probed") == 1 and tp.get("unknown_tls_sockets_not_postgres") == 0, json.dumps(tp))
        r = run(c, "asyncpg", True, tmp, extra_env=env, source="auto")   # (its socket still open when looked at)
        wire = (r.report or {}).get("sql_wire", {})
        tp = wire.get("tls_plaintext", {})
        record("asyncpg/tls, a server on a port not named: not probed, nothing read, and the summary names the "
               "port for --pg-ports",
               r.tool_rc == 0 and r.client is not None and tp.get("processes_probed") == 0 and
               tp.get("unknown_tls_sockets_not_postgres") == 1 and wire.get("statements") == 0 and
               "led elsewhere than PostgreSQL (ports %d)" % port in r.tool_err,
               "rc %s client %s: " % (r.tool_rc, r.client) + json.dumps(tp) +
               repr([ln for ln in r.tool_err.splitlines() if "SQL on the wire" in ln][-1:]))
        # The same, but another process (the workload's child) then opens a plaintext connection
        # to that server: its port is learned, and the TLS socket judged before is judged again:
        # probed, read from then on.
        r = run(c, "asyncpg", True, tmp, extra_env=dict(env, PT_LEARN_PORT="1"), source="auto")
        r.tag = "asyncpg/tls, a port learned"
        warm = [i for i, (q, n) in enumerate(r.pgss) if q == "SELECT $1"]
        if warm:   # WARM (unseen) and LEARN (seen) are one pattern in pg_stat_statements
            q, n = r.pgss[warm[0]]
            r.pgss[warm[0]] = (q, n - 1)
        check(r, marks)
        wire = (r.report or {}).get("sql_wire", {})
        tp = wire.get("tls_plaintext", {})
        procs = {p.get("pid"): p for p in wire.get("processes", [])}
        record(r.tag + ": another process's new connection's port is learned; the TLS socket judged before it "
               "is probed, read from then on",
               len(procs) == 2 and procs.get(r.pid, {}).get("wire_statements_tls", 0) > 0 and
               tp.get("processes_probed") == 1 and tp.get("unknown_tls_sockets_not_postgres") == 0 and
               tp.get("unknown_tls_sockets_postgres_by_learned_port") == 1 and
               tp.get("postgres_ports_learned") == [port] and
               "PostgreSQL port learned from its connections: %d." % port in r.tool_err,
               json.dumps(wire)[:900] + repr([ln for ln in r.tool_err.splitlines() if "SQL on the wire" in ln][-1:]))
    finally:
        ls.close()


BRIEF = bool(os.environ.get("PT_WIRE_BRIEF"))


def check_tls(tmp):
    """A cluster with ssl = on: libpq's sslmode=require connection is encrypted, counted as such,
    and nothing is read from it."""
    c = Cluster(prefix="pytrace-wire-tls-", ports=(54470, 54500), tcp=True)
    try:
        c.start()
        key = os.path.join(c.dir, "data", "server.key")
        crt = os.path.join(c.dir, "data", "server.crt")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj",
                        "/CN=localhost", "-keyout", key, "-out", crt], capture_output=True, check=True)
        subprocess.run(["chown", "postgres", key, crt], check=True)
        os.chmod(key, 0o600)
        c.psql("ALTER SYSTEM SET ssl = on")
        c.psql("SELECT pg_reload_conf()")
        time.sleep(0.5)
        # libpq's default, prefer, encrypts whenever the server offers TLS (../shared/DOMAIN.md 8)
        for mode, want_tls in (("require", 1),) if BRIEF else (("require", 1), ("prefer", 1), ("disable", 0)):
            check_sslmode(c, tmp, "on", mode, want_tls)
        # --sql-source auto: the encrypted connection through libpq's probes, the plaintext one on
        # the wire, in one process, each statement once
        r = run(c, "mixed_tls", False, tmp, extra_env={"PT_TLS_HOST": "127.0.0.1"}, source="auto")
        rep = r.report or {}
        wire = rep.get("sql_wire", {})
        marks = marker_lines(WORKLOAD)
        got = sites(rep)
        ok = r.tool_rc == 0 and r.client is not None and wire.get("tls_connections") == 1
        record("tls/auto: one encrypted and one plaintext connection in one process: %d statements, each once "
               "(wire %s, libpq %s)" % (r.client["ok"] if r.client else -1, wire.get("statements"),
                                        wire.get("libpq_statements")),
               ok and rep.get("sql", {}).get("statements") == r.client["ok"] and
               wire.get("statements") == r.client["ok"] // 2 and wire.get("libpq_statements") == r.client["ok"] // 2,
               json.dumps(wire)[:700] + " sql " + json.dumps(rep.get("sql", {})) + r.tool_err[-400:])
        record("tls/auto: call sites of both connections are the workload's lines",
               any(s.endswith("wire_drivers.py:%d)" % marks["mixed_tls"]) for s in got) and
               any(s.endswith("wire_drivers.py:%d)" % marks["mixed_plain"]) for s in got), str(sorted(got))[:500])
        # drivers without libpq, encrypted: their plaintext through OpenSSL's probes. asyncpg's
        # connection (sslmode prefer, its default: TLS here) is opened before tracing, pg8000's
        # after (ssl=True: an SSLRequest, then TLS on its blocking socket).
        # Each sends a first statement (workloads/wire_drivers.py's WARM) and waits for the probes:
        # it goes unseen, and is left out of pg_stat_statements' counts.
        for mode, env in (("asyncpg", {}), ("pg8000", {"PT_PG8000_SSL": "1"})):
            r = run(c, mode, True, tmp, extra_env=dict(env, PT_TLS_WARM="1"), source="auto")
            r.tag = mode + "/tls"
            warm = [i for i, (q, n) in enumerate(r.pgss) if q == "SELECT $1"]
            if warm:   # the first statement (WARM), sent before the probes: one call less
                q, n = r.pgss[warm[0]]
                r.pgss[warm[0]] = (q, n - 1)
            check(r, marks)
            wire = (r.report or {}).get("sql_wire", {})
            procs = wire.get("processes", [])
            record(r.tag + ": read in the clear through OpenSSL's probes (at its internal functions, whose "
                   "first instruction the kernel emulates), every statement",
                   wire.get("tls_plaintext", {}).get("processes_probed") == 1 and
                   wire.get("tls_plaintext", {}).get("processes_probed_at_internal_functions") == 1 and len(procs) == 1 and
                   procs[0].get("wire_statements_tls") == procs[0].get("wire_statements") == wire.get("statements") > 0
                   and wire.get("libpq_statements") == 0, json.dumps(wire)[:800])
            if mode == "asyncpg":
                tls_peer_known(r.tag, wire)
        check_pg_ports(c, tmp, marks)
        # libpq's connection opened before tracing, encrypted: its TLS records tell the tool, which
        # then probes libpq (never OpenSSL: libpq's own probes see the statements before encryption)
        r = run(c, "psycopg2", True, tmp, extra_env={"PGSSLMODE": "require", "PT_TLS_WARM": "1"}, source="auto")
        rep = r.report or {}
        wire, sql = rep.get("sql_wire", {}), rep.get("sql", {})
        pgss = sum(n for q, n in r.pgss) - 1   # the first statement (WARM), sent before the probes
        record("psycopg2/tls, connected before tracing: every statement through libpq's probes, once "
               "(tool %s, pg_stat_statements %d, driver %s)" % (sql.get("statements"), pgss,
                                                               r.client and r.client["ok"]),
               r.tool_rc == 0 and r.client is not None and
               sql.get("statements", 0) - sql.get("errors", 0) == pgss == r.client["ok"] and
               wire.get("libpq_statements") == sql.get("statements") and wire.get("statements") == 0 and
               wire.get("tls_plaintext", {}).get("processes_left_to_libpq") == 1 and
               any(s.endswith("wire_drivers.py:%d)" % marks["psycopg2_loop"]) for s in sites(rep)),
               json.dumps(wire)[:700] + " sql " + json.dumps(sql)[:300] + " pgss " + repr(r.pgss)[:400])
        tls_peer_known("psycopg2/tls", wire)
        # psycopg 3 over TLS, its statement prepared before tracing: libpq's probes see its name
        # only, and its text comes from the driver's frame, as on the wire (not in the sanitized
        # run: its user-side part, sql_match__learn, is unit-tested there)
        if not BRIEF:
            r = run(c, "warm_psycopg3", True, tmp, extra_env={"PGSSLMODE": "require", "PT_TLS_WARM": "1"},
                    source="auto")
            r.tag = "warm_psycopg3/tls"
            r.pgss = [(q, n - (q == "SELECT $1")) for q, n in r.pgss]   # WARM, sent before the probes
            check_warm(r, marks)
            record(r.tag + ": through libpq's probes",
                   (r.report or {}).get("sql_wire", {}).get("libpq_statements", 0) >= N_WARM,
                   json.dumps((r.report or {}).get("sql_wire", {}))[:500])
            # asyncpg's, its connection encrypted (sslmode prefer): the text through OpenSSL's probes
            r = run(c, "warm_asyncpg", True, tmp, extra_env={"PT_TLS_WARM": "1"}, source="auto")
            r.tag = "warm_asyncpg/tls"
            r.pgss = [(q, n - (q == "SELECT $1")) for q, n in r.pgss]   # WARM, sent before the probes
            check_warm(r, marks)
            wire = (r.report or {}).get("sql_wire", {})
            procs = wire.get("processes", [])
            record(r.tag + ": through OpenSSL's probes", len(procs) == 1 and
                   procs[0].get("wire_statements_tls", 0) >= N_WARM, json.dumps(wire)[:500])
        # and the same server with ssl = off: prefer and disable go in the clear, read on the wire
        c.psql("ALTER SYSTEM SET ssl = off")
        c.psql("SELECT pg_reload_conf()")
        time.sleep(0.5)
        for mode in () if BRIEF else ("prefer", "disable"):
            check_sslmode(c, tmp, "off", mode, 0)
    except (subprocess.CalledProcessError, RuntimeError, FileNotFoundError) as ex:
        record("tls: cluster with ssl = on", False, repr(ex))
    finally:
        c.stop()


def check_https_beside(cluster, tmp, marks):
    """A process with a TLS connection from before tracing that is not PostgreSQL's (HTTPS to
    another service: tls_sink.py), beside its plaintext PostgreSQL connection. Its TLS records
    must not get it libpq's probes (whose traps every statement would pay) nor OpenSSL's: where
    the socket leads tells them apart (src/sockpeer.h). Every statement is the wire's."""
    sink = subprocess.Popen([PY, os.path.join(os.path.dirname(WORKLOAD), "tls_sink.py"), tmp],
                            stdout=subprocess.PIPE, text=True)
    try:
        port = sink.stdout.readline().split()[1]
        # psycopg2's process also serves HTTPS: its server's accepted connection and one to it,
        # both from before tracing (three TLS sockets in all)
        for mode, extra, sockets in (("psycopg2", {"PT_HTTPS_SERVED": tmp}, 3), ("asyncpg", {}, 1)):
            r = run(cluster, mode, False, tmp, extra_env=dict(extra, PT_HTTPS_BESIDE=port), source="auto")
            r.tag = mode + "/unix, HTTPS beside"
            check(r, marks)
            wire = (r.report or {}).get("sql_wire", {})
            tp = wire.get("tls_plaintext", {})
            record(r.tag + ": the TLS sockets (%d) are told apart from PostgreSQL's (port %s): no probes, every "
                   "statement from the wire" % (sockets, port),
                   tp.get("unknown_tls_sockets") == sockets and tp.get("unknown_tls_sockets_not_postgres") == sockets
                   and tp.get("processes_left_to_libpq") == 0 and tp.get("processes_probed") == 0 and
                   wire.get("libpq_statements") == 0 and wire.get("statements", 0) > 0 and
                   "led elsewhere than PostgreSQL (ports %s" % port in r.tool_err,
                   json.dumps(wire)[:700] + r.tool_err[-300:])
    except (IndexError, RuntimeError) as ex:
        record("HTTPS beside: the TLS peer and the workload start", False, repr(ex))
    finally:
        sink.kill()
        sink.wait()


def main():
    args, status = start()
    if status is not None:
        return status
    if not Cluster.installed():
        # make check installs it (scripts/install-deps.sh): its absence is a broken set-up, not a pass
        record("wire: PostgreSQL 15 is installed (scripts/install-deps.sh)", False)
        return summary()
    marks = marker_lines(WORKLOAD)
    tmp = tempfile.mkdtemp(prefix="pytrace-wire.")
    cluster = Cluster(prefix="pytrace-wire-", ports=(54440, 54470), tcp=True)
    cluster.start()
    try:
        # PT_WIRE_UNIX_ONLY (the sanitized run, tests/run-sanitize.sh): the drivers over the unix
        # socket only; over TCP they differ in the kernel's programs, not in the user-side code
        # the sanitizers watch (the TLS cases below are over TCP)
        transports = (False,) if os.environ.get("PT_WIRE_UNIX_ONLY") else (False, True)
        # PT_WIRE_BRIEF (the sanitized run too): a driver of each kind (libpq's simple and extended
        # protocols, asyncpg's own), and of the TLS cases sslmode=require only; the others repeat
        # the same user-side paths (each runs unsanitized in make check)
        modes = ("psycopg2", "psycopg3", "asyncpg", "close_pairs") if BRIEF else \
            ("psycopg2", "psycopg2_late", "psycopg3", "psycopg3_async", "asyncpg", "pg8000", "close_pairs")
        for mode in modes:
            for tcp in transports:
                if args.k and args.k not in mode:
                    continue
                check(run(cluster, mode, tcp, tmp), marks)
        # unix only: over TCP the same programs run (the modes above cover both transports)
        for mode in ("warm_psycopg3",) if BRIEF else ("warm_asyncpg", "warm_uvloop", "warm_psycopg3", "warm_pg8000"):
            if not args.k or args.k in mode:
                check_warm(run(cluster, mode, False, tmp), marks)
        if not BRIEF and (not args.k or args.k in "warm_pipeline"):
            check_pipeline(run(cluster, "warm_pipeline", False, tmp), marks)
        if not args.k or args.k in "https":
            check_https_beside(cluster, tmp, marks)
        # last on this cluster: the killed client's pg_sleep(5) ends in the server after it
        if not args.k or args.k in "dies":
            check(run(cluster, "dies", False, tmp), marks, dies=True)
    finally:
        cluster.stop()
    if not args.k or args.k in "tls":
        check_tls(tmp)
    return summary()


if __name__ == "__main__":
    sys.exit(main())
