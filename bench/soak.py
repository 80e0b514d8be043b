#!/usr/bin/python3
"""Soak of the host collector (pytrace-bpf --prometheus): one command, --minutes N (default 60).

Starts a private PostgreSQL 15 cluster (tests/integration/harness.py's Cluster), the demo (Django
+ psycopg2 on gunicorn, 2 sync workers, --max-requests 50: workers are replaced all the time), a
steady paced load on /recipes/, /recipes/N/ and /cpu/, a process that starts short-lived Python
children continuously (fork+exec and plain fork), the collector host-wide on 127.0.0.1:PORT, and
a scrape of /metrics every second. The collector and the service each run in their own cgroup v2
(found from /proc/self/mountinfo: /sys/fs/cgroup, or /sys/fs/cgroup/unified on a hybrid host) and
their CPU comes from its cpu.stat; without cgroup v2, from /proc/PID/stat.

Every --every seconds (10) a row goes to soak.csv: collector RSS (VmRSS), open fds, CPU seconds,
the service's CPU, requests and errors of the load, statements (pg_stat_statements), children
started, scrapes ok/failed and the last scrape's time, and from the last scrape: the collector's
own process_* figures, pytrace_processes_followed, pytrace_events_lost_total by kind,
pytrace_label_values_dropped_total, pytrace_bpf_map_entries/max_entries by map; beside them,
`bpftool map show` of the collector's maps (count, max_entries, memlock) as a cross-check. A
metric the collector does not export (yet) is written and reported as "missing".

At the end: summary.txt and summary.json (collector CPU % of one core, CPU per request and per
statement in us, RSS at warm-up vs end and its growth, fds at warm-up vs end and against the
most seen until the warm-up (one per followed process's memory file: they move with the
workers), lost events,
dropped label values, map fill) and soak.svg (RSS and fds over time).

Usage: sudo bench/soak.py [--minutes 60] [--rate 40] [--children-per-s 2] [--out DIR]
       sudo bench/soak.py --minutes 1                      # smoke run
       sudo bench/soak.py --minutes 1 --no-collector       # everything but the collector
       sudo bench/soak.py --collector-cmd 'CMD ... {port}' # another collector command
PYTRACE_BPF names a private copy of the tool (a rebuild cannot change it mid-run).
"""
import argparse
import csv
import http.client
import json
import os
import re
import shlex
import signal
import subprocess
import sys
import threading
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import Cgroup  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(REPO, "tests", "integration"))
TOOL = os.environ.get("PYTRACE_BPF") or os.path.join(REPO, "build", "pytrace-bpf")
PY = "/usr/bin/python3"
GUNICORN = "/usr/bin/gunicorn"
DEMO = os.path.join(REPO, "demo")
PATHS = ["/recipes/", "/recipes/1/", "/cpu/?n=2000", "/recipes/2/", "/health/"]
MISSING = "missing"

# The child-starting process: every 1/rate s, alternately a fresh interpreter (fork+exec, what
# exec discovery must catch) and a plain fork of this one (same binary, new pid), each doing a
# little work and exiting; the count goes to argv[2] once a second.
CHURN = r"""
import os, subprocess, sys, time
rate, out = float(sys.argv[1]), sys.argv[2]
n, last, procs = 0, 0.0, []
def work():
    s = 0
    for i in range(20000): s += i * i
    time.sleep(0.2)
while True:
    if n % 2 == 0:
        procs.append(subprocess.Popen([sys.executable, "-c",
            "import time\ns = sum(i * i for i in range(20000))\ntime.sleep(0.2)"]))
    else:
        pid = os.fork()
        if pid == 0:
            try: work()
            finally: os._exit(0)
        procs.append(pid)
    n += 1
    alive = []
    for p in procs:
        if isinstance(p, int):
            if os.waitpid(p, os.WNOHANG)[0] == 0: alive.append(p)
        elif p.poll() is None: alive.append(p)
    procs = alive
    if time.monotonic() - last >= 1:
        with open(out + ".tmp", "w") as f: f.write(str(n))
        os.replace(out + ".tmp", out)
        last = time.monotonic()
    time.sleep(1.0 / rate)
"""

