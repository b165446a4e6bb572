#!/usr/bin/env bash
# Real service images for Ferry's tests, built from Debian packages (no container registry is
# reachable): debootstrap minbase + apt-get install, then `podman import` on one bed host,
# `podman save` once to a cached archive, and `podman load` of that same archive on every
# bed host, so every host has the same image ID (a checkpoint refers to its image by ID).
# Idempotent: does nothing when every host already has the image. Needs a running bed.
#
#   images.sh            ensure localhost/ferry-redis:latest on every bed host
#
# Environment: FERRY_BED_DIR (default /var/lib/ferry-bed), FERRY_IMAGE_SUITE (default bookworm).
set -euo pipefail

BED=${FERRY_BED_DIR:-/var/lib/ferry-bed}
# Outside $BED/image and the hosts' storage, which `bed.sh down` removes: a cold build takes
# minutes, a load from this archive seconds.
CACHE=$BED/service-images
SUITE=${FERRY_IMAGE_SUITE:-bookworm}
REDIS_IMAGE=localhost/ferry-redis:latest
REDIS_ARCHIVE=$CACHE/ferry-redis.docker.tar
# No VOLUME: podman would give every container an anonymous volume, which Ferry refuses.
REDIS_CHANGES=(
  --change 'CMD ["redis-server","--protected-mode","no","--appendonly","yes","--dir","/data"]'
  --change 'WORKDIR /data'
  --change 'EXPOSE 6379'
)

