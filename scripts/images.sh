#!/usr/bin/env bash
# Real service images for Ferry's tests, built from Debian packages (no container registry is
# reachable): debootstrap minbase + apt-get install, then `podman import` on one bed host,
# `podman save` once to a cached archive, and `podman load` of that same archive on every
# bed host, so every host has the same image ID (a checkpoint refers to its image by ID).
# Idempotent: does nothing when every host already has the image. Needs a running bed.
#
#   images.sh                 ensure every image below on every bed host
#   images.sh redis mariadb   only those
#
#   localhost/ferry-redis:latest    redis-server (AOF on, data in /data)
#   localhost/ferry-mariadb:latest  mariadbd as root (CRIU on the bed cannot dump a non-root
#                                   process), datadir /var/lib/mysql (meant for a named volume,
#                                   initialised on first start when empty), port 3306, root's
#                                   password over TCP "ferry-test", socket auth inside
#
# Environment: FERRY_BED_DIR (default /var/lib/ferry-bed), FERRY_IMAGE_SUITE (default bookworm),
# FERRY_IMAGE_HOSTS (comma-separated bed host names; default all: to leave hosts that another
# run is using alone).
set -euo pipefail

BED=${FERRY_BED_DIR:-/var/lib/ferry-bed}
# Outside $BED/image and the hosts' storage, which `bed.sh down` removes: a cold build takes
# minutes, a load from this archive seconds.
CACHE=$BED/service-images
SUITE=${FERRY_IMAGE_SUITE:-bookworm}
ALL_IMAGES=(redis mariadb)

# Per image: its packages, what `podman import` is told, and what is added to the rootfs.
# No VOLUME in any of them: podman would give every container an anonymous volume of its
# own, which Ferry would copy at every move; tests mount the volumes they want.
image_packages() {
  case $1 in
    redis) echo redis-server ;;
    # The -core packages: the server and the client without perl, galera and the admin tools.
    mariadb) echo mariadb-server-core mariadb-client-core ;;
  esac
}

image_changes() { # image -> fills CHANGES
  case $1 in
    redis)
      CHANGES=(
        --change 'CMD ["redis-server","--protected-mode","no","--appendonly","yes","--dir","/data"]'
        --change 'WORKDIR /data'
        --change 'EXPOSE 6379'
      ) ;;
    mariadb)
      CHANGES=(
        --change 'ENTRYPOINT ["/usr/local/bin/ferry-mariadb"]'
        --change 'WORKDIR /var/lib/mysql'
        --change 'EXPOSE 3306'
      ) ;;
  esac
}

