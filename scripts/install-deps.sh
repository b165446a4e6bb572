#!/usr/bin/env bash
# Installs what Ferry's test bed and demo need on Debian 12, idempotently.
# Every step first checks whether its result is already there, so a second run is quick.
# CRIU: Debian 12's 3.17 cannot dump on Linux >= 6.16 (see docs/testbed.md), so when the
# `criu` on PATH fails `criu check`, a newer CRIU from Debian unstable is unpacked into a
# private prefix and wrapped, without touching the system's libc or apt state.
set -euo pipefail

log() { printf '[install-deps] %s\n' "$*" >&2; }

[ "$(id -u)" = 0 ] || { echo "install-deps.sh must run as root" >&2; exit 1; }

# iptables and faketime: the nemesis suite cuts links and skews clocks; catatonit: podman pods;
# debootstrap: the real service images (scripts/images.sh); nftables: a restore that keeps
# connections holds back its address's TCP until they are back (src/podman/addressHold.ts).
PKGS=(podman runc openssh-server openssh-client redis-server busybox-static iproute2 curl ca-certificates util-linux procps zstd chromium iptables faketime catatonit debootstrap rsync nftables)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  log "installing: ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
  log "apt packages present"
fi

# Debian starts redis-server and sshd as services on install; Ferry's bed runs its own
# instances on the test bridge, so the distribution's default ones are left as they are.

CRIU_PREFIX=${CRIU_PREFIX:-/opt/ferry/criu}
CRIU_WRAPPER=/usr/local/sbin/criu
criu_ok() { command -v criu >/dev/null 2>&1 && criu check >/dev/null 2>&1; }

if criu_ok && criu --version >/dev/null 2>&1; then
  log "criu works: $(criu --version | head -1)"
else
  log "criu on PATH is missing or fails 'criu check'; unpacking CRIU from Debian unstable into $CRIU_PREFIX"
  work=$(mktemp -d /var/tmp/ferry-criu.XXXXXX)
  trap 'rm -rf "$work"' EXIT
  mkdir -p "$work/sources" "$work/lists/partial" "$work/cache/archives/partial" "$work/debs"
  # Take the machine's own first Debian source and point it at sid: no mirror host is
  # written into the project.
  awk 'BEGIN{s=0} /^$/{if(s)exit} {s=1; if ($1=="Suites:") print "Suites: sid"; else print}' \
    /etc/apt/sources.list.d/debian.sources > "$work/sources/sid.sources"
  APT_OPTS=(-o Dir::Etc::SourceList=/dev/null -o "Dir::Etc::SourceParts=$work/sources"
            -o "Dir::State::Lists=$work/lists" -o "Dir::Cache=$work/cache"
            -o Debug::NoLocking=1 -o APT::Sandbox::User=root)
  apt-get "${APT_OPTS[@]}" update -qq
  SID_PKGS=(criu libcompel1 libc6 libbsd0 libffi8 libgmp10 libgnutls30t64 libhogweed6t64 libidn2-0
            libjansson4 libmd0 libmnl0 libnet9 libnettle8t64 libnftables1 libnftnl11 libnl-3-200
            libp11-kit0 libprotobuf-c1 libtasn1-6 libunistring5 libuuid1 libxtables12)
  (cd "$work/debs" && apt-get "${APT_OPTS[@]}" download -qq "${SID_PKGS[@]}")
  rm -rf "$CRIU_PREFIX.new"
  mkdir -p "$CRIU_PREFIX.new"
  for d in "$work"/debs/*.deb; do dpkg -x "$d" "$CRIU_PREFIX.new"; done
  rm -rf "$CRIU_PREFIX"
  mv "$CRIU_PREFIX.new" "$CRIU_PREFIX"
  mkdir -p "$(dirname "$CRIU_WRAPPER")"
  cat > "$CRIU_WRAPPER" <<WRAP
#!/bin/sh
# Installed by Ferry's scripts/install-deps.sh: CRIU from Debian unstable with its own libc.
P=$CRIU_PREFIX
L=\$P/usr/lib/x86_64-linux-gnu
exec "\$L/ld-linux-x86-64.so.2" --library-path "\$L" "\$P/usr/sbin/criu" "\$@"
WRAP
  chmod 755 "$CRIU_WRAPPER"
  hash -r
  if criu_ok; then log "criu works: $(criu --version | head -1)"; else
    log "criu still fails 'criu check':"; criu check >&2 || true; exit 1; fi
fi
log "done"
