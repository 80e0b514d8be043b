"""An asyncio HTTP/1.1 server and PostgreSQL client in the standard library alone, so that every
interpreter (3.8-3.15, pyenv's and the sid root's, which have no drivers) serves requests by
task: each connection's task reads requests, each request is served by a task of its own (its
address reused by later ones), which sends its statements (a minimal wire-protocol client on
asyncio streams) and writes its response. The count of statements is returned in X-Queries.
Usage: web_async_stdlib.py PORT K [DEPTH [tornado]]   (PGHOST, PGPORT, PGUSER, PGDATABASE as libpq's)
DEPTH (0): coroutine frames of "middleware" above Route.handle in each request's task, as a
Starlette app's middleware stack and router put there (bench/async_cut.py)
tornado: each request runs through a stand-in of Tornado's RequestHandler._execute instead (below)

/n1/ID/    K statements from the marked line, one per item (an N+1), plus one: K+1
/fixed/ID/ the same in one join: 1
/slow/ID/  a statement, a 50 ms sleep, a statement: 2
/cpu/ID/   none
/stream/ID/ a statement, then a response streamed by a child task (below): 1
/health/   none

Each request runs through a Route.handle(self, ...) of a module starlette.routing, as in
Starlette, from which the tool reads the route's template (src/routes.h). These interpreters have
no Starlette: the module is a stand-in written here, with Starlette's names and frame shape (a
Route whose `path` the app declared, an async `handle` whose first local is the route). So are
starlette.responses' StreamingResponse, whose __call__ streams from a child task (its nested
wrap(), which holds the task group in a cell) of an anyio task group, and the anyio classes the
tool reads the task group's host task through (anyio._backends._asyncio's TaskGroup.cancel_scope,
CancelScope._host_task: struct pt_proc's host_cell), with anyio's attributes in anyio's order.

With "tornado", a stand-in of tornado.web (Tornado 6's names and frame shape) serves instead: an
Application whose default_router's rules are a HostMatches rule for any host and an AnyMatches
rule to the wildcard router of the URL specs (Rule, PathMatches with a compiled regex), and a
RequestHandler subclass per request, `application` its first attribute, whose async _execute
(a closure of it takes self: a cell, as in Tornado) runs get(). The tool reads the app through
the handler (src/tornroutes.h): the request's names are the specs' regexes, "/n1/<rid>/".
"""
import asyncio
import os
import struct
import sys
import tempfile

PORT, K = int(sys.argv[1]), int(sys.argv[2])
DEPTH = int(sys.argv[3]) if len(sys.argv) > 3 else 0
TORNADO = sys.argv[4:5] == ["tornado"]