log() { printf '[images] %s\n' "$*" >&2; }
die() { printf '[images] ERROR: %s\n' "$*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "must run as root"
[ -s "$BED/bed.json" ] || die "no test bed at $BED: run \`bash scripts/bed.sh up\` first"
# The CRIU wrapper and podman live in the sbin folders; a plain user PATH may lack them.
PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:$PATH

# "name mountns netns" per bed host, from the facts bed.sh wrote.
mapfile -t HOST_LINES < <(node -e '
  const b = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
  for (const h of b.hosts) console.log(`${h.name} ${h.mountns} ${h.netns}`);
' "$BED/bed.json")
[ ${#HOST_LINES[@]} -gt 0 ] || die "$BED/bed.json lists no hosts"

hexec() { # host-line command...: run inside that bed host, as bed.sh does
  local name mnt net
  read -r name mnt net <<< "$1"; shift
  nsenter --mount="$mnt" --net="$net" -- "$@"
}

image_id_in_archive() { # docker-archive -> image id (sha256 of its config)
  tar -xOf "$1" manifest.json 2>/dev/null | grep -o '"Config":"[^"]*"' | head -1 \
    | sed 's/.*"Config":"\(sha256:\)\{0,1\}\([0-9a-f]\{64\}\).*/\2/'
}

hosts_lacking() { # image archive -> host lines whose image ID differs from the archive's
  local image=$1 archive=$2 cid id line
  cid=$(image_id_in_archive "$archive")
  [ -n "$cid" ] || die "cannot read the image id from $archive"
  for line in "${HOST_LINES[@]}"; do
    id=$(hexec "$line" podman image inspect --format '{{.Id}}' "$image" 2>/dev/null || true)
    [ "$id" = "$cid" ] || printf '%s\n' "$line"
  done
}

# The mirror is the machine's own first Debian source: no registry host is written here.
debian_mirror() {
  local uri=""
  if [ -r /etc/apt/sources.list.d/debian.sources ]; then
    uri=$(awk '$1 == "URIs:" { print $2; exit }' /etc/apt/sources.list.d/debian.sources)
  fi
  if [ -z "$uri" ] && [ -r /etc/apt/sources.list ]; then
    uri=$(awk '$1 == "deb" { for (i = 2; i <= NF; i++) if ($i !~ /^\[/ && $i !~ /\]$/) { print $i; exit } }' /etc/apt/sources.list)
  fi
  [ -n "$uri" ] || die "no Debian mirror found in /etc/apt/sources.list.d/debian.sources or /etc/apt/sources.list"
  printf '%s' "$uri"
}

ensure_debootstrap() {
  command -v debootstrap >/dev/null 2>&1 && return 0
  log "installing debootstrap"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap >/dev/null
}

unmount_under() { # every mount below a folder, deepest first (debootstrap mounts proc/sys)
  local m
  while read -r m; do
    umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true
  done < <(awk -v p="$1" 'index($5, p "/") == 1 {print $5}' /proc/self/mountinfo | sort -r)
}

BUILD_DIR=""
cleanup() {
  if [ -n "$BUILD_DIR" ] && [ -d "$BUILD_DIR" ]; then
    unmount_under "$BUILD_DIR"
    # Never delete through a mount that is still there (it could be the machine's /proc or /dev).
    if awk -v p="$BUILD_DIR" 'index($5, p "/") == 1 {f=1} END {exit !f}' /proc/self/mountinfo; then
      log "mounts remain under $BUILD_DIR; leaving it"
    else
      rm -rf "$BUILD_DIR"
    fi
  fi
}
trap cleanup EXIT

build_redis_archive() {
  local mirror t0=$SECONDS root first
  ensure_debootstrap
  mirror=$(debian_mirror)
  BUILD_DIR=$(mktemp -d "$CACHE/build.XXXXXX")
  root=$BUILD_DIR/rootfs
  log "debootstrap --variant=minbase $SUITE (mirror from the machine's apt sources)"
  debootstrap --variant=minbase "$SUITE" "$root" "$mirror" > "$BUILD_DIR/debootstrap.log" 2>&1 \
    || { tail -20 "$BUILD_DIR/debootstrap.log" >&2; die "debootstrap failed"; }
  # Package scripts must not start services inside the chroot.
  printf '#!/bin/sh\nexit 101\n' > "$root/usr/sbin/policy-rc.d"
  chmod 755 "$root/usr/sbin/policy-rc.d"
  log "apt-get install redis-server in the rootfs"
  chroot "$root" env DEBIAN_FRONTEND=noninteractive PATH=/usr/sbin:/usr/bin:/sbin:/bin \
    apt-get install -y -qq --no-install-recommends redis-server > "$BUILD_DIR/apt.log" 2>&1 \
    || { tail -20 "$BUILD_DIR/apt.log" >&2; die "apt-get install redis-server failed"; }
  chroot "$root" apt-get clean
  rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin "$root"/var/log/apt/* \
    "$root/usr/sbin/policy-rc.d" "$root"/tmp/* "$root"/var/tmp/*
  # The mirror was only needed to build; the image should not name it.
  : > "$root/etc/apt/sources.list"
  mkdir -p "$root/data"
  unmount_under "$BUILD_DIR"
  first=${HOST_LINES[0]}
  log "podman import on host ${first%% *}"
  tar --numeric-owner -C "$root" -c . \
    | hexec "$first" podman import --quiet "${REDIS_CHANGES[@]}" - "$REDIS_IMAGE" >/dev/null
  cleanup
  save_archive "$first" "$REDIS_IMAGE" "$REDIS_ARCHIVE"
  log "built $REDIS_IMAGE in $((SECONDS - t0)) s: $(du -h "$REDIS_ARCHIVE" | cut -f1) in $REDIS_ARCHIVE"
}

save_archive() { # host-line image archive
  rm -f "$3.tmp"
  hexec "$1" podman save --quiet --format docker-archive -o "$3.tmp" "$2"
  mv -f "$3.tmp" "$3"
}

ensure_redis_image() {
  local line lacking
  if [ -s "$REDIS_ARCHIVE" ] && [ -z "$(hosts_lacking "$REDIS_IMAGE" "$REDIS_ARCHIVE")" ]; then
    log "$REDIS_IMAGE present on every host"
    return 0
  fi
  mkdir -p "$CACHE"
  exec 8>"$CACHE/.lock"
  flock -w 900 8 || die "another images.sh holds $CACHE/.lock"
  # Another run may have built or loaded while this one waited for the lock.
  if [ ! -s "$REDIS_ARCHIVE" ]; then
    # A host that still has the image (the archive was deleted) keeps its ID: save that one,
    # never replace an image that containers may be using.
    for line in "${HOST_LINES[@]}"; do
      if hexec "$line" podman image exists "$REDIS_IMAGE" 2>/dev/null; then
        save_archive "$line" "$REDIS_IMAGE" "$REDIS_ARCHIVE"
        log "saved $REDIS_IMAGE from host ${line%% *} to $REDIS_ARCHIVE"
        break
      fi
    done
  fi
  [ -s "$REDIS_ARCHIVE" ] || build_redis_archive
  mapfile -t lacking < <(hosts_lacking "$REDIS_IMAGE" "$REDIS_ARCHIVE")
  for line in "${lacking[@]}"; do
    hexec "$line" podman load --quiet -i "$REDIS_ARCHIVE" >/dev/null
    log "loaded $REDIS_IMAGE on host ${line%% *}"
  done
  exec 8>&-
}

t0=$SECONDS
ensure_redis_image
log "done in $((SECONDS - t0)) s"
