#!/usr/bin/python3
"""An asyncio HTTP/1.1 server whose one thread serves many requests at once: /slow/ runs a query,
awaits, and runs it again, so other requests are read and served in between. psycopg2 runs on the
loop thread (blocking, but short). Usage: web_asyncio.py PORT

/slow/    SELECT, await 30 ms, SELECT x5 (an N+1 if it were attributed), response
/health/  no query
"""
import asyncio
import sys

import psycopg2

conn = psycopg2.connect("")


def lookup(i):
    with conn.cursor() as c:
        c.execute("SELECT %s::int + 1", (i,))  # @site
        return c.fetchone()[0]


async def handle(reader, writer):
    while True:
        line = await reader.readline()
        if not line:
            break
        while (await reader.readline()) not in (b"\r\n", b"\n", b""):
            pass
        path = line.split()[1].decode()
        if path.startswith("/slow/"):
            lookup(0)
            await asyncio.sleep(0.03)
            body = str(sum(lookup(i) for i in range(5))).encode()
        else:
            body = b"ok\n"
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
        await writer.drain()
    writer.close()


async def main(port):
    server = await asyncio.start_server(handle, "127.0.0.1", port)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1])))