ROUTING = """
class Route:
    def __init__(self, path, endpoint):
        self.path = path
        self.endpoint = endpoint

    async def handle(self, scope, receive, send):
        await self.endpoint(scope, receive, send)
"""
RESPONSES = """
from functools import partial
from anyio._backends._asyncio import TaskGroup


class StreamingResponse:
    def __init__(self, chunks, headers):
        self.body_iterator = chunks
        self.headers = headers

    async def stream_response(self, send):
        await send(self.headers)
        for chunk in self.body_iterator:
            await send(chunk)

    async def __call__(self, scope, receive, send):
        async with TaskGroup() as task_group:

            async def wrap(func):
                await func()
                task_group.cancel_scope.cancel()

            task_group.start_soon(wrap, partial(self.stream_response, send))
"""
ANYIO = """
import asyncio
import math


class CancelScope:
    def __init__(self, deadline=math.inf, shield=False):
        self._deadline = deadline
        self._shield = shield
        self._parent_scope = None
        self._cancel_called = False
        self._active = False
        self._timeout_handle = None
        self._cancel_handle = None
        self._tasks = set()
        self._host_task = None
        self._timeout_expired = False

    def __enter__(self):
        self._host_task = host_task = asyncio.current_task()
        self._tasks.add(host_task)
        self._active = True
        return self

    def __exit__(self, *exc):
        self._active = False

    def cancel(self):
        self._cancel_called = True


class TaskGroup:
    def __init__(self):
        self.cancel_scope = CancelScope()
        self._active = False
        self._exceptions = []

    async def __aenter__(self):
        self.cancel_scope.__enter__()
        self._active = True
        self._children = []
        return self

    async def __aexit__(self, *exc):
        await asyncio.gather(*self._children)
        self.cancel_scope.__exit__(*exc)
        self._active = False

    def start_soon(self, func, *args):
        self._children.append(asyncio.get_running_loop().create_task(func(*args)))
"""
TORNADO_WEB = """
import re


class Rule:
    def __init__(self, matcher, target, target_kwargs=None, name=None):
        self.matcher = matcher
        self.target = target
        self.target_kwargs = target_kwargs or {}
        self.name = name


class PathMatches:
    def __init__(self, path_pattern):
        if not path_pattern.endswith("$"):
            path_pattern += "$"
        self.regex = re.compile(path_pattern)


class HostMatches:
    def __init__(self, host_pattern):
        if not host_pattern.endswith("$"):
            host_pattern += "$"
        self.host_pattern = re.compile(host_pattern)


class AnyMatches:
    pass


class _ApplicationRouter:
    def __init__(self, application, rules):
        self.application = application
        self.rules = [Rule(PathMatches(p), h, kw) for p, h, kw in rules]

    def find(self, path):
        for rule in self.rules:
            if isinstance(rule.matcher, (AnyMatches, HostMatches)):
                found = rule.target.find(path)
            else:
                m = rule.matcher.regex.match(path)
                found = (rule, m.groupdict()) if m else None
            if found:
                return found
        return None


class Application:
    def __init__(self, handlers):
        self.wildcard_router = _ApplicationRouter(self, handlers)
        self.default_router = _ApplicationRouter(self, [])
        self.default_router.rules.append(Rule(AnyMatches(), self.wildcard_router))

    def add_handlers(self, host_pattern, host_handlers):
        rule = Rule(HostMatches(host_pattern), _ApplicationRouter(self, host_handlers))
        self.default_router.rules.insert(-1, rule)


class RequestHandler:
    def __init__(self, application, request, **kwargs):
        super().__init__()
        self.application = application
        self.request = request
        self._finished = False
        self.initialize(**kwargs)

    def initialize(self):
        pass

    async def _execute(self, transforms, *args, **kwargs):
        finished = lambda: self._finished  # noqa: E731 (a closure takes self: a cell)
        await self.get(*args, **kwargs)
        self._finished = True
        return finished()
"""
SHIM = tempfile.mkdtemp(prefix="pytrace-starlette-")
for pkg, files in (("starlette", {"routing.py": ROUTING, "responses.py": RESPONSES}),
                   ("anyio", {}), (os.path.join("anyio", "_backends"), {"_asyncio.py": ANYIO}),
                   ("tornado", {"web.py": TORNADO_WEB})):
    os.mkdir(os.path.join(SHIM, pkg))
    open(os.path.join(SHIM, pkg, "__init__.py"), "w").close()
    for fname, text in files.items():
        with open(os.path.join(SHIM, pkg, fname), "w") as f:
            f.write(text)
sys.path.insert(0, SHIM)
# one framework's modules in sys.modules: the tool follows one route frame a process
if TORNADO:
    import tornado.web  # noqa: E402
else:
    from starlette.routing import Route  # noqa: E402
    from starlette.responses import StreamingResponse  # noqa: E402


class PG:
    """Simple Query protocol over asyncio streams, trust authentication."""

    async def connect(self):
        host, port = os.environ.get("PGHOST", "/tmp"), os.environ.get("PGPORT", "5432")
        if host.startswith("/"):
            self.r, self.w = await asyncio.open_unix_connection("%s/.s.PGSQL.%s" % (host, port))
        else:
            self.r, self.w = await asyncio.open_connection(host, int(port))
        params = b"user\0%s\0database\0%s\0\0" % (os.environ.get("PGUSER", "postgres").encode(),
                                                  os.environ.get("PGDATABASE", "pytrace").encode())
        self.w.write(struct.pack("!ii", 8 + len(params), 196608) + params)
        await self.until_ready()
        return self

    async def until_ready(self):
        rows = []
        while True:
            head = await self.r.readexactly(5)
            body = await self.r.readexactly(struct.unpack("!i", head[1:])[0] - 4)
            t = head[:1]
            if t == b"R" and struct.unpack("!i", body[:4])[0] != 0:
                raise SystemExit("the cluster asks for a password")
            if t == b"E":
                raise SystemExit("error: %r" % body)
            if t == b"D":
                n = struct.unpack("!i", body[2:6])[0]
                rows.append(body[6:6 + n].decode() if n >= 0 else None)
            if t == b"Z":
                return rows

    async def query(self, sql):
        self.w.write(msg(sql))
        return await self.until_ready()


def msg(sql):
    data = sql.encode() + b"\0"
    return b"Q" + struct.pack("!i", len(data) + 4) + data


async def owner(pg, i, n):
    n[0] += 1
    pg.w.write(msg("SELECT name FROM async_owners WHERE id = %d" % i))  # @n1_stdlib
    return (await pg.until_ready())[0]


