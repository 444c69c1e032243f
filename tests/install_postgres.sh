#!/bin/sh
# Install Debian's PostgreSQL server for tests/postgres.py, unless one is already there.
#
# Only the binaries are wanted: the tests run their own throwaway server, so the package's
# default cluster ("main", which would start on port 5432) is not created.
set -eu

found() {
    for bin in /usr/lib/postgresql/*/bin/postgres; do
        [ -x "$bin" ] && [ -x "$(dirname "$bin")/initdb" ] && { echo "$(dirname "$bin")"; return 0; }
    done
    return 1
}

if dir=$(found); then
    echo "PostgreSQL server binaries present: $dir"
    exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
    echo "install_postgres.sh: no PostgreSQL server binaries, and installing them needs root" >&2
    exit 1
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "install_postgres.sh: no apt-get here; install PostgreSQL's server (postgres, initdb)" \
        "under /usr/lib/postgresql/<version>/bin by other means" >&2
    exit 1
fi

mkdir -p /etc/postgresql-common
if [ ! -e /etc/postgresql-common/createcluster.conf ]; then
    echo "create_main_cluster = false" > /etc/postgresql-common/createcluster.conf
fi
export DEBIAN_FRONTEND=noninteractive
if ! apt-get update -q || ! apt-get install -y -q --no-install-recommends \
        -o Dpkg::Options::=--force-confold postgresql; then
    echo "install_postgres.sh: apt-get could not install postgresql" >&2
    exit 1
fi
if dir=$(found); then
    echo "PostgreSQL server binaries installed: $dir"
else
    echo "install_postgres.sh: postgresql installed, but no server binaries found" >&2
    exit 1
fi
