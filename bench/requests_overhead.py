#!/usr/bin/python3
"""Request tracing overhead on the demo (Django + psycopg2 on gunicorn, 2 sync workers, own
PostgreSQL), measured with wrk: untraced, traced by pytrace-bpf with everything on (CPU samples at
99 Hz, SQL from the wire protocol with --sql-in-flame, HTTP requests, JSON report, requests log), austin
attached at 100 Hz, and sentry-sdk's Django tracing (traces_sample_rate=1.0, events dropped by a
null transport), in alternating runs. Two endpoints: /recipes/ (SQL-heavy: 51 queries) and /cpu/
(CPU-heavy: pure Python). Each round runs every configuration once, in a rotated order; the ratio
of a configuration is its throughput over the same round's untraced run, and the report gives the
median ratio over rounds and the spread. Every configuration gets --warmup seconds of the same
load, unmeasured, before its window: the steady state of a tracer left on is what is measured,
not its start-up (loading the BPF programs, moving each worker to its final libpq probes).

--service uvicorn-fastapi and --service gunicorn-gevent measure instead tests/integration/workloads/
web_async.py on uvicorn with FastAPI (asyncpg) and on gunicorn -k gevent (pg8000), one process
each, where statements are attributed by task: /n1/1/ (SQL-heavy: 13 statements) and /cpu/1/;
--service uvicorn-fastapi-def the same app's def endpoints (psycopg2, run in anyio's thread pool:
statements attributed by the task the pool works for); --service uvicorn-uvloop-fastapi the
asyncpg app on uvloop (uvicorn's loop when uvloop is installed: statements and responses are
written by a loop callback, their tasks taken from the probe on uvloop's transport.write);
--service uvicorn-fastapi-mw the asyncpg app behind two @app.middleware("http") functions
(Starlette's BaseHTTPMiddleware: every task of a request keyed by its ASGI scope).
--service demo-uwsgi-nginx the demo on uWSGI (2 preforked workers, CPython embedded through its
python3 plugin) behind nginx's uwsgi_pass, nginx in the service's cgroup: requests read from
uWSGI's binary protocol. --service tornado the asyncpg app on Tornado's own server (each request
a RequestHandler's task, named by the app's URL specs: the walker reads the app through the
handler, src/tornroutes.h).

Usage: sudo bench/requests_overhead.py [--service demo|uvicorn-fastapi|uvicorn-uvloop-fastapi|uvicorn-fastapi-def|
                                                  uvicorn-fastapi-mw|gunicorn-gevent|demo-uwsgi-nginx|tornado]
                                      [--rounds 5] [--seconds 5] [--warmup 3] [--connections 2]
                                      [--configs untraced,pytrace-bpf,austin,sentry-sdk,pytrace-bpf-http,bpftrace-traps]
                                      [--compare PATH]
--compare PATH adds the configuration pytrace-bpf-compare: another build of the tool (before and
after a change) with pytrace-bpf's options, in the same rotation.
The second table turns CPU accounting into a cost that the noise of a shared 2-CPU machine does not
hide: BPF run time of the tool's programs (kernel.bpf_stats_enabled) and the collector's own CPU,
per request over the measured window, over the untraced CPU per request. It leaves out what BPF
run time does not count: the uprobe traps themselves and any per-context-switch cost.
"""
import argparse
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import Cgroup, bpf_prog_stats, cpu_seconds, enable_bpf_stats, tool_prog_ids  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
DELAY_FLAG = "/dev/shm/ptdelay"   # client-delay: its first byte turns bench/client_delay.c's spin on
TOOL = os.environ.get("PYTRACE_BPF") or os.path.join(REPO, "build", "pytrace-bpf")
SOCKFLOOR = os.path.join(REPO, "build", "sockfloor")	# make bench-tools (bench/sockfloor/)
PY = "/usr/bin/python3"
GUNICORN = "/usr/bin/gunicorn"
DEMO = os.path.join(REPO, "demo")
PG_CLUSTER = os.path.join(REPO, "scripts", "pg-cluster.sh")
ENDPOINTS = [("/recipes/", "SQL-heavy: N+1, 51 queries"), ("/cpu/?n=5000", "CPU-heavy: pure Python")]
# named with --endpoints only: a slug route, one query, that Django's URL patterns name (src/djroutes.h)
MORE_ENDPOINTS = [("/authors/cook-2/", "slug route: 1 query, named /authors/<slug:name>/")]
CONFIGS = ["untraced", "pytrace-bpf", "austin", "sentry-sdk"]
# pytrace-bpf-http: the HTTP layer alone (--no-sql, no CPU sampling), to tell its cost from the rest
# pytrace-bpf-http-raw: the same through the raw syscall tracepoints (the fallback without tracefs)
# bpftrace-traps: a uprobe and a uretprobe on libpq's PQexec with empty bodies: the floor of any tool
#                 that times each statement from its entry to its return (two traps per statement)
# client-delay: no tracer; the service's send()/sendto() each spin PT_DELAY_NS (5000) first
#                 (bench/client_delay.c, LD_PRELOAD): what a per-statement latency alone costs
# client-delay-recv: the same spin after each recv()/recvfrom() that returned data instead (after
#                 the result came back, not before the statement left)
# client-delay-after-send: the same spin after each send()/sendto() returned (where programs on
#                 the send's exit run: the statement has left, its result not yet come)
# pytrace-bpf-sql: SQL from the wire alone (--no-http --no-samples), call sites on
# pytrace-bpf-no-http: everything but the HTTP layer (CPU samples, SQL with --sql-in-flame)
# bpftrace-http-floor: empty programs on the syscall tracepoints the HTTP layer uses (the exits of
#                 accept*, read/recv*, write/send*, the entry of close): what the kernel's tracepoint
#                 path costs every syscall of the host before any program does work
# bpftrace-sock-floor: empty programs on the socket layer's own tracepoints (sock_send_length and
#                 sock_recv_length, Linux 6.3+; through perf events, as bpftrace 0.17 attaches them): the floor of reading the same bytes there
#                 instead of on syscall tracepoints, which put every syscall of every task of the
#                 host on the kernel's slow syscall path while any of them is enabled
# sock-floor-raw: the same tracepoints with empty programs attached raw (tp_btf, BPF_TRACE_RAW_TP:
#                 no perf event in the way), by build/sockfloor --mode empty: the floor of that design
# sock-floor-miss: the same with what that design does for a process it does not trace (every
#                 process here): the pid's bit looked up in a bitmap, clear (--mode miss)
# sock-floor-regs: the start of its traced path for the service's processes (the bit set: the
#                 syscall's registers and the socket's cookie read, --mode regs -p ...)
# pytrace-bpf-libpq: everything on, SQL through libpq's uprobes (--sql-source libpq) instead of the
#                 wire protocol (the default): the two designs side by side
EXTRA_CONFIGS = ["pytrace-bpf-http", "pytrace-bpf-sql", "pytrace-bpf-http-raw", "pytrace-bpf-no-http", "bpftrace-traps",
                 "bpftrace-http-floor", "bpftrace-sock-floor", "sock-floor-raw", "sock-floor-miss", "sock-floor-regs",
                 "pytrace-bpf-libpq", "pytrace-bpf-collector", "client-delay", "client-delay-recv",
                 "client-delay-after-send", "pytrace-bpf-compare"]
