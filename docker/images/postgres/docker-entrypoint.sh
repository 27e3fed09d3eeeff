#!/bin/sh
# docker-entrypoint.sh: create the cluster, the user and the database on first start, then exec
# postgres in the foreground (PID 1; SIGINT is PostgreSQL's fast shutdown, the STOPSIGNAL).
# Any command other than `postgres ...` runs as given.
set -eu

if [ "${1:-}" != postgres ]; then
  exec "$@"
fi
shift

: "${PGDATA:=/var/lib/postgresql/data}"
: "${POSTGRES_USER:=postgres}"
: "${POSTGRES_DB:=$POSTGRES_USER}"

if [ ! -s "$PGDATA/PG_VERSION" ]; then
  pwfile=$(mktemp)
  trap 'rm -f "$pwfile"' EXIT
  if [ -n "${POSTGRES_PASSWORD_FILE:-}" ]; then
    [ -r "$POSTGRES_PASSWORD_FILE" ] || { echo "docker-entrypoint.sh: POSTGRES_PASSWORD_FILE=$POSTGRES_PASSWORD_FILE is not a readable file" >&2; exit 1; }
    # One trailing newline is not part of the password (the *_FILE convention).
    printf '%s' "$(cat "$POSTGRES_PASSWORD_FILE")" > "$pwfile"
  elif [ -n "${POSTGRES_PASSWORD:-}" ]; then
    printf '%s' "$POSTGRES_PASSWORD" > "$pwfile"
  else
    echo "docker-entrypoint.sh: set POSTGRES_PASSWORD_FILE (or POSTGRES_PASSWORD): the database has no password otherwise" >&2
    exit 1
  fi
  [ -s "$pwfile" ] || { echo "docker-entrypoint.sh: the password in POSTGRES_PASSWORD_FILE/POSTGRES_PASSWORD is empty" >&2; exit 1; }

  echo "docker-entrypoint.sh: initialising $PGDATA (user $POSTGRES_USER, database $POSTGRES_DB)" >&2
  initdb -D "$PGDATA" -U "$POSTGRES_USER" --pwfile="$pwfile" \
    --auth-local=trust --auth-host=scram-sha-256 --encoding=UTF8 --locale=C.UTF-8 >/dev/null
  rm -f "$pwfile"
  # Other containers reach it over the network with a password; the command line may narrow
  # listen_addresses (compose/hostnet-database.yml binds 127.0.0.1 only).
  printf "listen_addresses = '*'\n" >> "$PGDATA/postgresql.conf"
  printf 'host all all all scram-sha-256\n' >> "$PGDATA/pg_hba.conf"

  if [ "$POSTGRES_DB" != postgres ]; then
    # A socket-only server, so nothing can connect before the database exists.
    pg_ctl -D "$PGDATA" -o "-c listen_addresses=''" -w start >/dev/null
    createdb -U "$POSTGRES_USER" "$POSTGRES_DB"
    pg_ctl -D "$PGDATA" -m fast -w stop >/dev/null
  fi
fi

exec postgres -D "$PGDATA" "$@"
