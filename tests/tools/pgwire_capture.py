#!/usr/bin/python3
"""Record real PostgreSQL wire traffic for tests/unit/test_pgwire.c.

Usage (with the cluster of scripts/pg-cluster.sh listening on TCP):
    PYTRACE_PG_TCP=1 scripts/pg-cluster.sh start /tmp/pgwire-pg
    /usr/bin/python3 tests/tools/pgwire_capture.py [--upstream 127.0.0.1:54329] [--out tests/data/pgwire] [SCENARIO...]
    /usr/bin/python3 tests/tools/pgwire_capture.py --http     (HTTP corpus: http.server + curl)
    /usr/bin/python3 tests/tools/pgwire_capture.py --seeds tests/fuzz/corpus/pgwire   (fuzz seeds)

A recording TCP proxy on 127.0.0.1 (an ephemeral port) forwards each accepted connection to the
upstream and saves every chunk exactly as recv() returned it, in arrival order, to NAME.cap:

    file   = "PGWCAP1\\n" record*
    record = ts_ns:u64 conn:u32 dir:u8 len:u32 data[len]      (little-endian, packed: 17 + len)
    dir    = 'C' client -> server, 'S' server -> client,
             'O' connection opened (len 0), 'E' connection closed by either side (len 0)
    ts_ns  = CLOCK_MONOTONIC when recv() returned; conn numbers count from 1 per file.

NAME.expect holds what the scenario ran, from the driver's own results (statusmessage,
rowcount, the exception's SQLSTATE, the rows it fetched), one statement per line in wire order
per connection, fields separated by tabs:

    conn  status  rows  tag  sqlstate  kind  text
    status: ok | error | skipped | cancelled     rows: a number or - (unknown)
    tag: the command tag without counts ("INSERT", "CREATE TABLE") or -   sqlstate: 5 chars or -
    kind: simple | extended | copy | unknown (prepared before tracing; text is then the name)
    text: the statement text as sent on the wire, at most 100 bytes (no tabs or newlines)
Lines starting with "#" are comments; "tls N" says connection N went TLS (no statements).
Statements a driver runs on its own (BEGIN of psycopg2 outside autocommit) are listed too: the
scenario knows the driver does so.
"""
import argparse
import faulthandler
import signal
import os
import select
import socket
import struct
import subprocess
import sys
import threading
import time

MAGIC = b"PGWCAP1\n"
UPSTREAM = ("127.0.0.1", 54329)
REC = struct.Struct("<QIBI")


