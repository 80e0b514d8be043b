#!/usr/bin/python3
"""Integration tests of per-request timings and N+1 detection: real WSGI servers traced from
outside, a real PostgreSQL 15 cluster of our own (harness.Cluster).

Services:
  django-sync     demo/ (Django + psycopg2) on gunicorn, 2 sync workers (a connection per request)
  django-gthread  demo/ on gunicorn, 2 gthread workers x 4 threads (keep-alive)
  flask           workloads/web_flask.py: Flask + SQLAlchemy on werkzeug's threaded server (keep-alive)
  django-sync-raw-tracepoints  django-sync through the raw syscall tracepoints (the fallback
                  where tracefs cannot be had)
  asyncio         workloads/web_asyncio.py: one thread serving many requests at once; each statement
                  is attributed by the task that sent it (src/requests.h), never to another request
                  (more servers of this kind: test_async.py)
  runserver       demo/ on Django's runserver (threaded: one thread per connection)
  uwsgi           demo/ on uWSGI: CPython embedded (its python3 plugin), a master and 2 preforked
                  workers, HTTP parsed by each worker (--http-socket)
  uwsgi-nginx     the same behind nginx's uwsgi_pass, 4 threads a worker, 4 clients: uWSGI's binary protocol
  uwsgi-router    the same behind uWSGI's --http router, a process of the workers' family: each
                  request counted once, in the worker
  uwsgi-flask     Flask (an app factory's app in a wsgi file) on uWSGI: --lazy-apps, 2 threads a
                  worker, keep-alive (--http11-socket), 2 clients
  uwsgi-flask-mount  the same mounted at /shop (--mount, --manage-script-name): named after the prefix
  django-loop     a urlconf that includes itself (a stand-in any process could be): its table given
                  up within the tool's budget of reads, the requests named by their folded paths
  aiohttp-routes-INTERP  the reader of an aiohttp app's router (src/aioroutes.c) on every
                  interpreter, against a stand-in of aiohttp's objects (workloads/aiohttp_standin.py)
  starlette-routes-INTERP  the reader of a Starlette app's routes (src/starroutes.c) on every
                  interpreter, against a stand-in of Starlette's objects (workloads/starlette_standin.py)
  flask-factory-gunicorn  a Flask app made by a factory under gunicorn: its rules read through the worker
  flask-rules-INTERP  the reader of a Flask app's URL rules (src/flaskroutes.c) on every interpreter,
                  against a stand-in of Flask's and werkzeug's objects (workloads/flask_standin.py)
  django-patterns-INTERP  the reader of Django's URL patterns (src/djroutes.c) on every
                  interpreter 3.8-3.15, against a stand-in of Django's URL configuration
                  (workloads/django_standin.py), and on the demo's real one under Debian's Django

For each: a known mix of requests over keep-alive and fresh connections while the tool traces the
server's main pid; then per-route counts must equal what was sent, the N+1 view with K rows must
be flagged with K repeats at its call site, its fixed twin and the query-free views must not be,
and SQL time <= total time <= the client's own time, request by request (sorted per route).

Run as root from the repository: tests/integration/test_requests.py [-k SUBSTRING[,SUBSTRING...]] [-v]
(PYTRACE_BPF=/path/to/pytrace-bpf tests another build.) Ends with "N passed, N failed".
"""
import http.client
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import REPO, wait_http, WORKLOADS, Cluster, free_port, log, marker_lines, record  # noqa: E402,F401

DEMO = os.path.join(REPO, "demo")
PY = "/usr/bin/python3"
GUNICORN = "/usr/bin/gunicorn"
K = 12			# rows of the N+1 views
SLACK_MS = 0.002	# the tool prints 3 decimals


def drive(port, plan):
    """plan: [(path, expected status, n)]. Half of each on one keep-alive connection (reopened when
    the server closes it), half on a fresh connection each. Returns {path: [client ms, ...]}, errors."""
    times, errors = {}, []
    conn = None
    for path, want, n in plan:
        for i in range(n):
            fresh = i % 2 == 1
            t0 = time.perf_counter()
            try:
                c = http.client.HTTPConnection("127.0.0.1", port, timeout=10) if fresh or conn is None else conn
                c.request("GET", path)
                r = c.getresponse()
                r.read()
                ms = (time.perf_counter() - t0) * 1000
                if r.status != want:
                    errors.append("%s: %d, want %d" % (path, r.status, want))
                if fresh or r.getheader("Connection", "").lower() == "close" or r.will_close:
                    c.close()
                    if not fresh:
                        conn = None
                elif not fresh:
                    conn = c
            except (OSError, http.client.HTTPException) as e:
                errors.append("%s: %s" % (path, e))
                conn = None
                continue
            times.setdefault(path, []).append(ms)
    if conn:
        conn.close()
    return times, errors


def trace(pid, tmp, tag, hook=None):
    """Start the tool on pid; returns (Tracer, json path, log path, stderr path) once it is
    attached. hook="raw": the raw syscall tracepoints instead of the per-syscall ones."""
    js, rlog, err = (os.path.join(tmp, tag + ext) for ext in (".json", ".requests.jsonl", ".stderr"))
    env = dict(os.environ, PYTRACE_HTTP_HOOK=hook) if hook else None
    t = harness.Tracer(["-v", "-p", str(pid), "--json", js, "--requests-log", rlog], env=env)
    t.wait_tracing(30)
    time.sleep(0.3)
    return t, js, rlog, err


def stop_tool(t, err):
    """Interrupt the tool; returns (exit status, stderr), the stderr also kept in the file err."""
    rc, _, stderr = t.stop(60)
    with open(err, "w") as f:
        f.write(stderr)
    return rc, stderr


PREOPEN_PATH = "/health/"


