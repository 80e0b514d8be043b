#!/usr/bin/python3
"""One small service on the asyncio and gevent servers Debian 12 packages, for
tests/integration/test_async.py. Each request counts its own statements and returns the count
in an X-Queries header, so that the test can compare it with the tool's, request by request.

Usage: web_async.py SERVER DRIVER PORT K
  SERVER  uvicorn-starlette | uvicorn-fastapi | hypercorn | aiohttp | tornado
          uvicorn-uvloop-starlette | uvicorn-uvloop-fastapi       (uvloop and httptools: uvicorn[standard])
                                                                      (asyncio, one loop thread)
          uvicorn-fastapi-def                  (FastAPI's def endpoints: anyio's thread pool)
          uvicorn-starlette-factory            (the app made from a factory by uvicorn: no module global)
          uvicorn-fastapi-mw, uvicorn-uvloop-fastapi-mw, uvicorn-fastapi-def-mw, hypercorn-mw
                                               (behind two @app.middleware("http") functions;
                                                hypercorn-mw: Starlette's app, the others FastAPI's)
          gunicorn-uvicorn   (gunicorn -k uvicorn.workers.UvicornWorker web_async:asgi, two workers:
                              uvicorn's loop "auto", uvloop where installed)
          gevent | eventlet | waitress                                 (WSGI; gunicorn -k gevent|eventlet
                                                                        web_async:application)
  DRIVER  asyncpg | psycopg | aiopg    (asyncio: psycopg is psycopg 3's AsyncConnection)
          sqlalchemy                   (asyncio: SQLAlchemy's AsyncConnection over asyncpg, whose
                                        calls run in greenlets of SQLAlchemy's own: greenlet_spawn)
          pg8000 | psycopg2            (WSGI, FastAPI's def: pg8000 is pure Python, so gevent makes it
                                        cooperative)

Routes (ID: any number, so that each request has a path of its own):
  /n1/ID/     the K items, then each item's owner, one statement per item: an N+1 (K+1 statements)
  /fixed/ID/  the same in one join (1 statement)
  /cpu/ID/    CPU only
  /slow/ID/   a statement, a 50 ms sleep that lets the loop serve others, a statement (2)
  /stream/ID/ (Starlette) a streamed response, a statement before each of its 3 chunks (3)
  /health/    nothing (readiness)
"""
import asyncio
import os
import sys

# gunicorn imports the module: its settings then come from WEB_ASYNC="SERVER DRIVER PORT K"
_args = sys.argv[1:5] if __name__ == "__main__" else os.environ["WEB_ASYNC"].split()
SERVER, DRIVER, PORT, K = _args[0], _args[1], int(_args[2]), int(_args[3])
POOL = 10
STREAM_CHUNKS = 3
POLL_S = 2.0   # a long poll's wait

ITEMS = "SELECT id, owner_id FROM async_items ORDER BY id LIMIT %d" % K
FIXED = ("SELECT i.id, o.name FROM async_items i JOIN async_owners o ON o.id = i.owner_id "
         "ORDER BY i.id LIMIT %d" % K)
SLOW = "SELECT count(*) FROM async_items"


def cpu():
    return sum(i * i for i in range(200000))


# ---- asyncio drivers: a fixed set of connections opened before tracing (no pool reset queries)