class Recorder:
    """A proxy on 127.0.0.1 that records all its connections into one capture file.

    It runs in a child process: psycopg2's cancel() keeps the GIL while PQcancel() waits for
    the server, which would stop a proxy thread of the same interpreter (a deadlock)."""

    def __init__(self, path, upstream):
        self.lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.lsock.bind(("127.0.0.1", 0))
        self.lsock.listen(16)
        self.port = self.lsock.getsockname()[1]
        self.path = path
        rfd, wfd = os.pipe()
        cfd, pfd = os.pipe()
        self.pid = os.fork()
        if self.pid:
            os.close(rfd)
            os.close(pfd)
            self.lsock.close()
            self.stop_fd = wfd
            self.count_fd = cfd
            return
        os.close(wfd)
        os.close(cfd)
        self._child(path, upstream)
        os.read(rfd, 1)
        self._close()
        os.write(pfd, str(self.nconn).encode())
        os._exit(0)

    def close(self):
        os.write(self.stop_fd, b"x")
        self.nconn = int(os.read(self.count_fd, 32) or b"0")
        os.waitpid(self.pid, 0)
        os.close(self.stop_fd)
        os.close(self.count_fd)

    def _child(self, path, upstream):
        self.upstream = upstream
        self.lock = threading.Lock()
        self.f = open(path, "wb")
        self.f.write(MAGIC)
        self.nconn = 0
        self.threads = []
        self.stopping = False
        self.acceptor = threading.Thread(target=self._accept, daemon=True)
        self.acceptor.start()

    def _rec(self, conn, d, data):
        with self.lock:
            self.f.write(REC.pack(time.monotonic_ns(), conn, ord(d), len(data)))
            self.f.write(data)

    def _accept(self):
        while True:
            try:
                cs, _ = self.lsock.accept()
            except OSError:
                return
            if self.stopping:
                cs.close()
                return
            us = socket.create_connection(self.upstream)
            for s in (cs, us):
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self.lock:
                self.nconn += 1
                n = self.nconn
            self._rec(n, "O", b"")
            t = threading.Thread(target=self._pump, args=(n, cs, us), daemon=True)
            t.start()
            self.threads.append(t)

    def _pump(self, n, cs, us):
        # One thread per connection, both directions: the record order is the order in which
        # the proxy's recv() calls returned.
        peers = {cs: (us, "C"), us: (cs, "S")}
        live = True
        while live:
            r, _, _ = select.select([cs, us], [], [])
            for s in r:
                try:
                    data = s.recv(65536)
                except OSError:
                    data = b""
                if not data:
                    live = False
                    break
                self._rec(n, peers[s][1], data)
                peers[s][0].sendall(data)
        self._rec(n, "E", b"")
        for s in (cs, us):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()

    def _close(self):
        self.stopping = True
        for t in self.threads:
            t.join(10)
        self.lsock.close()
        with self.lock:
            self.f.close()


class Expect:
    def __init__(self, path):
        self.lines = []
        self.path = path

    def comment(self, s):
        self.lines.append("# " + " ".join(s.split()))

    def tls(self, conn):
        self.lines.append("tls\t%d" % conn)

    def stmt(self, conn, status, rows, tag, sqlstate, kind, text):
        text = text.decode() if isinstance(text, bytes) else text
        text = text[:100]
        assert "\t" not in text and "\n" not in text, text
        self.lines.append("\t".join([str(conn), status, "-" if rows is None else str(rows),
                                     tag or "-", sqlstate or "-", kind, text]))

    def save(self):
        with open(self.path, "w") as f:
            f.write("\n".join(self.lines) + "\n")


def tag_of(statusmessage):
    """'INSERT 0 1' -> 'INSERT', 'CREATE TABLE' -> 'CREATE TABLE'."""
    words = (statusmessage or "").split()
    while words and words[-1].isdigit():
        words.pop()
    return " ".join(words)


def rows_of(statusmessage):
    words = (statusmessage or "").split()
    if words and words[-1].isdigit() and words[0] in ("SELECT", "INSERT", "UPDATE", "DELETE",
                                                        "MERGE", "FETCH", "MOVE", "COPY"):
        return int(words[-1])
    return None


# ---- scenarios: each gets (port, expect) and returns nothing ----

def dsn(port, extra="sslmode=disable"):
    return "host=127.0.0.1 port=%d dbname=pytrace user=postgres %s" % (port, extra)


