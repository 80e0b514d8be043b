# A workload with a known stack shape, for every CPython 3.8-3.15.
# Main thread: outer -> middle -> leaf_hot (a hot loop).
# Thread "deep": recurse() DEPTH levels deep, then spin().
# Lines the test checks are marked with "# @name" comments.
import os
import sys
import threading

DEPTH = int(os.environ.get("PT_DEPTH", "100"))


def leaf_hot(n):
    total = 0
    for i in range(n):  # @leaf_for
        total += i * i  # @leaf_body
    return total


def middle(n):
    return leaf_hot(n)  # @middle_call


def outer():
    while True:
        middle(20000)  # @outer_call


def spin():
    x = 0
    while True:
        x += 1  # @spin_body


def recurse(d):
    if d > 0:
        return recurse(d - 1)  # @recurse_call
    return spin()  # @recurse_leaf


def deep_main():
    recurse(DEPTH)


if __name__ == "__main__":
    sys.setrecursionlimit(10000)
    t = threading.Thread(target=deep_main, name="deep", daemon=True)
    t.start()
    print("ready", os.getpid(), t.native_id if hasattr(t, "native_id") else 0, flush=True)
    outer()