image_finish() { # image rootfs: the image's own files
  case $1 in
    redis) mkdir -p "$2/data" ;;
    mariadb)
      mkdir -p "$2/var/lib/mysql" "$2/run/mysqld" "$2/etc/mysql"
      # Debian's package leaves a datadir behind; the image's must start empty, so that the
      # first start on a fresh volume initialises it and a volume that has data keeps it.
      rm -rf "$2"/var/lib/mysql/*
      # Run at every start (idempotent): root may log in over TCP with the test password.
      cat > "$2/etc/mysql/ferry-init.sql" <<'SQL'
CREATE USER IF NOT EXISTS 'root'@'%' IDENTIFIED BY 'ferry-test';
GRANT ALL PRIVILEGES ON *.* TO 'root'@'%' WITH GRANT OPTION;
SQL
      cat > "$2/usr/local/bin/ferry-mariadb" <<'SH'
#!/bin/sh
# Ferry's test MariaDB. It runs as root because CRIU on the test bed cannot dump a process of
# another user (see docs/testbed.md); arguments are added to mariadbd's.
set -eu
datadir=/var/lib/mysql
mkdir -p /run/mysqld "$datadir"
if [ ! -d "$datadir/mysql" ]; then
  mariadb-install-db --user=root --datadir="$datadir" --skip-name-resolve > /tmp/install-db.log 2>&1 \
    || { cat /tmp/install-db.log >&2; exit 1; }
fi
exec mariadbd --user=root --datadir="$datadir" --bind-address=0.0.0.0 --skip-name-resolve \
  --init-file=/etc/mysql/ferry-init.sql "$@"
SH
      chmod 755 "$2/usr/local/bin/ferry-mariadb" ;;
  esac
}

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
if [ -n "${FERRY_IMAGE_HOSTS:-}" ]; then
  mapfile -t HOST_LINES < <(printf '%s\n' "${HOST_LINES[@]}" \
    | awk -v want="$FERRY_IMAGE_HOSTS" 'BEGIN { n = split(want, w, ","); for (i = 1; i <= n; i++) keep[w[i]] = 1 } keep[$1]')
  [ ${#HOST_LINES[@]} -gt 0 ] || die "FERRY_IMAGE_HOSTS=$FERRY_IMAGE_HOSTS names no host of $BED/bed.json"
fi

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

build_archive() { # image: debootstrap, apt-get install, import on the first host, save
  local image=$1 ref archive mirror t0=$SECONDS root first
  ref=localhost/ferry-$image:latest
  archive=$CACHE/ferry-$image.docker.tar
  ensure_debootstrap
  mirror=$(debian_mirror)
  BUILD_DIR=$(mktemp -d "$CACHE/build.XXXXXX")
  root=$BUILD_DIR/rootfs
  log "$image: debootstrap --variant=minbase $SUITE (mirror from the machine's apt sources)"
  debootstrap --variant=minbase "$SUITE" "$root" "$mirror" > "$BUILD_DIR/debootstrap.log" 2>&1 \
    || { tail -20 "$BUILD_DIR/debootstrap.log" >&2; die "debootstrap failed"; }
  # Package scripts must not start services inside the chroot.
  printf '#!/bin/sh\nexit 101\n' > "$root/usr/sbin/policy-rc.d"
  chmod 755 "$root/usr/sbin/policy-rc.d"
  # No documentation: test images only need to run.
  printf 'path-exclude=/usr/share/%s/*\n' doc man info lintian locale > "$root/etc/dpkg/dpkg.cfg.d/ferry-nodoc"
  log "$image: apt-get install $(image_packages "$image") in the rootfs"
  # shellcheck disable=SC2046 # the package list is meant to split
  chroot "$root" env DEBIAN_FRONTEND=noninteractive PATH=/usr/sbin:/usr/bin:/sbin:/bin \
    apt-get install -y -qq --no-install-recommends $(image_packages "$image") > "$BUILD_DIR/apt.log" 2>&1 \
    || { tail -20 "$BUILD_DIR/apt.log" >&2; die "apt-get install $(image_packages "$image") failed"; }
  chroot "$root" apt-get clean
  rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin "$root"/var/log/apt/* \
    "$root"/usr/share/doc/* "$root"/usr/share/man/* "$root"/usr/share/info/* "$root"/usr/share/locale/* \
    "$root/usr/sbin/policy-rc.d" "$root"/tmp/* "$root"/var/tmp/*
  # The mirror was only needed to build; the image should not name it.
  : > "$root/etc/apt/sources.list"
  image_finish "$image" "$root"
  unmount_under "$BUILD_DIR"
  first=${HOST_LINES[0]}
  image_changes "$image"
  log "$image: podman import on host ${first%% *}"
  tar --numeric-owner -C "$root" -c . \
    | hexec "$first" podman import --quiet "${CHANGES[@]}" - "$ref" >/dev/null
  cleanup
  save_archive "$first" "$ref" "$archive"
  log "built $ref in $((SECONDS - t0)) s: $(du -h "$archive" | cut -f1) in $archive"
}

save_archive() { # host-line image archive
  rm -f "$3.tmp"
  hexec "$1" podman save --quiet --format docker-archive -o "$3.tmp" "$2"
  mv -f "$3.tmp" "$3"
}

ensure_image() { # image
  local image=$1 ref archive line lacking
  ref=localhost/ferry-$image:latest
  archive=$CACHE/ferry-$image.docker.tar
  if [ -s "$archive" ] && [ -z "$(hosts_lacking "$ref" "$archive")" ]; then
    log "$ref present on every host${FERRY_IMAGE_HOSTS:+ of $FERRY_IMAGE_HOSTS}"
    return 0
  fi
  mkdir -p "$CACHE"
  exec 8>"$CACHE/.lock"
  flock -w 900 8 || die "another images.sh holds $CACHE/.lock"
  # Another run may have built or loaded while this one waited for the lock.
  if [ ! -s "$archive" ]; then
    # A host that still has the image (the archive was deleted) keeps its ID: save that one,
    # never replace an image that containers may be using.
    for line in "${HOST_LINES[@]}"; do
      if hexec "$line" podman image exists "$ref" 2>/dev/null; then
        save_archive "$line" "$ref" "$archive"
        log "saved $ref from host ${line%% *} to $archive"
        break
      fi
    done
  fi
  [ -s "$archive" ] || build_archive "$image"
  mapfile -t lacking < <(hosts_lacking "$ref" "$archive")
  for line in "${lacking[@]}"; do
    hexec "$line" podman load --quiet -i "$archive" >/dev/null
    log "loaded $ref on host ${line%% *}"
  done
  exec 8>&-
}

t0=$SECONDS
images=("$@")
[ ${#images[@]} -gt 0 ] || images=("${ALL_IMAGES[@]}")
for image in "${images[@]}"; do
  [ -n "$(image_packages "$image")" ] || die "unknown image $image (known: ${ALL_IMAGES[*]})"
  ensure_image "$image"
done
log "done in $((SECONDS - t0)) s"