def sc_psycopg2_simple(port, ex):
    import psycopg2
    import psycopg2.errors
    c = psycopg2.connect(dsn(port))
    c.autocommit = True
    cur = c.cursor()

    def run(sql, args=None, expect_error=None):
        try:
            cur.execute(sql, args)
        except psycopg2.Error as e:
            assert e.pgcode == expect_error, (sql, e.pgcode)
            ex.stmt(1, "cancelled" if e.pgcode == "57014" else "error", None, None, e.pgcode,
                    "simple", cur.query)
            return
        assert expect_error is None, sql
        ex.stmt(1, "ok", rows_of(cur.statusmessage), tag_of(cur.statusmessage), None, "simple",
                cur.query)

    run("CREATE TEMP TABLE t (id int, name text)")
    for i in range(3):
        run("INSERT INTO t VALUES (%s, %s)", (i, "n%d" % i))
    run("INSERT INTO t SELECT g, 'g' || g FROM generate_series(10, 11) g")
    run("SELECT * FROM t ORDER BY id")
    assert len(cur.fetchall()) == 5
    run("UPDATE t SET name = 'u' WHERE id < 3")
    run("DELETE FROM t WHERE id >= 10")
    run("SELECT 1/0", expect_error="22012")
    run("SELECT * FROM no_such_table", expect_error="42P01")
    run("SELEC 1", expect_error="42601")
    run("SELECT count(*) FROM t")
    # Two statements in one Query: one statement record, rows summed (1 + 1), tag of the last.
    cur.execute("SELECT 1; SELECT 2")
    ex.stmt(1, "ok", 2, "SELECT", None, "simple", cur.query)
    # Outside autocommit psycopg2 sends BEGIN before the first statement of a transaction.
    c.autocommit = False
    ex.stmt(1, "ok", None, "BEGIN", None, "simple", "BEGIN")
    run("INSERT INTO t VALUES (%s, %s)", (7, "seven"))
    c.commit()
    ex.stmt(1, "ok", None, "COMMIT", None, "simple", "COMMIT")
    ex.stmt(1, "ok", None, "BEGIN", None, "simple", "BEGIN")
    run("SELECT 1/0", expect_error="22012")
    run("SELECT 1", expect_error="25P02")	# in a failed transaction
    c.rollback()
    ex.stmt(1, "ok", None, "ROLLBACK", None, "simple", "ROLLBACK")
    c.autocommit = True
    # A statement cancelled from a second connection (CancelRequest through the proxy: conn 2).
    threading.Timer(0.3, c.cancel).start()
    run("SELECT pg_sleep(5)", expect_error="57014")
    run("SELECT 'after cancel'")
    c.close()


def sc_psycopg2_cursor_notify(port, ex):
    """DECLARE/FETCH on conn 1; LISTEN on conn 1, NOTIFY from conn 2 between statements."""
    import psycopg2
    c = psycopg2.connect(dsn(port))
    c.autocommit = True
    cur = c.cursor()

    def run(conn, cur, sql):
        cur.execute(sql)
        ex.stmt(conn, "ok", rows_of(cur.statusmessage), tag_of(cur.statusmessage), None, "simple",
                cur.query)

    run(1, cur, "LISTEN pgwire_chan")
    run(1, cur, "BEGIN")
    run(1, cur, "DECLARE c CURSOR FOR SELECT g FROM generate_series(1, 25) g")
    for _ in range(3):
        run(1, cur, "FETCH 10 FROM c")
    run(1, cur, "MOVE BACKWARD 5 IN c")
    run(1, cur, "CLOSE c")
    run(1, cur, "COMMIT")
    c2 = psycopg2.connect(dsn(port))
    c2.autocommit = True
    cur2 = c2.cursor()
    run(2, cur2, "NOTIFY pgwire_chan, 'hello'")
    run(2, cur2, "SELECT pg_notify('pgwire_chan', 'again')")
    time.sleep(0.2)
    run(1, cur, "SELECT 42")
    c.poll()
    assert len(c.notifies) == 2, c.notifies
    c2.close()
    c.close()