class AsyncDB:
    async def open(self):
        self.free = asyncio.Queue()
        if os.environ.get("WEB_ASYNC_LAZY") != "1":
            for _ in range(POOL):
                self.free.put_nowait(await self.connect())

    async def fill(self):
        """WEB_ASYNC_LAZY=1: the connections are opened by /warm/, once tracing has begun (an
        encrypted connection is followed through libpq from its handshake on)."""
        while self.free.qsize() < POOL:
            self.free.put_nowait(await self.connect())

    async def connect(self):
        if DRIVER == "asyncpg":
            import asyncpg
            return await asyncpg.connect()
        if DRIVER == "psycopg":
            import psycopg
            return await psycopg.AsyncConnection.connect("", autocommit=True)
        if DRIVER == "aiopg":
            import aiopg
            return await aiopg.connect("")
        if DRIVER == "sqlalchemy":
            # asyncpg takes the PG* environment; autocommit: no BEGIN of SQLAlchemy's own
            from sqlalchemy.ext.asyncio import create_async_engine
            if not hasattr(self, "engine"):
                self.engine = create_async_engine("postgresql+asyncpg://", isolation_level="AUTOCOMMIT",
                                                  pool_size=POOL)
            return await self.engine.connect()
        raise SystemExit("unknown driver " + DRIVER)

    async def rows(self, conn, sql, *args):
        if DRIVER == "asyncpg":
            return [tuple(r) for r in await conn.fetch(sql.replace("%s", "$1"), *args)]
        if DRIVER == "sqlalchemy":
            from sqlalchemy import text
            result = await conn.execute(text(sql.replace("%s", ":p")), {"p": args[0]} if args else {})
            return [tuple(r) for r in result.fetchall()]
        cur = await conn.cursor() if DRIVER == "aiopg" else conn.cursor()
        await cur.execute(sql, args or None)
        out = await cur.fetchall()
        cur.close() if DRIVER == "aiopg" else await cur.close()
        return out


db = AsyncDB()


OWNER = "SELECT name FROM async_owners WHERE id = %s"


async def owner_name(conn, owner_id, n):
    """The N+1: the driver called on the marked line, the call site the tool must report."""
    n[0] += 1
    if DRIVER == "asyncpg":
        return await conn.fetchval(OWNER.replace("%s", "$1"), owner_id)  # @n1_asyncpg
    if DRIVER == "psycopg":
        return (await (await conn.execute(OWNER, (owner_id,))).fetchone())[0]  # @n1_psycopg
    if DRIVER == "sqlalchemy":
        from sqlalchemy import text
        return (await conn.execute(text(OWNER.replace("%s", ":p")), {"p": owner_id})).scalar()  # @n1_sqlalchemy
    cur = await conn.cursor()
    await cur.execute(OWNER, (owner_id,))  # @n1_aiopg
    name = (await cur.fetchone())[0]
    cur.close()
    return name


BACKGROUND = set()	# /bg/'s tasks, referenced until done


async def handle(kind):
    """(body, statements) of one request."""
    n = [0]
    if kind == "cpu":
        return str(cpu()), 0
    if kind == "warm":
        await db.fill()
        return "ok", 0
    if kind == "health":
        return "ok", 0
    if kind == "bg":
        # a statement sent by a task of its own, after the response: no response claims it
        async def later():
            await asyncio.sleep(0.05)
            conn = await db.free.get()
            try:
                await db.rows(conn, FIXED)
            finally:
                db.free.put_nowait(conn)
        BACKGROUND.add(asyncio.get_running_loop().create_task(later()))
        return "ok", 0
    conn = await db.free.get()
    try:
        if kind == "n1":
            n[0] += 1
            items = await db.rows(conn, ITEMS)
            names = [await owner_name(conn, owner, n) for _, owner in items]
            return ",".join(names), n[0]
        if kind == "fixed":
            n[0] += 1
            return ",".join(name for _, name in await db.rows(conn, FIXED)), n[0]
        if kind == "slow":
            n[0] += 1
            await db.rows(conn, SLOW)
            await asyncio.sleep(0.05)
            n[0] += 1
            rows = await db.rows(conn, SLOW)
            return str(rows[0][0]), n[0]
    finally:
        db.free.put_nowait(conn)
    return "ok", 0


def kind_of(path):
    return path.strip("/").split("/")[0] or "health"


# ---- ASGI (uvicorn, hypercorn): Starlette, or FastAPI on it

