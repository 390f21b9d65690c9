#!/usr/bin/env bash
# Makes a Docker engine and rock's test image available on this machine. Idempotent: each step
# checks first and does nothing when its result is already there, so a re-run takes seconds.
#   1. installs docker.io from Debian when docker is missing;
#   2. starts dockerd in the background when `docker info` does not answer;
#   3. builds rock-test/debian:bookworm (debootstrap minbase + python3, curl, procps) when missing,
#      installing debootstrap first if needed.
# So with docker installed and running it only builds the image. No image registry is needed: the
# image is built from the Debian mirror apt already uses.
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

# The Debian mirror apt uses here (deb822 "URIs:" or one-line "deb URL bookworm ...").
debian_mirror() {
  local files=() url=""
  [ -f /etc/apt/sources.list ] && files+=(/etc/apt/sources.list)
  for f in /etc/apt/sources.list.d/*.sources /etc/apt/sources.list.d/*.list; do
    [ -f "$f" ] && files+=("$f")
  done
  if [ "${#files[@]}" -gt 0 ]; then
    url="$(grep -hoE '^URIs:[[:space:]]*[^[:space:]]+' "${files[@]}" 2>/dev/null |
      awk '{print $2}' | grep -vE 'security|updates' | grep -E '/debian/?$' | head -n1 || true)"
    if [ -z "$url" ]; then
      url="$(grep -hE "^deb[[:space:]]" "${files[@]}" 2>/dev/null |
        awk -v s="$SUITE" '$0 ~ " "s" " {for (i = 2; i <= NF; i++) if ($i ~ /^https?:/) {print $i; exit}}' ||
        true)"
    fi
  fi
  printf '%s\n' "${url:-http://deb.debian.org/debian}"
}

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
  if pgrep -f 'containerd-shim.*-namespace moby' >/dev/null 2>&1; then
    say "ending containers left by an engine that was killed"
    as_root pkill -KILL -f 'containerd-shim.*-namespace moby' || true
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
  mirror="$(debian_mirror)"
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

size="$(docker image inspect --format '{{.Size}}' "$IMAGE")"
say "ready: image $IMAGE is $((size / 1024 / 1024)) MB"
