#!/bin/sh
# build-image.sh: build the static entrypoint on this machine, then the image.
# Usage: docker/scripts/build-image.sh [TAG]   (default tag: prosody-pfe:latest)
# Needs Go (the version in go.mod) and a Docker engine; see docs/deployment.md for why the Go
# build is not a Dockerfile stage.
set -eu
cd "$(dirname "$0")/../.."
tag=${1:-prosody-pfe:latest}
version=$(git describe --tags --always --dirty 2>/dev/null || echo dev)
revision=$(git rev-parse HEAD 2>/dev/null || echo unknown)
created=$(date -u +%Y-%m-%dT%H:%M:%SZ)
mkdir -p dist
CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=$version" -o dist/entrypoint ./cmd/entrypoint
# One per architecture too: a BuildKit build picks dist/entrypoint-$TARGETARCH, never a stale one.
for arch in amd64 arm64; do
  CGO_ENABLED=0 GOARCH=$arch go build -trimpath -ldflags "-s -w -X main.version=$version" -o "dist/entrypoint-$arch" ./cmd/entrypoint
done
exec docker build --network host \
  --build-arg VERSION="$version" --build-arg REVISION="$revision" --build-arg CREATED="$created" \
  -t "$tag" .