def starlette_app(middleware=False):
    """Starlette's routes; middleware: behind add_middleware()'s two @app.middleware("http")
    functions, whose requests no frame names: the tool reads the app's routes (src/starroutes.h)."""
    from starlette.applications import Starlette
    from starlette.responses import PlainTextResponse, StreamingResponse
    from starlette.routing import Mount, Route, WebSocketRoute

    async def endpoint(request):
        body, n = await handle(kind_of(request.url.path))
        return PlainTextResponse(body, headers={"X-Queries": str(n)})

    async def stream(request):
        """A streamed response (Starlette writes it from a task of its own): a statement before it,
        in the request's task (X-Queries: 1), then one per chunk (STREAM_CHUNKS), all sent after
        the response began."""
        conn = await db.free.get()
        try:
            await db.rows(conn, SLOW)
        finally:
            db.free.put_nowait(conn)
        pause = float(request.query_params.get("pause", "0.01"))  # between chunks

        async def chunks():
            conn = await db.free.get()
            try:
                for _ in range(STREAM_CHUNKS):
                    rows = await db.rows(conn, SLOW)
                    await asyncio.sleep(pause)
                    yield ("%s\n" % rows[0][0]).encode()
            finally:
                db.free.put_nowait(conn)
        return StreamingResponse(chunks(), media_type="text/plain", headers={"X-Queries": "1"})

    async def poll(request):
        """A long poll: the answer comes after POLL_S of waiting on the loop, then one statement."""
        await asyncio.sleep(POLL_S)
        conn = await db.free.get()
        try:
            rows = await db.rows(conn, SLOW)
        finally:
            db.free.put_nowait(conn)
        return PlainTextResponse(str(rows[0][0]), headers={"X-Queries": "1"})

    async def ws_echo(ws):
        """A WebSocket (upgrade, 101): echoes text until the client closes; no statement."""
        await ws.accept()
        try:
            while True:
                await ws.send_text(await ws.receive_text())
        except Exception:  # noqa: BLE001 - the client went away
            pass

    routes = [Route("/%s/{rid:int}/" % k, endpoint) for k in ("n1", "fixed", "cpu", "slow")]
    routes.append(Route("/stream/{rid:int}/", stream))
    routes.append(Route("/poll/{rid:int}/", poll))
    routes.append(WebSocketRoute("/ws/", ws_echo))
    routes.append(Route("/health/", endpoint))
    routes.append(Route("/warm/", endpoint))

    async def mounted(request):
        """Routes under a Mount (their templates hold the path below it) and a path converter."""
        body, n = await handle("fixed" if "/fixed/" in request.url.path else "health")
        return PlainTextResponse(body, headers={"X-Queries": str(n)})
    routes.append(Route("/files/{name:path}", mounted))
    routes.append(Mount("/api", routes=[Route("/fixed/{rid:int}/", mounted), Route("/files/{name:path}", mounted)]))
    # a path converter first under a Mount: where its template starts in the path is unknown, the
    # app's routes name it (src/starroutes.h)
    routes.append(Mount("/m", routes=[Route("/{rest:path}", mounted)]))
    app = Starlette(routes=routes, on_startup=[db.open])
    if middleware:
        add_middleware(app, db)
    return app


def fastapi_routes(app, endpoint, on_loop):
    """The routes of both FastAPI apps, each calling endpoint(kind) -> Response: /KIND/{rid}/,
    /health/ and /warm/. on_loop: async def endpoints (run on the loop), else def ones (run in
    anyio's thread pool)."""
    def route(path, kind):
        if on_loop:
            async def view(rid: int = 0):
                return await endpoint(kind)
        else:
            def view(rid: int = 0):
                return endpoint(kind)
        view.__name__ = kind
        app.get(path)(view)

    for kind in ("n1", "fixed", "cpu", "slow"):
        route("/%s/{rid}/" % kind, kind)
    route("/health/", "health")
    route("/warm/", "warm")
    if on_loop:
        route("/bg/", "bg")


def fastapi_app(middleware=False):
    """FastAPI's async def endpoints; middleware: behind two @app.middleware("http") functions
    (Starlette's BaseHTTPMiddleware: each runs what is inside it in a child task, and the
    request's own task writes the response). The outer one (the last added) sends a statement of
    its own on /fixed/, in the request's task, before the rest runs."""
    from fastapi import FastAPI, Response

    app = FastAPI(on_startup=[db.open])
    if middleware:
        add_middleware(app, db)

    async def endpoint(kind):
        body, n = await handle(kind)
        return Response(body, media_type="text/plain", headers={"X-Queries": str(n)})

    fastapi_routes(app, endpoint, on_loop=True)
    return app