def sc_psycopg3(port, ex):
    import psycopg
    c = psycopg.connect(dsn(port), autocommit=True, prepare_threshold=2)

    def ok(cur, text, kind="extended"):
        ex.stmt(1, "ok", rows_of(cur.statusmessage), tag_of(cur.statusmessage), None, kind, text)

    cur = c.execute("CREATE TEMP TABLE t (id int, name text)")
    ok(cur, "CREATE TEMP TABLE t (id int, name text)", "simple")
    for i in range(4):
        # 1st and 2nd: unnamed Parse; the 3rd prepares _pg3_0; the 4th only Binds it.
        cur = c.execute("INSERT INTO t VALUES (%s, %s)", (i, "n%d" % i))
        ok(cur, "INSERT INTO t VALUES ($1, $2)")
    cur = c.execute("SELECT id, name FROM t WHERE id >= %s ORDER BY id", (1,))
    assert len(cur.fetchall()) == 3
    ok(cur, "SELECT id, name FROM t WHERE id >= $1 ORDER BY id")
    try:
        c.execute("SELECT %s::int / 0", (1,))
    except psycopg.Error as e:
        ex.stmt(1, "error", None, None, e.sqlstate, "extended", "SELECT $1::int / 0")
    # Pipeline: INSERT ok, an error, then a statement the server skips, all before one Sync.
    curs = []
    err = None
    try:
        with c.pipeline():
            curs.append(c.execute("INSERT INTO t VALUES (%s, %s)", (100, "p")))
            curs.append(c.execute("SELECT 1 / %s", (0,)))
            curs.append(c.execute("SELECT %s::text", ("skipped",)))
    except psycopg.Error as e:
        err = e
    assert err is not None and err.sqlstate == "22012"
    ok(curs[0], "INSERT INTO t VALUES ($1, $2)")
    ex.stmt(1, "error", None, None, err.sqlstate, "extended", "SELECT 1 / $1")
    assert curs[2].pgresult is None or curs[2].pgresult.status == 7  # PIPELINE_ABORTED
    ex.stmt(1, "skipped", None, None, None, "extended", "SELECT $1::text")
    # A pipeline that succeeds: three statements, one Sync.
    with c.pipeline():
        ps = [c.execute("SELECT g FROM generate_series(1, %s) g", (n,)) for n in (1, 2, 3)]
    for p in ps:
        ok(p, "SELECT g FROM generate_series(1, $1) g")
    # Binary COPY in and out (simple Query: no parameters).
    with c.cursor() as cur:
        with cur.copy("COPY t (id, name) FROM STDIN (FORMAT BINARY)") as cp:
            cp.set_types(["int4", "text"])
            for i in range(200, 210):
                cp.write_row((i, "c%d" % i))
        ex.stmt(1, "ok", cur.rowcount, "COPY", None, "copy",
                "COPY t (id, name) FROM STDIN (FORMAT BINARY)")
        n = 0
        with cur.copy("COPY (SELECT id, name FROM t ORDER BY id) TO STDOUT (FORMAT BINARY)") as cp:
            cp.set_types(["int4", "text"])
            for _ in cp.rows():
                n += 1
        ex.stmt(1, "ok", n, "COPY", None, "copy",
                "COPY (SELECT id, name FROM t ORDER BY id) TO STDOUT (FORMAT BINARY)")
    # ClientCursor: literals merged client-side, a simple Query.
    cc = psycopg.ClientCursor(c)
    q = cc.mogrify("SELECT %s::int + %s", (40, 2)).decode() if isinstance(
        cc.mogrify("SELECT 1"), bytes) else cc.mogrify("SELECT %s::int + %s", (40, 2))
    cc.execute("SELECT %s::int + %s", (40, 2))
    assert cc.fetchone()[0] == 42
    ok(cc, q, "simple")
    cur = c.execute("SELECT 'done'")
    ok(cur, "SELECT 'done'", "simple")
    c.close()


