#!/usr/bin/env bash
# Install the job queues that the zjobs benchmark compares against ("peers").
#
# They go into their own virtualenv (default .bench-venv/ at the repo root,
# override with ZJOBS_PEER_VENV) so that celery, rq, dramatiq, arq, majortomo,
# pgqueuer and procrastinate never end up in the environment zjobs itself is
# tested in. redis-server (for Celery, RQ, Dramatiq and arq) and PostgreSQL
# (initdb/pg_ctl, for PgQueuer and procrastinate) come from Debian's packages
# when they are missing. Every step tolerates failure with a message: the
# benchmark then reports the peers it cannot run as skipped.
set -u

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${ZJOBS_PEER_VENV:-$ROOT/.bench-venv}"
PYTHON="${PYTHON:-python3}"
# One venv holds them all, so they are resolved together: arq pins redis-py
# below 6 while the newest kombu (Celery's transport) wants 6.4 or later, and
# installed one by one the last install silently breaks an earlier one. With
# arq kept at 0.26+ (rather than an old arq without the pin) pip settles on a
# Celery/kombu 5.6 that accepts redis-py 5. pgqueuer drives PostgreSQL through
# asyncpg (an optional driver, so named here); procrastinate brings psycopg 3.
PEER_PACKAGES=(
    "celery[redis]"
    "rq"
    "dramatiq[redis]"
    "arq>=0.26"
    "majortomo"
    "six"  # majortomo imports it without declaring it
    "msgpack"
    "pyzmq"
    "pgqueuer"
    "asyncpg"
    "procrastinate"
)

status=0

# apt_install PACKAGE PEERS: Debian's PACKAGE, unless it is there already; PEERS names the
# peers that are skipped without it.
apt_install() {
    local package="$1" peers="$2"
    if ! command -v apt-get >/dev/null 2>&1; then
        echo "install_peers: $package missing and apt-get unavailable; the $peers peers will be skipped" >&2
        return 1
    fi
    local sudo=""
    if [ "$(id -u)" -ne 0 ]; then
        sudo="sudo"
    fi
    echo "install_peers: installing $package with apt-get"
    $sudo apt-get update -q || echo "install_peers: apt-get update failed" >&2
    if ! DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends \
            "$package"; then
        echo "install_peers: apt-get install $package failed; the $peers peers will be skipped" >&2
        return 1
    fi
    # Debian's package may start a system server on its usual port; the benchmark starts
    # private servers on free ports and never uses that one.
    return 0
}

install_redis() {
    if command -v redis-server >/dev/null 2>&1; then
        echo "install_peers: redis-server found at $(command -v redis-server)"
        return 0
    fi
    apt_install redis-server redis-based
}

install_postgres() {
    if ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null 2>&1; then
        echo "install_peers: PostgreSQL found ($(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | tail -1))"
        return 0
    fi
    apt_install postgresql PostgreSQL-based
}

install_venv() {
    if [ ! -x "$VENV/bin/python" ]; then
        echo "install_peers: creating virtualenv $VENV"
        if ! "$PYTHON" -m venv "$VENV"; then
            echo "install_peers: could not create $VENV" >&2
            return 1
        fi
    fi
    "$VENV/bin/python" -m pip install -q --upgrade pip >/dev/null 2>&1 || true
    if "$VENV/bin/python" -m pip install -q "${PEER_PACKAGES[@]}"; then
        echo "install_peers: installed ${PEER_PACKAGES[*]}"
        "$VENV/bin/python" -m pip check || echo "install_peers: pip check reports conflicts" >&2
        return 0
    fi
    echo "install_peers: installing all peers together failed; trying one at a time" >&2
    local failed=0
    # One package at a time so that one that fails does not take the others down.
    for pkg in "${PEER_PACKAGES[@]}"; do
        if "$VENV/bin/python" -m pip install -q "$pkg"; then
            echo "install_peers: installed $pkg"
        else
            echo "install_peers: pip install $pkg failed; that peer will be skipped" >&2
            failed=1
        fi
    done
    return $failed
}

install_redis || status=1
install_postgres || status=1
install_venv || status=1

echo "install_peers: peer python is $VENV/bin/python"
if [ "$status" -ne 0 ]; then
    echo "install_peers: finished with failures (see above)" >&2
fi
exit "$status"