def add_middleware(app, db=None):
    """Two @app.middleware("http") functions; the outer one (the last added) sends a statement of
    its own on /fixed/ through db (an AsyncDB: not on the def endpoints' app)."""
    @app.middleware("http")
    async def timing(request, call_next):
        response = await call_next(request)
        response.headers["X-Middleware"] = "1"
        return response

    @app.middleware("http")
    async def audit(request, call_next):
        n = 0
        if db and request.url.path.startswith("/fixed/"):
            conn = await db.free.get()
            try:
                await db.rows(conn, SLOW)
            finally:
                db.free.put_nowait(conn)
            n = 1
        response = await call_next(request)
        if n:
            response.headers["X-Queries"] = str(int(response.headers.get("X-Queries", "0")) + n)
        return response


def run_aiohttp():
    from aiohttp import web

    async def endpoint(request):
        body, n = await handle(kind_of(request.path))
        return web.Response(text=body, headers={"X-Queries": str(n)})

    async def startup(app):
        await db.open()

    app = web.Application()
    app.on_startup.append(startup)
    for k in ("n1", "fixed", "cpu", "slow"):
        app.router.add_get("/%s/{rid}/" % k, endpoint)
    app.router.add_get("/health/", endpoint)
    web.run_app(app, host="127.0.0.1", port=PORT, access_log=None, print=None)


def run_tornado():
    """Tornado's own HTTP server on asyncio's loop: a RequestHandler's coroutine per request, whose
    finish() writes the response from the request's task (IOStream writes at once when it can)."""
    import tornado.httpserver
    import tornado.web

    class Handler(tornado.web.RequestHandler):
        def initialize(self, kind):
            self.kind = kind

        async def get(self, rid=None):
            body, n = await handle(self.kind)
            self.set_header("Content-Type", "text/plain")
            self.set_header("X-Queries", str(n))
            self.write(body)

    async def main():
        await db.open()
        # URL specs as Tornado's docs write them; the tool names requests by their regexes
        # (src/tornroutes.h), read through the app's rules for any host too
        specs = [(r"/%s/(?P<rid>\d+)/" % k, Handler, {"kind": k}) for k in ("n1", "fixed", "cpu", "slow")]
        app = tornado.web.Application(specs + [(r"/warm/", Handler, {"kind": "warm"}),
                                               (r"/health/", Handler, {"kind": "health"})])
        app.add_handlers(r".*", [(r"/v2/(?P<rid>\d+)/", Handler, {"kind": "cpu"})])
        server = tornado.httpserver.HTTPServer(app)
        server.listen(PORT, "127.0.0.1")
        await asyncio.Event().wait()

    asyncio.run(main())


# ---- WSGI (gunicorn -k gevent or eventlet, waitress): one connection per thread or greenlet

def sync_handler():
    """handle(kind) -> (body, statements) for threads (or greenlets) that each serve one request
    at a time, with a connection of their own."""
    import threading
    import time
    if DRIVER == "pg8000":
        import pg8000   # Debian 12's 1.10: DB-API only, paramstyle format

        def connect():
            host = os.environ.get("PGHOST", "/tmp")
            kw = {"unix_sock": "%s/.s.PGSQL.%s" % (host, os.environ["PGPORT"])} if host.startswith("/") else \
                {"host": host, "port": int(os.environ["PGPORT"])}
            c = pg8000.connect(user=os.environ.get("PGUSER", "postgres"),
                               database=os.environ.get("PGDATABASE", "pytrace"), **kw)
            c.autocommit = True
            return c
    else:
        import psycopg2

        def connect():
            c = psycopg2.connect("")
            c.autocommit = True
            return c

    def rows(conn, sql, *args):
        cur = conn.cursor()
        cur.execute(sql, args or None)
        out = cur.fetchall()
        cur.close()
        return out

    local = threading.local()   # a greenlet's own with gevent's or eventlet's patching

    def conn():
        if not hasattr(local, "conn"):
            local.conn = connect()
        return local.conn

    def sleep(s):
        if SERVER == "gevent":
            import gevent
            gevent.sleep(s)
        else:
            time.sleep(s)   # eventlet's patching makes it a greenlet's

    def owner(c, owner_id, n):
        n[0] += 1
        cur = c.cursor()
        if DRIVER == "pg8000":
            cur.execute("SELECT name FROM async_owners WHERE id = %s", (owner_id,))  # @n1_pg8000
        else:
            cur.execute("SELECT name FROM async_owners WHERE id = %s", (owner_id,))  # @n1_psycopg2
        name = cur.fetchone()[0]
        cur.close()
        return name

    def handle(kind):
        n, body = [0], "ok"
        if kind == "cpu":
            body = str(cpu())
        elif kind == "warm":
            n[0] += 1
            rows(conn(), "SELECT 1")
        elif kind == "n1":
            c = conn()
            n[0] += 1
            body = ",".join(owner(c, o, n) for _, o in rows(c, ITEMS))
        elif kind == "fixed":
            n[0] += 1
            body = ",".join(name for _, name in rows(conn(), FIXED))
        elif kind == "slow":
            n[0] += 2
            rows(conn(), SLOW)
            sleep(0.05)
            body = str(rows(conn(), SLOW)[0][0])
        return body, n[0]
    return handle


