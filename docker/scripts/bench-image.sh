#!/usr/bin/env bash
# bench-image.sh: the image's size and its cold start (docker run -> Docker's HEALTHCHECK says
# healthy), median of RUNS runs, printed as the "Container" section of BENCHMARKS.md.
#
# Usage: docker/scripts/bench-image.sh [IMAGE] [--write FILE]
#   IMAGE     default prosody-pfe:test (scripts/test-docker builds it)
#   --write   replace (or append) the "## Container" section of FILE, leaving the rest alone
#   RUNS      environment, default 5
# Each run is cold: a new container on a new, empty data volume (so certificates, secrets and
# the SQLite database are made), the standard profile in production, host network, 127.0.0.1
# on free ports. Needs a Docker engine (DOCKER_HOST) and python3 (free ports, median).
set -euo pipefail
cd "$(dirname "$0")/../.."

image=prosody-pfe:test
out=""
while [ $# -gt 0 ]; do
  case "$1" in
    --write) out=${2:?--write needs a file}; shift 2 ;;
    -*) echo "$0: unknown option $1 (accepted: --write FILE)" >&2; exit 2 ;;
    *) image=$1; shift ;;
  esac
done
runs=${RUNS:-5}
interval_ms=100

docker image inspect "$image" >/dev/null 2>&1 || { echo "$0: image $image not found: run make test-docker (or docker/scripts/build-image.sh $image)" >&2; exit 1; }

now_ms() { date +%s%3N; }
free_ports() { python3 -c 'import socket
ss=[socket.socket() for _ in range(5)]
for s in ss: s.bind(("127.0.0.1",0))
print(" ".join(str(s.getsockname()[1]) for s in ss))'; }
median() { python3 -c 'import sys,statistics; print(round(statistics.median(float(x) for x in sys.argv[1:])))' "$@"; }

wall=() inner=()
for i in $(seq 1 "$runs"); do
  read -r c2s s2s http https health < <(free_ports)
  name=pfe-bench-$$-$i
  vol=pfe-bench-$$-$i
  docker volume create "$vol" >/dev/null
  t0=$(now_ms)
  docker run --detach --name "$name" --network host -v "$vol:/var/lib/prosody" \
    --health-interval "${interval_ms}ms" --health-timeout 3s \
    -e PROSODY_DOMAIN=localhost -e PROSODY_TLS_ALLOW_SELF_SIGNED=true -e PROSODY_INTERFACES=127.0.0.1 \
    -e PROSODY_C2S_PORT="$c2s" -e PROSODY_S2S_PORT="$s2s" -e PROSODY_HTTP_PORT="$http" \
    -e PROSODY_HTTPS_PORT="$https" -e PROSODY_HEALTH_LISTEN="127.0.0.1:$health" "$image" >/dev/null
  status=""
  for _ in $(seq 1 1500); do # 1500 x 20 ms: 30 s at most
    status=$(docker inspect --format '{{.State.Status}} {{.State.Health.Status}}' "$name")
    case "$status" in "running healthy") break ;; running*) sleep 0.02 ;; *) break ;; esac
  done
  t1=$(now_ms)
  if [ "$status" != "running healthy" ]; then
    docker logs --tail 30 "$name" >&2 || true
    docker rm -f -v "$name" >/dev/null; docker volume rm "$vol" >/dev/null
    echo "$0: run $i: container not healthy ($status)" >&2; exit 1
  fi
  # Docker's own view: from the container's start to the end of its first passing probe.
  in=$(docker inspect --format '{{.State.StartedAt}}{{range .State.Health.Log}}{{if eq .ExitCode 0}} {{.End.UTC.Format "2006-01-02T15:04:05.000000"}}{{end}}{{end}}' "$name" \
    | python3 -c 'import sys,datetime
f=sys.stdin.read().split(); p=lambda s: datetime.datetime.fromisoformat(s[:26].rstrip("Z"))
print(round((p(f[1])-p(f[0])).total_seconds()*1000))')
  docker rm -f -v "$name" >/dev/null
  docker volume rm "$vol" >/dev/null
  wall+=("$((t1 - t0))") inner+=("$in")
  echo "run $i: docker run -> healthy ${wall[-1]} ms (Docker: start -> first passing probe ${in} ms)" >&2
done

size=$(docker image inspect --format '{{.Size}}' "$image")
base=$(docker image inspect --format '{{.Size}}' debian:trixie-slim 2>/dev/null || echo 0)
bin=$(docker run --rm --entrypoint stat "$image" -c %s /usr/local/bin/entrypoint)
mb() { python3 -c "print(f'{$1/1e6:.1f}')"; }

section=$(cat <<EOF
## Container

Image \`$image\` (entrypoint $(docker run --rm --network host "$image" version | sed 's/^entrypoint //')),
measured on $(nproc) cores, Docker $(docker version --format '{{.Server.Version}}'), $(date -u +%Y-%m-%d).

| measure | value |
|---|---|
| image size | $(mb "$size") MB ($(mb "$base") MB of it the debian:trixie-slim base, $(mb "$bin") MB the static entrypoint) |
| cold start, \`docker run\` -> healthy (median of $runs) | ${wall[*]} ms -> **$(median "${wall[@]}") ms** |
| cold start, Docker's view: container start -> end of first passing HEALTHCHECK (median of $runs) | ${inner[*]} ms -> **$(median "${inner[@]}") ms** |

Cold: each run is a new container on an empty data volume (self-signed certificate, generated
secrets and the SQLite database are made at start), standard profile, production environment,
host network. The health check runs every ${interval_ms} ms, so both figures include up to one
interval of waiting. Reproduce: \`make static && scripts/test-docker && docker/scripts/bench-image.sh prosody-pfe:test --write BENCHMARKS.md\`.
EOF
)

if [ -z "$out" ]; then
  printf '%s\n' "$section"
  exit 0
fi
# Replace only the "## Container" section (up to the next "## " heading); keep the rest.
SECTION=$section python3 - "$out" <<'PY'
import os, re, sys
path = sys.argv[1]
new = os.environ["SECTION"].rstrip("\n") + "\n"
try:
    text = open(path).read()
except FileNotFoundError:
    text = "# Benchmarks\n"
m = re.search(r"(?m)^## Container\n(?:(?!^## ).*\n?)*", text)
if m:
    text = text[:m.start()] + new + ("\n" if m.end() < len(text) else "") + text[m.end():]
else:
    text = text.rstrip("\n") + "\n\n" + new
open(path, "w").write(text)
PY
echo "wrote the Container section of $out" >&2
