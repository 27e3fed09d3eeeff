# syntax=docker/dockerfile:1
#
# prosody-pfe image: the static `entrypoint` binary as PID 1 of a Prosody 13 container.
#
# Why the Go binary is built on the host and not in a builder stage:
# go.mod asks for Go 1.26, and the only base images available to our builds are Debian
# trixie/bookworm (no Go image can be pulled), whose golang-go is 1.24. A builder stage with
# Debian's Go cannot compile this module, so the binary is built first with the toolchain that
# the tests use, as a static CGO_ENABLED=0 binary that runs on any Linux:
#
#   CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=$VERSION" \
#       -o dist/entrypoint ./cmd/entrypoint
#   docker build --network host -t prosody-pfe .
#
# docker/scripts/build-image.sh does both. The first stage below only checks that the file is
# there and is a static binary, so a missing or dynamically linked build fails here with a
# message, not at run time in the container.

ARG DEBIAN_SUITE=trixie
# The base image; another architecture's Debian under another name (see docs/deployment.md,
# "Multi-architecture") is given here when the engine has no registry to pull it from.
ARG BASE_IMAGE=debian:${DEBIAN_SUITE}-slim

FROM ${BASE_IMAGE} AS binary
# TARGETARCH (amd64, arm64) is set by BuildKit/buildx from --platform; `make static` builds
# dist/entrypoint-amd64 and dist/entrypoint-arm64. The classic builder leaves it empty: then
# dist/entrypoint, the host's.
ARG TARGETARCH
COPY dist/ /dist/
RUN if [ -n "${TARGETARCH}" ] && [ -e "/dist/entrypoint-${TARGETARCH}" ]; then cp "/dist/entrypoint-${TARGETARCH}" /out-entrypoint; \
    else cp /dist/entrypoint /out-entrypoint; fi && mkdir -p /out && mv /out-entrypoint /out/entrypoint
# A static Go binary has no ELF interpreter (PT_INTERP); reading the program header table avoids
# needing `file` or binutils in this stage.
RUN test -x /out/entrypoint || { echo "dist/entrypoint is missing or not executable: build it first (see the Dockerfile header)" >&2; exit 1; }; \
    if grep -q '/ld-linux' /out/entrypoint; then \
      echo "dist/entrypoint is dynamically linked: build it with CGO_ENABLED=0" >&2; exit 1; \
    fi

FROM ${BASE_IMAGE} AS runtime

# The uid/gid of the prosody user are fixed, not left to adduser's first free number, so that
# Kubernetes' runAsUser/fsGroup, `docker run --user 101:101` and volume ownership on the host
# can rely on them.
ARG PROSODY_UID=101
ARG PROSODY_GID=101

# The prosody user exists before the package is installed: Debian's postinst only creates it
# when it is missing, so ours (with the fixed ids) is kept.
RUN groupadd --system --gid "${PROSODY_GID}" prosody \
 && useradd --system --uid "${PROSODY_UID}" --gid prosody --no-create-home \
      --home-dir /var/lib/prosody --shell /usr/sbin/nologin --comment "Prosody XMPP Server" prosody

