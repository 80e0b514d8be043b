#!/usr/bin/env bash
# Install everything pytrace-bpf needs to build, test and run its demo, with apt only.
# Idempotent: does nothing (and needs no network) when every package is already installed.
set -euo pipefail

pkgs=(
	# build
	make gcc clang llvm pkg-config bpftool libbpf-dev libelf-dev zlib1g-dev
	# tests
	libcmocka-dev debootstrap python3 austin valgrind systemtap-sdt-dev procps
	# make fuzz: libFuzzer and sanitizer runtimes of the clang above (Debian 12: clang 14);
	# curl: tests/fuzz/seeds/mkseeds.py
	libclang-rt-14-dev curl
	# SQL, requests and the demo
	postgresql postgresql-contrib libpq-dev libpg-query-dev
	python3-psycopg2 python3-psycopg python3-django gunicorn python3-flask python3-sqlalchemy
	# uWSGI, CPython embedded through its python3 plugin, and nginx in front of it with uwsgi_pass
	# (tests/integration/test_requests.py)
	uwsgi-core uwsgi-plugin-python3 nginx-light
	# drivers without libpq, read on the wire (tests/integration/test_wire.py); openssl for its TLS case
	python3-asyncpg python3-pg8000 openssl
	# asyncio, gevent and eventlet servers and drivers (tests/integration/test_async.py)
	python3-uvicorn python3-starlette python3-fastapi python3-aiohttp python3-hypercorn
	python3-gevent python3-eventlet python3-waitress python3-aiopg python3-uvloop python3-httptools
	python3-tornado
	# benchmarks and the exporter's tests
	wrk prometheus python3-sentry-sdk bpftrace
	# the exporter: HTTP server, pprof encoding, and go tool pprof to check its output
	libmicrohttpd-dev libprotobuf-c-dev protobuf-c-compiler golang-go
)

missing=()
for p in "${pkgs[@]}"; do
	[ "$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null)" = installed ] || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
	exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
	echo "install-deps: missing packages: ${missing[*]}; run as root (sudo $0)" >&2
	exit 1
fi
echo "install-deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# The prometheus and nginx packages start a service on install; keep them from starting on CI machines.
if [ ! -e /usr/sbin/policy-rc.d ]; then
	printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
	chmod +x /usr/sbin/policy-rc.d
	trap 'rm -f /usr/sbin/policy-rc.d' EXIT
fi
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
