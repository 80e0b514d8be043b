"""--functions workload: known call counts and sleeps. Waits for PT_GO (a file) to exist,
runs the counted work once, then exits. Counts: work 3*N (N from caller_a, 2N from caller_b),
slow N, gen_items N times (each yielding 3 values: 4 resumes), fails N (raises, caught)."""
import os
import sys
import time

N = int(os.environ.get("PT_CALLS", "50"))
SLEEP = float(os.environ.get("PT_SLEEP_MS", "2")) / 1000


def work(n):
    time.sleep(SLEEP)
    return n


def slow():
    time.sleep(SLEEP * 5)


def gen_items():
    for i in range(3):
        time.sleep(SLEEP)
        yield i


def fails():
    time.sleep(SLEEP)
    raise ValueError("expected")


def caller_a():
    return work(1)


def caller_b():
    work(2)
    return work(3)


def main():
    print("ready", os.getpid(), flush=True)
    go = os.environ.get("PT_GO")
    while go and not os.path.exists(go):
        time.sleep(0.01)
    for _ in range(N):
        caller_a()
        caller_b()
        slow()
        sum(gen_items())
        try:
            fails()
        except ValueError:
            pass
    print("done", flush=True)


if __name__ == "__main__":
    main()
