#!/usr/bin/env bash
# Ferry's test bed: several "hosts" on one machine, each a network namespace plus a
# persistent mount namespace with its own podman storage, its own sshd, and a shared Redis
# on the bridge. Everything is real (podman + runc + CRIU, OpenSSH, Redis); see
# docs/testbed.md for the layout and the facts behind each choice.
#
#   bed.sh up | down | status
#   bed.sh exec <host> <cmd> [args...]
#   bed.sh ssh <host> [ssh args / remote command...]
#   bed.sh worker-start <host> [config] | worker-stop <host> | workers-start | workers-stop
#   bed.sh selftest            (runs scripts/bed/selftest.sh: real migrations a->b->c)
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$SCRIPT_DIR/.." && pwd)
BED=${FERRY_BED_DIR:-/var/lib/ferry-bed}
# d is kept for the fleet tests: a drain moves everything on a host, so no other test may use d.
read -r -a HOSTS <<< "${FERRY_BED_HOSTS:-a b c d}"
BRIDGE=ferrybr0
NET_PREFIX=198.18.0
BRIDGE_ADDR=$NET_PREFIX.1
REDIS_PORT=6390
IMAGE=localhost/ferry-busybox:latest
MNT=$BED/mnt

# Remote and local commands must find the CRIU wrapper in /usr/local/sbin (runc looks
# `criu` up on PATH).
STD_PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
fix_path() {
  local p=$PATH d
  for d in ${STD_PATH//:/ }; do
    case ":$p:" in *":$d:"*) ;; *) p=$p:$d ;; esac
  done
  # /usr/local/sbin must come first so the CRIU wrapper wins over Debian's old criu.
  case ":$p:" in ":/usr/local/sbin:"*) ;; *) p=/usr/local/sbin:$p ;; esac
  printf '%s' "$p"
}
PATH=$(fix_path); export PATH

log()  { printf '[bed] %s\n' "$*" >&2; }
warn() { printf '[bed] WARNING: %s\n' "$*" >&2; }
die()  { printf '[bed] ERROR: %s\n' "$*" >&2; exit 1; }

need_root() { [ "$(id -u)" = 0 ] || die "must run as root"; }

