#!/usr/bin/env bash
# Installs the tools of the cluster tier into .tools/bin (git-ignored):
# LiteFS, Toxiproxy and Consul from the Go module proxy, fusermount3 from
# Debian.
# Idempotent: a tool already at the pinned version is left alone.
set -euo pipefail

LITEFS_VERSION="v0.5.14"
# Pinned by hand: the module proxy's `@latest` for this module still answers
# v2.5.0 (2022), while v2.12.0 (2025-03) is the newest tagged release.
TOXIPROXY_VERSION="v2.12.0"
# The last MPL-2.0 release: Consul is BUSL from August 2023 on, later 1.16
# patches included (docs/decisions/0009-consul-1.16.0-mpl.md). Built from the
# module proxy, never downloaded as a binary.
CONSUL_VERSION="v1.16.0"
# v0.3.0 of these two nested modules is refused by the proxy here; rc1 (June
# 2023, MPL-2.0) is served and builds against v1.16.0.
CONSUL_NESTED_VERSION="v0.3.0-rc1"

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bin="$root/.tools/bin"
mkdir -p "$bin"

log() { printf 'setup-cluster: %s\n' "$*"; }

# Scratch directories of the builds, removed however the script ends.
scratch=()
cleanup() { if [ "${#scratch[@]}" -gt 0 ]; then rm -rf "${scratch[@]}"; fi; }
trap cleanup EXIT

# --- fusermount3 (Debian package fuse3) -------------------------------------
if command -v fusermount3 >/dev/null 2>&1; then
  log "fusermount3 present ($(command -v fusermount3))"
elif [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  log "installing fuse3 with apt-get"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq fuse3 >/dev/null
else
  log "fusermount3 missing: install Debian's fuse3 package (needs root)" >&2
  exit 1
fi
if [ ! -e /dev/fuse ]; then
  log "warning: /dev/fuse does not exist; LiteFS cannot mount here" >&2
fi

# --- Go tools ---------------------------------------------------------------
if ! command -v go >/dev/null 2>&1; then
  for candidate in /usr/local/go/bin /usr/lib/go/bin; do
    if [ -x "$candidate/go" ]; then PATH="$candidate:$PATH"; fi
  done
fi
if ! command -v go >/dev/null 2>&1; then
  log "go is missing: it is needed to install LiteFS, Toxiproxy and Consul" >&2
  exit 1
fi

# The version stamp beside each binary says which version it was built from,
# so a re-run is a no-op and a changed pin reinstalls.
installed_version() { cat "$bin/.$1.version" 2>/dev/null || true; }

if [ -x "$bin/litefs" ] && [ "$(installed_version litefs)" = "$LITEFS_VERSION" ]; then
  log "litefs $LITEFS_VERSION present"
else
  log "installing litefs $LITEFS_VERSION"
  GOBIN="$bin" CGO_ENABLED=0 go install "github.com/superfly/litefs/cmd/litefs@$LITEFS_VERSION"
  echo "$LITEFS_VERSION" > "$bin/.litefs.version"
fi

if [ -x "$bin/toxiproxy-server" ] && [ "$(installed_version toxiproxy-server)" = "$TOXIPROXY_VERSION" ]; then
  log "toxiproxy-server $TOXIPROXY_VERSION present"
else
  log "installing toxiproxy-server $TOXIPROXY_VERSION"
  tmp="$(mktemp -d)"
  scratch+=("$tmp")
  # The command's package is named `server`; install it aside, then rename.
  GOBIN="$tmp" CGO_ENABLED=0 go install "github.com/Shopify/toxiproxy/v2/cmd/server@$TOXIPROXY_VERSION"
  mv -f "$tmp/server" "$bin/toxiproxy-server"
  echo "$TOXIPROXY_VERSION" > "$bin/.toxiproxy-server.version"
fi

if [ -x "$bin/consul" ] && [ "$(installed_version consul)" = "$CONSUL_VERSION" ]; then
  log "consul $CONSUL_VERSION present"
else
  # About 5 minutes on 2 cores from empty caches, ~2 GB of memory at peak;
  # only the first run on a machine pays (the binary is kept, keyed by the
  # stamp).
  log "building consul $CONSUL_VERSION from the Go module proxy (takes minutes)"
  consul_tmp="$(mktemp -d)"
  scratch+=("$consul_tmp")
  module_dir="$(go mod download -json "github.com/hashicorp/consul@$CONSUL_VERSION" \
    | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')"
  if [ -z "$module_dir" ] || [ ! -d "$module_dir" ]; then
    log "go mod download of github.com/hashicorp/consul@$CONSUL_VERSION gave no directory" >&2
    exit 1
  fi
  cp -R "$module_dir" "$consul_tmp/src"
  chmod -R u+w "$consul_tmp/src"
  (
    cd "$consul_tmp/src"
    # Its go.mod replaces five nested modules with directories the module
    # zip does not contain: use the published modules instead.
    go mod edit \
      -dropreplace=github.com/hashicorp/consul/api \
      -dropreplace=github.com/hashicorp/consul/sdk \
      -dropreplace=github.com/hashicorp/consul/proto-public \
      -dropreplace=github.com/hashicorp/consul/envoyextensions \
      -dropreplace=github.com/hashicorp/consul/troubleshoot \
      -require="github.com/hashicorp/consul/envoyextensions@$CONSUL_NESTED_VERSION" \
      -require="github.com/hashicorp/consul/troubleshoot@$CONSUL_NESTED_VERSION"
    # The checksum database has no record of the two rc1 versions.
    export GONOSUMDB="github.com/hashicorp/consul/envoyextensions,github.com/hashicorp/consul/troubleshoot"
    go mod download \
      github.com/hashicorp/consul/api \
      github.com/hashicorp/consul/sdk \
      github.com/hashicorp/consul/proto-public \
      github.com/hashicorp/consul/envoyextensions \
      github.com/hashicorp/consul/troubleshoot
    CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o "$consul_tmp/consul" .
  )
  mv -f "$consul_tmp/consul" "$bin/consul"
  echo "$CONSUL_VERSION" > "$bin/.consul.version"
fi

log "ready: $bin/litefs, $bin/toxiproxy-server, $bin/consul, $(command -v fusermount3)"