COLUMNS = ["t_s", "collector_alive", "rss_kb", "fds", "cpu_s", "cpu_source", "service_cpu_s", "requests",
           "request_errors", "statements", "children", "scrapes_ok", "scrapes_failed", "scrape_ms",
           "m_resident_memory_bytes", "m_open_fds", "m_cpu_seconds_total", "m_processes_followed",
           "m_events_lost_total", "m_events_lost_by_kind", "m_label_values_dropped_total",
           "m_label_values_dropped_by_metric", "m_bpf_map_fill", "bpftool_maps", "bpftool_max_entries",
           "bpftool_memlock_bytes"]


def log(msg):
    print("soak: " + msg, file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------
# Prometheus text exposition (0.0.4; OpenMetrics lines parse the same): {name: [(labels, value)]}

_SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)')
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def parse_metrics(text):
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = _SAMPLE.match(line)
        if not m:
            continue
        labels = {k: bytes(v, "utf-8").decode("unicode_escape") for k, v in _LABEL.findall(m.group(3) or "")}
        try:
            value = float(m.group(4))
        except ValueError:
            continue
        out.setdefault(m.group(1), []).append((labels, value))
    return out


def metric_sum(metrics, name):
    """Sum of a metric's samples, or MISSING when it is not exported."""
    if metrics is None or name not in metrics:
        return MISSING
    return sum(v for _, v in metrics[name])


def metric_by(metrics, name, label):
    """'a=1;b=2' of a metric by one label, or MISSING."""
    if metrics is None or name not in metrics:
        return MISSING
    return ";".join("%s=%g" % (lbl.get(label, "?"), v) for lbl, v in sorted(metrics[name], key=lambda s: s[0].get(label, "")))


def map_fill(metrics):
    if metrics is None or "pytrace_bpf_map_entries" not in metrics:
        return MISSING
    mx = {lbl.get("map"): v for lbl, v in metrics.get("pytrace_bpf_map_max_entries", [])}
    return ";".join("%s=%g/%s" % (lbl.get("map", "?"), v, ("%g" % mx[lbl.get("map")]) if lbl.get("map") in mx else "?")
                    for lbl, v in sorted(metrics["pytrace_bpf_map_entries"], key=lambda s: s[0].get("map", "")))


# ---------------------------------------------------------------------------------------------
# SVG: RSS and fds over time, two panels, no dependencies

