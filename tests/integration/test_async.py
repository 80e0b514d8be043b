#!/usr/bin/python3
"""Integration tests of requests and N+1 on servers that serve many requests at once on one
thread (asyncio event loops, gevent's hub), and on waitress: statements attributed by task
(src/requests.h), against a real PostgreSQL 15 cluster of our own (harness.Cluster).

Services (workloads/web_async.py; server + driver):
  uvicorn-starlette  asyncpg               uvicorn-fastapi  psycopg 3 async
  hypercorn (Starlette behind two middlewares)  psycopg 3 async   aiohttp  aiopg (psycopg2's async mode)
  uvicorn-fastapi    SQLAlchemy 1.4's asyncio extension over asyncpg (its greenlet_spawn bridge)
  uvicorn-asyncpg-fastapi ... see SERVICES below
  tornado            Tornado's own server, asyncpg (its routes by the app's URL specs; on every
                     interpreter too, against a stand-in of tornado.web: stdlib-tornado-*)
  gevent             gunicorn -k gevent, pg8000 (cooperative under gevent's patching)
  eventlet           gunicorn -k eventlet, pg8000 (likewise under eventlet's)
  waitress           psycopg2 (its main thread reads, its worker threads answer)

Also: uvicorn on uvloop, which writes responses and asyncpg's statements later, from a loop
callback (their tasks come from the probe on uvloop's transport.write), with asyncpg, and with
psycopg 3 under gunicorn's UvicornWorker (two forked workers) and in the edge cases, FastAPI behind two @app.middleware("http")
functions, whose endpoint runs in a task two levels below the response's writer (keyed by the request's ASGI scope, which
both hold), streamed responses beside N+1 requests (uvicorn-starlette-streaming), Django's ASGI handler
(its thread pool's statements counted apart), psycopg 3 async over TLS (libpq's probes), and
uvicorn + Starlette with a long poll, a WebSocket and HTTP/1.1 pipelining beside the usual
clients (uvicorn-starlette-edges).

For each: 8 client threads on keep-alive connections send a shuffled mix of the N+1 endpoint
(K+1 statements), its fixed twin (1), a CPU endpoint (0) and a slow one (2, with a 50 ms sleep
between them that lets the loop serve others), each request on a path of its own. Checks:
per-route counts equal what was sent; each request's statement count in the tool's request log
equals the count the app returned for it (X-Queries); N+1 flagged with K repeats at the app's
line on the N+1 route and nowhere else; 0 statements unattributed, for any reason.

Run as root from the repository: tests/integration/test_async.py [-k SUBSTRING[,SUBSTRING...]] [-v]
Ends with "N passed, N failed".
"""
import base64
import http.client
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import WORKLOADS, Cluster, free_port, log, marker_lines, record, wait_http  # noqa: E402

PY = "/usr/bin/python3"
GUNICORN = "/usr/bin/gunicorn"
APP = os.path.join(WORKLOADS, "web_async.py")
K = 12
CLIENTS = 8
PER_CLIENT = {"n1": 3, "fixed": 3, "cpu": 2, "slow": 3}

# name, server, driver (the N+1's line is web_async.py's "# @n1_DRIVER")
SERVICES = [
    ("uvicorn-starlette-asyncpg", "uvicorn-starlette", "asyncpg"),
    ("uvicorn-fastapi-psycopg", "uvicorn-fastapi", "psycopg"),
    # SQLAlchemy's asyncio extension over asyncpg (FastAPI's common stack): the driver's calls run
    # in a greenlet of SQLAlchemy's, its awaits in the request's task (greenlet_spawn)
    ("uvicorn-fastapi-sqlalchemy", "uvicorn-fastapi", "sqlalchemy"),
    ("gunicorn-uvicorn-worker-psycopg", "gunicorn-uvicorn", "psycopg"),
    ("aiohttp-aiopg", "aiohttp", "aiopg"),
    # Tornado's own server (Jupyter's, and many services'): handlers' coroutines on asyncio's loop
    ("tornado-asyncpg", "tornado", "asyncpg"),
    ("gunicorn-gevent-pg8000", "gevent", "pg8000"),
    ("gunicorn-eventlet-pg8000", "eventlet", "pg8000"),
    ("waitress-psycopg2", "waitress", "psycopg2"),
    ("uvicorn-fastapi-def-psycopg2", "uvicorn-fastapi-def", "psycopg2"),
    # behind two @app.middleware("http") functions: the endpoint runs two tasks below the response's
    # writer; FastAPI with asyncpg, and asyncpg on uvloop, are tested here
    ("uvicorn-fastapi-mw-asyncpg", "uvicorn-fastapi-mw", "asyncpg"),
    ("uvicorn-uvloop-fastapi-mw-asyncpg", "uvicorn-uvloop-fastapi-mw", "asyncpg"),
    ("uvicorn-fastapi-def-mw-psycopg2", "uvicorn-fastapi-def-mw", "psycopg2"),
    # hypercorn (its per-request HTTPStream holds the scope), tested behind the middleware only, with
    # Starlette's app (no frame names its routes there: the app's routes are read, src/starroutes.h)
    ("hypercorn-mw-psycopg", "hypercorn-mw", "psycopg"),
]

