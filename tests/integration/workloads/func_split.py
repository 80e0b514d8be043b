"""--functions fallback workload: a known split of wall time. Each step burns the CPU for about
PT_BURN_MS, then blocks in time.sleep for about PT_SLEEP_MS (off-CPU), for PT_SECONDS in all.
Imports a module after PT_GO so the import probes have something to time. Prints at the end the
split of step()'s wall time between burn and blocked as measured by the workload itself."""
import os
import random
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


spent = {"burn": 0, "blocked": 0}


def step():
    t0 = time.perf_counter_ns()
    # jitter (+-50%), so that the step period cannot alias with the sampling period
    burn(BURN * random.uniform(0.5, 1.5))
    t1 = time.perf_counter_ns()
    blocked(SLEEP * random.uniform(0.5, 1.5))
    spent["burn"] += t1 - t0
    spent["blocked"] += time.perf_counter_ns() - t1


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
    total = spent["burn"] + spent["blocked"]
    # the split as the workload itself measured it: on a busy machine it drifts from BURN:SLEEP
    print("done %.4f %.4f" % (spent["burn"] / total, spent["blocked"] / total), flush=True)


if __name__ == "__main__":
    main()
