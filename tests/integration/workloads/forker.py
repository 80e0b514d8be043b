# Forks children after the tracer has started: they must be traced too. PT_EARLY_CHILD=1: one
# more, forked before "ready" (found running by the tracer), working until the others end.
import os
import sys
import time


def child_work(seconds=None):
    end = time.time() + (seconds or float(os.environ.get("PT_CHILD_SECONDS", "3")))
    x = 0
    while time.time() < end:
        x += 1  # @child_body
    os._exit(0)


def parent_wait():
    time.sleep(float(os.environ.get("PT_FORK_DELAY", "1")))


if __name__ == "__main__":
    kids = []
    if os.environ.get("PT_EARLY_CHILD") == "1":
        pid = os.fork()
        if pid == 0:
            child_work(float(os.environ.get("PT_FORK_DELAY", "1")) + float(os.environ.get("PT_CHILD_SECONDS", "3")))
        kids.append(pid)
    print("ready", os.getpid(), flush=True)
    parent_wait()
    for _ in range(2):
        pid = os.fork()
        if pid == 0:
            child_work()
        kids.append(pid)
    for k in kids:
        os.waitpid(k, 0)
    time.sleep(0.5)
