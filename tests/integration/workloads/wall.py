# --idle's workload: the main thread sleeps in one line; thread "comp" sleeps inside a list
# comprehension split across lines; thread "reader" blocks thousands of times a second reading a
# pipe that thread "writer" feeds after each of its shortest sleeps (above --idle-walks' rate). Lines the test checks are marked with "# @name" comments.
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


def reader(rfd):
    while True:
        os.read(rfd, 1)  # @pipe_read


def writer(wfd):
    while True:
        time.sleep(0.0001)  # @pipe_sleep
        os.write(wfd, b"x")


if __name__ == "__main__":
    t = threading.Thread(target=comprehension, name="comp", daemon=True)
    t.start()
    rfd, wfd = os.pipe()
    threading.Thread(target=reader, args=(rfd,), name="reader", daemon=True).start()
    threading.Thread(target=writer, args=(wfd,), name="writer", daemon=True).start()
    print("ready", os.getpid(), t.native_id if hasattr(t, "native_id") else 0, flush=True)
    sleeper()
