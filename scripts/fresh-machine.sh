#!/usr/bin/env bash
# fresh-machine.sh - prove the README's two commands on a machine that has
# nothing: build a minimal Debian 12 root with mmdebstrap, give it only git,
# make and ca-certificates, clone trustgate into it and run there, as root,
# `make demo` (until the demo answers a chat question over HTTP) and then
# `make check`.  Prints how long each step took; exits non-zero when any fails.
#
# Usage: scripts/fresh-machine.sh [--dir DIR] [--keep] [--working-tree [PATHSPEC...]]
#   --dir DIR       build the root in DIR (new or empty; default a new folder in /var/tmp)
#   --keep          leave the root (and its logs, root/*.log) in place afterwards
#   --working-tree  also carry the checkout's uncommitted changes and new files
#                   (only those under PATHSPEC when given); by default the clone
#                   is of the committed HEAD alone
#
# Runs as root on Debian (mmdebstrap, chroot and mount need it) and installs
# mmdebstrap with apt-get when it is missing.  The root uses this machine's apt
# sources, its apt proxy and certificate settings, its extra CA certificates
# and its ~/.npmrc, so it reaches Debian's and npm's registries the way this
# machine does.  The chroot shares this machine's network: the demo is served
# on 127.0.0.1:8080 when that port is free here, otherwise on another port.
set -euo pipefail

src=$(cd "$(dirname "$0")/.." && pwd -P)
root=""
keep=0
worktree=0
pathspecs=()
while [ $# -gt 0 ]; do
  case "$1" in
    --dir) root=${2:?--dir needs a folder}; shift 2 ;;
    --keep) keep=1; shift ;;
    --working-tree) worktree=1; shift; pathspecs=("$@"); break ;;
    -h|--help) sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "fresh-machine.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done

say() { echo "fresh-machine: $*"; }
die() { echo "fresh-machine: $*" >&2; exit 1; }
fmt() { printf '%dm%02ds' $(($1 / 60)) $(($1 % 60)); }

[ "$(id -u)" -eq 0 ] || die "needs root (mmdebstrap, chroot, mount)"
command -v curl >/dev/null || die "needs curl on this machine to talk to the demo"

if ! command -v mmdebstrap >/dev/null; then
  say "installing mmdebstrap"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends mmdebstrap >/dev/null
fi

# The demo's port: 8080 as in examples/insurance/trustgate.yaml unless
# something here already answers there.
port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
port=8080
demo_args=()
if port_busy "$port"; then
  port=18080
  while port_busy "$port"; do port=$((port + 1)); done
  demo_args=("LISTEN=127.0.0.1:$port")
  say "127.0.0.1:8080 is in use here; the demo listens on 127.0.0.1:$port"
fi

if [ -z "$root" ]; then
  root=$(mktemp -d /var/tmp/trustgate-fresh.XXXXXX)
elif [ -e "$root" ] && [ -n "$(ls -A "$root")" ]; then
  die "$root is not empty"
fi
mkdir -p "$root"
root=$(cd "$root" && pwd -P)

mounts=()
demo_pid=""

# Every process whose root is the chroot: started by this script, directly or
# by the commands it ran inside.
chroot_pids() {
  local p link
  for p in /proc/[0-9]*; do
    link=$(readlink "$p/root" 2>/dev/null) || continue
    if [ "$link" = "$root" ]; then echo "${p#/proc/}"; fi
  done
}