# Where a statement's stack stops at the route frame (Starlette's Route.handle, aiohttp's
# _handle_request, Tornado's RequestHandler._execute), its task read from asyncio's running tasks (struct pt_proc's run_tasks), behind
# @app.middleware too (its key the ASGI scope, from the child task's coroutine); not in a thread
# pool (no task runs on that thread)
CUT_SERVICES = {"uvicorn-starlette-asyncpg", "uvicorn-fastapi-psycopg", "gunicorn-uvicorn-worker-psycopg",
                "aiohttp-aiopg", "tornado-asyncpg", "uvicorn-fastapi-mw-asyncpg", "uvicorn-uvloop-fastapi-mw-asyncpg"}
SLOW_LOG_SERVICE = "uvicorn-starlette-asyncpg"

SCHEMA = """
DROP TABLE IF EXISTS async_items, async_owners;
CREATE TABLE async_owners (id int PRIMARY KEY, name text);
CREATE TABLE async_items (id int PRIMARY KEY, owner_id int REFERENCES async_owners (id));
INSERT INTO async_owners SELECT g, 'owner' || g FROM generate_series(1, %d) g;
INSERT INTO async_items SELECT g, g FROM generate_series(1, %d) g;
""" % (K, K)


def route_ids(server):
    """How the tool names the id segment of server's routes: the framework's own route template
    where its response is written in the route's task (Starlette's and FastAPI's `{rid}`, from
    Route.handle's route: src/routes.h; on uvloop, which writes from a loop callback, from the
    task's stack where it queued the response: src/uvwrite.h), else the folded path's `{id}`
    (gunicorn's gevent WSGI, waitress, plain asyncio). aiohttp's: its resources' canonical paths,
    read from the app's router, whose request handler the walker gives (src/aioroutes.h).
    Tornado's: its URL specs' regexes, a named group as "<rid>", read from the app of the request
    handler the walker gives (src/tornroutes.h)."""
    if server == "tornado":
        return "<rid>"
    if server.endswith("-mw"):
        # behind @app.middleware("http"), the response is streamed by a task without Route.handle:
        # FastAPI's route is read from the request's scope (scope["route"]; struct pt_proc's
        # scope_route_off)
        return "{rid}"
    return "{rid}" if server in ("uvicorn-starlette", "uvicorn-fastapi", "uvicorn-uvloop-fastapi", "uvicorn-fastapi-def",
                                 "gunicorn-uvicorn", "hypercorn", "aiohttp") else "{id}"


def route_of(path, ids="{id}"):
    return re.sub(r"/\d+/", "/%s/" % ids, path)


def get(conn, path):
    """The response to GET path on conn. A keep-alive connection that the server closed before it
    read the request (hypercorn 0.13 does, now and then, between two requests) is retried once
    on a new connection, as HTTP clients do: the server saw nothing of the first attempt."""
    try:
        conn.request("GET", path)
        return conn, conn.getresponse()
    except http.client.RemoteDisconnected:
        conn.close()
        conn = http.client.HTTPConnection("127.0.0.1", conn.port, timeout=20)
        conn.request("GET", path)
        return conn, conn.getresponse()


def client(port, paths, out, errors):
    """GET each path on one keep-alive connection (reopened if the server closes it)."""
    conn = None
    for path in paths:
        try:
            if conn is None:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
            conn, r = get(conn, path)
            r.read()
            if r.status != 200:
                errors.append("%s: %d" % (path, r.status))
            out[path] = int(r.getheader("X-Queries", "-1"))
            if r.will_close:
                conn.close()
                conn = None
        except (OSError, http.client.HTTPException) as e:
            errors.append("%s: %s" % (path, e))
            if conn:
                conn.close()
            conn = None
    if conn:
        conn.close()


def run_threads(threads):
    """Start them all, then wait for them all."""
    for th in threads:
        th.start()
    for th in threads:
        th.join()


def drive(port, per_client=None):
    """CLIENTS threads at once, each sending per_client's requests (PER_CLIENT); returns
    ({path: the app's statement count}, errors)."""
    rnd = random.Random(14)
    plans, rid = [], 1000
    for _ in range(CLIENTS):
        paths = []
        for kind, n in (per_client or PER_CLIENT).items():
            for _ in range(n):
                paths.append("/%s/%d/" % (kind, rid))
                rid += 1
        rnd.shuffle(paths)
        plans.append(paths)
    out, errors = {}, []
    run_threads([threading.Thread(target=client, args=(port, p, out, errors)) for p in plans])
    return out, errors


def start_server(name, server, driver, port, env, tmp):
    logf = open(os.path.join(tmp, name + ".log"), "w")
    if server in ("gevent", "eventlet"):
        env = dict(env, WEB_ASYNC="%s %s %d %d" % (server, driver, port, K))
        argv = [PY, GUNICORN, "-k", server, "-w", "1", "--worker-connections", "100", "-b", "127.0.0.1:%d" % port,
                "--chdir", WORKLOADS, "web_async:application"]
    elif server == "gunicorn-uvicorn":
        # the common production set-up of an ASGI app: gunicorn's workers run uvicorn, whose loop
        # ("auto") is uvloop wherever uvloop is installed (Debian 12: python3-uvloop)
        env = dict(env, WEB_ASYNC="%s %s %d %d" % (server, driver, port, K))
        argv = [PY, GUNICORN, "-k", "uvicorn.workers.UvicornWorker", "-w", "2", "-b", "127.0.0.1:%d" % port,
                "--chdir", WORKLOADS, "web_async:asgi"]
    else:
        argv = [PY, APP, server, driver, str(port), str(K)]
    return subprocess.Popen(argv, env=env, stdout=logf, stderr=logf, start_new_session=True)