def sc_asyncpg(port, ex):
    import asyncio
    import asyncpg

    async def main():
        c = await asyncpg.connect(host="127.0.0.1", port=port, user="postgres",
                                  database="pytrace", ssl=False)
        st = await c.execute("CREATE TEMP TABLE t (id int, name text)")
        ex.stmt(1, "ok", rows_of(st), tag_of(st), None, "simple",
                "CREATE TEMP TABLE t (id int, name text)")
        st = await c.execute("INSERT INTO t SELECT g, 'a' || g FROM generate_series(1, 4) g")
        ex.stmt(1, "ok", rows_of(st), tag_of(st), None, "simple",
                "INSERT INTO t SELECT g, 'a' || g FROM generate_series(1, 4) g")
        q = "SELECT id, name FROM t WHERE id <= $1 ORDER BY id"
        for n in (2, 3, 4):
            rows = await c.fetch(q, n)
            ex.stmt(1, "ok", len(rows), "SELECT", None, "extended", q)
        # executemany: Bind/Execute per row, one Sync.
        await c.executemany("INSERT INTO t VALUES ($1, $2)", [(10, "x"), (11, "y"), (12, "z")])
        for _ in range(3):
            ex.stmt(1, "ok", 1, "INSERT", None, "extended", "INSERT INTO t VALUES ($1, $2)")
        try:
            await c.fetch("SELECT 1 / $1::int", 0)
        except asyncpg.PostgresError as e:
            ex.stmt(1, "error", None, None, e.sqlstate, "extended", "SELECT 1 / $1::int")
        try:
            await c.fetch("SELEC $1::int", 0)	# the Parse fails: no Execute ever sent
        except asyncpg.PostgresError as e:
            ex.stmt(1, "error", None, None, e.sqlstate, "extended", "SELEC $1::int")
        # fetchval: Execute with a row limit of 1, answered by PortalSuspended (no command tag)
        v = await c.fetchval("SELECT count(*) FROM t")
        assert v == 7
        ex.stmt(1, "ok", 1, None, None, "extended", "SELECT count(*) FROM t")
        await c.close()

    asyncio.run(main())


def sc_pg8000(port, ex):
    import pg8000
    c = pg8000.connect(user="postgres", host="127.0.0.1", port=port, database="pytrace")
    c.autocommit = True
    cur = c.cursor()
    cur.execute("CREATE TEMP TABLE t (id int, name text)")
    ex.stmt(1, "ok", None, "CREATE TABLE", None, "extended", "CREATE TEMP TABLE t (id int, name text)")
    cur.execute("INSERT INTO t VALUES (%s, %s)", (1, "one"))
    ex.stmt(1, "ok", cur.rowcount, "INSERT", None, "extended", "INSERT INTO t VALUES ($1, $2)")
    cur.execute("SELECT id, name FROM t WHERE id = %s", (1,))
    assert len(cur.fetchall()) == 1
    ex.stmt(1, "ok", cur.rowcount, "SELECT", None, "extended", "SELECT id, name FROM t WHERE id = $1")
    try:
        cur.execute("SELECT 1/0")
    except pg8000.ProgrammingError as e:
        code = e.args[0]["C"] if isinstance(e.args[0], dict) else e.args[2]
        ex.stmt(1, "error", None, None, code, "extended", "SELECT 1/0")
    c.close()


def sc_big(port, ex):
    """A 100 kB statement and a 100,000-row result (narrow int column)."""
    import psycopg2
    c = psycopg2.connect(dsn(port))
    c.autocommit = True
    cur = c.cursor()
    lit = "x" * 100000
    cur.execute("SELECT length('" + lit + "')")
    assert cur.fetchone()[0] == 100000
    ex.stmt(1, "ok", 1, "SELECT", None, "simple", cur.query[:100])
    cur.execute("SELECT g FROM generate_series(1, 100000) g")
    assert len(cur.fetchall()) == 100000
    ex.stmt(1, "ok", cur.rowcount, "SELECT", None, "simple", cur.query)
    c.close()


def server_ssl(upstream):
    import psycopg2
    c = psycopg2.connect("host=%s port=%d dbname=pytrace user=postgres sslmode=disable" % upstream)
    cur = c.cursor()
    cur.execute("SHOW ssl")
    v = cur.fetchone()[0]
    c.close()
    return v == "on"


def sc_sslprefer_plain(port, ex):
    """libpq's sslmode=prefer against a server without TLS: SSLRequest, 'N', then plaintext."""
    import psycopg2
    assert not server_ssl(UPSTREAM), "sslprefer_plain needs ssl = off in postgresql.conf"
    c = psycopg2.connect(dsn(port, "sslmode=prefer"))
    c.autocommit = True
    cur = c.cursor()
    cur.execute("SELECT 1")
    ex.stmt(1, "ok", 1, "SELECT", None, "simple", "SELECT 1")
    c.close()


