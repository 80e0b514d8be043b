#!/bin/sh
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
# `make bench`: the flame-graph overhead benchmark. Options pass through (see --help).
exec /usr/bin/python3 "$(dirname "$0")/flame_overhead.py" "$@"
