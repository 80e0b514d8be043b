#!/usr/bin/env python3
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
"""CPU-bound pure-Python workload for bench/flame_overhead.py.

Prints "ready <pid>", (with --wait-go: waits for a line on stdin, sent once the tracer says
it is sampling), sleeps --settle seconds (time for a tracer to attach, or to settle), prints
"start <CLOCK_MONOTONIC>", then completes work units for --seconds of wall-clock time and
prints "result units=N elapsed=S cpu=S throughput=U/s" (cpu: the process's CPU time in the
window; on kernels without CONFIG_IRQ_TIME_ACCOUNTING, such as the benchmark VMs', it includes
the hard-interrupt time spent while it ran, hence the BPF sampler's time). With --hold it then waits for a line (or
EOF) on stdin before exiting, so that the caller can read the tracer's counters at the end
of the window while the tracer is still attached.

A work unit is a realistic mix rather than one tight loop: method and function calls, a
small class hierarchy, dict and list work, sorting with a key, string formatting and
joining, a JSON-like recursive tree walk and a recursive parser (stack depth up to ~25
Python frames), so the sampled stacks look like those of ordinary application code.
Each unit takes roughly 0.1 ms on CPython 3.11 (about 40,000 units in a 4 s window).
"""
import argparse
import sys
import time


class Item:
    __slots__ = ("name", "price", "qty", "tags")

    def __init__(self, name, price, qty, tags):
        self.name = name
        self.price = price
        self.qty = qty
        self.tags = tags

    def total(self):
        return self.price * self.qty


class DiscountedItem(Item):
    __slots__ = ("discount",)

    def __init__(self, name, price, qty, tags, discount):
        super().__init__(name, price, qty, tags)
        self.discount = discount

    def total(self):
        return super().total() * (1.0 - self.discount)


def make_items(seed, n=24):
    items = []
    x = seed
    for i in range(n):
        x = (x * 1103515245 + 12345) & 0x7FFFFFFF
        tags = ["t%d" % (x % 7), "t%d" % (x % 5)]
        if x % 3 == 0:
            items.append(DiscountedItem("item-%d" % i, (x % 1000) / 10.0, 1 + x % 9, tags, 0.15))
        else:
            items.append(Item("item-%d" % i, (x % 1000) / 10.0, 1 + x % 9, tags))
    return items


def summarize(items):
    by_tag = {}
    for it in items:
        for t in it.tags:
            bucket = by_tag.setdefault(t, [])
            bucket.append(it.total())
    return {t: (len(v), sum(v), max(v)) for t, v in by_tag.items()}


def render_report(summary):
    lines = []
    for tag in sorted(summary):
        n, tot, top = summary[tag]
        lines.append(f"{tag:>4} | {n:3d} | {tot:10.2f} | {top:8.2f}")
    return "\n".join(lines)


def build_tree(depth, width, seed):
    if depth == 0:
        return {"leaf": seed, "label": "n%d" % seed}
    return {"children": [build_tree(depth - 1, width, seed * width + k) for k in range(width)],
            "label": "d%d" % depth}


def walk_tree(node, acc):
    if "leaf" in node:
        acc.append(node["label"])
        return node["leaf"]
    return sum(walk_tree(child, acc) for child in node["children"])


def tokenize(expr):
    out, num = [], ""
    for ch in expr:
        if ch.isdigit():
            num += ch
            continue
        if num:
            out.append(int(num))
            num = ""
        if ch in "+*()":
            out.append(ch)
    if num:
        out.append(int(num))
    return out


def parse_expr(toks, pos):
    val, pos = parse_term(toks, pos)
    while pos < len(toks) and toks[pos] == "+":
        rhs, pos = parse_term(toks, pos + 1)
        val += rhs
    return val, pos


def parse_term(toks, pos):
    val, pos = parse_atom(toks, pos)
    while pos < len(toks) and toks[pos] == "*":
        rhs, pos = parse_atom(toks, pos + 1)
        val = (val * rhs) % 1000003
    return val, pos


def parse_atom(toks, pos):
    if toks[pos] == "(":
        val, pos = parse_expr(toks, pos + 1)
        return val, pos + 1  # skip ")"
    return toks[pos], pos + 1


def nested_expr(depth, seed):
    if depth == 0:
        return str(seed % 97)
    return "(%s*%d+%s)" % (nested_expr(depth - 1, seed + 1), seed % 13 + 1, nested_expr(depth // 2, seed + 7))


EXPR = nested_expr(6, 3)
TOKENS = tokenize(EXPR)


def work_unit(i):
    items = make_items(i)
    report = render_report(summarize(items))
    acc = []
    leaves = walk_tree(build_tree(4, 3, i % 11), acc)
    val, _ = parse_expr(TOKENS, 0)
    words = sorted(set(report.split()), key=lambda w: (len(w), w))
    return (len(report) + leaves + val + len(words) + len(",".join(acc))) & 0xFFFF


def gap_loop(seconds):
    """Spin on the clock and add up the gaps between reads: with nothing else running on this
    CPU, a gap of a few microseconds is an interrupt (a timer tick, or a sampler's) and its
    handling. Returns (loops, small gaps, their ns, big gaps, their ns); 'big' (>= 200 us) are
    preemptions by other tasks, kept apart."""
    ns = time.perf_counter_ns
    start = prev = ns()
    end = start + int(seconds * 1e9)
    loops = small = small_ns = big = big_ns = 0
    while prev < end:
        now = ns()
        d = now - prev
        if d > 1500:
            if d < 200000:
                small += 1
                small_ns += d
            else:
                big += 1
                big_ns += d
        prev = now
        loops += 1
    return loops, small, small_ns, big, big_ns


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=4.0, help="measured window (default 4)")
    ap.add_argument("--settle", type=float, default=0.5, help="pause after 'ready' (default 0.5)")
    ap.add_argument("--hold", action="store_true", help="after the result, wait for stdin to close")
    ap.add_argument("--gaps", action="store_true",
                    help="instead of work units, measure interruptions with a clock-reading loop")
    ap.add_argument("--wait-go", action="store_true", help="after 'ready', wait for a line on stdin before settling")
    args = ap.parse_args()

    check = work_unit(0)  # warm up, and build the module-level data before "ready"
    print("ready %d" % __import__("os").getpid(), flush=True)
    if args.wait_go:
        sys.stdin.readline()
    time.sleep(args.settle)
    clock = time.perf_counter
    t0, c0 = clock(), time.process_time()
    print("start %.6f" % time.monotonic(), flush=True)
    if args.gaps:
        loops, small, small_ns, big, big_ns = gap_loop(args.seconds)
        elapsed, cpu = clock() - t0, time.process_time() - c0
        print("result units=%d elapsed=%.6f cpu=%.6f throughput=%.3f gaps=%d gap_ns=%d big=%d big_ns=%d"
              % (loops, elapsed, cpu, loops / elapsed, small, small_ns, big, big_ns), flush=True)
        if args.hold:
            sys.stdin.read()
        return 0
    deadline = t0 + args.seconds
    units = 0
    now = t0
    while now < deadline:
        check ^= work_unit(units)
        units += 1
        now = clock()
    elapsed, cpu = now - t0, time.process_time() - c0
    print("result units=%d elapsed=%.6f cpu=%.6f throughput=%.3f check=%d" % (units, elapsed, cpu,
          units / elapsed, check), flush=True)
    if args.hold:
        sys.stdin.read()
    return 0


if __name__ == "__main__":
    sys.exit(main())
