#!/usr/bin/env bash
# Installs the tools of the cluster tier into .tools/bin (git-ignored):
# LiteFS and Toxiproxy from the Go module proxy, fusermount3 from Debian.
# Idempotent: a tool already at the pinned version is left alone.
set -euo pipefail

LITEFS_VERSION="v0.5.14"
# Pinned by hand: the module proxy's `@latest` for this module still answers
# v2.5.0 (2022), while v2.12.0 (2025-03) is the newest tagged release.
TOXIPROXY_VERSION="v2.12.0"

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bin="$root/.tools/bin"
mkdir -p "$bin"

log() { printf 'setup-cluster: %s\n' "$*"; }

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
  log "go is missing: it is needed to install LiteFS and Toxiproxy" >&2
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
  trap 'rm -rf "$tmp"' EXIT
  # The command's package is named `server`; install it aside, then rename.
  GOBIN="$tmp" CGO_ENABLED=0 go install "github.com/Shopify/toxiproxy/v2/cmd/server@$TOXIPROXY_VERSION"
  mv -f "$tmp/server" "$bin/toxiproxy-server"
  echo "$TOXIPROXY_VERSION" > "$bin/.toxiproxy-server.version"
fi

log "ready: $bin/litefs, $bin/toxiproxy-server, $(command -v fusermount3)"