# the client-delay configurations: bench/client_delay.c's mode (its flag byte), and what it does
DELAY_MODES = {"client-delay": b"\1", "client-delay-recv": b"\2", "client-delay-after-send": b"\3"}
DELAY_NOTES = {"client-delay": "send() and sendto() each spin first",
               "client-delay-recv": "recv() and recvfrom() each spin after data",
               "client-delay-after-send": "send() and sendto() each spin after the bytes left"}
COMPARE = None	# --compare: the build pytrace-bpf-compare runs
SQL_IN_FLAME = True	# --no-sql-in-flame: the pytrace-bpf configurations without it
SOCKFLOOR_MODES = {"sock-floor-raw": "empty", "sock-floor-miss": "miss", "sock-floor-regs": "regs"}
HTTP_SYSCALLS = ["accept", "accept4", "read", "recvfrom", "readv", "recvmsg", "write", "sendto", "writev",
                 "sendmsg", "sendfile64"]
LIBPQ = "/usr/lib/x86_64-linux-gnu/libpq.so.5"
WEB_ASYNC = os.path.join(REPO, "tests", "integration", "workloads", "web_async.py")
ASYNC_ENDPOINTS = [("/n1/1/", "SQL-heavy: N+1, 13 queries"), ("/cpu/1/", "CPU-heavy: pure Python")]
ASYNC_SCHEMA = """
CREATE TABLE IF NOT EXISTS async_owners (id int PRIMARY KEY, name text);
CREATE TABLE IF NOT EXISTS async_items (id int PRIMARY KEY, owner_id int REFERENCES async_owners (id));
INSERT INTO async_owners SELECT g, 'owner' || g FROM generate_series(1, 12) g ON CONFLICT DO NOTHING;
INSERT INTO async_items SELECT g, g FROM generate_series(1, 12) g ON CONFLICT DO NOTHING;
"""


def start_async_service(service, env, tmp):
    """web_async.py on uvicorn + FastAPI (asyncpg) or gunicorn -k gevent (pg8000): (port, Popen)."""
    port = free_port(18300, 18400)
    log = open(os.path.join(tmp, service + ".log"), "w")
    if service == "gunicorn-gevent":
        e = dict(env, WEB_ASYNC="gevent pg8000 %d 12" % port)
        argv = [PY, GUNICORN, "-k", "gevent", "-w", "1", "-b", "127.0.0.1:%d" % port, "--chdir",
                os.path.dirname(WEB_ASYNC), "web_async:application"]
    else:
        e = env
        argv = [PY, WEB_ASYNC, service, "psycopg2" if service == "uvicorn-fastapi-def" else "asyncpg", str(port), "12"]
    g = subprocess.Popen(argv, env=e, stdout=log, stderr=log, preexec_fn=SVC_CG.enter)
    if not wait_http("http://127.0.0.1:%d/health/" % port):
        g.kill()
        raise RuntimeError("%s did not start: %s" % (service, open(os.path.join(tmp, service + ".log")).read()[-800:]))
    return port, g