def svg_plot(path, title, series, warmup_s=None):
    """series: [(label, unit, [(t_s, value)], colour)], one panel each, stacked."""
    W, PH, L, R, T, GAP = 760, 200, 70, 20, 40, 50
    H = T + len(series) * (PH + GAP)
    esc = lambda s: str(s).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    o = ['<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" '
         'font-family="sans-serif" font-size="12">' % (W, H, W, H),
         '<rect width="100%" height="100%" fill="white"/>',
         '<text x="%d" y="22" font-size="15">%s</text>' % (L, esc(title))]
    for i, (label, unit, pts, colour) in enumerate(series):
        y0 = T + i * (PH + GAP) + 10
        pts = [(t, v) for t, v in pts if isinstance(v, (int, float))]
        o.append('<text x="%d" y="%d" font-weight="bold">%s (%s)</text>' % (L, y0 - 2, esc(label), esc(unit)))
        o.append('<rect x="%d" y="%d" width="%d" height="%d" fill="none" stroke="#999"/>' % (L, y0 + 6, W - L - R, PH - 20))
        if not pts:
            o.append('<text x="%d" y="%d" fill="#a00">no data</text>' % (L + 10, y0 + PH // 2))
            continue
        tmax = max(t for t, _ in pts) or 1
        lo, hi = min(v for _, v in pts), max(v for _, v in pts)
        lo, hi = (0, hi * 1.1 or 1) if lo >= 0 and lo < hi * 0.5 else (lo - (hi - lo) * 0.1 - 1e-9, hi + (hi - lo) * 0.1 + 1e-9)
        if hi - lo < 1e-9:
            lo, hi = lo - 1, hi + 1
        x = lambda t: L + (W - L - R) * t / tmax
        y = lambda v: y0 + 6 + (PH - 20) * (1 - (v - lo) / (hi - lo))
        for k in range(5):
            v = lo + (hi - lo) * k / 4
            o.append('<line x1="%d" x2="%d" y1="%.1f" y2="%.1f" stroke="#eee"/>' % (L, W - R, y(v), y(v)))
            o.append('<text x="%d" y="%.1f" text-anchor="end">%s</text>' % (L - 4, y(v) + 4, "%.4g" % v))
        for k in range(6):
            t = tmax * k / 5
            o.append('<text x="%.1f" y="%d" text-anchor="middle">%s</text>' % (x(t), y0 + PH, "%.0f min" % (t / 60) if tmax >= 300 else "%.0f s" % t))
        if warmup_s:
            o.append('<line x1="%.1f" x2="%.1f" y1="%d" y2="%d" stroke="#888" stroke-dasharray="4 3"/>'
                     '<text x="%.1f" y="%d" fill="#666">warm-up</text>' % (x(warmup_s), x(warmup_s), y0 + 6, y0 + PH - 14,
                                                                          x(warmup_s) + 3, y0 + 20))
        o.append('<polyline fill="none" stroke="%s" stroke-width="1.5" points="%s"/>' %
                 (colour, " ".join("%.1f,%.1f" % (x(t), y(v)) for t, v in pts)))
    o.append("</svg>")
    with open(path, "w") as f:
        f.write("\n".join(o) + "\n")


# ---------------------------------------------------------------------------------------------
# cgroup v2 and /proc

def proc_rss_kb(pid):
    try:
        for line in open("/proc/%d/status" % pid):
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return None


def proc_fds(pid):
    try:
        return len(os.listdir("/proc/%d/fd" % pid))
    except OSError:
        return None


def proc_cpu_s(pid):
    try:
        f = open("/proc/%d/stat" % pid).read().rsplit(")", 1)[1].split()
        return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None


def bpftool_maps(pid):
    """(count, sum of max_entries of hash maps, memlock bytes) of the BPF maps pid holds, or MISSING."""
    ids = set()
    try:
        for fd in os.listdir("/proc/%d/fdinfo" % pid):
            try:
                m = re.search(r"^map_id:\s+(\d+)", open("/proc/%d/fdinfo/%s" % (pid, fd)).read(), re.M)
            except OSError:
                continue
            if m:
                ids.add(int(m.group(1)))
        out = subprocess.run(["bpftool", "-j", "map", "show"], capture_output=True, text=True, timeout=20)
        maps = [m for m in json.loads(out.stdout or "[]") if m.get("id") in ids]
    except (OSError, ValueError, subprocess.SubprocessError):
        return MISSING, MISSING, MISSING
    hashes = [m for m in maps if "hash" in m.get("type", "")]
    return (len(maps), ";".join("%s=%d" % (m.get("name", m["id"]), m.get("max_entries", 0)) for m in hashes) or "-",
            sum(int(m.get("bytes_memlock", 0)) for m in maps))


# ---------------------------------------------------------------------------------------------
# load and scrapes

class Load(threading.Thread):
    """Paced HTTP load: rate requests/s over keep-alive connections, paths in turn (0: flat out)."""

    def __init__(self, port, rate, conns=2):
        super().__init__(daemon=True)
        self.port, self.rate, self.conns = port, rate, conns
        self.requests = self.errors = 0
        self.stop = threading.Event()
        self.lock = threading.Lock()

    def run(self):
        workers = [threading.Thread(target=self.worker, args=(i,), daemon=True) for i in range(self.conns)]
        for w in workers:
            w.start()
        for w in workers:
            w.join()

    def worker(self, i):
        period = self.conns / self.rate if self.rate > 0 else 0
        nxt, k, conn = time.monotonic(), i, None
        while not self.stop.is_set():
            try:
                conn = conn or http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
                conn.request("GET", PATHS[k % len(PATHS)])
                r = conn.getresponse()
                r.read()
                ok = r.status == 200
                if r.getheader("connection", "").lower() == "close":
                    conn.close()
                    conn = None
            except (OSError, http.client.HTTPException):
                ok = False
                if conn:
                    conn.close()
                conn = None
            with self.lock:
                self.requests += ok
                self.errors += not ok
            k += self.conns
            if period:
                nxt += period
                delay = nxt - time.monotonic()
                if delay > 0:
                    self.stop.wait(delay)
                elif delay < -5 * period:
                    nxt = time.monotonic()  # fell behind (service slower than the rate): no burst


class Scraper(threading.Thread):
    def __init__(self, port, every=1.0):
        super().__init__(daemon=True)
        self.url = "http://127.0.0.1:%d/metrics" % port
        self.every, self.ok, self.failed = every, 0, 0
        self.last, self.last_ms, self.last_error = None, None, ""
        self.stop = threading.Event()

    def run(self):
        nxt = time.monotonic()
        while not self.stop.is_set():
            t0 = time.monotonic()
            try:
                req = urllib.request.Request(self.url, headers={"Accept": "text/plain;version=0.0.4"})
                text = urllib.request.urlopen(req, timeout=5).read().decode("utf-8", "replace")
                self.last, self.ok = parse_metrics(text), self.ok + 1
                self.last_ms = (time.monotonic() - t0) * 1e3
            except Exception as e:  # noqa: BLE001 - any failure of a scrape is counted, not fatal
                self.failed += 1
                self.last_error = str(e)[:200]
            nxt += self.every
            self.stop.wait(max(0, nxt - time.monotonic()))


def wait_http(url, seconds, proc=None):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            return False
        try:
            if urllib.request.urlopen(url, timeout=2).status == 200:
                return True
        except Exception:  # noqa: BLE001
            time.sleep(0.2)
    return False


def statements(cluster):
    try:
        out = cluster.psql("SELECT coalesce(sum(s.calls), 0) FROM pg_stat_statements s JOIN pg_database d "
                           "ON d.oid = s.dbid WHERE d.datname = 'pytrace' AND s.query NOT LIKE '%pg_stat_statements%'")
        return int(out.strip())
    except Exception:  # noqa: BLE001
        return None


# ---------------------------------------------------------------------------------------------

def num(v):
    return v if isinstance(v, (int, float)) else None


def summarize(rows, warmup_s, a, extra):
    s = dict(extra)
    s["duration_s"] = rows[-1]["t_s"] if rows else 0
    s["rows"] = len(rows)
    after = [r for r in rows if r["t_s"] >= warmup_s] or rows[-1:]
    if not after:
        return s
    w, e = after[0], rows[-1]
    dt = e["t_s"] - w["t_s"]
    dcpu = num(e["cpu_s"]) - num(w["cpu_s"]) if num(e["cpu_s"]) is not None and num(w["cpu_s"]) is not None else None
    dreq = e["requests"] - w["requests"]
    dst = (e["statements"] - w["statements"]) if num(e["statements"]) is not None and num(w["statements"]) is not None else None
    s["window_s"] = dt
    s["cpu_source"] = e["cpu_source"]
    s["collector_cpu_pct_of_one_core"] = 100 * dcpu / dt if dcpu is not None and dt > 0 else MISSING
    s["cpu_per_request_us"] = dcpu * 1e6 / dreq if dcpu is not None and dreq > 0 else MISSING
    s["cpu_per_statement_us"] = dcpu * 1e6 / dst if dcpu is not None and dst else MISSING
    s["requests"], s["request_errors"] = e["requests"], e["request_errors"]
    s["requests_per_s"] = dreq / dt if dt > 0 else MISSING
    s["statements"] = e["statements"]
    s["statements_per_s"] = dst / dt if dst is not None and dt > 0 else MISSING
    s["children_started"] = e["children"]
    s["rss_kb_warmup"], s["rss_kb_end"] = w["rss_kb"], e["rss_kb"]
    s["rss_kb_max_after_warmup"] = max((r["rss_kb"] for r in after if num(r["rss_kb"]) is not None), default=MISSING)
    s["rss_growth_pct"] = (100 * (e["rss_kb"] - w["rss_kb"]) / w["rss_kb"]
                           if num(w["rss_kb"]) and num(e["rss_kb"]) is not None else MISSING)
    s["fds_start"] = next((r["fds"] for r in rows if num(r["fds"]) is not None), MISSING)
    s["fds_warmup"], s["fds_end"] = w["fds"], e["fds"]
    s["events_lost_total"] = e["m_events_lost_total"]
    s["events_lost_by_kind"] = e["m_events_lost_by_kind"]
    s["label_values_dropped_total"] = e["m_label_values_dropped_total"]
    s["processes_followed_end"] = e["m_processes_followed"]
    s["bpf_map_fill_end"] = e["m_bpf_map_fill"]
    s["bpftool_hash_max_entries"] = e["bpftool_max_entries"]
    s["scrapes_ok"], s["scrapes_failed"] = e["scrapes_ok"], e["scrapes_failed"]
    goals = {}
    if num(s["collector_cpu_pct_of_one_core"]) is not None:
        goals["collector under 1% of one core"] = s["collector_cpu_pct_of_one_core"] < 1.0
    if num(s["rss_growth_pct"]) is not None:
        goals["RSS flat after warm-up (within 5%)"] = abs(s["rss_growth_pct"]) <= 5.0
    if num(s["fds_warmup"]) is not None and num(s["fds_end"]) is not None:
        # The collector keeps a file open on each followed process's memory (/proc/PID/mem,
        # src/procmem.c): its fds go up and down by one or two as workers come and go, whatever
        # the build (157-159 in every 6-minute soak). A leak goes past every earlier count.
        s["fds_max_warmup"] = max((r["fds"] for r in rows if r["t_s"] <= warmup_s and num(r["fds"]) is not None),
                                  default=s["fds_warmup"])
        goals["fds within the warm-up's range"] = s["fds_end"] <= s["fds_max_warmup"]
    if num(s["events_lost_total"]) is not None:
        goals["0 lost events"] = s["events_lost_total"] == 0
    s["goals"] = goals
    return s


def fmt(v, spec="%.2f"):
    return spec % v if isinstance(v, float) else str(v)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, default=60, help="soak duration (default 60)")
    ap.add_argument("--warmup-minutes", type=float, default=None,
                    help="RSS and fds reference point (default: 5, or a fifth of a shorter run)")
    ap.add_argument("--rate", type=float, default=40, help="requests/s of the paced load (0: flat out; default 40)")
    ap.add_argument("--connections", type=int, default=2)
    ap.add_argument("--children-per-s", type=float, default=2, help="short-lived Python children started per second")
    ap.add_argument("--max-requests", type=int, default=50, help="gunicorn --max-requests (worker churn)")
    ap.add_argument("--every", type=float, default=10, help="seconds between CSV rows (default 10)")
    ap.add_argument("--port", type=int, default=0, help="collector port (default: a free one)")
    ap.add_argument("--out", default=None, help="output folder (default /tmp/pytrace-soak-TIMESTAMP)")
    ap.add_argument("--no-collector", action="store_true", help="run everything but the collector")
    ap.add_argument("--collector-cmd", default=None,
                    help="collector command, {port} replaced (default: TOOL --prometheus 127.0.0.1:{port})")
    a = ap.parse_args()
    if not a.minutes > 0 or a.every <= 0 or a.rate < 0 or a.children_per_s <= 0 or a.connections < 1:
        ap.error("--minutes, --every, --children-per-s and --connections must be positive, --rate >= 0")
    warmup_s = 60 * (a.warmup_minutes if a.warmup_minutes is not None else min(5, a.minutes / 5))
    if os.geteuid():
        sys.exit("run as root (cgroups, BPF, PostgreSQL as user postgres)")
    for exe in [GUNICORN] + ([] if a.no_collector or a.collector_cmd else [TOOL]):
        if not os.access(exe, os.X_OK):
            sys.exit("missing " + exe + (" (make)" if exe == TOOL else ""))

    from harness import Cluster, free_port  # noqa: E402 (tests/integration)

    out = a.out or "/tmp/pytrace-soak-%s" % time.strftime("%Y%m%d-%H%M%S")
    os.makedirs(out, exist_ok=True)
    tag = "pytrace-soak-%d" % os.getpid()
    cg_coll, cg_svc = Cgroup(tag + "-collector"), Cgroup(tag + "-service")
    log("output in %s; cgroup v2: %s" % (out, cg_coll.path or "none (CPU from /proc/PID/stat)"))
    procs, threads = {}, []
    stopping = []
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(1))
    signal.signal(signal.SIGINT, lambda *_: stopping.append(1))
    cluster = Cluster(prefix="pytrace-soak-pg-", ports=(54560, 54620))
    rows, extra = [], {"minutes": a.minutes, "rate": a.rate, "children_per_s": a.children_per_s,
                       "max_requests": a.max_requests}
    rc = 0
    try:
        log("PostgreSQL cluster")
        cluster.start()
        env = dict(os.environ, **cluster.client_env())
        subprocess.run([PY, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=DEMO, env=env, check=True)
        subprocess.run([PY, "manage.py", "seed", "--recipes", "50"], cwd=DEMO, env=env, check=True,
                       stdout=subprocess.DEVNULL)
        cluster.pgss_reset()

        if not a.no_collector:
            port = a.port or free_port(19464, 19564)
            cmd = (shlex.split(a.collector_cmd.replace("{port}", str(port))) if a.collector_cmd else
                   [TOOL, "--prometheus", "127.0.0.1:%d" % port])
            log("collector: " + " ".join(cmd))
            procs["collector"] = subprocess.Popen(cmd, stdout=open(os.path.join(out, "collector.stdout"), "w"),
                                                  stderr=open(os.path.join(out, "collector.stderr"), "w"),
                                                  preexec_fn=cg_coll.enter, cwd=out)
            if not wait_http("http://127.0.0.1:%d/healthz" % port, 30, procs["collector"]):
                code = procs["collector"].poll()
                err = open(os.path.join(out, "collector.stderr")).read()[-800:]
                if code is not None:
                    raise RuntimeError("collector exited (%s) at start: %s" % (code, err))
                log("collector: /healthz not 200 after 30 s (kept running; metrics will read missing): " + err)
            extra["collector_cmd"] = " ".join(cmd)

        sport = free_port(18500, 18600)
        log("demo on gunicorn, --max-requests %d, port %d" % (a.max_requests, sport))
        procs["gunicorn"] = subprocess.Popen(
            [PY, GUNICORN, "-c", os.path.join(DEMO, "gunicorn.conf.py"), "--max-requests", str(a.max_requests),
             "--max-requests-jitter", str(max(1, a.max_requests // 5))],
            env=dict(env, DEMO_PORT=str(sport)), stdout=subprocess.DEVNULL,
            stderr=open(os.path.join(out, "gunicorn.log"), "w"), preexec_fn=cg_svc.enter)
        if not wait_http("http://127.0.0.1:%d/health/" % sport, 60, procs["gunicorn"]):
            raise RuntimeError("gunicorn did not start: " + open(os.path.join(out, "gunicorn.log")).read()[-800:])
        children_file = os.path.join(out, "children.count")
        procs["churn"] = subprocess.Popen([PY, "-c", CHURN, str(a.children_per_s), children_file],
                                          preexec_fn=cg_svc.enter)
        load = Load(sport, a.rate, a.connections)
        load.start()
        threads.append(load)
        scraper = None
        if "collector" in procs:
            scraper = Scraper(port)
            scraper.start()
            threads.append(scraper)

        coll = procs.get("collector")
        csv_path = os.path.join(out, "soak.csv")
        with open(csv_path, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=COLUMNS)
            w.writeheader()
            t0 = time.monotonic()
            end = t0 + a.minutes * 60
            nxt = t0
            while not stopping:
                now = time.monotonic()
                alive = coll is not None and coll.poll() is None
                m = scraper.last if scraper else None
                cpu = cg_coll.cpu_s() if (coll and cg_coll.path) else (proc_cpu_s(coll.pid) if alive else None)
                bm = bpftool_maps(coll.pid) if alive else (MISSING, MISSING, MISSING)
                try:
                    children = int(open(children_file).read())
                except (OSError, ValueError):
                    children = 0
                row = {
                    "t_s": round(now - t0, 1), "collector_alive": int(alive),
                    "rss_kb": proc_rss_kb(coll.pid) if alive else MISSING,
                    "fds": proc_fds(coll.pid) if alive else MISSING,
                    "cpu_s": cpu if cpu is not None else MISSING,
                    "cpu_source": "cgroup2 cpu.stat" if cg_coll.path else "/proc/PID/stat",
                    "service_cpu_s": cg_svc.cpu_s() if cg_svc.path else MISSING,
                    "requests": load.requests, "request_errors": load.errors,
                    "statements": statements(cluster), "children": children,
                    "scrapes_ok": scraper.ok if scraper else 0, "scrapes_failed": scraper.failed if scraper else 0,
                    "scrape_ms": round(scraper.last_ms, 1) if scraper and scraper.last_ms else MISSING,
                    "m_resident_memory_bytes": metric_sum(m, "process_resident_memory_bytes"),
                    "m_open_fds": metric_sum(m, "process_open_fds"),
                    "m_cpu_seconds_total": metric_sum(m, "process_cpu_seconds_total"),
                    "m_processes_followed": metric_sum(m, "pytrace_processes_followed"),
                    "m_events_lost_total": metric_sum(m, "pytrace_events_lost_total"),
                    "m_events_lost_by_kind": metric_by(m, "pytrace_events_lost_total", "kind"),
                    "m_label_values_dropped_total": metric_sum(m, "pytrace_label_values_dropped_total"),
                    "m_label_values_dropped_by_metric": metric_by(m, "pytrace_label_values_dropped_total", "metric"),
                    "m_bpf_map_fill": map_fill(m),
                    "bpftool_maps": bm[0], "bpftool_max_entries": bm[1], "bpftool_memlock_bytes": bm[2],
                }
                if row["statements"] is None:
                    row["statements"] = MISSING
                rows.append(row)
                w.writerow(row)
                f.flush()
                log("%5.0f s  rss %s kB  fds %s  cpu %s s  req %d (err %d)  stmts %s  children %d  scrapes %s/%s  "
                    "followed %s  lost %s" % (row["t_s"], row["rss_kb"], row["fds"], fmt(row["cpu_s"]), row["requests"],
                                              row["request_errors"], row["statements"], children, row["scrapes_ok"],
                                              row["scrapes_failed"], row["m_processes_followed"],
                                              row["m_events_lost_total"]))
                if coll is not None and not alive and "collector_exit" not in extra:
                    extra["collector_exit"] = coll.poll()
                    log("collector exited (%s): %s" % (coll.poll(), open(os.path.join(out, "collector.stderr")).read()[-400:]))
                if now >= end:
                    break
                nxt += a.every
                while not stopping and time.monotonic() < min(nxt, end + 0.01):
                    time.sleep(min(0.5, max(0.01, min(nxt, end) - time.monotonic())))
                if time.monotonic() >= end:
                    nxt = time.monotonic()  # last row at the end
        if scraper and scraper.last is None:
            extra["last_scrape_error"] = scraper.last_error
    except Exception as e:  # noqa: BLE001 - reported, then everything is stopped
        log("error: %s" % e)
        extra["error"] = str(e)
        rc = 1
    finally:
        for t in threads:
            t.stop.set()
        for name in ("churn", "gunicorn", "collector"):
            p = procs.get(name)
            if not p or p.poll() is not None:
                continue
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
            if name == "collector":
                extra["collector_exit"] = p.returncode
        cluster.stop()
        time.sleep(0.5)  # fork children of the churn process end within 0.2 s
        cg_coll.remove()
        cg_svc.remove()

    s = summarize(rows, warmup_s, a, extra)
    s["warmup_s"] = warmup_s
    lines = ["pytrace-bpf collector soak: %.1f min (%d rows), warm-up %.0f s, load %s req/s, %s children/s, "
             "gunicorn --max-requests %d" % (s["duration_s"] / 60, s["rows"], warmup_s, a.rate or "flat-out",
                                             a.children_per_s, a.max_requests)]
    for key, label, spec in [
            ("collector_cpu_pct_of_one_core", "collector CPU, % of one core", "%.3f"),
            ("cpu_source", "CPU from", None),
            ("cpu_per_request_us", "collector CPU per request, us", "%.1f"),
            ("cpu_per_statement_us", "collector CPU per statement, us", "%.2f"),
            ("requests", "requests served", None), ("request_errors", "request errors", None),
            ("requests_per_s", "requests/s after warm-up", "%.1f"),
            ("statements", "statements (pg_stat_statements)", None),
            ("statements_per_s", "statements/s after warm-up", "%.1f"),
            ("children_started", "short-lived children started", None),
            ("rss_kb_warmup", "RSS at warm-up, kB", None), ("rss_kb_end", "RSS at end, kB", None),
            ("rss_kb_max_after_warmup", "RSS max after warm-up, kB", None),
            ("rss_growth_pct", "RSS growth after warm-up, %", "%.2f"),
            ("fds_start", "fds at start", None), ("fds_warmup", "fds at warm-up", None), ("fds_end", "fds at end", None),
            ("fds_max_warmup", "fds at most, until warm-up", None),
            ("events_lost_total", "events lost", None), ("events_lost_by_kind", "events lost by kind", None),
            ("label_values_dropped_total", "label values dropped", None),
            ("processes_followed_end", "processes followed at end", None),
            ("bpf_map_fill_end", "BPF map fill at end (entries/max)", None),
            ("bpftool_hash_max_entries", "bpftool: hash maps' max_entries", None),
            ("scrapes_ok", "scrapes ok", None), ("scrapes_failed", "scrapes failed", None),
            ("collector_exit", "collector exit status", None), ("last_scrape_error", "last scrape error", None),
            ("error", "error", None)]:
        if key in s:
            lines.append("  %-38s %s" % (label, fmt(s[key], spec) if spec else s[key]))
    for g, ok in s.get("goals", {}).items():
        lines.append("  goal: %-32s %s" % (g, "met" if ok else "NOT met"))
    text = "\n".join(lines) + "\n"
    print(text, end="")
    with open(os.path.join(out, "summary.txt"), "w") as f:
        f.write(text)
    with open(os.path.join(out, "summary.json"), "w") as f:
        json.dump(s, f, indent=1, default=str)
    svg_plot(os.path.join(out, "soak.svg"), "pytrace-bpf collector soak: %.0f min, %s req/s, %s children/s, "
             "--max-requests %d" % (s["duration_s"] / 60, a.rate or "max", a.children_per_s, a.max_requests),
             [("collector resident memory", "MiB",
               [(r["t_s"], r["rss_kb"] / 1024) for r in rows if num(r["rss_kb"]) is not None], "#c0392b"),
              ("collector open file descriptors", "count",
               [(r["t_s"], r["fds"]) for r in rows if num(r["fds"]) is not None], "#2c6fbb")], warmup_s)
    log("wrote %s/soak.csv, summary.txt, summary.json, soak.svg" % out)
    if "collector" in procs and extra.get("collector_exit") not in (0, None):
        rc = 1
    return rc


if __name__ == "__main__":
    sys.exit(main())
