#!/usr/bin/env bash
# pg-test.sh - a private, throw-away PostgreSQL server for the tests, reachable
# only through a unix socket; ctest starts and stops it as the fixture "pg".
# Usage: scripts/pg-test.sh start|stop DIR
#   start  a fresh cluster in DIR/data (a server left running there by an
#          aborted run is stopped first), log in DIR/log; writes the libpq URI
#          (superuser tg, database postgres) to DIR/uri and prints it
#   stop   stops the server and removes its data; succeeds if none runs
# Needs the Debian package postgresql.
set -euo pipefail

usage() { echo "usage: $0 start|stop DIR" >&2; exit 2; }
[ $# -eq 2 ] || usage
cmd=$1
case "$cmd" in start|stop) ;; *) usage ;; esac
mkdir -p "$2"
dir=$(cd "$2" && pwd)

# Debian installs each major version in its own directory, off PATH.
bin=$(printf '%s\n' /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
if [ ! -x "$bin/pg_ctl" ]; then
  if command -v pg_ctl >/dev/null 2>&1; then
    bin=$(dirname "$(command -v pg_ctl)")
  else
    echo "$0: no PostgreSQL server found (initdb, pg_ctl); install the Debian package postgresql" >&2
    exit 1
  fi
fi

# PostgreSQL refuses to run as root, so root hands the server to a system user.
user=
if [ "$(id -u)" -eq 0 ]; then
  user=postgres
  id -u "$user" >/dev/null 2>&1 || user=nobody
fi
# Run from / so that a working directory the server's user cannot enter
# (root's home, say) draws no warnings.
as_user() {
  if [ -n "$user" ]; then
    (cd / && runuser -u "$user" -- "$@")
  else
    "$@"
  fi
}

stop() {
  local sock=
  [ -f "$dir/sockdir" ] && sock=$(cat "$dir/sockdir")
  # pg_ctl stop fails when no server runs, status does not.  A server that was
  # killed leaves its pid file behind and stop gives up on it: the data goes
  # all the same.
  if [ -d "$dir/data" ] && as_user "$bin/pg_ctl" -D "$dir/data" status >/dev/null 2>&1; then
    as_user "$bin/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null 2>&1 ||
      as_user "$bin/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1 ||
      echo "$0: the server in $dir/data did not stop cleanly; removing it anyway" >&2
  fi
  # Only ever remove a directory that mktemp below made.
  case "$sock" in /tmp/tg-pg.*) rm -rf "$sock" ;; esac
  rm -rf "$dir/data" "$dir/sockdir" "$dir/uri"
}

start() {
  stop
  rm -f "$dir/log"
  if [ -n "$user" ]; then
    chown "$user:" "$dir"
    if ! as_user test -w "$dir"; then
      echo "$0: user $user cannot write to $dir (is a parent directory closed to it?)" >&2
      exit 1
    fi
  fi
  # Unix socket paths are limited to about 107 bytes and build directories can
  # be deep, so the socket lives in a short directory of its own.
  local sock
  sock=$(mktemp -d /tmp/tg-pg.XXXXXX)
  echo "$sock" > "$dir/sockdir"
  [ -z "$user" ] || chown "$user:" "$sock"
  as_user "$bin/initdb" -D "$dir/data" -U tg -A trust -E UTF8 --locale=C --no-sync >/dev/null
  # Durability is of no use to a cluster thrown away after the run.
  cat >> "$dir/data/postgresql.conf" <<EOF
listen_addresses = ''
unix_socket_directories = '$sock'
port = 5432
max_connections = 200
fsync = off
synchronous_commit = off
full_page_writes = off
EOF
  if ! as_user "$bin/pg_ctl" -D "$dir/data" -l "$dir/log" -w start >/dev/null; then
    echo "$0: the server did not start; $dir/log says:" >&2
    tail -n 20 "$dir/log" >&2 || true
    exit 1
  fi
  local uri="postgresql://tg@/postgres?host=$sock"
  "$bin/psql" -X "$uri" -Atc 'select 1' >/dev/null
  echo "$uri" > "$dir/uri"
  echo "$uri"
}

"$cmd"