NGINX_CONF = """daemon off; worker_processes 1; pid %(t)s/nginx.pid; error_log %(t)s/nginx.err;
events { worker_connections 256; }
http {
  access_log off;
  client_body_temp_path %(t)s; proxy_temp_path %(t)s; fastcgi_temp_path %(t)s; uwsgi_temp_path %(t)s;
  scgi_temp_path %(t)s;
  server { listen 127.0.0.1:%(p)d; location / { include /etc/nginx/uwsgi_params; uwsgi_pass unix:%(s)s; } }
}
"""


def start_uwsgi_nginx(env, tmp):
    """The demo on uWSGI (2 workers) behind nginx's uwsgi_pass: (port, the uWSGI master's Popen, nginx's)."""
    port, sock, conf = free_port(18300, 18400), os.path.join(tmp, "uwsgi.sock"), os.path.join(tmp, "nginx.conf")
    with open(conf, "w") as f:
        f.write(NGINX_CONF % {"t": tmp, "p": port, "s": sock})
    g = subprocess.Popen(["/usr/bin/uwsgi", "--plugin", "python3", "--socket", sock, "--chmod-socket=666",
                          "--chdir", DEMO, "--module", "recipesite.wsgi:application", "--master", "--processes", "2",
                          "--die-on-term", "--need-app", "--disable-logging"], env=env, stdout=subprocess.DEVNULL,
                         stderr=open(os.path.join(tmp, "uwsgi.log"), "w"), preexec_fn=SVC_CG.enter)
    n = subprocess.Popen(["/usr/sbin/nginx", "-c", conf, "-p", tmp], stdout=subprocess.DEVNULL,
                         stderr=open(os.path.join(tmp, "nginx.log"), "w"), preexec_fn=SVC_CG.enter)
    if not wait_http("http://127.0.0.1:%d/health/" % port):
        g.kill()
        n.kill()
        raise RuntimeError("uWSGI behind nginx did not start: %s" % open(os.path.join(tmp, "uwsgi.log")).read()[-800:])
    return port, g, n


# Everything under test, in cgroups v2 of their own: the service (gunicorn and PostgreSQL) and the
# tracer (whichever runs); wrk stays outside. Their CPU per request is the robust figure.
SVC_CG, TOOL_CG = None, None


def free_port(lo, hi):
    for port in range(lo, hi):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        if not os.path.exists("/tmp/.s.PGSQL.%d" % port):
            return port
    raise RuntimeError("no free port")


def wait_http(url, seconds=30):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if urllib.request.urlopen(url, timeout=2).status == 200:
                return True
        except OSError:
            time.sleep(0.2)
    return False


def wrk(url, seconds, conns):
    out = subprocess.run(["wrk", "-t1", "-c%d" % conns, "-d%ds" % seconds, url], capture_output=True, text=True,
                         timeout=seconds + 60)
    m = re.search(r"Requests/sec:\s+([\d.]+)", out.stdout)
    errs = re.search(r"Non-2xx or 3xx responses: (\d+)", out.stdout)
    if not m or errs:
        raise RuntimeError("wrk failed: " + out.stdout + out.stderr)
    return float(m.group(1))


def family(pid):
    """pid and its descendants (gunicorn's master and its workers)."""
    pids, i = [pid], 0
    while i < len(pids):
        for task in os.listdir("/proc/%d/task" % pids[i]):
            try:
                pids += [int(c) for c in open("/proc/%d/task/%s/children" % (pids[i], task)).read().split()]
            except OSError:
                pass
        i += 1
    return pids


def is_http_prog(name):
    return name.startswith("http_sys_") or name.startswith("tp_e")	# tp_enter_*, tp_exit_* (names cut at 15)


