#!/usr/bin/env bash
# Build (once) a Debian unstable root holding Debian's own python3.13, 3.14 and 3.15,
# so the integration tests can run workloads on them with chroot and trace them from the host.
# Usage: scripts/sid-root.sh [DIR]    (default: $PYTRACE_SID_ROOT or /var/cache/pytrace-bpf/sid-root)
# Prints the root's path on success. Idempotent: an existing, complete root is reused.
set -euo pipefail

dir=${1:-${PYTRACE_SID_ROOT:-/var/cache/pytrace-bpf/sid-root}}
stamp="$dir/.pytrace-complete"
pkgs=python3.13,python3.14,python3.15,libpython3.13-dev,libpython3.14-dev,libpython3.15-dev

if [ -f "$stamp" ]; then
    echo "$dir"
    exit 0
fi

# The mirror apt already uses on this machine (deb822 or one-line sources).
mirror=$(grep -hoE '^URIs: *\S+' /etc/apt/sources.list.d/*.sources 2>/dev/null |
         awk '{print $2}' | grep -v security | head -n1 || true)
if [ -z "$mirror" ]; then
    mirror=$(grep -hoE '^deb +\S+' /etc/apt/sources.list 2>/dev/null | awk '{print $2}' | head -n1 || true)
fi
mirror=${mirror:-http://deb.debian.org/debian}

command -v debootstrap >/dev/null || { echo "sid-root: debootstrap is not installed (scripts/install-deps.sh)" >&2; exit 1; }

rm -rf "$dir.tmp"
mkdir -p "$(dirname "$dir")"
echo "sid-root: debootstrap sid from $mirror into $dir (one time, about a minute)" >&2
if ! debootstrap --variant=minbase --include="$pkgs" sid "$dir.tmp" "$mirror" >"$dir.log" 2>&1; then
    echo "sid-root: debootstrap failed, last lines of $dir.log:" >&2
    tail -n 20 "$dir.log" >&2
    exit 1
fi
for v in 3.13 3.14 3.15; do
    [ -x "$dir.tmp/usr/bin/python$v" ] || { echo "sid-root: python$v missing from the root" >&2; exit 1; }
done
touch "$dir.tmp/.pytrace-complete"
rm -rf "$dir"
mv "$dir.tmp" "$dir"
echo "$dir"
