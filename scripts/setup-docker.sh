#!/usr/bin/env bash
# Prepares the container tier on a machine where no image registry can be
# reached: a Docker engine, local base images, and the app image built from the
# project's own Dockerfile with those base images as build arguments.
#
#   local/debian:bookworm      debootstrap --variant=minbase, then docker import
#   local/node:20              that, plus this machine's Node (and npm, headers, CA bundle)
#   local/litefs:0.5.14        that, plus .tools/bin/litefs (npm run setup:cluster)
#   local/toxiproxy:2.12.0     that, plus .tools/bin/toxiproxy-server
#   litefs-ryw:test            docker build . --build-arg NODE_IMAGE=… --build-arg LITEFS_IMAGE=…
#
# Idempotent: an engine that answers is left alone, base images are cached by
# tag (and by the version they were made from), the app image by Docker's own
# layer cache. Where a registry can be reached, none of this is needed:
# `docker build -t litefs-ryw:test .` builds from the public images.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

DEBIAN_IMAGE="local/debian:bookworm"
NODE_MAJOR="$(node -p 'process.versions.node.split(".")[0]')"
NODE_IMAGE="local/node:${NODE_MAJOR}"
APP_IMAGE="${LITEFS_RYW_IMAGE:-litefs-ryw:test}"
DOCKERD_LOG="${DOCKERD_LOG:-/var/log/dockerd.log}"
# How long a freshly started dockerd gets to answer `docker info`.
DOCKERD_START_TIMEOUT_S=60

log() { printf 'setup-docker: %s\n' "$*"; }
die() { printf 'setup-docker: %s\n' "$*" >&2; exit 1; }
has_image() { docker image inspect "$1" >/dev/null 2>&1; }
image_label() { docker image inspect -f "{{ index .Config.Labels \"$2\" }}" "$1" 2>/dev/null || true; }

apt_install() {
  [ "$(id -u)" = "0" ] || die "missing $*: install them (needs root)"
  log "installing $* with apt-get"
  # Other jobs may hold the dpkg lock for a while (another apt-get install).
  apt-get -o DPkg::Lock::Timeout=600 update -qq
  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "$@" >/dev/null
}

# --- the engine ---------------------------------------------------------------
missing=()
command -v dockerd >/dev/null 2>&1 || missing+=(docker.io)
command -v docker >/dev/null 2>&1 || missing+=(docker.io)
command -v debootstrap >/dev/null 2>&1 || missing+=(debootstrap)
if [ "${#missing[@]}" -gt 0 ]; then
  if docker info >/dev/null 2>&1 && [ "${missing[*]}" = "debootstrap" ] && has_image "$DEBIAN_IMAGE"; then
    : # an engine answers and the base image exists: debootstrap is not needed
  else
    # shellcheck disable=SC2207
    apt_install $(printf '%s\n' "${missing[@]}" | sort -u)
  fi
fi

if docker info >/dev/null 2>&1; then
  log "docker engine answers ($(docker version -f '{{.Server.Version}}'))"
else
  [ "$(id -u)" = "0" ] || die "no docker engine answers, and only root can start dockerd"
  log "starting dockerd (log: $DOCKERD_LOG)"
  # No bridge and no iptables rules: every container of this project runs with
  # host networking (traffic stays on 127.0.0.1), and Docker's iptables rules
  # (FORWARD policy DROP) would break other tests' network namespaces.
  setsid nohup dockerd --bridge=none --iptables=false >>"$DOCKERD_LOG" 2>&1 </dev/null &
  for _ in $(seq 1 "$DOCKERD_START_TIMEOUT_S"); do
    docker info >/dev/null 2>&1 && break
    sleep 1
  done
  docker info >/dev/null 2>&1 || { tail -n 30 "$DOCKERD_LOG" >&2; die "dockerd did not answer within ${DOCKERD_START_TIMEOUT_S} s"; }
  log "dockerd up ($(docker version -f '{{.Server.Version}}'))"
fi

# The Dockerfile starts with `# syntax=docker/dockerfile:1`, which BuildKit would
# try to pull; the classic builder reads it as a comment and takes local images.
export DOCKER_BUILDKIT=0

