#!/usr/bin/env bash
# The collector's soak (issue 12's benchmark): bench/soak.py for 30 minutes (or $1), the collector
# host-wide with its defaults against the demo under steady load, gunicorn worker churn, forked
# short-lived Python children and a scrape every second. Its warm-up is the profile ring's
# window (600 s) plus a report window: memory is compared after it.
#   sudo bench/collector_soak.sh [MINUTES] [soak.py options...]
set -euo pipefail
cd "$(dirname "$0")/.."
minutes=${1:-30}
shift || true
exec bench/soak.py --minutes "$minutes" --warmup-minutes 12 "$@"