class Attached:
    """A tracer attached to pid for the duration of a with block."""

    def __init__(self, config, pid, tmp):
        self.config, self.pid, self.tmp, self.p = config, pid, tmp, None
        self.note = ""
        self.cost = None	# (BPF ns per request: HTTP programs, all programs; collector CPU us per request)

    def __enter__(self):
        if self.config == "pytrace-bpf-collector":
            # the host-wide collector with its defaults, scraped every second as Prometheus would
            self.err = os.path.join(self.tmp, "collector.stderr")
            self.p = subprocess.Popen([TOOL, "--prometheus", "127.0.0.1:0"], stdout=subprocess.DEVNULL,
                                      stderr=open(self.err, "w"), preexec_fn=TOOL_CG.enter)
            self.wait_for("Serving metrics")
            url = re.search(r"(http://\S+/metrics)", open(self.err).read()).group(1)
            self.stop_scrape = threading.Event()

            def scrape():
                while not self.stop_scrape.wait(1.0):
                    try:
                        urllib.request.urlopen(url, timeout=5).read()
                    except OSError:
                        pass
            self.scraper = threading.Thread(target=scrape, daemon=True)
            self.scraper.start()
        elif self.config.startswith("pytrace-bpf"):
            self.err = os.path.join(self.tmp, "tool.stderr")
            opts = (["--no-sql"] if self.config.startswith("pytrace-bpf-http") else
                    ["-F", "99"] + (["--sql-in-flame"] if SQL_IN_FLAME else []) +
                    ["--flame", os.path.join(self.tmp, "f.svg")])
            if self.config == "pytrace-bpf-no-http":
                opts.append("--no-http")
            if self.config == "pytrace-bpf-sql":
                opts = ["--no-http", "--no-samples"]
            if self.config == "pytrace-bpf-libpq":
                opts += ["--sql-source", "libpq"]
            self.p = subprocess.Popen([COMPARE if self.config == "pytrace-bpf-compare" else TOOL, "-p", str(self.pid)] + opts +
                                      ["--json", os.path.join(self.tmp, "r.json"),
                                       "--requests-log", os.path.join(self.tmp, "r.jsonl")],
                                      stdout=subprocess.DEVNULL, stderr=open(self.err, "w"), preexec_fn=TOOL_CG.enter,
                                      env=dict(os.environ, PYTRACE_HTTP_HOOK="raw" if self.config.endswith("-raw") else ""))
            self.wait_for("Tracing pid")
        elif self.config == "austin":
            self.err = os.path.join(self.tmp, "austin.stderr")
            self.p = subprocess.Popen(["austin", "-C", "-i", "10000", "-p", str(self.pid),
                                       "-o", os.path.join(self.tmp, "austin.out")],
                                      stdout=subprocess.DEVNULL, stderr=open(self.err, "w"), preexec_fn=TOOL_CG.enter)
        elif self.config == "bpftrace-traps":
            self.err = os.path.join(self.tmp, "bpftrace.out")
            lib = os.path.realpath(LIBPQ)
            self.p = subprocess.Popen(["bpftrace", "-e", "uprobe:%s:PQexec {} uretprobe:%s:PQexec {}" % (lib, lib)],
                                      stdout=open(self.err, "w"), stderr=subprocess.STDOUT, preexec_fn=TOOL_CG.enter)
            self.wait_for("Attaching")
        elif self.config == "bpftrace-sock-floor":
            self.err = os.path.join(self.tmp, "bpftrace.out")
            self.p = subprocess.Popen(["bpftrace", "-e", "tracepoint:sock:sock_send_length {} tracepoint:sock:sock_recv_length {}"],
                                      stdout=open(self.err, "w"), stderr=subprocess.STDOUT, preexec_fn=TOOL_CG.enter)
            self.wait_for("Attaching")
        elif self.config in SOCKFLOOR_MODES:
            self.err = os.path.join(self.tmp, "sockfloor.out")
            pids = family(self.pid) if self.config == "sock-floor-regs" else []
            self.npids = len(pids)
            self.p = subprocess.Popen([SOCKFLOOR, "--mode", SOCKFLOOR_MODES[self.config]] +
                                      [a for p in pids for a in ("-p", str(p))],
                                      stdout=open(self.err, "w"), stderr=subprocess.STDOUT, preexec_fn=TOOL_CG.enter)
            self.wait_for("ready")
        elif self.config in DELAY_MODES:
            with open(DELAY_FLAG, "r+b") as f:
                f.write(DELAY_MODES[self.config])
        elif self.config == "bpftrace-http-floor":
            self.err = os.path.join(self.tmp, "bpftrace.out")
            prog = " ".join("tracepoint:syscalls:sys_exit_%s {}" % n for n in HTTP_SYSCALLS)
            self.p = subprocess.Popen(["bpftrace", "-e", prog + " tracepoint:syscalls:sys_enter_close {}"],
                                      stdout=open(self.err, "w"), stderr=subprocess.STDOUT, preexec_fn=TOOL_CG.enter)
            self.wait_for("Attaching")
        time.sleep(1.0)
        return self

    def wait_for(self, marker, seconds=30):
        """Until the tracer's output (self.err) says marker; an error if it exits first."""
        deadline = time.monotonic() + seconds
        while marker not in open(self.err).read() and self.p.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        if self.p.poll() is not None:
            raise RuntimeError("%s failed: %s" % (self.config, open(self.err).read()))

    def window(self):
        """Snapshot the tool's BPF run time and CPU time: call at the start and at the end of
        the measured window. Returns (BPF stats, CPU seconds), or None when not pytrace-bpf."""
        if self.p and self.config.startswith("pytrace-bpf") and self.p.poll() is None:
            return bpf_prog_stats(tool_prog_ids(self.p.pid)), cpu_seconds(self.p.pid)
        return None

    def account(self, start, end, nreq):
        """Cost per request over the measured window (steady state, start-up excluded)."""
        if not start or not end or not nreq:
            return
        (b0, c0), (b1, c1) = start, end
        d = {k: t - b0.get(k, (0, 0))[1] for k, (n, t) in b1.items()}
        # per program: runs and ns per request (stats on), for the round's line
        self.progs = sorted(((k, (n - b0.get(k, (0, 0))[0]) / nreq, d[k] / nreq) for k, (n, t) in b1.items()),
                            key=lambda x: -x[2])
        http_ns = sum(t for k, t in d.items() if is_http_prog(k))
        all_ns = sum(d.values())
        self.cost = (http_ns / nreq, all_ns / nreq, (c1 - c0) * 1e6 / nreq)

    def __exit__(self, *exc):
        if self.config in DELAY_MODES:
            with open(DELAY_FLAG, "r+b") as f:
                f.write(b"\0")
            self.note = "no tracer: the service's %s %s ns" % (DELAY_NOTES[self.config], os.environ.get("PT_DELAY_NS", "5000"))
            return
        if self.config == "pytrace-bpf-collector":
            self.stop_scrape.set()
            self.scraper.join()
            self.p.send_signal(signal.SIGTERM)
            self.p.wait(timeout=60)
            m = re.search(r"Collector: .*", open(self.err).read())
            self.note = m.group(0) if m else "no collector summary"
            return
        if self.p:
            alive = self.p.poll() is None
            # austin 1.0.1 may not stop on SIGINT while it cannot read the interpreter
            for sig, wait in ((signal.SIGINT, 60 if self.config.startswith("pytrace-bpf") else 5), (signal.SIGTERM, 5),
                              (signal.SIGKILL, 60)):
                self.p.send_signal(sig)
                try:
                    self.p.wait(timeout=wait)
                    break
                except subprocess.TimeoutExpired:
                    pass
            if self.config == "austin":
                out = os.path.join(self.tmp, "austin.out")
                n = sum(1 for _ in open(out)) if os.path.exists(out) else 0
                self.note = "%s, %d sample lines" % ("attached" if alive else "exited early: " +
                                                     open(self.err).read().strip()[-120:], n)
            elif self.config == "bpftrace-traps":
                self.note = "empty uprobe + uretprobe on PQexec"
            elif self.config == "bpftrace-sock-floor":
                self.note = "empty programs on the sock_send_length and sock_recv_length tracepoints"
            elif self.config in SOCKFLOOR_MODES:
                # sockfloor says at exit how many runs went past the pid test (none but the service's)
                m = re.search(r"(\d+) runs past the pid test", open(self.err).read())
                runs = m.group(1) if m else "?"
                self.note = {"sock-floor-raw": "empty tp_btf programs on the sock_send_length and sock_recv_length tracepoints",
                             "sock-floor-miss": "tp_btf programs on them testing the pid's bit, set for none (%s runs past it)" % runs,
                             "sock-floor-regs": "tp_btf programs on them reading the registers and the socket cookie "
                                                "for the service's %d processes (%s runs)" % (self.npids, runs)}[self.config]
            elif self.config == "bpftrace-http-floor":
                self.note = "empty programs on the HTTP layer's %d syscall tracepoints" % (len(HTTP_SYSCALLS) + 1)
            elif self.config == "pytrace-bpf-no-http":
                m = re.search(r"SQL: (\d+) statements .*?; lost events (\d+)", open(self.err).read())
                self.note = "%s statements traced, %s events lost" % (m.groups() if m else ("?", "?"))
            else:
                m = re.search(r"HTTP: (\d+) requests (?:\([^)]*\))?; lost events (\d+)", open(self.err).read())
                self.note = "%s requests traced, %s events lost" % (m.groups() if m else ("?", "?"))


