# --idle's workload: the main thread sleeps in one line; thread "comp" sleeps inside a list
# comprehension split across lines. Lines the test checks are marked with "# @name" comments.
import os
import threading
import time


def sleeper():
    while True:
        time.sleep(0.05)  # @sleep_line


def comprehension():
    while True:
        [  # @comp_open
            time.sleep(0.02)  # @comp_sleep
            for _ in range(5)  # @comp_for
        ]


if __name__ == "__main__":
    t = threading.Thread(target=comprehension, name="comp", daemon=True)
    t.start()
    print("ready", os.getpid(), t.native_id if hasattr(t, "native_id") else 0, flush=True)
    sleeper()
