"""PostgreSQL statements through each driver, for the wire-protocol tests (test_wire.py).

Usage: wire_drivers.py MODE. Connects (libpq's environment: PGHOST, PGPORT, ...), prints
"ready PID", waits for the tracer (tracer_go), runs MODE's statements, prints one JSON line
{"ok": N, "errors": N, "skipped": N} of what the driver saw, and exits. Lines marked '# @name'
are the call sites the test expects.
"""
import asyncio
import json
import os
import struct
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from tracer_go import wait_for_tracer  # noqa: E402

N = 30
res = {"ok": 0, "errors": 0, "skipped": 0}


def dsn_kwargs():
    return dict(host=os.environ["PGHOST"], port=int(os.environ["PGPORT"]), user=os.environ["PGUSER"],
                database=os.environ["PGDATABASE"])


def ready():
    tls = https_beside()
    served = https_served()
    print("ready", os.getpid(), flush=True)
    wait_for_tracer()
    if tls:
        tls.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
    if served:
        client, server = served
        client.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
        server.recv(4096)
        server.sendall(b"HTTP/1.1 204 No Content\r\n\r\n")
        client.recv(4096)
    if tls or served:
        time.sleep(1)   # were it taken for PostgreSQL's, the probes would be attached by now


def https_served():
    """PT_HTTPS_SERVED=DIR: an HTTPS server of this process, and a connection to it from this
    process too, both opened before the tracer (certificate and key made in DIR): the accepted end
    is a server's connection, the other leads to a port no PostgreSQL has."""
    d = os.environ.get("PT_HTTPS_SERVED")
    if not d:
        return None
    import socket
    import threading
    from tls_sink import client_context, server_context
    sctx = server_context(d, "served")
    ls = socket.socket()
    ls.bind(("127.0.0.1", 0))
    ls.listen(1)
    got = []
    t = threading.Thread(target=lambda: got.append(sctx.wrap_socket(ls.accept()[0], server_side=True)))
    t.start()
    client = client_context().wrap_socket(socket.create_connection(ls.getsockname()))
    t.join()
    return client, got[0]


def https_beside():
    """PT_HTTPS_BESIDE=PORT: a TLS connection to 127.0.0.1:PORT (tls_sink.py) opened before the
    tracer, written on after it: HTTPS beside the PostgreSQL connection, not PostgreSQL's."""
    port = os.environ.get("PT_HTTPS_BESIDE")
    if not port:
        return None
    import socket
    from tls_sink import client_context
    return client_context().wrap_socket(socket.create_connection(("127.0.0.1", int(port))))


WARM = "SELECT 'warm'"   # the TLS tests' first statement: the test leaves it out of the counts
LEARN = "SELECT 'learn'"   # PT_LEARN_PORT's, on its own connection: read on the wire, counted


def warm_tls(run):
    """PT_TLS_WARM: one statement, then two seconds. Over TLS the tool sees the connection (its
    SSLRequest, or a TLS record of a connection opened before it) and then probes OpenSSL (the
    first time, after loading its programs: about 0.4 s here): this first statement goes before
    the probes are attached, the rest after."""
    if os.environ.get("PT_TLS_WARM"):
        run(WARM)
        time.sleep(2)


def mode_psycopg2():
    import psycopg2
    conn = psycopg2.connect("")
    conn.autocommit = True
    cur = conn.cursor()
    ready()
    warm_tls(cur.execute)
    for i in range(N):
        cur.execute("SELECT %s::int + 1", (i,))  # @psycopg2_loop
        cur.fetchall()
        res["ok"] += 1
    try:
        cur.execute("SELECT 1 / 0")
    except psycopg2.Error:
        res["errors"] += 1
    cur.execute("SELECT g FROM generate_series(1, 100000) g")  # 100,000 rows
    res["ok"] += len(cur.fetchall()) == 100000
    big = "SELECT '" + "x" * 100000 + "' AS big"  # a 100 kB statement, several writes
    cur.execute(big)
    res["ok"] += 1
    cur.execute("DECLARE c CURSOR WITH HOLD FOR SELECT g FROM generate_series(1, 50) g")
    cur.execute("FETCH 20 FROM c")
    cur.execute("FETCH 40 FROM c")
    cur.execute("CLOSE c")
    res["ok"] += 4
    cur.execute("LISTEN pt_chan")
    cur.execute("NOTIFY pt_chan, 'hello'")
    cur.execute("SELECT 42")
    res["ok"] += 3
    conn.close()


