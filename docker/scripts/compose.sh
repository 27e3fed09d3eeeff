#!/bin/sh
# compose.sh: Compose with the files of one deployment, so nobody types the -f list.
# Usage: docker/scripts/compose.sh ENVIRONMENT [ADDON...] -- COMPOSE-ARGS...
#   ENVIRONMENT: development | production
#   ADDON:       database | monitoring | proxy | backup | hostnet
# Example: docker/scripts/compose.sh production database monitoring -- up -d
# With hostnet, every file gets its hostnet-*.yml override and no ports*.yml (Docker refuses
# published ports with host networking); with both database and backup, backup-database.yml is
# added (the backup gets the server's PostgreSQL settings). Replaces the seeds' deploy/scale
# scripts: see docs/deployment.md.
# Compose: `docker compose` (v2) when the docker CLI has it, else `docker-compose` (v1, 1.27 or
# later: the files have no `version` key and use depends_on conditions). COMPOSE overrides the
# choice (e.g. COMPOSE=docker-compose); `compose.sh --which` prints it.
set -eu
dir="$(cd "$(dirname "$0")/../../compose" && pwd)"
if [ -n "${COMPOSE:-}" ]; then
  compose=$COMPOSE
elif docker compose version >/dev/null 2>&1; then
  compose="docker compose"
elif command -v docker-compose >/dev/null 2>&1; then
  compose=docker-compose
else
  echo "$0: neither \`docker compose\` (Compose v2) nor docker-compose (v1) is installed: install one (Debian: docker-compose), or set COMPOSE" >&2
  exit 127
fi
if [ "${1:-}" = --which ]; then echo "$compose"; exit 0; fi
[ $# -ge 1 ] || { echo "usage: $0 development|production [database|monitoring|proxy|backup|hostnet...] -- ARGS" >&2; exit 2; }
envname=$1; shift
case "$envname" in development|production) ;; *) echo "$0: environment must be development or production, not '$envname'" >&2; exit 2;; esac
addons=""; hostnet=no
while [ $# -gt 0 ] && [ "$1" != "--" ]; do
  case "$1" in
    database|monitoring|proxy|backup) addons="$addons $1" ;;
    hostnet) hostnet=yes ;;
    *) echo "$0: unknown addon '$1' (accepted: database monitoring proxy backup hostnet)" >&2; exit 2 ;;
  esac
  shift
done
[ "${1:-}" = "--" ] && shift
files="-f $dir/base.yml"
if [ "$hostnet" = yes ]; then files="$files -f $dir/hostnet.yml"; else files="$files -f $dir/ports.yml"; fi
for a in $addons; do
  files="$files -f $dir/$a.yml"
  if [ "$hostnet" = yes ]; then files="$files -f $dir/hostnet-$a.yml"
  elif [ -f "$dir/ports-$a.yml" ]; then files="$files -f $dir/ports-$a.yml"; fi
done
case " $addons " in *" database "*) case " $addons " in *" backup "*) files="$files -f $dir/backup-database.yml" ;; esac ;; esac
files="$files -f $dir/$envname.yml"
# shellcheck disable=SC2086 # $compose and $files are split on purpose (a path with spaces is not supported)
exec $compose $files "$@"
