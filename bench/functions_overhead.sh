#!/bin/sh
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
# The --functions overhead benchmark (see bench/functions_overhead.py). Options pass through.
exec /usr/bin/python3 "$(dirname "$0")/functions_overhead.py" "$@"
