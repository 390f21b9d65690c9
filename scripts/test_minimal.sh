#!/usr/bin/env bash
# Runs the README's test command on a minimal machine: a Debian bookworm minbase container holding
# only git, curl, ca-certificates and this machine's Node/npm (no procps, python3 or docker), so
# the suite shows it needs nothing else. Docker tests are ignored there with their reason. Not
# part of CI; needs a docker engine and debootstrap here.
#   1. builds $ROCK_MINBASE_IMAGE (default rock-minbase:bookworm) when missing, or with --rebuild;
#   2. copies this checkout into a fresh container and runs `npx -y deno@2 task ok` there, on the
#      host network with this machine's proxy settings and CA bundles.
# With arguments, runs `deno test --allow-all ARGS` there instead (e.g. one test file).
set -euo pipefail

IMAGE="${ROCK_MINBASE_IMAGE:-rock-minbase:bookworm}"
SUITE="bookworm"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

say() { printf 'test_minimal: %s\n' "$*"; }
fail() {
  printf 'test_minimal: error: %s\n' "$*" >&2
  exit 1
}

# shellcheck source=scripts/debian_mirror.sh
source "$ROOT/scripts/debian_mirror.sh"

rebuild=false
if [ "${1:-}" = "--rebuild" ]; then
  rebuild=true
  shift
fi

docker info >/dev/null 2>&1 || fail "no docker engine answers \`docker info\`"
node="$(readlink -f "$(command -v node)")" || fail "node is not installed here"
npm_cli="$(readlink -f "$(command -v npm)")" || fail "npm is not installed here"
# npm-cli.js lives in <node_modules>/npm/bin.
node_modules="$(dirname "$(dirname "$(dirname "$npm_cli")")")"

# 1. The image: debootstrap minbase plus git, curl and ca-certificates, nothing else.
if $rebuild || ! docker image inspect "$IMAGE" >/dev/null 2>&1; then
  command -v debootstrap >/dev/null || fail "debootstrap is not installed here"
  [ "$(id -u)" -eq 0 ] || fail "building $IMAGE needs root (debootstrap)"
  mirror="$(debian_mirror "$SUITE")"
  work="$(mktemp -d /tmp/rock-minbase.XXXXXX)"
  trap 'rm -rf --one-file-system "$work"' EXIT
  say "building $IMAGE: debootstrap $SUITE from $mirror"
  debootstrap --variant=minbase --include=git,curl,ca-certificates "$SUITE" "$work/rootfs" \
    "$mirror" >"$work/debootstrap.log" 2>&1 || {
    tail -n 20 "$work/debootstrap.log" >&2
    fail "debootstrap failed (tail above)"
  }
  rm -rf "$work"/rootfs/var/lib/apt/lists/* "$work"/rootfs/var/cache/apt/*.bin
  truncate -s 0 "$work/rootfs/etc/resolv.conf"
  tar -C "$work/rootfs" -c . | docker import - "$IMAGE" >/dev/null
  rm -rf --one-file-system "$work"
  trap - EXIT
fi

# 2. The run (--init, so Ctrl-C reaches the tests). Proxy settings pass through as they are set
# here, and each CA bundle a variable names is mounted at the same path (over the image's own
# bundle when the paths are the same).
args=(--rm --init --network host -v "$ROOT:/src:ro" -v "$node:/usr/bin/node:ro"
  -v "$node_modules:/usr/lib/node_modules:ro")
for name in HTTPS_PROXY HTTP_PROXY NO_PROXY https_proxy http_proxy no_proxy; do
  if [ -n "${!name:-}" ]; then args+=(-e "$name"); fi
done
for name in SSL_CERT_FILE NODE_EXTRA_CA_CERTS; do
  file="${!name:-}"
  if [ -z "$file" ]; then continue; fi
  args+=(-e "$name")
  if [ -f "$file" ]; then args+=(-v "$file:$file:ro"); fi
done
# The run refuses an image that has procps, python3 or docker, which would hide what the suite
# still needs of the machine.
script='set -eu
ln -s /usr/lib/node_modules/npm/bin/npm-cli.js /usr/local/bin/npm
ln -s /usr/lib/node_modules/npm/bin/npx-cli.js /usr/local/bin/npx
for tool in ps python3 docker pgrep pkill; do
  if command -v "$tool" >/dev/null; then echo "test_minimal: $tool is in the image" >&2; exit 1; fi
done
mkdir /work && cp -a /src /work/rock && cd /work/rock
if [ "$#" -gt 0 ]; then exec npx -y deno@2 test --allow-all "$@"; fi
exec npx -y deno@2 task ok'
say "running the tests in $IMAGE ($(nproc) cores here)"
exec docker run "${args[@]}" "$IMAGE" bash -c "$script" test_minimal "$@"