validate_hosts() {
  [ ${#HOSTS[@]} -ge 1 ] || die "FERRY_BED_HOSTS is empty"
  [ ${#HOSTS[@]} -le 200 ] || die "too many hosts"
  local h seen=" "
  for h in "${HOSTS[@]}"; do
    [[ $h =~ ^[a-z][a-z0-9]{0,9}$ ]] || die "bad host name '$h' (want [a-z][a-z0-9]{0,9})"
    case "$seen" in *" $h "*) die "host '$h' listed twice" ;; esac
    seen="$seen$h "
  done
}

host_index() {
  local i
  for i in "${!HOSTS[@]}"; do [ "${HOSTS[$i]}" = "$1" ] && { echo "$i"; return 0; }; done
  return 1
}
known_host() { host_index "$1" >/dev/null || die "unknown host '$1' (hosts: ${HOSTS[*]})"; }
host_addr() { local i; i=$(host_index "$1"); echo "$NET_PREFIX.$((11 + i))"; }
hdir()    { echo "$BED/hosts/$1"; }
netns_of() { echo "/run/netns/ferry-$1"; }
mntns_of() { echo "$MNT/$1"; }
veth_of()  { echo "fb-$1"; }

# Per-host folders bind-mounted over the default paths inside the host's mount namespace.
# Format: <target in the host>:<folder under $BED/hosts/<h>/fs>
BINDS=(
  /var/lib/containers:var-lib-containers
  /run/containers:run-containers
  /run/runc:run-runc
  /run/libpod:run-libpod
  /run/netns:run-netns
  /var/lib/cni:var-lib-cni
  /etc/cni/net.d:etc-cni-net.d
  /etc/containers:etc-containers
  /var/lib/ferry:var-lib-ferry
)

is_mountpoint_of_type() { # path fstype -> true if path is a mount point of that type (root ns)
  local t
  t=$(findmnt -n -o FSTYPE --mountpoint "$1" 2>/dev/null | tail -1) || return 1
  [ "$t" = "$2" ]
}
netns_ok() { is_mountpoint_of_type "$(netns_of "$1")" nsfs; }
mntns_mounted() { is_mountpoint_of_type "$(mntns_of "$1")" nsfs; }
ns_inode() { stat -L -c %i "$1" 2>/dev/null; }

hexec() { # run a command inside host $1 (mount + net namespace), no shell re-parsing
  local h=$1; shift
  nsenter --mount="$(mntns_of "$h")" --net="$(netns_of "$h")" -- "$@"
}

pid_alive() { # pid cmdline-substring
  local pid=$1 pat=$2
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  [ -r "/proc/$pid/cmdline" ] || return 1
  tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$pat"
}
pidfile_pid() { [ -s "$1" ] && tr -dc '0-9' < "$1" || true; }

stop_pid() { # pid pattern what: TERM, wait up to 10 s, KILL
  local pid=$1 pat=$2 what=$3 i
  pid_alive "$pid" "$pat" || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for i in $(seq 1 100); do pid_alive "$pid" "$pat" || return 0; sleep 0.1; done
  warn "$what (pid $pid) ignored SIGTERM; sending SIGKILL"
  kill -KILL "$pid" 2>/dev/null || true
  for i in $(seq 1 30); do pid_alive "$pid" "$pat" || return 0; sleep 0.1; done
  warn "$what (pid $pid) still alive"
}

json_str() { # JSON string literal
  local s=$1
  s=${s//\\/\\\\}; s=${s//\"/\\\"}; s=${s//$'\n'/\\n}; s=${s//$'\t'/\\t}
  printf '"%s"' "$s"
}

write_file_0600() { # path (content on stdin), atomically
  local tmp; tmp=$(mktemp "$1.XXXXXX")
  chmod 600 "$tmp"; cat > "$tmp"; mv -f "$tmp" "$1"
}

take_lock() {
  mkdir -p "$BED"; chmod 755 "$BED"
  exec 9>"$BED/.lock"
  flock -w 300 9 || die "another bed.sh holds $BED/.lock"
}
# Every long-lived process we start gets `9>&-` so it does not keep the lock.

###############################################################################
# up
###############################################################################

ensure_keys() {
  mkdir -p "$BED/ssh"; chmod 700 "$BED/ssh"
  local k
  for k in id_ed25519 wrong_ed25519; do
    if [ ! -s "$BED/ssh/$k" ] || [ ! -s "$BED/ssh/$k.pub" ]; then
      rm -f "$BED/ssh/$k" "$BED/ssh/$k.pub"
      ssh-keygen -q -t ed25519 -N '' -C "ferry-bed-$k" -f "$BED/ssh/$k"
      log "generated $BED/ssh/$k"
    fi
  done
  cp "$BED/ssh/id_ed25519.pub" "$BED/ssh/authorized_keys.tmp"
  chmod 600 "$BED/ssh/authorized_keys.tmp"; mv -f "$BED/ssh/authorized_keys.tmp" "$BED/ssh/authorized_keys"
  local h d
  for h in "${HOSTS[@]}"; do
    d=$(hdir "$h"); mkdir -p "$d"; chmod 700 "$d"
    if [ ! -s "$d/ssh_host_ed25519_key" ] || [ ! -s "$d/ssh_host_ed25519_key.pub" ]; then
      rm -f "$d/ssh_host_ed25519_key" "$d/ssh_host_ed25519_key.pub"
      ssh-keygen -q -t ed25519 -N '' -C "ferry-bed-host-$h" -f "$d/ssh_host_ed25519_key"
    fi
  done
  {
    for h in "${HOSTS[@]}"; do
      read -r t key _ < "$(hdir "$h")/ssh_host_ed25519_key.pub"
      echo "$(host_addr "$h") $t $key"
    done
  } > "$BED/ssh/known_hosts.tmp"
  chmod 644 "$BED/ssh/known_hosts.tmp"; mv -f "$BED/ssh/known_hosts.tmp" "$BED/ssh/known_hosts"
}

ensure_bridge() {
  if ! ip link show "$BRIDGE" >/dev/null 2>&1; then
    ip link add "$BRIDGE" type bridge
    log "created bridge $BRIDGE"
  elif ! ip -d link show "$BRIDGE" | grep -q 'bridge '; then
    die "$BRIDGE exists but is not a bridge"
  fi
  ip addr replace "$BRIDGE_ADDR/24" dev "$BRIDGE"
  ip link set "$BRIDGE" up
}

ensure_host_net() {
  local h=$1 ns veth addr cur
  ns=$(netns_of "$h"); veth=$(veth_of "$h"); addr=$(host_addr "$h")
  if ! netns_ok "$h"; then
    if [ -e "$ns" ]; then ip netns del "ferry-$h" 2>/dev/null || rm -f "$ns"; fi
    ip netns add "ferry-$h"
    log "created netns ferry-$h"
  fi
  local in_eth0=no root_veth=no
  nsenter --net="$ns" ip link show eth0 >/dev/null 2>&1 && in_eth0=yes
  ip link show "$veth" >/dev/null 2>&1 && root_veth=yes
  if [ $in_eth0 = yes ] && [ $root_veth = yes ]; then
    # Same pair? The root side's peer index must be eth0's index inside.
    local peer_idx eth_idx
    peer_idx=$(ip -o link show "$veth" | sed -n 's/^[0-9]*: [^@]*@if\([0-9]*\):.*/\1/p')
    eth_idx=$(nsenter --net="$ns" ip -o link show eth0 | cut -d: -f1)
    if [ "$peer_idx" != "$eth_idx" ]; then
      warn "$veth and ferry-$h/eth0 are not a pair; recreating"
      ip link del "$veth" 2>/dev/null || true
      nsenter --net="$ns" ip link del eth0 2>/dev/null || true
      in_eth0=no; root_veth=no
    fi
  fi
  [ $in_eth0 = yes ] && [ $root_veth = no ] && nsenter --net="$ns" ip link del eth0
  [ $in_eth0 = no ] && [ $root_veth = yes ] && ip link del "$veth"
  if [ $in_eth0 = no ] || [ $root_veth = no ]; then
    ip link add "$veth" type veth peer name eth0 netns "ferry-$h"
  fi
  ip link set "$veth" master "$BRIDGE"
  ip link set "$veth" up
  nsenter --net="$ns" ip link set lo up
  cur=$(nsenter --net="$ns" ip -4 -o addr show dev eth0 | awk '{print $4}' | sort | tr '\n' ' ')
  if [ "$cur" != "$addr/24 " ]; then
    nsenter --net="$ns" ip -4 addr flush dev eth0
    nsenter --net="$ns" ip addr add "$addr/24" dev eth0
  fi
  nsenter --net="$ns" ip link set eth0 up
  nsenter --net="$ns" sysctl -q -w net.ipv4.ip_forward=1 >/dev/null
}

containers_conf() {
  cat <<'EOF'
# Written by Ferry's scripts/bed.sh: makes plain `podman` work inside a bed host.
[containers]
# podman's default ulimits exceed this machine's hard limits ("setrlimit ... not permitted").
default_ulimits = [
  "nofile=1024:1024",
  "nproc=1024:1024",
]
# No systemd/journald on the bed: plain files, readable by `podman logs`.
log_driver = "k8s-file"

[engine]
# crun 1.8 fails on this hybrid cgroup v1 machine; runc + CRIU works.
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
EOF
}

ensure_host_dirs() {
  local h=$1 d b src
  d=$(hdir "$h")
  mkdir -p "$d/fs"
  for b in "${BINDS[@]}"; do
    src=$d/fs/${b#*:}
    mkdir -p "$src" "${b%%:*}"
  done
  chmod 700 "$d/fs/var-lib-containers"
  mkdir -p "$d/fs/var-lib-ferry/archives"
  # The work dir the bed's config names: Ferry refuses one others can enter (archives hold memory).
  chmod 700 "$d/fs/var-lib-ferry/archives"
  # /etc/containers and /etc/cni/net.d start as copies of the machine's own, then the
  # host owns them (podman may write networks there).
  if [ ! -e "$d/fs/etc-containers/.ferry-copied" ]; then
    [ -d /etc/containers ] && cp -a /etc/containers/. "$d/fs/etc-containers/"
    touch "$d/fs/etc-containers/.ferry-copied"
  fi
  if [ ! -e "$d/fs/etc-cni-net.d/.ferry-copied" ]; then
    [ -d /etc/cni/net.d ] && cp -a /etc/cni/net.d/. "$d/fs/etc-cni-net.d/"
    rm -f "$d/fs/etc-cni-net.d/cni.lock"
    touch "$d/fs/etc-cni-net.d/.ferry-copied"
  fi
  containers_conf > "$d/fs/etc-containers/containers.conf.tmp"
  if ! cmp -s "$d/fs/etc-containers/containers.conf.tmp" "$d/fs/etc-containers/containers.conf"; then
    mv -f "$d/fs/etc-containers/containers.conf.tmp" "$d/fs/etc-containers/containers.conf"
  else
    rm -f "$d/fs/etc-containers/containers.conf.tmp"
  fi
  mkdir -p /dev/shm # always there; tmpfs over it per host
}

# Runs inside the freshly unshared mount namespace (propagation private).
# $1 = host folder, $2 = $BED/mnt, rest = target:source pairs.
MNTNS_INIT='
set -e
hd=$1; bedmnt=$2; shift 2
# Drop our copies of the other hosts namespace files and of the machine netns mounts:
# they would keep those namespaces alive and they are no business of this host.
umount -l "$bedmnt" 2>/dev/null || true
for m in $(awk '"'"'$5 ~ "^/run/netns(/|$)" {print $5}'"'"' /proc/self/mountinfo | sort -r); do
  umount -l "$m" 2>/dev/null || true
done
for b in "$@"; do
  mount --bind "$hd/fs/${b#*:}" "${b%%:*}"
done
# Own /dev/shm: podman keeps its lock table there (libpod_lock), per host like a real one.
mount -t tmpfs -o mode=1777,nosuid,nodev,size=256m ferry-shm /dev/shm
'

mntns_healthy() { # all bind targets inside resolve to the host's folders, own /dev/shm
  local h=$1 d b want got ns
  ns=$(mntns_of "$h"); d=$(hdir "$h")
  local targets=() want_ids=""
  for b in "${BINDS[@]}"; do
    targets+=("${b%%:*}")
    want_ids+="$(stat -c '%d:%i' "$d/fs/${b#*:}") "
  done
  got=$(nsenter --mount="$ns" stat -c '%d:%i' "${targets[@]}" 2>/dev/null | tr '\n' ' ') || return 1
  [ "$got" = "$want_ids" ] || return 1
  want=$(stat -c %d /dev/shm)
  got=$(nsenter --mount="$ns" stat -c %d /dev/shm 2>/dev/null) || return 1
  [ "$want" != "$got" ]
}

ensure_mnt_root() {
  mkdir -p "$MNT"
  if ! findmnt -n --mountpoint "$MNT" >/dev/null 2>&1; then
    mount --bind "$MNT" "$MNT"
  fi
  mount --make-private "$MNT"
}

ensure_host_mntns() {
  local h=$1 ns
  ns=$(mntns_of "$h")
  if mntns_mounted "$h"; then
    if ! mntns_healthy "$h"; then
      warn "mount namespace of host $h is not as expected; recreating it"
    elif [ -z "$(ns_seed_pids "$(ns_inode "$ns")" "")" ]; then
      # No process is left in it (an earlier session ended): like a host after a crash.
      # Give it a fresh boot, so podman sees an empty /run and resets container states.
      log "host $h has no processes left; booting it afresh (storage kept, /run state cleared)"
    else
      return 0
    fi
    umount "$ns" 2>/dev/null || umount -l "$ns"
  fi
  # A new mount namespace is a new boot of the host: its /run folders start empty, and so
  # does CNI's IP allocation state (else "10.88.0.2 has been allocated to ..., duplicate
  # allocation is not allowed" when a container of the previous boot starts again).
  local d r; d=$(hdir "$h")
  for r in run-containers run-runc run-libpod run-netns var-lib-cni; do
    rm -rf "${d:?}/fs/$r"; mkdir -p "$d/fs/$r"
  done
  : > "$ns"
  unshare --mount="$ns" --propagation private \
    sh -c "$MNTNS_INIT" sh "$(hdir "$h")" "$MNT" "${BINDS[@]}" 9>&-
  mntns_healthy "$h" || die "mount namespace of host $h did not come up right"
  log "created mount namespace for host $h"
}

sshd_config() {
  local h=$1 d addr
  d=$(hdir "$h"); addr=$(host_addr "$h")
  cat <<EOF
# Written by Ferry's scripts/bed.sh for bed host $h.
ListenAddress $addr:22
HostKey $d/ssh_host_ed25519_key
PidFile $d/sshd.pid
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
AuthorizedKeysFile $BED/ssh/authorized_keys
UsePAM no
StrictModes yes
UseDNS no
PrintMotd no
PrintLastLog no
X11Forwarding no
# Tests open many connections at once; the default 10:30:100 drops some.
MaxStartups 200
MaxSessions 100
LogLevel INFO
# Remote commands need /usr/local/sbin first (the CRIU wrapper; runc finds criu on PATH).
SetEnv PATH=$STD_PATH
Subsystem sftp /usr/lib/openssh/sftp-server
EOF
}

sshd_pid_ok() { # pid belongs to this host's sshd in this host's namespaces
  local h=$1 pid=$2
  pid_alive "$pid" "$(hdir "$h")/sshd_config" || return 1
  [ "$(readlink "/proc/$pid/ns/mnt")" = "mnt:[$(ns_inode "$(mntns_of "$h")")]" ] || return 1
  [ "$(readlink "/proc/$pid/ns/net")" = "net:[$(ns_inode "$(netns_of "$h")")]" ] || return 1
}

ensure_sshd() {
  local h=$1 d pid changed=no i
  d=$(hdir "$h")
  mkdir -p /run/sshd; chmod 755 /run/sshd
  sshd_config "$h" > "$d/sshd_config.tmp"
  if ! cmp -s "$d/sshd_config.tmp" "$d/sshd_config"; then
    mv -f "$d/sshd_config.tmp" "$d/sshd_config"; changed=yes
  else
    rm -f "$d/sshd_config.tmp"
  fi
  /usr/sbin/sshd -t -f "$d/sshd_config" || die "sshd config for host $h is invalid"
  pid=$(pidfile_pid "$d/sshd.pid")
  if [ -n "$pid" ] && pid_alive "$pid" "$d/sshd_config"; then
    if ! sshd_pid_ok "$h" "$pid"; then
      warn "sshd of host $h (pid $pid) runs in stale namespaces; restarting it"
      stop_pid "$pid" "$d/sshd_config" "sshd $h"
    elif [ $changed = yes ]; then
      kill -HUP "$pid"; log "sshd of host $h reloaded (config changed)"
      sleep 0.3
      return 0
    else
      return 0
    fi
  fi
  rm -f "$d/sshd.pid"
  hexec "$h" /usr/sbin/sshd -f "$d/sshd_config" -E "$d/sshd.log" 9>&- </dev/null
  for i in $(seq 1 50); do
    pid=$(pidfile_pid "$d/sshd.pid")
    [ -n "$pid" ] && sshd_pid_ok "$h" "$pid" && return 0
    sleep 0.1
  done
  tail -5 "$d/sshd.log" >&2 || true
  die "sshd for host $h did not start"
}

redis_password() {
  mkdir -p "$BED/redis"; chmod 700 "$BED/redis"
  if [ ! -s "$BED/redis/password" ]; then
    od -An -tx1 -N24 /dev/urandom | tr -d ' \n' | write_file_0600 "$BED/redis/password"
    log "generated Redis password"
  fi
  chmod 600 "$BED/redis/password"
  tr -d '\n' < "$BED/redis/password"
}

redis_ping() { # host
  REDISCLI_AUTH=$(cat "$BED/redis/password") timeout 3 \
    redis-cli -h "$1" -p "$REDIS_PORT" ping 2>/dev/null | grep -qx PONG
}

ensure_redis() {
  local pw pid i
  pw=$(redis_password)
  {
    echo "# Written by Ferry's scripts/bed.sh (contains the password: keep 0600)"
    echo "port $REDIS_PORT"
    echo "bind 127.0.0.1 $BRIDGE_ADDR"
    echo "protected-mode yes"
    echo "requirepass $pw"
    echo "appendonly yes"
    echo 'save ""'
    echo "maxmemory-policy noeviction"
    echo "dir $BED/redis"
    echo "daemonize yes"
    echo "pidfile $BED/redis/redis.pid"
    echo "logfile $BED/redis/redis.log"
  } | write_file_0600 "$BED/redis/redis.conf"
  pid=$(pidfile_pid "$BED/redis/redis.pid")
  if [ -n "$pid" ] && pid_alive "$pid" "redis-server"; then
    if redis_ping 127.0.0.1 && redis_ping "$BRIDGE_ADDR"; then return 0; fi
    warn "bed Redis (pid $pid) does not answer on 127.0.0.1 and $BRIDGE_ADDR with the password; restarting"
    stop_pid "$pid" redis-server "redis"
  fi
  if (exec 3<>"/dev/tcp/127.0.0.1/$REDIS_PORT") 2>/dev/null; then
    die "something else listens on 127.0.0.1:$REDIS_PORT (not the bed's Redis per $BED/redis/redis.pid)"
  fi
  rm -f "$BED/redis/redis.pid"
  redis-server "$BED/redis/redis.conf" 9>&- </dev/null >/dev/null
  for i in $(seq 1 50); do
    redis_ping 127.0.0.1 && redis_ping "$BRIDGE_ADDR" && { log "started Redis on 127.0.0.1,$BRIDGE_ADDR:$REDIS_PORT"; return 0; }
    sleep 0.1
  done
  tail -5 "$BED/redis/redis.log" >&2 || true
  die "Redis did not start"
}

build_image_tar() { # out.tar: busybox-static rootfs
  local out=$1 root a bb
  bb=/bin/busybox
  [ -x "$bb" ] || die "$bb missing (busybox-static)"
  root=$(mktemp -d "$BED/image/rootfs.XXXXXX")
  mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,etc,www,tmp,root,var/tmp,proc,sys,dev,run}
  chmod 1777 "$root/tmp" "$root/var/tmp"
  cp "$bb" "$root/bin/busybox"
  for a in $("$bb" --list); do
    [ "$a" = busybox ] || ln -sf busybox "$root/bin/$a"
  done
  ln -sf /bin/busybox "$root/usr/bin/env"
  printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' > "$root/etc/passwd"
  printf 'root:x:0:\nnogroup:x:65534:\n' > "$root/etc/group"
  printf '<!doctype html>\n<html><body><h1>Ferry demo</h1></body></html>\n' > "$root/www/index.html"
  tar --numeric-owner --owner=0 --group=0 -C "$root" -cf "$out" .
  rm -rf "$root"
}

image_id_in_archive() { # docker-archive -> image id (sha256 of its config)
  tar -xOf "$1" manifest.json 2>/dev/null | grep -o '"Config":"[^"]*"' | head -1 \
    | sed 's/.*"Config":"\(sha256:\)\{0,1\}\([0-9a-f]\{64\}\).*/\2/'
}

ensure_image() {
  # One canonical image (one import), copied to the other hosts with save/load, so every
  # host has the same image ID: a checkpoint refers to its image by ID.
  local canon=$BED/image/ferry-busybox.docker.tar h src="" id cid
  mkdir -p "$BED/image"
  if [ ! -s "$canon" ]; then
    for h in "${HOSTS[@]}"; do
      if hexec "$h" podman image exists "$IMAGE" 2>/dev/null; then src=$h; break; fi
    done
    if [ -z "$src" ]; then
      src=${HOSTS[0]}
      build_image_tar "$BED/image/rootfs.tar"
      hexec "$src" podman import --quiet --change 'CMD=["/bin/sh"]' \
        "$BED/image/rootfs.tar" "$IMAGE" >/dev/null
      rm -f "$BED/image/rootfs.tar"
      log "imported $IMAGE on host $src"
    fi
    rm -f "$canon.tmp"
    hexec "$src" podman save --quiet --format docker-archive -o "$canon.tmp" "$IMAGE"
    mv -f "$canon.tmp" "$canon"
  fi
  cid=$(image_id_in_archive "$canon")
  [ -n "$cid" ] || die "cannot read the image id from $canon"
  for h in "${HOSTS[@]}"; do
    id=$(hexec "$h" podman image inspect --format '{{.Id}}' "$IMAGE" 2>/dev/null || true)
    if [ "$id" != "$cid" ]; then
      hexec "$h" podman load --quiet -i "$canon" >/dev/null
      log "loaded $IMAGE on host $h"
    fi
  done
}

write_configs() {
  local pw h i n=${#HOSTS[@]} d addr sshd_pid
  pw=$(tr -d '\n' < "$BED/redis/password")
  {
    echo "{"
    echo "  \"redis\": { \"url\": $(json_str "redis://$BRIDGE_ADDR:$REDIS_PORT"), \"password\": $(json_str "$pw") },"
    echo "  \"hosts\": ["
    for i in "${!HOSTS[@]}"; do
      h=${HOSTS[$i]}; addr=$(host_addr "$h")
      printf '    { "name": %s, "address": %s,\n' "$(json_str "$h")" "$(json_str "$addr")"
      printf '      "ssh": { "port": 22, "user": "root", "privateKey": %s, "knownHosts": %s },\n' \
        "$(json_str "$BED/ssh/id_ed25519")" "$(json_str "$BED/ssh/known_hosts")"
      printf '      "podman": ["podman"], "workDir": "/var/lib/ferry/archives" }%s\n' "$([ $((i + 1)) -lt $n ] && echo ,)"
    done
    echo "  ]"
    echo "}"
  } | write_file_0600 "$BED/ferry.json"
  {
    echo "{"
    echo "  \"dir\": $(json_str "$BED"), \"bridge\": $(json_str "$BRIDGE"), \"bridgeAddress\": $(json_str "$BRIDGE_ADDR"),"
    echo "  \"image\": $(json_str "$IMAGE"),"
    echo "  \"redis\": { \"host\": $(json_str "$BRIDGE_ADDR"), \"port\": $REDIS_PORT, \"password\": $(json_str "$pw") },"
    echo "  \"ssh\": { \"key\": $(json_str "$BED/ssh/id_ed25519"), \"wrongKey\": $(json_str "$BED/ssh/wrong_ed25519"), \"knownHosts\": $(json_str "$BED/ssh/known_hosts") },"
    echo "  \"hosts\": ["
    for i in "${!HOSTS[@]}"; do
      h=${HOSTS[$i]}; d=$(hdir "$h"); addr=$(host_addr "$h")
      sshd_pid=$(pidfile_pid "$d/sshd.pid"); sshd_pid=${sshd_pid:-0}
      printf '    { "name": %s, "address": %s, "netns": %s, "mountns": %s, "veth": %s, "sshdPid": %s }%s\n' \
        "$(json_str "$h")" "$(json_str "$addr")" "$(json_str "$(netns_of "$h")")" \
        "$(json_str "$(mntns_of "$h")")" "$(json_str "$(veth_of "$h")")" "$sshd_pid" \
        "$([ $((i + 1)) -lt $n ] && echo ,)"
    done
    echo "  ]"
    echo "}"
  } | write_file_0600 "$BED/bed.json"
}

check_ssh() { # quick end-to-end check of each host's sshd from the root namespace
  local h out try
  for h in "${HOSTS[@]}"; do
    for try in 1 2 3 4 5; do
      out=$(ssh -n -i "$BED/ssh/id_ed25519" -o UserKnownHostsFile="$BED/ssh/known_hosts" \
        -o GlobalKnownHostsFile=/dev/null -o StrictHostKeyChecking=yes -o BatchMode=yes \
        -o ConnectTimeout=5 "root@$(host_addr "$h")" 'cat /var/lib/ferry/.host' 2>"$BED/ssh-check.err") && break
      # Only stdout is compared: root's shell start-up files may print to stderr (pyenv does here).
      [ $try = 5 ] && die "ssh to host $h failed: $(cat "$BED/ssh-check.err")"
      sleep 0.3
    done
    out=$(printf '%s\n' "$out" | tail -n 1)
    [ "$out" = "$h" ] || die "ssh to $(host_addr "$h") landed in '$out', not host $h"
  done
}

cmd_up() {
  need_root; validate_hosts
  local t0=$SECONDS h
  bash "$REPO/scripts/install-deps.sh"
  take_lock
  ensure_keys
  ensure_bridge
  ensure_mnt_root
  for h in "${HOSTS[@]}"; do
    ensure_host_net "$h"
    ensure_host_dirs "$h"
    echo "$h" > "$(hdir "$h")/fs/var-lib-ferry/.host"
    ensure_host_mntns "$h"
    ensure_sshd "$h"
  done
  ensure_redis
  ensure_image
  ensure_pipe_max
  write_configs
  check_ssh
  echo "Ferry test bed is up in $BED ($((SECONDS - t0)) s)"
  for h in "${HOSTS[@]}"; do
    printf '  host %-4s %-13s sshd pid %s\n' "$h" "$(host_addr "$h")" "$(pidfile_pid "$(hdir "$h")/sshd.pid")"
  done
  echo "  redis     $BRIDGE_ADDR:$REDIS_PORT (and 127.0.0.1), password in $BED/redis/password"
  echo "  image     $IMAGE on every host"
  echo "  config    $BED/ferry.json   facts: $BED/bed.json"
  echo "  try       $0 exec ${HOSTS[0]} podman ps   |   $0 ssh ${HOSTS[1]:-${HOSTS[0]}} podman ps"
}

###############################################################################
# down
###############################################################################

known_bed_hosts() { # configured hosts plus whatever an earlier run left
  local h f
  {
    printf '%s\n' "${HOSTS[@]}"
    for f in "$BED"/hosts/*/; do [ -d "$f" ] && basename "$f"; done
    for f in "$MNT"/*; do [ -e "$f" ] && basename "$f"; done
    ip netns list 2>/dev/null | awk '{print $1}' | sed -n 's/^ferry-//p'
    ip -o link show 2>/dev/null | sed -n 's/^[0-9]*: fb-\([a-z0-9]*\)[@:].*/\1/p'
  } | grep -E '^[a-z][a-z0-9]{0,9}$' | sort -u
}

ns_seed_pids() { # pids whose mount namespace inode is $1 or net namespace inode is $2
  local mnt_id=$1 net_id=$2 f p
  for f in /proc/[0-9]*; do
    p=${f#/proc/}
    [ "$p" = "$$" ] && continue
    if { [ -n "$mnt_id" ] && [ "$(readlink "$f/ns/mnt" 2>/dev/null)" = "mnt:[$mnt_id]" ]; } ||
       { [ -n "$net_id" ] && [ "$(readlink "$f/ns/net" 2>/dev/null)" = "net:[$net_id]" ]; }; then
      echo "$p"
    fi
  done
}

ns_pids() { # ns_seed_pids plus all their descendants (e.g. container processes of conmon)
  local seeds f line rest
  seeds=$(ns_seed_pids "$1" "$2" | tr '\n' ' ')
  [ -n "${seeds// /}" ] || return 0
  for f in /proc/[0-9]*/stat; do
    read -r line < "$f" 2>/dev/null || continue
    rest=${line##*) }
    # shellcheck disable=SC2086
    set -- $rest
    echo "${line%% *} $2"
  done | awk -v seeds="$seeds" -v self="$$" '
    { parent[$1] = $2 }
    END {
      n = split(seeds, s, " "); for (i = 1; i <= n; i++) keep[s[i]] = 1
      do { changed = 0
        for (p in parent) if (!(p in keep) && (parent[p] in keep)) { keep[p] = 1; changed = 1 }
      } while (changed)
      for (p in keep) if (p != self && (p in parent)) print p
    }'
}

down_host() {
  local h=$1 d pid mnt_id="" net_id="" pids
  d=$(hdir "$h")
  if mntns_mounted "$h" && netns_ok "$h"; then
    timeout 120 nsenter --mount="$(mntns_of "$h")" --net="$(netns_of "$h")" \
      podman pod rm -af -t 0 >/dev/null 2>&1 || true
    timeout 120 nsenter --mount="$(mntns_of "$h")" --net="$(netns_of "$h")" \
      podman rm -af -t 0 >/dev/null 2>&1 || warn "podman rm -af failed in host $h"
  fi
  pid=$(pidfile_pid "$d/sshd.pid")
  [ -n "$pid" ] && stop_pid "$pid" "$d/sshd_config" "sshd $h"
  mntns_mounted "$h" && mnt_id=$(ns_inode "$(mntns_of "$h")")
  netns_ok "$h" && net_id=$(ns_inode "$(netns_of "$h")")
  pids=$(ns_pids "$mnt_id" "$net_id" | tr '\n' ' ')
  if [ -n "${pids// /}" ]; then
    warn "host $h: stopping leftover processes in its namespaces: $pids"
    # shellcheck disable=SC2086
    kill -TERM $pids 2>/dev/null || true
    sleep 1
    pids=$(ns_pids "$mnt_id" "$net_id" | tr '\n' ' ')
    # shellcheck disable=SC2086
    [ -n "${pids// /}" ] && { kill -KILL $pids 2>/dev/null || true; sleep 0.3; }
  fi
  if mntns_mounted "$h"; then umount "$(mntns_of "$h")" 2>/dev/null || umount -l "$(mntns_of "$h")"; fi
  if ip netns list 2>/dev/null | awk '{print $1}' | grep -qx "ferry-$h"; then
    ip netns del "ferry-$h" 2>/dev/null || warn "ip netns del ferry-$h failed"
  fi
  [ -e "$(netns_of "$h")" ] && { umount -l "$(netns_of "$h")" 2>/dev/null || true; rm -f "$(netns_of "$h")"; }
  # Deleting the namespace takes its veth peer with it, a moment later: the link seen a line
  # earlier may be gone when `ip link del` runs ("Cannot find device"), which is no failure.
  if ip link show "$(veth_of "$h")" >/dev/null 2>&1; then
    ip link del "$(veth_of "$h")" 2>/dev/null || ! ip link show "$(veth_of "$h")" >/dev/null 2>&1 || warn "cannot delete link $(veth_of "$h")"
  fi
  if [ -d "$d" ]; then
    # Keep only the host key, so known_hosts stays valid across down/up.
    find "$d" -mindepth 1 -maxdepth 1 ! -name 'ssh_host_ed25519_key' ! -name 'ssh_host_ed25519_key.pub' \
      -exec rm -rf {} +
  fi
  return 0
}

# The bed's hosts share one kernel, so they share fs.pipe-max-size, which Ferry raises per
# host for post-copy's page server and puts back when the host's last post-copy move ends
# (each host keeps its own hold, in its own /var/lib/ferry). Here one host putting it back
# broke another host's page server mid-copy ("page-pipe: splice: -1: Bad file descriptor").
# Real hosts have a kernel each; the bed raises the limit once, for its lifetime, instead.
PIPE_MAX_NEEDED=4194304
ensure_pipe_max() {
  local cur; cur=$(cat /proc/sys/fs/pipe-max-size)
  [ "$cur" -ge "$PIPE_MAX_NEEDED" ] && return 0
  [ -e "$BED/pipe-max-size.before" ] || echo "$cur" > "$BED/pipe-max-size.before"
  echo "$PIPE_MAX_NEEDED" > /proc/sys/fs/pipe-max-size
}
restore_pipe_max() {
  [ -e "$BED/pipe-max-size.before" ] || return 0
  cat "$BED/pipe-max-size.before" > /proc/sys/fs/pipe-max-size && rm -f "$BED/pipe-max-size.before"
}

cmd_down() {
  need_root; validate_hosts
  local t0=$SECONDS h pid m
  take_lock
  local all; all=$(known_bed_hosts)
  # Short grace: the namespace sweep in down_host catches whatever is left.
  # shellcheck disable=SC2086
  FERRY_BED_WORKER_STOP_TIMEOUT=${FERRY_BED_WORKER_STOP_TIMEOUT:-3} stop_workers $all
  for h in $all; do down_host "$h"; done
  pid=$(pidfile_pid "$BED/redis/redis.pid")
  [ -n "$pid" ] && stop_pid "$pid" redis-server "redis"
  # Every mount under $BED (ns files, the private $BED/mnt bind, leftovers), deepest first.
  while read -r m; do
    umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || warn "cannot unmount $m"
  done < <(awk -v p="$BED" '$5 == p || index($5, p "/") == 1 {print $5}' /proc/self/mountinfo | sort -r)
  while findmnt -n --mountpoint "$MNT" >/dev/null 2>&1; do umount -l "$MNT" || break; done
  ip link show "$BRIDGE" >/dev/null 2>&1 && ip link del "$BRIDGE"
  rm -rf "$MNT" "$BED/image" "$BED/ferry.json" "$BED/bed.json"
  if [ -d "$BED/redis" ]; then
    find "$BED/redis" -mindepth 1 -maxdepth 1 ! -name password -exec rm -rf {} +
  fi
  if awk -v p="$BED" '$5 == p || index($5, p "/") == 1 {f=1} END {exit !f}' /proc/self/mountinfo; then
    awk -v p="$BED" '$5 == p || index($5, p "/") == 1' /proc/self/mountinfo >&2
    die "mounts under $BED remain"
  fi
  restore_pipe_max
  echo "Ferry test bed is down ($((SECONDS - t0)) s); kept $BED/ssh, host keys and $BED/redis/password"
}

###############################################################################
# status / exec / ssh
###############################################################################

cmd_status() {
  validate_hosts
  local h d pid ns sshd worker n running
  for h in "${HOSTS[@]}"; do
    d=$(hdir "$h")
    netns_ok "$h" && ns=yes || ns=no
    mntns_mounted "$h" && ns="$ns/yes" || ns="$ns/no"
    pid=$(pidfile_pid "$d/sshd.pid")
    if [ -n "$pid" ] && pid_alive "$pid" "$d/sshd_config"; then sshd="up($pid)"; else sshd=down; fi
    pid=$(pidfile_pid "$d/worker.pid")
    if [ -n "$pid" ] && worker_pid_ok "$pid" "$h"; then worker="up($pid)"; else worker=down; fi
    n=-; running=-
    if [ "$ns" = yes/yes ]; then
      n=$(hexec "$h" podman ps -a -q 2>/dev/null | wc -l) || n='?'
      running=$(hexec "$h" podman ps -q 2>/dev/null | wc -l) || running='?'
    fi
    printf 'host %-4s %-13s netns/mntns %-7s sshd %-12s worker %-12s containers %s (running %s)\n' \
      "$h" "$(host_addr "$h")" "$ns" "$sshd" "$worker" "$n" "$running"
  done
  pid=$(pidfile_pid "$BED/redis/redis.pid")
  if [ -n "$pid" ] && pid_alive "$pid" redis-server && [ -s "$BED/redis/password" ] && redis_ping "$BRIDGE_ADDR"; then
    echo "redis $BRIDGE_ADDR:$REDIS_PORT up($pid)"
  else
    echo "redis $BRIDGE_ADDR:$REDIS_PORT down"
  fi
}

require_host_up() {
  local h=$1
  known_host "$h"
  netns_ok "$h" || die "host $h: no network namespace $(netns_of "$h") (run: bed.sh up)"
  mntns_mounted "$h" || die "host $h: no mount namespace $(mntns_of "$h") (run: bed.sh up)"
}

cmd_exec() {
  [ $# -ge 2 ] || die "usage: bed.sh exec <host> <cmd> [args...]"
  local h=$1; shift
  need_root; validate_hosts; require_host_up "$h"
  local wd=/
  [ -d "$PWD" ] && wd=$PWD
  exec nsenter --mount="$(mntns_of "$h")" --net="$(netns_of "$h")" --wd="$wd" -- "$@"
}

cmd_ssh() {
  [ $# -ge 1 ] || die "usage: bed.sh ssh <host> [remote command...]"
  local h=$1; shift
  validate_hosts; known_host "$h"
  exec ssh -i "$BED/ssh/id_ed25519" -o UserKnownHostsFile="$BED/ssh/known_hosts" \
    -o GlobalKnownHostsFile=/dev/null -o StrictHostKeyChecking=yes -o BatchMode=yes \
    "root@$(host_addr "$h")" "$@"
}

###############################################################################
# workers
###############################################################################

proc_starttime() { # field 22 of /proc/<pid>/stat (clock ticks since boot)
  local s
  s=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  s=${s##*) }
  set -- $s
  echo "${20}"
}

worker_pid_ok() { # pid is alive and is the process worker-start launched for host h
  local pid=$1 h=$2 want
  [[ $pid =~ ^[0-9]+$ ]] && [ -d "/proc/$pid" ] || return 1
  grep -q '^State:.*Z' "/proc/$pid/status" 2>/dev/null && return 1
  want=$(cat "$(hdir "$h")/worker.start" 2>/dev/null) || return 1
  [ "$(proc_starttime "$pid")" = "$want" ]
}

start_worker() {
  local h=$1 cfg=${2:-$BED/ferry.json} d pid
  d=$(hdir "$h")
  require_host_up "$h"
  [ -r "$cfg" ] || die "config file $cfg not found (run: bed.sh up)"
  cfg=$(cd "$(dirname "$cfg")" && pwd)/$(basename "$cfg")
  pid=$(pidfile_pid "$d/worker.pid")
  if [ -n "$pid" ] && worker_pid_ok "$pid" "$h"; then
    log "worker for host $h already running (pid $pid)"
    return 0
  fi
  local cmd
  if [ -n "${FERRY_BED_WORKER_CMD:-}" ]; then
    # Stand-in for tests of this script: a command line (word-split) to run instead of node.
    read -r -a cmd <<< "$FERRY_BED_WORKER_CMD"
    cmd+=(worker --host "$h" --config "$cfg")
  else
    [ -f "$REPO/bin/ferry.js" ] || die "$REPO/bin/ferry.js not found"
    cmd=(node "$REPO/bin/ferry.js" worker --host "$h" --config "$cfg")
  fi
  printf '\n=== %s worker-start host %s: %s\n' "$(date -Is)" "$h" "${cmd[*]}" >> "$d/worker.log"
  # setsid: own session/process group, detached from the caller. In this non-interactive
  # shell the background child is never a process-group leader, so setsid does not fork;
  # nsenter (no --pid) and env exec as well: $! is the pid of the final program (node).
  (
    exec setsid nsenter --mount="$(mntns_of "$h")" --net="$(netns_of "$h")" --wd="$REPO" -- \
      env PATH="$PATH" "${cmd[@]}"
  ) >> "$d/worker.log" 2>&1 < /dev/null 9>&- &
  pid=$!
  echo "$pid" > "$d/worker.pid"
  # Start time identifies the process even if pid numbers are reused or node changes its
  # process title.
  proc_starttime "$pid" > "$d/worker.start" || true
  sleep 0.3
  if ! [ -d "/proc/$pid" ] || grep -q '^State:.*Z' "/proc/$pid/status" 2>/dev/null; then
    tail -20 "$d/worker.log" >&2 || true
    rm -f "$d/worker.pid"
    die "worker for host $h exited at once (log: $d/worker.log)"
  fi
  log "worker for host $h started (pid $pid, log $d/worker.log)"
}

stop_workers() { # hosts...: SIGTERM every worker's process group at once, wait, SIGKILL
  local grace=${FERRY_BED_WORKER_STOP_TIMEOUT:-10} h pid i left
  [[ $grace =~ ^[0-9]+$ ]] || die "FERRY_BED_WORKER_STOP_TIMEOUT must be whole seconds"
  local -A pids=()
  for h in "$@"; do
    pid=$(pidfile_pid "$(hdir "$h")/worker.pid")
    if [ -n "$pid" ] && worker_pid_ok "$pid" "$h"; then
      pids[$h]=$pid
      # The worker leads its own process group (setsid): signal the group, so children it
      # spawned (ssh, podman) go too.
      kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
    fi
  done
  for i in $(seq 1 $((grace * 10))); do
    left=0
    for h in "${!pids[@]}"; do worker_pid_ok "${pids[$h]}" "$h" && left=1; done
    [ $left = 0 ] && break
    sleep 0.1
  done
  for h in "${!pids[@]}"; do
    pid=${pids[$h]}
    if worker_pid_ok "$pid" "$h"; then
      warn "worker $h (pid $pid) still running ${grace} s after SIGTERM; SIGKILL"
      kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
    fi
    log "worker for host $h stopped (pid $pid)"
  done
  [ ${#pids[@]} -gt 0 ] && sleep 0.2
  for h in "$@"; do rm -f "$(hdir "$h")/worker.pid" "$(hdir "$h")/worker.start"; done
}

###############################################################################

usage() {
  sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//' >&2
  exit 2
}

main() {
  [ $# -ge 1 ] || usage
  local cmd=$1; shift
  case "$cmd" in
    up) cmd_up ;;
    down) cmd_down ;;
    status) cmd_status ;;
    exec) cmd_exec "$@" ;;
    ssh) cmd_ssh "$@" ;;
    worker-start)
      [ $# -ge 1 ] && [ $# -le 2 ] || die "usage: bed.sh worker-start <host> [config-file]"
      need_root; validate_hosts; known_host "$1"; take_lock; start_worker "$@" ;;
    worker-stop)
      [ $# -eq 1 ] || die "usage: bed.sh worker-stop <host>"
      need_root; validate_hosts; known_host "$1"; take_lock; stop_workers "$1" ;;
    workers-start)
      need_root; validate_hosts; take_lock
      for h in "${HOSTS[@]}"; do start_worker "$h" "$@"; done ;;
    workers-stop)
      need_root; validate_hosts; take_lock
      stop_workers "${HOSTS[@]}" ;;
    selftest) exec bash "$SCRIPT_DIR/bed/selftest.sh" "$@" ;;
    -h|--help|help) usage ;;
    *) die "unknown command '$cmd' (up, down, status, exec, ssh, worker-start, worker-stop, workers-start, workers-stop, selftest)" ;;
  esac
}

main "$@"
