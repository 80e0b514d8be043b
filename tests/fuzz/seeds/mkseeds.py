#!/usr/bin/env python3
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
"""Regenerate the fuzzers' seed corpora, tests/fuzz/corpus/NAME/, from real inputs on this machine.

    tests/fuzz/seeds/mkseeds.py [NAME...]      (default: every corpus; run from anywhere)

  httpparse  the bytes of each read and write of real HTTP exchanges: python3 -m http.server
             and a Flask (werkzeug) dev server driven with curl through a recording relay
             (GET/HEAD/POST, keep-alive, HTTP/1.0, absolute form, Expect: 100-continue,
             chunked upload, a pipelined pair, 404/501), and the same cut at 256 bytes; and
             uWSGI request packets as nginx and uWSGI's router send them, whole and cut
  requests   the same exchanges as fuzz_requests events (reads, writes, closes, and two
             statements per request), one seed per connection group
  sqlnorm    the statements of tests/data/sql_patterns.txt and of the integration workloads,
             whole and cut at the capture cap
  sqlmatch   the same statements as libpq call sequences: PQsendQuery, PQexec, prepared,
             a pipeline with a sync and an error
  linetable  the line tables captured from real interpreters in tests/data/lt_*.txt
  procmaps   /proc/PID/maps of a shell, python3.11 and a pyenv python (first 80 lines)
  usdtargs   the argument strings of /usr/bin/python3.11's stapsdt notes (readelf -n)
  usdtnotes  python3.11 cut to its note sections (objcopy), and tests/sdt/fake_python
  elfsym     small real ELF files: a shared library, two extension modules, a pyenv launcher,
             fake_python, the python3.11 notes file
  pymem      no patches: each version's world (tests/common/pyimage.h) as built, the threads'
             attributes where the version keeps them and in a dict, and dicts by hash; and each
             version's web app (Django's patterns, a Starlette app) for the route readers
Every seed is named by the SHA-1 of its bytes, as libFuzzer names inputs.
"""
import glob
import hashlib
import os
import re
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
CORPUS = os.path.join(REPO, "tests", "fuzz", "corpus")
CAP = 256       # bytes of a read or write the BPF side captures


def save(name, blobs):
    d = os.path.join(CORPUS, name)
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    seen = set()
    for b in blobs:
        h = hashlib.sha1(b).hexdigest()
        if h in seen:
            continue
        seen.add(h)
        with open(os.path.join(d, h), "wb") as f:
            f.write(b)
    print(f"{name}: {len(seen)} seeds, {sum(os.path.getsize(os.path.join(d, x)) for x in os.listdir(d))} bytes")


# ---- HTTP: a relay that records every chunk each side sends ----------------------------------

def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


class Relay(threading.Thread):
    def __init__(self, backend):
        super().__init__(daemon=True)
        self.backend = backend
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.conns = []     # per connection: [(dir 'c'|'s', bytes)]
        self.lock = threading.Lock()

    def pump(self, src, dst, log, d):
        try:
            while True:
                b = src.recv(65536)
                if not b:
                    break
                with self.lock:
                    log.append((d, b))
                dst.sendall(b)
        except OSError:
            pass
        try:
            dst.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    def run(self):
        while True:
            c, _ = self.sock.accept()
            b = socket.create_connection(("127.0.0.1", self.backend))
            log = []
            self.conns.append(log)
            threading.Thread(target=self.pump, args=(c, b, log, "c"), daemon=True).start()
            threading.Thread(target=self.pump, args=(b, c, log, "s"), daemon=True).start()


def wait_port(port):
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port)).close()
            return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"no server on {port}")


FLASK_APP = r'''
import uuid
from flask import Flask, request, jsonify
app = Flask(__name__)
@app.route("/")
def index():
    return "hello"
@app.route("/users/<int:uid>")
def user(uid):
    return jsonify(id=uid, name="user%d" % uid)
@app.route("/api/items/<item>", methods=["GET", "PUT", "DELETE"])
def item(item):
    return jsonify(item=item, method=request.method)
@app.route("/echo", methods=["POST"])
def echo():
    return request.get_data(), 201, {"Content-Type": "application/octet-stream"}
@app.route("/redirect")
def redirect_():
    return "", 302, {"Location": "/"}
'''