async def serve(path, writer, pg):
    """One request, in a task of its own: the statements and the response's writes."""
    kind, n, body = path.strip("/").split("/")[0], [0], "ok"
    if kind == "fixed":
        n[0] += 1
        body = ",".join(await pg.query("SELECT o.name FROM async_items i JOIN async_owners o ON o.id = i.owner_id "
                                       "ORDER BY i.id LIMIT %d" % K))
    elif kind in ("n1", "slow"):
        n[0] += 1
        ids = await pg.query("SELECT owner_id FROM async_items ORDER BY id LIMIT %d" % K)
        if kind == "n1":
            body = ",".join([await owner(pg, int(i), n) for i in ids])
        else:
            await asyncio.sleep(0.05)
            n[0] += 1
            body = (await pg.query("SELECT count(*) FROM async_items"))[0]
    elif kind == "cpu":
        body = str(sum(i * i for i in range(200000)))
    data = body.encode()
    writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nX-Queries: %d\r\n\r\n%s" % (len(data), n[0], data))
    await writer.drain()


async def stream(path, writer, pg):
    """A statement in the request's task, then the response from a child task (StreamingResponse)."""
    await pg.query("SELECT count(*) FROM async_items")
    chunks = [b"%d\n" % i for i in range(3)]
    head = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nX-Queries: 1\r\n\r\n" % sum(map(len, chunks))

    async def send(data):
        writer.write(data)
        await writer.drain()

    await StreamingResponse(chunks, head)({"path": path}, None, send)


async def endpoint(scope, pg, writer):
    if scope["path"].startswith("/stream/"):
        await stream(scope["path"], writer, pg)
    else:
        await serve(scope["path"], writer, pg)


if not TORNADO:
    ROUTES = {k: Route("/%s/{rid:int}/" % k, endpoint) for k in ("n1", "fixed", "slow", "cpu", "stream")}
    ROUTES["health"] = Route("/health/", endpoint)
else:
    class Handler(tornado.web.RequestHandler):
        def initialize(self, pg, writer):
            self.pg = pg
            self.writer = writer

        async def get(self, rid=None):
            await serve(self.request, self.writer, self.pg)

    APP = tornado.web.Application([(r"/%s/(?P<rid>\d+)/" % k, Handler, {}) for k in ("n1", "fixed", "slow", "cpu")] +
                                  [(r"/warm/", Handler, {}), (r"/health/", Handler, {})])
    APP.add_handlers(r".*", [(r"/v2/(?P<rid>\d+)/", Handler, {})])


def tornado_handler(path, pg, writer):
    """Tornado's way: the first rule that matches, a handler made for the request; and its kwargs
    (its _execute is the request's task's coroutine, as Tornado's _HandlerDelegate runs it)."""
    rule, kwargs = APP.default_router.find(path.split("?")[0]) or APP.default_router.find("/health/")
    return rule.target(APP, path, pg=pg, writer=writer), kwargs


async def middleware(depth, route, scope, pg, writer):
    """depth frames of this coroutine, then the route's handle: all in the request's task."""
    if depth:
        await middleware(depth - 1, route, scope, pg, writer)
    else:
        await route.handle(scope, pg, writer)


LIVE = set()   # 3.8-3.11 hold server connections' tasks weakly: the GC could end them mid-request


async def connection(reader, writer):
    LIVE.add(asyncio.current_task())
    pg = await PG().connect()   # a PostgreSQL connection per HTTP connection
    try:
        while True:
            line = await reader.readline()
            if not line:
                break
            while (await reader.readline()) not in (b"\r\n", b"\n", b""):
                pass
            path = line.split()[1].decode()
            if TORNADO:
                handler, kwargs = tornado_handler(path, pg, writer)
                await asyncio.ensure_future(handler._execute([], **kwargs))
                continue
            route = ROUTES.get(path.strip("/").split("/")[0], ROUTES["health"])
            scope = {"path": path}
            await asyncio.ensure_future(middleware(DEPTH, route, scope, pg, writer) if DEPTH else
                                        route.handle(scope, pg, writer))
    except ConnectionError:
        pass    # a client that leaves mid-request (wrk at the end of a run)
    finally:
        pg.w.close()    # its PostgreSQL connection with it: the cluster has 100 at most
        writer.close()
        LIVE.discard(asyncio.current_task())


async def main():
    server = await asyncio.start_server(connection, "127.0.0.1", PORT)
    async with server:
        await server.serve_forever()


asyncio.run(main())
