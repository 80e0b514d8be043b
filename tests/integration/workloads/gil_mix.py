# --gil's workload: two threads hash 8 MB buffers in C with the GIL released (on a CPU without
# it), while the main thread spins in pure Python (holding it). Marked lines: "# @name".
import hashlib
import os
import threading

DATA = b"x" * (8 << 20)


def hasher():
    while True:
        hashlib.sha256(DATA).digest()  # @hash_call


def spin():
    x = 0
    while True:
        x += 1  # @spin_body


if __name__ == "__main__":
    for i in range(2):
        threading.Thread(target=hasher, name="hash%d" % i, daemon=True).start()
    print("ready", os.getpid(), flush=True)
    spin()
