#!/usr/bin/env bash
# Starts a throwaway PostgreSQL (Debian's package) on 127.0.0.1 for the
# durable outbox tests, as the unprivileged `postgres` user, and prints its
# connection string on stdout (everything else goes to stderr). Idempotent:
# a server already answering on the port is reused.
#   export TRIGGER_TEST_DATABASE_URL="$(bash .ci/postgres.sh)"
set -euo pipefail
PORT="${TRIGGER_TEST_PG_PORT:-55432}"
DATA="${TRIGGER_TEST_PG_DATA:-/tmp/fire-trigger-pg}"
URL="postgres://postgres@127.0.0.1:${PORT}/postgres"

bin_dir() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1; }
if [ -z "$(bin_dir)" ]; then
  echo "== installing postgresql (apt)" >&2
  apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
fi
BIN="$(bin_dir)"
as_postgres() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

if "$BIN/pg_isready" -q -h 127.0.0.1 -p "$PORT"; then
  echo "== PostgreSQL already running on 127.0.0.1:$PORT" >&2
  echo "$URL"
  exit 0
fi
if [ ! -f "$DATA/PG_VERSION" ]; then
  rm -rf "$DATA"
  mkdir -p "$DATA"
  [ "$(id -u)" = 0 ] && chown postgres:postgres "$DATA"
  as_postgres "$BIN/initdb" -D "$DATA" -U postgres --auth=trust \
    --encoding=UTF8 --locale=C.UTF-8 >&2
fi
echo "== starting PostgreSQL on 127.0.0.1:$PORT ($DATA)" >&2
if ! as_postgres "$BIN/pg_ctl" -D "$DATA" -l "$DATA/server.log" -w -t 60 start \
  -o "-c listen_addresses=127.0.0.1 -p $PORT -k /tmp -c max_connections=200" >&2; then
  echo "== PostgreSQL failed to start; the end of $DATA/server.log:" >&2
  tail -n 20 "$DATA/server.log" >&2 || true
  exit 1
fi
echo "$URL"
