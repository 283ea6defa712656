#!/usr/bin/env bash
# pg-test.sh - a private, throw-away PostgreSQL server for the tests, reachable
# only through a unix socket; ctest starts and stops it as the fixture "pg".
# Usage: scripts/pg-test.sh start|stop DIR
#   start  a fresh cluster (a server left running by an aborted run is stopped
#          first) in a short directory of its own under /tmp, whose path goes
#          to DIR/home; writes the libpq URI (superuser tg, database postgres)
#          to DIR/uri and prints it
#   stop   stops the server, keeps its log as DIR/log and removes the rest;
#          succeeds if none runs
# DIR may be where the server's user cannot go (a checkout in root's home):
# only this script reads and writes it.
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
  local home=
  [ -f "$dir/home" ] && home=$(cat "$dir/home")
  # Only ever touch a directory that mktemp below made.
  case "$home" in /tmp/tg-pg.*) ;; *) home= ;; esac
  # pg_ctl stop fails when no server runs, status does not.  A server that was
  # killed leaves its pid file behind and stop gives up on it: the data goes
  # all the same.
  if [ -n "$home" ] && [ -d "$home/data" ] &&
     as_user "$bin/pg_ctl" -D "$home/data" status >/dev/null 2>&1; then
    as_user "$bin/pg_ctl" -D "$home/data" -m fast -w stop >/dev/null 2>&1 ||
      as_user "$bin/pg_ctl" -D "$home/data" -m immediate -w stop >/dev/null 2>&1 ||
      echo "$0: the server in $home/data did not stop cleanly; removing it anyway" >&2
  fi
  if [ -n "$home" ]; then
    if [ -f "$home/log" ]; then cp "$home/log" "$dir/log"; fi
    rm -rf "$home"
  fi
  rm -f "$dir/home" "$dir/uri"
}

start() {
  stop
  rm -f "$dir/log"
  # The server's user may not reach DIR, and unix socket paths are limited to
  # about 107 bytes: data, log and socket live in a short directory of its own.
  local home
  home=$(mktemp -d /tmp/tg-pg.XXXXXX)
  echo "$home" > "$dir/home"
  [ -z "$user" ] || chown "$user:" "$home"
  as_user "$bin/initdb" -D "$home/data" -U tg -A trust -E UTF8 --locale=C --no-sync >/dev/null
  # Durability is of no use to a cluster thrown away after the run.
  as_user tee -a "$home/data/postgresql.conf" >/dev/null <<CONF
listen_addresses = ''
unix_socket_directories = '$home'
port = 5432
max_connections = 200
fsync = off
synchronous_commit = off
full_page_writes = off
CONF
  if ! as_user "$bin/pg_ctl" -D "$home/data" -l "$home/log" -w start >/dev/null; then
    echo "$0: the server did not start; its log says:" >&2
    tail -n 20 "$home/log" >&2 || true
    exit 1
  fi
  local uri="postgresql://tg@/postgres?host=$home"
  "$bin/psql" -X "$uri" -Atc 'select 1' >/dev/null
  echo "$uri" > "$dir/uri"
  echo "$uri"
}

"$cmd"