def mode_psycopg3():
    import psycopg
    conn = psycopg.connect("", autocommit=True)
    ready()
    for i in range(N):  # psycopg prepares after 5 executions: Bind/Execute without text
        conn.execute("SELECT %s::int * 2", (i,)).fetchall()  # @psycopg3_loop
        res["ok"] += 1
    try:
        conn.execute("SELECT %s::int / 0", (1,))
    except psycopg.Error:
        res["errors"] += 1
    with psycopg.ClientCursor(conn) as cur:
        for i in range(5):
            cur.execute("SELECT %s + 1", (i,))
            res["ok"] += 1
    conn.execute("CREATE TEMP TABLE t (id int, name text)")
    res["ok"] += 1
    with conn.cursor() as cur:
        with cur.copy("COPY t (id, name) FROM STDIN (FORMAT BINARY)") as cp:
            cp.set_types(["int4", "text"])
            for i in range(1000):
                cp.write_row((i, "n%d" % i))
        res["ok"] += 1
        n = 0
        with cur.copy("COPY (SELECT id, name FROM t) TO STDOUT (FORMAT BINARY)") as cp:
            for _ in cp:
                n += 1
        res["ok"] += 1
    # A pipeline with an error in the middle: the statements sent after it up to the Sync are
    # skipped by the server. psycopg may raise the error at any later execute() once it has read
    # it, so "skipped" here counts the statements attempted after the error: the tool sees 1 to 3.
    try:
        with conn.pipeline() as p:
            for i in range(5):
                conn.execute("INSERT INTO t VALUES (%s, 'p')", (i,))  # @psycopg3_pipeline
                res["ok"] += 1
            res["errors"] += 1
            conn.execute("SELECT 1 / %s::int", (0,))
            for i in range(3):
                res["skipped"] += 1
                conn.execute("SELECT %s::text", (str(i),))
            p.sync()
    except psycopg.Error:
        pass
    conn.close()


def mode_psycopg3_async():
    import psycopg

    async def main():
        conn = await psycopg.AsyncConnection.connect("", autocommit=True)
        ready()
        for i in range(N):
            cur = await conn.execute("SELECT %s::int - 1", (i,))  # @psycopg3_async_loop
            await cur.fetchall()
            res["ok"] += 1
        await conn.close()
    asyncio.run(main())


def mode_asyncpg():
    import asyncpg

    async def main():
        conn = await asyncpg.connect(**dsn_kwargs())
        ready()
        if os.environ.get("PT_TLS_WARM"):
            await conn.fetch(WARM)
            if os.environ.get("PT_LEARN_PORT"):
                # another process opens a new connection to the same server, unencrypted: the
                # tool learns its port from it, for this process's encrypted one
                import subprocess
                subprocess.run([sys.executable, __file__, "learn_child"], check=True)
                res["ok"] += 1
            await asyncio.sleep(2)   # as warm_tls()
        for i in range(N):
            await conn.fetch("SELECT $1::int + 2", i)  # @asyncpg_loop
            res["ok"] += 1
        stmt = await conn.prepare("SELECT $1::int * 3")
        for i in range(5):
            await stmt.fetchval(i)  # @asyncpg_prepared
            res["ok"] += 1
        await conn.execute("CREATE TEMP TABLE a (id int)")
        res["ok"] += 1
        await conn.executemany("INSERT INTO a VALUES ($1)", [(i,) for i in range(10)])  # @asyncpg_executemany
        res["ok"] += 10
        try:
            await conn.fetch("SELECT 1 / $1::int", 0)
        except asyncpg.PostgresError:
            res["errors"] += 1
        await conn.close()
    asyncio.run(main())


def mode_learn_child():
    """PT_LEARN_PORT's other process: LEARN on a plaintext connection, held open a moment (the
    tool reads where it leads as it comes)."""
    import asyncpg

    async def main():
        conn = await asyncpg.connect(**dsn_kwargs(), ssl=False)
        await conn.fetch(LEARN)
        await asyncio.sleep(0.5)
        await conn.close()
    asyncio.run(main())
    sys.exit(0)