def build_delay_shim(tmp):
    """bench/client_delay.c as a shared object, and its flag file (off)."""
    so = os.path.join(tmp, "client_delay.so")
    if not os.path.exists(so):
        subprocess.run(["cc", "-O2", "-shared", "-fPIC", "-o", so, os.path.join(HERE, "client_delay.c"), "-ldl"],
                       check=True)
        with open(DELAY_FLAG, "wb") as f:
            f.write(bytes(4096))
        os.chmod(DELAY_FLAG, 0o644)
    return so


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--service", default="demo", choices=["demo", "uvicorn-fastapi", "uvicorn-uvloop-fastapi",
                                                          "uvicorn-fastapi-def", "uvicorn-fastapi-mw",
                                                          "gunicorn-gevent", "demo-uwsgi-nginx", "tornado"])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--perf-record", metavar="DIR",
                    help="also `perf record -a -g` each measured window into DIR/ENDPOINT-CONFIG-ROUND.data")
    ap.add_argument("--endpoints", help="comma-separated subset of the service's endpoints (the demo's: %s; "
                    "the others': %s)" % (",".join(e for e, _ in ENDPOINTS + MORE_ENDPOINTS),
                                          ",".join(e for e, _ in ASYNC_ENDPOINTS)))
    ap.add_argument("--no-bpf-stats", dest="bpf_stats", action="store_false",
                    help="leave BPF run-time stats off (they add two clock reads to every program run): "
                         "what users get, without the BPF time column")
    ap.add_argument("--seconds", type=int, default=5)
    ap.add_argument("--connections", type=int, default=2)
    ap.add_argument("--warmup", type=int, default=3, help="seconds of unmeasured load before each window")
    ap.add_argument("--configs", default=",".join(CONFIGS),
                    help="comma-separated, untraced first (%s)" % ", ".join(CONFIGS + EXTRA_CONFIGS))
    ap.add_argument("--compare", metavar="PATH", help="another build of the tool: configuration pytrace-bpf-compare")
    ap.add_argument("--no-sql-in-flame", dest="sql_in_flame", action="store_false",
                    help="the pytrace-bpf configurations without --sql-in-flame (its [sql] leaves need each "
                         "statement's whole stack: without it, a statement's walk on an event loop stops at "
                         "the route frame; README, \"The running task, read directly\")")
    a = ap.parse_args()
    if a.perf_record:
        # made here, not found missing by perf after the run (perf's errors go to /dev/null)
        os.makedirs(a.perf_record, exist_ok=True)
    configs = a.configs.split(",")
    global SQL_IN_FLAME
    SQL_IN_FLAME = a.sql_in_flame
    if a.compare:
        global COMPARE
        COMPARE = os.path.abspath(a.compare)
        if "pytrace-bpf-compare" not in configs:
            configs.append("pytrace-bpf-compare")
    elif "pytrace-bpf-compare" in configs:
        sys.exit("--configs: pytrace-bpf-compare needs --compare PATH")
    if configs[0] != "untraced" or set(configs) - set(CONFIGS + EXTRA_CONFIGS):
        sys.exit("--configs: untraced first, then any of " + ", ".join(CONFIGS[1:] + EXTRA_CONFIGS))
    if a.endpoints:
        known = [e for e, _ in (ENDPOINTS + MORE_ENDPOINTS if a.service in ("demo", "demo-uwsgi-nginx")
                                else ASYNC_ENDPOINTS)]
        unknown = [e for e in a.endpoints.split(",") if e not in known]
        if unknown:
            sys.exit("--endpoints: %s not one of %s's: %s" % (", ".join(unknown), a.service, ", ".join(known)))
    if a.service != "demo" and "sentry-sdk" in configs:
        sys.exit("--configs: sentry-sdk is the demo's own (--service demo)")
    if os.geteuid():
        sys.exit("run as root")
    for exe in (TOOL, GUNICORN, "/usr/bin/wrk") + ((COMPARE,) if COMPARE else ()) + (("/usr/bin/bpftrace",) if {"bpftrace-traps", "bpftrace-http-floor", "bpftrace-sock-floor"} & set(configs) else ()):
        if not os.path.exists(exe):
            sys.exit("missing " + exe)
    if set(SOCKFLOOR_MODES) & set(configs) and not os.path.exists(SOCKFLOOR):
        sys.exit("missing %s (make bench-tools)" % SOCKFLOOR)

    global SVC_CG, TOOL_CG
    SVC_CG, TOOL_CG = Cgroup("pytrace-bench-service"), Cgroup("pytrace-bench-tracer")
    if not SVC_CG.path or not TOOL_CG.path:
        sys.exit("cgroup v2 is needed for the CPU-per-request figures (mounted at /sys/fs/cgroup or .../unified)")
    tmp = tempfile.mkdtemp(prefix="pytrace-bench-req-")
    os.chmod(tmp, 0o755)
    pgdir, pgport = os.path.join(tmp, "pg"), free_port(54460, 54500)
    pgenv = dict(os.environ, PYTRACE_PG_PORT=str(pgport))
    procs = []
    try:
        subprocess.run([PG_CLUSTER, "start", pgdir], env=pgenv, check=True, capture_output=True, timeout=120,
                       preexec_fn=SVC_CG.enter)
        env = dict(os.environ, PGHOST=pgdir, PGPORT=str(pgport), PGDATABASE="pytrace", PGUSER="postgres")
        endpoints = [e for e in ENDPOINTS + MORE_ENDPOINTS
                     if (e in ENDPOINTS and not a.endpoints) or (a.endpoints and e[0] in a.endpoints.split(","))]
        demo = a.service in ("demo", "demo-uwsgi-nginx")
        if not demo:
            subprocess.run(["/usr/lib/postgresql/15/bin/psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-c", ASYNC_SCHEMA],
                           env=env, check=True, capture_output=True, cwd="/")
            port, g = start_async_service(a.service, env, tmp)
            procs.append(g)
            endpoints = [e for e in ASYNC_ENDPOINTS if not a.endpoints or e[0] in a.endpoints.split(",")]
        subprocess.run([PY, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=DEMO, env=env, check=True)
        subprocess.run([PY, "manage.py", "seed", "--recipes", "50"], cwd=DEMO, env=env, check=True,
                       stdout=subprocess.DEVNULL)
        ports = {} if demo else {"plain": (port, g.pid)}
        if a.service == "demo-uwsgi-nginx":
            port, g, n = start_uwsgi_nginx(env, tmp)
            procs += [n, g]
            ports["plain"] = (port, g.pid)
        for flavour in ("plain", "sentry") if a.service == "demo" else ():
            port = free_port(18300, 18400)
            e = dict(env, DEMO_PORT=str(port), DEMO_SENTRY="1" if flavour == "sentry" else "0")
            if any(c in DELAY_MODES for c in configs):
                e["LD_PRELOAD"] = build_delay_shim(tmp)
            g = subprocess.Popen([PY, GUNICORN, "-c", os.path.join(DEMO, "gunicorn.conf.py")], env=e,
                                 stdout=subprocess.DEVNULL, stderr=open(os.path.join(tmp, flavour + ".log"), "w"),
                                 preexec_fn=SVC_CG.enter)
            procs.append(g)
            if not wait_http("http://127.0.0.1:%d/health/" % port):
                raise RuntimeError("gunicorn (%s) did not start: %s" % (flavour, open(os.path.join(tmp, flavour + ".log")).read()[-800:]))
            ports[flavour] = (port, g.pid)
        time.sleep(1)

        rps = {(ep, c): [] for ep, _ in endpoints for c in configs}
        notes, costs = {}, {(ep, c): [] for ep, _ in endpoints for c in configs}
        cpu_req = {(ep, c): [] for ep, _ in endpoints for c in configs}	# (service, tracer) CPU us per request
        # Run-time stats cost every BPF program two clock reads a run, which users do not pay:
        # --no-bpf-stats times what users get (and reports no BPF time).
        stats_fd = enable_bpf_stats() if a.bpf_stats else -1
        for ep, _ in endpoints:
            for c in ports:  # warm up every worker
                wrk("http://127.0.0.1:%d%s" % (ports[c][0], ep), 2, a.connections)
            for r in range(a.rounds):
                order = configs[r % len(configs):] + configs[:r % len(configs)]
                for c in order:
                    port, pid = ports["sentry" if c == "sentry-sdk" else "plain"]
                    url = "http://127.0.0.1:%d%s" % (port, ep)
                    with Attached(c, pid, tmp) as att:
                        # Steady state: the same load first, unmeasured, in every configuration
                        # (pytrace-bpf moves each worker to its final libpq probes meanwhile).
                        if a.warmup:
                            wrk(url, a.warmup, a.connections)
                        w0 = att.window()
                        s0, t0 = SVC_CG.cpu_s(), TOOL_CG.cpu_s()
                        rec = None
                        if a.perf_record:
                            # where the CPU goes, kernel included: every configuration pays the same
                            rec = subprocess.Popen(["perf", "record", "-q", "-a", "-g", "-F", "999", "-o",
                                                    os.path.join(a.perf_record, "%s-%s-%d.data" % (
                                                        ep.strip("/").split("/")[0].split("?")[0], c, r + 1)),
                                                    "--", "sleep", str(a.seconds)],
                                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                        v = wrk(url, a.seconds, a.connections)
                        s1, t1 = SVC_CG.cpu_s(), TOOL_CG.cpu_s()
                        if rec:
                            rec.wait()
                        att.account(w0, att.window(), v * a.seconds)
                    if v > 0:
                        cpu_req[(ep, c)].append(((s1 - s0) * 1e6 / (v * a.seconds), (t1 - t0) * 1e6 / (v * a.seconds)))
                    rps[(ep, c)].append(v)
                    if att.note:
                        notes[(ep, c)] = att.note
                    if att.cost:
                        costs[(ep, c)].append(att.cost)
                    print("  %-14s round %d %-12s %8.1f req/s %s" % (ep, r + 1, c, v, att.note), flush=True)
                    if getattr(att, "progs", None):
                        print("    BPF per request: " + ", ".join("%s %.1f runs %.1f us" % (k, n, t / 1e3)
                                                              for k, n, t in att.progs if t > 0), flush=True)

        rows = []
        for ep, what in endpoints:
            base = rps[(ep, "untraced")]
            for c in configs:
                ratios = [v / b for v, b in zip(rps[(ep, c)], base)]
                rows.append((ep, what, c, statistics.median(rps[(ep, c)]), statistics.median(ratios),
                             min(ratios), max(ratios), notes.get((ep, c), "")))
        print()
        hdr = "| endpoint | configuration | median req/s | median ratio to untraced | min..max ratio | notes |"
        print(hdr)
        print("|---|---|---|---|---|---|")
        for ep, what, c, med, ratio, lo, hi, note in rows:
            print("| `%s` (%s) | %s | %.1f | %.1f%% | %.1f..%.1f%% | %s |" % (ep, what, c, med, 100 * ratio, 100 * lo,
                                                                      100 * hi, note))
        print()
        print("| endpoint | configuration | untraced CPU per request (CPUs / req/s) | BPF per request: HTTP programs | BPF per request: all programs | collector CPU per request | estimated cost |")
        print("|---|---|---|---|---|---|---|")
        for (ep, c), cl in costs.items():
            if not cl:
                continue
            h, al, cpu = (statistics.median(x) for x in zip(*cl))
            per_req_us = os.cpu_count() * 1e6 / statistics.median(rps[(ep, "untraced")])
            print("| `%s` | %s | %.0f us | %.2f us | %.2f us | %.1f us | %.2f%% |" % (ep, c, per_req_us, h / 1e3, al / 1e3,
                                                                               cpu, 100 * (al / 1e3 + cpu) / per_req_us))
        print()
        print("CPU per request of everything under test (cgroup v2 cpu.stat over the measured window, median over rounds):")
        print()
        print("| endpoint | configuration | service + PostgreSQL | tracer | total | added to untraced |")
        print("|---|---|---|---|---|---|")
        for ep, _ in endpoints:
            if not cpu_req[(ep, "untraced")]:
                continue
            base = statistics.median(s + t for s, t in cpu_req[(ep, "untraced")])
            for c in configs:
                cl = cpu_req[(ep, c)]
                if not cl:
                    continue
                s, t = statistics.median(x[0] for x in cl), statistics.median(x[1] for x in cl)
                tot = [x[0] + x[1] for x in cl]
                print("| `%s` | %s | %.0f us | %.1f us | %.0f us (%.0f-%.0f) | %+.1f us (%+.2f%%) |" % (
                    ep, c, s, t, statistics.median(tot), min(tot), max(tot), statistics.median(tot) - base,
                    100 * (statistics.median(tot) - base) / base))
        # Paired by round: each round ran every configuration back to back, so the host's slow drift
        # (other tenants' load) cancels in a difference taken within a round, not across rounds.
        print()
        print("The same CPU per request, paired by round (each configuration minus the same round's untraced run; "
              "and the tool minus the compared build):")
        print()
        print("| endpoint | pair | median difference per request | range | rounds lower |")
        print("|---|---|---|---|---|")
        for ep, _ in endpoints:
            tot = {c: [x[0] + x[1] for x in cpu_req[(ep, c)]] for c in configs}
            pairs = [(c, "untraced") for c in configs if c != "untraced"]
            if "pytrace-bpf" in configs and "pytrace-bpf-compare" in configs:
                pairs.append(("pytrace-bpf", "pytrace-bpf-compare"))
            for c, ref in pairs:
                d = [x - y for x, y in zip(tot[c], tot[ref])]
                if len(d) != len(tot[c]) or len(tot[c]) != len(tot[ref]) or not d:
                    continue  # a round without a figure: the pairs would not be a round's
                print("| `%s` | %s - %s | %+.0f us | %+.0f..%+.0f us | %d of %d |" % (
                    ep, c, ref, statistics.median(d), min(d), max(d), sum(1 for x in d if x < 0), len(d)))
        if stats_fd >= 0:
            os.close(stats_fd)
        print("\n%d rounds of %d s (after %d s of warm-up) per configuration and endpoint, wrk -t1 -c%d, "
              "%s, %d CPUs." % (a.rounds, a.seconds, a.warmup, a.connections,
                                {"demo": "the demo on 2 gunicorn sync workers",
                                 "uvicorn-fastapi": "web_async.py on uvicorn + FastAPI + asyncpg",
                                 "uvicorn-uvloop-fastapi": "web_async.py on uvicorn (uvloop) + FastAPI + asyncpg",
                                 "uvicorn-fastapi-def": "web_async.py on uvicorn + FastAPI def endpoints + psycopg2",
                                 "uvicorn-fastapi-mw": "web_async.py on uvicorn + FastAPI behind two "
                                                       "@app.middleware(\"http\") + asyncpg",
                                 "gunicorn-gevent": "web_async.py on gunicorn -k gevent + pg8000",
                                 "demo-uwsgi-nginx": "the demo on 2 uWSGI workers behind nginx's uwsgi_pass",
                                 "tornado": "web_async.py on Tornado's own server + asyncpg"}[a.service],
                                os.cpu_count()))
        if not a.sql_in_flame:
            print("pytrace-bpf's configurations without --sql-in-flame.")
    finally:
        for g in procs:
            g.send_signal(signal.SIGTERM)
        for g in procs:
            try:
                g.wait(timeout=15)
            except subprocess.TimeoutExpired:
                g.kill()
        subprocess.run([PG_CLUSTER, "stop", pgdir], env=pgenv, capture_output=True, timeout=120)
        shutil.rmtree(tmp, ignore_errors=True)
        for cg in (SVC_CG, TOOL_CG):
            if cg:
                cg.remove()


if __name__ == "__main__":
    main()