# --- local/debian:bookworm ------------------------------------------------------
# The Debian mirror this machine's apt uses: the first `URIs:` of a deb822
# source for bookworm, else the first `deb` line.
apt_mirror() {
  local uri
  uri="$(grep -hs -B3 -A3 '^Suites:.*\bbookworm\b' /etc/apt/sources.list.d/*.sources 2>/dev/null \
    | awk '/^URIs:/ { print $2; exit }')"
  if [ -z "$uri" ]; then
    uri="$(grep -hs '^deb .*bookworm main' /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null \
      | grep -v security | awk '{ print $2; exit }')"
  fi
  echo "${uri:-http://deb.debian.org/debian}"
}
security_mirror() {
  local uri
  uri="$(grep -hs -B3 -A3 '^Suites:.*bookworm-security' /etc/apt/sources.list.d/*.sources 2>/dev/null \
    | awk '/^URIs:/ { print $2; exit }')"
  echo "${uri:-http://deb.debian.org/debian-security}"
}

if has_image "$DEBIAN_IMAGE"; then
  log "$DEBIAN_IMAGE present"
else
  mirror="$(apt_mirror)"
  log "debootstrap bookworm from $mirror (about a minute)"
  rootfs="$(mktemp -d /tmp/debootstrap-bookworm.XXXXXX)"
  trap 'rm -rf "$rootfs"' EXIT
  debootstrap --variant=minbase bookworm "$rootfs" "$mirror" >/tmp/debootstrap.log 2>&1 \
    || { tail -n 30 /tmp/debootstrap.log >&2; die "debootstrap failed (log: /tmp/debootstrap.log)"; }
  # What the images' apt-get sees: the same mirror, with updates and security.
  cat >"$rootfs/etc/apt/sources.list" <<EOF
deb $mirror bookworm main
deb $mirror bookworm-updates main
deb $(security_mirror) bookworm-security main
EOF
  rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
  tar -C "$rootfs" -c . | docker import -c 'CMD ["bash"]' -m "debootstrap --variant=minbase bookworm $mirror" - "$DEBIAN_IMAGE" >/dev/null
  rm -rf "$rootfs"
  trap - EXIT
  log "$DEBIAN_IMAGE imported"
fi

# --- local/node:<major> -----------------------------------------------------------
# This machine's Node, npm and headers, laid out as the official node image
# does (/usr/local). The CA bundle comes along because this machine's network
# may intercept TLS; the headers because node-gyp (better-sqlite3 from source)
# cannot download them here.
node_version="$(node -p process.version)"
if has_image "$NODE_IMAGE" && [ "$(image_label "$NODE_IMAGE" org.nodejs.version)" = "$node_version" ]; then
  log "$NODE_IMAGE present (node $node_version)"
else
  log "building $NODE_IMAGE from this machine's node $node_version"
  ctx="$(mktemp -d /tmp/node-image.XXXXXX)"
  trap 'rm -rf "$ctx"' EXIT
  node_bin="$(readlink -f "$(command -v node)")"
  node_prefix="$(dirname "$(dirname "$node_bin")")"
  npm_dir="$(dirname "$(dirname "$(readlink -f "$(command -v npm)")")")"
  [ -f "$npm_dir/package.json" ] || die "cannot find npm's directory (looked at $npm_dir)"
  [ -f "$node_prefix/include/node/node.h" ] || die "no Node headers at $node_prefix/include/node"
  mkdir -p "$ctx/bin" "$ctx/lib/node_modules" "$ctx/include"
  cp "$node_bin" "$ctx/bin/node"
  cp -a "$npm_dir" "$ctx/lib/node_modules/npm"
  cp -a "$node_prefix/include/node" "$ctx/include/node"
  cp /etc/ssl/certs/ca-certificates.crt "$ctx/host-ca-bundle.crt"
  cat >"$ctx/Dockerfile" <<EOF
FROM $DEBIAN_IMAGE
COPY bin/node /usr/local/bin/node
COPY lib /usr/local/lib
COPY include /usr/local/include
COPY host-ca-bundle.crt /usr/local/share/host-ca-bundle.crt
RUN ln -s ../lib/node_modules/npm/bin/npm-cli.js /usr/local/bin/npm \\
 && ln -s ../lib/node_modules/npm/bin/npx-cli.js /usr/local/bin/npx \\
 && node --version && npm --version