cleanup() {
  local rc=$? i pids left
  trap - EXIT INT TERM
  if [ -n "$demo_pid" ]; then kill -TERM -- "-$demo_pid" 2>/dev/null || true; fi
  pids=$(chroot_pids)
  if [ -n "$pids" ]; then
    kill -TERM $pids 2>/dev/null || true
    sleep 2
    pids=$(chroot_pids)
    if [ -n "$pids" ]; then kill -KILL $pids 2>/dev/null || true; sleep 1; fi
  fi
  for ((i = ${#mounts[@]} - 1; i >= 0; i--)); do
    umount "${mounts[i]}" 2>/dev/null || umount -l "${mounts[i]}" 2>/dev/null || true
  done
  left=$(awk -v r="$root/" 'index($2 "/", r) == 1 { print $2 }' /proc/mounts)
  if [ -n "$left" ]; then
    echo "fresh-machine: still mounted, $root left in place: $left" >&2
  elif [ "$keep" -eq 1 ]; then
    say "the root is kept in $root (logs in $root/root/*.log)"
  else
    rm -rf --one-file-system -- "$root"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

mnt() { # mnt TARGET MOUNT-ARGS...: mount and remember it for cleanup
  local target=$root$1
  shift
  mkdir -p "$target"
  mount "$@" "$target"
  mounts+=("$target")
}

in_root() { # in_root COMMAND: run a shell command as root in the chroot, clean environment
  chroot "$root" /usr/bin/env -i HOME=/root LANG=C.UTF-8 TERM=dumb \
    PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    /bin/bash -c "$1"
}

# 1. A minimal Debian 12 root with this machine's apt sources and settings.
mirrors=()
for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
  if [ -s "$f" ] && grep -q '^[^#]*bookworm' "$f"; then mirrors+=("$f"); fi
done
aptopts=()
for f in /etc/apt/apt.conf.d/*; do
  if [ -f "$f" ] && grep -qiE 'proxy|cainfo|sslcert|verify-peer|verify-host|check-valid-until|check-date' "$f"; then
    aptopts+=("--aptopt=$f")
  fi
done
say "building a Debian 12 root in $root"
t0=$SECONDS
mmdebstrap --quiet --variant=apt --include=ca-certificates,git,make "${aptopts[@]}" \
  bookworm "$root" "${mirrors[@]}" >"$root.mmdebstrap.log" 2>&1 ||
  { tail -20 "$root.mmdebstrap.log" >&2; rm -f "$root.mmdebstrap.log"; die "mmdebstrap failed"; }
rm -f "$root.mmdebstrap.log"
t_mmdebstrap=$((SECONDS - t0))
say "mmdebstrap took $(fmt $t_mmdebstrap)"

# Services installed later must not start inside the chroot.
printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d"
chmod 755 "$root/usr/sbin/policy-rc.d"

# This machine's extra CA certificates and npm settings.
if compgen -G '/usr/local/share/ca-certificates/*' >/dev/null; then
  cp -a /usr/local/share/ca-certificates/. "$root/usr/local/share/ca-certificates/"
fi
if [ -f "$HOME/.npmrc" ]; then cp "$HOME/.npmrc" "$root/root/.npmrc"; fi
if command -v npm >/dev/null && [ -n "$(npm config get cafile 2>/dev/null | grep -v -e '^null$' -e '^undefined$')" ] &&
   ! grep -qs '^cafile' "$root/root/.npmrc"; then
  echo "cafile=/etc/ssl/certs/ca-certificates.crt" >>"$root/root/.npmrc"
fi

mnt /proc -t proc proc
mnt /sys -t sysfs sysfs
mnt /dev --bind /dev
mnt /dev/pts --bind /dev/pts
mnt /dev/shm -t tmpfs -o mode=1777 shm
# (its rehash step warns about the bundle it writes; only failure matters)
in_root 'update-ca-certificates >/dev/null 2>&1'

# 2. A clean clone of the committed HEAD, with the uncommitted changes when asked.
mnt /mnt/trustgate-src --bind "$src"
mount -o remount,bind,ro "$root/mnt/trustgate-src"
in_root 'git -c safe.directory="*" clone -q /mnt/trustgate-src /root/trustgate'
cloned=$(in_root 'git -C /root/trustgate rev-parse HEAD')
if [ "$worktree" -eq 1 ]; then
  git -C "$src" diff --binary "$cloned" -- "${pathspecs[@]}" >"$root/root/worktree.patch"
  (cd "$src" && git ls-files -z --others --exclude-standard -- "${pathspecs[@]}" |
     tar --null -T - -cf "$root/root/worktree-new.tar")
  in_root 'cd /root/trustgate &&
    if [ -s /root/worktree.patch ]; then git apply --binary /root/worktree.patch; fi &&
    tar -xf /root/worktree-new.tar && git status --short' | sed 's/^/fresh-machine: carried /'
fi
umount "$root/mnt/trustgate-src"
unset 'mounts[${#mounts[@]}-1]'
say "cloned $cloned$([ "$worktree" -eq 1 ] && echo ' with the working tree changes')"

# 3. make demo, until it answers /healthz and a chat question.
say "make demo${demo_args[*]:+ ${demo_args[*]}}"
t0=$SECONDS
setsid chroot "$root" /usr/bin/env -i HOME=/root LANG=C.UTF-8 TERM=dumb \
  PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
  /bin/bash -c 'cd /root/trustgate && exec make demo "$@"' make-demo "${demo_args[@]}" \
  >"$root/root/demo.log" 2>&1 &
demo_pid=$!
url=http://127.0.0.1:$port
until curl -fsS -o /dev/null --max-time 2 "$url/healthz" 2>/dev/null; do
  if ! kill -0 "$demo_pid" 2>/dev/null; then
    tail -30 "$root/root/demo.log" >&2
    die "make demo stopped before the demo answered $url/healthz"
  fi
  [ $((SECONDS - t0)) -lt 3600 ] || die "make demo: no answer on $url/healthz after an hour"
  sleep 2
done
body=$(curl -sS --max-time 30 -w '\n%{http_code}' "$url/v1/chat/completions" \
  -H 'Authorization: Bearer tg-demo-key' -H 'Content-Type: application/json' \
  -d '{"messages":[{"role":"user","content":"意外险理赔需要哪些材料？"}]}') ||
  die "make demo: the chat request failed"
code=${body##*$'\n'}
body=${body%$'\n'*}
if command -v python3 >/dev/null; then
  answer=$(printf '%s' "$body" | python3 -c \
    'import json,sys; print(json.load(sys.stdin)["choices"][0]["message"]["content"])' 2>/dev/null || true)
else
  answer=$(printf '%s' "$body" | grep -o '"content" *: *"[^"]\+' | head -1 || true)
fi
if [ "$code" != 200 ] || [ -z "$answer" ]; then
  printf '%s\n' "$body" >&2
  die "make demo: the chat question got HTTP $code without choices[0].message.content"
fi
t_demo=$((SECONDS - t0))
say "make demo answered in $(fmt $t_demo): ${answer:0:60}..."
kill -TERM -- "-$demo_pid" 2>/dev/null || true
for _ in $(seq 30); do kill -0 "$demo_pid" 2>/dev/null || break; sleep 1; done
kill -KILL -- "-$demo_pid" 2>/dev/null || true
wait "$demo_pid" 2>/dev/null || true
demo_pid=""

# 4. make check.
say "make check (log: $root/root/check.log)"
t0=$SECONDS
rc=0
in_root 'cd /root/trustgate && make check' >"$root/root/check.log" 2>&1 || rc=$?
t_check=$((SECONDS - t0))
if [ "$rc" -ne 0 ]; then
  grep -E 'tests passed|tests failed|\*\*\*Failed|\*\*\*Timeout|Exception|\(Failed\)|\(Timeout\)|Error [0-9]' \
    "$root/root/check.log" >&2 || tail -40 "$root/root/check.log" >&2
  keep=1
  die "make check failed after $(fmt $t_check) (exit $rc); the root is kept for a look"
fi
grep -E 'tests passed' "$root/root/check.log" | paste -d' ' <(printf '%s\n' release: 'ASan+UBSan:') - |
  sed 's/^/fresh-machine: make check, /'

say "node $(in_root 'node --version'), chromium $(in_root 'chromium --version 2>/dev/null | awk "{print \$2}"')"
say "mmdebstrap  $(fmt $t_mmdebstrap)"
say "make demo   $(fmt $t_demo)  (from the clone to the answered chat question)"
say "make check  $(fmt $t_check)"
say "ok"