def pg8000_kwargs():
    host = os.environ["PGHOST"]
    kw = dict(user=os.environ["PGUSER"], database=os.environ["PGDATABASE"])
    if host.startswith("/"):
        kw["unix_sock"] = os.path.join(host, ".s.PGSQL.%s" % os.environ["PGPORT"])
    else:
        kw.update(host=host, port=int(os.environ["PGPORT"]))
    if os.environ.get("PT_PG8000_SSL"):
        kw["ssl"] = True   # an SSLRequest, then TLS (ssl.wrap_socket) on its blocking socket
    return kw


def mode_pg8000():
    import pg8000
    kw = pg8000_kwargs()
    ready()  # connects after the tracer: its StartupMessage is seen
    conn = pg8000.connect(**kw)
    conn.autocommit = True
    cur = conn.cursor()
    warm_tls(cur.execute)
    for i in range(N):
        cur.execute("SELECT %s::int + 3", (i,))  # @pg8000_loop
        cur.fetchall()
        res["ok"] += 1
    try:
        cur.execute("SELECT 1 / 0")
    except pg8000.Error:
        res["errors"] += 1
    conn.close()


class RawWire:
    """A client of PostgreSQL's protocol in a few lines (trust authentication, as the test
    cluster's): what no driver sends on demand, for mode_close_pairs."""

    def __init__(self):
        import socket
        host, port = os.environ["PGHOST"], int(os.environ["PGPORT"])
        if host.startswith("/"):
            self.sock = socket.socket(socket.AF_UNIX)
            self.sock.connect(os.path.join(host, ".s.PGSQL.%d" % port))
        else:
            self.sock = socket.create_connection((host, port))
        self.buf = b""
        body = b"".join(k.encode() + b"\0" + v.encode() + b"\0" for k, v in
                        (("user", os.environ["PGUSER"]), ("database", os.environ["PGDATABASE"]))) + b"\0"
        self.sock.sendall(struct.pack("!ii", 8 + len(body), 196608) + body)
        self.until_ready()

    @staticmethod
    def msg(t, body=b""):
        return t + struct.pack("!i", 4 + len(body)) + body

    def parse(self, stmt, text):
        return self.msg(b"P", stmt.encode() + b"\0" + text.encode() + b"\0" + struct.pack("!h", 0))

    def bind_execute(self, portal, stmt, value):
        v = str(value).encode()
        bind = portal.encode() + b"\0" + stmt.encode() + b"\0" + struct.pack("!hhi", 0, 1, len(v)) + v + \
            struct.pack("!h", 0)
        return self.msg(b"B", bind) + self.msg(b"E", portal.encode() + b"\0" + struct.pack("!i", 0))

    def close_portal(self, portal):
        # pg8000 1.10's second round trip of each statement, byte for byte
        return self.msg(b"C", b"P" + portal.encode() + b"\0") + self.msg(b"H") + self.msg(b"S")

    def until_ready(self, step=65536, readies=1):
        """Reads (step bytes at most a read) up to the readies-th ReadyForQuery: (ok, errors)."""
        ok = errors = 0
        while True:
            while len(self.buf) >= 5 and len(self.buf) >= 1 + struct.unpack("!i", self.buf[1:5])[0]:
                t, n = self.buf[:1], struct.unpack("!i", self.buf[1:5])[0]
                self.buf = self.buf[1 + n:]
                ok += t == b"C"
                errors += t == b"E"
                if t == b"Z":
                    readies -= 1
                    if not readies:
                        return ok, errors
            got = self.sock.recv(step)
            if not got:
                raise EOFError("server closed")
            self.buf += got


def mode_close_pairs():
    """Statements each followed by the Close of its portal in a round trip of its own, as pg8000
    1.10 sends them (the tool keeps those round trips in the kernel), answered in the three ways
    that matter: in one read (kept), the client writing its next statement before reading the
    answer (the kept Sync goes out with that write), and the answer read a few bytes at a time
    (not a whole message a read: it goes out with the first piece)."""
    ready()
    w = RawWire()
    w.sock.sendall(w.parse("s", "SELECT $1::int + 9") + w.msg(b"S"))
    w.until_ready()
    for i in range(N):
        w.sock.sendall(w.bind_execute("p%d" % i, "s", i) + w.msg(b"S"))  # @close_pairs_loop
        ok, errors = w.until_ready()
        res["ok"] += ok
        res["errors"] += errors
        w.sock.sendall(w.close_portal("p%d" % i))
        if i % 3 == 1:
            w.sock.sendall(w.bind_execute("q%d" % i, "s", i) + w.msg(b"S"))
            ok, errors = w.until_ready(readies=2)
            res["ok"] += ok
            res["errors"] += errors
            w.sock.sendall(w.close_portal("q%d" % i))
        w.until_ready(step=3 if i % 3 == 2 else 65536)
    w.sock.sendall(w.msg(b"X"))
    w.sock.close()


