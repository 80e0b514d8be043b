"""--functions fallback workload: a known split of wall time. Each step burns the CPU for
PT_BURN_MS, then blocks in time.sleep for PT_SLEEP_MS (off-CPU), for PT_SECONDS in all.
Imports a module after PT_GO so the import probes have something to time."""
import os
import time

SECONDS = float(os.environ.get("PT_SECONDS", "4"))
BURN = float(os.environ.get("PT_BURN_MS", "3")) / 1000
SLEEP = float(os.environ.get("PT_SLEEP_MS", "7")) / 1000


def burn(sec):
    t = time.perf_counter()
    while time.perf_counter() - t < sec:
        pass


def blocked(sec):
    time.sleep(sec)


def step():
    burn(BURN)
    blocked(SLEEP)


def main():
    print("ready", os.getpid(), flush=True)
    go = os.environ.get("PT_GO")
    while go and not os.path.exists(go):
        time.sleep(0.01)
    import json  # noqa: F401 - timed by the import probes
    import gc
    end = time.monotonic() + SECONDS
    while time.monotonic() < end:
        step()
        gc.collect(0)
    print("done", flush=True)


if __name__ == "__main__":
    main()
