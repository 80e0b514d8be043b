"""An asyncio HTTP/1.1 server and PostgreSQL client in the standard library alone, so that every
interpreter (3.8-3.15, pyenv's and the sid root's, which have no drivers) serves requests by
task: each connection's task reads requests, each request is served by a task of its own (its
address reused by later ones), which sends its statements (a minimal wire-protocol client on
asyncio streams) and writes its response. The count of statements is returned in X-Queries.
Usage: web_async_stdlib.py PORT K      (PGHOST, PGPORT, PGUSER, PGDATABASE as libpq's)

/n1/ID/    K statements from the marked line, one per item (an N+1), plus one: K+1
/fixed/ID/ the same in one join: 1
/slow/ID/  a statement, a 50 ms sleep, a statement: 2
/cpu/ID/   none
/health/   none

Each request runs through a Route.handle(self, ...) of a module starlette.routing, as in
Starlette, from which the tool reads the route's template (src/routes.h). These interpreters have
no Starlette: the module is a stand-in written here, with Starlette's names and frame shape (a
Route whose `path` the app declared, an async `handle` whose first local is the route).
"""
import asyncio
import os
import struct
import sys
import tempfile

PORT, K = int(sys.argv[1]), int(sys.argv[2])

ROUTING = """
class Route:
    def __init__(self, path, endpoint):
        self.path = path
        self.endpoint = endpoint

    async def handle(self, scope, receive, send):
        await self.endpoint(scope, receive, send)
"""
SHIM = tempfile.mkdtemp(prefix="pytrace-starlette-")
os.mkdir(os.path.join(SHIM, "starlette"))
open(os.path.join(SHIM, "starlette", "__init__.py"), "w").close()
with open(os.path.join(SHIM, "starlette", "routing.py"), "w") as f:
    f.write(ROUTING)
sys.path.insert(0, SHIM)
from starlette.routing import Route  # noqa: E402


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


async def endpoint(scope, pg, writer):
    await serve(scope["path"], writer, pg)


ROUTES = {k: Route("/%s/{rid:int}/" % k, endpoint) for k in ("n1", "fixed", "slow", "cpu")}
ROUTES["health"] = Route("/health/", endpoint)

LIVE = set()   # 3.8-3.11 hold server connections' tasks weakly: the GC could end them mid-request


async def connection(reader, writer):
    LIVE.add(asyncio.current_task())
    pg = await PG().connect()   # a PostgreSQL connection per HTTP connection
    while True:
        line = await reader.readline()
        if not line:
            break
        while (await reader.readline()) not in (b"\r\n", b"\n", b""):
            pass
        path = line.split()[1].decode()
        route = ROUTES.get(path.strip("/").split("/")[0], ROUTES["health"])
        await asyncio.ensure_future(route.handle({"path": path}, pg, writer))
    pg.w.close()
    writer.close()
    LIVE.discard(asyncio.current_task())


async def main():
    server = await asyncio.start_server(connection, "127.0.0.1", PORT)
    async with server:
        await server.serve_forever()


asyncio.run(main())