# Statements prepared before the tracer (each connection's statement cache warm): the wire then
# carries their names only, the tool reads their texts from the driver's frame at the send. Paced,
# as a service's requests are: the first few after the tracer starts keep their names.
WARM_GAP = 0.03


# Their texts are not ASCII (a column's name: WARM_ALIAS), each mode's str of another kind
# (CPython's compact forms: Latin-1, UCS-2, UCS-4; psycopg 3's is bytes, UTF-8 already).
WARM_ALIAS = {"warm_asyncpg": "café", "warm_uvloop": "\U0001f600", "warm_psycopg3": "naïve €",
              "warm_pg8000": "цена"}


N_PREPARED = 10   # runs of mode_warm_asyncpg's statement prepared by the app


def mode_warm_asyncpg(uvloop=False):
    import asyncpg
    alias = WARM_ALIAS["warm_uvloop" if uvloop else "warm_asyncpg"]

    async def main():
        conn = await asyncpg.connect(**dsn_kwargs())
        k = 5
        for i in range(3):
            await conn.fetchval(f'SELECT $1::int + {k} AS "{alias}"', i)
        # and one the app prepared itself, kept and run by its PreparedStatement
        stmt = await conn.prepare(f'SELECT $1::int * 4 AS "{alias}"')
        await stmt.fetchval(1)
        ready()
        if os.environ.get("PT_TLS_WARM"):   # over TLS: until OpenSSL's probes are attached
            await conn.fetch(WARM)
            await asyncio.sleep(2)   # as warm_tls()
        for i in range(N):
            # a str made for the call, freed right after it: the tool must copy the text at the send
            await conn.fetchval(f'SELECT $1::int + {k} AS "{alias}"', i)  # @warm_asyncpg
            res["ok"] += 1
            await asyncio.sleep(WARM_GAP)
        for i in range(N_PREPARED):
            await stmt.fetchval(i)  # @warm_asyncpg_prepared
            res["ok"] += 1
            await asyncio.sleep(WARM_GAP)
        await conn.close()
    if uvloop:  # which writes from a loop callback: the text comes from its transport.write's probe
        import uvloop
        uvloop.install()
    asyncio.run(main())


def mode_warm_psycopg3():
    import psycopg
    conn = psycopg.connect("", autocommit=True)
    q = 'SELECT %%s::int + 6 AS "%s"' % WARM_ALIAS["warm_psycopg3"]
    for i in range(6):  # prepared at the 5th execution (prepare_threshold)
        conn.execute(q, (i,)).fetchall()
    ready()
    warm_tls(lambda q: conn.execute(q).fetchall())   # over TLS: until libpq's probes are attached
    for i in range(N):
        conn.execute(q, (i,)).fetchall()  # @warm_psycopg3
        res["ok"] += 1
        time.sleep(WARM_GAP)
    conn.close()


def mode_warm_pipeline():
    """psycopg 3's pipelines and executemany (a pipeline too, where libpq has them) of statements
    prepared before tracing: their writes come from the pipeline's _communicate_gen, after
    _maybe_prepare_gen has returned; _execute_gen's and _executemany_gen_pipeline's pgq hold
    their texts. Then a statement prepared and run through libpq's own calls (conn.pgconn), where
    no frame of the driver's holds a text: the tool asks for texts at each, takes none, and stops
    copying them (its give-up, PROCS_TEXT_ASKS_MAX: 64 asks, and 4 more for each text taken)."""
    import psycopg
    conn = psycopg.connect("", autocommit=True)
    conn.execute("CREATE TEMP TABLE tp (id int)")
    q = "SELECT %s::int + 8"
    ins = "INSERT INTO tp VALUES (%s)"
    for i in range(6):  # prepared at the 5th execution (prepare_threshold)
        conn.execute(q, (i,)).fetchall()
    cur = conn.cursor()
    cur.executemany(ins, [(i,) for i in range(3)])   # executemany prepares at once
    conn.pgconn.prepare(b"raw_stmt", b"SELECT $1::int + 9")
    ready()
    for i in range(PIPELINES):
        with conn.pipeline():
            for j in range(3):
                conn.execute(q, (j,))  # @warm_pipeline
                res["ok"] += 1
        cur.executemany(ins, [(i,), (i + 1,)])  # @warm_executemany
        res["ok"] += 2
        time.sleep(WARM_GAP)
    for i in range(RAW):
        r = conn.pgconn.exec_prepared(b"raw_stmt", [b"1"])
        if r.status == psycopg.pq.ExecStatus.TUPLES_OK:
            res["ok"] += 1
    conn.close()