def drive_many(port, plan, clients):
    """drive(port, plan) from that many client threads at once: their times and errors merged."""
    import threading
    if clients == 1:
        return drive(port, plan)
    out = [None] * clients
    threads = [threading.Thread(target=lambda i=i: out.__setitem__(i, drive(port, plan))) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    times, errors = {}, []
    for t, e in out:
        for path, ms in t.items():
            times.setdefault(path, []).extend(ms)
        errors += e
    return times, errors


def check_service(name, port, pid, tmp, plan, n1_route, n1_site, clean_routes, route_of, hook=None, django=None,
                  flask=None, preopen=0, clients=1, prefix=""):
    """django, flask: how many processes serve a Django or Flask app (its URL patterns or rules
    name the requests). preopen: that many requests on a keep-alive connection opened (and used
    once) before the tool started, which the tool must follow from then (src/httptrace.c).
    clients: the plan sent that many times at once, from as many client threads. prefix: where
    the app is mounted (its patterns match the path after it)."""
    pre = pre_port = None
    if preopen:
        pre = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
        pre.request("GET", PREOPEN_PATH)
        pre.getresponse().read()
        pre_port = pre.sock.getsockname()[1] if pre.sock else None
    p, js, rlog, err = trace(pid, tmp, name, hook)
    pre_errors, pre_ms = [], []
    for _ in range(preopen):
        try:
            t0 = time.perf_counter()
            pre.request("GET", PREOPEN_PATH)
            r = pre.getresponse()
            r.read()
            pre_ms.append((time.perf_counter() - t0) * 1000)
            if r.status != 200:
                pre_errors.append(r.status)
        except (OSError, http.client.HTTPException) as e:
            pre_errors.append(str(e))
            break
    if pre:
        same = pre.sock is not None and pre.sock.getsockname()[1] == pre_port
        pre.close()
        record(name + ": the server kept the connection opened before tracing for %d more requests" % preopen,
               same and not pre_errors, str(pre_errors))
    times, errors = drive_many(port, plan, clients)
    plan = [(path, st, n * clients) for path, st, n in plan]
    times.setdefault(PREOPEN_PATH, []).extend(pre_ms)
    errors += ["the connection from before tracing: %s" % e for e in pre_errors]
    if preopen:
        plan = plan + [(PREOPEN_PATH, 200, preopen)]
    time.sleep(0.3)
    rc, stderr = stop_tool(p, err)
    if not record(name + ": tool exits 0", rc == 0, stderr[-800:]):
        return
    want_hook = "raw syscall tracepoints" if hook == "raw" else "per-syscall tracepoints"
    record(name + ": requests from " + want_hook, "HTTP: requests from " + want_hook in stderr,
           "\n".join(l for l in stderr.splitlines() if l.startswith("HTTP")))
    record(name + ": client saw the expected statuses", not errors, "; ".join(errors[:5]))
    with open(js) as f:
        doc = json.load(f)
    record(name + ": the JSON names the source", doc["http"].get("source") == want_hook, str(doc["http"].get("source")))
    reqs = doc.get("requests", [])
    got = {}
    for r in reqs:
        got[(r["method"], r["route"], r["status"])] = got.get((r["method"], r["route"], r["status"]), 0) + r["count"]
    want = {}
    for path, status, n in plan:
        key = ("GET", route_of(path), status)
        want[key] = want.get(key, 0) + n
    record(name + ": per-route counts equal what was sent", got == want,
           "got %s, want %s" % (sorted(got.items()), sorted(want.items())))
    if django is not None or flask is not None:
        dj = doc["http"]["url_patterns"]
        patterns, nproc = (DJANGO_PATTERNS, django) if django is not None else (FLASK_RULES, flask)
        named = sum(n for path, _, n in plan if path.startswith(prefix) and
                    any(re.fullmatch(rx, path.split("?")[0][len(prefix):]) for rx, _ in patterns))
        record(name + ": %s's %s name %d requests, read in up to %d process(es), one table" %
               ((("Django", "URL patterns") if django is not None else ("Flask", "URL rules")) + (named, nproc)),
               doc["http"]["assembly"]["framework_routes"] == named and dj["requests_named"] == named
               and 1 <= dj["processes_read"] <= nproc and dj["tables"] == 1
               and dj["flask_processes_read"] == (dj["processes_read"] if flask else 0)
               and dj["endpoints"] == len(patterns) and not dj["endpoints_not_translatable"],
               json.dumps(dj) + " framework_routes=%d" % doc["http"]["assembly"]["framework_routes"])
    if preopen:
        record(name + ": a keep-alive connection accepted before tracing is followed (%d requests on it)" % preopen,
               doc["http"].get("connections_from_before_tracing", 0) >= 1, json.dumps(doc["http"])[:400])
    asm = doc["http"]["assembly"]
    unattr = {k: v for k, v in asm.items() if k.startswith("queries_unattributed") and v}
    record(name + ": no statement unattributed, no request multiplexed (%d attributed)" % asm["queries_attributed"],
           not unattr and not asm["requests_multiplexed"] and asm["queries_attributed"] > 0,
           json.dumps(asm))
    lost = doc["http"]["lost_events"] + doc["http"]["connections_not_followed"]
    record(name + ": no lost events or dropped connections", lost == 0, json.dumps(doc["http"]))
    n1 = doc.get("n_plus_one", [])
    hit = [f for f in n1 if f["route"] == n1_route]
    ok = len(hit) == 1 and hit[0]["per_request"] == K and re.search(n1_site, hit[0]["call_site"] or "")
    nsent = sum(n for path, _, n in plan if route_of(path) == n1_route)
    record(name + ": N+1 of %s flagged with %d repeats at %s" % (n1_route, K, n1_site.replace("\\", "")),
           bool(ok) and hit[0]["requests"] == nsent, json.dumps(n1))
    wrong = [f for f in n1 if f["route"] in clean_routes]
    record(name + ": fixed twin and query-free views not flagged", not wrong, json.dumps(wrong))
    # request by request: sql <= total, and total <= client (sorted per route)
    lines = [json.loads(l) for l in open(rlog)]
    bad = [l for l in lines if l["sql_ms"] > l["total_ms"] + SLACK_MS]
    record(name + ": SQL time <= total time, each request (%d)" % len(lines), not bad and lines, json.dumps(bad[:3]))
    by_route = {}
    for l in lines:
        by_route.setdefault(l["route"], []).append(l["total_ms"])
    over = []
    for path in times:
        pass
    client = {}
    for path, ms in times.items():
        client.setdefault(route_of(path), []).extend(ms)
    for route, ms in client.items():
        tool = sorted(by_route.get(route, []))
        ms = sorted(ms)
        if len(tool) != len(ms):
            over.append("%s: %d logged, %d sent" % (route, len(tool), len(ms)))
            continue
        over += ["%s: %.3f > %.3f ms" % (route, t, c) for t, c in zip(tool, ms) if t > c + SLACK_MS]
    record(name + ": total time <= client-measured time", not over, "; ".join(over[:5]))
    sqlreq = [l for l in lines if l["route"] == n1_route]
    record(name + ": N+1 requests carry K+1 queries or more", sqlreq and all(l["queries"] >= K + 1 for l in sqlreq),
           json.dumps([l["queries"] for l in sqlreq]))


def stop(p):
    """Stop server p: SIGTERM, then SIGKILL after 15 s."""
    p.send_signal(signal.SIGTERM)
    try:
        p.wait(timeout=15)
    except subprocess.TimeoutExpired:
        p.kill()

def folded_route(path):
    return re.sub(r"/\d+/", "/{id}/", path.split("?")[0])


# The demo's URL patterns (demo/recipesite/urls.py, demo/recipes/urls.py), named as the tool names
# them: Django's route, a re_path's text without anchors and with its groups as <name>.
DJANGO_PATTERNS = [(r"/", "/"), (r"/recipes/", "/recipes/"), (r"/recipes-fixed/", "/recipes-fixed/"),
                   (r"/recipes/\d+/", "/recipes/<int:pk>/"), (r"/authors/[-\w]+/", "/authors/<slug:name>/"),
                   (r"/api/v1/recipes/\d+/", "/api/v1/recipes/<pk>/"), (r"/cpu/", "/cpu/"), (r"/health/", "/health/")]


def django_route(path):
    p = path.split("?")[0]
    return next((name for rx, name in DJANGO_PATTERNS if re.fullmatch(rx, p)), folded_route(p))


# slugs (each its own path: folding would keep them apart), a re_path under an include(), and a
# path no pattern matches (Django's 404 before any view: the folded path names it)
DJANGO_PLAN = [("/recipes/", 200, 6), ("/recipes-fixed/", 200, 5), ("/recipes/3/", 200, 4), ("/recipes/7/", 200, 3),
               ("/health/", 200, 8), ("/cpu/?n=3000", 200, 3), ("/recipes/999/", 404, 2), ("/authors/cook-2/", 200, 2),
               ("/authors/cook-5/", 200, 2), ("/authors/nobody-here/", 200, 1), ("/api/v1/recipes/4/", 200, 2),
               ("/no-such-page/12/", 404, 2)]
DJANGO_CLEAN = {"/recipes-fixed/", "/health/", "/cpu/", "/recipes/<int:pk>/", "/authors/<slug:name>/",
                "/api/v1/recipes/<pk>/"}


FLASK_PLAN = [("/books/", 200, 6), ("/books-fixed/", 200, 5), ("/books/2/", 200, 4), ("/health/", 200, 7),
              ("/books/999/", 404, 2), ("/writers/writer-3/", 200, 2), ("/writers/nobody/", 200, 1),
              ("/no-such-page/7/", 404, 2)]
# web_flask.py's rules, named as the tool names them (werkzeug's rule text, src/flaskroutes.h)
FLASK_RULES = [(r"/books/", "/books/"), (r"/books-fixed/", "/books-fixed/"), (r"/books/\d+/", "/books/<int:pk>/"),
               (r"/writers/[^/]+/", "/writers/<name>/"), (r"/health/", "/health/"),
               (r"/static/.+", "/static/<path:filename>")]


def flask_route(path):
    p = path.split("?")[0]
    return next((name for rx, name in FLASK_RULES if re.fullmatch(rx, p)), folded_route(p))


def case_django(cluster, tmp, worker, hook=None):
    name = "django-" + worker + ("-raw-tracepoints" if hook == "raw" else "")
    env = dict(os.environ, **cluster.client_env())
    port = free_port(18100, 18200)
    env["DEMO_PORT"] = str(port)
    # gthread keeps connections alive (30 s here, 2 s by default): one opened before tracing is
    # followed from the tool's start (src/httptrace.c, httptrace_on_python)
    extra = ["--worker-class", "gthread", "--threads", "4", "--keep-alive", "30"] if worker == "gthread" else []
    g = subprocess.Popen([PY, GUNICORN, "-c", os.path.join(DEMO, "gunicorn.conf.py")] + extra, env=env,
                         stdout=subprocess.DEVNULL, stderr=open(os.path.join(tmp, name + ".gunicorn.log"), "w"))
    try:
        if not record(name + ": gunicorn answers", wait_http(port, "/health/")):
            return
        time.sleep(0.5)
        site = r"recipe_name \(.*demo/recipes/views\.py:%d\)" % 12
        check_service(name, port, g.pid, tmp, DJANGO_PLAN, "/recipes/", site, DJANGO_CLEAN, django_route, hook,
                      django=2, preopen=5 if worker == "gthread" else 0)
    finally:
        stop(g)


UWSGI = "/usr/bin/uwsgi"


def check_demo(name, answers, port, pid, tmp, procs, plan=DJANGO_PLAN, django=1, clients=1):
    """The demo served on port by a server whose traced pid is pid: check_service once it answers,
    then the processes procs stopped. True when checked."""
    try:
        if not record(name + ": " + answers, wait_http(port, "/health/")):
            return False
        site = r"recipe_name \(.*demo/recipes/views\.py:%d\)" % 12
        check_service(name, port, pid, tmp, plan, "/recipes/", site, DJANGO_CLEAN, django_route, django=django,
                      clients=clients)
        return True
    finally:
        for p in procs:
            stop(p)


# nginx sends QUERY_STRING first and REQUEST_URI, which holds the query again, fifth: long query
# strings put REQUEST_METHOD and REQUEST_URI well past any fixed capture (1,400 bytes twice: a
# 3.2 kB packet, under uWSGI's 4 kB buffer), so that the BPF side must walk the vars to find them
UWSGI_PAD = {"/cpu/": "&pad=" + "x" * 1400, "/recipes/3/": "?pad=" + "y" * 700, "/authors/cook-2/": "?q=" + "z" * 300}
UWSGI_PLAN = [(p + next((v for k, v in UWSGI_PAD.items() if p.split("?")[0] == k), ""), st, n)
              for p, st, n in DJANGO_PLAN]


def case_uwsgi(cluster, tmp, router=False):
    """demo/ on uWSGI (Debian's uwsgi-core and its python3 plugin: CPython embedded through
    libpython, loaded as a plugin after uWSGI's exec), a master and 2 preforked workers, each
    parsing HTTP on its own socket (--http-socket); router: behind uWSGI's own HTTP router
    (--http), a process of the workers' family that hands each request on in uWSGI's protocol:
    each request counted once, where it ran, long targets included (UWSGI_PLAN: the router's copy
    and the worker's are cut at different lengths)."""
    name = "uwsgi-router" if router else "uwsgi"
    env = dict(os.environ, **cluster.client_env())
    port = free_port(18500, 18600)
    serve = ["--plugin", "python3,http", "--http"] if router else ["--plugin", "python3", "--http-socket"]
    g = subprocess.Popen([UWSGI] + serve + ["127.0.0.1:%d" % port, "--chdir", DEMO,
                          "--module", "recipesite.wsgi:application", "--master", "--processes", "2",
                          "--die-on-term", "--need-app", "--disable-logging"], env=env,
                         stdout=subprocess.DEVNULL, stderr=open(os.path.join(tmp, name + ".log"), "w"))
    out = os.path.join(tmp, name + ".json")
    if check_demo(name, "uWSGI answers", port, g.pid, tmp, [g], plan=UWSGI_PLAN if router else DJANGO_PLAN,
                  django=3 if router else 2) and router and \
            record(name + ": the tool wrote its JSON", os.path.exists(out)):
        doc = json.load(open(out))
        sent = sum(n for _, _, n in UWSGI_PLAN)
        record(name + ": the router's copies are not counted", doc["http"]["assembly"]["relayed"] == sent,
               "relayed %d, sent %d" % (doc["http"]["assembly"]["relayed"], sent))


NGINX = "/usr/sbin/nginx"
def case_uwsgi_nginx(cluster, tmp):
    """demo/ on uWSGI behind nginx (uwsgi_pass, Debian's uwsgi_params): the workers read uWSGI's
    binary request packets (method, target and the rest as vars; nginx sends QUERY_STRING
    first), not HTTP, and write HTTP responses back to nginx. Each worker runs 4 threads
    (--threads 4: uWSGI's own pthreads, their Python thread states made by its plugin), and 4
    clients at once keep them busy together: each statement goes to its thread's request."""
    env = dict(os.environ, **cluster.client_env())
    port = free_port(18600, 18700)
    sock = os.path.join(tmp, "uwsgi.sock")
    conf = os.path.join(tmp, "nginx.conf")
    with open(conf, "w") as f:
        f.write("""daemon off; worker_processes 1; pid %(t)s/nginx.pid; error_log %(t)s/nginx.err;
events { worker_connections 64; }
http {
  access_log off;
  client_body_temp_path %(t)s; proxy_temp_path %(t)s; fastcgi_temp_path %(t)s; uwsgi_temp_path %(t)s;
  scgi_temp_path %(t)s;
  server {
    listen 127.0.0.1:%(p)d;
    location / { include /etc/nginx/uwsgi_params; uwsgi_pass unix:%(s)s; }
  }
}
""" % {"t": tmp, "p": port, "s": sock})
    g = subprocess.Popen([UWSGI, "--plugin", "python3", "--socket", sock, "--chmod-socket=666", "--chdir", DEMO,
                          "--module", "recipesite.wsgi:application", "--master", "--processes", "2", "--threads", "4",
                          "--die-on-term", "--need-app", "--disable-logging"], env=env,
                         stdout=subprocess.DEVNULL, stderr=open(os.path.join(tmp, "uwsgi-nginx.log"), "w"))
    n = subprocess.Popen([NGINX, "-c", conf, "-p", tmp], stdout=subprocess.DEVNULL,
                         stderr=open(os.path.join(tmp, "nginx.log"), "w"))
    check_demo("uwsgi-nginx", "nginx answers through uWSGI", port, g.pid, tmp, [n, g], plan=UWSGI_PLAN, django=2,
               clients=4)


def case_uwsgi_flask(cluster, tmp, mount=None):
    """Flask under uWSGI as it is usually deployed: a wsgi file that makes the app with the
    application factory (`app = create_app()`, a module global of uWSGI's own module for the
    file), --lazy-apps (each worker loads the app after the fork), 2 workers of 2 threads,
    HTTP/1.1 with keep-alive parsed by the workers (--http11-socket; --http-socket closes each
    connection after its response without saying so), 2 clients at once. (uWSGI 2.0.21's workers
    crash at SIGTERM with --lazy-apps and threads, traced or not: its log says so at the end.)
    mount: the app mounted there instead (--mount PREFIX=FILE --manage-script-name: uWSGI gives
    it the path after the prefix), its requests named by its rules after the prefix, which the
    tool reads from uWSGI's options (the uwsgi module's opt), and those no rule matches folded whole."""
    name = "uwsgi-flask" + ("-mount" if mount else "")
    env = dict(os.environ, **cluster.client_env())
    script = os.path.join(WORKLOADS, "web_flask.py")
    seeded = subprocess.run([PY, script, "seed", str(K)], env=env, capture_output=True, text=True, timeout=60)
    if not record(name + ": the books seeded", seeded.returncode == 0, seeded.stderr[-400:]):
        return
    wsgi = os.path.join(tmp, "flask_wsgi.py")
    with open(wsgi, "w") as f:
        f.write("from web_flask import create_app\napp = create_app()\n")
    port = free_port(18700, 18800)
    app = ["--mount", "%s=%s" % (mount, wsgi), "--manage-script-name"] if mount else ["--wsgi-file", wsgi]
    g = subprocess.Popen([UWSGI, "--plugin", "python3", "--http11-socket", "127.0.0.1:%d" % port, "--chdir", WORKLOADS]
                         + app + ["--callable", "app", "--lazy-apps", "--master", "--processes", "2",
                                  "--threads", "2", "--die-on-term", "--need-app", "--disable-logging"], env=env,
                         stdout=subprocess.DEVNULL, stderr=open(os.path.join(tmp, name + ".log"), "w"))
    prefix = mount or ""

    def route_of(path):
        # named by its rule without the prefix; a path no rule matches, folded whole
        route = flask_route(path[len(prefix):])
        return route if "{" not in route else folded_route(path)

    try:
        if not record(name + ": uWSGI answers", wait_http(port, prefix + "/health/")):
            return
        site = r"book_label \(.*web_flask\.py:%d\)" % marker_lines(script)["n1_site"]
        check_service(name, port, g.pid, tmp, [(prefix + p, st, n) for p, st, n in FLASK_PLAN], "/books/", site,
                      {"/books-fixed/", "/health/", "/books/<int:pk>/", "/writers/<name>/"}, route_of, flask=2,
                      clients=2, prefix=prefix)
    finally:
        stop(g)


def case_runserver(cluster, tmp):
    """Django's own development server, threaded (a thread per connection), without its reloader
    (which would run the server in a child process)."""
    env = dict(os.environ, **cluster.client_env())
    port = free_port(18400, 18500)
    g = subprocess.Popen([PY, "manage.py", "runserver", "--noreload", "127.0.0.1:%d" % port], cwd=DEMO, env=env,
                         stdout=subprocess.DEVNULL, stderr=open(os.path.join(tmp, "runserver.log"), "w"))
    check_demo("runserver", "Django's runserver answers", port, g.pid, tmp, [g])


# the stand-in's endpoints, in order: (name, regex or "-": not translatable), 150 "pageN/" after them
STANDIN_TABLE = [("/", "^()$"), ("/items/<int:pk>/", "^(items/([0-9]+)/)$"),
                 ("/tags/<slug:tag>/", "^(tags/([-a-zA-Z0-9_]+)/)$"),
                 ("/api/v1/items/<pk>/", "^(api/)(v1/items/([0-9]+)/)$"),
                 ("/api/v1/archive/<yyyy:year>/", "^(api/)(v1/archive/([0-9]{4})/)$"),
                 ("/shop/<str:category>/<int:id>/", "^(shop/)(([^/]+)/([0-9]+)/)$"),
                 ("/blob/<hex:h>/", "-"), ("/blobs/", "^(blobs/)$"), ("/feed(?=\\.xml)", "-"),
                 ("/feed.json", "^(feed\\.json)$"), ("/after/", "^(after/)$")] + \
                [("/page%d/" % i, "^(page%d/)$" % i) for i in range(150)] + \
                [("/[language]/about/", "^((fr|pt-br)/)(about/)$"),
                 ("/[language]/news/<slug:s>/", "^((fr|pt-br)/)(news/([-a-zA-Z0-9_]+)/)$"),
                 ("/about/", "^()(about/)$"), ("/news/<slug:s>/", "^()(news/([-a-zA-Z0-9_]+)/)$")]
STANDIN_NAMES = {"/items/12/": "/items/<int:pk>/", "/tags/quick-dinner/?x=1": "/tags/<slug:tag>/",
                 "/api/v1/items/3/": "/api/v1/items/<pk>/", "/api/v1/archive/2024/": "/api/v1/archive/<yyyy:year>/",
                 "/api/v1/archive/24/": "-", "/shop/books/9/": "/shop/<str:category>/<int:id>/",
                 "/blob/ff/": "-",        # may be the untranslatable pattern's: no name
                 "/blobs/": "/blobs/",
                 "/feed.json": "-",       # after "^feed(?=\.xml)", which may take it
                 "/after/": "/after/", "/page149/": "/page149/", "/nope/": "-",
                 # i18n_patterns: under a language's code, named with it, as Django's route; the
                 # default language's without one
                 "/fr/about/": "/fr/about/", "/pt-br/news/hello/": "/pt-br/news/<slug:s>/", "/about/": "/about/",
                 "/news/x/": "/news/<slug:s>/", "/de/about/": "-",
                 "/en/about/": "-"}     # the default language's code is no prefix there (Django: 404)


def read_patterns(pid, targets, extra=()):
    """build/tools/route_table on pid: (exit status, [(name, regex)], {target: name}, stderr)."""
    tool = os.path.join(os.path.dirname(harness.TOOL), "tools", "route_table")
    if not os.path.exists(tool):
        tool = os.path.join(REPO, "build", "tools", "route_table")
    out = subprocess.run([tool] + list(extra) + [str(pid)] + list(targets),
                         capture_output=True, text=True, timeout=60)
    rows = [l.split("\t") for l in out.stdout.splitlines()]
    n = next((i for i, r in enumerate(rows) if r[0] == "skipped"), len(rows))
    return out.returncode, [tuple(r) for r in rows[:n]], dict(tuple(r) for r in rows[n + 1:]), out.stderr


AIOHTTP_STANDIN_TABLE = [("/health/", "^(health/)$"), ("/n1/{rid}/ GET,HEAD", "^(n1/([^{}/]+)/)$"),
                         ("/n1/{x}/ POST", "^(n1/([^{}/]+)/)$"),
                         ("/files/{name}.{ext}", "^(files/([^{}/]+)\\.([^{}/]+))$"), ("/odd/{x}", "-"),
                         ("/static GET,HEAD", "^(static(/.*)?)$"), ("/api/ping", "^(api/ping)$"),
                         ("/api/items/{id}", "^(api/items/([0-9]+))$"), ("/api", "-"), ("/after/", "^(after/)$"),
                         ("/", "-"), ("/last/", "^(last/)$")]
AIOHTTP_STANDIN_NAMES = {"/health/": "/health/", "DELETE /health/": "/health/", "/n1/5/": "/n1/{rid}/",
                         "POST /n1/5/": "/n1/{x}/",   # passed over by the resource that does not allow it
                         "PUT /n1/5/": "-",           # allowed by none: a 405, no route
                         "POST /static/a.css": "-", "/empty/": "-", "/files/a.txt": "/files/{name}.{ext}",
                         "/odd/abc": "-",          # not translatable
                         "/static/css/x.css": "/static", "/static": "/static", "/api/ping": "/api/ping",
                         "/api/items/3": "/api/items/{id}",
                         "/api/other": "-",        # under the sub-app's prefix, matched by none of its own: 404
                         "/after/": "/after/",
                         "/last/": "-"}            # after a resource of a kind not understood
FLASK_STANDIN_TABLE = [("/static/<path:filename>", "^(static/([^/].*))$"), ("/", "^()$"),
                       ("/books/<int:pk>/", "^(books/([0-9]+)/)$"), ("/books/<int:pk>/edit", "^(books/([0-9]+)/edit)$"),
                       ("/u/<name>/", "^(u/([^/]{1,})/)$"), ("/u/me/", "^(u/me/)$"),
                       ("/c/<string(length=2):cc>/", "^(c/([^/]{2})/)$"), ("/f/<any(csv,json):fmt>", "^(f/((csv|json)))$"),
                       ("/l/<look:w>/", "-")]
FLASK_STANDIN_NAMES = {"/books/7/": "/books/<int:pk>/", "/books/7/edit": "/books/<int:pk>/edit", "/u/bob/": "/u/<name>/",
                       "/u/me/": "-",           # two rules match: werkzeug's preference is not modelled
                       "/c/fr/": "/c/<string(length=2):cc>/", "/c/fra/": "-", "/f/csv": "/f/<any(csv,json):fmt>",
                       "/f/xml": "-", "/l/abc/": "-", "/static/css/site.css": "/static/<path:filename>",
                       "/b/3/": "-",            # a build_only rule
                       "/": "/", "/x/": "-"}    # a library's Flask instance is not the app

STARLETTE_STANDIN_TABLE = [
    ("/", "^()$"), ("/items/{iid}/ GET,HEAD", "^(items/([0-9]+)/)$"), ("/items/{name}/ POST", "^(items/([^/]+)/)$"),
    ("/users/me", "^(users/me)$"), ("/users/{uid}", "^(users/([^/]+))$"),
    ("/api/fixed/{rid}/ GET,HEAD", "^(api/fixed/([0-9]+)/)$"), ("/api/files/{p}", "^(api/files/(.*))$"),
    ("/api/deep/x/{f}", "^(api/deep/x/([0-9]+(\\.[0-9]+)?))$"), ("/api/deep/", "-"), ("/api/", "-"),
    ("/v2/things/{tid} GET,HEAD", "^(v2/things/([^/]+))$"), ("/v2/things/ GET,HEAD,POST", "^(v2/things/)$"),
    ("/v2/", "-"), ("/static/", "-"),
    ("/u/{uid}/posts/{pid}", "^(u/([^/]+)/posts/([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}))$"),
    ("/u/", "-"), ("/look/{w}", "-"), ("/after/", "^(after/)$"), ("/", "-"), ("/last/", "^(last/)$")]
STARLETTE_STANDIN_NAMES = {
    "/": "/", "/items/3/": "/items/{iid}/", "POST /items/3/": "/items/{name}/",
    "PUT /items/3/": "-",              # 405 by /items/{iid}/ unless the Host after it matches: unknown
    "/users/me": "/users/me", "/users/bob": "/users/{uid}", "/ws": "-",
    "/api/fixed/2/": "/api/fixed/{rid}/",
    "POST /api/fixed/2/": "/api/fixed/{rid}/",   # the mounted router's 405: nothing after the Mount
    "/api/files/a/b.txt": "/api/files/{p}", "/api/deep/x/1.5": "/api/deep/x/{f}",
    "/api/nope": "-",                  # the mounted router's 404
    "/v2/things/4": "/v2/things/{tid}", "POST /v2/things/4": "/v2/things/{tid}", "POST /v2/things/": "/v2/things/",
    "/v2/x": "-", "/static/a.css": "-",  # a mounted app of another kind
    "/u/7/posts/0123abcd-0000-1111-2222-333344445555": "/u/{uid}/posts/{pid}", "/u/7/other": "-",
    "/look/abc": "-",                  # not translatable
    "/after/": "/after/", "/last/": "-", "/nope": "-"}  # after a Host


def case_standin(interp, kind, script, table, names, table_what, names_what):
    """The reader of kind's patterns (src/djroutes.c, src/flaskroutes.c) on interp, against the
    stand-in script: its table in order, and the names of paths."""
    name = kind + "-" + interp.label
    p = subprocess.Popen(interp.argv(interp.workload(script)), stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        ready = p.stdout.readline().split()
        if not record(name + ": the stand-in starts", ready[:1] == ["ready"]):
            return
        # aiohttp's: the app's request handler, which the walker gives with a response
        rc, got, got_names, err = read_patterns(p.pid, names, ["--aiohttp", ready[1]] if len(ready) > 1 else [])
        record(name + ": " + table_what, rc == 0 and got == table,
               err + "; ".join("%s != %s" % (x, y) for x, y in zip(got, table) if x != y)[:600] +
               " (%d rows)" % len(got))
        record(name + ": " + names_what, got_names == names,
               "; ".join("%s: %s, want %s" % (t, got_names.get(t), w) for t, w in names.items() if got_names.get(t) != w))
    finally:
        p.stdin.close()
        p.wait(timeout=30)


def case_django_loop(tmp):
    """A urlconf that includes itself (workloads/django_loop_standin.py; any process can make one):
    the tool gives its table up within its budget of reads (src/routeread.h), answers on, and
    names the requests by their folded paths."""
    name = "django-loop"
    port = free_port(18800, 18900)
    s = subprocess.Popen([PY, os.path.join(WORKLOADS, "django_loop_standin.py"), str(port)],
                         stdout=subprocess.DEVNULL, stderr=open(os.path.join(tmp, name + ".log"), "w"))
    try:
        if not record(name + ": the stand-in answers", wait_http(port, "/health/")):
            return
        t, js, rlog, err = trace(s.pid, tmp, name)
        plan = [("/a/1/", 200, 3), ("/a/2/", 200, 3)]
        t0 = time.monotonic()
        times, errors = drive(port, plan)
        took = time.monotonic() - t0
        time.sleep(0.3)
        rc, stderr = stop_tool(t, err)
        if not record(name + ": tool exits 0", rc == 0, stderr[-800:]):
            return
        doc = json.load(open(js))
        up = doc["http"]["url_patterns"]
        got = {(r["route"], r["status"]): r["count"] for r in doc["requests"]}
        record(name + ": the table given up as too long to read, once", up.get("tables_too_long") == 1 and
               up["processes_read"] == 0 and up["reads"] == 1, json.dumps(up))
        record(name + ": every request answered and counted by its folded path, in %.1f s" % took,
               not errors and got == {("/a/{id}/", 200): 6} and took < 10, "%s %s" % (errors, got))
    finally:
        stop(s)


def case_django_patterns_demo():
    """Django itself (Debian's), the demo's urlconf: settings and urlconf loaded by a first request."""
    name = "django-patterns-demo"
    code = ("import os, sys, django; os.environ['DJANGO_SETTINGS_MODULE'] = 'recipesite.settings'; django.setup();"
            "from django.urls import resolve; resolve('/health/'); print('ready', flush=True); sys.stdin.readline()")
    p = subprocess.Popen([PY, "-c", code], cwd=DEMO, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        if not record(name + ": Django starts", p.stdout.readline().strip() == "ready"):
            return
        targets = ["/recipes/3/", "/authors/cook-2/", "/api/v1/recipes/5/", "/no-such-page/12/", "/"]
        rc, table, names, err = read_patterns(p.pid, targets)
        want = [n for _, n in DJANGO_PATTERNS]
        record(name + ": the demo's %d URL patterns, read from Django %s" % (len(want), "3.2"),
               rc == 0 and [n for n, _ in table] == want and "-" not in [r for _, r in table], err + str(table))
        record(name + ": paths named as Django resolves them",
               names == {t: django_route(t) if django_route(t) != folded_route(t) or t == "/" else "-" for t in targets},
               str(names))
    finally:
        p.stdin.close()
        p.wait(timeout=30)


def case_flask(cluster, tmp):
    env = dict(os.environ, **cluster.client_env())
    port = free_port(18200, 18300)
    script = os.path.join(WORKLOADS, "web_flask.py")
    f = subprocess.Popen([PY, script, str(port), str(K)], env=env, stdout=subprocess.DEVNULL,
                         stderr=open(os.path.join(tmp, "flask.log"), "w"))
    try:
        if not record("flask: werkzeug answers", wait_http(port, "/health/")):
            return
        site = r"book_label \(.*web_flask\.py:%d\)" % marker_lines(script)["n1_site"]
        check_service("flask", port, f.pid, tmp, FLASK_PLAN, "/books/", site,
                      {"/books-fixed/", "/health/", "/books/<int:pk>/", "/writers/<name>/"}, flask_route, flask=1)
    finally:
        stop(f)


def case_flask_factory(cluster, tmp):
    """Flask's app made by an application factory under gunicorn (`gunicorn -w 2
    'web_flask:create_app()'`, sync workers), mounted at /shop (SCRIPT_NAME in gunicorn's
    environment: it gives the app the path after it): no module global holds the app, so the tool
    asks for gunicorn's worker frame (src/routes.h, ROUTE_APP_WSGI_WORKER), whose `wsgi` is the
    app, and reads the app's rules from there, matched after the prefix. A worker's first
    responses, before that, keep their folded paths: a warm-up of /health/ (the same either way)
    goes first; then every request is named by its rule, statements and N+1 as usual."""
    name = "flask-factory-gunicorn"
    env = dict(os.environ, **cluster.client_env(), SCRIPT_NAME="/shop")
    script = os.path.join(WORKLOADS, "web_flask.py")
    seeded = subprocess.run([PY, script, "seed", str(K)], env=env, capture_output=True, text=True, timeout=60)
    if not record(name + ": the books seeded", seeded.returncode == 0, seeded.stderr[-400:]):
        return
    port = free_port(18200, 18300)
    g = subprocess.Popen([PY, GUNICORN, "-w", "2", "-b", "127.0.0.1:%d" % port, "--chdir", WORKLOADS,
                          "web_flask:create_app()"], env=env, stdout=subprocess.DEVNULL,
                         stderr=open(os.path.join(tmp, name + ".log"), "w"))
    try:
        if not record(name + ": gunicorn answers", wait_http(port, "/shop/health/")):
            return
        t, js, rlog, err = trace(g.pid, tmp, name)
        # each worker's first response tells the tool that its Flask app is no module global;
        # the worker frame is looked for at the next tick (about a second), then given by the walker
        end = time.time() + 3
        while time.time() < end:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            c.request("GET", "/shop/health/")
            c.getresponse().read()
            c.close()
            time.sleep(0.05)
        plan = [("/shop/books/2/", 200, 6), ("/shop/writers/writer-3/", 200, 6), ("/shop/books/", 200, 4),
                ("/shop/books-fixed/", 200, 2), ("/shop/books/999/", 404, 2), ("/shop/no-such-page/7/", 404, 2)]
        times, errors = drive(port, plan)
        time.sleep(0.3)
        rc, stderr = stop_tool(t, err)
        if not record(name + ": tool exits 0", rc == 0, stderr[-800:]):
            return
        record(name + ": client saw the expected statuses", not errors, "; ".join(errors[:5]))
        with open(js) as f:
            doc = json.load(f)
        got = {}
        for r in doc.get("requests", []):
            if r["route"] not in ("/health/", "/shop/health/"):
                key = (r["route"], r["status"])
                got[key] = got.get(key, 0) + r["count"]
        want = {}
        for path, status, n in plan:
            # named by its rule without the prefix; a path no rule matches, folded whole
            route = flask_route(path[len("/shop"):])
            route = route if "{" not in route else folded_route(path)
            want[(route, status)] = want.get((route, status), 0) + n
        record(name + ": every request after the warm-up named by the app's rules, after SCRIPT_NAME",
               got == want, "got %s, want %s" % (sorted(got.items()), sorted(want.items())))
        up = doc["http"]["url_patterns"]
        record(name + ": the rules read through gunicorn's worker in 1-2 processes, one table",
               1 <= up["flask_processes_read"] == up["processes_read"] <= 2 and up["tables"] == 1 and
               up["endpoints"] == len(FLASK_RULES) and doc["processes"].get("route_frames", 0) >= 1, json.dumps(up))
        n1 = [f for f in doc.get("n_plus_one", []) if f["route"] == "/books/"]
        site = r"book_label \(.*web_flask\.py:%d\)" % marker_lines(script)["n1_site"]
        record(name + ": N+1 of /books/ flagged at book_label", len(n1) == 1 and n1[0]["per_request"] == K and
               re.search(site, n1[0]["call_site"] or "") is not None, json.dumps(doc.get("n_plus_one", [])))
    finally:
        stop(g)


def case_asyncio(cluster, tmp):
    import threading
    env = dict(os.environ, **cluster.client_env())
    port = free_port(18300, 18400)
    a = subprocess.Popen([PY, os.path.join(WORKLOADS, "web_asyncio.py"), str(port)], env=env,
                         stdout=subprocess.DEVNULL, stderr=open(os.path.join(tmp, "asyncio.log"), "w"))
    try:
        if not record("asyncio: server answers", wait_http(port, "/health/")):
            return
        p, js, rlog, err = trace(a.pid, tmp, "asyncio")
        plan = [("/slow/", 200, 5), ("/health/", 200, 2)]
        threads = [threading.Thread(target=drive, args=(port, plan)) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        rc, stderr = stop_tool(p, err)
        if not record("asyncio: tool exits 0", rc == 0, stderr[-800:]):
            return
        doc = json.load(open(js))
        got = {(r["route"], r["status"]): r["count"] for r in doc["requests"]}
        record("asyncio: per-route counts equal what was sent", got == {("/slow/", 200): 20, ("/health/", 200): 8},
               str(got))
        asm = doc["http"]["assembly"]
        unattr = {k: v for k, v in asm.items() if k.startswith("queries_unattributed")}
        record("asyncio: concurrent requests on one thread are attributed by task, none left unattributed",
               asm["requests_by_task"] > 0 and not any(unattr.values()), json.dumps(asm))
        lines = [json.loads(l) for l in open(rlog)]
        # each /slow/ sends 6 statements, and the first one also the BEGIN of psycopg2's transaction
        wrong = [l for l in lines if l["queries"] not in ((6, 7) if l["route"] == "/slow/" else (0,))]
        begins = [l for l in lines if l["queries"] == 7]
        record("asyncio: each request has its own statements and no other's", not wrong and len(begins) == 1,
               json.dumps((wrong or begins)[:3]))
        record("asyncio: the summary says how requests were attributed",
               re.search(r"by task: 28 requests, statements of an unknown task 0, ambiguous 0, claimed by no "
                         r"response 0", stderr), stderr[-600:])
    finally:
        stop(a)


def main():
    args, status = harness.start("run only services whose name contains this (a,b: either)")

    def want(name):  # -k a,b: either
        return any(k in name for k in args.k.split(","))

    if status is not None:
        return status
    missing = [m for m in ("django", "psycopg2", "flask", "sqlalchemy")
               if subprocess.run([PY, "-c", "import " + m], capture_output=True).returncode]
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # so that the cluster is stopped at exit
    cluster = Cluster(prefix="pytrace-req-", ports=(54400, 54460))
    tmp = tempfile.mkdtemp(prefix="pytrace-req-out-")
    try:
        cluster.start()
        env = dict(os.environ, **cluster.client_env())
        if not missing or not {"django", "psycopg2"} & set(missing):
            subprocess.run([PY, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=DEMO, env=env, check=True)
            subprocess.run([PY, "manage.py", "seed", "--recipes", str(K)], cwd=DEMO, env=env, check=True,
                           stdout=subprocess.DEVNULL)
        for worker, hook in (("sync", None), ("gthread", None), ("sync", "raw")):
            name = "django-" + worker + ("-raw-tracepoints" if hook else "")
            if not want(name):
                continue
            if {"django", "psycopg2"} & set(missing) or not os.path.exists(GUNICORN):
                record(name + ": python3-django, python3-psycopg2 and gunicorn are installed (scripts/install-deps.sh)", False)
            else:
                case_django(cluster, tmp, worker, hook)
        for interp in harness.find_interpreters():
            if want("django-patterns-" + interp.label):
                case_standin(interp, "django-patterns", "django_standin.py", STANDIN_TABLE, STANDIN_NAMES,
                             "%d endpoints read in Django's order, includes joined, 2 not translatable" %
                             len(STANDIN_TABLE), "paths named by the first pattern that surely matches")
            if want("aiohttp-routes-" + interp.label):
                case_standin(interp, "aiohttp-routes", "aiohttp_standin.py", AIOHTTP_STANDIN_TABLE,
                             AIOHTTP_STANDIN_NAMES, "the router's %d resources read, sub-app included, its source "
                             "pattern read from re.Pattern" % len(AIOHTTP_STANDIN_TABLE),
                             "paths named by the first resource that surely matches")
            if want("starlette-routes-" + interp.label):
                case_standin(interp, "starlette-routes", "starlette_standin.py", STARLETTE_STANDIN_TABLE,
                             STARLETTE_STANDIN_NAMES, "the app's %d routes read, Mounts joined, methods kept, the "
                             "app found among 2 (the one mounting the other)" % len(STARLETTE_STANDIN_TABLE),
                             "paths named as Starlette's Router picks, by method")
            if want("flask-rules-" + interp.label):
                case_standin(interp, "flask-rules", "flask_standin.py", FLASK_STANDIN_TABLE, FLASK_STANDIN_NAMES,
                             "the app's %d rules read, one not translatable, build_only left out" %
                             len(FLASK_STANDIN_TABLE), "paths named only where every rule matching them agrees")
        if want("django-loop"):
            case_django_loop(tmp)
        if want("django-patterns-demo"):
            if "django" in missing:
                record("django-patterns-demo: python3-django is installed (scripts/install-deps.sh)", False)
            else:
                case_django_patterns_demo()
        if want("runserver"):
            if {"django", "psycopg2"} & set(missing):
                record("runserver: python3-django and python3-psycopg2 are installed (scripts/install-deps.sh)", False)
            else:
                case_runserver(cluster, tmp)
        for name, run, needs in (("uwsgi", lambda: case_uwsgi(cluster, tmp), [UWSGI]),
                                 ("uwsgi-router", lambda: case_uwsgi(cluster, tmp, router=True), [UWSGI]),
                                 ("uwsgi-nginx", lambda: case_uwsgi_nginx(cluster, tmp), [UWSGI, NGINX])):
            if not want(name):
                continue
            if {"django", "psycopg2"} & set(missing) or not all(map(os.path.exists, needs)):
                record(name + ": python3-django, python3-psycopg2, uwsgi-core, uwsgi-plugin-python3%s are installed "
                       "(scripts/install-deps.sh)" % (" and nginx-light" if NGINX in needs else ""), False)
            else:
                run()
        if want("asyncio"):
            if "psycopg2" in missing:
                record("asyncio: python3-psycopg2 is installed (scripts/install-deps.sh)", False)
            else:
                case_asyncio(cluster, tmp)
        for name, run, needs, pkgs in (
                ("flask", lambda: case_flask(cluster, tmp), [], ""),
                ("flask-factory-gunicorn", lambda: case_flask_factory(cluster, tmp), [GUNICORN], " and gunicorn"),
                ("uwsgi-flask", lambda: case_uwsgi_flask(cluster, tmp), [UWSGI],
                 ", uwsgi-core and uwsgi-plugin-python3"),
                ("uwsgi-flask-mount", lambda: case_uwsgi_flask(cluster, tmp, "/shop"), [UWSGI],
                 ", uwsgi-core and uwsgi-plugin-python3")):
            if not want(name):
                continue
            if {"flask", "sqlalchemy", "psycopg2"} & set(missing) or not all(map(os.path.exists, needs)):
                record(name + ": python3-flask, python3-sqlalchemy, python3-psycopg2%s are installed "
                       "(scripts/install-deps.sh)" % pkgs, False)
            else:
                run()
    finally:
        cluster.stop()
        if args.verbose:
            log("outputs kept in " + tmp)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    return harness.summary()


if __name__ == "__main__":
    sys.exit(main())