def sc_tls(port, ex):
    """sslmode=require against a server with ssl = on: SSLRequest, 'S', then TLS."""
    import psycopg2
    assert server_ssl(UPSTREAM), "tls needs ssl = on and a certificate in the data directory"
    c = psycopg2.connect(dsn(port, "sslmode=require"))
    c.autocommit = True
    cur = c.cursor()
    cur.execute("SELECT 1")
    ex.tls(1)
    c.close()


def sc_cursors(port, ex):
    """Server-side cursors: asyncpg's portal fetched by Execute with a row limit (conn 1),
    psycopg 3's named cursor: DECLARE and FETCH FORWARD in the extended protocol (conn 2)."""
    import asyncio
    import asyncpg
    import psycopg

    async def main():
        c = await asyncpg.connect(host="127.0.0.1", port=port, user="postgres",
                                  database="pytrace", ssl=False)
        q = "SELECT g FROM generate_series(1, 25) g"
        async with c.transaction():
            ex.stmt(1, "ok", None, "BEGIN", None, "simple", "BEGIN;")	# asyncpg's own text
            cur = await c.cursor(q)
            got = []
            for n in (10, 10, 10):
                rows = await cur.fetch(n)
                got.append(len(rows))
            assert got == [10, 10, 5], got
            # Execute with a limit: PortalSuspended while rows remain (no tag), then the tag
            ex.stmt(1, "ok", 10, None, None, "extended", q)
            ex.stmt(1, "ok", 10, None, None, "extended", q)
            ex.stmt(1, "ok", 5, "SELECT", None, "extended", q)
        ex.stmt(1, "ok", None, "COMMIT", None, "simple", "COMMIT;")
        await c.close()

    asyncio.run(main())
    c = psycopg.connect(dsn(port), autocommit=False)
    with c.cursor(name="pgw_cur") as cur:
        cur.itersize = 10
        cur.execute("SELECT g FROM generate_series(1, %s) g", (25,))
        n = len(cur.fetchmany(10)) + len(cur.fetchmany(10)) + len(cur.fetchall())
        assert n == 25
    c.commit()
    # psycopg 3.1 sends its own BEGIN, FETCH, CLOSE and COMMIT in the extended protocol
    ex.stmt(2, "ok", None, "BEGIN", None, "extended", "BEGIN")
    ex.stmt(2, "ok", None, "DECLARE CURSOR", None, "extended",
            'DECLARE "pgw_cur" CURSOR FOR SELECT g FROM generate_series(1, $1) g')
    ex.stmt(2, "ok", 10, "FETCH", None, "extended", 'FETCH FORWARD 10 FROM "pgw_cur"')
    ex.stmt(2, "ok", 10, "FETCH", None, "extended", 'FETCH FORWARD 10 FROM "pgw_cur"')
    ex.stmt(2, "ok", 5, "FETCH", None, "extended", 'FETCH FORWARD ALL FROM "pgw_cur"')
    ex.stmt(2, "ok", None, "CLOSE CURSOR", None, "extended", 'CLOSE "pgw_cur"')
    ex.stmt(2, "ok", None, "COMMIT", None, "extended", "COMMIT")
    c.close()


SCENARIOS = {
    "cursors": sc_cursors,
    "psycopg2_simple": sc_psycopg2_simple,
    "psycopg2_cursor_notify": sc_psycopg2_cursor_notify,
    "psycopg3": sc_psycopg3,
    "asyncpg": sc_asyncpg,
    "pg8000": sc_pg8000,
    "big": sc_big,
    "sslprefer_plain": sc_sslprefer_plain,
    "tls": sc_tls,
}