def wsgi_app():
    handle = sync_handler()

    def app(environ, start_response):
        body, n = handle(kind_of(environ["PATH_INFO"]))
        data = body.encode()
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(data))),
                                  ("X-Queries", str(n))])
        return [data]
    return app


def fastapi_def_app(middleware=False):
    """FastAPI's def endpoints: Starlette runs each in anyio's worker threads (run_in_threadpool),
    while the loop thread reads the requests and writes the responses."""
    from fastapi import FastAPI, Response

    handle = sync_handler()
    app = FastAPI()
    if middleware:
        add_middleware(app)

    def endpoint(kind):
        body, n = handle(kind)
        return Response(body, media_type="text/plain", headers={"X-Queries": str(n)})

    fastapi_routes(app, endpoint, on_loop=False)
    return app


application = wsgi_app() if SERVER in ("gevent", "eventlet") else None   # gunicorn -k gevent|eventlet
asgi = fastapi_app() if SERVER == "gunicorn-uvicorn" else None  # gunicorn -k uvicorn.workers.UvicornWorker

if __name__ == "__main__":
    if SERVER.startswith("uvicorn-"):
        import uvicorn
        # "-mw": behind add_middleware()'s two; "-factory": the app made by uvicorn from a factory
        # (`uvicorn --factory`), so that no module global holds it
        factory = SERVER.endswith("-factory")
        base = SERVER[:-len("-factory")] if factory else SERVER
        base, mw = (base[:-3], True) if base.endswith("-mw") else (base, False)
        apps = {"uvicorn-starlette": starlette_app, "uvicorn-uvloop-starlette": starlette_app,
                "uvicorn-fastapi-def": lambda: fastapi_def_app(mw), "uvicorn-fastapi": lambda: fastapi_app(mw),
                "uvicorn-uvloop-fastapi": lambda: fastapi_app(mw)}
        # a module global, as uvicorn's module:app has it: where no frame names a request's route,
        # the tool reads the app's routes from it (src/starroutes.h)
        app = apps[base] if factory else apps[base]()
        uvicorn.run(app, factory=factory, host="127.0.0.1",
                    port=PORT, loop="uvloop" if "uvloop" in SERVER else "asyncio",
                    http="httptools" if "uvloop" in SERVER else "h11", lifespan="on",
                    access_log=False, log_level="warning")
    elif SERVER in ("hypercorn", "hypercorn-mw"):
        from hypercorn.asyncio import serve
        from hypercorn.config import Config
        cfg = Config()
        cfg.bind = ["127.0.0.1:%d" % PORT]
        cfg.accesslog = None
        app = starlette_app(middleware=(SERVER == "hypercorn-mw"))
        asyncio.run(serve(app, cfg))
    elif SERVER == "aiohttp":
        run_aiohttp()
    elif SERVER == "tornado":
        run_tornado()
    elif SERVER == "waitress":
        import waitress
        waitress.serve(wsgi_app(), host="127.0.0.1", port=PORT, threads=8, _quiet=True)
    else:
        raise SystemExit("unknown server " + SERVER)
