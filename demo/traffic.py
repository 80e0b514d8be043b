#!/usr/bin/python3
"""Drive the demo service with a fixed mix of its endpoints, loopback only, bounded in time
and in request count, then print a per-endpoint table (requests, errors, mean/p50/p95 ms).

Usage: traffic.py [--url http://127.0.0.1:8077] [--seconds 12] [--max-requests 20000]
                  [--concurrency 4] [--recipes 50]
       traffic.py --wait SECONDS [--url ...]   (exit 0 once /health/ answers)
"""
import argparse
import http.client
import sys
import threading
import time
import urllib.parse

# (endpoint label, weight): /recipes/<id>/ picks ids 1..--recipes in turn, /authors/<name>/ the
# authors "cook-1".."cook-10" (manage.py seed's).
MIX = [("/recipes/", 3), ("/recipes-fixed/", 2), ("/recipes/<id>/", 3), ("/authors/<name>/", 2), ("/cpu/", 2),
       ("/health/", 2)]


def wait_ready(host, port, seconds):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            c = http.client.HTTPConnection(host, port, timeout=2)
            c.request("GET", "/health/")
            if c.getresponse().status == 200:
                return True
        except OSError:
            pass
        time.sleep(0.2)
    return False


def worker(host, port, schedule, start, stop_at, budget, lock, stats):
    conn = None
    i = start
    failures = 0  # in a row: give up when the service is gone
    while time.monotonic() < stop_at and failures < 20:
        with lock:
            if budget[0] <= 0:
                return
            budget[0] -= 1
        label, path = schedule[i % len(schedule)]
        i += 1
        t0 = time.perf_counter()
        ok = False
        try:
            if conn is None:
                conn = http.client.HTTPConnection(host, port, timeout=10)
            conn.request("GET", path)
            resp = conn.getresponse()
            resp.read()
            ok = resp.status == 200
            if resp.getheader("Connection", "").lower() == "close":  # gunicorn sync workers
                conn.close()
                conn = None
        except (OSError, http.client.HTTPException):
            if conn is not None:
                conn.close()
            conn = None
        ms = (time.perf_counter() - t0) * 1000
        failures = 0 if ok else failures + 1
        with lock:
            s = stats.setdefault(label, {"n": 0, "err": 0, "ms": []})
            s["n"] += 1
            s["err"] += not ok
            s["ms"].append(ms)


def pct(sorted_ms, p):
    return sorted_ms[min(len(sorted_ms) - 1, int(p / 100 * len(sorted_ms)))]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--url", default="http://127.0.0.1:8077")
    ap.add_argument("--seconds", type=float, default=12)
    ap.add_argument("--max-requests", type=int, default=20000)
    ap.add_argument("--concurrency", type=int, default=4)
    ap.add_argument("--recipes", type=int, default=50)
    ap.add_argument("--wait", type=float, metavar="SECONDS")
    a = ap.parse_args()

    u = urllib.parse.urlsplit(a.url)
    host, port = u.hostname, u.port or 80
    if host not in ("127.0.0.1", "localhost", "::1"):
        sys.exit("traffic: loopback addresses only")
    if a.wait is not None:
        sys.exit(0 if wait_ready(host, port, a.wait) else 1)

    schedule = []
    for label, weight in MIX:
        for k in range(weight):
            n = len(schedule)
            schedule.append((label, label.replace("<id>", str(1 + (n * 7) % a.recipes))
                             .replace("<name>", "cook-%d" % (1 + n % 10))))
    # Interleave so that every worker sees the whole mix.
    schedule = schedule[::2] + schedule[1::2]

    lock = threading.Lock()
    stats = {}
    budget = [a.max_requests]
    stop_at = time.monotonic() + a.seconds
    threads = [threading.Thread(target=worker, args=(host, port, schedule, k * 3, stop_at, budget, lock, stats),
                                daemon=True)
               for k in range(a.concurrency)]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    try:
        for t in threads:
            t.join()
    except KeyboardInterrupt:
        sys.exit(130)
    took = time.monotonic() - t0

    total = sum(s["n"] for s in stats.values())
    errors = sum(s["err"] for s in stats.values())
    print(f"{total} requests in {took:.1f} s ({total / took:.0f}/s), {errors} errors")
    print(f"  {'endpoint':<16} {'requests':>8} {'errors':>6} {'mean ms':>8} {'p50 ms':>7} {'p95 ms':>7}")
    for label, _ in MIX:
        s = stats.get(label)
        if not s:
            continue
        ms = sorted(s["ms"])
        print(f"  {label:<16} {s['n']:>8} {s['err']:>6} {sum(ms) / len(ms):>8.1f} {pct(ms, 50):>7.1f} {pct(ms, 95):>7.1f}")
    sys.exit(1 if total == 0 or errors > total // 10 else 0)


if __name__ == "__main__":
    main()