def capture(name, fn, upstream, out):
    rec = Recorder(os.path.join(out, name + ".cap"), upstream)
    ex = Expect(os.path.join(out, name + ".expect"))
    ex.comment("%s: recorded by tests/tools/pgwire_capture.py %s" % (name, (fn.__doc__ or "").strip()))
    try:
        fn(rec.port, ex)
    finally:
        time.sleep(0.3)
        rec.close()
    ex.save()
    print("%s: %d connections, %d bytes" % (name, rec.nconn, os.path.getsize(rec.path)))


def http_corpus(out):
    """Real HTTP/1.1 requests and responses: python's http.server through the proxy, curl."""
    srv = subprocess.Popen([sys.executable, "-m", "http.server", "--bind", "127.0.0.1", "54401"],
                           cwd=os.path.dirname(os.path.abspath(__file__)),
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(1)
        rec = Recorder(os.path.join(out, "http.cap"), ("127.0.0.1", 54401))
        base = "http://127.0.0.1:%d" % rec.port
        for args in (["/"], ["/pgwire_capture.py"], ["-I", "/"], ["/nope"],
                     ["-X", "POST", "-H", "Content-Type: application/json", "-d", '{"a": 1}', "/"],
                     ["-H", "Range: bytes=0-99", "/pgwire_capture.py"]):
            path = args[-1]
            subprocess.run(["curl", "-s", "-o", "/dev/null"] + args[:-1] + [base + path], check=False)
        time.sleep(0.3)
        rec.close()
        print("http: %d connections" % rec.nconn)
    finally:
        srv.terminate()
        srv.wait()


def fuzz_seeds(capdir, outdir):
    """One seed per recorded connection in tests/fuzz/fuzz_pgwire.c's input format."""
    os.makedirs(outdir, exist_ok=True)
    for fn in sorted(os.listdir(capdir)):
        if not fn.endswith(".cap") or fn == "http.cap":
            continue
        d = open(os.path.join(capdir, fn), "rb").read()
        assert d[:8] == MAGIC
        o, conns = 8, {}
        while o < len(d):
            ts, conn, dr, n = REC.unpack_from(d, o)
            o += REC.size
            data = d[o:o + n]
            o += n
            if chr(dr) not in "CS":
                continue
            out = conns.setdefault(conn, bytearray([0]))
            srv = 0x80 if chr(dr) == "S" else 0
            for i in range(0, len(data), 65535):
                part = data[i:i + 65535]
                if len(part) < 127:
                    out += bytes([srv | len(part)]) + part
                else:
                    out += bytes([srv | 127]) + struct.pack("<H", len(part)) + part
        for conn, out in conns.items():
            out = bytes(out[:32768])
            with open(os.path.join(outdir, "%s_%d" % (fn[:-4], conn)), "wb") as f:
                f.write(out)
            # the same traffic with another options byte: midstream, small caps
            with open(os.path.join(outdir, "%s_%d_small" % (fn[:-4], conn)), "wb") as f:
                f.write(bytes([0x1b]) + out[1:])


def main():
    faulthandler.register(signal.SIGUSR1, all_threads=True)
    ap = argparse.ArgumentParser()
    ap.add_argument("--upstream", default="127.0.0.1:54329")
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "..", "data", "pgwire"))
    ap.add_argument("--http", action="store_true")
    ap.add_argument("--seeds", metavar="DIR", help="write fuzz seeds from the captures in --out")
    ap.add_argument("scenarios", nargs="*")
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    if a.http:
        http_corpus(a.out)
        return
    if a.seeds:
        fuzz_seeds(a.out, a.seeds)
        return
    h, p = a.upstream.rsplit(":", 1)
    global UPSTREAM
    UPSTREAM = (h, int(p))
    # the default: everything but tls, for a server with ssl = off (sslprefer_plain needs it)
    for name in a.scenarios or [n for n in SCENARIOS if n != "tls"]:
        capture(name, SCENARIOS[name], (h, int(p)), a.out)


if __name__ == "__main__":
    main()
