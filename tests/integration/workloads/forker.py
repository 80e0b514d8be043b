# Forks children after the tracer has started: they must be traced too.
import os
import sys
import time


def child_work():
    end = time.time() + float(os.environ.get("PT_CHILD_SECONDS", "3"))
    x = 0
    while time.time() < end:
        x += 1  # @child_body
    os._exit(0)


def parent_wait():
    time.sleep(float(os.environ.get("PT_FORK_DELAY", "1")))


if __name__ == "__main__":
    print("ready", os.getpid(), flush=True)
    parent_wait()
    kids = []
    for _ in range(2):
        pid = os.fork()
        if pid == 0:
            child_work()
        kids.append(pid)
    for k in kids:
        os.waitpid(k, 0)
    time.sleep(0.5)