PIPELINES = 20   # 60 statements in pipelines, 40 by executemany
RAW = 120   # more asks than PROCS_TEXT_ASKS_MAX and 4 for each text taken


def mode_warm_pg8000():
    import pg8000
    conn = pg8000.connect(**pg8000_kwargs())
    conn.autocommit = True
    cur = conn.cursor()
    q = 'SELECT %%s::int + 7 AS "%s"' % WARM_ALIAS["warm_pg8000"]
    cur.execute(q, (0,))  # pg8000 1.10 names every statement it prepares
    cur.fetchall()
    ready()
    for i in range(N):
        cur.execute(q, (i,))  # @warm_pg8000
        cur.fetchall()
        res["ok"] += 1
        time.sleep(WARM_GAP)
    conn.close()


def mode_psycopg2_late():
    """Connects after the tracer: its StartupMessage (or SSLRequest) is seen."""
    import psycopg2
    ready()
    conn = psycopg2.connect("")
    conn.autocommit = True
    cur = conn.cursor()
    for i in range(10):
        cur.execute("SELECT %s::int + 4", (i,))
        res["ok"] += 1
    conn.close()


def mode_mixed_tls():
    """One encrypted connection (TCP, sslmode=require) and one plaintext (the unix socket) in one
    process: with --sql-source auto the first is read through libpq's probes, the second on the
    wire, each statement once."""
    import psycopg2
    ready()
    tls = psycopg2.connect(host=os.environ["PT_TLS_HOST"], sslmode="require")
    tls.autocommit = True
    plain = psycopg2.connect("")
    plain.autocommit = True
    time.sleep(1)  # libpq's probes are attached when the tool sees the encrypted connection (ASan: slower)
    a, b = tls.cursor(), plain.cursor()
    for i in range(10):
        a.execute("SELECT %s::int + 5", (i,))  # @mixed_tls
        res["ok"] += 1
        b.execute("SELECT %s::int + 6", (i,))  # @mixed_plain
        res["ok"] += 1
    tls.close()
    plain.close()


def mode_dies():
    """A client that dies in the middle of a statement: the statement is unfinished, not a success."""
    import psycopg2
    conn = psycopg2.connect("")
    conn.autocommit = True
    cur = conn.cursor()
    ready()
    cur.execute("SELECT 7")
    res["ok"] += 1
    print(json.dumps(res), flush=True)
    import signal
    import threading
    threading.Timer(0.5, lambda: os.kill(os.getpid(), signal.SIGKILL)).start()
    cur.execute("SELECT pg_sleep(5)")


MODES = {"psycopg2": mode_psycopg2, "psycopg3": mode_psycopg3, "psycopg3_async": mode_psycopg3_async,
         "asyncpg": mode_asyncpg, "pg8000": mode_pg8000, "psycopg2_late": mode_psycopg2_late, "mixed_tls": mode_mixed_tls, "dies": mode_dies,
         "close_pairs": mode_close_pairs,
         "learn_child": mode_learn_child, "warm_asyncpg": mode_warm_asyncpg,
         "warm_uvloop": lambda: mode_warm_asyncpg(uvloop=True), "warm_psycopg3": mode_warm_psycopg3,
         "warm_pg8000": mode_warm_pg8000, "warm_pipeline": mode_warm_pipeline}

if __name__ == "__main__":
    MODES[sys.argv[1]]()
    print(json.dumps(res), flush=True)
    time.sleep(0.3)