def stop_server(p):
    try:
        os.killpg(p.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        p.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        p.wait()


def case(cluster, tmp, name, server, driver):
    env = dict(os.environ, **cluster.client_env())
    port = free_port(18600, 18700)
    # FastAPI's def endpoints run in anyio's thread pool, which the tool finds in the server's
    # modules when it attaches: its statements are given by task from the first request (/warm/).
    # On uvloop, asyncpg's statements keep their task through uvloop's probe on connections the
    # wire reader follows from their start; a connection from before tracing is recognised at its
    # first statement, which keeps the loop's stack (README): they are opened by /warm/.
    # Behind BaseHTTPMiddleware the responses are streamed by a task whose server object names the
    # request: the tool learns where its class keeps the scope from the first one (/warm/).
    # Tornado's request handler dies with its request: the tool learns where handler classes keep
    # the app from the first one's class, and names the later ones by the app's rules (/warm/).
    uvloop_asyncpg = "uvloop" in server and driver == "asyncpg"
    if uvloop_asyncpg:
        env["WEB_ASYNC_LAZY"] = "1"
    check(name, start_server(name, server, driver, port, env, tmp), port, tmp, APP, "n1_" + driver,
          warm="fastapi-def" in name or uvloop_asyncpg or "-mw-" in name or server == "tornado", pool="fastapi-def" in name,
          ids=route_ids(server))


def case_stdlib(cluster, tmp, it):
    """workloads/web_async_stdlib.py on interpreter it (a chroot's through the cluster's TCP port).
    Its requests run through a stand-in of Starlette's Route.handle: the tool's routes are the
    declared templates on every interpreter."""
    name = "stdlib-asyncio-" + it.label
    env = dict(os.environ, **cluster.client_env(tcp=bool(it.root)))
    port = free_port(18600, 18700)
    logf = open(os.path.join(tmp, name + ".log"), "w")
    script = it.workload("web_async_stdlib.py")
    p = subprocess.Popen(it.argv(script) + [str(port), str(K)], env=env, stdout=logf, stderr=logf,
                         start_new_session=True)
    # and /stream/: a StreamingResponse's child task writes it (a stand-in of Starlette's and
    # anyio's): no Route.handle on its stack, its route the folded path; the first one teaches
    # the tool where the task group keeps its host task
    # 3.11+: statements' stacks stop at the stand-in's Route.handle, their task read directly
    # (3.11-3.13: from asyncio's running tasks; 3.14+: from the thread state, where _asyncio's
    # .AsyncioDebug section says); 3.8-3.10 whole
    cut = tuple(it.version[:2]) >= (3, 11)
    check(name, p, port, tmp, it.host_path(script), "n1_stdlib", ids="{rid}", warm=True,
          per_client=dict(PER_CLIENT, stream=2), warm_path="/stream/999/", kind_ids={"stream": "{id}"}, cut=cut)


def case_stdlib_tornado(cluster, tmp, it):
    """workloads/web_async_stdlib.py's stand-in of Tornado on interpreter it: the walker reads the
    route frame's self from its cell (3.8-3.10: a cell of its own; 3.11+: the argument's slot),
    then the handler's class, then, by the recipe the tool works out from that class (its
    instances' values: 3.8-3.10 a split dict, 3.11-3.12 a values array, 3.13+ inline), the app,
    whose rules name the requests "/n1/<rid>/" on every interpreter."""
    name = "stdlib-tornado-" + it.label
    env = dict(os.environ, **cluster.client_env(tcp=bool(it.root)))
    port = free_port(18600, 18700)
    logf = open(os.path.join(tmp, name + ".log"), "w")
    script = it.workload("web_async_stdlib.py")
    p = subprocess.Popen(it.argv(script) + [str(port), str(K), "0", "tornado"], env=env, stdout=logf, stderr=logf,
                         start_new_session=True)
    check(name, p, port, tmp, it.host_path(script), "n1_stdlib", ids="<rid>", warm=True,
          cut=tuple(it.version[:2]) >= (3, 11))


def traced_run(name, p, port, tmp, load, clients_ok="client saw 200s", extra=()):
    """Trace server p (on port) while load() runs, as the tool's user would: waits for the server,
    starts the tool with --json and --requests-log, runs load() -> ({path: the app's statement
    count}, [errors]), stops the tool. Records the server answering, the tool's exit and the
    clients' errors; returns (app, the JSON report, the requests log's path, the tool's stderr),
    or None when the server or the tool failed."""
    if not record(name + ": server answers", wait_http(port, "/health/", 30),
                  open(os.path.join(tmp, name + ".log")).read()[-1500:]):
        return None
    js, rlog = os.path.join(tmp, name + ".json"), os.path.join(tmp, name + ".requests.jsonl")
    t = harness.Tracer(["-p", str(p.pid), "--json", js, "--requests-log", rlog] + list(extra))
    t.wait_tracing(30)
    time.sleep(0.3)
    app, errors = load()
    time.sleep(0.3)
    rc, _, stderr = t.stop(60)
    with open(os.path.join(tmp, name + ".stderr"), "w") as f:
        f.write(stderr)
    if not record(name + ": tool exits 0", rc == 0, stderr[-800:]):
        return None
    record(name + ": " + clients_ok, not errors, "; ".join(errors[:5]))
    with open(js) as f:
        return app, json.load(f), rlog, stderr


def route_counts(doc):
    """{(route, status): requests} of a JSON report."""
    got = {}
    for r in doc.get("requests", []):
        got[(r["route"], r["status"])] = got.get((r["route"], r["status"]), 0) + r["count"]
    return got


def case_streaming(cluster, tmp):
    """Streamed responses beside N+1 requests on uvicorn + Starlette: Starlette writes a stream from
    a task of its own (a child of its request's task, in an anyio task group), and its endpoint
    sends a statement before it (in the request's task) and one per chunk after the response
    began. Each stream must end as one request (not merged with the next one on its connection,
    not endless), its statement before the stream must be its own (the writer's key is its task
    group's host task: struct pt_proc's host_cell), none of its statements may go to another
    request, and those sent while it streams are counted as unattributed. A first stream (the
    warm-up, alone: attributed by thread) teaches the tool where TaskGroup and CancelScope keep
    their attributes (from the classes: procs__host_recipes). The app is made by uvicorn from a
    factory (no module global holds it): the tool reads its routes through a streamed request's
    scope (scope["app"]), the warm-up's, which streams slowly enough for the tool to read it."""
    name = "uvicorn-starlette-streaming"
    env = dict(os.environ, **cluster.client_env())
    port = free_port(18600, 18700)
    p = start_server(name, "uvicorn-starlette-factory", "asyncpg", port, env, tmp)
    warm = "/stream/4999/?pause=0.2"

    def load():
        app, errors = {}, []
        client(port, [warm], app, errors)
        time.sleep(1)
        rnd, plans, rid = random.Random(15), [], 5000
        for _ in range(CLIENTS):
            paths = ["/%s/%d/" % (k, rid + i) for i, k in enumerate(("n1", "n1", "stream", "stream", "slow"))]
            rid += 10
            rnd.shuffle(paths)
            plans.append(paths)
        run_threads([threading.Thread(target=client, args=(port, pl, app, errors)) for pl in plans])
        return app, errors

    try:
        ran = traced_run(name, p, port, tmp, load)
        if not ran:
            return
        app, doc, rlog, _ = ran
        got = route_counts(doc)
        # a StreamingResponse is written by a task of its own, whose stack has no Route.handle: its
        # route is named by the app's routes, read once from the app object (src/starroutes.h)
        want = {("/n1/{rid}/", 200): 2 * CLIENTS, ("/stream/{rid}/", 200): 2 * CLIENTS + 1,
                ("/slow/{rid}/", 200): CLIENTS}
        record(name + ": each stream ends as one request, per-route counts equal what was sent", got == want,
               "got %s, want %s" % (got, want))
        up = doc["http"]["url_patterns"]
        record(name + ": the streams named by the app's routes, read once from the app its requests' scope holds",
               up["starlette_processes_read"] == 1 and up["requests_named"] == 2 * CLIENTS + 1 and
               up["endpoints"] >= 9 and up["read_errors"] == 0 and up["reads"] == 1, json.dumps(up))
        lines = {json.loads(l)["path"]: json.loads(l) for l in open(rlog)}
        lines.update({json.loads(l)["path"].split("?")[0]: json.loads(l) for l in open(rlog)})
        bad = ["%s: tool %s, app %d" % (pa, lines.get(pa.split("?")[0], {}).get("queries"), n)
               for pa, n in sorted(app.items()) if lines.get(pa.split("?")[0], {}).get("queries") != n]
        record(name + ": each request has its own statements, a stream the one before it began",
               not bad and len(app) == 5 * CLIENTS + 1, "; ".join(bad[:6]))
        record(name + ": the writers' task groups' host tasks read by the walker",
               doc["processes"].get("streaming_response_hosts") == 1, json.dumps(doc["processes"]))
        asm = doc["http"]["assembly"]
        # after their response began: claimed by no response, or before the request that the task's
        # address answers next was read (outside requests)
        unattr = sum(v for k, v in asm.items() if k.startswith("queries_unattributed"))
        record(name + ": the streams' statements are counted as unattributed or outside requests",
               unattr + asm["queries_outside_requests"] == 3 * (2 * CLIENTS + 1) and
               asm["queries_attributed"] == sum(app.values()) and asm["requests_by_host_task"] == 2 * CLIENTS,
               json.dumps(asm))
    finally:
        stop_server(p)


def pipelined(port, paths, out, errors):
    """HTTP/1.1 pipelining: every request of paths in one write on one connection, then the
    responses read in order."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=20) as sk:
            sk.sendall(b"".join(b"GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n" % pa.encode() for pa in paths))
            f = sk.makefile("rb")
            for pa in paths:
                status = f.readline().split()
                headers = {}
                while True:
                    line = f.readline()
                    if line in (b"\r\n", b""):
                        break
                    k, _, v = line.decode("latin-1").partition(":")
                    headers[k.strip().lower()] = v.strip()
                f.read(int(headers.get("content-length", "0")))
                if len(status) < 2 or status[1] != b"200":
                    errors.append("%s (pipelined): %r" % (pa, status))
                out[pa] = int(headers.get("x-queries", "-1"))
    except OSError as e:
        errors.append("pipelined: %s" % e)


def websocket(port, errors, messages=3):
    """A WebSocket: the upgrade (101), a few echoed text frames a little apart, then a close."""
    key = base64.b64encode(os.urandom(16))
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=20) as sk:
            sk.sendall(b"GET /ws/ HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                       b"Sec-WebSocket-Key: " + key + b"\r\nSec-WebSocket-Version: 13\r\n\r\n")
            head = b""
            while b"\r\n\r\n" not in head:
                chunk = sk.recv(4096)
                if not chunk:
                    break
                head += chunk
            if b" 101 " not in head.split(b"\r\n", 1)[0]:
                errors.append("websocket: %r" % head[:80])
                return
            for i in range(messages):
                payload, mask = b"hello %d" % i, os.urandom(4)
                sk.sendall(bytes([0x81, 0x80 | len(payload)]) + mask + bytes(b ^ mask[j % 4] for j, b in enumerate(payload)))
                frame = sk.recv(4096)
                if frame[2:] != payload:
                    errors.append("websocket echo: %r" % frame)
                time.sleep(0.2)
            mask = os.urandom(4)
            sk.sendall(bytes([0x88, 0x82]) + mask + bytes(b ^ mask[j] for j, b in enumerate(b"\x03\xe8")))
            sk.recv(4096)
    except OSError as e:
        errors.append("websocket: %s" % e)


# the edge case's routes under a Mount and with a path converter: the route each is counted in
MOUNTED = {"/api/fixed/9201/": "/api/fixed/{rid}/", "/api/files/a/b/c": "/api/files/{name}",
           "/files/x/y/": "/files/{name}", "/m/p/q/": "/m/{rest}"}


def case_edges(cluster, tmp, name="uvicorn-starlette-edges", server="uvicorn-starlette", driver="asyncpg"):
    """Uvicorn + Starlette beside the usual clients: a long poll (2 s on the loop, then a
    statement), a WebSocket (upgraded, frames both ways for about a second), HTTP/1.1
    pipelining (an N+1 request and its fixed twin in one write), and routes under a Mount and
    with a path converter, whose templates the tool places under the path's leading segments
    (MOUNTED). Each request ends as itself:
    the long poll with its own statement and its 2 s, the pipelined ones each with their own
    statements, the WebSocket counted as not followed (no response) and never merged with
    another request; 0 statements unattributed. Also on uvloop (psycopg 3), whose loop writes
    every response later, from a callback (src/uvwrite.h)."""
    env = dict(os.environ, **cluster.client_env())
    port = free_port(18600, 18700)
    p = start_server(name, server, driver, port, env, tmp)
    edge = {}

    def load():
        errors = []
        extra = [threading.Thread(target=client, args=(port, ["/poll/9001/"] + list(MOUNTED), edge, errors)),
                 threading.Thread(target=websocket, args=(port, errors)),
                 threading.Thread(target=pipelined, args=(port, ["/n1/9101/", "/fixed/9102/", "/cpu/9103/"], edge,
                                                          errors))]
        for th in extra:
            th.start()
        app, errs = drive(port)
        for th in extra:
            th.join()
        app.update(edge)
        return app, errors + errs

    try:
        ran = traced_run(name, p, port, tmp, load, "client saw 200s, the 101 and the echoes")
        if not ran:
            return
        app, doc, rlog, _ = ran
        got = route_counts(doc)
        want = {("/%s/{rid}/" % k, 200): n * CLIENTS for k, n in PER_CLIENT.items()}
        for pa in edge:
            want[(MOUNTED.get(pa, route_of(pa, "{rid}")), 200)] = want.get((MOUNTED.get(pa, route_of(pa, "{rid}")), 200), 0) + 1
        record(name + ": per-route counts equal what was sent (the WebSocket in none)", got == want,
               "got %s, want %s" % (sorted(got.items()), sorted(want.items())))
        lines = {}
        for l in open(rlog):
            r = json.loads(l)
            lines.setdefault(r["path"], []).append(r)
        bad = ["%s: tool %s, app %d" % (pa, [r["queries"] for r in lines.get(pa, [])], n) for pa, n in sorted(app.items())
               if [r["queries"] for r in lines.get(pa, [])] != [n]]
        record(name + ": each request (pipelined, long poll) is one request with its own statements",
               not bad and len(app) == CLIENTS * sum(PER_CLIENT.values()) + len(edge), "; ".join(bad[:6]))
        poll = lines.get("/poll/9001/", [{}])[0]
        dur = poll.get("total_ms", 0)
        record(name + ": the long poll lasts its %.0f s" % 2.0, 2000 <= dur < 4000, json.dumps(poll))
        record(name + ": the WebSocket is not a request of the log", "/ws/" not in lines, " ".join(sorted(lines)[:5]))
        asm = doc["http"]["assembly"]
        unattr = {k: v for k, v in asm.items() if k.startswith("queries_unattributed") or k == "queries_dropped"}
        record(name + ": 0 statements unattributed; the WebSocket counted as not followed",
               not any(unattr.values()) and asm.get("no_response", 0) >= 1, json.dumps(asm))
    finally:
        stop_server(p)


def case_tls(cluster, tmp, name="uvicorn-fastapi-psycopg-tls", server="uvicorn-fastapi", driver="psycopg"):
    """uvicorn + FastAPI + psycopg 3 async over TLS (ssl = on, sslmode=require): the wire cannot be
    read, libpq's probes serve the encrypted connections, and their statements carry their task
    too. The connections are opened once tracing has begun (/warm/), so that their handshakes show.
    Also asyncpg on uvloop: OpenSSL's probes, in the task (uvloop's SSL layer encrypts as the task
    writes; the ciphertext goes out later, from a loop callback)."""
    key = os.path.join(cluster.dir, "data", "server.key")
    crt = os.path.join(cluster.dir, "data", "server.crt")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj",
                    "/CN=localhost", "-keyout", key, "-out", crt], capture_output=True, check=True)
    subprocess.run(["chown", "postgres", key, crt], check=True)
    os.chmod(key, 0o600)
    cluster.psql("ALTER SYSTEM SET ssl = on")
    cluster.psql("SELECT pg_reload_conf()")
    time.sleep(0.5)
    env = dict(os.environ, **cluster.client_env(tcp=True), PGSSLMODE="require", WEB_ASYNC_LAZY="1")
    port = free_port(18600, 18700)
    check(name, start_server(name, server, driver, port, env, tmp), port, tmp, APP, "n1_" + driver,
          warm=True, ids="{rid}")


def check(name, p, port, tmp, app_path, marker, warm=False, pool=False, ids="{id}", per_client=None,
          warm_path="/warm/", kind_ids=None, cut=None):
    """Trace server p on port while the clients run, and check what the tool made of it. Each
    client sends per_client's requests (PER_CLIENT), after a first one to warm_path if warm; the
    routes' id segment is named ids, or kind_ids[kind]. cut: whether statements' stacks stop at
    the route frame (None: by CUT_SERVICES)."""
    per_client = per_client or PER_CLIENT
    kind_ids = kind_ids or {}

    def load():
        if warm:
            record(name + ": the app's connections open", wait_http(port, warm_path, 30))
            time.sleep(1)
        return drive(port, per_client)

    # one service traced with a slow log of every statement: its stacks whole (see CUT_SERVICES)
    slow = os.path.join(tmp, name + ".slow.jsonl") if name == SLOW_LOG_SERVICE else None
    try:
        ran = traced_run(name, p, port, tmp, load, extra=["--slow-ms", "0", "--slow-log", slow] if slow else ())
        if not ran:
            return
        app, doc, rlog, _ = ran
        ncut = doc["sql_capture"].get("stacks_to_route_frame", 0)
        if cut is False:
            record(name + ": statements' stacks walked whole (no running task read on this version)",
                   ncut == 0 and not doc["processes"].get("asyncio_running_tasks"),
                   "%d, processes %s" % (ncut, json.dumps(doc["processes"])))
        if (cut or (cut is None and name in CUT_SERVICES)) and not slow:
            # the task read from asyncio's running tasks, the walk stopped at the route frame
            record(name + ": statements' stacks walked to the route frame, their task read directly",
                   ncut > 0 and doc["processes"].get("asyncio_running_tasks", 0) >= 1,
                   "%d, processes %s" % (ncut, json.dumps(doc["processes"])))
        if slow:
            entries = [json.loads(l) for l in open(slow)]
            site = [e for e in entries if e["call_site"] and os.path.basename(app_path) in e["call_site"]]
            record(name + ": with a slow log, statements' stacks whole (from uvicorn's run_asgi down)",
                   ncut == 0 and site and all(any("run_asgi" in f for f in e["stack"]) for e in site),
                   "%d cut; %d entries, %d at the app: %s" % (ncut, len(entries), len(site),
                                                             json.dumps(site[:1])[:600]))
        got = route_counts(doc)
        want = {("/%s/%s/" % (k, kind_ids.get(k, ids)), 200): n * CLIENTS for k, n in per_client.items()}
        if warm:
            kind = warm_path.strip("/").split("/")[0]
            route = "/warm/" if warm_path == "/warm/" else "/%s/%s/" % (kind, kind_ids.get(kind, ids))
            want[(route, 200)] = want.get((route, 200), 0) + 1
        record(name + ": per-route counts equal what was sent", got == want,
               "got %s, want %s" % (sorted(got.items()), sorted(want.items())))
        asm = doc["http"]["assembly"]
        lines = {json.loads(l)["path"]: json.loads(l) for l in open(rlog)}
        if "-mw-" in name:
            # @app.middleware("http") (Starlette's BaseHTTPMiddleware), twice: each runs the rest
            # of the app in a child task (anyio task groups) and the request's own task writes the
            # response, so the endpoint's statements come from a task two levels below the
            # writer's. Both tasks hold the request's ASGI scope: the tool keys them by it
            # (struct pt_proc's scope_code), the outer middleware's own statement included.
            record(name + ": the middleware's tasks found, every request's statements keyed by its ASGI scope",
                   doc["processes"].get("asgi_middleware_scopes") == 1 and
                   asm.get("requests_by_asgi_scope") == asm["requests_by_task"] > 0, json.dumps(asm))
            nreq = CLIENTS * sum(per_client.values()) + warm
            if name.startswith("hypercorn"):
                # Starlette puts no route in the scope: every request named by the app's routes,
                # read once from the app object (src/starroutes.h)
                up = doc["http"]["url_patterns"]
                record(name + ": every request named by Starlette's routes, read from the app object",
                       asm["framework_routes"] == up["requests_named"] == nreq and
                       up["starlette_processes_read"] == 1 and up["read_errors"] == 0, json.dumps(up))
            else:
                # every request named by FastAPI's route, from its scope: by the walker, or, before
                # it knows where the scope keeps it, by the loader when the scope still held its path
                record(name + ": every request named by FastAPI's route template, read from its scope",
                       asm["framework_routes"] == nreq and asm["scope_route_templates_mismatched"] <=
                       doc["http"]["scope_route_reads"] <= 8 + asm["scope_route_templates_mismatched"],
                       json.dumps(asm) + " " + json.dumps({k: v for k, v in doc["http"].items() if "scope" in k}))
        if name.startswith("aiohttp") or "tornado" in name:
            # the app's router, read once through the request handler the walker gives
            # (aioroutes.h); Tornado's rules through the per-request handler's application, which
            # the walker reads once the warm-up's handler's class taught it where (tornroutes.h):
            # every request after the warm-up
            up = doc["http"]["url_patterns"]
            nreq = CLIENTS * sum(per_client.values()) + (warm if name.startswith("aiohttp") else 0)
            record(name + ": every request named by the app's routes (%s)" % (
                       "its resources' canonical paths" if name.startswith("aiohttp") else "its URL specs' regexes"),
                   up["%s_processes_read" % ("aiohttp" if name.startswith("aiohttp") else "tornado")] == 1 and
                   asm["framework_routes"] == up["requests_named"] == nreq, json.dumps(up) + " " + json.dumps(asm))
        if "uvloop" in name or "uvicorn-worker" in name:
            # uvloop writes every buffer from a loop callback at the end of the loop's iteration,
            # outside the task that queued it: its transport.write() is probed (src/uvwrite.h), and
            # the task that queued each response start is taken from there (in each worker)
            uv, workers = doc["http"].get("uvloop", {}), 2 if "uvicorn-worker" in name else 1
            record(name + ": uvloop's transport.write probed (%d process%s), every response's writer taken "
                   "from it" % (workers, "es" if workers > 1 else ""),
                   uv.get("processes_probed") == workers and
                   doc["sql_wire"].get("uvloop_processes_probed") == workers and
                   uv.get("responses_writer_from_probe") == CLIENTS * sum(per_client.values()) + warm,
                   json.dumps(uv) + " " + json.dumps(doc["sql_wire"]))
        if name.endswith("-tls"):
            record(name + ": its connections encrypted (TLS), their statements read through the TLS library's "
                   "probes", doc["sql_wire"].get("tls_connections", 0) >= 1, json.dumps(doc["sql_wire"])[:600])
        unattr = {k: v for k, v in asm.items() if k.startswith("queries_unattributed") or k == "queries_dropped"}
        record(name + ": 0 statements unattributed", not any(unattr.values()) and asm["queries_attributed"] > 0,
               json.dumps(asm))
        if "stream" in per_client:
            # written by a child task of the request's (StreamingResponse's task group), whose host
            # task sent the request's statements (struct pt_proc's host_cell)
            record(name + ": each streamed response takes its request's task's statements",
                   asm.get("requests_by_host_task") == per_client["stream"] * CLIENTS and
                   doc["processes"].get("streaming_response_hosts") == 1, json.dumps(asm))
        if pool:
            record(name + ": the thread pool's statements given by the task they ran for",
                   asm["queries_attributed_thread_pool"] >= sum(app.values()) and
                   doc["processes"].get("thread_pools_for_tasks") == 1, json.dumps(asm))
        bad = []
        for path, n in sorted(app.items()):
            l = lines.get(path)
            if l is None or l["queries"] != n:
                bad.append("%s: tool %s, app %d" % (path, l and l["queries"], n))
        record(name + ": each request's statements equal the app's count (%d requests)" % len(app),
               not bad and len(app) == CLIENTS * sum(per_client.values()), "; ".join(bad[:6]))
        line = marker_lines(app_path)[marker]
        site = r"\(.*%s:%d\)" % (re.escape(os.path.basename(app_path)), line)
        n1 = doc.get("n_plus_one", [])
        hit = [f for f in n1 if f["route"] == "/n1/%s/" % ids]
        ok = len(hit) == 1 and hit[0]["per_request"] == K and re.search(site, hit[0]["call_site"] or "") and \
            hit[0]["requests"] == per_client["n1"] * CLIENTS
        record(name + ": N+1 flagged with %d repeats at %s:%d" % (K, os.path.basename(app_path), line),
               bool(ok), json.dumps(n1))
        wrong = [f for f in n1 if f["route"] != "/n1/%s/" % ids]
        record(name + ": the fixed twin and the other routes not flagged", not wrong, json.dumps(wrong))
    finally:
        stop_server(p)


DEMO = os.path.join(harness.REPO, "demo")


def case_django_asgi(cluster, tmp):
    """The demo's Django (sync views, psycopg2) through its ASGI handler under uvicorn: asgiref runs
    each view in its one thread-sensitive worker thread while the loop thread reads the request and
    writes the response. asgiref's thread_handler names the task that awaits the view
    (source_task), and the tool reads it from the worker's stack: each request gets the statements
    its view ran, checked against the app's own count (X-Queries, tests/integration/workloads/
    asgi_counted.py). The tool finds thread_handler's code in the server's modules when it
    attaches (asgiref is imported with Django's handler): from the first request on, nothing is
    left unattributed, Django's own statements opening its connection included."""
    name = "django-asgi-uvicorn"
    env = dict(os.environ, **cluster.client_env(), DJANGO_SETTINGS_MODULE="asgi_counted",
               PYTHONPATH=WORKLOADS)
    port = free_port(18600, 18700)
    logf = open(os.path.join(tmp, name + ".log"), "w")
    p = subprocess.Popen([PY, "-m", "uvicorn", "--app-dir", DEMO, "--host", "127.0.0.1", "--port", str(port),
                          "--http", "h11", "--loop", "asyncio", "--no-access-log", "recipesite.asgi:application"],
                         env=env, stdout=logf, stderr=logf, start_new_session=True)
    views = ["/recipes/", "/recipes-fixed/", "/recipes/3/", "/authors/cook-2/", "/health/"]
    # routes: the app's URL patterns (src/djroutes.h), read from the server's memory
    patterns = {"/recipes/3/": "/recipes/<int:pk>/", "/authors/cook-2/": "/authors/<slug:name>/"}

    def load():
        out, errors = {}, []
        plans = [["%s?c=%d&i=%d" % (v, c, i) for i in range(2) for v in views] for c in range(CLIENTS)]
        run_threads([threading.Thread(target=client, args=(port, pl, out, errors)) for pl in plans])
        return out, errors

    try:
        ran = traced_run(name, p, port, tmp, load)
        if not ran:
            return
        app, doc, rlog, stderr = ran
        got = route_counts(doc)
        want = {(patterns.get(v, v), 200): 2 * CLIENTS for v in views}
        record(name + ": per-route counts equal what was sent", got == want, "got %s, want %s" % (got, want))
        asm = doc["http"]["assembly"]
        dj = doc["http"]["url_patterns"]
        record(name + ": every request named by Django's URL patterns",
               asm["framework_routes"] == dj["requests_named"] == 2 * CLIENTS * len(views) and dj["processes_read"] == 1,
               json.dumps(dj))
        # the log names paths without their query: each view's count is the same in every request
        lines = [json.loads(l) for l in open(rlog)]
        per_view = {}
        for path, n in app.items():
            per_view.setdefault(path.split("?")[0], set()).add(n)
        bad = ["%s: the app counted %s" % (v, sorted(c)) for v, c in per_view.items() if len(c) != 1]
        # the first request that touches the database also opens Django's connection, with
        # statements of Django's own (not through the cursor the app counts): at most 2 more
        first_db = min((l["start_ns"] for l in lines if l["path"] != "/health/"), default=0)
        for l in lines:
            n = next(iter(per_view.get(l["path"], {-1})))
            extra = l["queries"] - n
            if not (extra == 0 or (l["start_ns"] == first_db and 0 < extra <= 2)) or (n and not l["by_task"]):
                bad.append("%s: tool %d (by task %s), app %d" % (l["path"], l["queries"], l["by_task"], n))
        record(name + ": each request's statements, sent by the worker thread, equal the app's count "
               "(%d requests)" % len(lines), not bad and len(lines) == len(app) == 2 * CLIENTS * len(views),
               "; ".join(bad[:6]))
        sent = sum(app.values())
        unattr = {k: v for k, v in asm.items() if k.startswith("queries_unattributed") or k == "queries_dropped"}
        record(name + ": the worker's statements are given by the task they ran for, none unattributed",
               asm["queries_attributed_thread_pool"] >= sent and not any(unattr.values()) and
               asm["queries_attributed"] == asm["queries_attributed_thread_pool"] and
               re.search(r"\(and %d attributed by the task they ran for\)" % asm["queries_attributed_thread_pool"],
                         stderr) and doc["processes"].get("thread_pools_for_tasks") == 1,
               "sent %d; %s" % (sent, json.dumps(asm)))
        n1 = doc.get("n_plus_one", [])
        site = r"recipe_name \(.*demo/recipes/views\.py:%d\)" % 12
        hit = [f for f in n1 if f["route"] == "/recipes/"]
        record(name + ": N+1 flagged on /recipes/ at views.py:12 with %d repeats" % K,
               len(hit) == 1 and hit[0]["per_request"] == K and re.search(site, hit[0]["call_site"] or "") and
               hit[0]["requests"] == 2 * CLIENTS, json.dumps(n1))
        record(name + ": the fixed twin and the other routes not flagged",
               not [f for f in n1 if f["route"] != "/recipes/"], json.dumps(n1))
    finally:
        stop_server(p)


def main():
    args, status = harness.start("run only services whose name contains this")
    if status is not None:
        return status
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # so that the cluster is stopped at exit
    cluster = Cluster(prefix="pytrace-async-", ports=(54460, 54520), tcp=True)
    tmp = tempfile.mkdtemp(prefix="pytrace-async-out-")
    try:
        cluster.start()
        cluster.psql(SCHEMA)
        def want(name):  # -k a,b: either
            return any(k in name for k in args.k.split(","))

        for name, server, driver in SERVICES:
            if want(name):
                case(cluster, tmp, name, server, driver)
        # one interpreter per version (Debian's 3.11 before pyenv's, pyenv's 3.13 before
        # Debian unstable's): the walker's layouts differ by version, not by build
        seen = set()
        for it in harness.find_interpreters():
            if it.version in seen:
                continue
            seen.add(it.version)
            if want("stdlib-asyncio-" + it.label):
                case_stdlib(cluster, tmp, it)
            if want("stdlib-tornado-" + it.label):
                case_stdlib_tornado(cluster, tmp, it)
        if want("django-asgi-uvicorn"):
            env = dict(os.environ, **cluster.client_env())
            subprocess.run([PY, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=DEMO, env=env, check=True)
            subprocess.run([PY, "manage.py", "seed", "--recipes", str(K)], cwd=DEMO, env=env, check=True,
                           stdout=subprocess.DEVNULL)
            case_django_asgi(cluster, tmp)
        if want("uvicorn-starlette-streaming"):
            case_streaming(cluster, tmp)
        if want("uvicorn-starlette-edges"):
            case_edges(cluster, tmp)
        if want("uvicorn-uvloop-starlette-edges"):
            case_edges(cluster, tmp, "uvicorn-uvloop-starlette-edges", "uvicorn-uvloop-starlette", "psycopg")
        if want("uvicorn-fastapi-psycopg-tls"):  # last: the cluster keeps ssl = on
            case_tls(cluster, tmp)
        if want("uvicorn-uvloop-fastapi-asyncpg-tls"):
            case_tls(cluster, tmp, "uvicorn-uvloop-fastapi-asyncpg-tls", "uvicorn-uvloop-fastapi", "asyncpg")
    finally:
        cluster.stop()
        if args.verbose:
            log("outputs kept in " + tmp)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    return harness.summary()


if __name__ == "__main__":
    sys.exit(main())
