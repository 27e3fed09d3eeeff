#!/usr/bin/env bash
# debian-base.sh: a Debian base image of another architecture, for the builds that cannot pull
# one (an engine without a registry). Prints the image's name on stdout.
#
#   docker/scripts/debian-base.sh arm64 [SUITE]   # SUITE defaults to trixie
#   docker build --platform linux/arm64 --build-arg BASE_IMAGE="$(docker/scripts/debian-base.sh arm64)" ...
#
# The image, local/debian-ARCH:SUITE, is Debian's minbase variant made by debootstrap from the
# machine's apt mirror, running the foreign architecture's package scripts under qemu-user
# (binfmt_misc: `scripts/install-deps test` installs and registers it). The image's config names
# ARCH: `docker import` would record the engine's own architecture (Docker 20.10 ignores its
# --platform), so the root filesystem is loaded as a `docker save` archive made here.
#
# The archive is cached in $PROSODY_PFE_CACHE (default /var/cache/prosody-pfe), keyed by suite
# and architecture: the first run takes minutes (debootstrap under emulation), later runs a
# `docker load` of seconds, or nothing when the engine already has the image. Delete the file
# to make it again (e.g. for a newer point release).
set -euo pipefail

arch=${1:?usage: debian-base.sh ARCH [SUITE]}
suite=${2:-trixie}
cache=${PROSODY_PFE_CACHE:-/var/cache/prosody-pfe}
image=local/debian-$arch:$suite
archive=$cache/debian-$suite-$arch-minbase.docker.tar

log() { printf 'debian-base: %s\n' "$*" >&2; }

case "$arch" in
  amd64) qemu=x86_64 ;;
  arm64) qemu=aarch64 ;;
  *) log "architecture \"$arch\" is not supported: use amd64 or arm64"; exit 2 ;;
esac

if [ "$(docker image inspect --format '{{.Architecture}}' "$image" 2>/dev/null)" = "$arch" ]; then
  echo "$image"
  exit 0
fi

if [ ! -s "$archive" ]; then
  if [ "$(uname -m)" != "$qemu" ] && [ "$(head -n1 "/proc/sys/fs/binfmt_misc/qemu-$qemu" 2>/dev/null)" != enabled ]; then
    log "no binfmt_misc handler for $arch (/proc/sys/fs/binfmt_misc/qemu-$qemu): run scripts/install-deps test, which installs qemu-user-static and registers it"
    exit 1
  fi
  mirror=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
  [ -n "$mirror" ] || mirror=$(awk '/^deb / {print $2; exit}' /etc/apt/sources.list 2>/dev/null || true)
  [ -n "$mirror" ] || mirror=http://deb.debian.org/debian
  mkdir -p "$cache"
  work=$(mktemp -d "${TMPDIR:-/var/tmp}/debian-base.XXXXXX")
  trap 'rm -rf "$work"' EXIT
  start=$(date +%s)
  log "debootstrap --arch=$arch --variant=minbase $suite from $mirror under qemu-$qemu: a few minutes, once (log: $cache/debootstrap-$suite-$arch.log)"
  if ! debootstrap --arch="$arch" --variant=minbase "$suite" "$work/root" "$mirror" >"$cache/debootstrap-$suite-$arch.log" 2>&1; then
    log "debootstrap failed; the end of $cache/debootstrap-$suite-$arch.log:"
    tail -n 20 "$cache/debootstrap-$suite-$arch.log" >&2
    exit 1
  fi
  rm -rf "$work/root/var/cache/apt/archives/"*.deb "$work/root/var/lib/apt/lists/"*
  log "debootstrap took $(( $(date +%s) - start ))s"

  # A `docker save` archive of one layer: manifest.json, the config (named by its digest) and
  # the layer, whose uncompressed digest is the config's diff_id.
  mkdir "$work/image"
  tar -C "$work/root" --numeric-owner -cf "$work/image/layer.tar" .
  rm -rf "$work/root"
  layer=$(sha256sum "$work/image/layer.tar" | cut -d' ' -f1)
  mkdir "$work/image/$layer"
  mv "$work/image/layer.tar" "$work/image/$layer/layer.tar"
  created=$(date -u +%Y-%m-%dT%H:%M:%SZ)
  printf '{"architecture":"%s","os":"linux","created":"%s","config":{"Env":["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],"Cmd":["bash"]},"rootfs":{"type":"layers","diff_ids":["sha256:%s"]},"history":[{"created":"%s","created_by":"debootstrap --arch=%s --variant=minbase %s"}]}' \
    "$arch" "$created" "$layer" "$created" "$arch" "$suite" >"$work/image/config.json"
  config=$(sha256sum "$work/image/config.json" | cut -d' ' -f1)
  mv "$work/image/config.json" "$work/image/$config.json"
  printf '[{"Config":"%s.json","RepoTags":["%s"],"Layers":["%s/layer.tar"]}]' "$config" "$image" "$layer" >"$work/image/manifest.json"
  tar -C "$work/image" -cf "$archive.tmp" . && mv "$archive.tmp" "$archive"
fi

log "loading $image from $archive"
docker load --quiet --input "$archive" >/dev/null
got=$(docker image inspect --format '{{.Architecture}}' "$image")
if [ "$got" != "$arch" ]; then
  log "$image loaded from $archive is $got, not $arch: delete the file and run again"
  exit 1
fi
echo "$image"