# prosody (13 in trixie), community modules, LuaDBI for the sqlite and postgres storage
# settings, lua-unbound (Prosody's DNS resolver), lua-ldap (authentication/external feature),
# lua5.4 for luac5.4 (the render stage's syntax check), CA roots for s2s and outgoing HTTPS,
# sqlite3 (the online .backup of `entrypoint backup`) and postgresql-client (its pg_dump).
# `apt-get clean` also drops apt's package caches (/var/cache/apt/*.bin, ~90 MB after an update).
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      prosody prosody-modules lua5.4 lua-dbi-sqlite3 lua-dbi-postgresql lua-unbound lua-ldap \
      ca-certificates sqlite3 postgresql-client \
 && apt-get clean \
 && rm -rf /var/lib/apt/lists/*

# /backups is compose/backup.yml's archive volume: a new named volume takes the owner of the
# image's directory, so the backup loop (run as prosody) can write there.
# The packaged snakeoil localhost certificate is not used: the entrypoint finds or makes
# certificates in the certificates volume, and renders its own config into the runtime directory.
# The image is for Prosody 13: fail the build if the suite ships another major version.
RUN rm -f /etc/prosody/certs/localhost.* \
 && install -d -o prosody -g prosody -m 0750 /var/lib/prosody /etc/prosody/certs \
 && install -d -m 0755 /etc/prosody-pfe/custom \
 && install -d -o prosody -g prosody -m 0755 /run/prosody-pfe \
 && install -d -o prosody -g prosody -m 0750 /backups \
 && install -d -m 0755 /docker-entrypoint.d /usr/share/prosody-pfe \
 && version="$(dpkg-query -W -f='${Version}' prosody)" \
 && case "$version" in 13.*) ;; *) echo "prosody 13 expected, the suite has $version" >&2; exit 1;; esac

COPY config/ /usr/share/prosody-pfe/config/
COPY --from=binary /out/entrypoint /usr/local/bin/entrypoint

# `docker exec CONTAINER prosodyctl ...` must act on the running server, not on Debian's stock
# config: /usr/local/bin (first in PATH) has a prosodyctl that is the entrypoint, which runs the
# real /usr/bin/prosodyctl with the live config, its credentials and as prosody. A wrapper, not
# the stock path made a link to the rendered file: prosodyctl also needs CREDENTIALS_DIRECTORY
# for Credential(), relative paths resolve against the config's directory, and /etc/prosody is
# the official image's config volume, which would hide a link. The stock file is replaced by
# one that fails with the way out, so a direct /usr/bin/prosodyctl never acts on a stale config.
RUN ln -s entrypoint /usr/local/bin/prosodyctl \
 && printf '%s\n' '-- prosody-pfe: this file is not the running config.' \
      'error("this image renders its config into /run/prosody-pfe/prosody.cfg.lua: run prosodyctl from PATH (/usr/local/bin/prosodyctl), or mount your own file and set PROSODY_CONFIG_FILE")' \
      > /etc/prosody/prosody.cfg.lua

# Data (internal/sqlite storage, generated secrets), certificates, and custom profiles/features.
# The runtime directory (/run/prosody-pfe) is left out on purpose: it holds only what is made
# again at each start (rendered config, sockets), so a tmpfs on /run suits it.
VOLUME ["/var/lib/prosody", "/etc/prosody/certs", "/etc/prosody-pfe/custom"]

# c2s, s2s, HTTP (BOSH, websocket, openmetrics), HTTPS, entrypoint health and metrics.
EXPOSE 5222 5269 5280 5281 5282

# Started as root, the entrypoint drops to prosody itself (after fixing volume ownership);
# `--user 101:101` runs everything as prosody. No USER line, so both work.
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=10s --timeout=3s --start-period=60s --retries=3 \
  CMD ["entrypoint", "healthcheck"]

ENTRYPOINT ["entrypoint"]
CMD ["prosody"]

# Build metadata last: VERSION, REVISION and CREATED change on every build, and an ARG or LABEL
# above the package layer would make every build reinstall the packages.
# DEBIAN_SUITE is declared before the first FROM; a stage sees it only when it names it again.
ARG DEBIAN_SUITE
ARG VERSION=dev
ARG REVISION=unknown
ARG CREATED=unknown
LABEL org.opencontainers.image.title="prosody-pfe" \
      org.opencontainers.image.description="Prosody 13 XMPP server with a Go PID 1 entrypoint: validated env, rendered Profile-Feature-Environment config, supervision, health and metrics" \
      org.opencontainers.image.source="https://github.com/prosody-pfe/prosody-pfe" \
      org.opencontainers.image.url="https://github.com/prosody-pfe/prosody-pfe" \
      org.opencontainers.image.documentation="https://github.com/prosody-pfe/prosody-pfe/blob/main/docs/deployment.md" \
      org.opencontainers.image.vendor="prosody-pfe" \
      org.opencontainers.image.licenses="MIT" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.base.name="debian:${DEBIAN_SUITE}-slim"