ENV NODE_EXTRA_CA_CERTS=/usr/local/share/host-ca-bundle.crt \\
    npm_config_cafile=/usr/local/share/host-ca-bundle.crt \\
    npm_config_nodedir=/usr/local \\
    npm_config_update_notifier=false
LABEL org.nodejs.version=$node_version
CMD ["node"]
EOF
  docker build -q -t "$NODE_IMAGE" "$ctx" >/dev/null 2>"$ctx.err" || { cat "$ctx.err" >&2; die "building $NODE_IMAGE failed"; }
  rm -f "$ctx.err"
  rm -rf "$ctx"
  trap - EXIT
  log "$NODE_IMAGE built"
fi

# --- local/litefs and local/toxiproxy, from the cluster tier's binaries -----------
if [ ! -x .tools/bin/litefs ] || [ ! -x .tools/bin/toxiproxy-server ]; then
  log "LiteFS or Toxiproxy missing in .tools/bin: running npm run setup:cluster"
  npm run -s setup:cluster
fi
litefs_version="$(cat .tools/bin/.litefs.version 2>/dev/null || echo v0.5.14)"
toxiproxy_version="$(cat .tools/bin/.toxiproxy-server.version 2>/dev/null || echo v2.12.0)"
LITEFS_IMAGE="local/litefs:${litefs_version#v}"
TOXIPROXY_IMAGE="local/toxiproxy:${toxiproxy_version#v}"

# build_tool_image IMAGE BINARY NAME_IN_IMAGE ENTRYPOINT_JSON
build_tool_image() {
  local image="$1" binary="$2" name="$3" entrypoint="$4" sum
  sum="$(sha256sum "$binary" | cut -c1-16)"
  if has_image "$image" && [ "$(image_label "$image" binary.sha256)" = "$sum" ]; then
    log "$image present"
    return
  fi
  log "building $image from $binary"
  local ctx
  ctx="$(mktemp -d /tmp/tool-image.XXXXXX)"
  cp "$binary" "$ctx/$name"
  cat >"$ctx/Dockerfile" <<EOF
FROM $DEBIAN_IMAGE
COPY $name /usr/local/bin/$name
LABEL binary.sha256=$sum
ENTRYPOINT $entrypoint
EOF
  docker build -q -t "$image" "$ctx" >/dev/null 2>"$ctx.err" || { cat "$ctx.err" >&2; die "building $image failed"; }
  rm -f "$ctx.err"
  rm -rf "$ctx"
}
build_tool_image "$LITEFS_IMAGE" .tools/bin/litefs litefs '["/usr/local/bin/litefs"]'
build_tool_image "$TOXIPROXY_IMAGE" .tools/bin/toxiproxy-server toxiproxy-server '["/usr/local/bin/toxiproxy-server"]'

# --- the app image, from the project's Dockerfile ---------------------------------
# Labelled with a hash of what it is built from: the container tier refuses an
# image older than the working tree, and an unchanged tree needs no build.
[ -x node_modules/.bin/tsx ] || die "node_modules is missing: run npm ci first"
source_hash="$(node_modules/.bin/tsx scripts/image-source-hash.ts .)"
if has_image "$APP_IMAGE" && [ "$(image_label "$APP_IMAGE" org.litefs-ryw.source-hash)" = "$source_hash" ]; then
  log "$APP_IMAGE present (source $source_hash)"
else
  log "building $APP_IMAGE from ./Dockerfile (NODE_IMAGE=$NODE_IMAGE LITEFS_IMAGE=$LITEFS_IMAGE, source $source_hash)"
  build_log="$(mktemp /tmp/docker-build.XXXXXX.log)"
  # --network host: the engine has no bridge, and apt/npm reach their registries
  # the way this machine does.
  if ! docker build --network host \
    --build-arg "NODE_IMAGE=$NODE_IMAGE" \
    --build-arg "LITEFS_IMAGE=$LITEFS_IMAGE" \
    --label "org.litefs-ryw.source-hash=$source_hash" \
    -t "$APP_IMAGE" . >"$build_log" 2>&1; then
    tail -n 40 "$build_log" >&2
    die "docker build failed (log: $build_log)"
  fi
  rm -f "$build_log"
fi
log "ready: $APP_IMAGE, $TOXIPROXY_IMAGE"