def curl_session(port, absolute_via=None):
    base = f"http://127.0.0.1:{port}"
    big = "x" * 3000
    runs = [
        ["-s", base + "/"],
        ["-s", "-I", base + "/"],
        ["-s", base + "/users/42?full=1&x=%20y", base + "/users/43", base + "/nosuch/path"],
        ["-s", "-0", base + "/users/7"],
        ["-s", "-X", "PUT", "-H", "Content-Type: application/json", "-d", '{"a": 1}',
         base + "/api/items/3f2504e0-4f89-11d3-9a0c-0305e82c3301"],
        ["-s", "-X", "DELETE", base + "/api/items/deadbeefdeadbeef0123"],
        ["-s", "-d", "name=a&b=c", base + "/echo"],
        ["-s", "-H", "Expect: 100-continue", "--data-binary", big, base + "/echo"],
        ["-s", "-H", "Transfer-Encoding: chunked", "--data-binary", "chunked body", base + "/echo"],
        ["-s", "-A", "Mozilla/5.0 (X11; Linux x86_64) " + "a" * 300, "-H", "Cookie: " + "c=1; " * 40,
         base + "/" + "p" * 300],
        ["-s", base + "/redirect"],
    ]
    for r in runs:
        subprocess.run(["curl", "--max-time", "5"] + r, stdout=subprocess.DEVNULL, check=False)
    if absolute_via:
        subprocess.run(["curl", "-s", "--max-time", "5", "-o", "/dev/null", "-x", f"http://127.0.0.1:{port}",
                        "http://example.test/users/9?q=1"], check=False)
    # a pipelined pair in one write, and a request line split over two writes
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(b"GET /users/1 HTTP/1.1\r\nHost: a\r\n\r\nGET /users/2 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
    s.settimeout(3)
    try:
        while s.recv(65536):
            pass
    except OSError:
        pass
    s.close()
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(b"GET /us")
    time.sleep(0.2)
    s.sendall(b"ers/5 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
    s.settimeout(3)
    try:
        while s.recv(65536):
            pass
    except OSError:
        pass
    s.close()


def capture_http():
    conns = []
    tmp = tempfile.mkdtemp()
    servers = []
    try:
        p1 = free_port()
        servers.append(subprocess.Popen([sys.executable, "-m", "http.server", "--bind", "127.0.0.1", str(p1)],
                                        cwd=tmp, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        with open(os.path.join(tmp, "app.py"), "w") as f:
            f.write(FLASK_APP)
        p2 = free_port()
        servers.append(subprocess.Popen([sys.executable, "-m", "flask", "--app", "app", "run", "--port", str(p2)],
                                        cwd=tmp, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        for p in (p1, p2):
            wait_port(p)
            relay = Relay(p)
            relay.start()
            curl_session(relay.port, absolute_via=True)
            time.sleep(0.5)
            with relay.lock:
                conns += [list(c) for c in relay.conns]
    finally:
        for s in servers:
            s.terminate()
            s.wait()
        shutil.rmtree(tmp)
    return [c for c in conns if c]


def uwsgi_packet(pairs):
    """uWSGI's request packet of (key, value) vars: modifier1 0, the vars' size, modifier2 0."""
    body = b"".join(struct.pack("<H", len(k)) + k + struct.pack("<H", len(v)) + v for k, v in pairs)
    return struct.pack("<BHB", 0, len(body), 0) + body


def uwsgi_seeds():
    """Request packets as nginx's uwsgi_params sends them (QUERY_STRING first), and as uWSGI's
    --http router does (the method and target first), with a short and a long query, and as BPF
    cuts them down."""
    out = []
    for q in (b"", b"page=2", b"pad=" + b"x" * 300):
        uri = b"/recipes/7/" + (b"?" + q if q else b"")
        out.append(uwsgi_packet([(b"QUERY_STRING", q), (b"REQUEST_METHOD", b"GET"), (b"CONTENT_TYPE", b""),
                                 (b"CONTENT_LENGTH", b""), (b"REQUEST_URI", uri), (b"PATH_INFO", b"/recipes/7/"),
                                 (b"DOCUMENT_ROOT", b"/usr/share/nginx/html"), (b"SERVER_PROTOCOL", b"HTTP/1.1"),
                                 (b"REQUEST_SCHEME", b"http"), (b"REMOTE_ADDR", b"127.0.0.1"),
                                 (b"REMOTE_PORT", b"40112"), (b"SERVER_PORT", b"8080"),
                                 (b"SERVER_NAME", b"localhost")]))
    out.append(uwsgi_packet([(b"REQUEST_METHOD", b"POST"), (b"REQUEST_URI", b"/orders/"), (b"QUERY_STRING", b""),
                             (b"SERVER_PROTOCOL", b"HTTP/1.0"), (b"CONTENT_LENGTH", b"7")]) + b"a=1&b=2")
    # as BPF sends a packet (bpf/http.bpf.c, uwsgi_request): the method, the protocol and the
    # target alone, the target last, cut at the capture
    for uri in (b"/recipes/7/", b"/cpu/?n=3000&pad=" + b"x" * 1400):
        out.append(uwsgi_packet([(b"REQUEST_METHOD", b"GET"), (b"SERVER_PROTOCOL", b"HTTP/1.1"),
                                 (b"REQUEST_URI", uri)]))
    return out + [b[:CAP] for b in out if len(b) > CAP]


def http_seeds(conns):
    out = []
    for c in conns:
        for _, b in c:
            out.append(b[:4096])
            out.append(b[:CAP])
    return out + uwsgi_seeds()


def requests_seeds(conns):
    """Each connection group as fuzz_requests events (see its header comment)."""
    def ev_bytes(fd, log, tid):
        ev = []
        state = "idle"      # idle -> reading -> answered
        for d, b in log:
            if d == "c":
                data = b[:255]
                flags = (2 if len(b) > 255 else 0) | (1 if len(b) < 8 else 0) | 4
                if state != "reading":
                    ev += [1, 0, 0, tid, fd, flags, len(data)] + list(data)
                    state = "reading"
                else:
                    ev += [1, 1, 0, tid, fd, flags, len(data)] + list(data)
            elif b.startswith(b"HTTP/"):
                if state == "reading":
                    ev += [2, 4, 0, tid, 1, 2, 1]           # two statements, same site: N+1 at threshold 1
                    ev += [1, 4, 0, tid, 1, 2, 1]
                ev += [3, 2, 0, tid, fd, len(b[:255])] + list(b[:255])
                state = "answered"
        ev += [1, 3, 0, fd]
        return ev
    out = []
    for i in range(0, len(conns), 3):
        ev = [0x3f]     # 4 connections, 4 threads, 10 routes, N+1 at 1, last_write callback
        for k, log in enumerate(conns[i:i + 3]):
            ev += ev_bytes(k + 1, log, k)
        ev += [200, 5]
        out.append(bytes(ev))
    return out


# ---- SQL --------------------------------------------------------------------------------------

def sql_statements():
    stmts = []
    with open(os.path.join(REPO, "tests", "data", "sql_patterns.txt"), encoding="utf-8") as f:
        stmts += [line[2:].rstrip("\n") for line in f if line.startswith("< ")]
    for path in glob.glob(os.path.join(REPO, "tests", "integration", "workloads", "*.py")):
        with open(path, encoding="utf-8") as f:
            src = f.read()
        stmts += re.findall(r'"((?:SELECT|INSERT|UPDATE|DELETE|WITH|BEGIN|PREPARE|CREATE)[^"]*)"', src)
    return stmts


def sql_seeds():
    out = []
    for s in sql_statements():
        b = s.encode("utf-8", "surrogateescape")
        out.append(bytes([7 << 1]) + b)                     # whole, 8192-byte pattern buffer
        if len(b) > 24:
            out.append(bytes([7 << 1 | 1]) + b[:len(b) * 2 // 3])    # cut at a capture cap
            out.append(bytes([5 << 1]) + b)                 # into a 40-byte buffer
    return out


def sqlmatch_seeds():
    """The statements as libpq call sequences, fuzz_sqlmatch events (see its header comment)."""
    def blob(b):
        return [len(b[:254])] + list(b[:254])
    NONE, OK, CMD, NULL, SYNC = [0xff], 4, 3, 1, 12        # status bytes: PGRES_* + 2, 1: NULL
    stmts = [s.encode("utf-8", "surrogateescape") for s in sql_statements()]
    out = []
    for i in range(0, len(stmts), 6):
        group = stmts[i:i + 6]
        ev = [3]
        for k, t in enumerate(group):
            conn = (k % 4) << 1
            if k % 3 == 0:      # PQsendQuery + PQgetResult until NULL
                ev += [0, conn, 0] + NONE + blob(t) + [1, conn, OK, 1, conn, NULL]
            elif k % 3 == 1:    # PQexec
                ev += [2, conn, 0, OK] + NONE + blob(t)
            else:               # PQsendPrepare, then PQsendQueryPrepared with parameters
                name = b"_pg3_%d" % k
                ev += [0, conn, 2] + blob(name) + blob(t) + [1, conn, CMD, 1, conn, NULL]
                ev += [0, conn, 4 | 8] + blob(name) + NONE + [1, conn, OK, 1, conn, NULL]
        if len(group) >= 2:     # a pipeline: two sends, a sync, their results, the sync's
            ev += [0, 6, 8] + NONE + blob(group[0]) + [0, 6, 8] + NONE + blob(group[1]) + [3, 6]
            ev += [1, 6, OK, 1, 6, NULL, 1, 6, 9, 1, 6, NULL, 1, 6, SYNC, 5, 4, 1]
        out.append(bytes(ev))
    return out


# ---- line tables, maps, ELF --------------------------------------------------------------------

def linetable_seeds():
    kinds = {"lnotab": 0, "linetable310": 1, "locations": 2}
    out = []
    for path in sorted(glob.glob(os.path.join(REPO, "tests", "data", "lt_*.txt"))):
        with open(path) as f:
            for line in f:
                w = line.split()
                if len(w) == 5 and w[0] == "code":
                    table = bytes.fromhex(w[4])
                    out.append(bytes([kinds[w[3]]]) + struct.pack("<i", int(w[2])) + bytes([200]) + table)
    return out


def procmaps_seeds():
    out = []
    procs = [subprocess.Popen(["sleep", "30"]),
             subprocess.Popen(["/usr/bin/python3.11", "-c", "import ssl, sqlite3, time; time.sleep(30)"])]
    pyenv = glob.glob("/root/.pyenv/versions/3.12*/bin/python3.12")
    if pyenv:
        procs.append(subprocess.Popen([pyenv[0], "-c", "import json, time; time.sleep(30)"]))
    time.sleep(1.5)
    for p in procs + [None]:
        pid = p.pid if p else os.getppid()
        with open(f"/proc/{pid}/maps", "rb") as f:
            lines = f.read().split(b"\n")[:80]
        out.append(b"\n".join(lines) + b"\n")
    for p in procs:
        p.kill()
        p.wait()
    return out


def run(cmd, **kw):
    return subprocess.run(cmd, check=True, capture_output=True, **kw)


def fake_python(tmp):
    exe = os.path.join(tmp, "fake_python")
    run(["cc", "-O1", "-o", exe, os.path.join(REPO, "tests", "sdt", "fake_python.c")])
    return exe


def py311_notes(tmp):
    out = os.path.join(tmp, "py311notes")
    run(["objcopy", "-j", ".note.stapsdt", "-j", ".stapsdt.base", "/usr/bin/python3.11", out])
    return out


def read(path):
    with open(path, "rb") as f:
        return f.read()


def pymem_seeds():
    """fuzz_pymem's header alone (version, flags, modules): the worlds as built, unpatched."""
    seeds = [bytes([v, home, 32]) for v in range(8) for home in (0, 1)]
    seeds += [bytes([v, flags, 32]) for v in (0, 3, 5, 7) for flags in (6, 3)]   # by hash: SipHash-1-3, -2-4
    seeds += [bytes([v, 8, 0]) for v in range(8)]   # the web app's world: route tables
    return seeds


def usdtargs_seeds():
    notes = run(["readelf", "-n", "/usr/bin/python3.11"], text=True).stdout
    return sorted({a.encode() for a in re.findall(r"Arguments: (.*)", notes)})


def main(names):
    tmp = tempfile.mkdtemp()
    try:
        if "httpparse" in names or "requests" in names:
            conns = capture_http()
            if "httpparse" in names:
                save("httpparse", http_seeds(conns))
            if "requests" in names:
                save("requests", requests_seeds(conns))
        if "sqlnorm" in names:
            save("sqlnorm", sql_seeds())
        if "sqlmatch" in names:
            save("sqlmatch", sqlmatch_seeds())
        if "linetable" in names:
            save("linetable", linetable_seeds())
        if "procmaps" in names:
            save("procmaps", procmaps_seeds())
        if "usdtargs" in names:
            save("usdtargs", usdtargs_seeds())
        if "pymem" in names:
            save("pymem", pymem_seeds())
        if "usdtnotes" in names:
            save("usdtnotes", [read(py311_notes(tmp)), read(fake_python(tmp))])
        if "elfsym" in names:
            files = ["/usr/lib/x86_64-linux-gnu/libxshmfence.so.1.0.0"]
            files += sorted(glob.glob("/usr/lib/python3.11/lib-dynload/_contextvars.*.so"))
            files += sorted(glob.glob("/usr/lib/python3.11/lib-dynload/_typing.*.so"))
            files += sorted(glob.glob("/root/.pyenv/versions/3.12*/bin/python3.12"))[:1]
            files += [fake_python(tmp), py311_notes(tmp)]
            save("elfsym", [read(f) for f in files if os.path.exists(f)])
    finally:
        shutil.rmtree(tmp)


if __name__ == "__main__":
    all_names = ["httpparse", "requests", "sqlnorm", "sqlmatch", "linetable", "procmaps", "usdtargs", "usdtnotes", "elfsym", "pymem"]
    main(sys.argv[1:] or all_names)
