#!/usr/bin/env bash
# Makes a Docker engine and rock's test image available on this machine. Idempotent: each step
# checks first and does nothing when its result is already there, so a re-run takes seconds.
#   1. installs docker.io from Debian when docker is missing;
#   2. starts dockerd in the background when `docker info` does not answer;
#   3. builds rock-test/debian:bookworm (debootstrap minbase + python3, curl, procps) when missing,
#      installing debootstrap first if needed;
#   4. installs docker-registry + apache2-utils (htpasswd) when missing: the registry login test
#      runs a registry of its own on 127.0.0.1, so the packaged service is not left running.
# So with docker installed and running it only builds what is missing. No image registry is
# needed: the image is built from the Debian mirror apt already uses.
set -euo pipefail

IMAGE="${ROCK_TEST_IMAGE:-rock-test/debian:bookworm}"
SUITE="bookworm"
DOCKERD_LOG="${ROCK_DOCKERD_LOG:-/var/log/rock-dockerd.log}"
WAIT_SECONDS=60

say() { printf 'setup_docker: %s\n' "$*"; }
fail() {
  printf 'setup_docker: error: %s\n' "$*" >&2
  exit 1
}
have() { command -v "$1" >/dev/null 2>&1; }
as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

# Pids of the processes whose command line matches the extended regex $1, from /proc (so no
# procps is needed).
pids_matching() {
  local dir line
  for dir in /proc/[0-9]*; do
    line="$(tr '\0' ' ' 2>/dev/null <"$dir/cmdline")" || continue
    if [[ "$line" =~ $1 ]]; then printf '%s\n' "${dir#/proc/}"; fi
  done
}

# shellcheck source=scripts/debian_mirror.sh
source "$(dirname "${BASH_SOURCE[0]}")/debian_mirror.sh"

install_packages() {
  say "installing $*"
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "$@" >/dev/null
}

# 1. Docker.
if have dockerd && have docker; then
  say "docker is installed"
else
  packages=(docker.io)
  # Debian's docker.io depends on tini (docker-init); name it so `docker run --init` works.
  have docker-init || packages+=(tini)
  install_packages "${packages[@]}"
fi

# 2. Engine.
if docker info >/dev/null 2>&1; then
  say "docker engine answers"
else
  say "starting dockerd (log: $DOCKERD_LOG)"
  as_root mkdir -p "$(dirname "$DOCKERD_LOG")"
  # Containers of an engine that was killed keep running under their shims and keep their
  # addresses on the bridge, where they would answer for the new engine's containers: end them.
  shims="$(pids_matching 'containerd-shim.*-namespace moby')"
  if [ -n "$shims" ]; then
    say "ending containers left by an engine that was killed"
    # shellcheck disable=SC2086 # one pid per word
    as_root bash -c 'kill -KILL "$@" 2>/dev/null' kill $shims || true
  fi
  # setsid: dockerd leads a session of its own, so ending the caller's process group spares it.
  as_root bash -c "setsid nohup dockerd >>'$DOCKERD_LOG' 2>&1 </dev/null &"
  deadline=$((SECONDS + WAIT_SECONDS))
  until docker info >/dev/null 2>&1; do
    if [ "$SECONDS" -ge "$deadline" ]; then
      tail -n 20 "$DOCKERD_LOG" >&2 || true
      fail "docker engine did not answer within ${WAIT_SECONDS}s: see $DOCKERD_LOG (tail above)"
    fi
    sleep 0.5
  done
  say "docker engine answers"
fi

# 3. Test image.
if docker image inspect "$IMAGE" >/dev/null 2>&1; then
  say "image $IMAGE is present"
else
  have debootstrap || install_packages debootstrap
  mirror="$(debian_mirror "$SUITE")"
  work="$(mktemp -d /tmp/rock-rootfs.XXXXXX)"
  trap 'as_root rm -rf --one-file-system "$work"' EXIT
  rootfs="$work/rootfs"
  say "building $IMAGE: debootstrap $SUITE from $mirror"
  as_root debootstrap --variant=minbase "$SUITE" "$rootfs" "$mirror" >"$work/debootstrap.log" 2>&1 ||
    {
      tail -n 20 "$work/debootstrap.log" >&2
      fail "debootstrap failed (tail above)"
    }
  as_root cp /etc/resolv.conf "$rootfs/etc/resolv.conf"
  say "installing python3 curl procps ca-certificates in the image"
  as_root chroot "$rootfs" /usr/bin/env DEBIAN_FRONTEND=noninteractive \
    bash -c 'apt-get update -qq && apt-get install -y -qq --no-install-recommends \
      python3 curl procps ca-certificates >/dev/null && apt-get clean' >"$work/apt.log" 2>&1 ||
    {
      tail -n 20 "$work/apt.log" >&2
      fail "apt-get install inside the image failed (tail above)"
    }
  as_root rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin "$rootfs"/tmp/*
  # The container gets docker's resolv.conf; do not bake in this machine's.
  as_root truncate -s 0 "$rootfs/etc/resolv.conf"
  say "importing $IMAGE"
  as_root tar -C "$rootfs" -c . | docker import - "$IMAGE" >/dev/null
fi

# 4. Registry for the registry login test.
if have docker-registry && have htpasswd; then
  say "docker-registry and htpasswd are installed"
else
  install_packages docker-registry apache2-utils
  if have systemctl && [ -d /run/systemd/system ]; then
    as_root systemctl disable --now docker-registry >/dev/null 2>&1 || true
  fi
fi

size="$(docker image inspect --format '{{.Size}}' "$IMAGE")"
say "ready: image $IMAGE is $((size / 1024 / 1024)) MB"
