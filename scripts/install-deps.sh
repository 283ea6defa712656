#!/usr/bin/env bash
# install-deps.sh - install the Debian packages trustgate needs, skipping
# what is already installed.  Usage: scripts/install-deps.sh [build|check|bench|cluster]
#   build  compilers and libraries (default)
#   check  build + what the tests need (cmocka, a PostgreSQL server the tests start
#          privately, Node.js 18 or newer and npm for the
#          OpenAI client test, Debian's chromium and a CJK font for the browser tests)
#   bench  build + wrk and nginx for the benchmark
#   cluster  build + a PostgreSQL server and nginx for `make demo-cluster`
set -euo pipefail

mode=${1:-build}
pkgs=(build-essential cmake pkg-config libevent-dev libcurl4-openssl-dev libjansson-dev
      libyaml-dev libsqlite3-dev libpq-dev libssl-dev libicu-dev libpcre2-dev liblinear-dev)
case "$mode" in
  build) ;;
  check) pkgs+=(libcmocka-dev curl sqlite3 postgresql chromium fonts-wqy-microhei) ;;
  bench) pkgs+=(wrk nginx curl) ;;
  cluster) pkgs+=(postgresql nginx curl) ;;
  *) echo "usage: $0 [build|check|bench|cluster]" >&2; exit 2 ;;
esac

missing=()
for p in "${pkgs[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
# Node.js 18 or newer runs the OpenAI client and browser tests.  One from
# elsewhere than Debian is used as it is; Debian 12's nodejs is 18.
node_major() {
  local v
  v=$(node --version 2>/dev/null) || return 1
  v=${v#v}
  echo "${v%%.*}"
}
if [ "$mode" = check ]; then
  major=$(node_major || echo 0)
  if [ "$major" -lt 18 ]; then
    missing+=(nodejs npm)
  elif ! command -v npm >/dev/null 2>&1; then
    missing+=(npm)
  fi
fi

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
echo "installing: ${missing[*]}"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq || true
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
if [ "$mode" = check ] && [ "$(node_major || echo 0)" -lt 18 ]; then
  echo "install-deps.sh: the tests need Node.js 18 or newer; found $(node --version 2>/dev/null || echo none)" >&2
  exit 1
fi
