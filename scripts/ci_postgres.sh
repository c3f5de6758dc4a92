#!/usr/bin/env bash
# A throwaway PostgreSQL cluster for the serve tests: temp dir, 127.0.0.1 only, a free port, trust auth, no fsync.
#
#   eval "$(bash scripts/ci_postgres.sh)"        # prints `export TRIAGEKIT_TEST_PG_URL=...` (+ TRIAGEKIT_PG_DIR)
#   trap 'bash scripts/ci_postgres.sh stop' EXIT  # stops the cluster and deletes its directory
#
# Installs the Debian `postgresql` package when no initdb is found (needs root). Runs the server as the `postgres`
# user when started as root (PostgreSQL refuses to run as root), else as the current user. Logs go to stderr so that
# stdout carries only the export lines.
set -euo pipefail

if [ "${1:-start}" = "stop" ]; then
  dir="${2:-${TRIAGEKIT_PG_DIR:-}}"
  [ -n "$dir" ] && [ -d "$dir/data" ] || { echo "ci_postgres: nothing to stop" >&2; exit 0; }
  bin="$(cat "$dir/bin")"
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$bin/pg_ctl" -D "$dir/data" -m fast -w stop >&2 || true
  else "$bin/pg_ctl" -D "$dir/data" -m fast -w stop >&2 || true; fi
  rm -rf "$dir"
  exit 0
fi

find_bin() {
  local d
  d="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)"
  if [ -n "$d" ] && [ -x "$d/initdb" ]; then echo "$d"; return; fi
  if command -v initdb >/dev/null 2>&1; then dirname "$(readlink -f "$(command -v initdb)")"; fi
}

bin="$(find_bin)"
if [ -z "$bin" ]; then
  echo "ci_postgres: installing postgresql" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq postgresql >&2
  bin="$(find_bin)"
fi
[ -n "$bin" ] || { echo "ci_postgres: no initdb after installing postgresql" >&2; exit 1; }

port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
dir="$(mktemp -d /tmp/triagekit-pg.XXXXXX)"
echo "$bin" > "$dir/bin"
run=()
if [ "$(id -u)" = 0 ]; then
  chown -R postgres: "$dir"
  run=(runuser -u postgres --)
fi

"${run[@]}" "$bin/initdb" -D "$dir/data" -U postgres -A trust -E UTF8 --locale=C --no-sync >&2
"${run[@]}" "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 start \
  -o "-h 127.0.0.1 -p $port -k $dir -c fsync=off -c synchronous_commit=off -c full_page_writes=off" >&2
"${run[@]}" "$bin/createdb" -h 127.0.0.1 -p "$port" -U postgres triagekit_test >&2

echo "export TRIAGEKIT_PG_DIR=$dir"
echo "export TRIAGEKIT_TEST_PG_URL=postgresql+psycopg://postgres@127.0.0.1:$port/triagekit_test"
